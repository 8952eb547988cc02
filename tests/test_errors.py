"""The error line's pieces: a value shown on one short line, whatever it is."""
import numpy as np
import torch

from trainlab.errors import SHOWN_CHARS, problem, shown


def test_a_value_is_shown_on_one_short_line():
    assert shown(torch.randn(300, 4)) == "a tensor of shape (300, 4)"  # its repr: 300 lines of numbers
    assert shown(np.zeros((30, 3))) == "a NumPy array of shape (30, 3)"
    assert shown((torch.zeros(5, 2), torch.zeros(5))) == "(a tensor of shape (5, 2), a tensor of shape (5,))"
    assert shown(torch.tensor(0.1)) == "tensor(0.1000)" and shown(np.array([1, 2])) == "array([1, 2])"  # small: as is
    assert shown("adam") == "'adam'" and shown({"a": 1}) == "{'a': 1}" and shown(3) == "3"
    long = shown("x" * 500)
    assert len(long) == SHOWN_CHARS and long.endswith("…")
    assert "\n" not in shown({"a": torch.randn(50, 50)})  # a many-line repr inside anything: one line
    line = problem("val", "a fraction or (X, y)", (torch.zeros(9, 4), torch.zeros(9)), "Pass val=(X_val, y_val)")
    assert line == ("val must be a fraction or (X, y). Got (a tensor of shape (9, 4), a tensor of shape (9,)). "
                    "Pass val=(X_val, y_val).")
