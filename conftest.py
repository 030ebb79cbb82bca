"""pytest, for the doctests of src/grukit: their temporary files go into each test's own tmp_path (which pytest
cleans up), not the system's temporary folder, where every `make test` left a folder per example."""
import tempfile

import pytest


@pytest.fixture(autouse=True)
def _doctest_files_in_tmp_path(request):
    if type(request.node).__name__ != "DoctestItem":
        yield
        return
    before = tempfile.tempdir
    tempfile.tempdir = str(request.getfixturevalue("tmp_path"))  # tempfile.mkdtemp() and friends read it
    try:
        yield
    finally:
        tempfile.tempdir = before
