"""grukit ↔ Keras 3 `keras.layers.GRU` (and `Bidirectional`, and a `Sequential` stack of them).

Keras computes, with the flipped update gate z' = 1 − z and column blocks (z', r, h):

    z' = σ(x K_z + h R_z + b_z [+ b'_z])        r = σ(x K_r + h R_r + b_r [+ b'_r])
    n  = tanh(x K_h + b_h + (r ⊙ h) R_h)                 reset_after=False  (grukit reset="before")
    n  = tanh(x K_h + b_h + r ⊙ (h R_h + b'_h))          reset_after=True   (grukit reset="after")
    h  = z' ⊙ h_prev + (1 − z') ⊙ n

    kernel [I, 3H] = to_zrn(weight_x).T     recurrent_kernel [H, 3H] = to_zrn(weight_h).T
    bias   [2, 3H] = [to_zrn(bias_x), to_zrn(bias_h)]                   reset_after=True
    bias   [3H]    =  to_zrn(bias_x + bias_h)                           reset_after=False

reset_after=False has one bias: there every hidden bias is added outside the products
(U_n (r ⊙ h) + b_hn included), so folding b_h into b_x is the same function — exact
up to the one rounding of the sum. Going back, bias_h is 0. Everything else is a
transpose, a permutation and a negation: exact, and round trips give the same bits.

Keras runs on its torch backend here: keras is imported only inside these functions,
with KERAS_BACKEND=torch set when the variable is unset (Keras 3 imports TensorFlow at
import time otherwise). Keras is always batch-first: feed it (N, T, I) whatever the
grukit model's batch_first. Dropout is a training-time option and is not carried over.

Example:
    >>> import torch
    >>> from grukit import GRU
    >>> from grukit.interop import from_keras, to_keras
    >>> ours = GRU(3, 4, reset="after", bidirectional=True, batch_first=True)
    >>> layer = to_keras(ours)                   # keras.layers.Bidirectional(keras.layers.GRU(4, ...))
    >>> x = torch.randn(2, 5, 3)                 # (N, T, I)
    >>> torch.allclose(layer(x).cpu(), ours(x)[0], atol=1e-5)
    True
    >>> torch.equal(from_keras(layer).weight_h_l0_reverse, ours.weight_h_l0_reverse)
    True
"""
from __future__ import annotations

import logging
import os
import sys

import torch

from grukit import _checks
from grukit.interop.gates import from_zrn, to_zrn

log = logging.getLogger(__name__)


def import_keras():
    """keras, running on its torch backend (see the module docstring)."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    already = "keras" in sys.modules
    try:
        import keras
    except ImportError as err:
        raise ImportError("grukit.interop Keras converters need keras>=3: pip install 'grukit[interop]'") from err
    if not hasattr(keras, "backend") or not str(getattr(keras, "__version__", "0")).startswith("3"):
        raise ImportError(f"grukit.interop needs Keras 3, found keras {getattr(keras, '__version__', '?')}")
    backend = keras.backend.backend()
    if backend != "torch":
        how = "keras was imported before grukit set it" if already else f"KERAS_BACKEND={os.environ['KERAS_BACKEND']!r}"
        raise RuntimeError(
            f"grukit.interop needs Keras on its torch backend, but keras is running the {backend!r} backend "
            f"({how}). Set the environment variable KERAS_BACKEND=torch before keras is first imported."
        )
    return keras


# ---------------------------------------------------------------- Keras -> grukit


def _gru_layers(keras, layer) -> list:
    """The GRU-or-Bidirectional layers of `layer` (one, or a Sequential's stack)."""
    if isinstance(layer, keras.Sequential):
        parts = [part for part in layer.layers if not isinstance(part, keras.layers.InputLayer)]
        if not parts:
            raise ValueError("layer: expected a Sequential of GRU or Bidirectional(GRU) layers, got an empty one")
        for part in parts:
            inner = part.forward_layer if isinstance(part, keras.layers.Bidirectional) else part
            if not isinstance(inner, keras.layers.GRU):  # a Masking or Dropout layer: not part of a GRU
                raise TypeError(f"layer: expected a Sequential of GRU or Bidirectional(GRU) layers only, got "
                                f"{type(inner).__name__} in {part.name!r}")
        for part in parts[:-1]:
            inner = part.forward_layer if isinstance(part, keras.layers.Bidirectional) else part
            if not getattr(inner, "return_sequences", False):
                raise ValueError(f"layer: expected return_sequences=True on every layer but the last, "
                                 f"got False on {part.name!r}")
        return parts
    return [layer]


def _check_gru(keras, gru, where: str, go_backwards: bool) -> None:
    if not isinstance(gru, keras.layers.GRU):
        raise TypeError(f"{where}: expected a keras.layers.GRU or Bidirectional(GRU), got {type(gru).__name__}")
    if not gru.built:
        raise ValueError(f"{where}: the Keras layer has no weights yet; call it once or build it "
                         "(layer.build((None, None, input_size))) first")
    cell = gru.cell
    names = (getattr(cell.activation, "__name__", cell.activation),
             getattr(cell.recurrent_activation, "__name__", cell.recurrent_activation))
    if names != ("tanh", "sigmoid"):
        raise ValueError(f"{where}: expected activation='tanh' and recurrent_activation='sigmoid' "
                         f"(the GRU), got {names}")
    if bool(gru.go_backwards) != go_backwards:
        raise ValueError(f"{where}: expected go_backwards={go_backwards} (use keras.layers.Bidirectional "
                         f"for a reverse direction), got {gru.go_backwards}")


def _read(keras, variable) -> torch.Tensor:
    """A copy of a Keras variable's value (a torch tensor on the torch backend), on CPU."""
    return torch.as_tensor(keras.ops.convert_to_tensor(variable)).detach().cpu().clone()


def _directions(keras, part, k: int) -> list:
    if isinstance(part, keras.layers.Bidirectional):
        if part.merge_mode != "concat":
            raise ValueError(f"layer {k}: expected Bidirectional(merge_mode='concat') (grukit concatenates "
                             f"[forward; reverse]), got merge_mode={part.merge_mode!r}")
        _check_gru(keras, part.forward_layer, f"layer {k} forward", False)
        _check_gru(keras, part.backward_layer, f"layer {k} backward", True)
        return [part.forward_layer, part.backward_layer]
    _check_gru(keras, part, f"layer {k}", False)
    return [part]


def from_keras(layer):
    """A grukit GRU (batch_first=True) equal to a built Keras GRU, Bidirectional(GRU),
    or Sequential stack of them. Example: see the module docstring."""
    from grukit.layer import GRU

    keras = import_keras()
    stack = [_directions(keras, part, k) for k, part in enumerate(_gru_layers(keras, layer))]
    first = stack[0][0]
    H, reset_after, use_bias = first.cell.units, bool(first.cell.reset_after), bool(first.cell.use_bias)
    D = len(stack[0])
    for k, grus in enumerate(stack):
        for gru in grus:
            got = (len(grus), gru.cell.units, bool(gru.cell.reset_after), bool(gru.cell.use_bias))
            if got != (D, H, reset_after, use_bias):
                raise ValueError(f"layer {k}: expected every layer alike (directions, units, reset_after, use_bias) "
                                 f"= {(D, H, reset_after, use_bias)}, got {got}")
    kernel = _read(keras, first.cell.kernel)  # (I, 3H)
    model = GRU(kernel.shape[0], H, len(stack), bias=use_bias, batch_first=True, bidirectional=D == 2,
                reset="after" if reset_after else "before", dtype=kernel.dtype)
    with torch.no_grad():
        for k, grus in enumerate(stack):
            for d, gru in enumerate(grus):
                suffix = f"_l{k}" + ("_reverse" if d else "")
                getattr(model, "weight_x" + suffix).copy_(from_zrn(_read(keras, gru.cell.kernel).T))  # (3H, I)
                getattr(model, "weight_h" + suffix).copy_(from_zrn(_read(keras, gru.cell.recurrent_kernel).T))
                if not use_bias:
                    continue
                bias = _read(keras, gru.cell.bias)  # (2, 3H) or (3H,)
                b_x, b_h = (bias[0], bias[1]) if reset_after else (bias, torch.zeros_like(bias))
                getattr(model, "bias_x" + suffix).copy_(from_zrn(b_x))  # (3H,)
                getattr(model, "bias_h" + suffix).copy_(from_zrn(b_h))  # (3H,)
    return model


# ---------------------------------------------------------------- grukit -> Keras


def _keras_gru(keras, model, suffix: str, *, go_backwards: bool, return_sequences: bool, return_state: bool,
               dtype: str):
    """A built keras.layers.GRU holding one direction of one layer of `model`."""
    I = getattr(model, "weight_x" + suffix).shape[1]
    has_bias = getattr(model, "bias_x" + suffix) is not None
    gru = keras.layers.GRU(model.hidden_size, reset_after=model.reset == "after", use_bias=has_bias,
                           go_backwards=go_backwards, return_sequences=return_sequences,
                           return_state=return_state, dtype=dtype, kernel_initializer="zeros",
                           recurrent_initializer="zeros")  # overwritten below; Keras's orthogonal one has no float16
    gru.build((None, None, I))
    _write(gru, model, suffix)
    return gru


def _write(gru, model, suffix: str) -> None:
    """Copy one direction of one layer of `model` into a built Keras GRU."""
    w_x, w_h, b_x, b_h = (getattr(model, name + suffix) for name in ("weight_x", "weight_h", "bias_x", "bias_h"))
    with torch.no_grad():
        gru.cell.kernel.assign(to_zrn(w_x).T.contiguous())  # (I, 3H)
        gru.cell.recurrent_kernel.assign(to_zrn(w_h).T.contiguous())  # (H, 3H)
        if b_x is not None:
            if model.reset == "after":
                bias = torch.stack([to_zrn(b_x), to_zrn(b_h)])  # (2, 3H)
            else:
                bias = to_zrn(b_x + b_h)  # (3H,): b_h adds outside every product when reset="before"
            gru.cell.bias.assign(bias)


def to_keras(model, *, return_sequences: bool = True, return_state: bool = False):
    """A built Keras layer equal to a grukit GRU: keras.layers.GRU, Bidirectional(GRU) for
    bidirectional=True, and a keras.Sequential of those for num_layers > 1.

    return_sequences, return_state: the Keras options of the (last) layer; the defaults
    give grukit's `output`. A Sequential cannot return states (return_state must be False).
    Example: see the module docstring.
    """
    from grukit.layer import GRU

    if not isinstance(model, GRU):
        raise TypeError(f"model: expected a grukit.GRU, got {type(model).__name__}")
    return_sequences = _checks.flag("return_sequences", return_sequences)
    return_state = _checks.flag("return_state", return_state)
    if model.num_layers > 1 and return_state:
        raise ValueError("return_state: expected False for num_layers > 1 (the model becomes a keras.Sequential, "
                         "which returns only the last layer's output), got True")
    keras = import_keras()
    dtype = str(model.weight_x_l0.dtype).removeprefix("torch.")
    if model.dropout and model.num_layers > 1:
        log.info("to_keras: dropout=%s between layers is a training option and is not carried over", model.dropout)
    parts = []
    for k in range(model.num_layers):
        last = k == model.num_layers - 1
        options = {"return_sequences": return_sequences or not last, "return_state": return_state, "dtype": dtype}
        forward = _keras_gru(keras, model, f"_l{k}", go_backwards=False, **options)
        if not model.bidirectional:
            parts.append(forward)
            continue
        backward = _keras_gru(keras, model, f"_l{k}_reverse", go_backwards=True, **options)
        both = keras.layers.Bidirectional(forward, backward_layer=backward, merge_mode="concat", dtype=dtype)
        both.build((None, None, forward.cell.kernel.shape[0]))
        _write(both.forward_layer, model, f"_l{k}")  # Bidirectional may rebuild its layers: write again
        _write(both.backward_layer, model, f"_l{k}_reverse")
        parts.append(both)
    if len(parts) == 1:
        return parts[0]
    stack = keras.Sequential([keras.Input((None, model.input_size), dtype=dtype), *parts])
    return stack
