"""K-fold cross-validation of `grukit classify`: the protocol the MR literature reports.

    fold f = 1..K:  test = the f-th of K seeded folds; validation = 10% of the rest; train = the rest
                    vocabulary, log-count ratios, the GRU ensemble and every baseline fitted anew
    accuracy_pooled(model) = Σ_f correct_f / Σ_f |test_f|      (each sentence is tested exactly once)
    Δ_f = acc_f(GRU) − acc_f(baseline),  Δ̄ ± SE = mean_f Δ_f ± std_f(Δ_f) / √K    (paired over folds)

Each fold writes the single-split outputs (checkpoint, metrics.csv, report.md, figures)
into `--out/fold-f/`; `--out` gets metrics.json, report.md, the per-fold accuracies
(`folds.png`) and the confusion matrix summed over folds.

Example (a small slice, 2 folds):
    >>> import argparse, tempfile
    >>> from grukit.tasks import classify
    >>> p = argparse.ArgumentParser(); classify.add_arguments(p)
    >>> args = p.parse_args(["--limit", "200", "--folds", "2", "--hidden", "4", "--embedding", "4", "--members", "1"])
    >>> args.out, args.epochs, args.seed, args.device, args.backend = tempfile.mkdtemp(), 1, 0, "cpu", "auto"
    >>> m = classify.run(args)["metrics"]
    >>> m["folds"], m["sentences"], sorted(m["accuracy"])[0]
    (2, 200, 'GRU')
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from grukit import plots
from grukit.distributed import is_main
from grukit.report import figure, plural, seconds, write_report
from grukit.tasks import classify
from grukit.tasks.common import args_dict, environment, write_metrics
from grukit.tasks.folds import fold_summary, fold_table, fold_verdict

log = logging.getLogger(__name__)


def cross_validate(args: argparse.Namespace, loaded: dict) -> dict:
    """Run `classify.run_split` on each of --folds folds of `loaded` (`classify.load_tokens`); aggregate."""
    out, K = Path(args.out), args.folds
    per_fold = []
    for f in range(K):
        log.info("classify: fold %d of %d", f + 1, K)
        result = classify.run_split(args, classify.prepare(args, loaded, fold=f), out / f"fold-{f + 1}")
        per_fold.append(result.get("metrics"))
    if not is_main():
        return {}
    metrics = summarise(per_fold)
    metrics.update(sentences=len(loaded["tokens"]), args=args_dict(args), environment=environment())
    files = {"folds": plots.fold_scores(metrics["per_fold"], out / "folds.png",
                                        title=f"test accuracy on each of {K} folds (bar: mean)"),
             "confusion": plots.confusion(np.array(metrics["confusion"]), loaded["names"], out / "confusion.png",
                                          title=f"GRU, summed over {K} folds")}
    files["metrics"] = write_metrics(out, metrics)
    summary = _summary(metrics)
    files["report"] = _report(out, args, loaded, metrics, summary, files)
    return {"summary": summary, "files": files, "metrics": metrics}


def summarise(per_fold: list[dict]) -> dict:
    """Pooled accuracy, fold mean/std/min/max per model, and the GRU's paired lead over each baseline."""
    names = list(per_fold[0]["test_accuracy"])
    sizes = np.array([m["test_size"] for m in per_fold])  # (K,)
    acc = {n: np.array([m["test_accuracy"][n] for m in per_fold]) for n in names}  # name -> (K,)
    summary = fold_summary(acc, reference="GRU", higher_better=True)
    pooled = {n: float((a * sizes).sum() / sizes.sum()) for n, a in acc.items()}
    return {"folds": len(per_fold), "accuracy": {n: {"pooled": pooled[n], **summary["stats"][n]} for n in names},
            "gru_lead": summary["lead"], "per_fold": {n: a.tolist() for n, a in acc.items()},
            "confusion": np.sum([m["confusion"] for m in per_fold], axis=0).tolist(),
            "best_epochs": [m["best_epoch"] for m in per_fold],
            "snapshot_epochs": [m["snapshot_epochs"] for m in per_fold],
            "gru_best_epoch_alone_pooled": float(np.dot([m["test_accuracy_best_epoch"] for m in per_fold], sizes)
                                                 / sizes.sum()),
            "train_seconds": round(sum(m["train_seconds"] for m in per_fold), 2)}


def _summary(metrics: dict) -> str:
    summary = {"stats": metrics["accuracy"], "lead": metrics["gru_lead"]}
    pooled = {n: {"accuracy (pooled)": s["pooled"]} for n, s in metrics["accuracy"].items()}
    return fold_table(summary, reference="GRU", higher_better=True, score="accuracy", extra=pooled)


def _report(out: Path, args: argparse.Namespace, loaded: dict, metrics: dict, summary: str, files: dict) -> Path:
    K = metrics["folds"]
    about = ([plural(args.members, "member")] if args.members > 1 else []) + (
        [f"word vectors: {loaded['vectors'].source}"] if loaded.get("vectors") else [])
    gru = ("the GRU ensemble" if args.members > 1 else "the GRU") + (f" ({'; '.join(about)})" if about else "")
    method = (f"{K}-fold cross-validation (seed {args.seed}): each sentence is in the test part of exactly one fold. "
              f"Per fold, 10% of the other folds is the validation part (early stopping, baseline choices) and the "
              f"rest trains; vocabulary, log-count ratios (words"
              f"{' and bigrams' if classify.with_bigrams(args) else ''}), {gru} "
              f"and the baselines are fitted anew, exactly as one `grukit classify` run (each fold's own report is in "
              f"`fold-f/report.md`). Best epochs per fold: {', '.join(map(str, metrics['best_epochs']))}; "
              f"{seconds(metrics['train_seconds'])} of GRU training in all.")
    if any(len(epochs) > 1 for epochs in metrics["snapshot_epochs"]):
        epochs = "; ".join(f"fold {f}: {', '.join(map(str, e))}" for f, e in enumerate(metrics["snapshot_epochs"], 1))
        method += (f" The GRU tested on each fold is a snapshot average, the mean probability of the "
                   f"{classify.snapshot_members(args)} of the epochs ({epochs}); the best epoch "
                   f"alone scores "
                   f"{metrics['gru_best_epoch_alone_pooled']:.2%} pooled, for reference.")
    verdict = (fold_verdict(metrics["gru_lead"], reference="GRU", score="accuracy")
               + " Pooled accuracy counts every sentence once.")
    figs = "\n\n".join(figure(n, p) for n, p in files.items() if str(p).endswith(".png"))
    return write_report(out / "report.md", f"grukit classify: {K}-fold cross-validation", [
        ("What ran", method), ("Data", f"{loaded['source']}: {len(loaded['tokens']):,} sentences, classes "
                                       f"{', '.join(map(str, loaded['names']))}."),
        ("Test accuracy over the folds", summary + "\n\n" + verdict), ("Figures", figs)])
