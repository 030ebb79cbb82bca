"""The `cpu` kernel as two torch.library custom ops, so that graph capture (torch.export, torch.compile,
make_fx) records each layer and direction as one opaque node instead of tracing into C++ that reads raw memory.

    grukit::cpu_sequence(x, h0, W_x, W_h, b_x?, b_h?, mask?, after, reverse, training)
        -> output (T, N, H), h_n (N, H), states, cache
    grukit::cpu_sequence_backward(d_output, d_h_n, x, h0, W_x, W_h, mask?, states, cache,
                                  after, reverse, has_bias, need_dx)
        -> dx (T, N, I) or (0,), dh0 (N, H), dW_x (3H, I), dW_h (3H, H), db_x, db_h (3H,) or (0,)

The math is the C++ kernel's (see `grukit.kernels.cpu`); these are its signatures for the dispatcher. A custom
op may return no alias of an input or of another output, and no None, so: with `training`, states (T, N, H) are
the states after each step and cache (T, N, 4H) the gates for backward; without it both are empty (0,) tensors.
The `fake` functions give each output's shape from the inputs' alone, which is all that capture needs.

The eager path stays the autograd.Function of `grukit.kernels.cpu`: the dispatcher costs 20-100 µs more per
call, as much as a whole short sequence. `cpu.sequence` comes here only while a graph is being captured.

Example:
    >>> import torch
    >>> from grukit.kernels import cpu
    >>> if cpu.available():
    ...     class Layer(torch.nn.Module):
    ...         def forward(self, x, h0, W_x, W_h):
    ...             return cpu.sequence(x, h0, W_x, W_h, None, None, reset="after")
    ...     T, N, I, H = 5, 2, 3, 4
    ...     args = (torch.randn(T, N, I), torch.zeros(N, H), torch.randn(3 * H, I), torch.randn(3 * H, H))
    ...     program = torch.export.export(Layer(), args)
    ...     assert "grukit.cpu_sequence" in str(program.graph)
    ...     assert torch.equal(program.module()(*args)[0], Layer()(*args)[0])
"""
from __future__ import annotations

import torch
from torch import Tensor
from torch._subclasses.fake_tensor import is_fake
from torch.utils._python_dispatch import _get_current_dispatch_mode

from grukit.kernels._first_order import first_order_only


def capturing(x: Tensor) -> bool:
    """True while a graph is being captured (dynamo, torch.export, or a dispatch mode such as make_fx's) or x
    holds no data (a fake tensor): where the kernel must be an op of the graph, not a call into C++."""
    return (torch.compiler.is_compiling() or _get_current_dispatch_mode() is not None
            or (type(x) is not Tensor and type(x) is not torch.nn.Parameter and is_fake(x)))  # is_fake: 1.4 µs


def _ops():
    from grukit.kernels.cpu import _ops  # the built extension (this module is imported by its package)

    return _ops()


@torch.library.custom_op("grukit::cpu_sequence", mutates_args=())
def sequence_op(x: Tensor, h0: Tensor, weight_x: Tensor, weight_h: Tensor, bias_x: Tensor | None,
                bias_h: Tensor | None, mask: Tensor | None, after: bool, reverse: bool,
                training: bool) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    output, h_n, states, cache = _ops().forward(
        x, h0, weight_x, weight_h, bias_x, bias_h, mask, after, reverse, training
    )  # (T, N, H), (N, H), (T, N, H), (T, N, 4H) or None
    if not training:
        return output, h_n, x.new_empty(0), x.new_empty(0)
    if mask is None:  # the kernel's states are its output: the op returns them apart
        states, output = output, output.clone()  # (T, N, H) each
    return output, h_n, states, cache


@sequence_op.register_fake
def _(x, h0, weight_x, weight_h, bias_x, bias_h, mask, after, reverse, training):
    T, N, H = x.shape[0], x.shape[1], h0.shape[1]
    if not training:
        return x.new_empty(T, N, H), h0.new_empty(N, H), x.new_empty(0), x.new_empty(0)
    return x.new_empty(T, N, H), h0.new_empty(N, H), x.new_empty(T, N, H), x.new_empty(T, N, 4 * H)


@torch.library.custom_op("grukit::cpu_sequence_backward", mutates_args=())
def backward_op(d_output: Tensor, d_h_n: Tensor, x: Tensor, h0: Tensor, weight_x: Tensor, weight_h: Tensor,
                mask: Tensor | None, states: Tensor, cache: Tensor, after: bool, reverse: bool, has_bias: bool,
                need_dx: bool) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    dx, dh0, dW_x, dW_h, db_x, db_h = _ops().backward(
        d_output, d_h_n.contiguous(), x, h0, weight_x, weight_h, mask, states, cache, after, reverse, has_bias,
        need_dx,
    )  # (T, N, I) or None, (N, H), (3H, I), (3H, H), (3H,) or None each
    def given(t: Tensor | None) -> Tensor:
        return x.new_empty(0) if t is None else t  # (0,) each its own: returns may not alias

    return given(dx), dh0, dW_x, dW_h, given(db_x), given(db_h)


@backward_op.register_fake
def _(d_output, d_h_n, x, h0, weight_x, weight_h, mask, states, cache, after, reverse, has_bias, need_dx):
    bias = weight_x.new_empty(weight_x.shape[0]) if has_bias else x.new_empty(0)  # (3H,) or (0,)
    return (x.new_empty(x.shape) if need_dx else x.new_empty(0), h0.new_empty(h0.shape),
            weight_x.new_empty(weight_x.shape), weight_h.new_empty(weight_h.shape), bias, bias.new_empty(bias.shape))


def _setup_context(ctx, inputs, output) -> None:
    x, h0, weight_x, weight_h, bias_x, bias_h, mask, after, reverse, training = inputs
    ctx.save_for_backward(x, h0, weight_x, weight_h, mask, output[2], output[3])  # output[2:]: states, cache
    ctx.after, ctx.reverse, ctx.has_bias = after, reverse, bias_x is not None


@first_order_only("cpu")
def _backward(ctx, d_output, d_h_n, d_states, d_cache):
    x, h0, weight_x, weight_h, mask, states, cache = ctx.saved_tensors
    if cache.dim() == 1:  # (0,): the call kept nothing for backward
        raise RuntimeError("grukit::cpu_sequence: a gradient was asked of a call made with training=False, which "
                           "keeps no states for backward: a graph captured under torch.no_grad() or "
                           "torch.inference_mode() is for inference; capture it with gradients enabled to train")
    if d_output is None:
        d_output = torch.zeros_like(states)  # (T, N, H)
    if d_h_n is None:
        d_h_n = torch.zeros_like(h0)  # (N, H)
    dx, dh0, dW_x, dW_h, db_x, db_h = backward_op(
        d_output.contiguous(), d_h_n, x, h0, weight_x, weight_h, mask, states, cache, ctx.after, ctx.reverse,
        ctx.has_bias, ctx.needs_input_grad[0],
    )
    return (dx if ctx.needs_input_grad[0] else None), dh0, dW_x, dW_h, (db_x if ctx.has_bias else None), \
        (db_h if ctx.has_bias else None), None, None, None, None


sequence_op.register_autograd(_backward, setup_context=_setup_context)
