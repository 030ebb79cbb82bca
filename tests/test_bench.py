"""`grukit bench` end to end on its smallest row: files, records and ratios are consistent."""
import json

import torch
from torch.utils.flop_counter import FlopCounterMode

import grukit
from grukit import cli
from grukit.bench import ROWS, Row, forward_flops, training_flops


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
    from grukit import bench

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
    from collections import Counter

    from grukit import bench

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
    from pathlib import Path

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
