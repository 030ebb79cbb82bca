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
from grukit.baselines import LSTM, RNN
from grukit.cell import GRUCell
from grukit.checkpoint import load, save
from grukit.layer import GRU

__all__ = ["GRU", "GRUCell", "LSTM", "RNN", "load", "save"]
__version__ = "0.1.0"
