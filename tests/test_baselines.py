"""LSTM and RNN: grukit.GRU's interface over torch's modules."""
import pytest
import torch

import grukit


@pytest.mark.parametrize("cls", (grukit.LSTM, grukit.RNN))
@pytest.mark.parametrize("bidirectional", (False, True))
def test_lengths_batch_first_and_shapes(cls, bidirectional):
    torch.manual_seed(0)
    model = cls(3, 4, 2, batch_first=True, bidirectional=bidirectional, dtype=torch.float64)
    D = 2 if bidirectional else 1
    x = torch.randn(3, 6, 3, dtype=torch.float64)  # (N, T, I)
    out, state = model(x, lengths=[6, 2, 4])
    h_n = state[0] if cls is grukit.LSTM else state
    assert out.shape == (3, 6, D * 4) and h_n.shape == (2 * D, 3, 4)
    assert out[1, 2:].abs().max() == 0  # padding gives zeros
    alone, alone_state = model(x[1:2, :2])  # the short sequence on its own
    alone_hn = alone_state[0] if cls is grukit.LSTM else alone_state
    assert (out[1:2, :2] - alone).abs().max() <= 1e-12
    assert (h_n[:, 1:2] - alone_hn).abs().max() <= 1e-12


def test_lstm_takes_h0_pair_and_unbatched():
    lstm = grukit.LSTM(3, 4)
    h0 = (torch.zeros(1, 4), torch.ones(1, 4))
    out, (h_n, c_n) = lstm(torch.randn(5, 3), h0)
    assert out.shape == (5, 4) and h_n.shape == (1, 4) and c_n.shape == (1, 4)
    with pytest.raises(TypeError, match="h0: expected None or a pair"):
        lstm(torch.randn(5, 3), torch.zeros(1, 4))
    x = torch.randn(4, 2, 3)  # found by a review: a bad c0 was blamed on h0
    with pytest.raises(ValueError, match=r"^c0: expected shape \(1, 2, 4\)"):
        lstm(x, (torch.zeros(1, 2, 4), torch.zeros(1, 5, 4)))
    with pytest.raises(TypeError, match="^c0: expected dtype torch.float32"):
        lstm(x, (torch.zeros(1, 2, 4), torch.zeros(1, 2, 4, dtype=torch.float64)))


@pytest.mark.parametrize("cls", (grukit.LSTM, grukit.RNN))
@pytest.mark.parametrize("batch_first", (False, True))
def test_a_given_initial_state_is_torchs(cls, batch_first):
    """Outputs and final states from non-zero initial states equal torch's own module's, given the same weights.
    Found by a review: only shapes were checked, so an LSTM that swapped h0 and c0, or an RNN that dropped h0,
    passed."""
    torch.manual_seed(0)
    ours = cls(3, 4, 2, batch_first=batch_first, bidirectional=True, dtype=torch.float64)
    theirs = ours.torch_class(3, 4, 2, batch_first=batch_first, bidirectional=True, dtype=torch.float64)
    theirs.load_state_dict(ours.rnn.state_dict())
    x = torch.randn(5, 3, 3, dtype=torch.float64)  # (T, N, I), or (N, T, I) with batch_first
    h0 = torch.randn(4, 3 if not batch_first else 5, 4, dtype=torch.float64)  # (L·D, N, H)
    state = (h0, torch.randn_like(h0)) if cls is grukit.LSTM else h0  # c0 unlike h0
    out, got = ours(x, state)
    want_out, want = theirs(x, state)
    assert (out - want_out).abs().max() <= 1e-12
    for a, b in zip(got if cls is grukit.LSTM else (got,), want if cls is grukit.LSTM else (want,)):
        assert (a - b).abs().max() <= 1e-12


def test_baseline_bad_input():
    with pytest.raises(ValueError, match=r"x: expected last dimension \(input_size\) 3, got 2"):
        grukit.RNN(3, 4)(torch.randn(5, 1, 2))
    with pytest.raises(ValueError, match="lengths: expected every value"):
        grukit.RNN(3, 4)(torch.randn(5, 1, 3), lengths=[9])
    with pytest.raises(ValueError, match="dtype: expected a floating-point torch dtype"):
        grukit.LSTM(3, 4, dtype=torch.int64)


def test_parameter_counts_follow_the_architecture():
    I, H = 88, 46
    assert sum(p.numel() for p in grukit.GRU(I, H).parameters()) == 3 * (H * I + H * H + 2 * H)
    assert sum(p.numel() for p in grukit.LSTM(I, H).parameters()) == 4 * (H * I + H * H + 2 * H)
    assert sum(p.numel() for p in grukit.RNN(I, H).parameters()) == H * I + H * H + 2 * H


@pytest.mark.parametrize("cls", [grukit.LSTM, grukit.RNN])
def test_an_empty_batch_with_lengths_gives_torchs_empty_result(cls):
    """N = 0 with lengths: pack_padded_sequence refuses empty tensors, so the batch goes to torch unpacked."""
    rnn = cls(3, 4, bidirectional=True)
    out, _ = rnn(torch.randn(5, 0, 3), lengths=torch.zeros(0, dtype=torch.int64))  # (T, N = 0, I)
    assert out.shape == (5, 0, 8)


@pytest.mark.parametrize("cls", (grukit.LSTM, grukit.RNN))
def test_a_changed_batch_first_is_kept_by_save(cls, tmp_path):
    model = cls(3, 4)
    model.batch_first = 1  # as on torch.nn.LSTM; found by a review: save dropped it
    assert model.batch_first is True and model.config.batch_first is True
    grukit.save(model, tmp_path / "m.safetensors")
    loaded = grukit.load(tmp_path / "m.safetensors")
    x = torch.randn(2, 5, 3)  # (N, T, I)
    torch.testing.assert_close(loaded(x)[0], model(x)[0])
    with pytest.raises(AttributeError, match="^hidden_size: fixed when the module is built"):
        model.hidden_size = 8



@pytest.mark.parametrize("cls", (grukit.LSTM, grukit.RNN))
def test_without_h0_the_state_starts_at_zero_like_torchs(cls):
    """Guards the default initial state: h0 = None means h0 = c0 = 0, as torch's module; the existing checks
    compared the model only with itself there, so a c0 of ones passed."""
    torch.manual_seed(0)
    ours = cls(3, 4, 2, dtype=torch.float64)
    theirs = ours.torch_class(3, 4, 2, dtype=torch.float64)
    theirs.load_state_dict(ours.rnn.state_dict())
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    out, got = ours(x)
    want_out, want = theirs(x)
    assert (out - want_out).abs().max() <= 1e-12
    for a, b in zip(got if cls is grukit.LSTM else (got,), want if cls is grukit.LSTM else (want,)):
        assert (a - b).abs().max() <= 1e-12



@pytest.mark.parametrize("cls", (grukit.LSTM, grukit.RNN))
def test_output_keeps_all_t_steps_when_every_sequence_is_shorter(cls):
    """Guards pad_packed_sequence(total_length=T): output is (T, N, D·H) as the docstring says even when no
    sequence reaches T (the existing test always had one of length T)."""
    model = cls(3, 4)
    out, _ = model(torch.randn(6, 2, 3), lengths=[2, 3])
    assert out.shape == (6, 2, 4)
    assert out[3:].abs().max() == 0 and out[2:, 0].abs().max() == 0



@pytest.mark.parametrize("cls", (grukit.LSTM, grukit.RNN))
def test_dropout_reaches_torchs_module(cls):
    """Guards that `dropout` is passed on: between stacked layers in training, none in eval."""
    torch.manual_seed(0)
    model = cls(3, 8, 2, dropout=0.5)
    assert model.rnn.dropout == 0.5
    x = torch.randn(5, 2, 3)
    model.train()
    assert not torch.equal(model(x)[0], model(x)[0])
    model.eval()
    assert torch.equal(model(x)[0], model(x)[0])
