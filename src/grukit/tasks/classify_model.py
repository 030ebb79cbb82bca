"""Sentence classifier: word embedding → bidirectional GRU → [last states; max over time] → linear.

    e_t = dropout(E[w_t])                             (N, T, D)
    o_t = [h_t^fwd ; h_t^rev] = BiGRU(e)              (N, T, 2H)  grukit.GRU, lengths respected
    v   = [h_n^fwd ; h_n^rev ; max_t o_t]             (N, 4H)     (padding excluded from the max)
    p(y | w) = softmax(W_o · dropout(v) + b_o)        (N, C)

The vocabulary (newline-joined words) is part of the config, so a checkpoint can
classify new text on its own.

Example:
    >>> import torch
    >>> from grukit.tasks.classify_model import SentenceClassifier
    >>> m = SentenceClassifier(vocabulary="bad\\ngood", classes=2, embedding=8, hidden_size=4)
    >>> m(torch.tensor([[2, 3, 0], [3, 0, 0]]), torch.tensor([2, 1])).shape
    torch.Size([2, 2])
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

import grukit
from grukit.checkpoint import register


@dataclass(frozen=True)
class ClassifierConfig:
    vocabulary: str  # known words joined by "\n"; id = position + 2 (0 padding, 1 unknown)
    classes: int  # C, number of labels
    embedding: int = 128  # D, word embedding size
    hidden_size: int = 128  # H, GRU units per direction
    dropout: float = 0.5  # on embeddings and before the head
    reset: str = "before"  # GRU reset placement (DESIGN §1)
    backend: str = "auto"  # GRU kernel backend


@register
class SentenceClassifier(nn.Module):
    __doc__ = __doc__

    def __init__(self, vocabulary: str, classes: int, embedding: int = 128, hidden_size: int = 128,
                 dropout: float = 0.5, reset: str = "before", backend: str = "auto"):
        super().__init__()
        self.config = ClassifierConfig(vocabulary, classes, embedding, hidden_size, dropout, reset, backend)
        n_words = len(vocabulary.split("\n")) + 2 if vocabulary else 2
        self.embed = nn.Embedding(n_words, embedding, padding_idx=0)
        self.gru = grukit.GRU(embedding, hidden_size, batch_first=True, bidirectional=True, reset=reset,
                              backend=backend)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(4 * hidden_size, classes)

    def features(self, ids: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """(outputs (N, T, 2H), sentence vector v (N, 4H))."""
        e = self.drop(self.embed(ids))  # (N, T, D)
        out, h_n = self.gru(e, lengths=lengths.cpu())  # (N, T, 2H), (2, N, H)
        T = out.shape[1]
        pad = torch.arange(T, device=ids.device)[None, :] >= lengths.to(ids.device)[:, None]  # (N, T)
        pooled = out.masked_fill(pad[:, :, None], float("-inf")).amax(dim=1)  # (N, 2H)
        return out, torch.cat([h_n[0], h_n[1], pooled], dim=-1)  # (N, 4H)

    def forward(self, ids: Tensor, lengths: Tensor) -> Tensor:
        """ids (N, T) padded with 0, lengths (N,) -> logits (N, C)."""
        return self.head(self.drop(self.features(ids, lengths)[1]))  # (N, C)

    @torch.no_grad()
    def gates(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        """Forward-direction update and reset gates for one sentence ids (T,): z, r each (T, H)."""
        _, _, g = self.gru(self.embed(ids[None]), return_gates=True)  # g.z (1, 2, T, 1, H)
        return g.z[0, 0, :, 0], g.r[0, 0, :, 0]
