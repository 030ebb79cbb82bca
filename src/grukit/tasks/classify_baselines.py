"""The baselines `grukit classify` computes in the same run, on the GRU's split and vocabulary: the majority
class of the training part, and softmax regression on bags of words, plain or with every feature weighted by
its log-count ratio (NB-LR, Wang & Manning 2012's NBSVM with a logistic loss).

    logits_c = b_c + Σ_{w in sentence} x_w (S ∘ W)[w, c]     loss = mean CE + λ ‖W‖²

Example (the signal word 2 against noise words 3–5):
    >>> from grukit.tasks.classify_baselines import logistic_regression
    >>> part = [([2, 3], 1), ([4, 5], 0), ([2, 4], 1), ([3, 5], 0)] * 10
    >>> pred, choice = logistic_regression(part, part, [([2], 1), ([5], 0)], n_words=6, classes=2)
    >>> pred.tolist(), choice["val_accuracy"]
    ([1, 0], 1.0)
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from grukit.data.sentiment import Bigrams


def bags(data: list[tuple[list[int], int]], binary: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(word ids of every sentence, flat; offsets (N,); labels (N,)): each word once if `binary`, unknown words out."""
    rows = [sorted(set(ids) - {1}) if binary else [i for i in ids if i != 1] for ids, _ in data]
    offsets = torch.tensor([0] + [len(r) for r in rows[:-1]]).cumsum(0)  # (N,)
    return torch.tensor([i for r in rows for i in r], dtype=torch.int64), offsets, torch.tensor([y for _, y in data])


def logistic_regression(train, val, test, n_words: int, classes: int, scale: torch.Tensor | None = None
                        ) -> tuple[np.ndarray, dict]:
    """Softmax regression on bags of words; features and L2 penalty λ picked on `val`.

        logits_c = b_c + Σ_{w in sentence} x_w (S ∘ W)[w, c]     loss = mean CE + λ ‖W‖²
        x_w = 1 (binary) or the word's count;  S = 1 (plain), or the log-count ratios R (NB-LR, Wang & Manning 2012)

    Fitted by L-BFGS along the path λ = 3e-3 → 1e-5 (each fit starts from the last).
    Returns (test predictions, {"features", "l2", "val_accuracy"}).
    """
    S = torch.ones(n_words, classes) if scale is None else scale  # (V, C)
    best: tuple[float, np.ndarray, dict] | None = None
    for binary in (True, False):
        fit_bag, val_bag, test_bag = (bags(part, binary) for part in (train, val, test))
        W = torch.zeros(n_words, classes, requires_grad=True)  # (V, C)
        b = torch.zeros(classes, requires_grad=True)  # (C,)
        for lam in (3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5):
            _lbfgs(W, b, S, lam, fit_bag)
            with torch.no_grad():
                acc = (_logits(W, b, S, val_bag).argmax(-1) == val_bag[2]).float().mean().item()
                if best is None or acc > best[0]:
                    pred = _logits(W, b, S, test_bag).argmax(-1).numpy()  # (N_test,)
                    best = (acc, pred, {"features": "binary" if binary else "counts", "l2": lam, "val_accuracy": acc})
    return best[1], best[2]


def _logits(W: torch.Tensor, b: torch.Tensor, S: torch.Tensor, bag: tuple[torch.Tensor, ...]) -> torch.Tensor:
    flat, offsets, _ = bag
    return F.embedding_bag(flat, S * W, offsets, mode="sum") + b  # (N, C)


def _lbfgs(W: torch.Tensor, b: torch.Tensor, S: torch.Tensor, lam: float, bag: tuple[torch.Tensor, ...]) -> None:
    """Minimise mean CE + λ ‖W‖² on `bag` over (W, b) in place."""
    opt = torch.optim.LBFGS([W, b], max_iter=300, history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(_logits(W, b, S, bag), bag[2]) + lam * W.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)


def with_bigrams(part: list[tuple[list[int], int]], bigrams: Bigrams) -> list[tuple[list[int], int]]:
    """ids ++ [V + b_t if b_t > 1 else 1]_t: each sentence's word ids, then its bigrams' ids shifted past
    the words; an unknown bigram reads as the unknown word (1), which the bags leave out."""
    V = bigrams.n_words
    return [(ids + [V + b if b > 1 else 1 for b in bigrams.encode(ids)], y) for ids, y in part]


def baselines(d: dict, tables: dict[str, torch.Tensor]) -> tuple[dict[str, np.ndarray], dict]:
    """Test predictions of the majority class and the two logistic regressions, with their choices.

    The NB-weighted one reads what the GRU's ratio channels read: words, and with bigram
    tables (`ratios`) also the known bigrams, each feature scaled by its log-count ratio.
    """
    i_train, _, i_test = d["split"]
    n_words, classes = len(d["vocab"]), len(d["names"])
    majority = int(np.bincount(d["labels"][i_train]).argmax())
    plain, plain_choice = logistic_regression(d["train"], d["val"], d["test"], n_words, classes)
    parts, S = (d["train"], d["val"], d["test"]), tables["R"]  # S (V, C)
    if "R2" in tables:
        bigrams = Bigrams(tables["bigram_keys"].numpy(), n_words)
        parts = [with_bigrams(part, bigrams) for part in parts]
        S = torch.cat([tables["R"], tables["R2"]])  # (V + B + 2, C)
    nb, nb_choice = logistic_regression(*parts, len(S), classes, scale=S)
    nb_choice["terms"] = "words and bigrams" if "R2" in tables else "words"
    predictions = {"bag-of-words logistic regression": plain, "NB-weighted logistic regression": nb,
                   "majority class": np.full(len(i_test), majority)}
    return predictions, {"bag-of-words logistic regression": plain_choice, "NB-weighted logistic regression": nb_choice}
