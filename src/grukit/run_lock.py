"""One run at a time in an --out folder: a lock file that a second run sees.

A command takes `OUT/.grukit.lock` (created exclusively: of two runs started together, one gets it) before
it checks or writes anything in --out, and removes it when it ends, however it ends. A second run with the
same --out is refused while the first is alive, instead of passing the check "a new or empty folder" in the
minutes before the first run's files appear and then overwriting them. A lock left by a killed run (its
process gone) is taken over. The lock holds "pid host"; a lock of another host is taken as alive.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from grukit import run_lock
    >>> out = Path(tempfile.mkdtemp()) / "run"
    >>> lock = run_lock.acquire(out)
    >>> try:
    ...     run_lock.acquire(out)
    ... except ValueError as err:
    ...     print(str(err).split(",")[0])
    --out: expected a folder no other grukit run is writing into
    >>> run_lock.release(lock)
    >>> run_lock.release(run_lock.acquire(out))  # free again
"""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from grukit.errors import UsageError

LOCK_FILE = ".grukit.lock"


class Busy(UsageError):
    """--out is another live run's: the refused run must leave everything in it as it is."""

_NEW = 60.0  # seconds: a lock this young that holds nothing readable is one being written, not a stale one


def acquire(out: Path) -> Path:
    """Make `out` (and the folders above it) and take its lock; Busy (a UsageError naming --out) while another
    live run holds it. Returns the lock's path, for `release`."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK_FILE
    for _ in range(3):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = _live_holder(path)
            if holder is not None:
                raise Busy(f"--out: expected a folder no other grukit run is writing into, got {out}, which "
                                 f"{holder} is using; wait for it to end or use another --out (if no run uses it, "
                                 f"delete {path})") from None
            path.unlink(missing_ok=True)  # a killed run's
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(f"{os.getpid()} {socket.gethostname()}\n")
        return path
    raise Busy(f"--out: expected a folder no other grukit run is writing into, got {out}, whose lock {path} "
                     "other runs keep taking; use another --out")


def release(path: Path | None) -> None:
    """Remove a lock that `acquire` took (nothing for None, or one already gone)."""
    if path is not None:
        path.unlink(missing_ok=True)


def _live_holder(path: Path) -> str | None:
    """'grukit run PID on HOST' when the lock at `path` belongs to a live process (or one that cannot be checked:
    another host's, one being written); None for a stale lock, or one gone meanwhile."""
    try:
        text = path.read_text(encoding="utf-8")
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return None  # released meanwhile: try again
    except (OSError, UnicodeDecodeError):
        return f"the run that wrote {path}"
    parts = text.split()
    if len(parts) != 2 or not parts[0].isdigit():
        return f"the run that is writing {path}" if age < _NEW else None
    pid, host = int(parts[0]), parts[1]
    if host != socket.gethostname():
        return f"grukit run {pid} on {host}"
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # it exists, under another user
    return f"grukit run {pid}"
