"""Build the C++ kernel on first use with torch.utils.cpp_extension, and cache it.

The extension is compiled once per (sources, flags, torch, Python) into the torch
extensions folder (`$TORCH_EXTENSIONS_DIR`, else `~/.cache/torch_extensions/...`); later
processes load the cached .so in milliseconds. torch rebuilds it when a source changes.

Flags: `-O3` always. When the CPU has AVX2 (torch's own runtime check), `-mavx2 -mfma`
too, and "avx2" is part of the extension's name (`extension_name`): a cache folder shared between
machines (NFS home, CI cache) never hands an AVX2 build to a CPU without AVX2, and never
a generic build to one with it. Not `-march=native`: that ties the cached binary to the
exact CPU that built it (an AVX-512 build crashes with SIGILL on an AVX2-only host) while
its name says nothing about it. AVX2+FMA is where the element-wise step (σ, tanh,
written to auto-vectorize) gets its 8-wide code; the GEMMs are torch's BLAS either way.
`-fno-trapping-math -fno-math-errno` (as torch itself is built) let GCC turn the
branch-free selects of σ/tanh into vector blends; they change no result.
`-fopenmp` lets at::parallel_for use the OpenMP runtime that torch already loaded.

Example:
    >>> from grukit.kernels.cpu import _build
    >>> _build.flags()[0]
    '-O3'
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path
from types import ModuleType

import torch

log = logging.getLogger("grukit.kernels.cpu")

SOURCES = ("module.cpp", "forward.cpp", "backward.cpp")
HEADERS = ("gru.h", "blas.h", "packed.h", "workspace.h", "activations.h")
_HERE = Path(__file__).resolve().parent


def has_avx2() -> bool:
    """True when torch's runtime CPU check reports AVX2 or better."""
    return torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")


def flags() -> list[str]:
    """Compiler flags (see the module docstring for the choice).

    The last one carries a hash of the headers: torch only hashes `sources` to decide
    whether to rebuild, so a header change must change the flags.
    """
    isa = ["-mavx2", "-mfma"] if has_avx2() else []
    digest = hashlib.sha1(b"".join((_HERE / header).read_bytes() for header in HEADERS)).hexdigest()[:12]
    return ["-O3", "-fno-trapping-math", "-fno-math-errno", "-fopenmp", *isa, f"-DGRUKIT_HEADERS={digest}"]


def extension_name() -> str:
    """grukit_cpu_{avx2|generic}_{hash of this folder's path}.

    The path is part of the name because torch's build files record the sources' paths:
    two checkouts (or virtual environments) sharing one extensions folder under one name
    would rebuild each other's extension on every switch. Each gets its own folder instead.
    """
    where = hashlib.sha1(str(_HERE).encode()).hexdigest()[:8]
    return f"grukit_cpu_{'avx2' if has_avx2() else 'generic'}_{where}"


def _compiler() -> str | None:
    """Path of the C++ compiler torch would use, or None."""
    return shutil.which(os.environ.get("CXX", "c++"))


def _cached(name: str) -> bool:
    """True when a .so for `name`, newer than every source and header, is in the extensions folder
    (else torch compiles, and `load` says so first)."""
    try:
        from torch.utils.cpp_extension import _get_build_directory  # private, stable since torch 1.x

        built = [so.stat().st_mtime for so in Path(_get_build_directory(name, False)).glob(name + "*.so")]
        newest_source = max((_HERE / f).stat().st_mtime for f in SOURCES + HEADERS)
        return bool(built) and max(built) >= newest_source
    except Exception:  # noqa: BLE001 - only decides whether to log "building"
        return False


def _put_ninja_on_path() -> None:
    """Add the folder of the `ninja` Python package's binary to PATH: a virtual environment that is not
    activated has ninja installed but not on PATH, where torch looks for it (`load` puts PATH back)."""
    try:
        import ninja
    except ImportError:
        return
    folder = getattr(ninja, "BIN_DIR", None)
    if folder and os.path.isfile(os.path.join(folder, "ninja")):
        os.environ["PATH"] = folder + os.pathsep + os.environ.get("PATH", "")
        log.info("grukit cpu kernel: using ninja from %s", folder)


def load() -> ModuleType | None:
    """Build (first time) or load the extension; None, with one warning, when that fails."""
    from torch.utils import cpp_extension

    if _compiler() is None:
        log.warning("grukit cpu kernel: no C++ compiler (CXX or c++) found, so backend 'cpu' is not available "
                    "here; backend 'auto' uses 'fused' instead")
        return None
    path = os.environ.get("PATH")
    if not cpp_extension.is_ninja_available():
        _put_ninja_on_path()
    try:
        if not cpp_extension.is_ninja_available():
            log.warning("grukit cpu kernel: ninja is not installed (pip install ninja), so backend 'cpu' is not "
                        "available here; backend 'auto' uses 'fused' instead")
            return None
        name = extension_name()
        if not _cached(name):
            log.info("grukit cpu kernel: compiling %s (once, about a minute; cached for later runs)", name)
        return cpp_extension.load(
            name=name,
            sources=[str(_HERE / source) for source in SOURCES],
            extra_cflags=flags(),
            extra_ldflags=["-fopenmp"],
            extra_include_paths=[str(_HERE)],
            verbose=False,
        )
    except Exception as err:  # noqa: BLE001 - any build/load failure means "not available"
        log.warning("grukit cpu kernel: build failed (%s), so backend 'cpu' is not available here; backend 'auto' "
                    "uses 'fused' instead", str(err)[-500:])
        return None
    finally:  # the process's PATH as it was
        if path is None:
            os.environ.pop("PATH", None)
        else:
            os.environ["PATH"] = path
