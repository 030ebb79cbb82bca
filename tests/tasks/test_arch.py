"""grukit.tasks.arch: the four recurrent kinds, their parameter counts, matching."""
import warnings

import pytest
import torch

import grukit
from grukit.errors import UsageError
from grukit.tasks import common
from grukit.tasks.arch import (
    KINDS,
    TorchGRU,
    count_parameters,
    make_rnn,
    matched_hidden,
    matched_sizes,
    rnn_gates,
    top_state,
)

GATES = {"gru": 3, "torch-gru": 3, "lstm": 4, "rnn": 1}


@pytest.mark.parametrize("kind", KINDS)
def test_parameter_count_is_the_closed_form(kind):
    I, H = 7, 11
    assert count_parameters(make_rnn(kind, I, H)) == GATES[kind] * (H * I + H * H + 2 * H)


def test_kinds_are_the_right_classes():
    assert isinstance(make_rnn("gru", 3, 4), grukit.GRU)
    assert isinstance(make_rnn("lstm", 3, 4), grukit.LSTM)
    assert isinstance(make_rnn("rnn", 3, 4), grukit.RNN)
    assert isinstance(make_rnn("torch-gru", 3, 4).rnn, torch.nn.GRU)
    with pytest.raises(ValueError, match="cell"):
        make_rnn("transformer", 3, 4)


@pytest.mark.parametrize("kind", KINDS)
def test_dropout_is_kept_for_stacks_and_dropped_quietly_for_one_layer(kind):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # grukit.GRU and torch's own classes warn of dropout with one layer
        one, two = make_rnn(kind, 3, 4, dropout=0.3), make_rnn(kind, 3, 4, num_layers=2, dropout=0.3)
    inner = lambda m: getattr(m, "rnn", m)  # noqa: E731  TorchGRU and the baselines wrap a torch module
    assert (inner(one).dropout, inner(two).dropout) == (0.0, 0.3)


@pytest.mark.parametrize("kind", KINDS)
def test_top_state_is_the_state_at_each_sequences_last_step(kind):
    torch.manual_seed(0)
    rnn = make_rnn(kind, 3, 5, batch_first=True)
    x = torch.randn(2, 6, 3)
    _, h_n = rnn(x, lengths=torch.tensor([6, 4]))
    _, h_short = rnn(x[1:, :4])
    torch.testing.assert_close(top_state(h_n)[1], top_state(h_short)[0])


def test_torch_gru_wrapper_agrees_with_torch():
    torch.manual_seed(0)
    wrapper = TorchGRU(3, 4)
    x = torch.randn(5, 2, 3)
    expected, h = wrapper.rnn(x)
    output, h_n = wrapper(x)
    torch.testing.assert_close(output, expected)
    torch.testing.assert_close(h_n, h)


def test_matched_hidden_is_nearest_count():
    count = lambda kind, H: GATES[kind] * (H * 88 + H * H + 2 * H) + 89 * H + 88  # noqa: E731
    target = count("gru", 46)
    for kind in ("lstm", "rnn"):
        H = matched_hidden(kind, target, count)
        best = min(range(1, 400), key=lambda h: abs(count(kind, h) - target))
        assert H == best
    target = count("gru", 700)  # found by a review: the tanh-RNN was capped at 1024 units, 71% of these
    H = matched_hidden("rnn", target, count)
    assert H > 1024 and H == min(range(1, 4000), key=lambda h: abs(count("rnn", h) - target))
    assert matched_hidden("rnn", target, count, high=8) == H  # searched up from any start


def test_rnn_gates_are_the_last_layers_forward_z_and_r():
    """A mutation audit: rnn_gates returning the first layer's gates, the reverse direction's, or r and z swapped
    survived. The reference runs the stack's two layers as separate one-layer GRUs."""
    torch.manual_seed(0)
    stack = grukit.GRU(3, 5, num_layers=2, batch_first=True, bidirectional=True)
    first = grukit.GRU(3, 5, batch_first=True, bidirectional=True)
    top = grukit.GRU(10, 5, batch_first=True)
    state = stack.state_dict()
    first.load_state_dict({k: v for k, v in state.items() if "_l0" in k})
    top.load_state_dict({k.replace("_l1", "_l0"): v for k, v in state.items() if k.endswith("_l1")})
    x = torch.randn(6, 3)  # (T, I)
    with torch.no_grad():
        below, _ = first(x[None])  # (1, T, 2H)
        _, _, g = top(below, return_gates=True)
    z, r = rnn_gates(stack, x)
    assert z.shape == r.shape == (6, 5)
    torch.testing.assert_close(z, g.z[0, 0, :, 0])
    torch.testing.assert_close(r, g.r[0, 0, :, 0])
    assert not torch.allclose(z, r)
    assert rnn_gates(make_rnn("lstm", 3, 5, batch_first=True), x) is None


def test_top_state_of_a_bidirectional_stack_is_its_last_layers_two_directions():
    """A mutation audit: top_state taking the first `directions` rows of h_n (the bottom layer) survived; for a
    2-layer bidirectional network it must be the forward state at the last step and the reverse one at the first."""
    torch.manual_seed(0)
    for kind in ("gru", "lstm"):
        rnn = make_rnn(kind, 3, 4, num_layers=2, bidirectional=True)
        output, h_n = rnn(torch.randn(7, 2, 3))  # (T, N, 2H)
        state = top_state(h_n, directions=2)  # (N, 2H)
        torch.testing.assert_close(state[:, :4], output[-1, :, :4])
        torch.testing.assert_close(state[:, 4:], output[0, :, 4:])


def test_count_parameters_leaves_frozen_parameters_out():
    """A mutation audit: dropping `if p.requires_grad` in count_parameters survived; a frozen weight is not
    trainable and must not be counted."""
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))  # 16 + 10 parameters
    assert count_parameters(model) == 26
    model[0].weight.requires_grad_(False)
    assert count_parameters(model) == 14


def test_matched_hidden_takes_the_smaller_size_on_a_tie():
    """A mutation audit: `<=` → `<` in matched_hidden's last comparison survived; when H−1 and H are equally
    near the target the smaller one is taken."""
    count = lambda kind, H: 10 * H  # noqa: E731
    assert matched_hidden("rnn", 15, count) == 1
    assert matched_hidden("rnn", 35, count) == 3
    assert matched_hidden("rnn", 36, count) == 4


def test_matched_sizes_refuses_a_gru_too_large_for_memory_naming_hidden(monkeypatch):
    """A mutation audit: removing matched_sizes' check_trainable call survived; a --hidden whose GRU cannot train
    in memory must be a UsageError naming --hidden before any model is sized."""
    build = lambda kind, H: make_rnn(kind, 4, H)  # noqa: E731
    assert matched_sizes(("gru", "torch-gru", "rnn"), 8, build) == {"gru": 8, "torch-gru": 8, "rnn": 16}
    monkeypatch.setattr(common, "machine_memory", lambda: 1000)
    with pytest.raises(UsageError, match=r"^--hidden: .* parameters need"):
        matched_sizes(("gru", "lstm"), 8, build)
