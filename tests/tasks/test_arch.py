"""grukit.tasks.arch: the four recurrent kinds, their parameter counts, matching."""
import warnings

import pytest
import torch

import grukit
from grukit.tasks.arch import KINDS, TorchGRU, count_parameters, make_rnn, matched_hidden, top_state

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
