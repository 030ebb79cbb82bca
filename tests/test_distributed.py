"""grukit.distributed: resolve_device accepts cpu, cuda, cuda:K (an existing K) and auto, and nothing else."""
from __future__ import annotations

import pytest
import torch

from grukit import distributed
from grukit.distributed import resolve_device


@pytest.mark.parametrize("name", ["mps", "xpu", "meta", "cpu:5", "cuda:-1", "", "CPU", "cuda:x"])
def test_resolve_device_accepts_only_cpu_cuda_and_auto(name):
    with pytest.raises(ValueError, match=r"^device: expected cpu, cuda, cuda:K or auto, got "):
        resolve_device(name)


def test_resolve_device_cuda_needs_cuda_and_an_existing_index(monkeypatch):
    assert resolve_device("cpu") == resolve_device(torch.device("cpu")) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    for name in ("cuda", "cuda:0"):
        with pytest.raises(ValueError, match=f"^device: .*no CUDA device here.*got '{name}'"):
            resolve_device(name)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert resolve_device("auto") == resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ValueError, match=r"^device: expected cuda:K with K in 0\.\.1 .*got 'cuda:2'"):
        resolve_device("cuda:2")


def test_cuda_without_an_index_is_this_ranks_gpu(monkeypatch):
    """Guards LOCAL_RANK: under torchrun "cuda" and "auto" mean the GPU of this process's local rank, not every
    rank on cuda:0 (the existing test only ran with LOCAL_RANK unset)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert resolve_device("cuda") == resolve_device("auto") == torch.device("cuda", 3)



@pytest.mark.skipif(not torch.distributed.is_available(), reason="no torch.distributed")
def test_leave_group_leaves_a_group_fit_did_not_make(tmp_path, monkeypatch):
    """Guards OWN_GROUP in leave_group: a process group the caller made stays; only fit's own is destroyed."""
    monkeypatch.setattr(distributed, "OWN_GROUP", [False])
    torch.distributed.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        distributed.leave_group()
        assert torch.distributed.is_initialized()
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
