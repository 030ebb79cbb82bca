"""grukit gradients: g(k) = mean ||dL/dx_{T-k}||, its vanishing for the tanh-RNN, the command."""
import csv
import json

import numpy as np
import pytest
import torch

from grukit.cli import main
from grukit.tasks import synthetic as S
from grukit.tasks.gradients import gradient_by_lag
from grukit.tasks.synthetic import SyntheticModel, adding_problem, loss


def test_one_backward_equals_per_sequence_gradients():
    torch.manual_seed(0)
    model = SyntheticModel("adding", 6, cell="lstm")
    x, y = adding_problem(4, 9, torch.Generator().manual_seed(1))
    expected = []
    for i in range(4):
        xi = x[i:i + 1].clone().requires_grad_(True)
        (loss(model, xi, y[i:i + 1]),)[0].backward()
        expected.append(xi.grad[0].norm(dim=-1))  # (T,)
    expected = torch.stack(expected).mean(0).flip(0).double().numpy()
    np.testing.assert_allclose(gradient_by_lag(model, x, y), expected, rtol=1e-5, atol=1e-9)


def test_tanh_rnn_gradient_vanishes_and_a_closed_update_gate_carries_it():
    x, y = adding_problem(32, 60, torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    rnn = gradient_by_lag(SyntheticModel("adding", 64, cell="rnn"), x, y)
    assert rnn[30] / rnn[0] < 1e-4 and rnn[-1] / rnn[0] < 1e-8
    torch.manual_seed(0)
    model = SyntheticModel("adding", 64, cell="gru")
    with torch.no_grad():
        model.rnn.bias_x_l0[64:128] = -6.0  # z ≈ 0.0025: h_t ≈ h_{t-1}, the path that keeps memory
    gru = gradient_by_lag(model, x, y)
    assert gru[-1] / gru[0] > 0.1


def test_command_on_a_tiny_slice(tmp_path):
    out = tmp_path / "run"
    argv = ["gradients", "--length", "10", "--hidden", "8", "--steps", "2", "--probe", "4", "--epochs", "1",
            "--out", str(out)]
    assert main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert [r["parameters"] for r in metrics["rows"]][0] == 3 * (8 * 2 + 64 + 16) + 9
    for kind in ("gru", "lstm", "rnn"):
        assert len(metrics["curves"][kind]["init"]) == len(metrics["curves"][kind]["trained"]) == 10
    assert (out / "gradients.png").is_file() and (out / "report.md").is_file()
    # what ran

    y = S.make_data("adding", 500, 10, 20_000)[1]  # (500,) the validation targets
    text = (out / "report.md").read_text()
    assert f"val MSE of predicting 1 = {((y.double() - 1) ** 2).mean().item():.3f} (1/6 in expectation)" in text
    assert "T = 10; each network trained 1 epoch x 2 steps of batch" in text


def test_length_below_two_names_the_true_bound(tmp_path, capsys):
    for length in ("1", "0"):
        assert main(["gradients", "--length", length, "--out", str(tmp_path / "bad")]) == 2
        err = capsys.readouterr().err
        assert f"--length: expected an integer >= 2, got {length}" in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / "bad").exists()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gradients") / "run"
    assert main(["gradients", "--length", "10", "--hidden", "8", "--steps", "2", "--probe", "4", "--epochs", "2",
                 "--lr", "0.05", "--out", str(out)]) == 0
    return out, json.loads((out / "metrics.json").read_text())


def test_the_table_reads_the_trained_and_initial_curves(tiny_run):
    """A mutation audit: the trained column repeating the initial ratio passed every test."""
    _, metrics = tiny_run
    for row, kind in zip(metrics["rows"], ("gru", "lstm", "rnn")):
        init, trained = (np.array(metrics["curves"][kind][s]) for s in ("init", "trained"))
        assert row["init g(T-1)/g(0)"] == pytest.approx(init[-1] / init[0], rel=1e-12)
        assert row["trained g(T-1)/g(0)"] == pytest.approx(trained[-1] / trained[0], rel=1e-12)
        assert not np.allclose(init, trained)


def test_each_network_starts_from_the_seed_and_is_probed_on_its_own_sequences(tiny_run):
    """A mutation audit: probing on the validation sequences (seed 20,000, not 40,000), and building a network
    without reseeding first, passed every test."""
    _, metrics = tiny_run
    x, y = S.make_data("adding", 4, 10, 40_000)  # (4, 10, 2), (4,)
    for row, kind in zip(metrics["rows"], ("gru", "lstm", "rnn")):
        torch.manual_seed(0)
        model = S.SyntheticModel("adding", row["hidden"], cell=kind)
        np.testing.assert_allclose(metrics["curves"][kind]["init"], gradient_by_lag(model, x, y), rtol=1e-5)


def _val_losses(out, kind):
    with open(out / kind / "metrics.csv", newline="") as f:
        return [float(r["val_loss"]) for r in csv.DictReader(f)]


def test_the_validation_mse_is_the_best_epochs(tiny_run):
    """A mutation audit: reporting the last epoch's validation MSE instead of the best's passed every test."""
    out, metrics = tiny_run
    losses = {kind: _val_losses(out, kind) for kind in ("gru", "lstm", "rnn")}
    for row, kind in zip(metrics["rows"], ("gru", "lstm", "rnn")):
        assert len(losses[kind]) == 2 and row["val MSE"] == pytest.approx(min(losses[kind]), rel=1e-9)
    assert any(v[1] > v[0] for v in losses.values())  # here the best epoch is not always the last


def test_a_probe_of_zero_sequences_is_refused(tmp_path, capsys):
    """A mutation audit: dropping --probe from the checked options passed every test."""
    assert main(["gradients", "--probe", "0", "--length", "4", "--hidden", "2", "--steps", "1", "--epochs", "1",
                 "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert "--probe: expected an integer >= 1, got 0" in err and not (tmp_path / "bad").exists()
