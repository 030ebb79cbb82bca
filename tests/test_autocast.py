"""grukit._autocast: under torch.autocast every recurrent layer runs in its parameters' dtype, whatever dtype
autocast gave its inputs; outside autocast a dtype that differs from the model's is still refused.

Until this, a Linear before a grukit.GRU under `torch.autocast("cpu", dtype=torch.bfloat16)` made the GRU refuse
x ("x: expected dtype torch.float32 (the model's), got torch.bfloat16"), where torch.nn.GRU runs."""
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

import grukit
from grukit import kernels

LAYERS = {
    "GRU cpu, 2 layers, both directions": lambda: grukit.GRU(4, 5, 2, bidirectional=True, backend="cpu"),
    "GRU fused, reset after": lambda: grukit.GRU(4, 5, reset="after", backend="fused"),
    "GRU eager": lambda: grukit.GRU(4, 5, backend="eager"),
    "LSTM": lambda: grukit.LSTM(4, 5),
    "RNN": lambda: grukit.RNN(4, 5),
}


def _first(output):
    return output[0] if isinstance(output, tuple) else output


@pytest.mark.parametrize("name", LAYERS)
def test_a_layer_under_autocast_runs_in_float32_as_it_would_on_the_cast_input(name):
    if "cpu" in name and not kernels.available("cpu"):
        pytest.skip("grukit cpu kernel could not be built")
    torch.manual_seed(0)
    embed, layer = torch.nn.Linear(3, 4), LAYERS[name]()
    x = torch.randn(6, 2, 3)  # (T, N, I)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = embed(x)  # (T, N, 4) bfloat16
        y.retain_grad()
        output = _first(layer(y))  # (T, N, D·H)
    assert y.dtype == torch.bfloat16 and output.dtype == torch.float32
    leaves = [y, *layer.parameters()]
    grads = torch.autograd.grad(output.square().sum(), leaves)
    assert grads[0].dtype == torch.bfloat16  # the gradient of x in x's dtype
    plain = y.detach().float().requires_grad_()  # (T, N, 4): the same values, outside autocast
    want_output = _first(layer(plain))
    want = torch.autograd.grad(want_output.square().sum(), [plain, *layer.parameters()])
    torch.testing.assert_close(output, want_output, rtol=0, atol=0)
    torch.testing.assert_close(grads[0], want[0].to(torch.bfloat16), rtol=0, atol=0)
    for got, expected in zip(grads[1:], want[1:], strict=True):
        torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_every_input_form_of_the_gru_is_cast_under_autocast():
    """h0 and c0 in the autocast dtype, lengths, a PackedSequence, return_gates, GRU.step and GRUCell."""
    torch.manual_seed(0)
    gru, lstm, cell = grukit.GRU(4, 5), grukit.LSTM(4, 5), grukit.GRUCell(4, 5)
    x = torch.randn(6, 2, 4, dtype=torch.bfloat16)  # (T, N, I)
    h0 = torch.randn(1, 2, 5, dtype=torch.bfloat16)  # (L, N, H)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with_state = gru(x, h0, lengths=[6, 3])
        packed = gru(pack_padded_sequence(x, torch.tensor([6, 3])))
        gates = gru(x, return_gates=True)[2]
        lstm_state = lstm(x, (h0, h0))[1]
        stepped = gru.step(x[0], h0)  # (L, N, H)
        cell_state = cell(x[0], h0[0])  # (N, H)
    assert with_state[0].dtype == with_state[1].dtype == packed[0].data.dtype == gates.z.dtype == torch.float32
    assert lstm_state[0].dtype == lstm_state[1].dtype == stepped.dtype == cell_state.dtype == torch.float32
    torch.testing.assert_close(with_state[0], gru(x.float(), h0.float(), lengths=[6, 3])[0], rtol=0, atol=0)
    torch.testing.assert_close(stepped, gru.step(x[0].float(), h0.float()), rtol=0, atol=0)
    torch.testing.assert_close(cell_state, cell(x[0].float(), h0[0].float()), rtol=0, atol=0)


def test_outside_autocast_another_dtype_is_still_refused():
    gru = grukit.GRU(4, 5)
    with pytest.raises(TypeError, match=r"^x: expected dtype torch\.float32 \(the model's\), got torch\.bfloat16$"):
        gru(torch.randn(3, 2, 4, dtype=torch.bfloat16))
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=False):
        with pytest.raises(TypeError, match=r"^x: expected dtype torch\.float32"):
            gru(torch.randn(3, 2, 4, dtype=torch.bfloat16))


def test_under_autocast_lengths_pass_as_given_and_meta_or_buffer_weights_still_run():
    """A review: lengths were cast too (a float64 length was named float32), a 'meta' x made autocast's device
    query raise, and a subclass keeping its weights as buffers raised a bare StopIteration."""
    gru = grukit.GRU(4, 5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with pytest.raises(TypeError, match=r"^lengths: expected integers, got dtype torch\.float64$"):
            gru(torch.randn(6, 2, 4), lengths=torch.tensor([6.0, 3.0], dtype=torch.float64))
        output, _ = grukit.GRU(4, 5, device="meta")(torch.randn(6, 2, 4, device="meta"))  # (T, N, H)
        assert output.device.type == "meta" and output.shape == (6, 2, 5)

    class BufferGRU(grukit.GRU):  # the weights as buffers: no parameter to read the dtype from
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            for name, p in list(self.named_parameters()):
                delattr(self, name)
                self.register_buffer(name, p.detach().clone())

    frozen = BufferGRU(4, 5)
    x = torch.randn(6, 2, 4, dtype=torch.bfloat16)  # (T, N, I)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output, _ = frozen(x)  # (T, N, H)
        stepped = frozen.step(x[0])  # (L, N, H)
    torch.testing.assert_close(output, frozen(x.float())[0], rtol=0, atol=0)
    assert stepped.dtype == torch.float32
