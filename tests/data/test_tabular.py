from pathlib import Path

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


# --- data.test_path: an official test split from a second CSV ------------------------------------------


def _split_files(tmp_path, n_train: int = 200, n_test: int = 50):
    """train.csv and test.csv with the same columns; test.csv's columns in another order."""
    rng = np.random.default_rng(1)
    a, b = rng.normal(10, 3, n_train + n_test), rng.uniform(-100, 100, n_train + n_test)
    label = (a > 10).astype(int) * 2 + 3  # classes "3" and "5", ids 0 and 1
    train = ["a,b,label"] + [f"{a[i]:.5f},{b[i]:.5f},{label[i]}" for i in range(n_train)]
    test = ["label,b,a"] + [f"{label[i]},{b[i]:.5f},{a[i]:.5f}" for i in range(n_train, n_train + n_test)]
    tr, te = _write(tmp_path, "\n".join(train) + "\n", "train.csv"), _write(tmp_path, "\n".join(test) + "\n", "test.csv")
    return tr, te, np.stack([a, b], 1)[n_train:], label[n_train:]


def test_test_path_is_the_test_split_standardised_with_train_statistics(tmp_path):
    tr, te, test_x, test_label = _split_files(tmp_path)
    cfg = DataConfig(name="csv", path=str(tr), test_path=str(te), target="label", val_fraction=0.2)
    bundle = load_data(cfg, seed=0)
    assert len(bundle.train) + len(bundle.val) == 200  # nothing carved off for test (test_fraction ignored)
    test = bundle.test.open()
    assert len(test) == 50 and bundle.class_names == ["3", "5"]
    assert test.y.tolist() == [int(v == 5) for v in test_label]  # labels mapped onto the training classes
    std = Standardizer.from_state(bundle.stats["normalize"])
    # columns reordered to the training file's (a, b), scaled with the training split's statistics
    assert torch.allclose(std.inverse(test.x), torch.tensor(test_x, dtype=torch.float32), atol=1e-3)
    assert not torch.allclose(test.x.mean(0), torch.zeros(2), atol=1e-3)  # not re-centred on itself


def test_test_path_regression(tmp_path):
    _write(tmp_path, "x,y\n" + "".join(f"{i},{i * 0.5}\n" for i in range(40)), "tr.csv")
    _write(tmp_path, "y,x\n" + "".join(f"{i * 0.5 + 0.25},{i}\n" for i in range(5)), "te.csv")
    cfg = DataConfig(name="csv", path=str(tmp_path / "tr.csv"), test_path=str(tmp_path / "te.csv"), target="y")
    test = load_data(cfg, seed=0).test.open()
    assert test.y.shape == (5, 1) and test.y[:, 0].tolist() == [0.25, 0.75, 1.25, 1.75, 2.25]


def test_test_path_missing_file_is_refused_at_load(tmp_path):
    tr, _, _, _ = _split_files(tmp_path)
    cfg = DataConfig(name="csv", path=str(tr), test_path=str(tmp_path / "nope.csv"), target="label")
    with pytest.raises(DataError, match=r"^data.test_path must be an existing CSV file. Got '.*nope.csv'. Check the "
                                        r"path and file name, or leave it unset to carve data.test_fraction off "
                                        r"data.path.$"):
        load_data(cfg, seed=0)


def test_test_path_with_other_columns_or_classes_is_refused(tmp_path):
    tr, _, _, _ = _split_files(tmp_path)
    bad = _write(tmp_path, "a;c;label\n1;2;3\n", "bad.csv")
    cfg = DataConfig(name="csv", path=str(tr), test_path=str(bad), target="label")
    # the header is read when the data load (before training); a wrong one would otherwise end a trained run
    with pytest.raises(DataError, match=r"^data.test_path must be a CSV with the columns of data.path \(a, b, label\). "
                                        r"Got 'bad.csv: no b; extra c'. Give both files the same header.$"):
        load_data(cfg, seed=0)
    empty = _write(tmp_path, "", "empty.csv")
    with pytest.raises(DataError, match=r"^data.test_path must be a CSV file with a header row"):
        load_data(DataConfig(name="csv", path=str(tr), test_path=str(empty), target="label"), seed=0)
    unknown = _write(tmp_path, "a,b,label\n1,2,3\n1,2,7\n", "unknown.csv")
    bundle = load_data(DataConfig(name="csv", path=str(tr), test_path=str(unknown), target="label"), seed=0)
    with pytest.raises(DataError, match=r"^target column 'label' of data.test_path must be one of the classes of "
                                        r"data.path \(3, 5\). Got '7'. Found at line 3; drop those rows"):
        bundle.test.open()
    text = _write(tmp_path, "a,b,label\n1,x,3\n", "text.csv")
    bundle = load_data(DataConfig(name="csv", path=str(tr), test_path=str(text), target="label"), seed=0)
    with pytest.raises(DataError, match=r"feature column 'b' must be numeric. Got 'x'"):
        bundle.test.open()


def test_test_path_is_not_read_before_the_test_split_is_opened(tmp_path, monkeypatch):
    from trainlab.data import tabular

    tr, te, _, _ = _split_files(tmp_path)
    read = []
    real = tabular._read_rows
    monkeypatch.setattr(tabular, "_read_rows", lambda path, *a: (read.append(Path(path).name), real(path, *a))[1])
    bundle = load_data(DataConfig(name="csv", path=str(tr), test_path=str(te), target="label"), seed=0)
    assert read == ["train.csv"] and bundle.test.opened == 0
    te.write_text("a,b,label\n1,2,5\n3,4,3\n")  # what the file holds when it is opened is what is scored
    test = bundle.test.open()
    assert read == ["train.csv", "test.csv"] and len(test) == 2 and test.y.tolist() == [1, 0]
