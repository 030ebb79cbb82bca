"""Screen for docs/applications.md: does giving the head the sentence's sum of ratio inputs lift
`grukit classify` on held-out sentences?

The GRU reads each word's log-count ratios ρ_t (word and bigram), but its pooled vector (last states,
max over time) cannot easily add them up over the sentence, and that sum is the Naive-Bayes log-odds
of the sentence, the part of NB-LR that is a single number per class. Here the head reads it too:

    v = [h_n^fwd ; h_n^rev ; max_t o_t]        (N, 4H)   as the command
    p(y | w) = softmax(W_o · [dropout(v) ; Σ_t ρ_t] + b_o)   Σ_t ρ_t (N, K'), no dropout

Training sentences read out-of-fold ratios, as in the command, so the sum carries no label of its own.
The same inner splits as `classify_epoch_criterion.py` (the default split's 1,066 test sentences are
never read), the command replayed as it is (early stopping on validation cross-entropy, patience 4, the
snapshot average of epochs b-1..b+1). Fixed before the run: this one form; adopt if the mean paired gain
over the 12 splits is at least one standard error.

    OMP_NUM_THREADS=1 .venv/bin/python docs/scripts/classify_sum_screen.py 1 2 3
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import fields
from pathlib import Path

import torch
from torch import Tensor, nn

from grukit.tasks.classify_model import ClassifierConfig, SentenceClassifier, SentenceEnsemble, pool, stack_snapshots
from grukit.train import seed_everything

sys.path.insert(0, str(Path(__file__).parent))
from classify_epoch_criterion import inner_split, replay, scores  # noqa: E402


class SumHead(SentenceClassifier):
    """SentenceClassifier whose head also reads Σ_t ρ_t."""

    def __init__(self, **config):
        super().__init__(**config)
        channels = self.config.ratios * (2 if self.config.bigrams else 1)  # K'
        self.head = nn.Linear(4 * self.config.hidden_size + channels, self.config.classes)

    def forward(self, ids: Tensor, lengths: Tensor, rho: Tensor | None = None, shift: Tensor | None = None
                ) -> Tensor:
        rho = self.ratio_inputs(ids) if rho is None else rho  # (N, T, K'), 0 at padding
        out, h_n = self.gru(self.inputs(ids, rho, shift), lengths=lengths.cpu())  # (N, T, 2H), (2, N, H)
        v = pool(out, h_n, lengths, self.config.pooling)  # (N, 4H)
        return self.head(torch.cat([self.drop(v), rho.sum(1)], dim=-1))  # (N, C)


def run_seed(seed: int) -> dict:
    args, model, train, val, inner, out = inner_split(seed)
    first = model.members[0]
    member = {f.name: getattr(model.config, f.name) for f in fields(ClassifierConfig)}
    seed_everything(args.seed)
    model.members = nn.ModuleList(SumHead(**member) for _ in range(model.config.members))
    model.set_ratios(first.R, first.bigram_keys, first.R2)
    t0 = time.perf_counter()
    result = replay(args, model, train, val, None)  # no files: save does not know SumHead
    return {"seed": seed, "best_epoch": result.best_epoch, "window": [e for e, _ in result.snapshots],
            **scores(average(model, result.snapshots, member), val, inner),
            "seconds": round(time.perf_counter() - t0, 1)}


def average(model: SentenceEnsemble, snapshots: list, member: dict) -> SentenceEnsemble:
    """`classify_model.snapshot_average` for an ensemble of SumHeads (whose head is wider than a plain member's)."""
    if len(snapshots) < 2:
        return model
    M = model.config.members
    averaged = SentenceEnsemble(**member, members=M * len(snapshots))
    averaged.members = nn.ModuleList(SumHead(**member) for _ in range(M * len(snapshots)))
    averaged.load_state_dict(stack_snapshots(snapshots, M))
    return averaged


if __name__ == "__main__":
    for s in [int(a) for a in sys.argv[1:]] or [1]:
        print(json.dumps(run_seed(s)), flush=True)
