"""Variable-length sequences as a torch Dataset, and the collate that pads them.

A batch of sequences x_i (T_i, F) becomes x (N, T_max, F) with zeros after step T_i
and lengths (N,) = (T_1, …, T_N); the recurrent layers take `lengths` and carry each
state unchanged over the padding.

Example:
    >>> import torch
    >>> from grukit.tasks.sequences import SequenceDataset, pad_collate
    >>> data = SequenceDataset([torch.ones(3, 2), torch.ones(5, 2)], torch.tensor([0, 1]))
    >>> x, lengths, y = pad_collate([data[0], data[1]])
    >>> x.shape, lengths.tolist(), y.tolist()
    (torch.Size([2, 5, 2]), [3, 5], [0, 1])
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset


class SequenceDataset(Dataset):
    """Item i is (x_i (T_i, F), y_i): a sequence and its target (a label or a tensor)."""

    def __init__(self, sequences: Sequence[Tensor], targets: Sequence | Tensor | None = None):
        if targets is not None and len(targets) != len(sequences):
            raise ValueError(f"targets: expected {len(sequences)} (one per sequence), got {len(targets)}")
        self.sequences = list(sequences)
        self.targets = targets

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, i: int):
        return self.sequences[i], (None if self.targets is None else self.targets[i])


def pad(sequences: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    """(x (N, T_max, F) zero-padded, lengths (N,) int64)."""
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.int64)  # (N,)
    x = torch.nn.utils.rnn.pad_sequence(list(sequences), batch_first=True)  # (N, T_max, F)
    return x, lengths


def pad_collate(items: Sequence[tuple[Tensor, object]]) -> tuple[Tensor, Tensor, Tensor | None]:
    """[(x_i, y_i)] → (x (N, T_max, F), lengths (N,), y stacked or None)."""
    x, lengths = pad([item[0] for item in items])
    targets = [item[1] for item in items]
    if targets[0] is None:
        return x, lengths, None
    y = torch.stack(targets) if isinstance(targets[0], Tensor) else torch.tensor(targets)
    return x, lengths, y
