"""A guard for hand-written backward passes that are first order only.

torch's `once_differentiable` runs such a backward without a graph and, when no
incoming gradient requires grad (a loss linear in the output, e.g. h_n.sum()), returns
gradients that look fine but silently lack every second-order term: a gradient penalty
built from them loses its dependence on the weights. `first_order_only` raises instead
whenever the engine asks for a graph (create_graph=True, the only time a backward runs
with grad mode on), naming the backend and the one that can do it.

Example:
    >>> import torch
    >>> from grukit.kernels._first_order import first_order_only
    >>> class Square(torch.autograd.Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         ctx.save_for_backward(x)
    ...         return x * x
    ...     @staticmethod
    ...     @first_order_only("demo")
    ...     def backward(ctx, d):
    ...         (x,) = ctx.saved_tensors
    ...         return 2 * x * d
    >>> x = torch.tensor(3.0, requires_grad=True)
    >>> torch.autograd.grad(Square.apply(x), x)[0]
    tensor(6.)
"""
from __future__ import annotations

import functools
from typing import Callable

import torch


def first_order_only(backend: str) -> Callable:
    """Decorate a Function's backward: run it without a graph, or raise under create_graph=True."""
    def decorate(backward: Callable) -> Callable:
        @functools.wraps(backward)
        def wrapper(ctx, *grads):
            if torch.is_grad_enabled():
                raise RuntimeError(
                    f"backend {backend!r}: its backward is first order only, and a gradient of a gradient was "
                    f"asked for (create_graph=True); use backend='eager' for that")
            return backward(ctx, *grads)
        return wrapper
    return decorate
