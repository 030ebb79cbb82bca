"""The `cpu` backend: the GRU sequence op as a C++ kernel (forward + hand-written BPTT).

Same math and names as `grukit.kernels.fused` (whose docstring carries the derivation);
what changes is where the loop runs. Per layer and direction:

    gx = x W_xᵀ                      one GEMM over all T·N rows, written into the cache
    for each step (in C++):          g = h_prev Uᵀ (after: one GEMM [N×H]·[H×3H];
                                        before: [N×H]·[H×2H], then q Uₙᵀ with q = r ⊙ h_prev)
                                     r, z, n, h: one fused, vectorized pass over N·H
                                     (see Threads below)
    backward loop (in C++):          one fused pass writes da, then dh += da U (one GEMM;
                                     two for reset="before"): only dh is serial
    after the loop:                  dW_x = daᵀ x, dW_h = daᵀ h_prev, dx = da W_x: single
                                     GEMMs over all T·N rows; db = column sums of da

GEMMs call torch's BLAS (MKL/OpenBLAS sgemm) directly; with N ≤ 4 rows a hand-written
matrix-vector product replaces them (a BLAS call costs more than the arithmetic there).
In float32, for 16 steps or more and blocks of 8 rows or more, the forward packs U once per call
into MKL's internal layout (cblas_sgemm_pack, `packed.h`) and every step's product reads that
copy, where sgemm would copy U again at each step; without MKL's packing functions the products
are plain sgemm calls.

Threads: batch rows are independent through time, so with N ≥ 8 each thread runs the
whole time loop (forward and backward) for its own block of rows, calling BLAS on one
thread: no barrier per step. Below that the loop is serial and BLAS threads each
product as it likes, except products under 64 MFLOP, which run on one thread. The
large products before and after the loops use every thread. Reductions and copies
in backward are done in the kernel, serially unless large. Reason: on a machine whose
cores are shared, every fork-join waits for the slowest thread, often a whole
scheduler slice (~4 ms), which costs more than a small product itself.

Saved for backward, per time step, by a forward that records a graph (grad mode on and
an input that requires grad; s = 4 bytes for float32, 8 for float64): the cache
[r, z, n, g_n] (after) or [r, z, n, q] (before), 4·N·H·s bytes, plus the state after the
step, N·H·s bytes (without a mask that is the output itself, and the caller gets a copy,
free to edit in place as with torch.nn.GRU). So 20·N·H bytes per step in float32, beyond
x, h0, the weights and the output, which exist anyway.
No per-step autograd graph is built. Backward allocates da (T, N, 3H), 12·N·H bytes
per step in float32, and dx, and frees them when it returns. A forward under no_grad
saves nothing; its cache is the (T, N, 3H) input projection, freed on return.

Memory: caches and da of 16 MiB or more are not returned to the system when freed but kept,
at most four blocks, for the next call of a similar size (`workspace.h`): fresh memory costs a
page fault per 4 KiB at its first write, 25 ms per 64 MB here, and a training step asks for the
same sizes again. A request that no kept block fits returns them all to the system before it
allocates, so no idle block is held while fresh memory is asked for. Between calls the pool
keeps what the last calls freed (`cached_bytes()`), until a call of another size,
`empty_cache()`, the end of `grukit.train.fit`, or exit.

Graph capture (torch.export, make_fx, fake tensors) cannot run C++ that reads raw memory: while a graph is
captured, `sequence` calls the same kernel through the custom ops of `_library`, one node per call.

dtypes: float32 and float64 run in C++; any other dtype (bfloat16, float16) is handed to
the `fused` backend, which computes in that dtype with torch ops.

Example:
    >>> import torch
    >>> from grukit.kernels import cpu
    >>> T, N, I, H = 5, 2, 3, 4
    >>> if cpu.available():
    ...     W_x = torch.randn(3 * H, I, requires_grad=True)
    ...     out, h_n = cpu.sequence(torch.randn(T, N, I), torch.zeros(N, H), W_x,
    ...         torch.randn(3 * H, H), None, None, reset="after", mask=None, reverse=False)
    ...     (out.sum() + h_n.sum()).backward()
    ...     assert W_x.grad.shape == (12, 3)
"""
from __future__ import annotations

from types import ModuleType

import torch
from torch import Tensor

from grukit.functional import check_dims, check_reset
from grukit.kernels._first_order import beyond_reverse_mode, first_order_only, reverse_mode_only
from grukit.kernels.cpu import _build, _library

name = "cpu"
_DTYPES = (torch.float32, torch.float64)
_state: dict[str, ModuleType | None | bool] = {"tried": False, "module": None}


def _ops() -> ModuleType | None:
    """The compiled extension, built or loaded on the first call; None if it cannot be."""
    if not _state["tried"]:
        _state["module"] = _build.load()
        _state["tried"] = True
    return _state["module"]  # type: ignore[return-value]


def plain_step_op():
    """The C++ step itself, (x_t, h_prev, weight_x, weight_h, bias_x, bias_h, after: bool) -> h: `step` without
    its Python (see `grukit.kernels`, plain_step); None when the extension cannot be built."""
    ops = _ops()
    return None if ops is None else ops.step


def available() -> bool:
    """True when the extension is built (first call builds or loads it; later calls are free)."""
    return _ops() is not None


def empty_cache() -> None:
    """Return to the system the kernel's pooled buffers: the forward's caches and the backward's gradient
    buffers of 16 MiB or more that finished calls freed, kept for the next call (`cached_bytes`; see Memory
    in the module docstring). Like torch.cuda.empty_cache, it frees nothing in use.

    Example:
        >>> from grukit.kernels import cpu
        >>> cpu.empty_cache(); cpu.cached_bytes()
        0
    """
    module = _state["module"]  # not built or loaded by this call: a process that never ran it holds nothing
    if module is not None:
        module.release_workspace()


def cached_bytes() -> int:
    """Bytes the kernel holds in its pool of freed buffers now (0 where the extension has not run)."""
    module = _state["module"]
    return 0 if module is None else sum(module.workspace_blocks())


def _check(x: Tensor, h0: Tensor, weight_x: Tensor, weight_h: Tensor, bias_x, bias_h, reset, mask) -> None:
    """Shapes, devices and dtypes the C++ code relies on (it reads raw pointers)."""
    check_reset(reset)
    if (bias_x is None) != (bias_h is None):
        raise ValueError("bias_x, bias_h: expected both tensors or both None, got one of each")
    check_dims(x, h0)
    T, N, I = x.shape
    H = h0.shape[-1]
    expected = {"h0": (h0, (N, H)), "weight_x": (weight_x, (3 * H, I)), "weight_h": (weight_h, (3 * H, H))}
    if bias_x is not None:
        expected.update(bias_x=(bias_x, (3 * H,)), bias_h=(bias_h, (3 * H,)))
    if mask is not None:
        expected["mask"] = (mask, (T, N))
    for arg, (tensor, shape) in expected.items():
        if tuple(tensor.shape) != shape:
            raise ValueError(f"{arg}: expected shape {shape}, got {tuple(tensor.shape)}")
        if tensor.device.type != "cpu":
            raise ValueError(f"{arg}: the 'cpu' backend expects CPU tensors, got device {tensor.device}")
        if tensor.layout != torch.strided:
            raise ValueError(f"{arg}: expected a dense (strided) tensor, got layout {tensor.layout}")
        if tensor.dtype != x.dtype:
            raise TypeError(f"{arg}: expected dtype {x.dtype} (that of x), got {tensor.dtype}")
    if x.device.type != "cpu":
        raise ValueError(f"x: the 'cpu' backend expects a CPU tensor, got device {x.device}")
    if x.layout != torch.strided:
        raise ValueError(f"x: expected a dense (strided) tensor, got layout {x.layout}")


def _contiguous(*tensors):
    """Each tensor as the plain memory the C++ code reads: contiguous, and with a lazy negation (a negative view,
    which `contiguous` keeps as a flag beside the un-negated data) applied."""
    return tuple(None if t is None else t.resolve_neg().contiguous() for t in tensors)


class _Sequence(torch.autograd.Function):
    """One layer, one direction, whole sequence; see the module docstring."""

    @staticmethod
    def forward(ctx, x, h0, weight_x, weight_h, bias_x, bias_h, reset, mask, reverse, training):
        output, h_n, states, cache = _ops().forward(
            x, h0, weight_x, weight_h, bias_x, bias_h, mask, reset == "after", reverse, training
        )  # (T, N, H), (N, H), (T, N, H), (T, N, 4H) or None
        if training:
            if mask is None:  # the output doubles as the states; the user gets a copy to edit in place
                states, output = output, output.clone()  # (T, N, H) each
            ctx.save_for_backward(x, h0, weight_x, weight_h, mask, states, cache)
        ctx.reset, ctx.reverse, ctx.has_bias = reset, reverse, bias_x is not None
        return output, h_n

    @staticmethod
    @first_order_only("cpu")
    def backward(ctx, d_output, d_h_n):
        x, h0, weight_x, weight_h, mask, states, cache = ctx.saved_tensors
        if d_output is None:
            d_output = torch.zeros_like(states)  # (T, N, H)
        if d_h_n is None:
            d_h_n = torch.zeros_like(h0)  # (N, H)
        dx, dh0, dW_x, dW_h, db_x, db_h = _ops().backward(  # makes d_output contiguous itself
            d_output, d_h_n.contiguous(), x, h0, weight_x, weight_h, mask, states, cache,
            ctx.reset == "after", ctx.reverse, ctx.has_bias, ctx.needs_input_grad[0],
        )
        return dx, dh0, dW_x, dW_h, db_x, db_h, None, None, None, None


def sequence(x: Tensor, h0: Tensor, weight_x, weight_h, bias_x, bias_h, *, reset, mask=None, reverse=False):
    """See `grukit.kernels`: (T, N, I), (N, H) -> (T, N, H), (N, H)."""
    _check(x, h0, weight_x, weight_h, bias_x, bias_h, reset, mask)  # other dtypes too, before fused gets them
    if x.dtype not in _DTYPES:
        from grukit.kernels import fused

        return fused.sequence(x, h0, weight_x, weight_h, bias_x, bias_h, reset=reset, mask=mask, reverse=reverse)
    reverse_mode_only("cpu", x, h0, weight_x, weight_h, bias_x, bias_h)
    if _ops() is None:
        raise RuntimeError("the grukit cpu kernel could not be built; see the warning logged by grukit.kernels.cpu")
    x, h0, weight_x, weight_h, bias_x, bias_h, mask = _contiguous(x, h0, weight_x, weight_h, bias_x, bias_h, mask)
    # the cache for backward only when a gradient can flow: not under no_grad / inference_mode
    training = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (x, h0, weight_x, weight_h, bias_x, bias_h))
    if _library.capturing(x):  # one node of the captured graph (see `_library`)
        return _library.sequence_op(x, h0, weight_x, weight_h, bias_x, bias_h, mask, reset == "after", reverse,
                                    training)[:2]
    return _Sequence.apply(x, h0, weight_x, weight_h, bias_x, bias_h, reset, mask, reverse, training)


def step(x_t: Tensor, h_prev: Tensor, weight_x, weight_h, bias_x, bias_h, *, reset) -> Tensor:
    """See `grukit.kernels`: (N, I), (N, H) -> (N, H). No autograd graph unless one is needed; plain torch ops
    (`functional.cell`) under a torch.func transform or forward-mode AD, which the C++ step cannot carry."""
    tensors = (x_t, h_prev, weight_x, weight_h, bias_x, bias_h)
    if beyond_reverse_mode(*tensors):
        from grukit import functional

        return functional.cell(x_t, h_prev, weight_x, weight_h, bias_x, bias_h, reset=reset)
    check_reset(reset)
    if h_prev.dim() == 3 and x_t.dim() == 2:  # the C++ step takes a one-layer state (1, N, H) for GRU.step too
        H = weight_h.shape[1] if weight_h.dim() == 2 else -1  # (the message the C++ check gives)
        raise ValueError(f"h_prev: expected shape ({x_t.shape[0]}, {H}), got {list(h_prev.shape)}")
    needs_grad = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)
    if needs_grad or x_t.dtype not in _DTYPES or _library.capturing(x_t):  # capture: one op of the graph
        if x_t.dim() != 2:  # named here: the sequence below would name x, of a shape the caller never gave
            raise ValueError(f"x_t: expected an (N, I) tensor, got shape {tuple(x_t.shape)}")
        return sequence(x_t.unsqueeze(0), h_prev, weight_x, weight_h, bias_x, bias_h, reset=reset)[1]
    return _ops().step(x_t, h_prev, weight_x, weight_h, bias_x, bias_h, reset == "after")  # checks in C++
