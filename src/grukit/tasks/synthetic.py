"""Long-memory benchmarks: the adding problem and the copy-memory task (Bai et al. 2018).

Adding problem, length T: x_t = (u_t, m_t), u_t ~ U(0, 1), m_t = 1 at one step drawn
from the first half and one from the second half, 0 elsewhere;

    y = Σ_t u_t m_t          (the sum of the two marked numbers), loss and metric: MSE.

Predicting the constant 1 (the mean of y) scores Var(y) = 1/6 ≈ 0.167 (Bai et al.
quote 0.1767). The model reads h_T: the marks may be T steps in the past.

Copy memory, blank length T: the input is 10 symbols a_i ∈ {1..8}, then T−1 blanks
(0), a delimiter 9, then 10 blanks; the target is blank for the first T+10 steps and
then a_1..a_10. Loss: cross-entropy per step averaged over all T+20 steps; the
memoryless baseline (blank, then uniform over 8 symbols) scores 10 ln 8 / (T + 20).

Example:
    >>> import torch
    >>> from grukit.tasks.synthetic import adding_problem, copy_memory, SyntheticModel
    >>> x, y = adding_problem(4, 50, torch.Generator().manual_seed(0))
    >>> x.shape, y.shape, int(x[..., 1].sum())
    (torch.Size([4, 50, 2]), torch.Size([4]), 8)
    >>> x, y = copy_memory(4, 30, torch.Generator().manual_seed(0))
    >>> x.shape, y.shape
    (torch.Size([4, 50]), torch.Size([4, 50]))
    >>> SyntheticModel("adding", 16)(adding_problem(3, 20)[0]).shape
    torch.Size([3])
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from grukit.checkpoint import register
from grukit.tasks.arch import make_rnn, top_state

COPY_SYMBOLS = 10  # 0 blank, 1..8 symbols, 9 delimiter
COPY_LENGTH = 10  # symbols to remember
TASKS = ("adding", "copy")


def adding_problem(n: int, T: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """n sequences x (n, T, 2) and targets y (n,) of the adding problem."""
    if T < 2:
        raise ValueError(f"T: expected at least 2 steps for the adding problem, got {T}")
    u = torch.rand(n, T, generator=generator)  # (n, T)
    half = T // 2
    first = torch.randint(0, half, (n,), generator=generator)  # (n,)
    second = torch.randint(half, T, (n,), generator=generator)  # (n,)
    m = torch.zeros(n, T)  # (n, T)
    rows = torch.arange(n)
    m[rows, first] = 1.0
    m[rows, second] = 1.0
    return torch.stack([u, m], dim=-1), (u * m).sum(dim=1)  # (n, T, 2), (n,)


def copy_memory(n: int, T: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """n input sequences x (n, T+20) and targets y (n, T+20), both int64 symbols."""
    if T < 1:
        raise ValueError(f"T: expected a blank length of at least 1, got {T}")
    a = torch.randint(1, 9, (n, COPY_LENGTH), generator=generator)  # (n, 10)
    x = torch.zeros(n, T + 2 * COPY_LENGTH, dtype=torch.int64)  # (n, T+20)
    y = torch.zeros_like(x)  # (n, T+20)
    x[:, :COPY_LENGTH] = a
    x[:, T + COPY_LENGTH - 1] = 9  # the delimiter: "recall now"
    y[:, -COPY_LENGTH:] = a
    return x, y


def trivial_loss(task: str, T: int) -> float:
    """Score of the best memoryless predictor: Var(y) = 1/6 (adding), 10 ln 8 / (T+20) (copy)."""
    return 1.0 / 6.0 if task == "adding" else COPY_LENGTH * math.log(8) / (T + 2 * COPY_LENGTH)


def memoryless_loss(task: str, y: Tensor) -> float:
    """The memoryless baseline's score on the targets y a run measures on: adding, predict 1: mean (y − 1)²
    (`trivial_loss`, 1/6, is its expectation); copy, blank then uniform: 10 ln 8 / (T+20) for any targets.

    Example:
        >>> memoryless_loss("adding", torch.tensor([0.5, 1.0, 2.0]))  # (0.25 + 0 + 1) / 3
        0.4166666666666667
    """
    if task == "adding":
        return float(((y.double() - 1.0) ** 2).mean())  # (n,) targets
    return trivial_loss(task, y.shape[1] - 2 * COPY_LENGTH)  # y (n, T+20)


def make_data(task: str, n: int, T: int, seed: int) -> tuple[Tensor, Tensor]:
    """A fixed, seeded sample of `task` (so that train, validation and test never share a seed)."""
    generator = torch.Generator().manual_seed(seed)
    return adding_problem(n, T, generator) if task == "adding" else copy_memory(n, T, generator)


@dataclass(frozen=True)
class SyntheticConfig:
    task: str  # "adding" (regression from h_T) or "copy" (a symbol at every step)
    hidden_size: int  # H, recurrent units
    cell: str = "gru"  # "gru" (grukit), "torch-gru", "lstm" or "rnn"
    reset: str = "before"  # GRU reset placement (DESIGN §1), cell="gru" only
    backend: str = "auto"  # GRU kernel backend, cell="gru" only


@register
class SyntheticModel(nn.Module):
    """adding: x (N, T, 2) → ŷ = w·h_T + b (N,);  copy: symbols (N, T) → logits (N, T, 10) from each h_t."""

    def __init__(self, task: str, hidden_size: int, cell: str = "gru", reset: str = "before", backend: str = "auto"):
        super().__init__()
        if task not in TASKS:
            raise ValueError(f"task: expected one of {TASKS}, got {task!r}")
        self.config = SyntheticConfig(task, hidden_size, cell, reset, backend)
        inputs = 2 if task == "adding" else COPY_SYMBOLS
        self.rnn = make_rnn(cell, inputs, hidden_size, batch_first=True, reset=reset, backend=backend)
        self.head = nn.Linear(hidden_size, 1 if task == "adding" else COPY_SYMBOLS)

    def embed(self, x: Tensor) -> Tensor:
        """The network's input: x itself (adding) or one-hot symbols (copy), (N, T, I) float."""
        if self.config.task == "adding":
            return x  # (N, T, 2)
        return nn.functional.one_hot(x, COPY_SYMBOLS).to(self.head.weight.dtype)  # (N, T, 10)

    def forward(self, x: Tensor) -> Tensor:
        output, h_n = self.rnn(self.embed(x))  # (N, T, H), h_n (1, N, H) or (h_n, c_n)
        if self.config.task == "adding":
            return self.head(top_state(h_n)).squeeze(-1)  # (N,)
        return self.head(output)  # (N, T, 10)


def loss(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """MSE (adding) or mean per-step cross-entropy (copy)."""
    out = model(x)
    if out.dim() == 1:
        return nn.functional.mse_loss(out, y)
    return nn.functional.cross_entropy(out.flatten(0, 1), y.flatten())  # over N·(T+20) steps


def step_loss(model: nn.Module, batch) -> Tensor:
    return loss(model, *batch)


@torch.no_grad()
def evaluate(model: nn.Module, data: tuple[Tensor, Tensor], batch_size: int = 500) -> dict[str, float]:
    """{"val_loss": loss over all of `data`, "val_accuracy": copy-task symbol accuracy on the 10 recalled steps}."""
    x, y = data
    device = next(model.parameters()).device
    total, correct = 0.0, 0.0
    for start in range(0, len(x), batch_size):
        xb, yb = x[start:start + batch_size].to(device), y[start:start + batch_size].to(device)
        total += loss(model, xb, yb).item() * len(xb)
        if yb.dim() == 2:
            predicted = model(xb)[:, -COPY_LENGTH:].argmax(-1)  # (B, 10)
            correct += (predicted == yb[:, -COPY_LENGTH:]).double().mean(dim=1).sum().item()
    metrics = {"val_loss": total / len(x)}
    if y.dim() == 2:
        metrics["val_accuracy"] = correct / len(x)
    return metrics
