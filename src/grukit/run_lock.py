"""One run at a time in an --out folder: a lock that a second run sees.

A command locks `OUT/.grukit.lock` (an exclusive `flock` on the open file) before it checks or writes
anything in --out, and unlocks and removes it when it ends. A second run with the same --out is refused
while the first holds it, instead of passing the check "a new or empty folder" in the minutes before the
first run's files appear and then overwriting them. The operating system drops the lock when its process
ends, however it ends (kill -9, SIGTERM, a crash), so a lock file left behind locks nothing: the next run
takes it. The file holds "pid host" of the run that locked it, for the refusal's message. Where `fcntl` is
missing (Windows), runs are not locked.

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
from dataclasses import dataclass
from pathlib import Path

from grukit.errors import UsageError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

LOCK_FILE = ".grukit.lock"


class Busy(UsageError):
    """--out is another live run's: the refused run must leave everything in it as it is."""


@dataclass(frozen=True)
class Lock:
    path: Path  # OUT/.grukit.lock
    fd: int  # the open file that holds the flock


def acquire(out: Path) -> Lock | None:
    """Make `out` (and the folders above it) and lock it; Busy (a UsageError naming --out) while another run
    holds the lock. Returns the lock, for `release` (None where runs are not locked)."""
    out.mkdir(parents=True, exist_ok=True)
    if fcntl is None:
        return None
    path = out / LOCK_FILE
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise Busy(f"--out: expected a folder no other grukit run is writing into, got {out}, which {holder} "
                       "is using; wait for it to end or use another --out") from None
        except BaseException:
            os.close(fd)
            raise
        # a run that ended meanwhile removed the file we opened: lock the one at `path` now, not a removed one
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
    return Lock(path, fd)


def release(lock: Lock | None) -> None:
    """Remove and unlock a lock that `acquire` took (nothing for None). Removed while still locked, so a run
    that opened the file meanwhile finds it gone and locks a new one (`acquire`)."""
    if lock is None:
        return
    try:
        if os.stat(lock.path).st_ino == os.fstat(lock.fd).st_ino:  # ours, not one a later run made there
            lock.path.unlink()
    except FileNotFoundError:
        pass  # removed with its folder
    finally:
        os.close(lock.fd)  # the flock goes with the last descriptor


def _holder(fd: int) -> str:
    """'grukit run PID on HOST' as the locked file says, or 'another grukit run' when it says nothing yet."""
    try:
        parts = os.pread(fd, 200, 0).decode("utf-8", "replace").split()
    except OSError:
        parts = []
    if len(parts) == 2 and parts[0].isdigit():
        return f"grukit run {parts[0]}" + ("" if parts[1] == socket.gethostname() else f" on {parts[1]}")
    return "another grukit run"
