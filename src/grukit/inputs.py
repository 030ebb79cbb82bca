"""Input plumbing for the recurrent layers, kept out of their forward().

`prepare` turns what a user may pass (batched or unbatched, batch_first or not, a
PackedSequence, optional h0 and lengths) into one canonical form: time-major x
(T, N, I), h0 (L·D, N, H), lengths and the (T, N) mask. `finish` turns the layer's
time-major result back into the user's form. Every check names the argument.

Example:
    >>> import torch
    >>> from grukit.inputs import prepare
    >>> b = prepare(torch.randn(4, 3), None, None, input_size=3, hidden_size=2, num_states=1,
    ...             batch_first=False, dtype=torch.float32, device=torch.device("cpu"))
    >>> b.x.shape, b.h0.shape, b.unbatched
    (torch.Size([4, 1, 3]), torch.Size([1, 1, 2]), True)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from grukit import _checks


@dataclass(frozen=True)
class Batch:
    x: Tensor  # (T, N, I) time-major input
    h0: Tensor  # (L·D, N, H) initial states
    lengths: Tensor | None  # (N,) int64 on x's device, each in 1..T; None = all T
    mask: Tensor | None  # (T, N) x.dtype, 1 on real steps; None when lengths is None
    unbatched: bool  # the user passed (T, I): squeeze N again
    batch_first: bool  # the user's x was (N, T, I)
    packed: bool  # the user passed a PackedSequence: pack the output again ...
    sorted_indices: Tensor | None = None  # ... in its order: (N,) its sorted_indices (None: it was sorted)


def _lengths(lengths, T: int, N: int, device: torch.device) -> Tensor:
    if not isinstance(lengths, Tensor):
        try:
            lengths = torch.as_tensor(lengths)
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(f"lengths: expected a sequence of integers, got {type(lengths).__name__}") from err
    if lengths.numel() == 0:  # an empty batch's lengths ([] reads as float32) hold no value that is not an integer
        lengths = lengths.to(torch.int64)
    if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
        raise TypeError(f"lengths: expected integers, got dtype {lengths.dtype}")
    if lengths.dim() != 1 or lengths.numel() != N:
        raise ValueError(
            f"lengths: expected {N} values (one per sequence in the batch), got shape {tuple(lengths.shape)}"
        )
    if N == 0:
        return lengths.to(device=device, dtype=torch.int64)
    lengths = lengths.to(torch.int64)  # (N,): min/max are not implemented for uint16/32/64
    if torch.compiler.is_compiling():  # values unknown while a graph is captured: the graph checks them as it runs
        return checked_lengths(lengths, T).to(device=device)
    _check_range(lengths, T)
    return lengths.to(device=device, dtype=torch.int64)


def _check_range(lengths: Tensor, T: int) -> None:
    low, high = int(lengths.min()), int(lengths.max())
    if low < 1 or high > T:
        raise ValueError(f"lengths: expected every value in 1..{T} (T), got values from {low} to {high}")


@torch.library.custom_op("grukit::checked_steps", mutates_args=())
def checked_steps(x: Tensor, time_dim: int, h0: Tensor) -> Tensor:
    """h0 copied, after checking that x (as the caller gave it) has a time step along `time_dim`: an op, so that
    a graph captured with a dynamic T refuses T = 0 as it runs (torch.export records T >= 1 but does not
    enforce it). It carries h0, which the graph uses, so that the check is not dropped from it."""
    if x.shape[time_dim] == 0:
        raise ValueError(f"x: expected at least one time step, got shape {tuple(x.shape)}")
    return h0.clone()  # (L·D, N, H)


@checked_steps.register_fake
def _(x, time_dim, h0):
    return h0.new_empty(h0.shape)  # (L·D, N, H)


checked_steps.register_autograd(lambda ctx, d_h0: (None, None, d_h0))  # the identity on h0


@torch.library.custom_op("grukit::checked_lengths", mutates_args=())
def checked_lengths(lengths: Tensor, T: int) -> Tensor:
    """lengths (N,) int64, copied, after `_check_range`: an op, so that a captured graph (torch.export) refuses
    a bad length with this message as it runs, where a Python check would be gone from it."""
    _check_range(lengths, T)
    return lengths.clone()  # (N,)


@checked_lengths.register_fake
def _(lengths, T):
    return lengths.new_empty(lengths.shape)  # (N,)


def prepare(x, h0, lengths, *, input_size: int, hidden_size: int, num_states: int, batch_first: bool,
            dtype: torch.dtype, device: torch.device, state: str = "h0") -> Batch:
    """Check and canonicalise (x, h0, lengths); see the module docstring. `state` names h0 in errors (an
    LSTM's c0 is checked as a second h0)."""
    packed = isinstance(x, PackedSequence)
    if packed:
        if lengths is not None:
            raise ValueError("lengths: expected None with a PackedSequence (it carries its own lengths), got a value")
        sorted_indices = x.sorted_indices  # (N,) or None
        x, lengths = pad_packed_sequence(x, batch_first=False)  # (T, N, I), lengths (N,)
        batch_first_in = False
    else:
        batch_first_in, sorted_indices = batch_first, None
    _checks.tensor("x", x, dims=(2, 3), dtype=dtype, device=device)
    _checks.size("x", x.shape[-1], input_size, "last dimension (input_size)")
    given, x_given = tuple(x.shape), x  # as the caller passed it, for the messages
    unbatched = x.dim() == 2
    if unbatched:
        x = x.unsqueeze(1)  # (T, 1, I)
    elif batch_first_in:
        x = x.transpose(0, 1)  # (T, N, I)
    T, N, _ = x.shape
    if T == 0:
        raise ValueError(f"x: expected at least one time step, got shape {given}")
    if h0 is None:
        h0 = x.new_zeros(num_states, N, hidden_size)  # (L·D, N, H)
    else:
        _checks.tensor(state, h0, dims=(2,) if unbatched else (3,), dtype=dtype, device=device)
        h0 = h0.unsqueeze(1) if unbatched else h0  # (L·D, N, H)
        if tuple(h0.shape) != (num_states, N, hidden_size):
            want = (num_states, hidden_size) if unbatched else (num_states, N, hidden_size)
            got = (h0.shape[0], h0.shape[2]) if unbatched else tuple(h0.shape)
            layout = "(num_layers*num_directions, hidden_size) for unbatched x" if unbatched else \
                "(num_layers*num_directions, batch, hidden_size)"
            raise ValueError(f"{state}: expected shape {want} {layout}, got {got}")
    if torch.compiler.is_compiling():  # a captured graph's T may be dynamic: the graph checks it as it runs
        h0 = checked_steps(x_given, int(batch_first_in and not unbatched), h0)  # (L·D, N, H)
    mask = None
    if lengths is not None:
        lengths = _lengths(lengths, T, N, x.device)
        mask = (torch.arange(T, device=x.device).unsqueeze(1) < lengths.unsqueeze(0)).to(x.dtype)  # (T, N)
        x = x.masked_fill(mask.unsqueeze(-1) == 0, 0.0)  # (T, N, I): padding, even NaN or inf, set to 0
    return Batch(x, h0, lengths, mask, unbatched, batch_first, packed, sorted_indices)


def finish(batch: Batch, output: Tensor, h_n: Tensor):
    """Return (output, h_n) in the user's form: output (T, N, D·H) time-major in."""
    if batch.packed:  # the input's own order, as torch.nn.GRU keeps it (ties in lengths may sort either way)
        order = batch.sorted_indices
        if order is None:
            return pack_padded_sequence(output, batch.lengths.cpu(), enforce_sorted=True), h_n
        packed = pack_padded_sequence(output.index_select(1, order), batch.lengths[order].cpu(), enforce_sorted=True)
        return PackedSequence(packed.data, packed.batch_sizes, order, torch.argsort(order)), h_n
    if batch.unbatched:
        return output.squeeze(1), h_n.squeeze(1)  # (T, D·H), (L·D, H)
    if batch.batch_first:
        output = output.transpose(0, 1)  # (N, T, D·H)
    return output, h_n
