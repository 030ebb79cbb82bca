"""grukit.plots: the curves drawn, and that every figure is written at its size."""
import numpy as np
from PIL import Image

from grukit import plots


def test_an_ensembles_summed_train_loss_is_drawn_per_member_and_other_keys_as_logged():
    history = [{"epoch": 1, "train_loss": 5.0, "val_loss": 0.9}, {"epoch": 2, "train_loss": 2.5}]
    assert plots.curve(history, "train_loss", members=5) == ("train_loss / 5 (member mean)", [1.0, 0.5])
    assert plots.curve(history, "train_loss") == ("train_loss", [5.0, 2.5])
    label, values = plots.curve(history, "val_loss", members=5)
    assert label == "val_loss" and values[0] == 0.9 and np.isnan(values[1])


def test_loss_curves_writes_a_png_of_the_standard_size(tmp_path):
    history = [{"epoch": e, "train_loss": 5.0 / e, "val_loss": 1.0 / e} for e in (1, 2, 3)]
    path = plots.loss_curves(history, tmp_path / "loss.png", members=5)
    assert Image.open(path).size == plots.SIZE
