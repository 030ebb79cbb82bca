"""Screen for docs/applications.md: does a human-rated sentiment lexicon, read beside the log-count
ratios, lift `grukit classify` on held-out sentences?

The lexicon is VADER's (Hutto & Gilbert 2014; MIT licence; `vader_lexicon.txt` of the vaderSentiment
3.3.2 wheel on PyPI): 7,506 words and emoticons, each with the mean of ten raters' valence scores
(−4 … +4). Every word of the vocabulary also reads its valence / 2 (0 if the lexicon does not hold
it) as one more input channel: the model is built with ratios = C + 1, the last column of R holding
the valence and the last column of R₂ (bigrams) held at 0. Fixed before the run: this one form and
scale; adopt if the mean paired gain over the 12 inner splits is at least one standard error.

The same inner splits as `classify_epoch_criterion.py` (the default split's 1,066 test sentences are
never read); the command is replayed as it is (early stopping on validation cross-entropy, patience
4, the snapshot average of epochs b-1..b+1), as in `classify_adversarial_screen.py`, whose `--eps 0`
run gives the "without" figures.

    OMP_NUM_THREADS=1 .venv/bin/python docs/scripts/classify_lexicon_screen.py --lexicon vader_lexicon.txt 1 2 3
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

from grukit.tasks.classify_model import SentenceEnsemble, snapshot_average
from grukit.train import seed_everything

sys.path.insert(0, str(Path(__file__).parent))
from classify_epoch_criterion import inner_split, replay, run_with_file, scores  # noqa: E402

SCALE = 2.0  # valence / SCALE: about the range of the log-count ratios (±2)


def read_vader(path: Path) -> dict[str, float]:
    """{token: mean valence} from VADER's tab-separated lexicon (token, mean, std, ten ratings)."""
    lexicon = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        token, mean, *_ = line.split("\t")
        lexicon[token] = float(mean)
    return lexicon


def with_lexicon(seed: int, lexicon: dict[str, float]):
    """inner_split's run, the model rebuilt with the valence channel and the training ρ extended to match."""
    args, base, train, val, inner, out = inner_split(seed)
    words = base.config.vocabulary.split("\n")
    valence = torch.tensor([0.0, 0.0] + [lexicon.get(w, 0.0) / SCALE for w in words])  # (V,)
    C = base.config.ratios
    first = base.members[0]
    R = torch.cat([first.R, valence[:, None]], dim=1)  # (V, C+1)
    R2 = torch.cat([first.R2, torch.zeros(len(first.R2), 1)], dim=1)  # (B+2, C+1)
    seed_everything(args.seed)
    config = {k: getattr(base.config, k) for k in ("vocabulary", "classes", "members", "embedding", "hidden_size",
                                                   "dropout", "backend", "word_dropout", "pooling", "bigrams")}
    model = SentenceEnsemble(**config, ratios=C + 1)
    model.set_ratios(R, first.bigram_keys, R2)
    extended = []
    for ids, label, rho in train:  # rho (T, 2C): [word ratios; bigram ratios], out of fold
        lex = valence[ids].numpy()[:, None]  # (T, 1)
        extended.append((ids, label, np.concatenate([rho[:, :C], lex, rho[:, C:], np.zeros_like(lex)], axis=1)
                         .astype(np.float32)))  # (T, 2C+2), the order of ratio_inputs
    return args, model, extended, val, inner, out


def run_seed(seed: int, lexicon: dict[str, float]) -> dict:
    args, model, train, val, inner, out = with_lexicon(seed, lexicon)
    t0 = time.perf_counter()
    result = replay(args, model, train, val, out)
    covered = int((model.members[0].R[:, -1] != 0).sum())
    return {"seed": seed, "best_epoch": result.best_epoch, "window": [e for e, _ in result.snapshots],
            "epochs_run": len(result.history), "vocabulary_words_in_lexicon": covered,
            **scores(snapshot_average(model, result.snapshots), val, inner),
            "seconds": round(time.perf_counter() - t0, 1)}


if __name__ == "__main__":
    run_with_file(lambda seed, path: run_seed(seed, read_vader(path)), "--lexicon", "VADER's vader_lexicon.txt")
