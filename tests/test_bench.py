"""`grukit bench` end to end on its smallest row: files, records and ratios are consistent."""
import argparse
import functools
import json
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import grukit
from grukit import bench, cli
from grukit.bench import ROWS, STREAM, Row, forward_flops, training_flops
from grukit.errors import UsageError


def test_bench_one_row_writes_json_and_markdown(tmp_path):
    out = tmp_path / "bench"
    code = cli.main(["bench", "--rows", "N1", "--repeats", "1", "--no-memory", "--no-jax", "--out", str(out)])
    assert code == 0
    result = json.loads((out / "cpu.json").read_text())
    assert result["environment"]["sgemm_gflops"] > 0
    rates = {r["sgemm_gflops"] for r in result["records"] if r["row"] == "N1"}  # timed with the row's steps
    assert len(rates) == 1 and rates.pop() > 0
    by_impl = {r["impl"]: r for r in result["records"] if r["row"] == "N1" and r["reset"] == "after"}
    assert {"grukit-fused", "grukit-eager", "torch.nn.GRU"} <= set(by_impl)
    for record in by_impl.values():
        assert record["fwd_ms"] > 0 and record["train_ms"] > 0
        assert abs(record["train_gflops"] - training_flops(ROWS[0]) / record["train_ms"] / 1e6) < 1e-9
        assert abs(record["train_pct_sgemm"] - 100 * record["train_gflops"] / record["sgemm_gflops"]) < 1e-9
    ours = by_impl.get("grukit-cpu", by_impl["grukit-fused"])
    vs_torch = [t for t in result["targets"] if t["target"] == "N1: training step vs torch.nn.GRU"]
    if "grukit-cpu" in by_impl:  # the targets table is about the cpu kernel
        assert abs(vs_torch[0]["value"] - by_impl["torch.nn.GRU"]["train_ms"] / ours["train_ms"]) < 0.01
    table = (out / "cpu.md").read_text()
    assert "| N1 (1, 512, 64, 128) | after | torch.nn.GRU |" in table
    from grukit.bench import jax_available

    assert ("jax not run;" if jax_available() else "jax not installed;") in table  # --no-jax said "not installed"


def test_bench_unknown_row_is_a_usage_error(tmp_path, capsys):
    assert cli.main(["bench", "--rows", "N7", "--out", str(tmp_path / "b")]) == 2
    assert "rows" in capsys.readouterr().err


def test_flop_counts_match_what_torch_counts_for_the_eager_step():
    """forward_flops is exactly the matmul work of a forward; training_flops that of a step whose x needs no
    gradient, to within the first step (whose h_prev, zeros, needs no gradient either)."""
    row = Row("t", N=3, T=50, I=5, H=4)
    gru = grukit.GRU(row.I, row.H, backend="eager")
    x = torch.randn(row.T, row.N, row.I)  # (T, N, I), no gradient
    with FlopCounterMode(display=False) as forward, torch.no_grad():
        gru(x)
    assert forward.get_total_flops() == forward_flops(row)
    with FlopCounterMode(display=False) as step:
        output, h_n = gru(x)  # (T, N, H), (1, N, H)
        (output.sum() + h_n.sum()).backward()
    assert 0 <= training_flops(row) - step.get_total_flops() <= 2 * row.N * 3 * row.H * row.H  # one dh_prev


def test_the_table_heading_says_how_many_runs_were_timed():
    """Before, `--repeats 1` gave 'Median of 1 runs ... (3 when one run takes over 3 s ...)'."""
    from grukit.bench import _timing

    assert _timing(1) == "One run each, in ms"
    assert _timing(3) == "Median of 3 runs in ms, a row's implementations timed in turns (1 when one run takes " \
                         "over 10 s)"
    assert _timing(5) == "Median of 5 runs in ms, a row's implementations timed in turns (3 when one run takes " \
                         "over 3 s, 1 over 10 s)"


def test_interleaved_timing_runs_the_callables_in_turns_and_fewer_times_when_slow(monkeypatch):
    """Each round runs every callable once, after one warm-up each, in the round's own order: a change in load
    meets all alike. A callable whose warm-up took over 3 s runs 3 times, over 10 s once."""
    clock, calls = [0.0], []

    def make(name, seconds):
        def fn():
            calls.append(name)
            clock[0] += seconds
        return fn

    monkeypatch.setattr(bench.time, "perf_counter", lambda: clock[0])
    ms = bench.interleaved_ms({"a": make("a", 0.5), "b": make("b", 1.0), "slow": make("slow", 4.0),
                               "slower": make("slower", 11.0)}, repeats=5)
    assert ms == {"a": 500.0, "b": 1000.0, "slow": 4000.0, "slower": 11000.0}
    assert calls[:4] == ["a", "b", "slow", "slower"]  # the warm-ups
    rounds = [{"a", "b", "slow", "slower"}] + [{"a", "b", "slow"}] * 2 + [{"a", "b"}] * 2
    at = 4
    for names in rounds:
        assert set(calls[at:at + len(names)]) == names and len(calls[at:at + len(names)]) == len(names)
        at += len(names)
    assert at == len(calls)
    assert bench.median_ms(make("c", 0.25), 3) == 250.0 and calls[-4:] == ["c"] * 4


def test_no_callable_always_follows_the_same_one():
    """Found by a review: rounds that only started one further along kept the cycle, so GRU.step's loop ran
    right after JAX's in every round (a run after JAX's is slower). Now n rounds of n callables put each right
    after each other one once (n even; n odd: 2n rounds, twice)."""
    for n in (2, 3, 4, 5, 6, 7):
        rounds = 2 * n if n % 2 else n
        orders = [bench.round_order(n, r) for r in range(rounds)]
        assert all(sorted(order) == list(range(n)) for order in orders)
        pairs = Counter((o[i - 1], o[i]) for o in orders for i in range(1, n))
        assert len(pairs) == n * (n - 1) and set(pairs.values()) == {rounds // n}, (n, pairs)
    calls = []
    fns = {name: (lambda name=name: calls.append(name)) for name in "abcdef"}
    bench.interleaved_ms(fns, repeats=5)
    timed = [calls[6 + 6 * r: 12 + 6 * r] for r in range(5)]  # after the warm-ups, round by round
    assert Counter((o[i - 1], o[i]) for o in timed for i in range(1, 6)).most_common(1)[0][1] == 1


def test_make_bench_takes_the_lock_of_its_out_as_grukit_bench_does(tmp_path, capsys):
    """Found by a docs walkthrough: benchmarks/bench_layer.py (make bench) wrote into a folder whose lock a live
    run held, where `grukit bench` is refused."""
    import importlib.util

    from grukit import run_lock

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_layer.py"
    spec = importlib.util.spec_from_file_location("bench_layer", path)
    bench_layer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_layer)
    lock = run_lock.acquire(tmp_path)  # a live run's
    try:
        assert bench_layer.main(["--rows", "stream", "--out", str(tmp_path)]) == 2
    finally:
        run_lock.release(lock)
    assert "grukit bench: error: --out: expected a folder no other grukit run is writing into" in \
        capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
    # found by a review: it made --out before its arguments were checked, and left it
    assert bench_layer.main(["--rows", "bogus", "--out", str(tmp_path / "a" / "b")]) == 2
    assert "--rows" in capsys.readouterr().err and list(tmp_path.iterdir()) == []


DIMS = {row.name: row for row in (*ROWS, STREAM)}


def _rec(row, impl, reset="after", train=None, fwd=1.0, pct=None, peak=None):
    """A record as time_rows writes it, with the given times (ms), % of sgemm and peak MiB."""
    r = DIMS[row]
    return {"row": row, "N": r.N, "T": r.T, "I": r.I, "H": r.H, "impl": impl, "reset": reset, "fwd_ms": fwd,
            "train_ms": train, "sgemm_gflops": 100.0, "fwd_gflops": 1.0, "train_gflops": None if train is None else 1.0,
            "train_pct_sgemm": pct, "peak_mb": peak}


def _records():
    return [
        _rec("N1", "grukit-cpu", train=10.0, pct=20.0), _rec("N1", "torch.nn.GRU", train=50.0),
        _rec("N1", "jax", train=10.0), _rec("N1", "grukit-cpu", "before", train=14.0),
        _rec("N16", "grukit-cpu", train=None), _rec("N16", "torch.nn.GRU", train=5.0),
        _rec("N32", "grukit-cpu", "before", train=12.0), _rec("N32", "grukit-cpu", train=10.0),
        _rec("N32", "torch.nn.GRU", train=15.0),
        _rec("N64", "grukit-cpu", train=10.0, pct=70.0, peak=100.0),
        _rec("N64", "torch.nn.GRU", train=11.5, peak=100.0),
        _rec("N64", "jax", train=9.0),
        _rec("stream", "grukit-cpu", fwd=10.0), _rec("stream", "torch.nn.GRU", fwd=50.0),
    ]


def test_targets_goals_ratios_and_their_boundaries():
    """A mutation audit: evaluate_targets survived with any goal changed (N == 1 → 5x, H <= 256 → 1.5x, else 1.15x),
    with >= / <= turned strict, ratios inverted, _find ignoring the reset, the sgemm share taken from another
    row, and a row without a training time not skipped. Every value here sits on its goal."""
    targets = [(t["target"], t["value"], t["goal"], t["reached"]) for t in bench.evaluate_targets(_records())]
    assert targets == [
        ("N1: training step vs JAX", 1.0, ">= 1.0x", True),
        ("N1: training step vs torch.nn.GRU", 5.0, ">= 5.0x", True),
        ("N1: reset=before / reset=after (training)", 1.4, "<= 1.4x", True),
        ("N32: training step vs torch.nn.GRU", 1.5, ">= 1.5x", True),
        ("N32: reset=before / reset=after (training)", 1.2, "<= 1.4x", True),
        ("N64: training step vs JAX", 0.9, ">= 1.0x", False),
        ("N64: training step vs torch.nn.GRU", 1.15, ">= 1.15x", True),
        ("stream (N=1 GRU.step): vs torch.nn.GRU", 5.0, ">= 5.0x", True),
        ("N64: training GFLOP/s as % of sgemm", 70.0, ">= 70%", True),
        ("N64: peak memory of a training step (MiB) vs torch.nn.GRU", "100 vs 100", "<= torch", True),
    ]


def test_targets_below_their_goals_are_not_reached():
    """A mutation audit: the stream goal and the before/after bound must fail just past their goals."""
    records = [_rec("N1", "grukit-cpu", train=10.0), _rec("N1", "grukit-cpu", "before", train=14.5),
               _rec("stream", "grukit-cpu", fwd=10.0), _rec("stream", "torch.nn.GRU", fwd=20.0)]
    reached = {t["target"]: t["reached"] for t in bench.evaluate_targets(records)}
    assert reached == {"N1: reset=before / reset=after (training)": False,
                       "stream (N=1 GRU.step): vs torch.nn.GRU": False}


def _cells(table, start):
    line = next(line for line in table.splitlines() if line.startswith(start))
    return [cell.strip() for cell in line.split("|")[1:-1]]


def test_markdown_ratios_verdicts_and_stream_rows():
    """A mutation audit: markdown survived with ×torch/×JAX shown on reset=before rows, stream rows compared on a
    training time they lack, the stream row's shape label lost, yes/**no** swapped, and the JAX wording swapped."""
    records = _records()
    env = {"cpu": "test cpu", "threads": 2, "torch": "2.x", "jax": None, "jax_skipped": True,
           "sgemm_gflops": 100.0, "repeats": 5}
    table = bench.markdown({"environment": env, "records": records, "targets": bench.evaluate_targets(records)})
    assert "jax not run;" in table
    assert "jax not installed;" in bench.markdown({"environment": {**env, "jax_skipped": False}, "records": [],
                                                   "targets": []})
    assert _cells(table, "| N1 (1, 512, 64, 128) | after | grukit-cpu |")[5:7] == ["5.00", "1.00"]
    assert _cells(table, "| N1 (1, 512, 64, 128) | before | grukit-cpu |")[5:7] == ["—", "—"]
    assert _cells(table, "| stream: 512 × step(), N=1, I=64, H=128 | after | grukit-cpu |")[3:7] == \
        ["10.0", "—", "5.00", "—"]
    assert _cells(table, "| N64: training step vs JAX |") == ["N64: training step vs JAX", "0.9", ">= 1.0x", "**no**"]
    assert _cells(table, "| N1: training step vs JAX |")[3] == "yes"


def _fake_benchmark(monkeypatch):
    """benchmark() with its timing replaced: returns the list of time_rows and peak_memory_mb calls."""
    calls = {"time_rows": [], "peak": []}

    def time_rows(rows, repeats, backends, with_jax, resets=("after",)):
        calls["time_rows"].append(([r.name for r in rows], resets, with_jax))
        return [_rec(r.name, "grukit-cpu", reset, train=1.0, pct=1.0) for r in rows for reset in resets]

    monkeypatch.setattr(bench, "sgemm_gflops", lambda repeats: 100.0)
    monkeypatch.setattr(bench, "time_rows", time_rows)
    monkeypatch.setattr(bench, "time_stream", lambda repeats, sgemm, backends, with_jax: [])
    monkeypatch.setattr(bench, "peak_memory_mb", lambda row, impl: calls["peak"].append((row.name, impl)) or 1.0)
    return calls


def test_benchmark_times_before_with_the_main_rows_or_alone(monkeypatch):
    """A mutation audit: benchmark survived timing "before" apart from the main rows (not in turns with them),
    timing every row's "before" again when main rows were asked, and measuring memory of reset=before records."""
    calls = _fake_benchmark(monkeypatch)
    result = bench.benchmark(["N1", "before"], repeats=1, memory=True, with_jax=False)
    assert calls["time_rows"] == [(["N1"], ("after", "before"), False)]
    assert calls["peak"] == [("N1", "grukit-cpu")]
    assert [(r["reset"], r["peak_mb"]) for r in result["records"]] == [("after", 1.0), ("before", None)]
    calls = _fake_benchmark(monkeypatch)
    bench.benchmark(["before"], repeats=1, memory=False, with_jax=False)
    assert calls["time_rows"] == [([], ("after", "before"), False), ([r.name for r in ROWS], ("before",), False)]


def test_benchmark_says_jax_was_skipped_only_when_installed(monkeypatch):
    """A mutation audit: jax_skipped set by --no-jax alone survived; without JAX installed the table must say
    "not installed", not "not run"."""
    _fake_benchmark(monkeypatch)
    monkeypatch.setattr(bench, "jax_available", lambda: False)
    assert bench.benchmark(["N1"], repeats=1, memory=False, with_jax=False)["environment"]["jax_skipped"] is False
    monkeypatch.setattr(bench, "jax_available", lambda: True)
    assert bench.benchmark(["N1"], repeats=1, memory=False, with_jax=False)["environment"]["jax_skipped"] is True


def test_time_rows_times_the_peers_only_with_reset_after(monkeypatch):
    """A mutation audit: time_rows timing torch.nn.GRU (which has no reset="before") for a "before"-only row list
    survived. A tiny row, real timing; only the records' names matter."""
    monkeypatch.setattr(bench, "_sgemm", functools.partial(bench._sgemm, 32))
    row = Row("t", N=1, T=3, I=2, H=2)
    only_before = bench.time_rows([row], 1, ("eager",), False, ("before",))
    assert [(r["impl"], r["reset"]) for r in only_before] == [("grukit-eager", "before")]
    both = bench.time_rows([row], 1, ("eager",), False, ("after", "before"))
    assert [(r["impl"], r["reset"]) for r in both] == [("grukit-eager", "after"), ("grukit-eager", "before"),
                                                       ("torch.nn.GRU", "after")]


def test_sgemm_rate_counts_two_flops_per_multiply_add_at_the_given_size(monkeypatch):
    """A mutation audit: the sgemm rate without its factor 2, or sgemm_gflops not passing its size on, survived."""
    assert bench._sgemm_rate(2.0, size=1000) == 1000.0
    monkeypatch.setattr(bench, "median_ms", lambda fn, repeats: 4.0)
    monkeypatch.setattr(bench, "_sgemm", lambda size: None)
    assert bench.sgemm_gflops(1, size=100) == 2 * 100**3 / 4.0 / 1e6


def test_forward_gflops_use_the_forward_flops():
    """A mutation audit: _record's forward GFLOP/s computed from the training step's work survived."""
    row = Row("t", N=2, T=10, I=3, H=4)
    rec = bench._record(row, "x", "after", 2.0, 4.0, 100.0)
    assert rec["fwd_gflops"] == bench.forward_flops(row) / 2.0 / 1e6
    assert rec["train_gflops"] == bench.training_flops(row) / 4.0 / 1e6
    assert rec["train_pct_sgemm"] == 100 * rec["train_gflops"] / 100.0


def test_interleaved_timing_reports_the_median_and_runs_all_rounds_at_exactly_3_s(monkeypatch):
    """A mutation audit: the mean in place of the median, and a warm-up of exactly 3 s counted as slow, survived."""
    clock, durations = [0.0], iter([3.0, 1.0, 10.0, 10.0, 1.0, 1.0])  # warm-up, then five runs

    def fn():
        clock[0] += next(durations)

    monkeypatch.setattr(bench.time, "perf_counter", lambda: clock[0])
    assert bench.interleaved_ms({"fn": fn}, repeats=5) == {"fn": 1000.0}  # the first 3 runs: median 10


def test_every_callable_runs_first_once_in_n_rounds():
    """A mutation audit: shifting odd n's rounds by one each round (not every second one) survived the pair test:
    with 5 implementations and the default 5 repeats one of them then ran first twice and another never."""
    for n in range(2, 8):
        assert sorted(bench.round_order(n, r)[0] for r in range(n)) == list(range(n))


def test_rows_and_repeats_refuse_empty_and_zero():
    """A mutation audit: parse_rows taking an empty list, and run taking --repeats 0, survived."""
    for text in ("", " , "):
        with pytest.raises(UsageError, match="^--rows: expected names from"):
            bench.parse_rows(text)
    args = argparse.Namespace(rows="N1", repeats=0, no_memory=True, no_jax=True, out=None)
    with pytest.raises(UsageError, match=r"^--repeats: expected an integer >= 1, got 0$"):
        bench.run(args)


def test_peak_memory_is_none_when_the_child_fails_or_cannot_measure(monkeypatch, tmp_path):
    """A mutation audit: peak_memory_mb trusting a child that exited non-zero, and running without
    /proc/self/clear_refs, survived."""
    def child(returncode):
        def run(argv, **kwargs):
            Path(argv[-1]).write_text(json.dumps({"peak_mb": 5.0}))
            return SimpleNamespace(returncode=returncode, stderr="boom")
        return run

    def clear_refs(exists):
        (tmp_path / "clear_refs").write_text("")
        refs = tmp_path / ("clear_refs" if exists else "absent")
        return lambda p: refs if p == "/proc/self/clear_refs" else Path(p)

    row = Row("t", 1, 2, 1, 2)
    monkeypatch.setattr(bench, "Path", clear_refs(True))
    monkeypatch.setattr(bench.subprocess, "run", child(0))
    assert bench.peak_memory_mb(row, "torch.nn.GRU") == 5.0
    monkeypatch.setattr(bench.subprocess, "run", child(1))
    assert bench.peak_memory_mb(row, "torch.nn.GRU") is None
    monkeypatch.setattr(bench.subprocess, "run", child(0))
    monkeypatch.setattr(bench, "Path", clear_refs(False))
    assert bench.peak_memory_mb(row, "torch.nn.GRU") is None
