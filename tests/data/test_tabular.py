import numpy as np
import pytest
import torch

from trainlab.config import DataConfig
from trainlab.data import Standardizer, load_data
from trainlab.data.tabular import infer_task, read_csv
from trainlab.errors import ConfigError, DataError
from trainlab.registry import DATASETS


def _write(tmp_path, text: str, name: str = "data.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def _table(n: int, target) -> str:
    rng = np.random.default_rng(0)
    lines = ["a,b,label"]
    for i in range(n):
        lines.append(f"{rng.normal(10, 3):.5f},{rng.uniform(-100, 100):.5f},{target(i)}")
    return "\n".join(lines) + "\n"


def test_integer_labels_are_classification(tmp_path):
    raw, task = read_csv(_write(tmp_path, _table(60, lambda i: i % 3)), "label")
    assert task == "classification" and raw.task == "classification"
    assert raw.n_classes == 3 and raw.class_names == ["0", "1", "2"]
    assert raw.train.y.dtype == torch.int64 and raw.train.y.tolist()[:4] == [0, 1, 2, 0]
    assert raw.train.x.shape == (60, 2) and raw.train.x.dtype == torch.float32
    assert raw.feature_names == ["a", "b"] and raw.input_shape == (2,)


def test_string_labels_sorted_and_numeric_labels_sorted_numerically(tmp_path):
    names = ["setosa", "virginica", "versicolor"]
    raw, _ = read_csv(_write(tmp_path, _table(30, lambda i: names[i % 3])), "label")
    assert raw.class_names == ["setosa", "versicolor", "virginica"]
    assert raw.train.y.tolist()[:3] == [0, 2, 1]
    raw, _ = read_csv(_write(tmp_path, _table(10, lambda i: [2, 10][i % 2]), "n.csv"), "label")
    assert raw.class_names == ["2", "10"] and raw.train.y.tolist()[:2] == [0, 1]


def test_real_or_many_valued_targets_are_regression(tmp_path):
    raw, task = read_csv(_write(tmp_path, _table(40, lambda i: i * 0.5)), "label")
    assert task == "regression" and raw.n_classes is None
    assert raw.train.y.shape == (40, 1) and raw.train.y.dtype == torch.float32
    assert raw.train.y[3, 0] == 1.5 and raw.target_names == ["label"]
    assert infer_task(np.array([str(i) for i in range(21)])) == "regression"  # 21 distinct whole numbers
    assert infer_task(np.array([str(i) for i in range(20)])) == "classification"
    raw, _ = read_csv(_write(tmp_path, _table(20, lambda i: i % 2), "r.csv"), "label", task="regression")
    assert raw.task == "regression"


def test_missing_target_column_message(tmp_path):
    p = _write(tmp_path, _table(5, lambda i: i % 2))
    with pytest.raises(DataError, match=r"data.target must be a column of data.csv. Got 'lable'. "
                                        r"Did you mean 'label'\? Columns: a, b, label"):
        read_csv(p, "lable")
    with pytest.raises(DataError, match=r"data.target must be the name of the column to predict. Got None"):
        read_csv(p, None)


def test_non_numeric_feature_message(tmp_path):
    p = _write(tmp_path, "x,color,y\n1,red,0\n2,blue,1\n")
    with pytest.raises(DataError, match=r"feature column 'color' must be numeric. Got 'red'. "
                                        r"Found at line 2; drop the column or encode it"):
        read_csv(p, "y")


def test_missing_value_message(tmp_path):
    p = _write(tmp_path, "x,z,y\n1,2,0\n3,,1\n4,5,NA\n")
    with pytest.raises(DataError, match=r"column 'z' must be filled in every row. Got ''. Row 2 \(line 3\)"):
        read_csv(p, "y")


def test_path_errors_through_registry():
    source = DATASETS.get("csv")
    assert source.kind == "tabular"
    with pytest.raises(ConfigError, match="data.path must be the path of a CSV file"):
        source.load(DataConfig(name="csv"), 0)
    with pytest.raises(DataError, match="data.path must be an existing CSV file. Got 'nope/missing.csv'"):
        source.load(DataConfig(name="csv", path="nope/missing.csv", target="y"), 0)
    assert source.describe(DataConfig(name="csv", path="nope/missing.csv"))["available"] is False


def test_ragged_row_and_semicolons(tmp_path):
    with pytest.raises(DataError, match="line 3 of data.csv must be 3 comma-separated values"):
        read_csv(_write(tmp_path, "a,b,y\n1,2,0\n1,2\n"), "y")
    raw, _ = read_csv(_write(tmp_path, "a;b;y\n1.5;2;0\n3;4;1\n", "semi.csv"), "y")
    assert raw.train.x.tolist() == [[1.5, 2.0], [3.0, 4.0]]


def test_load_data_standardises_with_train_statistics_only(tmp_path):
    p = _write(tmp_path, _table(300, lambda i: i % 2))
    cfg = DataConfig(name="csv", path=str(p), target="label", val_fraction=0.2, test_fraction=0.2)
    bundle = load_data(cfg, seed=0)
    assert DATASETS.get("csv").describe(cfg) == {"available": True, "location": str(p), "sizes": {"rows": 300}}
    assert len(bundle.train) + len(bundle.val) == 240 and bundle.test.opened == 0
    assert torch.allclose(bundle.train.x.mean(0), torch.zeros(2), atol=1e-5)
    assert torch.allclose(bundle.train.x.std(0, correction=0), torch.ones(2), atol=1e-4)

    std = Standardizer.from_state(bundle.stats["normalize"])
    train_raw = std.inverse(bundle.train.x)
    all_raw, _ = read_csv(p, "label")
    assert torch.allclose(std.mean_, train_raw.mean(0), atol=1e-3)  # fitted on train ...
    assert not torch.allclose(std.mean_, all_raw.train.x.mean(0), atol=1e-3)  # ... not on all rows

    test = bundle.test.open()
    assert len(test) == 60 and bundle.test.opened == 1
    assert bundle.test.open().x.mean(0).abs().max() > 1e-3  # test is not re-centred on itself
    # Test rows were transformed with the training statistics: undoing them gives raw CSV rows.
    raw_rows = {tuple(np.round(r, 3)) for r in all_raw.train.x.double().numpy()}
    assert all(tuple(np.round(r, 3)) in raw_rows for r in std.inverse(test.x).double().numpy())
