"""Shared test fixtures."""
from __future__ import annotations

import pytest

from grukit.cli import main


@pytest.fixture
def exits_2_with(capsys):
    """check(argv, message, out): `grukit argv` exits 2 with one stderr line holding `message`, no
    traceback, and leaves no `out` folder behind."""

    def check(argv, message, out):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        assert not out.exists()

    return check


@pytest.fixture
def resumes_like_an_unbroken_run(tmp_path, monkeypatch, capsys):
    """check(argv, module, evaluate): `grukit argv` (3 epochs) into tmp_path/whole; the same into
    tmp_path/split with Ctrl-C during the second epoch's evaluation (`module.<evaluate>`), then --resume.
    It asserts that the resumed run went on from epoch 2 and ends with the same best and last weights."""
    import torch
    from safetensors.torch import load_file

    def check(argv, module, evaluate):
        assert main([*argv, "--out", str(tmp_path / "whole")]) == 0
        real, calls = getattr(module, evaluate), []

        def interrupted(*a):
            calls.append(1)
            if len(calls) == 2:
                raise KeyboardInterrupt
            return real(*a)

        monkeypatch.setattr(module, evaluate, interrupted)
        assert main([*argv, "--out", str(tmp_path / "split")]) == 130
        resumed = []
        monkeypatch.setattr(module, evaluate, lambda *a: resumed.append(1) or real(*a))
        assert main([*argv, "--out", str(tmp_path / "split"), "--resume"]) == 0
        assert len(resumed) == 2  # it went on from epoch 2 (it did not start over, which would match too)
        capsys.readouterr()
        for name in ("model.safetensors", "last.safetensors"):
            whole, split = load_file(tmp_path / "whole" / name), load_file(tmp_path / "split" / name)
            assert whole.keys() == split.keys() and all(torch.equal(whole[k], split[k]) for k in whole), name

    return check
