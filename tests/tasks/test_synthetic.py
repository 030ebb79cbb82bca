"""grukit.tasks.synthetic: adding problem and copy memory data, baselines, model."""
import math

import pytest
import torch

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
