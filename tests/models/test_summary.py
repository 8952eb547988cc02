"""The layer table (models.summary): shapes from one hooked forward pass, parameters counted once where they live."""
from __future__ import annotations

import torch
from torch import nn

from trainlab.models import build_model, count_parameters
from trainlab.models.summary import LayerRow, ModelTable, model_table

from tests.models.conftest import make_model_config


def test_the_classic_mlp_has_each_layer_with_its_output_and_weights_and_biases():
    model = build_model(make_model_config(name="mlp", hidden=[256], activation="relu"), (1, 28, 28), 10)
    table = model_table(model, (1, 28, 28))
    assert [(r.name, r.kind, r.output, r.params) for r in table.rows] == [
        ("flatten", "Flatten", "(784,)", 0), ("layers.0.linear", "Linear", "(256,)", 784 * 256 + 256),
        ("layers.0.act", "ReLU", "(256,)", 0), ("head", "Linear", "(10,)", 256 * 10 + 10)]
    assert table.total == table.trainable == 203_530 == count_parameters(model)
    assert str(table).splitlines()[-1] == "input (1, 28, 28) · 203,530 parameters"
    assert "layers.0.linear  Linear   (256,)     200,960" in str(table)


def test_a_cnn_shows_each_shape_and_leaves_its_modes_running_statistics_and_gradients_alone():
    model = build_model(make_model_config(name="cnn", channels=[4, 8], batchnorm=True, dropout=0.5, hidden=[16]),
                        (3, 12, 12), 5)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    table = model_table(model, (3, 12, 12))
    shapes = {r.name: r.output for r in table.rows}
    assert shapes["features.0.conv"] == "(4, 12, 12)" and shapes["features.0.pool"] == "(4, 6, 6)"
    assert shapes["features.1.pool"] == "(8, 3, 3)" and shapes["flatten"] == "(72,)" and shapes["head"] == "(5,)"
    assert {r.name: r.params for r in table.rows}["features.0.norm"] == 2 * 4  # BatchNorm's weight and bias
    assert table.total == count_parameters(model)
    assert all(m.training for m in model.modules())  # train mode given back
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # running stats untouched
    assert all(p.grad is None for p in model.parameters())


class Shared(nn.Module):
    """One layer used twice, a bare parameter at the top, a frozen layer, one never called, a tuple output."""

    def __init__(self) -> None:
        super().__init__()
        self.twice = nn.Linear(4, 4)
        self.scale = nn.Parameter(torch.ones(4))
        self.frozen = nn.Linear(4, 2).requires_grad_(False)
        self.unused = nn.Linear(3, 3)
        self.tied = self.twice  # the same module under a second name: its parameters are counted once

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.twice(self.twice(x)) * self.scale
        return self.frozen(h), h


def test_shared_frozen_unused_and_bare_parameters_are_each_counted_once_where_they_live():
    table = model_table(Shared(), (4,))
    rows = {r.name: r for r in table.rows}
    assert rows["twice"] == LayerRow("twice", "Linear", "(4,)", 20, 20, calls=2)
    assert rows["frozen"] == LayerRow("frozen", "Linear", "(2,)", 10, 0)
    assert rows["Shared"] == LayerRow("Shared", "Shared", "(2,), (4,)", 4, 4)  # the model itself: its bare parameter
    assert rows["unused"] == LayerRow("unused", "Linear", "", 12, 12, calls=0)
    assert [r.name for r in table.rows][-1] == "unused"  # after the ones the forward pass called, in call order
    assert (table.total, table.trainable) == (46, 36)
    text = str(table)
    assert "twice (×2)" in text and "not called" in text and text.endswith("46 parameters (36 trainable, 10 frozen)")


def test_the_table_goes_through_json_unchanged():
    table = model_table(Shared(), (4,))
    assert ModelTable.from_json(table.as_json()) == table
