"""Forecast a time series K steps ahead with a GRU, next to naive, seasonal, linear and ARIMA baselines.

    grukit forecast                                   weekly Mauna Loa CO2, K = 52, L = 156
    grukit forecast --data seattle                    daily Seattle weather: temp_max from 4 columns
    grukit forecast --csv FILE --column y [--date-column d] [--covariates a,b] [--horizon K] [--lookback L]

Data → `forecast_data.prepare` (gap filling, 70/15/15 chronological split, train-only
scaling) → `ForecastEnsemble` (--members GRU encoders + linear heads, direct multi-step,
each with a linear autoregressive path started at the ridge fit unless --no-linear)
trained by `grukit.train.fit` on MSE over observed targets, epoch chosen on validation MASE →
rolling-origin test metrics (MAE, RMSE, MASE) next to `forecast_baselines` → figures
and report.md in --out.

Example (a small slice of the bundled series):
    >>> import argparse, tempfile
    >>> from grukit.tasks import forecast
    >>> p = argparse.ArgumentParser(); forecast.add_arguments(p)
    >>> args = p.parse_args(["--limit", "420", "--horizon", "8", "--lookback", "16", "--hidden", "8"])
    >>> args.out, args.epochs, args.seed, args.device, args.backend = tempfile.mkdtemp(), 1, 0, "cpu", "auto"
    >>> sorted(forecast.run(args)["metrics"]["test"])[:3]
    ['GRU', 'airline SARIMA', 'naive']
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from grukit import plots
from grukit.data.dates import dates_after
from grukit.data.timeseries import Series, load_co2, load_seattle, read_csv
from grukit.distributed import is_main
from grukit.errors import UsageError
from grukit.report import figure, number, seconds, table, write_csv, write_report
from grukit.tasks.common import (
    OPTIMISER_FLAGS,
    add_encoding,
    add_resume,
    args_dict,
    check_at_least,
    check_common,
    check_trainable,
    encoding_of,
    environment,
    train_config,
    write_metrics,
)
from grukit.tasks.forecast_baselines import AIRLINE, Fits, all_baselines, fit_baselines
from grukit.tasks.forecast_data import TRANSFORMS, Prepared, errors, prepare, prepared_for
from grukit.tasks.forecast_model import ForecastEnsemble, Forecaster
from grukit.train import fit, seed_everything

log = logging.getLogger(__name__)

EPOCHS = 30  # default epochs (the best on validation is kept)
PATIENCE = 10  # stop after this many epochs without a better validation MASE
PATCH = 4  # default steps per GRU input


def add_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data")
    data.add_argument("--data", choices=("co2", "seattle"), default=None,
                      help="bundled series when no --csv is given (default co2)")
    data.add_argument("--csv", type=Path, help="your own CSV file with a header row")
    data.add_argument("--column", help="target column of --csv")
    data.add_argument("--date-column",
                      help="date column of --csv (ISO dates, increasing; sets the season; a few skipped dates "
                           "become gaps)")
    data.add_argument("--covariates", default="", help="comma-separated extra input columns of --csv")
    add_encoding(data, "--csv")
    data.add_argument("--season", type=int, help="seasonal period in steps (default: from the dates; 52 weekly)")
    data.add_argument("--limit", type=int,
                      help="use only the first N steps (quick runs; the rows, plus gap rows for skipped dates)")
    data.add_argument("--transform", choices=TRANSFORMS, default="none",
                      help="what the GRU and the baselines model: the target itself (none) or its logarithm "
                           "(log, for a positive series that grows in proportion to its level); metrics are "
                           "always in the target's units (default none)")
    model = parser.add_argument_group("model")
    model.add_argument("--horizon", type=int, default=52, help="K, steps forecast at once (default 52)")
    model.add_argument("--lookback", type=int, default=156, help="L, past steps the model sees (default 156)")
    model.add_argument("--hidden", type=int, default=64, help="GRU units (default 64)")
    model.add_argument("--patch", type=int, default=PATCH, help=f"steps fed to the GRU as one input (default {PATCH})")
    model.add_argument("--dropout", type=float, default=0.2, help="dropout before the head (default 0.2)")
    model.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default 1e-3)")
    model.add_argument("--batch-size", type=int, default=32, help="windows per batch (default 32)")
    model.add_argument("--members", type=int, default=5, help="GRU forecasters averaged, each from its own "
                                                                 "initialisation (default 5)")
    model.add_argument("--backtest", type=int, default=0,
                       help="K > 0: run the whole command on K splits, the default one and K - 1 each moved one "
                            "more test-part length into the past (rolling-origin backtest), each fold's files in "
                            "fold-j/; report every fold and the mean (default 0)")
    model.add_argument("--linear", action=argparse.BooleanOptionalAction, default=True,
                       help="give each member a linear autoregressive path started at the ridge fit "
                            "(default on; --no-linear: the GRU alone)")
    add_resume(parser)


def load_series(args: argparse.Namespace) -> Series:
    """The series the arguments name: --csv with --column, else the bundled --data set."""
    covariates = [c.strip() for c in args.covariates.split(",") if c.strip()]
    encoding = encoding_of(args, "--csv", args.csv is not None)
    if args.csv is not None and args.data is not None:
        raise UsageError(f"--data: expected either --data (a bundled series) or --csv, got --data {args.data} and "
                         f"--csv {args.csv}")
    if args.csv is not None:
        if not args.column:
            raise UsageError("--column: expected the name of the target column of --csv, got nothing")
        series = read_csv(args.csv, args.column, date_column=args.date_column, covariates=covariates,
                          encoding=encoding)
        if series.season == 1 and args.season is None:
            log.warning("forecast: no season (m = 1) %s: the seasonal baselines are left out and MASE is scaled "
                        "by the naive one-step error; give --season m (or --date-column) for a seasonal series",
                        "from the dates of --date-column" if args.date_column else "without --date-column")
    elif args.column or covariates or args.date_column:
        raise UsageError("--column/--covariates/--date-column: expected together with --csv, got no --csv")
    else:
        series = load_seattle() if args.data == "seattle" else load_co2()  # None: co2, the default
    if args.limit is not None:
        if args.limit < 2:
            raise UsageError(f"--limit: expected an integer >= 2, got {args.limit}")
        if args.limit < len(series):
            series = Series(series.values[: args.limit], series.names,
                            series.dates[: args.limit] if series.dates else None, series.source, series.season,
                            cut_from=len(series))
    return series


def _check_sizes(args: argparse.Namespace) -> None:
    check_at_least(args, ("horizon", "lookback", "hidden", "patch", "batch_size", "members"))
    if args.patch > args.lookback:
        default = " (the default; give --patch too)" if args.patch == PATCH else ""
        raise UsageError(f"--patch: expected at most --lookback ({args.lookback}), got {args.patch}{default}")
    if args.backtest < 0:
        raise UsageError(f"--backtest: expected an integer >= 0, got {args.backtest}")
    check_at_least(args, ("season",))
    if not 0 <= args.dropout < 1:
        raise UsageError(f"--dropout: expected a number in [0, 1), got {args.dropout}")


def _dataset(p: Prepared, part: str) -> tuple[TensorDataset, np.ndarray]:
    t = p.origins(part)  # (N,)
    target, observed = p.targets(t)  # (N, K), (N, K)
    return TensorDataset(torch.from_numpy(p.inputs(t)), torch.from_numpy(target), torch.from_numpy(observed)), t


def masked_mse(model: torch.nn.Module, batch) -> torch.Tensor:
    """Mean of (ŷ − y)² over the observed targets of a batch (x, y, observed)."""
    x, y, observed = batch
    err = (model(x) - y) ** 2  # (N, K)
    return (err * observed).sum() / observed.sum().clamp_min(1.0)


def ensemble_mse(model: torch.nn.Module, batch) -> torch.Tensor:
    """Sum over members of each member's masked MSE (x, y, observed): the members train independently."""
    x, y, observed = batch
    err = (model(x, members=True) - y) ** 2  # (M, N, K)
    return (err * observed).sum() / observed.sum().clamp_min(1.0)


def val_mase(model: torch.nn.Module, val: TensorDataset) -> dict[str, float]:
    """Validation MAE in units of s, i.e. MASE (targets are scaled by the seasonal-naive MAE)."""
    x, y, observed = (t.to(next(model.parameters()).device) for t in val.tensors)
    err = (model(x) - y).abs()  # (N, K)
    return {"val_mase": ((err * observed).sum() / observed.sum().clamp_min(1.0)).item(),
            "val_loss": masked_mse(model, (x, y, observed)).item()}


READING = ("window", "season", "scale", "transform", "covariate_mean", "covariate_std")  # prepared_for's too


def reading(p: Prepared) -> dict:
    """How a model trained on `p` reads a series: the `ForecastEnsemble` fields (READING) that `forecast_from`
    needs."""
    return {"window": p.lookback, "season": p.season, "scale": p.scale, "transform": p.transform,
            "covariate_mean": p.covariate_mean.tolist(), "covariate_std": p.covariate_std.tolist()}


def forecast_from(model: ForecastEnsemble, values: np.ndarray, *, start: int = 0) -> np.ndarray:
    """ŷ (K,): a saved `grukit forecast` model's forecast of the K steps after the last row of `values`.

    values (T, 1 + C) or (T,): the target, then the covariates the model was trained with, in its units, NaN
    for a gap, at least the model's window of rows; `start`: the step number of values[0] in the series the
    model was trained on (0: the same first step), which sets the phase of the season channels.

    Example:
        >>> import grukit, numpy as np
        >>> from grukit.data.timeseries import load_co2
        >>> model = grukit.load("runs/forecast/model.safetensors")  # doctest: +SKIP
        >>> forecast_from(model, load_co2().values).round(1)[:3]  # doctest: +SKIP
        array([371.6, 371.8, 372. ])
    """
    if not isinstance(model, ForecastEnsemble):
        raise TypeError(f"model: expected a grukit forecast model (ForecastEnsemble), got {type(model).__name__}")
    c = model.config
    if not c.window:
        raise UsageError("model: expected a forecast model that records how it reads a series (its window, "
                         "scale and season); this checkpoint predates that: run grukit forecast again")
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or start < 0:
        raise ValueError(f"start: expected an integer >= 0 (the step number of values[0]), got {start!r}")
    try:
        values = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"values: expected numbers (NaN for a gap), got {type(values).__name__} ({err})") from None
    if np.isinf(values).any():
        raise ValueError("values: expected finite numbers (NaN for a gap), got an infinite one")
    columns = 1 if values.ndim == 1 else values.shape[1] if values.ndim == 2 else 0
    if values.ndim not in (1, 2) or columns != c.n_features - 4:
        raise UsageError(f"values: expected (T, {c.n_features - 4}) values (the target, then "
                         f"{c.n_features - 5} covariates), got shape {values.shape}")
    p = prepared_for(values, horizon=c.horizon, start=start, **{name: getattr(c, name) for name in READING})
    return predict(model, p, np.array([len(p.y) - 1]))[0]  # (K,)


@torch.no_grad()
def predict(model: Forecaster | ForecastEnsemble, p: Prepared, t: np.ndarray) -> np.ndarray:
    """(N, K) forecasts in data units at origins t."""
    model.eval()
    device = next(model.parameters()).device
    scaled = model(torch.from_numpy(p.inputs(t)).to(device)).cpu().numpy()  # (N, K)
    return p.unscale(t, scaled)


def run(args: argparse.Namespace) -> dict:
    check_common(args, threads=1)  # a 64-unit GRU on 32 windows: more threads only add synchronisation
    _check_sizes(args)
    series = load_series(args)
    if args.backtest:
        from grukit.tasks.forecast_backtest import backtest  # it imports this module

        return backtest(args, series)
    return run_split(args, series, split(args, series), Path(args.out))


def split(args: argparse.Namespace, series: Series, back: int = 0) -> Prepared:
    """The prepared windows of `series` for the arguments; back = j: backtest fold j + 1 (`prepare`)."""
    return prepare(series.values, lookback=args.lookback, horizon=args.horizon, season=args.season or series.season,
                   back=back, transform=args.transform, names=series.names, cut=_cut(series))


def run_split(args: argparse.Namespace, series: Series, p: Prepared, out: Path) -> dict:
    """Train the ensemble on `p`'s training part, score it and the baselines on its test part; files into `out`."""
    season = p.season
    train, _ = _dataset(p, "train")
    val, _ = _dataset(p, "val")
    t_test = p.origins("test")
    seed_everything(args.seed)
    sizes = dict(hidden_size=args.hidden, patch=args.patch, dropout=args.dropout, backend=args.backend,
                 lookback=args.lookback if args.linear else 0, **reading(p))
    check_trainable(lambda: ForecastEnsemble(p.n_features, args.horizon, members=1, **sizes), "--members, --hidden",
                    copies=args.members)
    model = ForecastEnsemble(p.n_features, args.horizon, members=args.members, **sizes)
    fits = fit_baselines(p)  # on the training part (the ridge's α on validation); the ridge also starts the GRU
    if args.linear:
        for member in model.members:
            member.set_linear(torch.from_numpy(fits.W).float())
    config = train_config(args, epochs=EPOCHS, batch_size=args.batch_size, lr=args.lr, weight_decay=0.01,
                          warmup_steps=20, metric="val_mase", mode="min", patience=PATIENCE)
    result = fit(model, train, val, step_loss=ensemble_mse, evaluate=val_mase, config=config, out=out,
                 flags=OPTIMISER_FLAGS)

    target, observed = p.targets(t_test)
    truth = p.unscale(t_test, target)  # (N, K)
    forecasts = {"GRU": predict(model, p, t_test), **all_baselines(p, t_test, fits)}
    scores = {name: errors(f, truth, observed, p.mase_scale) for name, f in forecasts.items()}
    if not is_main():
        return {}
    files = _figures(out, model, p, series, t_test, forecasts, truth, result.history)
    ahead = outlook(model, p, fits, series) if len(p.y) == len(series) else None  # not for a backtest's older folds
    if ahead is not None:
        files.update(_outlook_files(out, p, series, ahead))
    metrics = {"test": scores, "scale": p.mase_scale, "transform": p.transform, "season": season,
               "horizon": args.horizon, "lookback": args.lookback, "members": args.members,
               "linear_path_ridge_alpha": fits.alpha if args.linear else None,
               "airline": {"theta": fits.airline.theta, "Theta": fits.airline.Theta,
                           "Theta_fitted": fits.airline.Theta_fitted} if fits.airline else None,
               "test_origins": int(len(t_test)), "gaps": int(p.gap.sum()),
               "best_epoch": result.best_epoch, "epochs_run": len(result.history),
               "train_seconds": round(result.run_seconds, 2), "val_mase": result.best.get("val_mase"),
               "args": args_dict(args), "environment": environment()}
    if ahead is not None:
        metrics["outlook"] = {"origin_step": len(p.y) - 1, "origin_date": series.dates[-1] if series.dates else None,
                              "file": "forecast.csv", "dated": "date" in ahead,
                              "drawn": [name for name in ahead if name.startswith(DRAWN)],
                              "last_step": {name: float(v[-1]) for name, v in ahead.items() if name != "date"}}
    files["metrics"] = write_metrics(out, metrics)
    summary = _summary(scores)
    files["report"] = _report(out, args, series, p, metrics, summary, files)
    files.update(result.shown_files())
    return {"summary": summary, "files": files, "metrics": metrics}


DRAWN = ("GRU", "ridge", "seasonal-naive+drift", AIRLINE)  # the models outlook.png draws (by name or its start)


@torch.no_grad()
def outlook(model: Forecaster | ForecastEnsemble, p: Prepared, fits: Fits, series: Series) -> dict[str, np.ndarray]:
    """The forecasts of the K steps after the series ends (origin T − 1, no truth yet): name -> (K,) in data
    units, the GRU's and every baseline's, with "date" (K,) when the rows step by a fixed unit (`dates_after`).
    The series is read as `forecast_from` reads it (`prepared_for`: every gap is before the origin), so the
    saved model gives the GRU's column again from the data alone."""
    # p's scaling without its split: every gap lies before the origin and is filled as forecast_from fills it
    q = prepared_for(series.values, horizon=p.horizon, **reading(p))
    t = np.array([len(q.y) - 1])  # (1,) the last step
    ahead = {"GRU": predict(model, q, t)[0], **{k: v[0] for k, v in all_baselines(q, t, fits).items()}}  # (K,) each
    dates = dates_after(series.dates, p.horizon, series.season) if series.dates else None
    return {**({"date": np.array(dates)} if dates else {}), **ahead}


def _outlook_files(out: Path, p: Prepared, series: Series, ahead: dict[str, np.ndarray]) -> dict[str, Path]:
    """forecast.csv (step, date, one column per model) and outlook.png (the recent past, then the forecasts)."""
    T, K = len(p.y), p.horizon
    table_ = {"step": list(range(T, T + K)), **{k: list(v) for k, v in ahead.items()}}
    past = np.arange(max(0, T - max(p.lookback, 3 * K)), T)  # (n,)
    seen = p.level(p.y[past])  # (n,)
    seen[p.gap[past]] = np.nan  # a filled gap is no observation
    shown = {k: v for k, v in ahead.items() if k.startswith(DRAWN)}
    end = f" ({series.dates[-1]})" if series.dates else ""
    return {"forecast table": write_csv(out / "forecast.csv", table_),
            "outlook": plots.forecast(past, seen, np.arange(T, T + K), None, shown, out / "outlook.png",
                                      title=f"{series.names[0]}: the next {K} steps after the last one{end}",
                                      ylabel=series.names[0])}


def _summary(scores: dict[str, dict[str, float]]) -> str:
    rows = [{"model": name, **s} for name, s in sorted(scores.items(), key=lambda kv: kv[1]["MASE"])]
    return table(rows, ["model", "MAE", "RMSE", "MASE"])


def _figures(out: Path, model: Forecaster, p: Prepared, series: Series, t_test: np.ndarray,
             forecasts: dict[str, np.ndarray], truth: np.ndarray, history: list[dict]) -> dict[str, Path]:
    i = len(t_test) - 1  # the last rolling origin: the most recent forecast
    t = int(t_test[i])
    past = np.arange(max(0, t - max(p.lookback, 3 * p.horizon)), t + 1)  # the window the model read, at least 3K
    future = np.arange(t + 1, t + 1 + p.horizon)
    keep = ["GRU", "naive", "seasonal-naive", "seasonal-naive+drift", AIRLINE]
    shown = {k: v[i] for k, v in forecasts.items() if k in keep or k.startswith("ridge")}
    files = {"loss curves": plots.loss_curves(history, out / "loss.png", keys=["train_loss", "val_loss", "val_mase"],
                                              title="forecast: MSE (train: per member; validation: the mean "
                                                    "forecast) and validation MASE, scaled units",
                                              members=getattr(model.config, "members", 1))}
    seen, truth_seen = p.level(p.y[past]), truth[i].copy()  # (len(past),), (K,)
    seen[p.gap[past]], truth_seen[p.gap[future]] = np.nan, np.nan  # a filled gap is no observation: a break
    files["forecast"] = plots.forecast(past, seen, future, truth_seen, shown, out / "forecast.png",
                                       title=f"{series.names[0]}: forecast from step {t} ({p.horizon} steps)",
                                       ylabel=series.names[0])
    z, r = model.gates(torch.from_numpy(p.inputs(np.array([t]))[0]).to(next(model.parameters()).device))
    files["gates"] = plots.gates(z.cpu().numpy(), r.cpu().numpy(), out / "gates.png",
                                 title=f"GRU gates over the lookback window ending at step {t} "
                                       f"({model.config.patch} steps per GRU input)",
                                 xlabel="GRU step (oldest → newest patch of the lookback window)")
    return files


# how the inputs fill a missing value, the target's and the covariates' alike
FILL_RULE = ("by linear interpolation in time within the training part and, from the validation part on, with the "
             "last observed value")


def _covariate_gaps(series: Series, steps: int, *, target_filled: bool) -> str:
    """What the report says of the covariates' gaps in the first `steps` steps ('' without covariates); where the
    target had no gap to fill (`target_filled` False), the fill rule is said here rather than referred to."""
    if len(series.names) < 2:
        return ""
    counts = series.missing()[:steps, 1:].sum(axis=0)  # (C,)
    if not counts.any():
        return " The covariates have no missing values."
    listed = ", ".join(f"{name} {int(n)}" for name, n in zip(series.names[1:], counts) if n)
    how = "the same way" if target_filled else FILL_RULE
    return (f" Missing covariate values ({listed}) are filled {how}, without an indicator channel; "
            f"the GRU and the ridge read the filled values.")


def _cut(series: Series) -> str:
    """' (the first N of its M steps, by --limit)' when --limit cut the series, else ''."""
    if series.cut_from is None:
        return ""
    return f" (the first {len(series):,} of its {series.cut_from:,} steps, by --limit)"


def _airline_fit(fit: dict, season: int) -> str:
    """The report's words for the airline model's coefficients, Θ's fixed value where it could not be fitted."""
    if fit["Theta_fitted"]:
        return f"θ = {fit['theta']:.3f}, Θ = {fit['Theta']:.3f}"
    return (f"θ = {fit['theta']:.3f}; Θ fixed at 0, since the training part has no step from step {2 * season + 1} "
            f"on whose seasonal difference reads only observed values, and only there would Θ change the fit")


def _report(out: Path, args, series: Series, p: Prepared, metrics: dict, summary: str, files: dict) -> Path:
    n_train, n_test = p.bounds
    gaps = int(p.gap.sum())
    data = (f"Source: `{series.source}` — target `{series.names[0]}`"
            + (f", covariates {', '.join(series.names[1:])}" if len(series.names) > 1 else "")
            + f"; {len(series)} steps{_cut(series)}, season m = {p.season}.\n\n"
            f"Split (chronological): train steps 0–{n_train - 1}, validation {n_train}–{n_test - 1}, "
            f"test {n_test}–{len(p.y) - 1}"
            + (f" (a backtest fold: the last {len(series) - len(p.y)} steps of the series are left out)"
               if len(p.y) < len(series) else "") + ". Scaling statistics come from the training part only.\n\n"
            + (f"Gaps: the target has {gaps} missing values ({gaps - int(p.gap[:n_train].sum())} after the "
               f"training part). Inputs fill them {FILL_RULE}, so no validation or test window reads "
               f"a value observed after its origin; a 0/1 gap-indicator channel marks every filled target step. A "
               f"missing value is never a target: it is left out of the training loss, the validation metric and "
               f"every test metric (the baselines are scored on the same observed points)." if gaps else
               "Gaps: the target has no missing values (the model's 0/1 gap-indicator channel is 0 throughout).")
            + _covariate_gaps(series, len(p.y), target_filled=bool(gaps)))
    method = (f"Direct multi-step forecast of K = {p.horizon} steps from a lookback of L = {p.lookback} steps, "
              f"at every rolling origin of the test part ({metrics['test_origins']} origins). "
              f"Model: " + (f"the mean of {args.members} members, each a" if args.members > 1 else "a")
              + f" grukit.GRU ({args.hidden} units, {args.patch} "
              f"steps per GRU input, reset before) over the window's changes from its last value, then a linear "
              f"head" + (f", plus a linear autoregressive path on the window started at the ridge AR fit "
                         f"(α = {metrics['linear_path_ridge_alpha']:g}) and trained together with the GRU, which "
                         f"learns what the linear path misses" if args.linear else "")
              + ("; members differ by initialisation" if args.members > 1 else "")
              + f"; MSE on observed targets; AdamW, cosine schedule, gradient clipping 1.0; best epoch "
              f"{metrics['best_epoch']} of "
              f"{metrics['epochs_run']} run by validation MASE (at most {args.epochs or EPOCHS}, stopping after "
              f"{PATIENCE} without improvement); {seconds(metrics['train_seconds'])} of training.\n\n"
              + (f"The GRU and every baseline model log {series.names[0]} (s = {p.scale:.4g} in log units "
                 f"scales the GRU's inputs and targets) and their forecasts are mapped back by exp; validation "
                 f"MASE during training is in log units, every test metric in the target's own units. "
                 if p.transform == "log" else "")
              + f"MASE = MAE / s with s = {number(p.mase_scale)}, the in-sample "
              + (f"seasonal-naive (m = {p.season})" if p.season > 1 else "naive (one step back)") + " MAE "
              "on the training part. Baselines: naive (last value), "
              + ("seasonal-naive (value one season back), seasonal-naive + drift (plus the last season's mean "
                 "change per step), " if p.season > 1 else "")
              + (f"the airline model, seasonal ARIMA(0,1,1)(0,1,1) with m = {p.season} fitted by conditional "
                 f"least squares on the training part ({_airline_fit(metrics['airline'], p.season)}), "
                 if metrics.get("airline") else "")
              + "and a direct ridge linear autoregression on the same L-step window (penalty chosen on validation).")
    figs = "\n\n".join(figure(name, path) for name, path in files.items() if str(path).endswith(".png"))
    sections = [("What ran", method), ("Data", data), ("Test metrics (lower is better)", summary)]
    if metrics.get("outlook"):
        o = metrics["outlook"]
        last = ", ".join(f"{name} {number(value)}" for name, value in sorted(o["last_step"].items()))
        sections.append(("Past the data", (
            f"From the last step{' read' if _cut(series) else ''} ({o['origin_step']}"
            f"{', ' + o['origin_date'] if o['origin_date'] else ''}), "
            f"`forecast.csv` holds every model's forecast of the next {p.horizon} steps"
            + (", with their dates" if o["dated"] else "")
            + f", and `outlook.png` draws {', '.join(o['drawn'])}. At step "
            f"{p.horizon}: {last}. The models were trained on the training part only; the test metrics above "
            f"say how far each is to be trusted on this series.")))
    return write_report(out / "report.md", f"grukit forecast: {series.names[0]}", [*sections, ("Figures", figs)])
