"""grukit.run_lock: one run at a time in an --out folder; the lock ends with its process, however it ends."""
from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys

import pytest

from grukit import cli, run_lock
from grukit.run_lock import LOCK_FILE, Busy

pytestmark = pytest.mark.skipif(run_lock.fcntl is None, reason="runs are not locked without fcntl (Windows)")

HOLD = """import fcntl, os, socket, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, f"{os.getpid()} {socket.gethostname()}\\n".encode())
print("locked", flush=True)
time.sleep(120)
"""


def _holder(path):
    """A process that locks `path` as a run does and waits to be killed."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_lock_is_exclusive_and_released(tmp_path):
    out = tmp_path / "a" / "run"
    lock = run_lock.acquire(out)  # makes the folders
    assert lock.path == out / LOCK_FILE
    assert lock.path.read_text().split() == [str(os.getpid()), socket.gethostname()]
    with pytest.raises(Busy, match=rf"^--out: expected a folder no other grukit run is writing into, got {out}, "
                                   rf"which grukit run {os.getpid()} is using; wait for it"):
        run_lock.acquire(out)
    run_lock.release(lock)
    assert not lock.path.exists()
    run_lock.release(run_lock.acquire(out))
    run_lock.release(None)


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_the_lock_ends_with_its_process_however_it_ends(tmp_path, how):
    """Found by a review of the first lock (a pid in a file): a lock of a killed run was judged by its pid, which a
    new process (a restarted container's pid 1) may hold again, and two runs could both take over a stale one.
    The system drops a flock with its process: the file left behind locks nothing."""
    holder = _holder(tmp_path / LOCK_FILE)
    with pytest.raises(Busy, match=f"which grukit run {holder.pid} is using"):
        run_lock.acquire(tmp_path)
    holder.send_signal(how)
    holder.wait()
    assert (tmp_path / LOCK_FILE).exists()  # left behind by the killed process
    run_lock.release(run_lock.acquire(tmp_path))


def test_release_leaves_a_lock_that_a_later_run_made(tmp_path):
    """A run whose folder was emptied under it (its lock file removed) must not remove the next run's lock."""
    first = run_lock.acquire(tmp_path)
    first.path.unlink()
    second = run_lock.acquire(tmp_path)  # a new file: not the one the first run locks
    run_lock.release(first)
    assert second.path.exists()
    with pytest.raises(Busy):
        run_lock.acquire(tmp_path)
    run_lock.release(second)


def test_a_second_run_into_the_folder_of_a_live_run_is_refused_and_touches_nothing(tmp_path, capsys):
    """Found by a fuzz: two runs with one --out both passed the "new or empty folder" check (the first writes
    nothing for minutes), and the later one's files silently replaced the earlier one's. `sample`, which may
    write into a folder holding other files, is locked too (found by a review)."""
    out = tmp_path / "run"
    out.mkdir()
    holder = _holder(out / LOCK_FILE)
    try:
        for argv in (["forecast", "--limit", "420", "--epochs", "1"], ["forecast", "--resume"],
                     ["sample", str(tmp_path / "none.safetensors")]):
            code = cli.main([*argv, "--out", str(out)])
            err = capsys.readouterr().err.strip()
            assert code == 2 and len(err.splitlines()) == 1, err
            assert f"--out: expected a folder no other grukit run is writing into, got {out}, which grukit run " \
                   f"{holder.pid} is using" in err
            assert [p.name for p in out.iterdir()] == [LOCK_FILE]  # its lock stays, and so would its files
    finally:
        holder.kill()
        holder.wait()
    assert cli.main(["forecast", "--limit", "420", "--horizon", "8", "--lookback", "16", "--hidden", "4",
                     "--members", "1", "--epochs", "1", "--out", str(out)]) == 0  # its process gone: taken over
    assert not (out / LOCK_FILE).exists() and (out / "report.md").is_file()


def test_a_failed_run_holds_its_lock_until_it_has_cleaned_up(tmp_path, capsys, monkeypatch):
    """Found by a review: the lock went before the failed run removed its folder, so a run that started in between
    lost its files to that cleanup."""
    out, tried = tmp_path / "run", []
    clean = cli._clean

    def clean_while_another_run_starts(folder, before):
        with pytest.raises(Busy):
            run_lock.acquire(folder)
        tried.append(folder)
        clean(folder, before)

    monkeypatch.setattr(cli, "_clean", clean_while_another_run_starts)
    assert cli.main(["textgen", "--text", str(tmp_path / "none.txt"), "--out", str(out)]) == 2
    assert "--text" in capsys.readouterr().err and tried == [out] and not out.exists()


def test_another_torchrun_rank_never_cleans_out(tmp_path, capsys, monkeypatch):
    """Found by a DDP audit: rank 1 of a torchrun job that rank 0's lock refusal should have stopped hit its own
    usage error and removed what it had not seen in --out: the files of the live run that held the lock."""
    from grukit.errors import UsageError
    from grukit.tasks import forecast

    out = tmp_path / "run"
    out.mkdir()

    def written_meanwhile_then_refused(args):
        (out / ".model.safetensors.x1.tmp").write_bytes(b"the live run's")  # after this rank's look at --out
        raise UsageError("--batch-size: expected a multiple of the 2 processes")

    monkeypatch.setattr(forecast, "run", written_meanwhile_then_refused)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert cli.main(["forecast", "--out", str(out)]) == 2
    assert "--batch-size" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == [".model.safetensors.x1.tmp"]


def test_a_filesystem_without_locks_runs_unlocked_with_a_warning(tmp_path, capsys, caplog, monkeypatch):
    """Found by a review: where flock fails (NFS without lockd, some FUSE mounts: ENOLCK) every run was refused
    with '[Errno 37] No locks available' and left its folder and lock file behind."""
    import errno

    def no_locks(fd, how):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(run_lock.fcntl, "flock", no_locks)
    with caplog.at_level("WARNING", logger="grukit.run_lock"):
        assert run_lock.acquire(tmp_path / "x") is None
    assert "cannot be locked (No locks available)" in caplog.text and list((tmp_path / "x").iterdir()) == []
    out = tmp_path / "a" / "b"
    assert cli.main(["forecast", "--csv", str(tmp_path / "missing.csv"), "--column", "y", "--out", str(out)]) == 2
    assert "--csv" in capsys.readouterr().err and not (tmp_path / "a").exists()


def test_a_lock_survives_a_full_disk_and_its_release_never_raises(tmp_path, monkeypatch):
    """Found by a review: a full disk while writing "pid host" left the descriptor open and the folder behind;
    a lock file that could not be removed (a read-only disk) ended a finished run in a traceback."""
    import errno

    write = os.write

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(run_lock.os, "write", full)
    lock = run_lock.acquire(tmp_path)
    monkeypatch.setattr(run_lock.os, "write", write)
    assert lock is not None and lock.path.read_text() == ""  # locked all the same; only the note is missing

    def read_only(path):
        raise PermissionError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(run_lock.os, "stat", read_only)
    run_lock.release(lock)  # no exception
    with pytest.raises(OSError):
        os.fstat(lock.fd)  # closed: the lock is gone with it


def test_a_refused_run_removes_nothing_the_live_run_writes_meanwhile(tmp_path, capsys, monkeypatch):
    """The run that holds --out may write a file between the refused run's look at the folder and its refusal:
    the refused run cleans nothing (a mutation audit: cleaning on Busy passed, since the test's holder wrote
    nothing but its lock)."""
    out = tmp_path / "run"
    out.mkdir()
    holder = _holder(out / LOCK_FILE)
    acquire = run_lock.acquire

    def written_meanwhile(path):
        (path / "theirs.csv").write_text("epoch\n1\n")  # the live run's file, new since the refused run began
        return acquire(path)

    monkeypatch.setattr(run_lock, "acquire", written_meanwhile)
    try:
        assert cli.main(["forecast", "--limit", "420", "--epochs", "1", "--out", str(out)]) == 2
        assert "no other grukit run is writing into" in capsys.readouterr().err
        assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE, "theirs.csv"]
    finally:
        holder.kill()
        holder.wait()


pytestmark = pytest.mark.skipif(run_lock.fcntl is None, reason="runs are not locked without fcntl (Windows)")


def test_a_lock_file_removed_between_open_and_flock_is_not_taken(tmp_path, monkeypatch):
    """Guards _lock's inode check: when the file this run opened goes (a run ending) before its flock, the run
    locks the file at the path instead of an unlinked one no later run can see, so a later run is refused."""
    real_open = os.open
    calls = []

    def open_then_lose_it(path, flags, mode=0o777):
        fd = real_open(path, flags, mode)
        if not calls:  # the first open: the holder releases (removes) the file right after it
            os.unlink(path)
        calls.append(path)
        return fd

    monkeypatch.setattr(run_lock.os, "open", open_then_lose_it)
    lock = run_lock.acquire(tmp_path)
    monkeypatch.setattr(run_lock.os, "open", real_open)
    assert len(calls) == 2  # tried again
    assert os.stat(lock.path).st_ino == os.fstat(lock.fd).st_ino  # holds the file at the path
    with pytest.raises(Busy):
        run_lock.acquire(tmp_path)
    run_lock.release(lock)


def test_the_holder_note_replaces_a_longer_one_left_behind(tmp_path):
    """Guards _note_holder's truncation: a stale lock file's longer text is replaced, not partly overwritten,
    so the refusal names this run and not "another grukit run"."""
    (tmp_path / LOCK_FILE).write_text("123456789 a-very-long-host-name-of-a-killed-run.example.org\n")
    lock = run_lock.acquire(tmp_path)
    assert lock.path.read_text() == f"{os.getpid()} {socket.gethostname()}\n"
    with pytest.raises(Busy, match=f"which grukit run {os.getpid()} is using"):
        run_lock.acquire(tmp_path)
    run_lock.release(lock)


def test_a_lock_file_that_says_nothing_readable_names_another_run(tmp_path):
    """Guards _holder's "pid host" parsing: text of another shape gives 'another grukit run'."""
    lock = run_lock.acquire(tmp_path)
    for text in ("garbage\n", "notapid host\n", ""):
        os.ftruncate(lock.fd, 0)
        os.pwrite(lock.fd, text.encode(), 0)
        with pytest.raises(Busy, match="which another grukit run is using"):
            run_lock.acquire(tmp_path)
    run_lock.release(lock)


def test_without_locks_a_lock_file_with_a_note_is_kept(tmp_path, monkeypatch):
    """Guards _remove_if_empty: on a filesystem without locks only an empty lock file (this run's) is removed,
    never one holding another run's "pid host"."""
    def no_locks(fd, how):
        raise OSError(errno.ENOLCK, "No locks available")

    (tmp_path / LOCK_FILE).write_text("4242 otherhost\n")
    monkeypatch.setattr(run_lock.fcntl, "flock", no_locks)
    assert run_lock.acquire(tmp_path) is None
    assert (tmp_path / LOCK_FILE).read_text() == "4242 otherhost\n"
