"""Argument checks shared by the modules: each raises with the argument's name,
what was expected and what was given.

Example:
    >>> import torch
    >>> from grukit import _checks
    >>> _checks.positive_int("hidden_size", 32)
    32
    >>> _checks.positive_int("hidden_size", 0)
    Traceback (most recent call last):
    ValueError: hidden_size: expected a positive integer, got 0
    >>> _checks.tensor("x", torch.zeros(2, 3), dims=(3,))
    Traceback (most recent call last):
    ValueError: x: expected a tensor of rank 3, got rank 2 (shape (2, 3))
"""
from __future__ import annotations

import numbers
import operator
from pathlib import Path

import numpy as np
import torch
from torch import Tensor


def tensor(name: str, value, *, dims: tuple[int, ...], dtype: torch.dtype | None = None,
           device: torch.device | None = None) -> Tensor:
    """Check that `value` is a floating tensor of rank in `dims`, matching dtype/device when given."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
    if value.dim() not in dims:
        want = " or ".join(str(d) for d in dims)
        raise ValueError(
            f"{name}: expected a tensor of rank {want}, got rank {value.dim()} (shape {tuple(value.shape)})"
        )
    if not value.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {value.dtype}")
    if dtype is not None and value.dtype != dtype:
        raise TypeError(f"{name}: expected dtype {dtype} (the model's), got {value.dtype}")
    if device is not None and value.device != device:
        raise ValueError(f"{name}: expected a tensor on {device} (the model's device), got {value.device}")
    return value


def size(name: str, actual: int, expected: int, what: str) -> None:
    """Raise ValueError when a dimension does not match."""
    if actual != expected:
        raise ValueError(f"{name}: expected {what} {expected}, got {actual}")


def positive_int(name: str, value) -> int:
    """`value` as an int (any integral type: int, numpy.int64, a 0-d integer tensor), if it is ≥ 1."""
    try:
        number = None if isinstance(value, bool) else operator.index(value)
    except TypeError:
        number = None
    if number is None or number < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return number


def floating_dtype(name: str, value):
    """`value` if it is None or a floating-point torch dtype (the dtypes a parameter that learns can have)."""
    if value is not None and (not isinstance(value, torch.dtype) or not value.is_floating_point):
        raise ValueError(f"{name}: expected a floating-point torch dtype such as torch.float32, got {value!r}")
    return value


def flag(name: str, value) -> bool:
    """`value` if it is True or False: a string such as "no" or a number would be read by its truth."""
    if not isinstance(value, bool):
        raise TypeError(f"{name}: expected True or False, got {value!r}")
    return value


def switch(name: str, value) -> bool:
    """An on/off setting as torch.nn.GRU takes it (True/False, a NumPy bool, 0 or 1) as a bool; a string such
    as "False" or any other value is refused, where bool() would read it as on."""
    if isinstance(value, (bool, np.bool_)) or (isinstance(value, numbers.Integral) and value in (0, 1)):
        return bool(value)
    raise TypeError(f"{name}: expected True or False, got {value!r}")


def probability(name: str, value) -> float:
    """`value` as a float in [0, 1): any real number (an int, float or NumPy scalar, as torch takes), not a bool."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name}: expected a number in [0, 1), got {value!r}")
    return float(value)


def not_a_file(path) -> str | None:
    """Why `path` cannot be read as a file, to end a message: 'does not exist', 'is a folder', 'is a device, pipe
    or socket' or 'cannot be reached (<the system's reason>)' (a folder on the way that may not be entered, a name
    too long); None for a regular file or a link to one.

    >>> not_a_file("/dev/null")
    'is a device, pipe or socket'
    >>> not_a_file("x" * 5000)
    'cannot be reached (File name too long)'
    """
    path = Path(path)
    try:  # is_file and is_dir answer False for most errors, but raise for these two
        if path.is_file():
            return None
        if path.is_dir():
            return "is a folder"
        return "is a device, pipe or socket" if path.exists() else "does not exist"
    except OSError as err:
        return f"cannot be reached ({err.strerror or type(err).__name__})"
