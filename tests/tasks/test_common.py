"""Task plumbing: the idle-core count that picks the default number of torch threads, the memory check of the
size flags."""
from __future__ import annotations

import argparse
import os

import pytest
import torch

from grukit.errors import UsageError
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
    from grukit.tasks import common

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
    from grukit.tasks import common

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
    from grukit.tasks import common

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
