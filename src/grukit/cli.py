"""`grukit <command>`: argparse subcommands that hand their arguments to a task module.

    grukit forecast [--csv PATH --column NAME] [--horizon K] [--lookback L]
    grukit textgen  [--text PATH]             grukit sample CHECKPOINT [--prompt TEXT]
    grukit classify [--pos P --neg N | --csv PATH --text-column C --label-column L]

`COMMANDS` maps each subcommand to a module that provides
`add_arguments(parser)` and `run(args) -> dict | None`. A new command is one module plus
one line here. Every command also gets these common options, unless its module sets
`COMMON_ARGUMENTS = False` (none) or a tuple of the names it takes (`grukit sample` has no --epochs):

    --out DIR      where outputs go (default runs/<command>-<YYYYmmdd-HHMMSS>)
    --epochs N     training epochs (default: the task's own)
    --seed S       seed of data split, initialisation and data order (default 0)
    --device D     cpu | cuda | cuda:K | auto (default auto)
    --backend B    GRU kernel backend: auto | cpu | fused | eager (default auto)
    --threads N    CPU threads for torch (default: the task's choice; forecast uses 1 for its small model)

Before `run`, the CLI checks what every command shares: --out is not a file (nor under one),
and is a new or empty folder unless --resume continues the run in it (so that no run
overwrites another's results, or a file it reads), and no other live run holds it (`run_lock`:
a run takes --out/.grukit.lock before this check and removes it at the end); 0 <= --seed < 2**63, --lr > 0 and
--weight-decay >= 0 where the command has them. A module that sets `DEFAULT_OUT = False`
writes into --out only when it is given; one that sets `OUT_MAY_HOLD_FILES = True` (`sample`,
`bench`: they write their few files at the very end) may write into a folder that holds others.

`run` returns {"summary": str, "files": {name: path}}; the CLI prints the summary and
where the files are. Bad input (`UsageError`, any ValueError, a missing file) ends with
exit code 2, one line on stderr (below any warning the run logged before it), no traceback,
and nothing left behind in --out. So do a training run whose loss diverges (it names --lr)
and an --out that cannot be written (read-only, full). Ctrl-C ends with exit code 130 and
leaves the checkpoints for --resume (the line names their folder).

Example:
    >>> from grukit.cli import build_parser
    >>> args = build_parser().parse_args(["forecast", "--horizon", "8", "--out", "/tmp/x"])
    >>> args.command, args.horizon, str(args.out)
    ('forecast', 8, '/tmp/x')
"""
from __future__ import annotations

import argparse
import errno
import importlib
import logging
import math
import os
import re
import shlex
import shutil
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Sequence

from grukit import run_lock
from grukit.errors import UsageError

# subcommand -> module with add_arguments(parser) and run(args)
COMMANDS: dict[str, str] = {
    "forecast": "grukit.tasks.forecast",
    "textgen": "grukit.tasks.textgen",
    "sample": "grukit.tasks.sample",
    "classify": "grukit.tasks.classify",
    "bench": "grukit.bench",
    "speech": "grukit.tasks.speech",
    "music": "grukit.tasks.music",
    "compare": "grukit.tasks.compare",
    "gradients": "grukit.tasks.gradients",
}

EXIT_USAGE = 2
COMMON = ("out", "epochs", "seed", "device", "backend", "threads")  # the common options, by name
MAX_SEED = 2**63  # torch seeds are 64-bit; --seed must be below this


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line plus a pointer to --help (exit code 2)."""

    def error(self, message: str) -> None:  # noqa: D401 - argparse API
        # every torchrun process parses the same command line: the machine's first one says what is wrong
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n(see {self.prog} --help)\n" if _first_on_machine()
                  else None)


def _module(command: str) -> ModuleType:
    return importlib.import_module(COMMANDS[command])


def add_common_arguments(parser: argparse.ArgumentParser, names: Sequence[str] = COMMON) -> None:
    """The common options in `names` (all by default): --out, --epochs, --seed, --device, --backend, --threads."""
    unknown = sorted(set(names) - set(COMMON))
    if unknown:
        raise ValueError(f"names: expected some of {COMMON}, got {unknown}")
    group = parser.add_argument_group("common options")
    if "out" in names:
        group.add_argument("--out", type=Path, default=None,
                           help="output folder (default runs/<command>-<time>)")
    if "epochs" in names:
        group.add_argument("--epochs", type=_positive_int, default=None,
                           help="training epochs (default: task's own)")
    if "seed" in names:
        group.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    if "device" in names:
        group.add_argument("--device", default="auto", help="cpu | cuda | cuda:K | auto (default auto)")
    if "backend" in names:
        group.add_argument("--backend", default="auto", help="GRU kernel: auto | cpu | fused | eager")
    if "threads" in names:
        group.add_argument("--threads", type=_positive_int, default=None,
                           help="CPU threads for torch (default: the task's choice)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def build_parser(commands: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The top-level parser with one subparser per command (modules imported on demand)."""
    from grukit import __version__

    parser = _Parser(prog="grukit", description="The textbook GRU, fast, tested, and put to work.")
    parser.add_argument("--version", action="version", version=f"grukit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="<command>", parser_class=_Parser)
    for name in commands if commands is not None else COMMANDS:
        try:
            module = _module(name)
        except ImportError as err:  # a command whose module or dependency is missing here
            logging.getLogger(__name__).debug("command %s unavailable: %s", name, err)
            continue
        summary = " ".join((module.__doc__ or "").strip().split("\n\n")[0].split()) or None  # the first paragraph
        p = sub.add_parser(name, help=summary, description=summary)
        module.add_arguments(p)
        common = getattr(module, "COMMON_ARGUMENTS", True)
        if common:
            add_common_arguments(p, COMMON if common is True else common)
    return parser


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """{command: its parser} of the top-level parser."""
    return next(a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def default_out(command: str) -> Path:
    """runs/<command>-<YYYYmmdd-HHMMSS> under the current directory."""
    return Path("runs") / f"{command}-{time.strftime('%Y%m%d-%H%M%S')}"


def claim_default_out(command: str) -> Path:
    """A new `default_out(command)`, made here at once (mkdir fails if it exists), with -2, -3, ... added when
    another run started in the same second: two runs never share a folder."""
    base = default_out(command)
    check_out(base)  # runs/ must not be a file
    base.parent.mkdir(parents=True, exist_ok=True)
    out, k = base, 1
    while True:
        try:
            out.mkdir()
            return out
        except FileExistsError:
            k += 1
            out = base.with_name(f"{base.name}-{k}")


def _snapshot(out: Path | None) -> set[str] | None:
    """Names already in `out` (None when it does not exist), so a failed run removes only its own files."""
    if out is None or not out.exists():
        return None
    return {p.name for p in out.iterdir()} if out.is_dir() else set()


def _absent_parents(out: Path | None) -> list[Path]:
    """The folders above `out` that do not exist yet, innermost first: a run that fails removes them too when
    they are empty (runs/ of the default --out, a/ of --out a/b)."""
    if out is None:
        return []
    return [parent for parent in out.absolute().parents if not parent.exists()]


def _clean(out: Path | None, before: set[str] | None) -> None:
    """After a usage error: what the run wrote into `out` (everything, when it made `out`), but the lock, which
    goes last (`_finish`), so that a run started meanwhile is refused instead of losing its files here."""
    if out is None or not out.is_dir():
        return
    for path in out.iterdir():
        if path.name not in (before or ()) and path.name != run_lock.LOCK_FILE:
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def _drop_empty(out: Path | None, before: set[str] | None) -> None:
    """After a run that stopped without a usage error: the empty folders it made in `out` (a fold-f/ it had
    begun), innermost first; any file it wrote stays, and so does every folder that was there before it
    (`before`: the names in `out` then). `out` itself, and the folders above it, go in `_finish`."""
    if out is None or not out.is_dir():
        return
    for folder, _, _ in sorted(os.walk(out), key=lambda entry: -len(Path(entry[0]).parts)):
        inside = Path(folder).relative_to(out).parts
        if not inside or (before is not None and inside[0] in before):
            continue
        try:
            Path(folder).rmdir()  # only when empty
        except OSError:
            pass


def _finish(out: Path | None, before: set[str] | None, parents: Sequence[Path], locks: Sequence, failed: bool):
    """Release the run's lock of `out`; after a failed or stopped run, remove `out` when the run made it and left
    it empty, then the empty folders it made above it (runs/ of the default --out, a/ of --out a/b)."""
    for lock in locks:
        run_lock.release(lock)  # never raises
    if not failed or out is None or before is not None:
        return
    try:
        out.rmdir()  # only when empty
    except OSError:
        return
    _remove_empty(parents)  # never raises either: the exit code and line of the run stand


def _remove_empty(parents: Sequence[Path]) -> None:
    """Remove the folders a run made above --out, innermost first, up to the first that holds anything."""
    for parent in parents:
        try:
            parent.rmdir()
        except OSError:
            break


def check_out(out: Path) -> None:
    """UsageError unless --out can be a folder: not an existing file, and no file on its path."""
    for path in (out, *out.parents):
        if path.exists() and not path.is_dir():
            got = f"an existing file {path}" if path == out else f"{out} under the file {path}"
            raise UsageError(f"--out: expected a directory path, got {got}")


def check_fresh_out(out: Path, resume: bool | None, folds: str | None = None, count: int = 0) -> None:
    """UsageError when --out already holds files and the run does not --resume (None: the command has no
    --resume): its files would overwrite them; or when it resumes a run of the other layout (`folds`: the flag,
    --backtest or --folds, that makes this one a run of folds, whose states sit in fold-f/; None: one split,
    whose state sits at the top), which would train from scratch and overwrite that run's report."""
    from grukit.run_files import STATE_FILE

    held = sorted(p.name for p in out.iterdir() if p.name != run_lock.LOCK_FILE) if out.is_dir() else []
    shown = ", ".join(held[:3]) + (", ..." if len(held) > 3 else "")
    # a run stopped while its first epoch's files were written has no state yet, and --resume starts it again
    # (fit says so)
    files = _files(out) if resume and not _states(out) else []
    if files and not _stopped_in_its_first_writes(out, files, folds):
        raise UsageError(f"--resume: expected the folder of an earlier run (with its {STATE_FILE}), "
                         f"got {out} holding other files ({shown})")
    beyond = sorted(int(p.name[5:]) for p in out.glob("fold-*") if p.name[5:].isdigit() and int(p.name[5:]) > count)
    if resume and folds and beyond:  # fewer folds would rewrite the report of more, and leave their folders
        raise UsageError(f"--resume: expected the folder of a run of {count} folds, got {out} holding "
                         f"fold-{beyond[-1]}/ (a run of {beyond[-1]} folds or more); resume it with {folds} "
                         f"{beyond[-1]}, or use another --out")
    if resume and folds and (out / STATE_FILE).exists():
        raise UsageError(f"--resume: expected the folder of a run with {folds} (its state in fold-f/ folders), got "
                         f"{out} holding a run of one split ({STATE_FILE} at its top); resume it without {folds}, "
                         f"or use another --out")
    if resume and not folds and not (out / STATE_FILE).exists():
        other = [name for name in ("report.md", "metrics.json") if (out / name).exists()]
        other += [str(p.relative_to(out)) for p in _states(out)[:1]]
        if other:  # a run of folds, finished or not, or a finished one whose state is gone
            raise UsageError(f"--resume: expected {out / STATE_FILE} beside {other[0]}, got none: the folder "
                             f"holds a run with its training state elsewhere (a run of folds, or one started with "
                             f"other flags); resume it with the flags it ran with, or use another --out")
    if held and not resume:
        entries = f"{len(held)} {'entry' if len(held) == 1 else 'entries'}"
        hint = "use another --out" + (", or --resume to continue the run in it" if resume is not None else "")
        raise UsageError(f"--out: expected a new or empty folder, got {out} holding {entries} ({shown}); {hint}")


def _states(out: Path) -> list[Path]:
    """The training states in `out`: a run's sits at its top, a run of folds' in its fold-f/ folders (not deeper:
    a folder of runs is not a run)."""
    from grukit.run_files import STATE_FILE

    return [p for p in (out / STATE_FILE, *sorted(out.glob(f"fold-*/{STATE_FILE}"))) if p.is_file()]


def _files(out: Path) -> list[Path]:
    """Every file under `out` but the lock of the run checking it."""
    return [p for p in out.rglob("*") if p.is_file() and p.name != run_lock.LOCK_FILE]


def _stopped_in_its_first_writes(out: Path, files: list[Path], folds: str | None) -> bool:
    """True when --out holds (`files`) only what `fit` writes at the end of its first epoch before the state file
    (the checkpoints, the CSV, temporary files of those writes), a grukit checkpoint or temporary file among them:
    a run stopped there, of this run's layout (in fold-j/ folders with `folds`, at the top without). A CSV of
    one's own alone is not such a run."""
    from grukit.checkpoint import FORMAT_KEY, read_metadata
    from grukit.run_files import BEST_FILE, LAST_FILE, written_before_a_state

    layout = all((len(p.relative_to(out).parts) > 1) == bool(folds) for p in files)
    if not files or not layout or not all(written_before_a_state(p.relative_to(out)) for p in files):
        return False
    for p in files:
        if p.name.endswith(".tmp"):
            return True
        if p.name in (BEST_FILE, LAST_FILE):
            try:  # its header alone says whether grukit wrote it: no need to read (and hash) its weights
                if FORMAT_KEY in read_metadata(p):
                    return True
            except (ValueError, OSError):
                pass
    return False


def check_arguments(args: argparse.Namespace) -> None:
    """The checks every command shares (each only where the command has the option)."""
    if getattr(args, "out", None) is not None:
        check_out(Path(args.out))
    threads, most = getattr(args, "threads", None), max(64, 4 * (os.cpu_count() or 1))
    if threads is not None and threads > most:
        raise UsageError(f"--threads: expected an integer in 1..{most} (this machine has {os.cpu_count()} CPUs), "
                         f"got {threads}")
    seed = getattr(args, "seed", None)
    if seed is not None and not 0 <= seed < MAX_SEED:
        raise UsageError(f"--seed: expected an integer in [0, 2**63), got {seed}")
    lr = getattr(args, "lr", None)
    from grukit.train import LR_MAX

    if lr is not None and not (math.isfinite(lr) and 0 < lr <= LR_MAX):
        raise UsageError(f"--lr: expected a number > 0 and at most {LR_MAX:.4g} (float32's largest), got {lr}")
    decay = getattr(args, "weight_decay", None)
    if decay is not None and not (math.isfinite(decay) and decay >= 0):
        raise UsageError(f"--weight-decay: expected a finite number >= 0, got {decay}")


def _run(module: ModuleType, args: argparse.Namespace, locks: list) -> dict:
    """module.run(args) after the shared checks; a diverged training run becomes a UsageError naming --lr. The
    lock of --out goes into `locks`, for the caller to release once it has cleaned up after the run."""
    from grukit.distributed import is_main
    from grukit.train import DivergedError

    check_arguments(args)
    # rank 0 alone decides, so a torchrun job prints the refusal once (torchrun then stops the other ranks)
    if getattr(args, "out", None) is not None and is_main():
        locks.append(run_lock.acquire(Path(args.out)))  # before the check: a run started meanwhile sees this one
        if not getattr(module, "OUT_MAY_HOLD_FILES", False):
            folds = "--backtest" if getattr(args, "backtest", 0) else "--folds" if getattr(args, "folds", 0) else None
            count = getattr(args, "backtest", 0) or getattr(args, "folds", 0) or 0
            check_fresh_out(Path(args.out), getattr(args, "resume", None), folds, count)
    try:
        return module.run(args) or {}
    except DivergedError as err:
        raise UsageError(f"--lr: training diverged (the {err.part} {err.what} is {err.value} at epoch {err.epoch}); "
                         "lower the learning rate") from None


_WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EIO}  # a full or broken disk
_OUT_OF_MEMORY = re.compile(r"can't allocate memory|bad_alloc|out of memory|Failed to allocate|DefaultCPUAllocator",
                            re.IGNORECASE)
# what gloo and nccl raise in a process whose peer ended: the peer's own message says why
_PEER_GONE = re.compile(r"Connection (closed|reset) by peer|Broken pipe|remote process exited|communicator was aborted",
                        re.IGNORECASE)


def _touches(filename: str | None, out: Path | None) -> bool:
    """True when `filename` is --out, lies in it, or is a folder above it (one the run had to make)."""
    if filename is None or out is None:
        return False
    name, out = Path(os.path.abspath(filename)), Path(os.path.abspath(out))
    return name.is_relative_to(out) or out.is_relative_to(name)


def _short(err: BaseException, out: Path | None = None) -> str | None:
    """At most three lines naming the problem; None for an error that is a bug (its traceback is the report)."""
    import numpy as np

    if isinstance(err, np.linalg.LinAlgError):  # a ValueError, but no input of the user's: a bug
        return None
    if isinstance(err, RuntimeError) and _PEER_GONE.search(str(err)) and _world_size() > 1:
        return "another process of this torchrun job stopped first; its message says why"
    if isinstance(err, (MemoryError, RuntimeError)):
        if not isinstance(err, MemoryError) and not _OUT_OF_MEMORY.search(str(err)):
            return None
        asked = re.search(r"allocate (\d+) bytes", str(err))
        need = f" (one tensor asked for {int(asked[1]) / 2**30:,.1f} GiB)" if asked else ""
        return f"out of memory{need}; lower the size flags (--hidden, --batch-size, ...)"
    inside = _touches(getattr(err, "filename", None), out)
    if isinstance(err, FileNotFoundError) and err.filename is not None:
        text = f"--out: cannot make {err.filename}" if inside else f"file not found: {err.filename}"
    elif isinstance(err, OSError) and err.filename is not None:  # read-only, a folder in the way
        reason = err.strerror or type(err).__name__
        text = f"--out: cannot write {err.filename}: {reason}" if inside else f"{err.filename}: {reason}"
    elif isinstance(err, OSError) and out is not None and err.errno in _WRITE_ERRORS:  # write() names no file
        text = f"--out: cannot write into {out}: {err.strerror}"
    elif isinstance(err, UnicodeDecodeError):
        text = f"expected UTF-8 text: {err.reason} at byte {err.start}"
    else:
        text = str(err) or type(err).__name__
    lines = text.strip().splitlines()
    return "\n".join(lines[:3])


def _process_specific(err: BaseException) -> bool:
    """True for an error that one torchrun process may meet and another not: out of memory, a peer's end."""
    return isinstance(err, (MemoryError, RuntimeError))


def _world_size() -> int:
    """torchrun's WORLD_SIZE (1 outside it), read here, not through torch: a mistyped option is answered before
    torch is imported."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def _first_on_machine() -> bool:
    """True in torchrun's first process of each machine (LOCAL_RANK 0), and outside a job of several processes
    (WORLD_SIZE unset or 1), whatever LOCAL_RANK a launcher's environment left: a lone process always speaks."""
    return _world_size() <= 1 or os.environ.get("LOCAL_RANK", "0") == "0"


def _says(err: BaseException) -> bool:
    """Whether this process prints `err`. Under torchrun every process of a machine reads the same arguments and
    files, so an input error is printed by the machine's first process alone, once per machine instead of once
    per rank; out of memory may strike one process only, so each process says its own."""
    return _process_specific(err) or _first_on_machine()


def _rank_prefix(err: BaseException) -> str:
    """'rank R: ' before a process's own error in a job of several processes, so its lines can be told apart."""
    from grukit.distributed import world

    rank, size = world()
    return f"rank {rank}: " if size > 1 and _process_specific(err) else ""


def _print(text: str) -> None:
    """print, with what the terminal's encoding cannot show escaped (a generated é on a cp1252 console)."""
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    print(text.encode(encoding, errors="backslashreplace").decode(encoding, errors="replace"))


def log_level() -> int:
    """INFO on torchrun's rank 0 (and outside torchrun), WARNING on the other ranks: one copy of
    the progress lines, every rank's warnings."""
    from grukit.distributed import is_main

    return logging.INFO if is_main() else logging.WARNING


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `grukit` console script; returns the exit code."""
    try:
        return _main(argv)
    except KeyboardInterrupt:  # before the command ran (torch's import, the parsers): nothing written yet
        print("grukit: interrupted", file=sys.stderr)
        return 130


def _main(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # build only the named command's parser when it is known: importing every task is slow
    parser = build_parser(argv[:1] if argv and argv[0] in COMMANDS else None)
    if argv and argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"):  # before any command
        parser.error(f"unrecognized arguments: {argv[0]} (options come after the command: grukit <command> "
                     f"[options])")
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # the command's parser says it, so the pointer goes to the command's --help
        _subparsers(parser)[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    module = _module(args.command)
    logging.basicConfig(level=log_level(), format="%(message)s", stream=sys.stderr)
    from grukit.distributed import is_main

    claim = hasattr(args, "out") and args.out is None and getattr(module, "DEFAULT_OUT", True)
    out = None if claim else getattr(args, "out", None)
    # what a failed run removes, rank 0's alone: under torchrun another rank holds no lock of --out, and a run
    # that holds it (this job's rank 0, or another run that refused this job) may be writing there
    mine = out if is_main() else None
    before = _snapshot(out)
    # under torchrun only rank 0 makes and cleans the default folder: another rank's clock may name another run's
    parents = _absent_parents(default_out(args.command) if claim and is_main() else out)
    locks: list = []  # the lock of --out, released once the cleaning up after the run is done
    failed = True
    try:
        if getattr(args, "resume", False) and claim:
            raise UsageError("--resume: expected --out naming the folder of the run to continue, got none")
        if claim and is_main():
            args.out = out = mine = claim_default_out(args.command)
        elif claim:
            args.out = default_out(args.command)  # written by no one on this rank; never cleaned here
        result = _run(module, args, locks)
        failed = False
    # OSError: a missing file, a read-only or full --out; MemoryError/RuntimeError: out of memory (other
    # RuntimeErrors are bugs and keep their traceback)
    except (UsageError, ValueError, OSError, MemoryError, RuntimeError) as err:
        message = _short(err, out)
        if message is None:
            _drop_empty(mine, before)  # a bug: its traceback, and what it wrote, stay
            raise
        if not isinstance(err, run_lock.Busy):  # another live run's --out: nothing in it is this run's to remove
            _clean(mine, before)
        one_line = message.replace("\r", "\\r").replace("\n", "\\n")  # a path may hold a newline
        if _says(err):
            print(f"grukit {args.command}: error: {_rank_prefix(err)}{one_line}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        _drop_empty(mine, before)  # the checkpoints written so far stay, for --resume
        print(f"grukit {args.command}: interrupted{_how_to_resume(args, out)}", file=sys.stderr)
        return 130
    except BaseException:
        _drop_empty(mine, before)
        raise
    finally:
        _finish(mine, before, parents, locks, failed)

    if is_main():
        _print_result(result)
    return 0


def _how_to_resume(args: argparse.Namespace, out: Path | None) -> str:
    """'; the run so far is in OUT (...)' when the interrupted command can --resume and left a training state
    there (a default --out is named nowhere else); '' otherwise."""
    if out is None or not hasattr(args, "resume") or not out.is_dir() or not _states(out):
        return ""
    return f"; the run so far is in {out} (the same command with --resume --out {shlex.quote(str(out))} continues it)"


def _print_result(result: dict) -> None:
    summary = result.get("summary")
    if summary:
        _print(summary.rstrip())
    files = result.get("files") or {}
    if files:
        print()
        width = max(len(name) for name in files)
        for name, path in files.items():
            _print(f"{name:<{width}}  {path}")


if __name__ == "__main__":
    sys.exit(main())
