"""The process group and the device of a training run: which rank this process is, joining and leaving the group
that torchrun starts, the decisions every rank takes together, and the torch device that a name means.

Under `torchrun --nproc_per_node P` (env WORLD_SIZE > 1) the first `grukit.train.fit` of a process joins the
process group (gloo on CPU, nccl on CUDA), and every later `fit` of the process uses the same group; it is left
when the process exits. (Leaving and joining again per `fit` let a rank that arrived early read the old group's
addresses from the store and hang.) Only rank 0 writes files and shows progress: `is_main()` tells a task whether
it is rank 0.

Example (outside torchrun, one process is the whole group):
    >>> from grukit import distributed
    >>> distributed.world(), distributed.is_main()
    ((0, 1), True)
    >>> distributed.resolve_device("cpu")
    device(type='cpu')
"""
from __future__ import annotations

import atexit
import logging
import os
import re

import torch
from torch import nn

from grukit import resume

log = logging.getLogger(__name__)


def world() -> tuple[int, int]:
    """(rank, world_size) of this process; (0, 1) outside torchrun."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def is_main() -> bool:
    """True on rank 0 (and always outside torchrun): the process that writes files."""
    return world()[0] == 0


OWN_GROUP = [False]  # True while the default process group is one `fit` created


def init_distributed(device: torch.device) -> None:
    """Join the process group when launched by torchrun, once per process (left at exit)."""
    if int(os.environ.get("WORLD_SIZE", 1)) <= 1 or torch.distributed.is_initialized():
        return
    # torch.distributed.nn's functions take `group=group.WORLD` as a default argument, read when the module
    # is first imported: imported after the group exists (DDP imports it through torch._dynamo), it holds
    # the default group for good, and destroy_process_group cannot free it. Its gloo threads then live on
    # into interpreter exit, where they can abort a process that trained correctly. Import it first.
    import torch.distributed.nn as _reads_world_at_import  # noqa: F401

    backend = "nccl" if device.type == "cuda" else "gloo"
    torch.distributed.init_process_group(backend=backend)
    OWN_GROUP[0] = True
    atexit.register(leave_group)
    log.info("joined process group: rank %d of %d (%s)", *world(), backend)


def leave_group() -> None:
    """Destroy the process group `fit` created, if it is still there (at exit, or after a divergence)."""
    if OWN_GROUP[0] and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    OWN_GROUP[0] = False


def any_rank(flag: bool, size: int, device: torch.device) -> bool:
    """True when `flag` is True on any rank: a decision every rank must take together (else the
    ranks that go on wait for the others in the next all-reduce forever)."""
    if size == 1:
        return flag
    t = torch.tensor([float(flag)], device=device)  # (1,) on the training device: nccl takes CUDA tensors only
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
    return bool(t.item())


_DEVICE_NAME = re.compile(r"(cpu|cuda)(?::([0-9]+))?")


def resolve_device(name: str | torch.device) -> torch.device:
    """The torch device for "auto", "cpu", "cuda" or "cuda:K"; ValueError naming `device` for anything else.

    "auto" → cuda (this rank's GPU under torchrun) when available, else cpu; "cuda" without an
    index is this rank's GPU (LOCAL_RANK). "cuda:K" needs CUDA and an existing index K. Other
    device types (mps, xpu, meta, ...) and "cpu:K" are refused: the tasks run on CPU or CUDA only.
    """
    text = str(name) if isinstance(name, torch.device) else name
    if text == "auto":
        text = "cuda" if torch.cuda.is_available() else "cpu"
    match = _DEVICE_NAME.fullmatch(text) if isinstance(text, str) else None
    if match is None or (match[1] == "cpu" and match[2] is not None):
        raise ValueError(f"device: expected cpu, cuda, cuda:K or auto, got {name!r}")
    if match[1] == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError(f"device: expected 'cpu' or 'auto' (no CUDA device here), got {text!r}")
    if match[2] is None:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    count = torch.cuda.device_count()
    if int(match[2]) >= count:
        raise ValueError(f"device: expected cuda:K with K in 0..{count - 1} ({count} CUDA device(s) here), "
                         f"got {text!r}")
    return torch.device("cuda", int(match[2]))


def check_same_buffers(model: nn.Module, size: int, device: torch.device) -> None:
    """RuntimeError on every rank unless all ranks hold the same buffers. DDP sends the parameters from rank 0 at
    the start, but buffers only with broadcast_buffers, which fit turns off: a buffer computed from each rank's
    own share of the data (a normalisation, a ratio table) would differ between the ranks for the whole run."""
    mine = torch.tensor(list(bytes.fromhex(resume.buffers_digest(model))), dtype=torch.uint8,
                        device=device)  # (8,)
    every = [torch.empty_like(mine) for _ in range(size)]  # every[r] = rank r's digest
    torch.distributed.all_gather(every, mine)
    odd = [r for r, digest in enumerate(every) if not torch.equal(digest, every[0])]
    if odd:
        raise RuntimeError(f"fit: the model's buffers on rank(s) {', '.join(map(str, odd))} differ from rank 0's; "
                           "DDP does not send buffers, so each rank must compute them from the same data (the "
                           "whole training part, not its own share)")


__all__ = ["world", "is_main", "resolve_device", "init_distributed", "leave_group", "any_rank", "check_same_buffers",
           "OWN_GROUP"]
