"""Backends of the GRU sequence op, one module each, chosen through one registry.

Every backend computes one layer in one direction over a whole (padded) sequence,
with the equations of DESIGN §1 (gate order r, z, n; h = z*n + (1-z)*h_prev):

    sequence(x, h0, weight_x, weight_h, bias_x, bias_h, *, reset, mask, reverse)
        x         (T, N, I)   input, time-major
        h0        (N, H)      initial state
        weight_x  (3H, I)     rows r, z, n
        weight_h  (3H, H)
        bias_x    (3H,) or None
        bias_h    (3H,) or None
        reset     "before" | "after"
        mask      (T, N) same dtype as x, or None: 1 where step t of sequence n is real.
                  On a masked step (mask 0) the state is carried unchanged and the
                  output is 0, so a reverse pass starts at each sequence's own last step.
                  x must be finite on masked steps too (0·NaN is NaN; grukit.GRU zeroes them).
        reverse   walk t = T-1 .. 0 instead of 0 .. T-1 (output stays in time order)
      -> (output (T, N, H), h_n (N, H)), differentiable in every tensor argument
         (`eager` to any order; `fused` and `cpu` have a hand-written first-order backward
         and refuse create_graph=True, see `grukit.kernels._first_order`).
         T may be 0: the output is then (0, N, H) and h_n a copy of h0 (grukit.GRU itself
         refuses T = 0).

    step(x_t, h_prev, weight_x, weight_h, bias_x, bias_h, *, reset) -> h   (N, H)
        one time step, for streaming inference.

    plain_step(x_t, h_prev, weight_x, weight_h, bias_x, bias_h, after) -> h   (optional)
        `step` without its Python checks, for a caller that has made sure of the plain case:
        CPU tensors of one dtype, float32 or float64, of the shapes above, no gradient wanted,
        outside torch.func transforms and forward-mode AD; h_prev (N, H) gives h (N, H), and
        (1, N, H), a one-layer GRU's state, gives (1, N, H). GRU.step uses it when it can.

A backend module provides `sequence`, `step` and `available() -> bool`, and may provide
`plain_step_op() -> Callable | None`. The layer only
ever calls `get(name, device)`; a new backend is one module plus one registry line.

Example:
    >>> import torch
    >>> from grukit import kernels
    >>> kernels.get("auto", torch.device("cpu")).name in kernels.names()
    True
"""
from __future__ import annotations

import functools
import importlib
import logging
from dataclasses import dataclass
from types import ModuleType
from typing import Callable

import torch

log = logging.getLogger(__name__)

# name -> module path, in order of preference for `auto` (fastest first)
_MODULES = {
    "cpu": "grukit.kernels.cpu",
    "fused": "grukit.kernels.fused",
    "eager": "grukit.kernels.eager",
}
# which backends `auto` may pick on each device type, fastest first
_AUTO = {
    "cuda": ("fused",),
    "cpu": ("cpu", "fused"),
}


@dataclass(frozen=True)
class Backend:
    name: str  # registry name, e.g. "fused"
    sequence: Callable  # see module docstring
    step: Callable  # see module docstring
    plain_step: Callable | None = None  # see module docstring; None where the backend has none


def names() -> tuple[str, ...]:
    """All backend names that `backend=` accepts (besides "auto")."""
    return tuple(_MODULES)


@functools.lru_cache(maxsize=None)  # a backend's availability is fixed for the life of the process
def _load(name: str) -> ModuleType | None:
    try:
        module = importlib.import_module(_MODULES[name])
    except ImportError as err:  # a backend whose module is not there yet or lacks a dependency
        log.debug("backend %s not importable: %s", name, err)
        return None
    is_available = getattr(module, "available", None)  # None: a package still without its module
    return module if is_available is not None and is_available() else None


def available(name: str) -> bool:
    """True when backend `name` can run in this process."""
    check_name(name)
    return name == "auto" or _load(name) is not None


def runs_on(name: str, device_type: str) -> bool:
    """True when backend `name` can run on tensors of `device_type` ("cpu", "cuda", ...) in this process: "auto"
    always, "eager" wherever it imports, the others where `auto` may pick them and they are available."""
    check_name(name)
    return name == "auto" or (available(name) and (name == "eager" or name in _AUTO.get(device_type, ("fused",))))


def check_name(name: str) -> str:
    """`name`, or ValueError unless it is a backend name or "auto"."""
    if name != "auto" and name not in _MODULES:
        raise ValueError(f"backend: expected one of {('auto',) + names()}, got {name!r}")
    return name


def get(name: str, device: torch.device) -> Backend:
    """The backend called `name`, or for "auto" the fastest one available on `device`."""
    check_name(name)
    return _get(name, device.type)


def plain_step(name: str) -> Callable | None:
    """The plain_step of the backend `name` runs on CPU tensors ("auto": the one it picks there), or None where
    that backend has none. GRU.step asks at every step: `get` without a device to make."""
    return _get(check_name(name), "cpu").plain_step


@functools.lru_cache(maxsize=None)
def _get(name: str, device: str) -> Backend:
    candidates = _AUTO.get(device, ("fused",)) if name == "auto" else (name,)
    for candidate in candidates:
        module = _load(candidate)
        if module is not None:
            plain_step = module.plain_step_op() if hasattr(module, "plain_step_op") else None
            return Backend(candidate, module.sequence, module.step, plain_step)
    if name == "auto":
        module = _load("eager")
        return Backend("eager", module.sequence, module.step)
    raise ValueError(f"backend: {name!r} is not available in this process (device {device}; the warning logged "
                     f"when it was tried says why); backend='auto' picks one that is")
