"""Task plumbing: the idle-core count that picks the default number of torch threads."""
from __future__ import annotations

import argparse
import os

import torch

from grukit.tasks.common import check_common, idle_threads


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
