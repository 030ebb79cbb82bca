"""One run at a time in an --out folder: a lock that a second run sees.

A command locks `OUT/.grukit.lock` (an exclusive `flock` on the open file) before it checks or writes
anything in --out, and unlocks and removes it when it ends. A second run with the same --out is refused
while the first holds it, instead of passing the check "a new or empty folder" in the minutes before the
first run's files appear and then overwriting them. The operating system drops the lock when its process
ends, however it ends (kill -9, SIGTERM, a crash), so a lock file left behind locks nothing: the next run
takes it. The file holds "pid host" of the run that locked it, for the refusal's message. Where `fcntl` is
missing (Windows), or the filesystem has no locks (a warning says so), runs are not locked.

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

import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from grukit.errors import UsageError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

log = logging.getLogger(__name__)

LOCK_FILE = ".grukit.lock"
_TRIES = 10  # attempts at a lock file that goes away meanwhile, before giving up


class Busy(UsageError):
    """--out is another live run's: the refused run must leave everything in it as it is."""


@dataclass(frozen=True)
class Lock:
    path: Path  # OUT/.grukit.lock
    fd: int  # the open file that holds the flock


def acquire(out: Path) -> Lock | None:
    """Make `out` (and the folders above it) and lock it; Busy (a UsageError naming --out) while another run
    holds the lock. Returns the lock, for `release`; None where runs are not locked (no fcntl, or a filesystem
    without locks, which is logged)."""
    if fcntl is None:
        out.mkdir(parents=True, exist_ok=True)
        return None
    path = out / LOCK_FILE
    for _ in range(_TRIES):
        out.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:  # the folder went meanwhile (a failed run removing the one it made)
            continue
        try:
            locked = _lock(fd, out, path)
        except BaseException:
            os.close(fd)
            raise
        if locked is None:  # a filesystem without locks
            os.close(fd)
            _remove_if_empty(path)
            return None
        if locked:
            _note_holder(fd)
            return Lock(path, fd)
        os.close(fd)  # the file went meanwhile (a run that ended): lock the one at `path` now
    raise _busy(out, f"whose lock {path} kept changing under this run; use another --out")


def release(lock: Lock | None) -> None:
    """Remove and unlock a lock that `acquire` took (nothing for None). Removed while still locked, so a run
    that opened the file meanwhile finds it gone and locks a new one (`acquire`). Never raises: a lock file
    that cannot be removed (a read-only disk) locks nothing once its descriptor is closed."""
    if lock is None:
        return
    try:
        if os.stat(lock.path).st_ino == os.fstat(lock.fd).st_ino:  # ours, not one a later run made there
            lock.path.unlink()
    except OSError:
        pass  # removed with its folder, or cannot be
    finally:
        os.close(lock.fd)  # the flock goes with the last descriptor


def _lock(fd: int, out: Path, path: Path) -> bool | None:
    """Lock the open `fd`: True when it is the file at `path` now, False when that file went meanwhile (try
    again), None when the filesystem has no locks; Busy when another run holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise _busy(out, f"which {_holder(fd)} is using; wait for it to end or use another --out") from None
    except OSError as err:  # ENOLCK, EOPNOTSUPP...: NFS without lockd, some FUSE and cluster filesystems
        log.warning("--out: %s cannot be locked (%s): a second run given the same folder will not be refused",
                    out, err.strerror or err)
        return None
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _busy(out: Path, why: str) -> Busy:
    return Busy(f"--out: expected a folder no other grukit run is writing into, got {out}, {why}")


def _note_holder(fd: int) -> None:
    """Write "pid host" into the locked file, for a refused run's message; a disk too full for it changes nothing
    else (the lock is the flock, not the text)."""
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
    except OSError:
        pass


def _remove_if_empty(path: Path) -> None:
    """Remove a lock file that holds nothing: made by this run on a filesystem without locks."""
    try:
        if path.stat().st_size == 0:
            path.unlink()
    except OSError:
        pass


def _holder(fd: int) -> str:
    """'grukit run PID on HOST' as the locked file says, or 'another grukit run' when it says nothing yet."""
    try:
        parts = os.pread(fd, 200, 0).decode("utf-8", "replace").split()
    except OSError:
        parts = []
    if len(parts) == 2 and parts[0].isdigit():
        return f"grukit run {parts[0]}" + ("" if parts[1] == socket.gethostname() else f" on {parts[1]}")
    return "another grukit run"
