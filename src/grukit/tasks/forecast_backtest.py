"""Rolling-origin backtest of `grukit forecast`: the whole run repeated on splits moved into the past.

    fold 1        the default split (train | validation | test = 70 | 15 | 15 % of the series)
    fold j + 1    the series cut j test-part lengths earlier; validation and test keep their lengths,
                  training is what remains (`forecast_data.prepare(back=j)`)
    per fold      ridge fit, GRU ensemble training, epoch choice and every baseline anew, test MASE
                  over all rolling origins of that fold's test part (its own in-sample scale s)

One test part of a few years is a small sample of what a series can do (a volcanic
eruption, an El Niño); K folds give K disjoint test periods. The table reports each
model's mean MASE over the folds and the GRU's paired lead (`grukit.tasks.folds`).
Each fold's own outputs are in `--out/fold-j/`.

Example (a small slice, 2 folds):
    >>> import argparse, tempfile
    >>> from grukit.tasks import forecast
    >>> p = argparse.ArgumentParser(); forecast.add_arguments(p)
    >>> args = p.parse_args(["--limit", "700", "--horizon", "8", "--lookback", "16", "--hidden", "4",
    ...                      "--members", "1", "--backtest", "2"])
    >>> args.out, args.epochs, args.seed, args.device, args.backend = tempfile.mkdtemp(), 1, 0, "cpu", "auto"
    >>> m = forecast.run(args)["metrics"]
    >>> m["folds"], len(m["test_periods"]), "GRU" in m["MASE"]
    (2, 2, True)
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from grukit import plots
from grukit.data.timeseries import Series
from grukit.distributed import is_main
from grukit.report import figure, seconds, write_report
from grukit.tasks import forecast
from grukit.tasks.common import args_dict, environment, write_metrics
from grukit.tasks.folds import fold_summary, fold_table, fold_verdict

log = logging.getLogger(__name__)


def backtest(args: argparse.Namespace, series: Series) -> dict:
    """Run `forecast.run_split` on --backtest folds of `series` (fold 1 the most recent); aggregate MASE."""
    out, K = Path(args.out), args.backtest
    splits = [forecast.split(args, series, back=j) for j in range(K)]  # every fold checked before any training
    per_fold = []
    for j, p in enumerate(splits):
        log.info("forecast: backtest fold %d of %d", j + 1, K)
        per_fold.append(forecast.run_split(args, series, p, out / f"fold-{j + 1}").get("metrics"))
    if not is_main():
        return {}
    # a baseline that some fold could not fit (the airline model, on a fold whose training part has no step from
    # t = m + 2 on whose seasonal difference reads no gap) has no mean over the folds: it is named, not tabled
    every = [name for name in per_fold[0]["test"] if all(name in m["test"] for m in per_fold)]
    left_out = sorted({name for m in per_fold for name in m["test"]} - set(every))
    if left_out:
        log.warning("forecast: %s not scored on every fold, left out of the backtest table", ", ".join(left_out))
    scores = {name: [m["test"][name]["MASE"] for m in per_fold] for name in every}
    summary = fold_summary(scores, reference="GRU", higher_better=False)
    periods = [_period(series, p) for p in splits]
    metrics = {"folds": K, "MASE": summary["stats"], "gru_lead": summary["lead"], "per_fold": scores,
               "left_out": {name: [j + 1 for j, m in enumerate(per_fold) if name in m["test"]] for name in left_out},
               "test_periods": periods, "scales": [m["scale"] for m in per_fold],
               "best_epochs": [m["best_epoch"] for m in per_fold],
               "train_seconds": round(sum(m["train_seconds"] for m in per_fold), 2),
               "args": args_dict(args), "environment": environment()}
    files = {"folds": plots.fold_scores(scores, out / "folds.png", xlabel="test MASE",
                                        title=f"test MASE on each of {K} backtest folds (bar: mean)")}
    files["metrics"] = write_metrics(out, metrics)
    table = fold_table(summary, reference="GRU", higher_better=False, score="MASE")
    files["report"] = _report(out, args, series, metrics, table, files)
    return {"summary": table, "files": files, "metrics": metrics}


def _period(series: Series, p) -> str:
    """The test part of a fold as 'first – last' (dates when the series has them, else steps)."""
    a, b = p.bounds[1], len(p.y) - 1
    return f"{series.dates[a]} – {series.dates[b]}" if series.dates else f"steps {a} – {b}"


def _report(out: Path, args: argparse.Namespace, series: Series, metrics: dict, table: str, files: dict) -> Path:
    K = metrics["folds"]
    folds = "\n".join(f"- fold {j + 1}: test {period}, s = {scale:.4f}, GRU MASE {metrics['per_fold']['GRU'][j]:.4f}"
                      for j, (period, scale) in enumerate(zip(metrics["test_periods"], metrics["scales"])))
    method = (f"{K} folds; fold 1 is the default split, fold j + 1 the same split moved j test-part lengths into "
              f"the past (validation and test keep their lengths, training is what remains). Each fold trains and "
              f"scores everything anew, exactly as one `grukit forecast` run (its report: `fold-j/report.md`). "
              f"Best epochs per fold: {', '.join(map(str, metrics['best_epochs']))}; "
              f"{seconds(metrics['train_seconds'])} of training in all.")
    verdict = fold_verdict(metrics["gru_lead"], reference="GRU", score="MASE") + " Lower MASE is better."
    for name, scored in metrics["left_out"].items():
        verdict += (f" {name} is left out: it was fitted on fold(s) {', '.join(map(str, scored))} only (each "
                    f"fold's `report.md` has its figure where it was).")
    return write_report(out / "report.md", f"grukit forecast: {K}-fold backtest of {series.names[0]}", [
        ("What ran", method), ("Test periods", folds), ("Test MASE over the folds (lower is better)",
                                                        table + "\n\n" + verdict),
        ("Figures", "\n\n".join(figure(n, p) for n, p in files.items() if str(p).endswith(".png")))])
