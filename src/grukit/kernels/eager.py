"""The `eager` backend: the equations of `grukit.functional`, step by step, under autograd.

Readable and slow; always available on every device. It is the backend that
`return_gates=True` runs, and the first link after the NumPy reference.

Example:
    >>> import torch
    >>> from grukit.kernels import eager
    >>> T, N, I, H = 5, 2, 3, 4
    >>> out, h_n = eager.sequence(torch.randn(T, N, I), torch.zeros(N, H),
    ...     torch.randn(3 * H, I), torch.randn(3 * H, H), None, None, reset="after", mask=None, reverse=False)
    >>> out.shape, h_n.shape
    (torch.Size([5, 2, 4]), torch.Size([2, 4]))
"""
from __future__ import annotations

from grukit import functional

name = "eager"


def available() -> bool:
    return True


def sequence(x, h0, weight_x, weight_h, bias_x, bias_h, *, reset, mask=None, reverse=False):
    """See `grukit.kernels`: (T, N, I), (N, H) -> (T, N, H), (N, H)."""
    return functional.sequence(x, h0, weight_x, weight_h, bias_x, bias_h, reset=reset, mask=mask, reverse=reverse)


def step(x_t, h_prev, weight_x, weight_h, bias_x, bias_h, *, reset):
    """See `grukit.kernels`: (N, I), (N, H) -> (N, H)."""
    return functional.cell(x_t, h_prev, weight_x, weight_h, bias_x, bias_h, reset=reset)
