"""Guards for hand-written backward passes, which are reverse mode and first order only.

`reverse_mode_only` refuses, naming backend='eager', inputs that come from a torch.func
transform (grad, vmap, jacrev, jvp: functorch-wrapped tensors) or carry a forward-mode
tangent: torch's own errors there ("must override the setup_context staticmethod",
"Cannot access data pointer") name neither the cause nor the way out.

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
from typing import Callable, Iterable

import torch
import torch.autograd.forward_ad as forward_ad


def beyond_reverse_mode(*tensors: torch.Tensor | None, parameters: Iterable = ()) -> bool:
    """True inside a torch.func transform (the forward, or a backward vmapped over its incoming gradients), or
    when one of `tensors` or `parameters` carries a forward-mode tangent: where a hand-written backward cannot
    serve. `parameters`: a module's own weights, which the engine never batches, so only a tangent is looked for
    on them, and only while a forward-mode level is open (GRU.step asks at every step: the cheap answers come
    first; a generator of them is never drawn from otherwise)."""
    functorch = torch._C._functorch
    if functorch.maybe_current_level() is not None:  # inside grad / vmap / jvp / jacrev
        return True
    for t in tensors:  # a backward batched by the engine
        if t is not None and functorch.is_legacy_batchedtensor(t):
            return True
    return forward_ad._current_level >= 0 and any(  # inside a forward_ad.dual_level(), with a tangent
        t is not None and forward_ad.unpack_dual(t).tangent is not None for t in (*tensors, *parameters))


def reverse_mode_only(backend: str, *tensors: torch.Tensor | None) -> None:
    """RuntimeError naming `backend` and backend='eager' where `beyond_reverse_mode(*tensors)`."""
    if beyond_reverse_mode(*tensors):
        raise RuntimeError(f"backend {backend!r}: its hand-written backward serves torch.autograd's reverse mode "
                           "only; torch.func transforms (grad, vmap, jacrev, jvp), a vmapped backward "
                           "(jacobian(vectorize=True)) and forward-mode AD need backend='eager'")


def first_order_only(backend: str) -> Callable:
    """Decorate a Function's backward: run it without a graph, or raise under create_graph=True."""
    def decorate(backward: Callable) -> Callable:
        @functools.wraps(backward)
        def wrapper(ctx, *grads):
            reverse_mode_only(backend, *grads)  # a batched backward: jacobian(vectorize=True), is_grads_batched
            if torch.is_grad_enabled():
                raise RuntimeError(
                    f"backend {backend!r}: its backward is first order only, and a gradient of a gradient was "
                    f"asked for (create_graph=True); use backend='eager' for that")
            return backward(ctx, *grads)
        return wrapper
    return decorate
