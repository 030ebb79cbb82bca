"""grukit.tasks.synthetic: adding problem and copy memory data, baselines, model."""
import math

import pytest
import torch
from torch import nn

from grukit.tasks import synthetic as S
from grukit.train import TrainConfig, fit


def test_adding_problem_marks_one_step_in_each_half():
    x, y = S.adding_problem(200, 40, torch.Generator().manual_seed(0))
    m = x[..., 1]
    assert x.shape == (200, 40, 2) and ((x[..., 0] >= 0) & (x[..., 0] < 1)).all()
    assert (m[:, :20].sum(1) == 1).all() and (m[:, 20:].sum(1) == 1).all()
    torch.testing.assert_close(y, (x[..., 0] * m).sum(1))


def test_adding_trivial_baseline_is_the_variance_of_y():
    _, y = S.adding_problem(200_000, 10, torch.Generator().manual_seed(1))
    assert ((y - 1.0) ** 2).mean().item() == pytest.approx(S.trivial_loss("adding", 10), rel=0.02)


def test_copy_memory_layout():
    x, y = S.copy_memory(5, 30, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (5, 50)
    assert ((x[:, :10] >= 1) & (x[:, :10] <= 8)).all() and (x[:, 39] == 9).all()
    assert (x[:, 10:39] == 0).all() and (x[:, 40:] == 0).all()
    torch.testing.assert_close(y[:, -10:], x[:, :10])
    assert (y[:, :40] == 0).all()


def test_copy_trivial_baseline_is_the_loss_of_the_memoryless_predictor():
    x, y = S.copy_memory(50, 30, torch.Generator().manual_seed(0))
    logits = torch.full((50, 50, 10), -1e4)
    logits[:, :40, 0] = 0.0  # blank, certain
    logits[:, 40:, 1:9] = 0.0  # uniform over the 8 symbols
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten()).item()
    assert loss == pytest.approx(S.trivial_loss("copy", 30), rel=1e-6)
    assert S.trivial_loss("copy", 30) == pytest.approx(10 * math.log(8) / 50)


def test_bad_lengths_are_refused():
    with pytest.raises(ValueError, match="T"):
        S.adding_problem(2, 1)
    with pytest.raises(ValueError, match="T"):
        S.copy_memory(2, 0)
    with pytest.raises(ValueError, match="task"):
        S.SyntheticModel("sorting", 4)


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn", "torch-gru"])
def test_model_shapes_and_evaluate(cell):
    adding = S.SyntheticModel("adding", 6, cell=cell)
    data = S.make_data("adding", 10, 12, seed=0)
    assert adding(data[0]).shape == (10,)
    assert set(S.evaluate(adding, data)) == {"val_loss"}
    copy = S.SyntheticModel("copy", 6, cell=cell)
    data = S.make_data("copy", 10, 5, seed=0)
    assert copy(data[0]).shape == (10, 25, 10)
    metrics = S.evaluate(copy, data)
    assert 0.0 <= metrics["val_accuracy"] <= 1.0 and metrics["val_loss"] > 0


def test_gru_learns_a_short_adding_problem():
    torch.manual_seed(0)
    train = S.make_data("adding", 1200, 6, seed=1)
    val = S.make_data("adding", 300, 6, seed=2)
    model = S.SyntheticModel("adding", 16)
    result = fit(model, torch.utils.data.TensorDataset(*train), val, step_loss=S.step_loss, evaluate=S.evaluate,
                 config=TrainConfig(epochs=3, lr=2e-2, batch_size=16, progress=False, weight_decay=0.0), out=None)
    assert result.best["val_loss"] < 0.2 * S.trivial_loss("adding", 6)


class CopyOracle(nn.Module):
    """Predicts the copy task exactly: blank, then the first 10 input symbols."""

    def __init__(self):
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        logits = torch.full((*x.shape, S.COPY_SYMBOLS), -10.0)  # (N, T+20, 10)
        logits[..., 0] = 10.0
        logits[:, -S.COPY_LENGTH:] = 20.0 * nn.functional.one_hot(x[:, :S.COPY_LENGTH], S.COPY_SYMBOLS) - 10.0
        return logits


def test_copy_memoryless_loss_reads_the_blank_length_off_the_targets():
    """A mutation audit: taking T + 20 for T in `memoryless_loss("copy", y)` passed every test."""
    _, y = S.copy_memory(4, 30, torch.Generator().manual_seed(0))
    assert S.memoryless_loss("copy", y) == pytest.approx(10 * math.log(8) / 50)


def test_evaluate_weights_each_batch_by_its_size():
    """A mutation audit: summing per-batch mean losses without their sizes passed every test."""
    torch.manual_seed(0)
    model = S.SyntheticModel("adding", 4).eval()
    x, y = S.make_data("adding", 10, 6, seed=0)
    with torch.no_grad():
        want = nn.functional.mse_loss(model(x), y).item()
    for batch_size in (3, 500):
        assert S.evaluate(model, (x, y), batch_size=batch_size)["val_loss"] == pytest.approx(want, rel=1e-5)


def test_copy_accuracy_is_scored_on_the_ten_recalled_steps():
    """A mutation audit: scoring the first 10 steps, or dividing the batch mean by n again, passed every test
    (an untrained model's accuracy only had to lie in [0, 1])."""
    x, y = S.make_data("copy", 7, 5, seed=0)
    metrics = S.evaluate(CopyOracle(), (x, y), batch_size=3)
    assert metrics["val_accuracy"] == 1.0 and metrics["val_loss"] < 1e-6
    y = y.clone()
    y[:, -1] = (y[:, -1] % 8) + 1  # the last recalled symbol, now wrong for the oracle: 9 of 10 right
    assert S.evaluate(CopyOracle(), (x, y))["val_accuracy"] == pytest.approx(0.9)


def test_each_half_can_hold_its_mark_at_every_step():
    """A mutation audit: a second mark that could never fall on the first step of the second half passed every
    test (they only counted one mark per half)."""
    x, _ = S.adding_problem(2000, 6, torch.Generator().manual_seed(0))
    first, second = x[:, :3, 1].argmax(1), x[:, 3:, 1].argmax(1) + 3  # (2000,) the marked step of each half
    assert set(first.tolist()) == {0, 1, 2} and set(second.tolist()) == {3, 4, 5}
