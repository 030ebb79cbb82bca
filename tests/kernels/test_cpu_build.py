"""The C++ kernel builds wherever it can: a build failure must fail the suite, not skip it.

tests/kernels/test_cpu.py skips as a whole when the extension cannot be built (no compiler, no ninja), so that the
suite runs on machines without a toolchain. A machine with both, such as CI's, must then build it: otherwise a
source that no longer compiles would turn some 300 kernel tests into skips and the suite would still pass (found
this session, when a name in module.cpp clashed with a Python header's typedef).
"""
import importlib.util

import pytest

from grukit.kernels import cpu


def test_the_kernel_builds_where_a_compiler_and_ninja_exist(caplog):
    from torch.utils import cpp_extension

    if cpu._build._compiler() is None:
        pytest.skip("no C++ compiler here: the cpu backend is optional")
    if not (cpp_extension.is_ninja_available() or importlib.util.find_spec("ninja")):
        pytest.skip("no ninja here: the cpu backend is optional")
    with caplog.at_level("WARNING", logger="grukit.kernels.cpu"):
        built = cpu.available()
    assert built, f"a compiler and ninja are here, but the cpu kernel did not build: {caplog.text[-3000:]}"
