"""Task plumbing: the idle-core count that picks the default number of torch threads, the memory check of the
size flags."""
from __future__ import annotations

import argparse
import io
import json
import os
from pathlib import Path

import pytest
import torch

from grukit.errors import UsageError
from grukit.tasks import common
from grukit.tasks.common import check_common, check_device, idle_threads


def test_idle_threads_is_between_one_and_the_cores():
    n = idle_threads(window=0.05)
    assert isinstance(n, int) and 1 <= n <= (os.cpu_count() or 1)


def test_check_common_idle_applies_idle_threads_unless_threads_is_given():
    before = torch.get_num_threads()
    try:
        check_common(argparse.Namespace(threads=None, backend="auto", device="cpu"), threads="idle")
        assert 1 <= torch.get_num_threads() <= (os.cpu_count() or 1)
        check_common(argparse.Namespace(threads=1, backend="auto", device="cpu"), threads="idle")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_a_resume_without_threads_takes_the_runs_own_thread_count(tmp_path):
    """Found by a review: textgen and classify pick their threads from the idle cores, so a plain --resume on a
    machine with another load went on with another count, and its weights differed from an unbroken run's."""
    from grukit.checkpoint import save_state

    save_state(tmp_path / "last.state.safetensors", {}, {"grukit.train_state": {"run": {"processes": 1, "threads": 3}}})
    before = torch.get_num_threads()
    try:
        common = {"backend": "auto", "device": "cpu", "out": tmp_path}
        check_common(argparse.Namespace(threads=None, resume=True, **common), threads="idle")
        assert torch.get_num_threads() == 3
        check_common(argparse.Namespace(threads=2, resume=True, **common), threads="idle")  # given: it decides
        assert torch.get_num_threads() == 2
        check_common(argparse.Namespace(threads=None, resume=False, **common), threads=1)  # a new run
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_check_device_names_device_for_anything_but_cpu_cuda_and_auto():
    assert check_device("cpu") == torch.device("cpu")
    for name in ("mps", "xpu", "meta", "cpu:5"):
        with pytest.raises(UsageError, match=f"^--device: expected cpu, cuda, cuda:K or auto, got '{name}'$"):
            check_device(name)


def test_check_trainable_counts_every_copy_against_the_machine(monkeypatch):
    """TRAINING_BYTES per parameter, the model built on the meta device."""

    make = lambda: torch.nn.Linear(10, 10)  # noqa: E731  110 parameters
    one = 110 * common.TRAINING_BYTES
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.setattr(common, "machine_memory", lambda: one * 3)
    common.check_trainable(make, "--hidden", copies=3)  # exactly fits
    with pytest.raises(UsageError, match=r"^--members, --hidden: 4 members of 110 parameters need 0\.0 GiB to train "
                                         r"\(weights, gradients, AdamW's moments, the best epoch's copy and the saved "
                                         r"state\), more than the 0\.0 GiB this machine has; use smaller sizes$"):
        common.check_trainable(make, "--members, --hidden", copies=4)
    monkeypatch.setattr(common, "machine_memory", lambda: one - 1)
    with pytest.raises(UsageError, match=r"^--hidden: 110 parameters need"):
        common.check_trainable(make, "--hidden")
    monkeypatch.setattr(common, "machine_memory", lambda: None)  # unknown: no check
    common.check_trainable(make, "--hidden", copies=10**12)


def test_check_trainable_counts_each_torchrun_process_on_the_machine(monkeypatch):
    """Found by a review: the message gave one process's need, which read as if it fitted."""

    make = lambda: torch.nn.Linear(2**12, 2**12, bias=False)  # noqa: E731  2²⁴ parameters
    each = 2**24 * common.TRAINING_BYTES
    monkeypatch.setattr(common, "machine_memory", lambda: 3 * each)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "3")
    common.check_trainable(make, "--hidden")  # three processes of one copy each: fits
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    with pytest.raises(UsageError, match=r"^--hidden: 16,777,216 parameters need 3\.5 GiB in all \(0\.9 GiB in each of "
                                         r"4 processes\) to train .* more than the 2\.6 GiB this machine has"):
        common.check_trainable(make, "--hidden")


def test_machine_memory_takes_the_lowest_control_group_limit(monkeypatch):
    monkeypatch.setattr(common, "_cgroup_limits", lambda: [2**40, 2**20])
    assert common.machine_memory() == 2**20
    monkeypatch.setattr(common, "_cgroup_limits", lambda: [])
    assert common.machine_memory() == os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def test_check_trainable_builds_nothing_real():
    from grukit.tasks.common import check_trainable

    built = []

    def make():
        built.append(torch.nn.Linear(4, 4))
        return built[-1]

    check_trainable(make, "--hidden")
    assert built[0].weight.is_meta


def test_machine_memory_is_a_positive_byte_count_here():
    from grukit.tasks.common import machine_memory

    have = machine_memory()
    assert have is None or have > 2**26


@pytest.mark.parametrize("command", ["speech", "music"])
def test_backend_is_refused_with_a_cell_that_is_not_grukits_gru(command, tmp_path, capsys):
    """Found by a review: `speech --cell lstm --backend fused` ran, ignored the flag and recorded it."""
    from grukit import cli

    out = tmp_path / "run"
    assert cli.main([command, "--cell", "lstm", "--backend", "fused", "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip().endswith("--backend: expected 'auto' with --cell lstm (it picks the kernel "
                                                    "of grukit's GRU, --cell gru), got 'fused'")
    assert not out.exists()
    args = argparse.Namespace(threads=None, backend="fused", device="cpu", cell="gru")
    check_common(args)  # grukit's GRU: any backend


def _args(**kwargs):
    return argparse.Namespace(**{"threads": None, "backend": "auto", "device": "cpu", **kwargs})


def test_check_common_idle_sets_the_idle_core_count(monkeypatch):
    """A mutation audit: check_common replacing "idle" by a fixed count survived (the existing test only checked
    a range); the number `idle_threads` gives is the one applied."""
    before = torch.get_num_threads()
    monkeypatch.setattr(common, "idle_threads", lambda: 2)
    try:
        common.check_common(_args(), threads="idle")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_check_common_wants_a_batch_size_that_splits_over_the_processes(monkeypatch):
    """A mutation audit: removing the torchrun --batch-size check survived; with 4 processes a batch of 6 is
    refused, 8 is taken, and a command whose batches are not split (split_batches=False) takes 6."""
    monkeypatch.setattr(common, "world", lambda: (0, 4))
    with pytest.raises(UsageError, match=r"^--batch-size: expected a multiple of the 4 processes torchrun started, "
                                         r"got 6$"):
        common.check_common(_args(batch_size=6, threads=torch.get_num_threads()))
    common.check_common(_args(batch_size=8, threads=torch.get_num_threads()))
    common.check_common(_args(batch_size=6, threads=torch.get_num_threads()), split_batches=False)


def test_check_common_refuses_a_backend_that_is_not_available_here(monkeypatch):
    """A mutation audit: removing the kernels.available check survived; a known backend missing in this process
    is a UsageError listing the available ones."""
    monkeypatch.setattr(common.kernels, "available", lambda name: name != "fused")
    with pytest.raises(UsageError, match=r"^--backend: expected one available in this process, \[.*\], "
                                         r"got 'fused'$") as caught:
        common.check_common(_args(backend="fused", threads=torch.get_num_threads()))
    assert "'fused'" not in str(caught.value).split("got")[0]


def _fake_cgroup(monkeypatch, tmp_path, cgroup_line, files):
    """/proc/self/cgroup holding `cgroup_line` and {path: text} files, all under tmp_path."""
    for path, text in {"/proc/self/cgroup": cgroup_line, **files}.items():
        (tmp_path / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path.lstrip("/")).write_text(text)
    monkeypatch.setattr(common, "Path", lambda p: tmp_path / str(p).lstrip("/"))


def test_cgroup_limits_read_only_files_inside_the_cgroup_tree(monkeypatch, tmp_path):
    """A mutation audit: dropping `is_relative_to(root)` survived; a memory.max above /sys/fs/cgroup (the folder's
    parents go up to /) is not a limit of this group."""
    _fake_cgroup(monkeypatch, tmp_path, "0::/a/b\n", {
        "/sys/fs/cgroup/a/b/memory.max": "max\n", "/sys/fs/cgroup/a/memory.max": "4096\n",
        "/sys/fs/cgroup/memory.max": "8192\n", "/sys/fs/memory.max": "1\n", "/memory.max": "2\n"})
    assert sorted(common._cgroup_limits()) == [4096, 8192]


def test_cgroup_v1_memory_controller_may_share_its_line(monkeypatch, tmp_path):
    """A mutation audit: reading only a line whose controllers are exactly "memory" survived; a v1 line with
    memory among other controllers names the memory group too."""
    _fake_cgroup(monkeypatch, tmp_path, "3:cpu,cpuacct:/x\n4:memory,hugetlb:/g\n", {
        "/sys/fs/cgroup/memory/g/memory.limit_in_bytes": "65536\n",
        "/sys/fs/cgroup/cpu,cpuacct/x/memory.limit_in_bytes": "1\n"})
    assert common._cgroup_limits() == [65536]


def test_idle_threads_counts_iowait_as_idle(monkeypatch):
    """A mutation audit: idle_threads counting only the idle column (not idle + iowait) survived. Over the window
    4 cores spend 400 of 600 ticks idle or waiting on I/O: 1.33 busy cores, 3 idle."""
    lines = iter(["cpu 100 0 100 1000 200 0 0\n", "cpu 200 0 200 1200 400 0 0\n"])
    monkeypatch.setattr(common, "open", lambda path: io.StringIO(next(lines)), raising=False)
    monkeypatch.setattr(common.time, "sleep", lambda s: None)
    monkeypatch.setattr(common.os, "cpu_count", lambda: 4)
    assert common.idle_threads() == 3


def test_train_config_takes_epochs_and_resume_from_the_flags():
    """A mutation audit: train_config ignoring --epochs, or --resume, survived."""
    config = common.train_config(argparse.Namespace(epochs=7, seed=3, device="cpu", resume=True), epochs=5, lr=1e-3)
    assert (config.epochs, config.seed, config.resume, config.lr) == (7, 3, True, 1e-3)
    config = common.train_config(argparse.Namespace(epochs=None, seed=1, device="cpu"), epochs=5)
    assert (config.epochs, config.resume) == (5, False)


def test_encoding_of_refuses_the_flag_without_files_and_defaults_to_utf8():
    """A mutation audit: removing encoding_of's refusal of --encoding without the user's files survived."""
    with pytest.raises(UsageError, match=r"^--encoding: expected only with --text, got 'cp1252' without them"):
        common.encoding_of(argparse.Namespace(encoding="cp1252"), "--text", given=False)
    assert common.encoding_of(argparse.Namespace(encoding="cp1252"), "--text", given=True) == "cp1252"
    assert common.encoding_of(argparse.Namespace(encoding=None), "--text", given=False) == "utf-8"


def test_args_dict_leaves_the_command_function_out():
    """A mutation audit: args_dict keeping `func` (the subcommand's function, set by the parser) survived; it
    would land in metrics.json as a repr string."""
    args = argparse.Namespace(func=common.args_dict, out=Path("runs/x"), hidden=8)
    assert common.args_dict(args) == {"out": "runs/x", "hidden": 8}


def test_write_metrics_writes_only_on_rank_0(monkeypatch, tmp_path):
    """A mutation audit: write_metrics writing on every torchrun rank survived."""
    monkeypatch.setenv("RANK", "1")
    assert common.write_metrics(tmp_path, {"a": 1}) is None
    assert not (tmp_path / "metrics.json").exists()
    monkeypatch.setenv("RANK", "0")
    assert common.write_metrics(tmp_path, {"a": 1}) == tmp_path / "metrics.json"
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"a": 1}
