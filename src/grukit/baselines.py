"""LSTM and tanh-RNN with grukit.GRU's interface, for the GRU-vs-others comparisons.

    LSTM:  i, f, o = σ(W x + U h_prev + b);  g = tanh(W_g x + U_g h_prev + b_g)
           c = f ⊙ c_prev + i ⊙ g;  h = o ⊙ tanh(c)
    RNN:   h = tanh(W x + b_x + U h_prev + b_h)

Both wrap torch's own modules (the same implementation family as torch.nn.GRU, so
comparisons between them are about the architecture) and accept what grukit.GRU
accepts: batch_first, unbatched input, PackedSequence, h0 and `lengths` (padded
steps give zeros, h_n is each sequence's state at its own last step).

Example:
    >>> import torch, grukit
    >>> lstm = grukit.LSTM(8, 16)
    >>> output, (h_n, c_n) = lstm(torch.randn(5, 3, 8), lengths=[5, 2, 4])
    >>> output.shape, h_n.shape
    (torch.Size([5, 3, 16]), torch.Size([1, 3, 16]))
"""
from __future__ import annotations

from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from grukit import _checks
from grukit._autocast import in_parameter_dtype
from grukit._config_field import ConfigField
from grukit.checkpoint import register
from grukit.inputs import finish, prepare
from grukit.layer import RecurrentConfig


class _Recurrent(nn.Module):
    """The shared plumbing: checks, lengths → packing, the user's layout back."""

    torch_class: type[nn.RNNBase]
    input_size, hidden_size, num_layers, bias, bidirectional = (ConfigField() for _ in range(5))  # shape weights
    # settable, as on torch.nn.LSTM; kept in the config, so save keeps it
    batch_first = ConfigField(lambda value: _checks.switch("batch_first", value))

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, *, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None):
        super().__init__()
        self.config = RecurrentConfig(
            _checks.positive_int("input_size", input_size), _checks.positive_int("hidden_size", hidden_size),
            _checks.positive_int("num_layers", num_layers), _checks.switch("bias", bias),
            _checks.switch("batch_first", batch_first), _checks.probability("dropout", dropout),
            _checks.switch("bidirectional", bidirectional),
        )
        self.num_directions = 2 if self.bidirectional else 1
        self.rnn = self.torch_class(self.input_size, self.hidden_size, self.num_layers, bias=self.bias,
                                    batch_first=False, dropout=dropout, bidirectional=self.bidirectional, device=device,
                                    dtype=_checks.floating_dtype("dtype", dtype))

    def _prepare(self, x, h0, lengths, state: str = "h0"):
        weight = self.rnn.weight_ih_l0
        return prepare(x, h0, lengths, input_size=self.input_size, hidden_size=self.hidden_size,
                       num_states=self.num_layers * self.num_directions, batch_first=self.batch_first,
                       dtype=weight.dtype, device=weight.device, state=state)

    def _run(self, batch, state):
        """Run torch's module on the canonical batch; returns output (T, N, D·H) and its final state."""
        if batch.lengths is None or batch.x.shape[1] == 0:  # N = 0: nothing to pack, torch's empty result
            return self.rnn(batch.x, state)
        T = batch.x.shape[0]
        packed = pack_padded_sequence(batch.x, batch.lengths.cpu(), enforce_sorted=False)
        output, state = self.rnn(packed, state)
        output, _ = pad_packed_sequence(output, total_length=T)  # (T, N, D·H), zeros on padding
        return output, state


@register
class RNN(_Recurrent):
    """Elman RNN with tanh: h = tanh(W x + b_x + U h_prev + b_h); see the module docstring."""

    checkpoint_name = "grukit.RNN"  # stable name in saved files
    torch_class = nn.RNN

    @in_parameter_dtype
    def forward(self, x, h0: Tensor | None = None, lengths=None):
        batch = self._prepare(x, h0, lengths)
        output, h_n = self._run(batch, batch.h0)
        return finish(batch, output, h_n)


@register
class LSTM(_Recurrent):
    """LSTM (Hochreiter & Schmidhuber 1997, with forget gate); see the module docstring.

    h0 is None or a pair (h0, c0) of (L·D, N, H) tensors; returns (output, (h_n, c_n)).
    """

    checkpoint_name = "grukit.LSTM"  # stable name in saved files
    torch_class = nn.LSTM

    @in_parameter_dtype
    def forward(self, x, h0: tuple[Tensor, Tensor] | None = None, lengths=None):
        if h0 is not None and not (isinstance(h0, (tuple, list)) and len(h0) == 2):
            raise TypeError(f"h0: expected None or a pair (h0, c0) of tensors, got {type(h0).__name__}")
        batch = self._prepare(x, None if h0 is None else h0[0], lengths)
        c0 = batch.h0.new_zeros(batch.h0.shape) if h0 is None else \
            self._prepare(x, h0[1], lengths, state="c0").h0  # (L·D, N, H)
        output, (h_n, c_n) = self._run(batch, (batch.h0, c0))
        output, h_n = finish(batch, output, h_n)
        return output, (h_n, c_n.squeeze(1) if batch.unbatched else c_n)
