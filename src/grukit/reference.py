r"""NumPy float64 GRU: forward and hand-written backpropagation through time.

This file is the root of grukit's chain of correctness (DESIGN §3): it is checked
against central finite differences, and every torch backend is checked against it.
It never imports torch (nor anything else from grukit): read it, and the whole
system, top to bottom in one sitting.

The math (DESIGN §1; gate order r, z, n; the seeds' z convention)
================================================================

Shapes: T steps, N batch, I inputs, H hidden units. Per layer and direction the
parameters are ``weight_x`` = [W_r; W_z; W_n] (3H, I), ``weight_h`` = [U_r; U_z; U_n]
(3H, H), ``bias_x`` = [b_xr; b_xz; b_xn] (3H,), ``bias_h`` = [b_hr; b_hz; b_hn] (3H,).
"a" is a pre-activation, σ the logistic sigmoid, ⊙ the element-wise product.

Forward, one step (h_prev = state before the step, m = mask[t] ∈ {0, 1} per sequence):

    gx    = x_t W_xᵀ + b_x                           (N, 3H)  all T at once (one GEMM)
    a_r   = gx_r + h_prev U_rᵀ + b_hr                (N, H)
    a_z   = gx_z + h_prev U_zᵀ + b_hz                (N, H)
    r     = σ(a_r),  z = σ(a_z)
    reset="before":
        a_n = gx_n + (r ⊙ h_prev) U_nᵀ + b_hn
    reset="after":
        hn  = h_prev U_nᵀ + b_hn                     (the candidate's hidden part)
        a_n = gx_n + r ⊙ hn
    n     = tanh(a_n)
    h_new = z ⊙ n + (1 − z) ⊙ h_prev                 z → 1 takes the candidate
    h     = m ⊙ h_new + (1 − m) ⊙ h_prev             a masked step carries the state
    out_t = m ⊙ h_new                                and outputs 0

``reverse=True`` walks t = T−1 .. 0 (output stays in time order); with a mask of
trailing padding each sequence then starts at its own last real step, because the
padded steps before it (in walking order) carry h0 unchanged.

The forward cache (all in time order, (T, N, H) unless said):
    x (T, N, I), h0 (N, H), the four parameters, reset, mask (T, N, 1), reverse,
    h_prev (the state entering step t), r, z, n, and for reset="after" hn.

Backward, one step
------------------

Walk the steps in the reverse of the forward's walking order. ``dh`` is the
gradient of the loss with respect to the state leaving step t; it starts as the
upstream gradient of h_n, and each step turns it into the gradient of the state
entering the step (dh_prev), which is carried to the next step back.

    dh_new  = m ⊙ (d_out[t] + dh)            total gradient reaching h_new: upstream + carried
    dh_prev = (1 − m) ⊙ dh                   a masked step passes dh straight through
            + dh_new ⊙ (1 − z)               the (1 − z) ⊙ h_prev term of h_new
    dn      = dh_new ⊙ z
    da_n    = dn ⊙ (1 − n²)                  tanh' = 1 − tanh²
    dz      = dh_new ⊙ (n − h_prev)
    da_z    = dz ⊙ z ⊙ (1 − z)               σ' = σ (1 − σ)
    reset="before":                          a_n = … + (r ⊙ h_prev) U_nᵀ
        drh      = da_n U_n                  gradient of r ⊙ h_prev
        dr       = drh ⊙ h_prev
        dh_prev += drh ⊙ r
        da_r     = dr ⊙ r ⊙ (1 − r)
        dgh      = [da_r, da_z, da_n]        gradient of the three hidden products
        dh_prev += da_r U_r + da_z U_z
    reset="after":                           a_n = … + r ⊙ hn, hn = h_prev U_nᵀ + b_hn
        dhn      = da_n ⊙ r
        dr       = da_n ⊙ hn
        da_r     = dr ⊙ r ⊙ (1 − r)
        dgh      = [da_r, da_z, dhn]
        dh_prev += dgh W_h                   = da_r U_r + da_z U_z + dhn U_n
    dgx[t]  = [da_r, da_z, da_n]             gradient of gx (N, 3H)
    dh      ← dh_prev

Only dh is serial. After the loop the parameter gradients are sums over all T·N
rows, i.e. single GEMMs/reductions:

    dx          = dgx W_x                                  (T, N, I)
    dW_x        = Σ_{t,n} dgx[t,n]ᵀ x[t,n]                 (3H, I)
    db_x        = Σ_{t,n} dgx[t,n]                         (3H,)
    reset="before":
        dW_h[r,z] = Σ dgh[r,z]ᵀ h_prev,  dW_h[n] = Σ da_nᵀ (r ⊙ h_prev)
    reset="after":
        dW_h      = Σ dghᵀ h_prev
    db_h        = Σ dgh                                    (3H,)
    dh0         = dh after the last step back

On a masked step dh_new = 0, so every gate gradient there is 0 and the step adds
nothing to the parameter gradients or to dx.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> T, N, I, H = 5, 2, 3, 4
    >>> x, h0 = rng.normal(size=(T, N, I)), np.zeros((N, H))
    >>> Wx, Wh = rng.normal(size=(3 * H, I)), rng.normal(size=(3 * H, H))
    >>> out, h_n, cache = gru_forward(x, h0, Wx, Wh, None, None)
    >>> out.shape, h_n.shape
    ((5, 2, 4), (2, 4))
    >>> grads = gru_backward(np.ones_like(out), np.zeros_like(h_n), cache)
    >>> grads["weight_h"].shape, grads["bias_x"] is None
    ((12, 4), True)

The module ends with ``GRU``, the seed notes' from-scratch model: one GRU layer, a
dense output layer, softmax cross-entropy, BPTT and Adam, in NumPy.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

RESETS = ("before", "after")


# ----------------------------------------------------------------------------------
# input checks
# ----------------------------------------------------------------------------------


def _array(name, value, shape_doc, ndim):
    """`value` as a float64 array of rank `ndim`, or ValueError naming `name`."""
    if np.iscomplexobj(value):  # float64 would drop the imaginary part with only a NumPy warning
        raise ValueError(f"{name}: expected a real array {shape_doc}, got complex values")
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name}: expected a numeric array {shape_doc}, got {type(value).__name__} ({e})") from None
    if a.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-d array {shape_doc}, got shape {a.shape}")
    return a


def _check_shape(name, a, expected, shape_doc):
    if np.shape(a) != tuple(expected):
        raise ValueError(f"{name}: expected shape {shape_doc} = {tuple(expected)}, got {np.shape(a)}")


def _check_reset(reset):
    if reset not in RESETS:
        raise ValueError(f"reset: expected one of {RESETS}, got {reset!r}")


def _sigmoid(a):
    return 0.5 * (1.0 + np.tanh(0.5 * a))  # σ(a), stable for any a


# ----------------------------------------------------------------------------------
# one layer, one direction
# ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cache:
    """What gru_forward saves for gru_backward (time order; see the module docstring)."""

    x: np.ndarray  # (T, N, I) input
    h0: np.ndarray  # (N, H) initial state
    weight_x: np.ndarray  # (3H, I) [W_r; W_z; W_n]
    weight_h: np.ndarray  # (3H, H) [U_r; U_z; U_n]
    has_bias_x: bool  # whether bias_x was given (else its gradient is None)
    has_bias_h: bool  # whether bias_h was given
    reset: str  # "before" | "after"
    mask: np.ndarray  # (T, N, 1) 1 = real step, 0 = carried (all ones when no mask)
    reverse: bool  # walked t = T-1 .. 0
    h_prev: np.ndarray  # (T, N, H) state entering step t
    r: np.ndarray  # (T, N, H) reset gate
    z: np.ndarray  # (T, N, H) update gate
    n: np.ndarray  # (T, N, H) candidate
    hn: np.ndarray | None  # (T, N, H) h_prev U_nᵀ + b_hn (reset="after" only)


def gru_forward(x, h0, weight_x, weight_h, bias_x, bias_h, *, reset="before", mask=None, reverse=False):
    """One GRU layer in one direction over a (padded) sequence, in float64.

    h = z ⊙ n + (1 − z) ⊙ h_prev per step (module docstring); on a step with
    mask 0 the state is carried unchanged and the output is 0.

    Args:
        x: (T, N, I) input, time-major.
        h0: (N, H) initial state.
        weight_x: (3H, I), rows r, z, n.   weight_h: (3H, H).
        bias_x, bias_h: (3H,) or None.
        reset: "before" (the seeds') or "after" (cuDNN/PyTorch).
        mask: (T, N) of 0/1, or None (every step real).
        reverse: walk t = T-1 .. 0; the output stays in time order.

    Returns:
        output (T, N, H), h_n (N, H), cache (a Cache, for gru_backward).

    Example:
        >>> import numpy as np
        >>> out, h_n, _ = gru_forward(np.ones((2, 1, 1)), np.zeros((1, 1)),
        ...                           np.zeros((3, 1)), np.zeros((3, 1)), None, None)
        >>> float(h_n[0, 0])  # z = 0.5, n = 0 every step: h stays 0
        0.0
    """
    _check_reset(reset)
    x = _array("x", x, "(T, N, I)", 3)
    T, N, I = x.shape
    weight_h = _array("weight_h", weight_h, "(3H, H)", 2)
    H = weight_h.shape[1]
    _check_shape("weight_h", weight_h, (3 * H, H), "(3H, H)")
    weight_x = _array("weight_x", weight_x, "(3H, I)", 2)
    _check_shape("weight_x", weight_x, (3 * H, I), "(3H, I)")
    h0 = _array("h0", h0, "(N, H)", 2)
    _check_shape("h0", h0, (N, H), "(N, H)")
    b_x = None if bias_x is None else _array("bias_x", bias_x, "(3H,)", 1)
    b_h = None if bias_h is None else _array("bias_h", bias_h, "(3H,)", 1)
    for name, b in (("bias_x", b_x), ("bias_h", b_h)):
        if b is not None:
            _check_shape(name, b, (3 * H,), "(3H,)")
    if mask is None:
        m_all = np.ones((T, N, 1))  # (T, N, 1)
    else:
        m = _array("mask", mask, "(T, N)", 2)
        _check_shape("mask", m, (T, N), "(T, N)")
        if not np.all((m == 0) | (m == 1)):
            raise ValueError(f"mask: expected only 0 and 1, got values {np.unique(m)[:6]}")
        m_all = m[:, :, None]  # (T, N, 1)

    U_r, U_z, U_n = weight_h[:H], weight_h[H : 2 * H], weight_h[2 * H :]  # (H, H) each
    b_hr, b_hz, b_hn = (np.zeros(H),) * 3 if b_h is None else (b_h[:H], b_h[H : 2 * H], b_h[2 * H :])

    gx = x @ weight_x.T  # (T, N, 3H) the input projection, hoisted out of the loop
    if b_x is not None:
        gx = gx + b_x  # (T, N, 3H)

    output = np.zeros((T, N, H))  # (T, N, H)
    h_prev_all, r_all, z_all, n_all = (np.zeros((T, N, H)) for _ in range(4))  # (T, N, H) each
    hn_all = np.zeros((T, N, H)) if reset == "after" else None  # (T, N, H)

    h = h0  # (N, H)
    for t in range(T - 1, -1, -1) if reverse else range(T):
        h_prev = h  # (N, H)
        gx_r, gx_z, gx_n = gx[t, :, :H], gx[t, :, H : 2 * H], gx[t, :, 2 * H :]  # (N, H) each
        r = _sigmoid(gx_r + h_prev @ U_r.T + b_hr)  # (N, H)
        z = _sigmoid(gx_z + h_prev @ U_z.T + b_hz)  # (N, H)
        if reset == "before":
            a_n = gx_n + (r * h_prev) @ U_n.T + b_hn  # (N, H)
        else:
            hn = h_prev @ U_n.T + b_hn  # (N, H)
            a_n = gx_n + r * hn  # (N, H)
            hn_all[t] = hn
        n = np.tanh(a_n)  # (N, H)
        h_new = z * n + (1.0 - z) * h_prev  # (N, H)
        m = m_all[t]  # (N, 1)
        h = m * h_new + (1.0 - m) * h_prev  # (N, H)
        output[t] = m * h_new  # (N, H)
        h_prev_all[t], r_all[t], z_all[t], n_all[t] = h_prev, r, z, n

    cache = Cache(
        x=x, h0=h0, weight_x=weight_x, weight_h=weight_h,
        has_bias_x=b_x is not None, has_bias_h=b_h is not None,
        reset=reset, mask=m_all, reverse=bool(reverse),
        h_prev=h_prev_all, r=r_all, z=z_all, n=n_all, hn=hn_all,
    )  # fmt: skip
    return output, h, cache


def gru_backward(d_output, d_h_n, cache):
    """Backpropagation through time for gru_forward (derivation: module docstring).

    Args:
        d_output: (T, N, H) gradient of the loss with respect to ``output``.
        d_h_n: (N, H) gradient with respect to ``h_n`` (zeros if h_n is unused).
        cache: the third value gru_forward returned.

    Returns:
        dict with "x" (T, N, I), "h0" (N, H), "weight_x" (3H, I), "weight_h" (3H, H),
        "bias_x", "bias_h" (3H,), the bias entries None when that bias was None.
    """
    if not isinstance(cache, Cache):
        raise ValueError(f"cache: expected the Cache returned by gru_forward, got {type(cache).__name__}")
    T, N, H = cache.h_prev.shape
    d_output = _array("d_output", d_output, "(T, N, H)", 3)
    _check_shape("d_output", d_output, (T, N, H), "(T, N, H)")
    d_h_n = _array("d_h_n", d_h_n, "(N, H)", 2)
    _check_shape("d_h_n", d_h_n, (N, H), "(N, H)")
    U_r, U_z, U_n = cache.weight_h[:H], cache.weight_h[H : 2 * H], cache.weight_h[2 * H :]  # (H, H)

    dgx = np.zeros((T, N, 3 * H))  # (T, N, 3H) gradient of gx = [a_r, a_z, a_n] input parts
    dgh = np.zeros((T, N, 3 * H))  # (T, N, 3H) gradient of the hidden products (+ b_h)
    dh = d_h_n  # (N, H) gradient of the state leaving the step
    for t in range(T) if cache.reverse else range(T - 1, -1, -1):
        h_prev, r, z, n = cache.h_prev[t], cache.r[t], cache.z[t], cache.n[t]  # (N, H) each
        m = cache.mask[t]  # (N, 1)
        dh_new = m * (d_output[t] + dh)  # (N, H) upstream + carried
        dh_prev = (1.0 - m) * dh + dh_new * (1.0 - z)  # (N, H)
        dn = dh_new * z  # (N, H)
        da_n = dn * (1.0 - n * n)  # (N, H)
        dz = dh_new * (n - h_prev)  # (N, H)
        da_z = dz * z * (1.0 - z)  # (N, H)
        if cache.reset == "before":
            drh = da_n @ U_n  # (N, H) gradient of r ⊙ h_prev
            dr = drh * h_prev  # (N, H)
            dh_prev = dh_prev + drh * r  # (N, H)
            da_r = dr * r * (1.0 - r)  # (N, H)
            dgh[t] = np.concatenate([da_r, da_z, da_n], axis=1)  # (N, 3H)
            dh_prev = dh_prev + da_r @ U_r + da_z @ U_z  # (N, H)
        else:
            hn = cache.hn[t]  # (N, H)
            dhn = da_n * r  # (N, H)
            dr = da_n * hn  # (N, H)
            da_r = dr * r * (1.0 - r)  # (N, H)
            dgh[t] = np.concatenate([da_r, da_z, dhn], axis=1)  # (N, 3H)
            dh_prev = dh_prev + dgh[t] @ cache.weight_h  # (N, H)
        dgx[t] = np.concatenate([da_r, da_z, da_n], axis=1)  # (N, 3H)
        dh = dh_prev  # (N, H)

    x2 = cache.x.reshape(T * N, -1)  # (T·N, I)
    dgx2 = dgx.reshape(T * N, 3 * H)  # (T·N, 3H)
    dgh2 = dgh.reshape(T * N, 3 * H)  # (T·N, 3H)
    h_prev2 = cache.h_prev.reshape(T * N, H)  # (T·N, H)
    dx = dgx @ cache.weight_x  # (T, N, I)
    dW_x = dgx2.T @ x2  # (3H, I)
    if cache.reset == "before":
        rh2 = (cache.r * cache.h_prev).reshape(T * N, H)  # (T·N, H) r ⊙ h_prev
        dW_h = np.concatenate([dgh2[:, : 2 * H].T @ h_prev2, dgh2[:, 2 * H :].T @ rh2])  # (3H, H)
    else:
        dW_h = dgh2.T @ h_prev2  # (3H, H)
    return {
        "x": dx,
        "h0": dh,
        "weight_x": dW_x,
        "weight_h": dW_h,
        "bias_x": dgx2.sum(axis=0) if cache.has_bias_x else None,  # (3H,)
        "bias_h": dgh2.sum(axis=0) if cache.has_bias_h else None,  # (3H,)
    }


# ----------------------------------------------------------------------------------
# the stack: layers × directions, torch.nn.GRU's shapes, grukit's parameter names
# ----------------------------------------------------------------------------------


def param_names(num_layers, *, bidirectional=False, bias=True):
    """grukit's parameter names (DESIGN §8) in the order layer, direction, kind.

    >>> param_names(1)
    ['weight_x_l0', 'weight_h_l0', 'bias_x_l0', 'bias_h_l0']
    """
    kinds = ("weight_x", "weight_h", "bias_x", "bias_h") if bias else ("weight_x", "weight_h")
    suffixes = ("", "_reverse") if bidirectional else ("",)
    return [f"{kind}_l{k}{s}" for k in range(num_layers) for s in suffixes for kind in kinds]


@dataclass(frozen=True)
class StackCache:
    """What gru_stack_forward saves: one Cache per (layer, direction)."""

    layers: tuple  # layers[k][d] is the Cache of layer k, direction d (0 forward, 1 reverse)
    hidden_size: int  # H
    has_bias: bool  # whether the params had biases


def lengths_to_mask(lengths, T):
    """(N,) ints in 1..T → (T, N) mask of 0/1, 1 where t < lengths[n]."""
    lengths_arr = np.asarray(lengths)
    if lengths_arr.ndim != 1 or not np.issubdtype(lengths_arr.dtype, np.integer):
        raise ValueError(
            f"lengths: expected a 1-d array of ints (N,), got {lengths_arr.dtype} shape {lengths_arr.shape}"
        )
    if lengths_arr.size and (lengths_arr.min() < 1 or lengths_arr.max() > T):
        raise ValueError(f"lengths: expected values in 1..{T}, got min {lengths_arr.min()} max {lengths_arr.max()}")
    return (np.arange(T)[:, None] < lengths_arr[None, :]).astype(np.float64)  # (T, N)


def gru_stack_forward(x, h0, params, *, reset, lengths=None, bidirectional=False):
    """A multi-layer, optionally bidirectional GRU with torch.nn.GRU's shapes (no dropout).

    Layer k > 0 reads the concatenated outputs of layer k−1; the reverse direction
    of every layer starts at each sequence's own last step (lengths).

    Args:
        x: (T, N, I) time-major.
        h0: (L·D, N, H), index k·D + d (d = 1 the reverse direction), or None (zeros).
        params: dict name → array with the names of ``param_names`` (biases optional,
            all or none).
        reset: "before" | "after".
        lengths: (N,) ints in 1..T, or None (all T).
        bidirectional: D = 2 when True.

    Returns:
        output (T, N, D·H), h_n (L·D, N, H), cache (for gru_stack_backward).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> names = param_names(2, bidirectional=True)
        >>> shapes = {"weight_x_l0": (6, 3), "weight_x_l1": (6, 4)}
        >>> p = {k: rng.normal(size=shapes.get(k.removesuffix("_reverse"),
        ...      (6, 2) if "weight_h" in k else (6,))) for k in names}
        >>> out, h_n, _ = gru_stack_forward(rng.normal(size=(5, 1, 3)), None, p,
        ...                                 reset="after", lengths=[3], bidirectional=True)
        >>> out.shape, h_n.shape
        ((5, 1, 4), (4, 1, 2))
    """
    _check_reset(reset)
    if not isinstance(params, dict):
        raise ValueError(f"params: expected a dict of name → array, got {type(params).__name__}")
    x = _array("x", x, "(T, N, I)", 3)
    T, N, _ = x.shape
    D = 2 if bidirectional else 1
    if "weight_h_l0" not in params:
        raise ValueError(f"params: expected 'weight_h_l0' among the keys, got {sorted(params)}")
    H = np.shape(params["weight_h_l0"])[-1]
    L = 0
    while f"weight_x_l{L}" in params:
        L += 1
    has_bias = "bias_x_l0" in params
    expected = param_names(L, bidirectional=bidirectional, bias=has_bias)
    if L == 0 or set(params) != set(expected):
        raise ValueError(
            f"params: expected the keys {expected}, got {sorted(params)} "
            f"(extra {sorted(set(params) - set(expected))}, missing {sorted(set(expected) - set(params))})"
        )
    for k in range(L):
        I_k = x.shape[2] if k == 0 else D * H
        for suffix in ("", "_reverse")[:D]:
            shapes = {  # kind -> (expected shape, how to say it)
                "weight_x": ((3 * H, I_k), "(3H, I)" if k == 0 else "(3H, D·H)"),
                "weight_h": ((3 * H, H), "(3H, H)"),
            }
            if has_bias:
                shapes.update(bias_x=((3 * H,), "(3H,)"), bias_h=((3 * H,), "(3H,)"))
            for kind, (shape, doc) in shapes.items():
                name = f"{kind}_l{k}{suffix}"
                _check_shape(f"params[{name!r}]", params[name], shape, doc)
    mask = None if lengths is None else lengths_to_mask(lengths, T)  # (T, N)
    if mask is not None and mask.shape[1] != N:
        raise ValueError(f"lengths: expected {N} values (one per sequence), got {mask.shape[1]}")
    if h0 is None:
        h0 = np.zeros((L * D, N, H))  # (L·D, N, H)
    h0 = _array("h0", h0, "(L·D, N, H)", 3)
    _check_shape("h0", h0, (L * D, N, H), "(L·D, N, H)")

    layer_in = x  # (T, N, I) then (T, N, D·H)
    h_n = np.zeros((L * D, N, H))  # (L·D, N, H)
    caches = []
    for k in range(L):
        outs, layer_caches = [], []
        for d, suffix in enumerate(("", "_reverse")[:D]):
            name = f"_l{k}{suffix}"
            b_x, b_h = (params[f"bias_x{name}"], params[f"bias_h{name}"]) if has_bias else (None, None)
            out, h_n[k * D + d], cache = gru_forward(
                layer_in, h0[k * D + d], params[f"weight_x{name}"], params[f"weight_h{name}"], b_x, b_h,
                reset=reset, mask=mask, reverse=d == 1,
            )  # fmt: skip
            outs.append(out)  # (T, N, H)
            layer_caches.append(cache)
        layer_in = np.concatenate(outs, axis=2)  # (T, N, D·H)
        caches.append(tuple(layer_caches))
    return layer_in, h_n, StackCache(layers=tuple(caches), hidden_size=H, has_bias=has_bias)


def gru_stack_backward(d_output, d_h_n, cache):
    """BPTT through gru_stack_forward: layers top to bottom, both directions each.

    Args:
        d_output: (T, N, D·H).  d_h_n: (L·D, N, H).  cache: from gru_stack_forward.

    Returns:
        dict with "x" (T, N, I), "h0" (L·D, N, H) and one entry per parameter name.
    """
    if not isinstance(cache, StackCache):
        raise ValueError(f"cache: expected the StackCache from gru_stack_forward, got {type(cache).__name__}")
    L, D, H = len(cache.layers), len(cache.layers[0]), cache.hidden_size
    T, N = cache.layers[0][0].x.shape[:2]
    d_output = _array("d_output", d_output, "(T, N, D·H)", 3)
    _check_shape("d_output", d_output, (T, N, D * H), "(T, N, D·H)")
    d_h_n = _array("d_h_n", d_h_n, "(L·D, N, H)", 3)
    _check_shape("d_h_n", d_h_n, (L * D, N, H), "(L·D, N, H)")

    grads = {}
    d_h0 = np.zeros((L * D, N, H))  # (L·D, N, H)
    d_out = d_output  # (T, N, D·H) gradient of layer k's output
    for k in range(L - 1, -1, -1):
        d_in = 0.0  # becomes (T, N, I_k): both directions read the same input
        for d, suffix in enumerate(("", "_reverse")[:D]):
            g = gru_backward(d_out[:, :, d * H : (d + 1) * H], d_h_n[k * D + d], cache.layers[k][d])
            d_in = d_in + g["x"]  # (T, N, I_k)
            d_h0[k * D + d] = g["h0"]
            kinds = ("weight_x", "weight_h", "bias_x", "bias_h") if cache.has_bias else ("weight_x", "weight_h")
            for kind in kinds:
                grads[f"{kind}_l{k}{suffix}"] = g[kind]
        d_out = d_in
    grads["x"] = d_out  # (T, N, I)
    grads["h0"] = d_h0  # (L·D, N, H)
    return grads


# ----------------------------------------------------------------------------------
# the seed notes' from-scratch model: GRU layer + dense output, loss, BPTT, Adam
# ----------------------------------------------------------------------------------


def softmax_cross_entropy(logits, targets):
    """Mean softmax cross-entropy over the steps with a target, and its gradient.

        p = softmax(logits),  loss = −(1/K) Σ_{targets ≥ 0} log p[target],
        d_logits = (p − onehot(target)) / K on those steps, 0 elsewhere,

    where K counts the steps with a target. A target < 0 means "no target here"
    (e.g. the first k steps of a k-step-delay task, or padding).

    Args:
        logits: (T, N, O).  targets: (T, N) ints in −1..O−1.

    Returns:
        (loss: float, d_logits (T, N, O)).

    >>> import numpy as np
    >>> loss, d = softmax_cross_entropy(np.zeros((1, 1, 2)), np.array([[1]]))
    >>> round(loss, 6), d.tolist()
    (0.693147, [[[0.5, -0.5]]])
    """
    logits = _array("logits", logits, "(T, N, O)", 3)
    targets = np.asarray(targets)
    if targets.shape != logits.shape[:2] or not np.issubdtype(targets.dtype, np.integer):
        raise ValueError(
            f"targets: expected ints of shape (T, N) = {logits.shape[:2]}, got {targets.dtype} {targets.shape}"
        )
    O = logits.shape[2]
    if targets.size and (targets.max() >= O or targets.min() < -1):
        bad = targets.max() if targets.max() >= O else targets.min()
        raise ValueError(f"targets: expected values in -1 (no target) … {O - 1} (output_units − 1), got {bad}")
    shifted = logits - logits.max(axis=2, keepdims=True)  # (T, N, O) for exp's sake
    log_p = shifted - np.log(np.exp(shifted).sum(axis=2, keepdims=True))  # (T, N, O)
    has = targets >= 0  # (T, N)
    K = max(int(has.sum()), 1)
    t_idx = np.where(has, targets, 0)  # (T, N)
    log_p_target = np.take_along_axis(log_p, t_idx[:, :, None], axis=2)[:, :, 0]  # (T, N)
    loss = -float((log_p_target * has).sum()) / K
    d_logits = np.exp(log_p)  # (T, N, O)
    np.put_along_axis(d_logits, t_idx[:, :, None], np.take_along_axis(d_logits, t_idx[:, :, None], 2) - 1.0, 2)
    d_logits = d_logits * has[:, :, None] / K  # (T, N, O)
    return loss, d_logits


class GRU:
    """A GRU layer and a dense output layer, trained from scratch in NumPy.

        h_t = GRU(x_t, h_{t−1}),  h_0 = 0           (gru_forward; module docstring)
        y_t = W_y h_t + b_y                          logits, (T, N, O)
        loss = softmax_cross_entropy(y, targets)    one class per step
        θ ← Adam(θ, clip(∇θ loss))                   global-norm clipping, then Adam

    Parameters (all float64, U(−1/√H, 1/√H) like torch): ``weight_x`` (3H, I),
    ``weight_h`` (3H, H), ``bias_x``, ``bias_h`` (3H,), ``weight_y`` (O, H), ``bias_y`` (O,).

    Example (learn to echo the bit seen 1 step earlier):
        >>> import numpy as np
        >>> model, rng = GRU(1, 8, 2, seed=0), np.random.default_rng(0)
        >>> bits = rng.integers(0, 2, size=(10, 16))
        >>> y = np.vstack([np.full((1, 16), -1), bits[:-1]])  # no target at t = 0
        >>> first = model.train_step(bits[:, :, None], y, lr=0.05)
        >>> last = [model.train_step(bits[:, :, None], y, lr=0.05) for _ in range(100)][-1]
        >>> last < first
        True
    """

    def __init__(self, input_units, hidden_units, output_units, *, seed=0, reset="before"):
        _check_reset(reset)
        for name, v in (("input_units", input_units), ("hidden_units", hidden_units), ("output_units", output_units)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name}: expected a positive int, got {v!r}")
        I, H, O = int(input_units), int(hidden_units), int(output_units)
        self.reset = reset
        rng = np.random.default_rng(seed)
        bound = 1.0 / math.sqrt(H)
        shapes = {
            "weight_x": (3 * H, I),
            "weight_h": (3 * H, H),
            "bias_x": (3 * H,),
            "bias_h": (3 * H,),
            "weight_y": (O, H),
            "bias_y": (O,),
        }
        self.params = {k: rng.uniform(-bound, bound, size=s) for k, s in shapes.items()}
        self._adam_m = {k: np.zeros_like(v) for k, v in self.params.items()}  # first moments
        self._adam_v = {k: np.zeros_like(v) for k, v in self.params.items()}  # second moments
        self._adam_t = 0  # steps taken
        self._cache = None  # (gru cache, h) from the last forward

    def forward(self, x):
        """x (T, N, I) → logits (T, N, O); keeps what backward needs."""
        p = self.params
        x = _array("x", x, "(T, N, I)", 3)
        h0 = np.zeros((x.shape[1], p["weight_h"].shape[1]))  # (N, H)
        h, _, cache = gru_forward(x, h0, p["weight_x"], p["weight_h"], p["bias_x"], p["bias_h"], reset=self.reset)
        self._cache = (cache, h)  # h: (T, N, H)
        return h @ p["weight_y"].T + p["bias_y"]  # (T, N, O)

    def backward(self, d_logits):
        """d_logits (T, N, O) → dict of gradients, one per parameter (BPTT)."""
        if self._cache is None:
            raise ValueError("d_logits: call forward before backward")
        cache, h = self._cache
        T, N, H = h.shape
        d_logits = _array("d_logits", d_logits, "(T, N, O)", 3)
        _check_shape("d_logits", d_logits, (T, N, self.params["weight_y"].shape[0]), "(T, N, O)")
        d2 = d_logits.reshape(T * N, -1)  # (T·N, O)
        d_h = d_logits @ self.params["weight_y"]  # (T, N, H)
        g = gru_backward(d_h, np.zeros((N, H)), cache)
        return {
            "weight_x": g["weight_x"],
            "weight_h": g["weight_h"],
            "bias_x": g["bias_x"],
            "bias_h": g["bias_h"],
            "weight_y": d2.T @ h.reshape(T * N, H),  # (O, H)
            "bias_y": d2.sum(axis=0),  # (O,)
        }

    loss = staticmethod(softmax_cross_entropy)

    def adam_step(self, grads, lr, *, clip=1.0, beta1=0.9, beta2=0.999, eps=1e-8):
        """Clip the gradients to global norm ≤ clip, then one Adam update in place."""
        norm = math.sqrt(sum(float((g * g).sum()) for g in grads.values()))
        scale = min(1.0, clip / (norm + 1e-12))
        self._adam_t += 1
        for k, theta in self.params.items():
            g = grads[k] * scale
            self._adam_m[k] = beta1 * self._adam_m[k] + (1 - beta1) * g
            self._adam_v[k] = beta2 * self._adam_v[k] + (1 - beta2) * g * g
            m_hat = self._adam_m[k] / (1 - beta1**self._adam_t)
            v_hat = self._adam_v[k] / (1 - beta2**self._adam_t)
            theta -= lr * m_hat / (np.sqrt(v_hat) + eps)
        return norm

    def train_step(self, x, targets, lr=0.01, *, clip=1.0):
        """forward, loss, backward, Adam; returns the loss before the update."""
        logits = self.forward(x)  # (T, N, O)
        loss, d_logits = self.loss(logits, targets)
        self.adam_step(self.backward(d_logits), lr, clip=clip)
        return loss

    def predict(self, x):
        """x (T, N, I) → the most likely class per step, (T, N) ints."""
        return self.forward(x).argmax(axis=2)
