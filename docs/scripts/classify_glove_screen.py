"""Screen for docs/applications.md: do pretrained word vectors, read beside the embedding and the
log-count ratios, lift `grukit classify` on held-out sentences?

The vectors are GloVe 6B, 50 dimensions (Pennington, Socher & Manning 2014; trained on Wikipedia 2014 +
Gigaword 5, 400,000 lowercased words; PDDL 1.0, public domain), in GloVe's text format (`word v1 … v50`
a line). Every token t of a sentence reads its vector g_t, fixed, whether or not the training part has
seen it (0 if GloVe lacks it; a token with an apostrophe that GloVe lacks reads the mean of its parts,
"century's" → "century", "'s", "doesn't" → "does", "n't", as GloVe's tokenizer splits them). Each member
reads

    x_t = [dropout(E[w_t]) ; dropout(g_t) ; ρ_t]        (N, T, D + 50 + K')

the same dropout as the embedding's. Fixed before the run: this one form; adopt if the mean paired gain
in inner-test accuracy over the 12 inner splits is at least one standard error.

The same inner splits as `classify_epoch_criterion.py` (the default split's 1,066 test sentences are
never read); the command as it was before the vectors (`--vectors none`) is replayed with the vectors
added here (early stopping on validation cross-entropy, patience 4, the snapshot average of epochs
b-1..b+1), as in `classify_lexicon_screen.py`. The file is read whole, in float32, by
`grukit.data.vectors.read_text`. The command adopted this form with the bundled float16 subset
(`--vectors glove`, the default); `classify_flag_screen.py` with no flags runs it on the same splits.

    OMP_NUM_THREADS=1 .venv/bin/python docs/scripts/classify_glove_screen.py --vectors glove.6B.50d.txt 1 2 3
"""
from __future__ import annotations

import sys
import time
import types
from dataclasses import fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import grukit
from grukit.data.vectors import read_text
from grukit.tasks.classify import collate
from grukit.tasks.classify_model import ClassifierConfig, SentenceEnsemble, stack_snapshots
from grukit.train import seed_everything

sys.path.insert(0, str(Path(__file__).parent))
from classify_epoch_criterion import build_model, inner_indices, replay, run_with_file  # noqa: E402


def inputs(self, ids, rho=None, shift=None, g=None):
    """x = [dropout(E[w]); dropout(g); ρ] for ρ = [ratios (K'); g (P)] as the script hands it over."""
    K = self.config.ratios * (2 if self.config.bigrams else 1)  # K'
    e = self.drop(self.embed(ids))  # (N, T, D)
    return torch.cat([e, self.drop(rho[..., K:]), rho[..., :K]], dim=-1)  # (N, T, D+P+K')


def widen(model: SentenceEnsemble, P: int) -> SentenceEnsemble:
    """Every member's GRU reads P more channels (the vectors), through `inputs` above."""
    c = model.config
    for member in model.members:
        K = c.ratios * (2 if c.bigrams else 1)
        member.gru = grukit.GRU(c.embedding + P + K, c.hidden_size, batch_first=True, bidirectional=True,
                                reset=c.reset, backend=c.backend)
        member.inputs = types.MethodType(inputs, member)
    return model


@torch.no_grad()
def evaluate(model, data) -> dict[str, float]:
    """classify.evaluate for items (ids, label, ρ) whose ρ carries the vectors."""
    ids, lengths, y, rho = collate(data)
    logits = model(ids, lengths, rho)  # (N, C) log-probabilities
    return {"val_loss": F.cross_entropy(logits, y).item(),
            "val_accuracy": (logits.argmax(-1) == y).float().mean().item()}


def average(model: SentenceEnsemble, snapshots, P: int) -> SentenceEnsemble:
    """snapshot_average for the widened model."""
    if len(snapshots) < 2:
        return model
    M = model.config.members
    config = {f.name: getattr(model.config, f.name) for f in fields(ClassifierConfig)}
    averaged = widen(SentenceEnsemble(**config, members=M * len(snapshots)), P)
    averaged.load_state_dict(stack_snapshots(snapshots, M))
    return averaged.eval()


def run_seed(seed: int, path: Path) -> dict:
    args, out, loaded, i_train, i_val, i_inner = inner_indices(seed)
    tokens = loaded["tokens"]
    table = read_text(path, wanted={t for s in tokens for t in s}, frequent=0)  # float32, as in the file
    P = table.dims
    base, train, val, inner = build_model(args, loaded, i_train, i_val, i_inner)  # the command without vectors
    seed_everything(args.seed)
    config = {f.name: getattr(base.config, f.name) for f in fields(ClassifierConfig)}
    model = widen(SentenceEnsemble(**config, members=base.config.members), P)
    first = base.members[0]
    model.set_ratios(first.R, first.bigram_keys, first.R2)
    train = [(ids, y, np.concatenate([rho, table.rows(tokens[i])], axis=1))
             for (ids, y, rho), i in zip(train, i_train)]  # (T, K'+P)

    def with_vectors(part, idx):
        rows = []
        for (ids, y), i in zip(part, idx):
            rho = first.ratio_inputs(torch.tensor(ids)[None])[0].numpy()  # (T, K')
            rows.append((ids, y, np.concatenate([rho, table.rows(tokens[i])], axis=1)))
        return rows

    val, inner = with_vectors(val, i_val), with_vectors(inner, i_inner)
    known = set(base.config.vocabulary.split("\n"))
    unknown = [t for i in i_inner for t in tokens[i] if t not in known]
    t0 = time.perf_counter()
    result = replay(args, model, train, val, out, evaluate=evaluate)
    tested = average(model, result.snapshots, P)
    return {"seed": seed, "best_epoch": result.best_epoch, "window": [e for e, _ in result.snapshots],
            "epochs_run": len(result.history), "val": evaluate(tested, val),
            "inner_accuracy": evaluate(tested, inner)["val_accuracy"],
            "inner_unknown_tokens": len(unknown),
            "inner_unknown_with_vector": sum(table.vector(t) is not None for t in unknown),
            "seconds": round(time.perf_counter() - t0, 1)}


if __name__ == "__main__":
    run_with_file(run_seed, "--vectors", "GloVe text file (glove.6B.50d.txt)")
