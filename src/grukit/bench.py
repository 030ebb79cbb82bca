"""Time the GRU layer on CPU against torch.nn.GRU and JAX, write JSON + markdown.

One training step = forward + backward of `output.sum() + h_n.sum()` with respect to the
parameters (x needs no gradient); forward = the same call under no_grad / jit without grad.
For each row (N, T, I, H), in this one process: every available grukit backend,
torch.nn.GRU and, when installed, JAX (lax.scan GRU, jit). Then GRU.step streaming with
N=1, and reset="before" for the grukit backends. The implementations of a row are timed in
turns, one run of each per round (`interleaved_ms`), so that the load of a shared machine,
which moves over minutes, falls on all of them alike. Reported: median ms, speed-up over
torch and JAX, GFLOP/s and its share of the sgemm rate (torch.mm 2048×2048) timed in turns
with the row's training steps (the rate at the start and at the end of the run is kept in
the JSON and the start's heads the table), and peak memory of one
training step: the growth of the peak resident set (VmHWM, reset through
/proc/self/clear_refs) over the resident set just before the step, in a fresh process per
implementation after one warm-up step, with glibc's mmap threshold fixed at 64 KiB (so a
block freed by the warm-up is returned, not silently reused by the measured step; the cpu
kernel's own pool of big buffers is emptied too). It counts every allocation the step makes
(torch, MKL, XLA alike) and nothing held before.

Work counted (multiply-adds × 2, gates ignored): forward 2·T·N·3H·(I+H), the input and
recurrent products; a training step 2·T·N·3H·(2I+3H), the forward plus the backward's dW_x
(I), dW_h (H) and dh_prev (H) products; no dx product, since x needs no gradient (the cpu
kernel skips it, torch's autograd too).

    grukit bench [--rows N1,N16,N32,N64,stream,before] [--repeats 5] [--out DIR] [--no-memory]

Example:
    >>> from grukit.bench import ROWS, forward_flops, training_flops
    >>> ROWS[0], forward_flops(ROWS[0]), training_flops(ROWS[0])
    (Row(name='N1', N=1, T=512, I=64, H=128), 75497472, 201326592)
"""
from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch

from grukit.errors import UsageError
from grukit.report import plural

log = logging.getLogger(__name__)
COMMON_ARGUMENTS = False  # bench has its own --out and no training options
OUT_MAY_HOLD_FILES = True  # e.g. benchmarks/results: the JSON and markdown are written last


@dataclass(frozen=True)
class Row:
    name: str  # short label used by --rows
    N: int  # batch
    T: int  # time steps
    I: int  # input features  # noqa: E741 - the paper's symbol
    H: int  # hidden units


ROWS = (Row("N1", 1, 512, 64, 128), Row("N16", 16, 1000, 1, 64), Row("N32", 32, 256, 128, 256),
        Row("N64", 64, 128, 256, 512))
STREAM = Row("stream", 1, 512, 64, 128)  # GRU.step, one step at a time
EXTRA = ("stream", "before")
GRUKIT_BACKENDS = ("cpu", "fused", "eager")
SGEMM_SIZE = 2048  # the sgemm whose rate the training GFLOP/s are a share of


def forward_flops(row: Row) -> int:
    """Multiply-adds ×2 of one forward pass: input and recurrent products, gates ignored."""
    return 2 * row.T * row.N * 3 * row.H * (row.I + row.H)


def training_flops(row: Row) -> int:
    """Multiply-adds ×2 of one training step with x needing no gradient: the forward, then dW_x, dW_h, dh_prev."""
    return 2 * row.T * row.N * 3 * row.H * (2 * row.I + 3 * row.H)


def interleaved_ms(fns: dict, repeats: int) -> dict:
    """{name: median wall time in ms} of each callable in `fns`, timed in turns: one warm-up call each, then
    round after round, one run of each per round, each round in its own order (`round_order`: over n rounds of
    n callables each follows each other one once), so that none always follows the same one (a run right after
    JAX's is slower: its threads spin for a while after it). A change in the machine's load while it runs (a
    shared machine's neighbours) then falls on every implementation alike, not on whichever was being timed:
    their ratios are what the benchmark reports. A callable whose warm-up took over 3 s runs 3 times (over
    10 s, once), and sits out the later rounds."""
    runs = {}
    for name, fn in fns.items():
        start = time.perf_counter()
        fn()
        warm_up = time.perf_counter() - start
        runs[name] = repeats if warm_up <= 3.0 else min(repeats, 1 if warm_up > 10.0 else 3)
    times: dict = {name: [] for name in fns}
    items = list(fns.items())
    for round_ in range(max(runs.values(), default=0)):
        for name, fn in (items[i] for i in round_order(len(items), round_)):
            if round_ < runs[name]:
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}


def round_order(n: int, round_: int) -> list[int]:
    """The order of n callables in round `round_`: a Williams design, the sequence 0, 1, n−1, 2, n−2, … shifted
    by the round. For an even n, n rounds put each callable right after each other one exactly once; for an
    odd n, every second round is reversed, and 2n rounds do it twice.

    Example:
        >>> [round_order(4, r) for r in range(4)]
        [[0, 1, 3, 2], [1, 2, 0, 3], [2, 3, 1, 0], [3, 0, 2, 1]]
    """
    base = [0] + [(k + 1) // 2 if k % 2 else n - k // 2 for k in range(1, n)]  # 0, 1, n−1, 2, n−2, …
    shift = round_ // 2 if n % 2 else round_
    order = [(b + shift) % n for b in base]
    return order[::-1] if n % 2 and round_ % 2 else order


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of `fn` in ms after one warm-up call (3 runs when one takes > 3 s, 1 when > 10 s)."""
    return interleaved_ms({"fn": fn}, repeats)["fn"]


def _sgemm(size: int = SGEMM_SIZE) -> Callable[[], object]:
    """The callable that sgemm_gflops times: torch.mm of two size×size float32 matrices."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    return lambda: torch.mm(a, b)


def _sgemm_rate(ms: float, size: int = SGEMM_SIZE) -> float:
    return 2 * size**3 / ms / 1e6


def sgemm_gflops(repeats: int = 5, size: int = SGEMM_SIZE) -> float:
    """torch.mm of two size×size float32 matrices, GFLOP/s (median)."""
    return _sgemm_rate(median_ms(_sgemm(size), repeats), size)


# ---- the implementations: each returns (forward, training_step) closures -------------------------

def _grukit(row: Row, backend: str, reset: str, seed: int = 0):
    import grukit

    torch.manual_seed(seed)
    model = grukit.GRU(row.I, row.H, reset=reset, backend=backend)
    x = torch.randn(row.T, row.N, row.I)  # (T, N, I)
    forward, train_step = _steps(model, x)
    return forward, train_step, model


def _steps(model, x):
    """The two timed callables for any recurrent module: forward without grad, and a
    training step (forward + backward of output.sum() + h_n.sum())."""

    def forward():
        with torch.no_grad():
            return model(x)

    def train_step():
        model.zero_grad(set_to_none=True)
        output, h_n = model(x)
        (output.sum() + h_n.sum()).backward()

    return forward, train_step


def _torch(row: Row, seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.GRU(row.I, row.H)
    x = torch.randn(row.T, row.N, row.I)  # (T, N, I)
    return _steps(model, x)


def jax_available() -> bool:
    return importlib.util.find_spec("jax") is not None


def _jax_params(row: Row, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    k = 1 / row.H**0.5
    shapes = [(3 * row.H, row.I), (3 * row.H, row.H), (3 * row.H,), (3 * row.H,)]
    params = [rng.uniform(-k, k, shape).astype(np.float32) for shape in shapes]
    x = rng.standard_normal((row.T, row.N, row.I)).astype(np.float32)  # (T, N, I)
    return params, x


def _jax_gru():
    """A reset="after" GRU as a lax.scan, in the seeds' z convention (same cost as torch's)."""
    import jax
    import jax.numpy as jnp

    def sequence(params, x):
        W_x, W_h, b_x, b_h = params
        H = W_h.shape[1]
        gx = x @ W_x.T + b_x  # (T, N, 3H)

        def cell(h, gx_t):
            g = h @ W_h.T + b_h  # (N, 3H)
            r = jax.nn.sigmoid(gx_t[:, :H] + g[:, :H])  # (N, H)
            z = jax.nn.sigmoid(gx_t[:, H:2 * H] + g[:, H:2 * H])  # (N, H)
            n = jnp.tanh(gx_t[:, 2 * H:] + r * g[:, 2 * H:])  # (N, H)
            h = z * n + (1 - z) * h  # (N, H)
            return h, h

        h0 = jnp.zeros((x.shape[1], H), x.dtype)  # (N, H)
        h_n, output = jax.lax.scan(cell, h0, gx)
        return output, h_n

    def loss(params, x):
        output, h_n = sequence(params, x)
        return output.sum() + h_n.sum()

    return sequence, loss


def _jax(row: Row, seed: int = 0):
    import jax

    params, x = _jax_params(row, seed)
    params, x = [jax.device_put(p) for p in params], jax.device_put(x)
    sequence, loss = _jax_gru()
    fwd, grad = jax.jit(sequence), jax.jit(jax.grad(loss))

    def forward():
        return jax.block_until_ready(fwd(params, x))

    def train_step():
        return jax.block_until_ready(grad(params, x))

    return forward, train_step


def _jax_stream(row: Row, seed: int = 0):
    """N=1 streaming in JAX: one jitted cell call per step from Python."""
    import jax
    import jax.numpy as jnp

    params, x = _jax_params(row, seed)
    params = [jax.device_put(p) for p in params]
    xs = [jax.device_put(x[t]) for t in range(row.T)]

    @jax.jit
    def cell(params, h, x_t):
        W_x, W_h, b_x, b_h = params
        H = W_h.shape[1]
        gx, g = x_t @ W_x.T + b_x, h @ W_h.T + b_h  # (N, 3H), (N, 3H)
        r = jax.nn.sigmoid(gx[:, :H] + g[:, :H])
        z = jax.nn.sigmoid(gx[:, H:2 * H] + g[:, H:2 * H])
        n = jnp.tanh(gx[:, 2 * H:] + r * g[:, 2 * H:])
        return z * n + (1 - z) * h

    def run():
        h = jnp.zeros((row.N, row.H), jnp.float32)
        for x_t in xs:
            h = cell(params, h, x_t)
        return jax.block_until_ready(h)

    return run


# ---- timing ----------------------------------------------------------------------------------

def _record(row: Row, impl: str, reset: str, fwd_ms: float | None, train_ms: float | None, sgemm: float) -> dict:
    flops = forward_flops(row)
    rec = {"row": row.name, "N": row.N, "T": row.T, "I": row.I, "H": row.H, "impl": impl, "reset": reset,
           "fwd_ms": fwd_ms, "train_ms": train_ms, "sgemm_gflops": sgemm}
    rec["fwd_gflops"] = None if fwd_ms is None else flops / fwd_ms / 1e6
    rec["train_gflops"] = None if train_ms is None else training_flops(row) / train_ms / 1e6
    rec["train_pct_sgemm"] = None if train_ms is None else 100 * rec["train_gflops"] / sgemm
    times = "  ".join(f"{part} {ms:9.2f} ms" for part, ms in (("fwd", fwd_ms), ("train", train_ms)) if ms is not None)
    log.info("  %-6s %-6s %-14s %s", row.name, reset, impl, times)
    return rec


def time_rows(rows: list[Row], repeats: int, backends: tuple[str, ...], with_jax: bool,
              resets: tuple[str, ...] = ("after",)) -> list[dict]:
    """Each row: grukit's backends with each reset in `resets`, and with "after" the peers too (torch and JAX
    have no "before"), all timed in turns (`interleaved_ms`): the forwards, then the training steps together
    with the sgemm, whose rate that row's share of sgemm divides by."""
    records = []
    for row in rows:
        impls = {(f"grukit-{backend}", reset): _grukit(row, backend, reset)[:2]
                 for reset in resets for backend in backends}  # (name, reset) -> (forward, train_step)
        if "after" in resets:
            peers = [("torch.nn.GRU", _torch)] + ([("jax", _jax)] if with_jax else [])
            impls.update({(name, "after"): build(row) for name, build in peers})
        forward = interleaved_ms({key: fns[0] for key, fns in impls.items()}, repeats)
        train = interleaved_ms({**{key: fns[1] for key, fns in impls.items()}, "sgemm": _sgemm()}, repeats)
        sgemm = _sgemm_rate(train.pop("sgemm"))
        records += [_record(row, name, reset, forward[name, reset], train[name, reset], sgemm)
                    for name, reset in impls]
    return records


def time_stream(repeats: int, sgemm: float, backends: tuple[str, ...], with_jax: bool) -> list[dict]:
    """T steps of N=1 through GRU.step (grukit), GRU(x_t[None], h) (torch), a jitted cell (JAX), timed in turns
    (`interleaved_ms`)."""
    row = STREAM
    xs = torch.randn(row.T, row.N, row.I)  # (T, 1, I)
    loops = {}  # implementation -> the step loop
    for backend in backends:
        _, _, model = _grukit(row, backend, "after")

        def run(model=model):
            h = None
            for x_t in xs:
                h = model.step(x_t, h)  # (1, N, H)
            return h

        loops[f"grukit-{backend}"] = run
        if backend == "cpu":  # the kernel alone, without GRU.step's Python (checks, stacking)
            from grukit.kernels import cpu

            params = model.parameters_of(0)

            def run_kernel(params=params):
                h = torch.zeros(row.N, row.H)  # (N, H)
                with torch.no_grad():
                    for x_t in xs:
                        h = cpu.step(x_t, h, *params, reset="after")  # (N, H)
                return h

            loops["grukit-cpu kernel step()"] = run_kernel
    torch.manual_seed(0)
    gru = torch.nn.GRU(row.I, row.H)

    def run_torch():
        h = torch.zeros(1, row.N, row.H)
        with torch.no_grad():
            for x_t in xs:
                _, h = gru(x_t[None], h)
        return h

    loops["torch.nn.GRU"] = run_torch
    if with_jax:
        loops["jax"] = _jax_stream(row)
    ms = interleaved_ms(loops, repeats)
    return [_record(row, name, "after", ms[name], None, sgemm) for name in loops]


# ---- peak memory (one fresh process per implementation) ---------------------------------------

def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"{field} not in /proc/self/status")


def _memory_child(row: Row, impl: str, out: str) -> None:
    """In a fresh process: warm up one training step, then measure the peak RSS growth of the next."""
    if impl.startswith("grukit-"):
        _, train_step, _ = _grukit(row, impl.removeprefix("grukit-"), "after")
    elif impl == "jax":
        _, train_step = _jax(row)
    else:
        _, train_step = _torch(row)
    train_step()
    gc.collect()
    if impl == "grukit-cpu":  # its pool keeps the warm-up's big buffers: returned, the step's own are counted
        from grukit.kernels import cpu

        cpu.empty_cache()
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # resets VmHWM to the current RSS
    base = _rss_kb("VmRSS")
    train_step()
    Path(out).write_text(json.dumps({"peak_mb": (_rss_kb("VmHWM") - base) / 1024}))


def peak_memory_mb(row: Row, impl: str) -> float | None:
    """Peak memory of one training step of `impl` on `row`, in MB (None where it cannot be measured)."""
    if not Path("/proc/self/clear_refs").exists():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "peak.json"
        code = ("import sys; from grukit.bench import Row, _memory_child; "
                "_memory_child(Row(sys.argv[1], *map(int, sys.argv[2:6])), sys.argv[6], sys.argv[7])")
        args = [row.name, str(row.N), str(row.T), str(row.I), str(row.H), impl, str(out)]
        # a fixed mmap threshold: every block ≥ 64 KiB is mapped on allocation and unmapped on
        # free, so blocks freed by the warm-up step are not silently reused (uncounted)
        env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
        done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=900,
                              env=env)
        if done.returncode != 0 or not out.exists():
            log.warning("peak memory of %s on %s failed: %s", impl, row.name, done.stderr.strip()[-300:])
            return None
        return json.loads(out.read_text())["peak_mb"]


# ---- targets and report -----------------------------------------------------------------------

def _find(records, row, impl, reset="after"):
    for rec in records:
        if rec["row"] == row and rec["impl"] == impl and rec["reset"] == reset:
            return rec
    return None


def evaluate_targets(records: list[dict]) -> list[dict]:
    """The issue's targets for grukit-cpu, each with the measured value and whether it is reached."""
    targets = []

    def add(text, value, goal, reached):
        targets.append({"target": text, "value": value, "goal": goal, "reached": bool(reached)})

    for row in ROWS:
        ours, torch_rec, jax_rec = (_find(records, row.name, impl) for impl in ("grukit-cpu", "torch.nn.GRU", "jax"))
        if ours is None or ours["train_ms"] is None:
            continue
        if jax_rec is not None:
            ratio = jax_rec["train_ms"] / ours["train_ms"]
            add(f"{row.name}: training step vs JAX", round(ratio, 2), ">= 1.0x", ratio >= 1.0)
        if torch_rec is not None:
            goal = 5.0 if row.N == 1 else 1.5 if row.H <= 256 else 1.15
            ratio = torch_rec["train_ms"] / ours["train_ms"]
            add(f"{row.name}: training step vs torch.nn.GRU", round(ratio, 2), f">= {goal}x", ratio >= goal)
        before = _find(records, row.name, "grukit-cpu", "before")
        if before is not None and before["train_ms"] is not None:
            ratio = before["train_ms"] / ours["train_ms"]
            add(f"{row.name}: reset=before / reset=after (training)", round(ratio, 2), "<= 1.4x", ratio <= 1.4)
    stream, stream_torch = _find(records, "stream", "grukit-cpu"), _find(records, "stream", "torch.nn.GRU")
    if stream is not None and stream_torch is not None:
        ratio = stream_torch["fwd_ms"] / stream["fwd_ms"]
        add("stream (N=1 GRU.step): vs torch.nn.GRU", round(ratio, 2), ">= 5.0x", ratio >= 5.0)
    largest = _find(records, ROWS[-1].name, "grukit-cpu")
    if largest is not None and largest["train_pct_sgemm"] is not None:
        pct = largest["train_pct_sgemm"]
        add(f"{ROWS[-1].name}: training GFLOP/s as % of sgemm", round(pct, 1), ">= 70%", pct >= 70)
    mem_torch = _find(records, ROWS[-1].name, "torch.nn.GRU")
    if largest is not None and mem_torch is not None and largest.get("peak_mb") and mem_torch.get("peak_mb"):
        add(f"{ROWS[-1].name}: peak memory of a training step (MiB) vs torch.nn.GRU",
            f"{largest['peak_mb']:.0f} vs {mem_torch['peak_mb']:.0f}", "<= torch",
            largest["peak_mb"] <= mem_torch["peak_mb"])
    return targets


def _fmt(value, spec=".1f"):
    return "—" if value is None else format(value, spec)


def _timing(repeats: int) -> str:
    """How `median_ms` timed, for `repeats` asked."""
    if repeats == 1:
        return "One run each, in ms"
    fewer = "1 when one run takes over 10 s" if repeats <= 3 else "3 when one run takes over 3 s, 1 over 10 s"
    return f"Median of {repeats} runs in ms, a row's implementations timed in turns ({fewer})"


def markdown(result: dict) -> str:
    """The tables of the README: one line per (row, reset, implementation), then the targets."""
    env = result["environment"]
    jax = env["jax"] or ("not run" if env.get("jax_skipped") else "not installed")
    lines = [f"CPU: {env['cpu']}, {plural(env['threads'], 'thread')}, torch {env['torch']}, "
             f"jax {jax}; sgemm (2048², float32): {env['sgemm_gflops']:.0f} GFLOP/s at the start (% sgemm: of the "
             "rate timed in turns with the row's training steps). "
             f"{_timing(env['repeats'])}; ×torch / ×JAX = "
             "their time / this time (training step; stream rows: the step loop). GFLOP/s (train): "
             "2·T·N·3H·(2I+3H) per step (`training_flops`); peak MiB: one training step's growth of the "
             "peak resident set.",
             "",
             "| row (N, T, I, H) | reset | implementation | forward ms | training ms | ×torch | ×JAX | "
             "GFLOP/s (train) | % sgemm | peak MiB |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    records = result["records"]
    for rec in records:
        ref_torch = _find(records, rec["row"], "torch.nn.GRU")
        ref_jax = _find(records, rec["row"], "jax")
        key = "train_ms" if rec["train_ms"] is not None else "fwd_ms"
        ratio_torch = ratio_jax = None
        if rec["reset"] == "after" and ref_torch and rec[key]:
            ratio_torch = ref_torch[key] / rec[key]
        if rec["reset"] == "after" and ref_jax and rec[key]:
            ratio_jax = ref_jax[key] / rec[key]
        shape = f"{rec['row']} ({rec['N']}, {rec['T']}, {rec['I']}, {rec['H']})"
        if rec["row"] == "stream":
            shape = f"stream: {rec['T']} × step(), N=1, I={rec['I']}, H={rec['H']}"
        lines.append(f"| {shape} | {rec['reset']} | {rec['impl']} | {_fmt(rec['fwd_ms'])} | {_fmt(rec['train_ms'])} | "
                     f"{_fmt(ratio_torch, '.2f')} | {_fmt(ratio_jax, '.2f')} | {_fmt(rec['train_gflops'])} | "
                     f"{_fmt(rec['train_pct_sgemm'])} | {_fmt(rec.get('peak_mb'), '.0f')} |")
    lines += ["", "| target (grukit-cpu) | measured | goal | reached |", "|---|---|---|---|"]
    lines += [f"| {t['target']} | {t['value']} | {t['goal']} | {'yes' if t['reached'] else '**no**'} |"
              for t in result["targets"]]
    return "\n".join(lines) + "\n"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def benchmark(rows: list[str], repeats: int = 5, memory: bool = True, with_jax: bool | None = None) -> dict:
    """Run the benchmark; returns {"environment", "records", "targets"} (see the module docstring)."""
    from grukit import kernels

    with_jax = jax_available() if with_jax is None else with_jax
    backends = tuple(b for b in GRUKIT_BACKENDS if kernels.available(b))
    sgemm = sgemm_gflops(repeats)
    log.info("sgemm 2048²: %.0f GFLOP/s; backends %s; jax %s", sgemm, backends, with_jax)
    main_rows = [row for row in ROWS if row.name in rows]
    resets = ("after", "before") if "before" in rows else ("after",)  # timed in turns: their ratio sees one load
    records = time_rows(main_rows, repeats, backends, with_jax, resets)
    if "before" in rows and not main_rows:
        records += time_rows(list(ROWS), repeats, backends, False, ("before",))
    if "stream" in rows:
        records += time_stream(repeats, sgemm, backends, with_jax)
    sgemm_after = sgemm_gflops(repeats)  # a second reading shows how much the machine's load moved
    if memory:
        for rec in records:
            if rec["row"] != "stream" and rec["reset"] == "after":
                rec["peak_mb"] = peak_memory_mb(next(r for r in ROWS if r.name == rec["row"]), rec["impl"])
    jax_version = None
    if with_jax:
        import jax

        jax_version = jax.__version__
    environment = {"cpu": _cpu_name(), "threads": torch.get_num_threads(), "torch": torch.__version__,
                   "jax": jax_version, "jax_skipped": with_jax is False and jax_available(),
                   "python": platform.python_version(), "sgemm_gflops": sgemm,
                   "sgemm_gflops_end": sgemm_after, "repeats": repeats, "backends": list(backends),
                   "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
                   "rows": [asdict(r) for r in ROWS] + [asdict(STREAM)]}
    result = {"environment": environment, "records": records}
    result["targets"] = evaluate_targets(records)
    return result


def write(result: dict, out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    files = {"json": out / "cpu.json", "markdown": out / "cpu.md"}
    files["json"].write_text(json.dumps(result, indent=1) + "\n")
    files["markdown"].write_text(markdown(result))
    return files


# ---- the command -----------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    names = ",".join([row.name for row in ROWS] + list(EXTRA))
    parser.add_argument("--rows", default=names, help=f"comma-separated rows to run (default all: {names})")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per measurement, median (default 5)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument("--no-jax", action="store_true", help="leave JAX out even when installed")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for cpu.json and cpu.md (default runs/bench-<time>)")


def parse_rows(text: str) -> list[str]:
    known = [row.name for row in ROWS] + list(EXTRA)
    rows = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in rows if name not in known]
    if unknown or not rows:
        raise UsageError(f"--rows: expected names from {known}, got {text!r}")
    return rows


def run(args: argparse.Namespace) -> dict:
    rows = parse_rows(args.rows)
    if args.repeats < 1:
        raise UsageError(f"--repeats: expected an integer >= 1, got {args.repeats}")
    result = benchmark(rows, repeats=args.repeats, memory=not args.no_memory, with_jax=False if args.no_jax else None)
    files = write(result, args.out)
    return {"summary": markdown(result), "files": {name: str(path) for name, path in files.items()}}
