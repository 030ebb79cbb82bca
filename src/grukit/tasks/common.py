"""Plumbing shared by the task commands: argument checks, the train config, the output folder.

Example:
    >>> import argparse
    >>> from grukit.tasks.common import train_config
    >>> args = argparse.Namespace(epochs=None, seed=3, device="cpu", backend="auto")
    >>> train_config(args, epochs=5, lr=1e-3).epochs, train_config(args, epochs=5).seed
    (5, 3)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from grukit import kernels
from grukit.distributed import is_main, resolve_device, world
from grukit.errors import UsageError
from grukit.report import write_json
from grukit.resume import saved_threads
from grukit.train import TrainConfig


def check_common(args: argparse.Namespace, *, threads: int | str | None = None, split_batches: bool = True) -> None:
    """Validate --backend (a known name, available in this process, and only with grukit's GRU: --cell gru
    where the command has --cell) and --device before any work (UsageError naming the flag); apply --threads
    (or the task's default `threads`: small models run faster on one thread of a busy machine; "idle" =
    `idle_threads()`, the cores idle when the command starts). Under torchrun, a --batch-size that `fit` splits
    over the ranks (`split_batches`) must be a multiple of their number."""
    n = getattr(args, "threads", None)
    if n is None and getattr(args, "resume", False) and getattr(args, "out", None) is not None:
        n = saved_threads(Path(args.out))  # as the run trained: its weights then end as an unbroken run's
    n = n or threads
    if n == "idle":
        n = idle_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        kernels.check_name(args.backend)
    except ValueError as err:
        raise UsageError(f"--backend: {str(err).split(': ', 1)[-1]}") from None
    check_device(args.device)
    size, batch = world()[1], getattr(args, "batch_size", None)
    if split_batches and size > 1 and batch is not None and batch % size:
        raise UsageError(f"--batch-size: expected a multiple of the {size} processes torchrun started, got {batch}")
    if not kernels.available(args.backend):
        raise UsageError(f"--backend: expected one available in this process, {available_backends()}, "
                         f"got {args.backend!r}")
    cell = getattr(args, "cell", "gru")  # --backend picks a grukit GRU's kernel: with another cell it did nothing
    if cell != "gru" and args.backend != "auto":
        raise UsageError(f"--backend: expected 'auto' with --cell {cell} (it picks the kernel of grukit's GRU, "
                         f"--cell gru), got {args.backend!r}")


def check_at_least(args: argparse.Namespace, names: tuple[str, ...], least: int = 1) -> None:
    """UsageError "--name: expected an integer >= least, got v" for the first option in `names` (dest
    names, e.g. "batch_size") whose value is below `least`; options left at None are not checked."""
    for name in names:
        value = getattr(args, name, None)
        if value is not None and value < least:
            raise UsageError(f"--{name.replace('_', '-')}: expected an integer >= {least}, got {value}")


# Bytes per float32 parameter at the peak of a training run: the weight, its gradient, AdamW's two moments, the
# best epoch's copy, and the training state serialised for its file at the end of an epoch (measured: textgen
# --hidden 4000, 49 M parameters, peaks 51 bytes per parameter above a tiny run's peak; rounded up). The host
# holds them on a CUDA run too: the model is built there, and the best weights and the state pass through it.
TRAINING_BYTES = 56


def machine_memory() -> int | None:
    """Bytes of memory this process may use: the machine's, or its control group's limit when lower (cgroup v2
    memory.max, or v1 memory.limit_in_bytes, of the process's own group); None where neither can be read."""
    try:
        have = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # not POSIX (Windows)
        return None
    return min([have, *_cgroup_limits()])


def _cgroup_limits() -> list[int]:
    """The memory limits of this process's control group and the groups above it, in bytes (none: [])."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return []
    files = []
    for line in lines:  # "0::/path" (v2), "4:memory:/path" (v1)
        _, controllers, group = line.split(":", 2)
        if controllers == "":
            root, name = Path("/sys/fs/cgroup"), "memory.max"
        elif "memory" in controllers.split(","):
            root, name = Path("/sys/fs/cgroup/memory"), "memory.limit_in_bytes"
        else:
            continue
        folder = root / group.lstrip("/")
        files += [parent / name for parent in (folder, *folder.parents) if parent.is_relative_to(root)]
    limits = []
    for file in files:
        try:
            text = file.read_text().strip()
        except OSError:
            continue
        if text.isdigit():  # "max" (v2) means none; v1 writes a huge number for none, which min() ignores
            limits.append(int(text))
    return limits


def check_trainable(make: Callable[[], torch.nn.Module], flags: str, copies: int = 1) -> None:
    """UsageError naming `flags` when `copies` models like make()'s cannot train in this machine's memory
    (TRAINING_BYTES per parameter, in each torchrun process on this machine), before anything is built: make()
    runs on the meta device, which allocates nothing. An ensemble passes a make() of one member and copies = its
    members, so that `--members 1000000` is refused at once instead of building members until the machine runs
    out.

    Example:
        >>> check_trainable(lambda: torch.nn.Linear(1000, 1000), "--hidden", copies=10**9)
        Traceback (most recent call last):
        ...
        grukit.errors.UsageError: --hidden: 1,000,000,000 members of 1,001,000 parameters need ...
    """
    with torch.device("meta"):
        one = sum(p.numel() for p in make().parameters())
    processes = int(os.environ.get("LOCAL_WORLD_SIZE", 1))  # torchrun's processes on this machine
    each, have = copies * one * TRAINING_BYTES, machine_memory()
    if have is not None and processes * each > have:
        models = f"{copies:,} members of {one:,} parameters need" if copies > 1 else f"{one:,} parameters need"
        need = f"{each / 2**30:,.1f} GiB" if processes == 1 else \
            f"{processes * each / 2**30:,.1f} GiB in all ({each / 2**30:,.1f} GiB in each of {processes} processes)"
        raise UsageError(f"{flags}: {models} {need} to train (weights, gradients, AdamW's moments, the best "
                         f"epoch's copy and the saved state), more than the {have / 2**30:,.1f} GiB this machine "
                         "has; use smaller sizes")


def check_device(name: str) -> torch.device:
    """The torch device for --device; UsageError naming --device for a bad or absent one."""
    try:
        return resolve_device(name)
    except ValueError as err:  # resolve_device accepts exactly auto, cpu, cuda and cuda:K (an existing K)
        raise UsageError(f"--device: {str(err).split(': ', 1)[-1]}") from None


def available_backends() -> list[str]:
    return ["auto", *(name for name in kernels.names() if kernels.available(name))]


def idle_threads(window: float = 0.3) -> int:
    """CPU cores idle right now: cores − busy cores over `window` seconds (/proc/stat), at least 1.

    Measured (textgen step, 384 units, 64×128 characters): on an idle 2-core machine two
    threads take 220 ms against 397 ms for one; on the same machine busy with other jobs two
    threads take 1,196 ms against 638 ms for one (they wait on each other). Without
    /proc/stat the 1-minute load average stands in for the busy cores.
    """
    cores = os.cpu_count() or 1

    def ticks() -> tuple[int, int]:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return sum(values), values[3] + values[4]  # (all, idle + iowait)

    try:
        total0, idle0 = ticks()
        time.sleep(window)
        total1, idle1 = ticks()
        busy = cores * (1.0 - (idle1 - idle0) / max(1, total1 - total0))
    except (OSError, ValueError, IndexError):
        try:
            busy = os.getloadavg()[0]
        except (AttributeError, OSError):
            return 1
    return max(1, min(cores, cores - round(busy)))


TRAIN_FLAGS = {"epochs": "--epochs", "seed": "--seed"}  # the TrainConfig fields `train_config` takes from a flag
OPTIMISER_FLAGS = {**TRAIN_FLAGS, "lr": "--lr", "batch_size": "--batch-size"}  # and a command's --lr, --batch-size


def train_config(args: argparse.Namespace, **defaults: Any) -> TrainConfig:
    """TrainConfig from the task's defaults, with --epochs, --seed, --device from the command line."""
    fields = dict(defaults)
    if getattr(args, "epochs", None) is not None:
        fields["epochs"] = args.epochs
    fields.update(seed=args.seed, device=args.device, resume=getattr(args, "resume", False))
    return TrainConfig(**fields)


def add_resume(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its last checkpoint (same weights as an unbroken run)")


def add_encoding(parser, files: str) -> None:
    """--encoding for the user's `files` (a parser or an argument group); read it with `encoding_of`."""
    parser.add_argument("--encoding", default=None,
                        help=f"encoding of {files} (default utf-8; e.g. cp1252 for a Windows file, latin-1)")


def encoding_of(args: argparse.Namespace, files: str, given: bool) -> str:
    """The --encoding to read the user's `files` with (utf-8 unless given); UsageError when it is given but
    no file is (the bundled data has its own, so the flag would be ignored without a word)."""
    if args.encoding is not None and not given:
        raise UsageError(f"--encoding: expected only with {files}, got {args.encoding!r} without them "
                         "(the bundled data needs none)")
    return "utf-8" if args.encoding is None else args.encoding


def environment() -> dict[str, Any]:
    """What ran where, for metrics.json."""
    return {"torch": torch.__version__, "python": platform.python_version(), "threads": torch.get_num_threads(),
            "machine": platform.machine(), "time": time.strftime("%Y-%m-%d %H:%M:%S")}


def write_metrics(out: Path, metrics: dict[str, Any]) -> Path | None:
    """metrics.json on rank 0 (None elsewhere)."""
    if not is_main():
        return None
    return write_json(Path(out) / "metrics.json", metrics)


def args_dict(args: argparse.Namespace) -> dict[str, Any]:
    """The parsed arguments as JSON values (paths as strings)."""
    return json.loads(json.dumps({k: v for k, v in vars(args).items() if k != "func"}, default=str))
