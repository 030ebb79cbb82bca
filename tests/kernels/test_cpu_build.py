"""The C++ kernel builds wherever it can: a build failure must fail the suite, not skip it.

tests/kernels/test_cpu.py skips as a whole when the extension cannot be built (no compiler, no ninja), so that the
suite runs on machines without a toolchain. A machine with both, such as CI's, must then build it: otherwise a
source that no longer compiles would turn some 300 kernel tests into skips and the suite would still pass (found
this session, when a name in module.cpp clashed with a Python header's typedef).

The rest check the build's helpers (`_build`) with torch's loader stubbed: the compiler, ninja on PATH, the
flags and the extension's name, what a failed build logs.
"""
import importlib.util
import logging
import os
import shutil

import pytest
import torch

from grukit.kernels import cpu
from grukit.kernels.cpu import _build


def test_the_kernel_builds_where_a_compiler_and_ninja_exist(caplog):
    from torch.utils import cpp_extension

    if cpu._build._compiler() is None:
        pytest.skip("no C++ compiler here: the cpu backend is optional")
    if not (cpp_extension.is_ninja_available() or importlib.util.find_spec("ninja")):
        pytest.skip("no ninja here: the cpu backend is optional")
    with caplog.at_level("WARNING", logger="grukit.kernels.cpu"):
        built = cpu.available()
    assert built, f"a compiler and ninja are here, but the cpu kernel did not build: {caplog.text[-3000:]}"


def test_the_compiler_is_the_one_cxx_names(monkeypatch, tmp_path):
    """A mutation audit: _compiler ignored $CXX (always `c++`), and no test set it."""
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    assert _build._compiler() is None
    fake = tmp_path / "my-cxx"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("CXX", str(fake))
    assert _build._compiler() == str(fake)


def test_a_ninja_package_without_its_binary_leaves_path_alone(monkeypatch, tmp_path):
    """A mutation audit: _put_ninja_on_path added the ninja package's folder to PATH even where no `ninja`
    binary is in it."""
    ninja = pytest.importorskip("ninja")
    monkeypatch.setattr(ninja, "BIN_DIR", str(tmp_path), raising=False)
    monkeypatch.setenv("PATH", "/nowhere")
    _build._put_ninja_on_path()
    assert os.environ["PATH"] == "/nowhere"


@pytest.fixture
def stub_load(monkeypatch):
    """torch's cpp_extension.load replaced by a stub that records PATH at its call and returns a sentinel
    (or raises what `calls["raise"]` holds); a compiler is reported as found."""
    from torch.utils import cpp_extension

    calls = {"path": [], "raise": None, "module": object()}

    def load(**kwargs):
        calls["path"].append(os.environ.get("PATH"))
        if calls["raise"] is not None:
            raise calls["raise"]
        return calls["module"]

    monkeypatch.setattr(cpp_extension, "load", load)
    monkeypatch.setattr(_build, "_compiler", lambda: "/usr/bin/c++")
    return calls


def test_load_puts_path_back_after_it_added_ninja_to_it(monkeypatch, tmp_path, stub_load):
    """A mutation audit: load() left the ninja folder it had put on PATH there (the `finally` that restores the
    process's PATH could go without a failing test)."""
    ninja = pytest.importorskip("ninja")
    if not os.path.isfile(os.path.join(getattr(ninja, "BIN_DIR", ""), "ninja")):
        pytest.skip("the ninja package has no binary in BIN_DIR here")
    monkeypatch.setenv("PATH", str(tmp_path))  # no ninja on it
    assert _build.load() is stub_load["module"]
    assert stub_load["path"][0].split(os.pathsep)[0] == ninja.BIN_DIR  # on PATH for the build …
    assert os.environ["PATH"] == str(tmp_path)  # … and gone after it


def test_a_failed_build_or_a_missing_ninja_is_a_warning_and_none(monkeypatch, caplog, stub_load):
    """A mutation audit: load() let a build error escape instead of warning and returning None, and went on to
    build without ninja; neither ran in any test."""
    from torch.utils import cpp_extension

    stub_load["raise"] = RuntimeError("error: expected ';' before '}' token")
    with caplog.at_level(logging.WARNING, logger="grukit.kernels.cpu"):
        assert _build.load() is None
    assert "build failed (error: expected ';'" in caplog.text and "backend 'auto' uses 'fused'" in caplog.text
    caplog.clear()
    stub_load["raise"] = None
    monkeypatch.setattr(cpp_extension, "is_ninja_available", lambda: False)
    monkeypatch.setattr(_build, "_put_ninja_on_path", lambda: None)
    with caplog.at_level(logging.WARNING, logger="grukit.kernels.cpu"):
        assert _build.load() is None
    assert "ninja is not installed" in caplog.text and stub_load["path"] == [os.environ.get("PATH")]


def test_compiling_is_logged_only_when_no_up_to_date_build_is_cached(monkeypatch, caplog, stub_load):
    """A mutation audit: the "compiling … about a minute" message could be logged for a cached build (and not
    for a real one) without a failing test."""
    for cached in (True, False):
        monkeypatch.setattr(_build, "_cached", lambda name, cached=cached: cached)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="grukit.kernels.cpu"):
            assert _build.load() is stub_load["module"]
        assert ("compiling grukit_cpu_" in caplog.text) is not cached


@pytest.mark.parametrize("capability,avx2", [("AVX512", True), ("AVX2", True), ("DEFAULT", False)])
def test_avx2_flags_and_name_follow_torch_s_cpu_capability(monkeypatch, capability, avx2):
    """A mutation audit: has_avx2 could read AVX2 as no AVX2 (so an AVX2 machine got a generic build) without a
    failing test: the flags and the extension's name must say the same thing."""
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    assert _build.has_avx2() is avx2
    assert ("-mavx2" in _build.flags() and "-mfma" in _build.flags()) is avx2
    assert _build.extension_name().startswith("grukit_cpu_avx2_" if avx2 else "grukit_cpu_generic_")


def test_a_header_change_changes_the_flags(monkeypatch, tmp_path):
    """A mutation audit: torch rebuilds only when `sources` or flags change, so flags() carries a hash of the
    headers; a digest that left them out would keep a stale build after a header edit, and no test noticed."""
    for file in _build.HEADERS:
        shutil.copy(_build._HERE / file, tmp_path / file)
    monkeypatch.setattr(_build, "_HERE", tmp_path)
    before = _build.flags()
    assert before[-1].startswith("-DGRUKIT_HEADERS=")
    with open(tmp_path / _build.HEADERS[-1], "a") as header:
        header.write("\n// edited\n")
    assert _build.flags()[-1] != before[-1] and _build.flags()[:-1] == before[:-1]


def test_a_failed_build_logs_the_end_of_a_long_compiler_error(caplog, stub_load):
    """A mutation audit: the warning keeps the last 500 characters of a build error (a compiler names the error
    at the end, after pages of context); keeping the first 500 instead passed every test, whose errors were
    short."""
    stub_load["raise"] = RuntimeError("In file included from gru.h:1:\n" + "  context line\n" * 100
                                      + "forward.cpp:42: error: 'foo' was not declared in this scope")
    with caplog.at_level(logging.WARNING, logger="grukit.kernels.cpu"):
        assert _build.load() is None
    assert "forward.cpp:42: error: 'foo' was not declared in this scope" in caplog.text
    assert "In file included from" not in caplog.text


def test_load_leaves_path_unset_where_it_was_unset(monkeypatch, stub_load):
    """A mutation audit: the `finally` of load() that removes PATH again where the process had none (after the
    ninja package's folder was put there for the build) ran in no test; it could leave PATH set, or fail."""
    from torch.utils import cpp_extension

    answers = iter((False, True))  # no ninja on PATH; then, with its folder added, ninja
    monkeypatch.setattr(cpp_extension, "is_ninja_available", lambda: next(answers))
    monkeypatch.setattr(_build, "_put_ninja_on_path", lambda: os.environ.__setitem__("PATH", "/venv/bin"))
    monkeypatch.delenv("PATH", raising=False)
    assert _build.load() is stub_load["module"]
    assert stub_load["path"] == ["/venv/bin"] and "PATH" not in os.environ


def test_a_cached_build_is_one_of_its_own_name_no_older_than_any_source_or_header(monkeypatch, tmp_path):
    """A mutation audit of _cached: a header edited after the build (the one test edited every file, sources
    too), a .so of another name in the folder, and a .so exactly as new as the newest source each decided
    nothing in any test; each could be read the other way without a failure (and "compiling" logged wrongly)."""
    src, ext, name = tmp_path / "src", tmp_path / "ext", "grukit_cpu_test"
    src.mkdir()
    for file in _build.SOURCES + _build.HEADERS:
        shutil.copy(_build._HERE / file, src / file)
    monkeypatch.setattr(_build, "_HERE", src)
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(ext))
    (ext / name).mkdir(parents=True)
    built, other = ext / name / f"{name}.so", ext / name / "another_extension.so"
    built.write_bytes(b"")
    t0 = 1_700_000_000
    for file in _build.SOURCES + _build.HEADERS:
        os.utime(src / file, (t0, t0))
    os.utime(built, (t0, t0))
    assert _build._cached(name)  # as new as the newest source: up to date
    os.utime(src / _build.HEADERS[-1], (t0 + 10, t0 + 10))
    assert not _build._cached(name)  # a header edited since the build
    other.write_bytes(b"")
    os.utime(other, (t0 + 20, t0 + 20))
    assert not _build._cached(name)  # a newer .so of another name is not this build
    os.utime(built, (t0 + 20, t0 + 20))
    assert _build._cached(name)
