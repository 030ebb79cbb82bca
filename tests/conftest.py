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
