"""grukit's recurrent layers under `torch.autocast`: they run in their parameters' dtype.

Autocast runs matrix products in a lower precision (bfloat16 on CPU, float16 on CUDA), so a Linear or an
Embedding before a GRU hands it a lower-precision x, which the layer's dtype check refused. A recurrence
adds its products into the state at every one of T steps, and grukit's fast kernels are float32/float64.
So under autocast a grukit layer casts its floating inputs (x, h0, c0, a PackedSequence's data) to its
parameters' dtype and runs with autocast off, as autocast's own float32 ops do: output and states come
in the parameters' dtype, and the gradient of x reaches the caller in x's dtype. (torch.nn.GRU runs in
the autocast dtype instead.) Outside autocast nothing is cast: a dtype that differs from the model's is
still an error naming the argument.

Example:
    >>> import torch, grukit
    >>> gru, embed = grukit.GRU(4, 3), torch.nn.Linear(2, 4)
    >>> with torch.autocast("cpu", dtype=torch.bfloat16):
    ...     x = embed(torch.randn(5, 2, 2))  # (T, N, I) bfloat16
    ...     output, h_n = gru(x)
    >>> x.dtype, output.dtype
    (torch.bfloat16, torch.float32)
"""
from __future__ import annotations

import functools
import itertools
from typing import Callable

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence

STATES = ("h0", "h")  # the keyword names of a forward's state argument, the one after x


def in_parameter_dtype(forward: Callable) -> Callable:
    """Decorate a recurrent module's forward(self, x, state, ...): under autocast on x's device, x and the state
    (h0, an LSTM's (h0, c0), or a cell's h) are cast to the parameters' dtype, and forward runs with autocast off
    (see the module docstring). Other arguments (lengths) pass as given, so their checks name what was given."""
    @functools.wraps(forward)
    def run(self, x, *args, **kwargs):
        if not torch._C._is_any_autocast_enabled():  # 0.1 µs; the device's own answer costs 1 µs more
            return forward(self, x, *args, **kwargs)
        device_type, dtype = _device_type(x), _weights_dtype(self)
        if device_type is None or dtype is None or not _autocast_on(device_type):
            return forward(self, x, *args, **kwargs)
        args = (_cast(args[0], dtype), *args[1:]) if args else ()
        kwargs = {k: _cast(v, dtype) if k in STATES else v for k, v in kwargs.items()}
        with torch.autocast(device_type, enabled=False):
            return forward(self, _cast(x, dtype), *args, **kwargs)
    return run


def _autocast_on(device_type: str) -> bool:
    """torch.is_autocast_enabled(device_type), False where autocast does not know the device ('meta')."""
    try:
        return torch.is_autocast_enabled(device_type)
    except RuntimeError:  # "unknown device type for autocast"
        return False


def _weights_dtype(module) -> torch.dtype | None:
    """The dtype of the module's first parameter, or of its first buffer (a subclass may keep its weights as
    buffers); None where it has neither, and nothing is cast."""
    tensor = next(itertools.chain(module.parameters(), module.buffers()), None)
    return None if tensor is None else tensor.dtype


def _device_type(x) -> str | None:
    """'cpu', 'cuda', ... of x (a tensor or a PackedSequence); None for anything else, which the layer refuses."""
    data = x.data if isinstance(x, PackedSequence) else x
    return data.device.type if isinstance(data, Tensor) else None


def _cast(value, dtype: torch.dtype):
    """value with every floating tensor in it (a tensor, a PackedSequence, a tuple or list of them) as `dtype`;
    anything else as it is, for the layer's own checks to name."""
    if isinstance(value, PackedSequence):
        return value.to(dtype) if value.data.is_floating_point() else value
    if isinstance(value, Tensor):
        return value.to(dtype) if value.is_floating_point() else value
    if isinstance(value, (tuple, list)):
        return type(value)(_cast(v, dtype) for v in value)
    return value
