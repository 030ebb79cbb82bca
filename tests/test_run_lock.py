"""grukit.run_lock: one run at a time in an --out folder; a killed run's lock is taken over."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from grukit import cli, run_lock
from grukit.run_lock import LOCK_FILE, Busy


def test_a_lock_is_exclusive_while_its_process_lives_and_released_after(tmp_path):
    out = tmp_path / "a" / "run"
    lock = run_lock.acquire(out)  # makes the folders
    assert lock == out / LOCK_FILE and lock.read_text().split() == [str(os.getpid()), socket.gethostname()]
    with pytest.raises(Busy, match=rf"^--out: expected a folder no other grukit run is writing into, got {out}, "
                                   rf"which grukit run {os.getpid()} is using; wait for it"):
        run_lock.acquire(out)
    run_lock.release(lock)
    assert not lock.exists()
    run_lock.release(run_lock.acquire(out))
    run_lock.release(None)


def test_a_lock_of_a_killed_run_is_taken_over_and_others_are_not(tmp_path):
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(done.stdout)  # a process that has ended
    lock = tmp_path / LOCK_FILE
    lock.write_text(f"{dead} {socket.gethostname()}\n")
    assert run_lock.acquire(tmp_path) == lock and lock.read_text().split()[0] == str(os.getpid())
    lock.write_text(f"{dead} another-host\n")  # cannot be checked from here: taken as alive
    with pytest.raises(Busy, match=rf"which grukit run {dead} on another-host is using; .* delete {lock}\)$"):
        run_lock.acquire(tmp_path)
    lock.write_text("")  # being written by a run that has just made it
    with pytest.raises(Busy, match="which the run that is writing"):
        run_lock.acquire(tmp_path)
    old = time.time() - 3600
    os.utime(lock, (old, old))  # the same, an hour old: a run killed as it made its lock
    assert run_lock.acquire(tmp_path) == lock


def test_a_second_run_into_the_folder_of_a_live_run_is_refused_and_touches_nothing(tmp_path, capsys):
    """Found by a fuzz: two runs with one --out both passed the "new or empty folder" check (the first writes
    nothing for minutes), and the later one's files silently replaced the earlier one's."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        out = tmp_path / "run"
        out.mkdir()
        (out / LOCK_FILE).write_text(f"{sleeper.pid} {socket.gethostname()}\n")  # a run started a moment ago
        for extra in ([], ["--resume"]):
            code = cli.main(["forecast", "--limit", "420", "--epochs", "1", *extra, "--out", str(out)])
            err = capsys.readouterr().err.strip()
            assert code == 2 and len(err.splitlines()) == 1, err
            assert f"--out: expected a folder no other grukit run is writing into, got {out}, which grukit run " \
                   f"{sleeper.pid} is using" in err
            assert [p.name for p in out.iterdir()] == [LOCK_FILE]  # its lock stays, and so would its files
    finally:
        sleeper.kill()
        sleeper.wait()
    assert cli.main(["forecast", "--limit", "420", "--horizon", "8", "--lookback", "16", "--hidden", "4",
                     "--members", "1", "--epochs", "1", "--out", str(out)]) == 0  # its process gone: taken over
    assert not (out / LOCK_FILE).exists() and (out / "report.md").is_file()
