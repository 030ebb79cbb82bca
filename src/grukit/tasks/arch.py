"""Which recurrent network a task model uses: one name, one constructor, one h_n.

    "gru"        grukit.GRU (ours: the seeds' equations, reset before by default)
    "torch-gru"  torch.nn.GRU (reset after), for the speed column beside LSTM and RNN
    "lstm"       grukit.LSTM (wraps torch.nn.LSTM)
    "rnn"        grukit.RNN, tanh (wraps torch.nn.RNN)

torch-gru, lstm and rnn are the same implementation family (torch's own kernels), so a
speed difference between them is about the architecture; gru is grukit's kernel.
Every kind takes (x, h0=None, lengths=None) and `top_state` gives the last layer's h_n
(the LSTM's c_n is dropped). `matched_hidden` finds the hidden size whose model has the
parameter count nearest to a target (parameters grow with H, so a bisection suffices).

Example:
    >>> import torch
    >>> from grukit.tasks.arch import make_rnn, top_state, matched_hidden
    >>> rnn = make_rnn("lstm", 4, 8, batch_first=True)
    >>> top_state(rnn(torch.randn(2, 5, 4), lengths=[5, 3])[1]).shape
    torch.Size([2, 8])
    >>> count = lambda kind, H: sum(p.numel() for p in make_rnn(kind, 88, H).parameters())
    >>> count("gru", 46), matched_hidden("lstm", count("gru", 46), count)
    (18768, 37)
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

import grukit
from grukit.baselines import _Recurrent
from grukit.checkpoint import register

KINDS = ("gru", "torch-gru", "lstm", "rnn")
LABELS = {"gru": "GRU (grukit)", "torch-gru": "GRU (torch)", "lstm": "LSTM (torch)", "rnn": "tanh-RNN (torch)"}


@register
class TorchGRU(_Recurrent):
    """torch.nn.GRU behind grukit's interface (lengths, batch_first, h0); PyTorch's z convention."""

    torch_class = nn.GRU

    def forward(self, x, h0: Tensor | None = None, lengths=None):
        from grukit.inputs import finish

        batch = self._prepare(x, h0, lengths)
        output, h_n = self._run(batch, batch.h0)
        return finish(batch, output, h_n)


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"cell: expected one of {KINDS}, got {kind!r}")
    return kind


def make_rnn(kind: str, input_size: int, hidden_size: int, *, num_layers: int = 1, batch_first: bool = False,
             bidirectional: bool = False, dropout: float = 0.0, reset: str = "before",
             backend: str = "auto") -> nn.Module:
    """The recurrent network called `kind` (reset and backend apply to "gru" only)."""
    common = dict(num_layers=num_layers, batch_first=batch_first, bidirectional=bidirectional,
                  dropout=dropout if num_layers > 1 else 0.0)  # between layers only: none to drop with one
    if check_kind(kind) == "gru":
        return grukit.GRU(input_size, hidden_size, reset=reset, backend=backend, **common)
    cls = {"torch-gru": TorchGRU, "lstm": grukit.LSTM, "rnn": grukit.RNN}[kind]
    return cls(input_size, hidden_size, **common)


@torch.no_grad()
def rnn_gates(rnn: nn.Module, x: Tensor) -> tuple[Tensor, Tensor] | None:
    """The last layer's forward-direction update and reset gates, z and r each (T, H), of a batch-first
    grukit.GRU reading one sequence x (T, I); None for any other network (they show no gates)."""
    if not isinstance(rnn, grukit.GRU):
        return None
    _, _, g = rnn(x[None], return_gates=True)  # g.z (layers, directions, T, 1, H)
    return g.z[-1, 0, :, 0], g.r[-1, 0, :, 0]


def no_gates(kind: str) -> str:
    """What a report says where gates.png would be, for a network that is not a grukit.GRU."""
    return f"Not drawn: --cell {kind} is not a grukit.GRU, whose gates grukit records."


def top_state(h_n, directions: int = 1) -> Tensor:
    """The last layer's final state (N, D·H) from h_n (L·D, N, H) or an LSTM's (h_n, c_n)."""
    h = h_n[0] if isinstance(h_n, tuple) else h_n  # (L·D, N, H)
    return torch.cat(list(h[-directions:]), dim=-1)  # (N, D·H)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters of `model`."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def matched_hidden(kind: str, target: int, count: Callable[[str, int], int], *, high: int = 1024) -> int:
    """The hidden size H ≥ 1 of `kind` whose count(kind, H) is nearest to `target` (searched up from `high`
    when that is too small: a cap once gave a 700-unit GRU's tanh-RNN 71% of its parameters)."""
    lo, hi = 1, high
    while count(kind, hi) < target:
        lo, hi = hi + 1, 2 * hi
    while lo < hi:  # smallest H with count >= target
        mid = (lo + hi) // 2
        if count(kind, mid) >= target:
            hi = mid
        else:
            lo = mid + 1
    if lo > 1 and abs(count(kind, lo - 1) - target) <= abs(count(kind, lo) - target):
        return lo - 1
    return lo


def matched_sizes(kinds, gru_hidden: int, build: Callable[[str, int], nn.Module]) -> dict[str, int]:
    """{kind: H} for `kinds`, every one's parameter count matched to that of build("gru", gru_hidden): both GRUs at
    gru_hidden, the others at `matched_hidden`. First a UsageError naming --hidden when that GRU cannot train in
    this machine's memory (`check_trainable`): the others are as large."""
    from grukit.tasks.common import check_trainable

    check_trainable(lambda: build("gru", gru_hidden), "--hidden")
    count = lambda kind, H: count_parameters(build(kind, H))  # noqa: E731
    target = count("gru", gru_hidden)
    return {k: gru_hidden if k in ("gru", "torch-gru") else matched_hidden(k, target, count) for k in kinds}
