"""grukit gradients: g(k) = mean ||dL/dx_{T-k}||, its vanishing for the tanh-RNN, the command."""
import json

import numpy as np
import torch

from grukit.cli import main
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
    from grukit.tasks import synthetic as S  # found by a review: the report said 1/6 whatever the data, and not
    # what ran

    y = S.make_data("adding", 500, 10, 20_000)[1]  # (500,) the validation targets
    text = (out / "report.md").read_text()
    assert f"val MSE of predicting 1 = {((y.double() - 1) ** 2).mean().item():.3f} (1/6 in expectation)" in text
    assert "T = 10; each network trained 1 epochs x 2 steps of batch" in text


def test_length_below_two_names_the_true_bound(tmp_path, capsys):
    for length in ("1", "0"):
        assert main(["gradients", "--length", length, "--out", str(tmp_path / "bad")]) == 2
        err = capsys.readouterr().err
        assert f"--length: expected an integer >= 2, got {length}" in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / "bad").exists()
