"""grukit forecast --backtest K: folds moved into the past, their metrics, the files, too many folds."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from grukit import cli
from grukit.data.timeseries import Series, fill_gaps, load_co2
from grukit.plots import SIZE
from grukit.tasks.forecast_backtest import _period
from grukit.tasks.forecast_data import prepare


def test_back_moves_the_split_by_whole_test_parts_and_keeps_their_lengths():
    values = load_co2().values
    p0 = prepare(values, lookback=156, horizon=52, season=52)
    assert p0.bounds == (1599, 1942) and len(p0.y) == 2284  # the default split: 70 | 15 | 15 %
    n_val, n_test = 1942 - 1599, 2284 - 1942
    for j in (1, 2, 3):
        p = prepare(values, lookback=156, horizon=52, season=52, back=j)
        T = 2284 - j * n_test
        assert len(p.y) == T and p.bounds == (T - n_val - n_test, T - n_test)
        assert np.array_equal(p.y[~p.gap], values[:T, 0][~np.isnan(values[:T, 0])])  # the series' first T steps
        assert np.array_equal(p.y, fill_gaps(values[:T], causal_from=p.bounds[0])[0][:, 0])  # filled as a series
        assert p.scale != p0.scale  # s comes from each fold's own training part
    test_parts = [set(range(*prepare(values, lookback=156, horizon=52, season=52, back=j).bounds[1:2],
                            2284 - j * n_test)) for j in range(4)]
    assert all(not (a & b) for i, a in enumerate(test_parts) for b in test_parts[i + 1:])  # disjoint test periods


def test_forecast_backtest_end_to_end_on_a_slice(tmp_path, capsys):
    out = tmp_path / "bt"
    argv = ["forecast", "--limit", "700", "--horizon", "8", "--lookback", "16", "--hidden", "4", "--members", "1",
            "--backtest", "3", "--epochs", "1", "--out", str(out)]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    for name in ("metrics.json", "report.md", "folds.png"):
        assert (out / name).is_file() and str(out / name) in printed, name
    assert Image.open(out / "folds.png").size == SIZE
    m = json.loads((out / "metrics.json").read_text())
    folds = [json.loads((out / f"fold-{j}" / "metrics.json").read_text()) for j in (1, 2, 3)]
    assert m["folds"] == 3 and len(m["test_periods"]) == 3 and len(set(m["test_periods"])) == 3
    for name, stats in m["MASE"].items():
        per_fold = [f["test"][name]["MASE"] for f in folds]
        assert m["per_fold"][name] == per_fold and stats["mean"] == pytest.approx(np.mean(per_fold))
    ridge = "ridge AR(16)"
    lead = m["gru_lead"][ridge]
    assert lead["mean"] == pytest.approx(np.mean(np.array(m["per_fold"][ridge]) - m["per_fold"]["GRU"]))
    assert lead["folds_ahead"] + lead["folds_behind"] <= 3
    report = (out / "report.md").read_text()
    assert "3-fold backtest" in report and "fold 3: test" in report and "GRU lead" in report
    assert "backtest fold" in (out / "fold-2" / "report.md").read_text()  # the fold's report says it is cut
    assert (out / "fold-1" / "forecast.csv").is_file() and not (out / "fold-2" / "forecast.csv").exists()
    # found by a review: --resume with or without --backtest in the other kind of run's folder trained from
    # scratch and overwrote its report; both are refused, and the folder is left as it was
    plain = tmp_path / "plain"
    assert cli.main([a for a in argv[:-2] if a not in ("--backtest", "3")] + ["--out", str(plain)]) == 0
    capsys.readouterr()
    for folder, flags, message in ((out, [], "holds a run with its training state elsewhere"),
                                   (plain, ["--backtest", "3"], "holding a run of one split")):
        before = {p: p.stat().st_mtime_ns for p in folder.rglob("*")}
        cmd = [a for a in argv[:-2] if a not in ("--backtest", "3")] + flags + ["--out", str(folder), "--resume"]
        assert cli.main(cmd) == 2
        err = capsys.readouterr().err
        assert err.startswith("grukit forecast: error: --resume: expected") and message in err, err
        assert {p: p.stat().st_mtime_ns for p in folder.rglob("*")} == before
    cmd = [a for a in argv[:-2] if a not in ("--backtest", "3")] + ["--no-linear", "--out", str(plain), "--resume"]
    assert cli.main(cmd) == 2  # found by a review: the refusal named lookback alone, a flag the user never gave
    assert "lookback 16 → 0 (set by --lookback, or --no-linear, which makes it 0)" in capsys.readouterr().err
    partial = tmp_path / "partial"  # a backtest stopped in its first fold: only fold-1/ holds anything
    shutil.copytree(out / "fold-1", partial / "fold-1")
    cmd = [a for a in argv[:-2] if a not in ("--backtest", "3")] + ["--out", str(partial), "--resume"]
    assert cli.main(cmd) == 2 and "beside fold-1/last.state.safetensors, got none" in capsys.readouterr().err
    assert sorted(p.name for p in partial.iterdir()) == ["fold-1"]


def test_too_many_backtest_folds_exit_2_and_leave_nothing(tmp_path, capsys):
    out = tmp_path / "x"
    assert cli.main(["forecast", "--backtest", "5", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--backtest" in err and "fold 5" in err and not out.exists()
    assert cli.main(["forecast", "--backtest", "-1", "--out", str(out)]) == 2
    assert "--backtest" in capsys.readouterr().err and not out.exists()


def test_a_baseline_fitted_on_some_folds_only_is_named_not_tabled(tmp_path, capsys):
    """Found by a review: when one fold's training part had no step for the airline model (every seasonal
    difference read a gap), the backtest trained every fold and then failed with KeyError: 'airline SARIMA'."""
    values = np.sin(np.arange(400) * np.pi / 2) + 0.01 * np.arange(400)  # (400,) season 4
    rows = ["t,v"] + [f"{t},{'' if t % 2 and t < 230 else f'{v:.4f}'}" for t, v in enumerate(values)]
    (tmp_path / "sparse.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "run"
    assert cli.main(["forecast", "--csv", str(tmp_path / "sparse.csv"), "--column", "v", "--season", "4",
                     "--horizon", "4", "--lookback", "8", "--hidden", "4", "--members", "1", "--epochs", "1",
                     "--backtest", "2", "--device", "cpu", "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["left_out"] == {"airline SARIMA": [1]} and "airline SARIMA" not in m["per_fold"]
    assert "airline SARIMA" in json.loads((out / "fold-1" / "metrics.json").read_text())["test"]
    assert "airline SARIMA is left out: it was fitted on fold(s) 1 only" in (out / "report.md").read_text()


def test_each_folds_test_period_runs_from_its_test_part_to_its_last_step():
    """A mutation audit: naming a fold's test period from the start of its validation part passed every test."""
    values = np.sin(np.arange(100) * 2 * np.pi / 4)[:, None] + np.arange(100)[:, None] * 0.1  # (100, 1)
    dates = [f"{2000 + i // 12}-{i % 12 + 1:02d}" for i in range(100)]
    series = Series(values, ["y"], dates, "s.csv", 4)
    p0, p1 = (prepare(values, lookback=4, horizon=2, season=4, back=j) for j in (0, 1))
    assert (p0.bounds, len(p0.y), p1.bounds, len(p1.y)) == ((70, 85), 100, (55, 70), 85)
    assert _period(series, p0) == "2007-02 – 2008-04"  # steps 85 and 99
    assert _period(series, p1) == "2005-11 – 2007-01"  # steps 70 and 84
    assert _period(Series(values, ["y"], None, "s.csv", 4), p1) == "steps 70 – 84"


def test_the_backtest_keeps_each_folds_scale_and_sums_their_training_time(tmp_path, monkeypatch):
    """A mutation audit: every fold given fold 1's scale s, or the longest fold's seconds for the whole run's,
    passed every test (the end-to-end run checked neither)."""
    import argparse

    from grukit.tasks import forecast
    from grukit.tasks.forecast_backtest import backtest

    parser = argparse.ArgumentParser()
    forecast.add_arguments(parser)
    args = parser.parse_args(["--horizon", "2", "--lookback", "4", "--backtest", "3"])
    args.out, args.epochs, args.seed, args.device, args.backend = str(tmp_path), 1, 0, "cpu", "auto"
    values = np.sin(np.arange(200) * 2 * np.pi / 4)[:, None] + np.arange(200)[:, None] ** 1.5 * 0.01  # (200, 1)
    series = Series(values, ["y"], None, "s.csv", 4)

    def run_split(args, series, p, out):  # canned scores: what backtest does with them is under test
        j = len(seen)
        seen.append(p.scale)
        return {"metrics": {"test": {"GRU": {"MASE": 0.5 + j}, "naive": {"MASE": 1.0 + j}}, "scale": p.scale,
                            "best_epoch": 1, "train_seconds": 1.25 * (j + 1)}}

    seen = []
    monkeypatch.setattr(forecast, "run_split", run_split)
    m = backtest(args, series)["metrics"]
    assert len(set(seen)) == 3 and m["scales"] == seen  # each fold its own training part's s
    assert m["train_seconds"] == 7.5 and m["per_fold"] == {"GRU": [0.5, 1.5, 2.5], "naive": [1.0, 2.0, 3.0]}
    assert [f"- fold {j}: test steps" in (tmp_path / "report.md").read_text() for j in (1, 2, 3)] == [True] * 3
