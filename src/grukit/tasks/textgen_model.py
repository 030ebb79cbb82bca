"""Character-level GRU language model: p(c_{t+1} | c_1..c_t) = softmax(W_o h_t + b_o).

    e_t = E[c_t]                          (N, T, D)   embedding
    h_t = GRU(e_t, h_{t−1})               (N, T, H)   grukit.GRU, `num_layers` layers
    logits_t = W_o · dropout(h_t) + b_o   (N, T, V)

The alphabet is part of the config, so a checkpoint alone can generate text.

Example:
    >>> import torch
    >>> from grukit.tasks.textgen_model import CharLM, generate
    >>> lm = CharLM(alphabet="ab ", embedding=4, hidden_size=8)
    >>> logits, h = lm(torch.tensor([[1, 2, 3]]))
    >>> logits.shape, h.shape
    (torch.Size([1, 3, 4]), torch.Size([1, 1, 8]))
    >>> len(generate(lm, "ab", length=5, temperature=1.0, seed=0))
    7
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from grukit.checkpoint import register
from grukit.data.text import Alphabet
from grukit.tasks.arch import make_rnn


@dataclass(frozen=True)
class CharLMConfig:
    alphabet: str  # known characters in id order (id 0 = unknown)
    embedding: int = 64  # D, embedding size
    hidden_size: int = 512  # H, GRU units per layer
    num_layers: int = 1  # stacked GRU layers
    dropout: float = 0.2  # on the embedding, between layers and before the head
    reset: str = "before"  # GRU reset placement (DESIGN §1)
    backend: str = "auto"  # GRU kernel backend
    FROM_DATA: ClassVar[tuple[str, ...]] = ("alphabet",)  # set by the training text
    FLAGS: ClassVar[dict[str, str]] = {  # the `grukit textgen` flag behind each field, for resume messages
        "embedding": "--embedding", "hidden_size": "--hidden", "num_layers": "--layers", "dropout": "--dropout"}


@register
class CharLM(nn.Module):
    __doc__ = __doc__

    def __init__(self, alphabet: str, embedding: int = 64, hidden_size: int = 512, num_layers: int = 1,
                 dropout: float = 0.2, reset: str = "before", backend: str = "auto"):
        super().__init__()
        self.config = CharLMConfig(alphabet, embedding, hidden_size, num_layers, dropout, reset, backend)
        self.alphabet = Alphabet(alphabet)
        V = self.alphabet.size
        self.embed = nn.Embedding(V, embedding)
        self.gru = make_rnn("gru", embedding, hidden_size, num_layers=num_layers, batch_first=True, dropout=dropout,
                            reset=reset, backend=backend)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, V)

    def forward(self, ids: Tensor, h: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """ids (N, T) int64, h (layers, N, H) or None -> (logits (N, T, V), h (layers, N, H))."""
        e = self.drop(self.embed(ids))  # (N, T, D)
        out, h = self.gru(e, h)  # (N, T, H), (layers, N, H)
        return self.head(self.drop(out)), h  # (N, T, V)

    @torch.no_grad()
    def gates(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        """Update and reset gates of the last layer for one sequence ids (T,): z, r each (T, H)."""
        _, _, g = self.gru(self.embed(ids[None]), return_gates=True)  # g.z (layers, 1, T, 1, H)
        return g.z[-1, 0, :, 0], g.r[-1, 0, :, 0]


def default_prompt(alphabet: str) -> str:
    """What generation starts from without a prompt: a newline, else a space, else the first character the
    model knows (a text without newlines never trained the newline's embedding)."""
    return next((c for c in "\n " if c in alphabet), alphabet[:1])


@torch.no_grad()
def generate(model: CharLM, prompt: str | None, *, length: int, temperature: float, seed: int) -> str:
    """prompt + `length` characters drawn from softmax(logits / temperature), seeded; an empty prompt (or None)
    reads `default_prompt` (not returned). A prompt character the model's alphabet lacks reads as its unknown
    one (`grukit sample` warns of them). ValueError or TypeError naming the argument for a model that is not a
    CharLM, a length < 0, or a temperature that is not a finite number > 0."""
    if not isinstance(model, CharLM):
        raise TypeError(f"model: expected a character model (grukit textgen's CharLM), got {type(model).__name__}")
    prompt = "" if prompt is None else prompt
    if not isinstance(prompt, str):
        raise TypeError(f"prompt: expected text (a str) or None, got {type(prompt).__name__}")
    if isinstance(length, bool) or not isinstance(length, numbers.Integral) or length < 0:
        raise ValueError(f"length: expected an integer >= 0, got {length!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) or not (
            temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature: expected a finite number > 0, got {temperature!r}")
    model.eval()
    device = next(model.parameters()).device
    g = torch.Generator(device=device).manual_seed(seed)
    start = prompt or default_prompt(model.config.alphabet)
    ids = torch.as_tensor(model.alphabet.encode(start), device=device)[None]  # (1, P)
    logits, h = model(ids)  # (1, P, V)
    out = []
    for _ in range(length):
        z = logits[0, -1].double()  # (V,)
        z[0] = -math.inf  # never emit the unknown id
        z = (z - z.max()) / temperature  # (V,) ≤ 0, the best 0: finite as temperature → 0 (greedy)
        c = torch.multinomial(torch.softmax(z, dim=-1), 1, generator=g)  # (1,)
        out.append(int(c))
        logits, h = model(c[None], h)  # (1, 1, V)
    return prompt + model.alphabet.decode(out)
