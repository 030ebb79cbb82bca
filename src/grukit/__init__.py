"""grukit: the textbook Gated Recurrent Unit on PyTorch.

    r = σ(W_r x + U_r h_prev + b_r)      z = σ(W_z x + U_z h_prev + b_z)
    n = tanh(W_n x + U_n (r ⊙ h_prev) + b_n)      h = z ⊙ n + (1 − z) ⊙ h_prev

Example:
    >>> import torch, grukit
    >>> gru = grukit.GRU(3, 8)
    >>> output, h_n = gru(torch.randn(10, 2, 3))
    >>> output.shape
    torch.Size([10, 2, 8])
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from grukit.baselines import LSTM, RNN
    from grukit.cell import GRUCell
    from grukit.checkpoint import load, save
    from grukit.layer import GRU

# each public name and the module it comes from; imported on first use, so that `import grukit.cli` (the
# `grukit` command) starts without torch and Ctrl-C during torch's import is the command's to handle
_WHERE = {"GRU": "grukit.layer", "GRUCell": "grukit.cell", "LSTM": "grukit.baselines", "RNN": "grukit.baselines",
          "load": "grukit.checkpoint", "save": "grukit.checkpoint"}
__all__ = ["GRU", "GRUCell", "LSTM", "RNN", "load", "save"]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'grukit' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value  # later look-ups find it directly
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
