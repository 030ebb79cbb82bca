"""Polyphonic music: JSB Chorales piano rolls (88 keys, binary), the splits of
Boulanger-Lewandowski et al. 2012 (229 train / 76 validation / 77 test chorales).

A chorale is v (T, 88) with v[t, k] = 1 when key k sounds at step t. The package
ships them bit-packed in `grukit/data/music/jsb_chorales.npz` (converted, unchanged,
from `JSB_Chorales.mat` as packed in the TCN repository, Bai et al. 2018); `read_mat`
reads that .mat file (or any with keys traindata/validdata/testdata) directly.

Example:
    >>> from grukit.data.music import load_bundled
    >>> splits = load_bundled()
    >>> [len(splits[k]) for k in ("train", "valid", "test")], splits["train"][0].shape
    ([229, 76, 77], (129, 88))
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from grukit import _checks
from grukit.errors import UsageError

KEYS = 88  # piano keys A0..C8
SPLITS = {"train": "traindata", "valid": "validdata", "test": "testdata"}  # ours -> .mat key
BUNDLED = "music/jsb_chorales.npz"  # inside the grukit.data package


def _check_rolls(rolls: list[np.ndarray], where: str) -> list[np.ndarray]:
    """Each roll must be (T >= 2, 88) and binary; returns them as float32."""
    if not rolls:
        raise UsageError(f"--mat: {where} holds no sequences")
    out = []
    for i, roll in enumerate(rolls):
        roll = roll.toarray() if hasattr(roll, "toarray") else np.asarray(roll)  # a MATLAB sparse roll too
        if roll.ndim != 2 or roll.shape[1] != KEYS or roll.shape[0] < 2:
            raise UsageError(f"--mat: {where}[{i}]: expected a (T>=2, {KEYS}) piano roll, got shape {roll.shape}")
        if not np.isin(roll, (0, 1)).all():
            raise UsageError(f"--mat: {where}[{i}]: expected 0/1 values, got {np.unique(roll)[:5]}...")
        out.append(roll.astype(np.float32))
    return out


def read_mat(path: str | Path) -> dict[str, list[np.ndarray]]:
    """{'train', 'valid', 'test'} -> list of (T, 88) float32 rolls, from a .mat file."""
    import scipy.io
    from scipy.io.matlab import MatReadError

    path = Path(path)
    if why := _checks.not_a_file(path):
        raise UsageError(f"--mat: expected a .mat file with traindata/validdata/testdata, got {str(path)!r}, which "
                         f"{why}")
    try:
        mat = scipy.io.loadmat(path)
    except (MatReadError, ValueError, OSError, NotImplementedError) as err:
        raise UsageError(f"--mat: {str(path)!r} is not a readable .mat file ({err})") from err
    except Exception as err:  # a short file that is no .mat fails anywhere in scipy's header parser (IndexError)
        raise UsageError(f"--mat: {str(path)!r} is not a readable .mat file ({type(err).__name__}: {err})") from None
    missing = [key for key in SPLITS.values() if key not in mat]
    if missing:
        raise UsageError(f"--mat: expected keys {list(SPLITS.values())} in {path.name}, missing {missing}")
    return {ours: _check_rolls(_rolls(mat[key]), key) for ours, key in SPLITS.items()}


def _rolls(value: np.ndarray) -> list:
    """The rolls one split of a .mat holds: a cell array (MATLAB's, or scipy.io.savemat's of rolls of different
    lengths) is a list of them; a numeric (N, T, 88) array, what savemat writes for equally long rolls, is N
    rolls; a numeric (T, 88) one is a single roll."""
    if value.dtype == object:
        return list(np.ravel(value))
    if value.ndim == 3:
        return list(value)
    return [value] if value.ndim == 2 else list(np.ravel(value))


def save_npz(splits: dict[str, list[np.ndarray]], path: str | Path) -> None:
    """Bit-pack every split into one npz: `{split}_bits` (sum T, 11) uint8 and `{split}_lengths`."""
    arrays = {}
    for name, rolls in splits.items():
        arrays[f"{name}_bits"] = np.packbits(np.concatenate(rolls).astype(np.uint8), axis=1)  # (sum T, 11)
        arrays[f"{name}_lengths"] = np.array([len(r) for r in rolls], dtype=np.int32)  # (n,)
    np.savez_compressed(path, **arrays)


def load_npz(path: str | Path) -> dict[str, list[np.ndarray]]:
    """Read a file written by `save_npz`."""
    with np.load(path, allow_pickle=False) as z:
        out = {}
        for name in SPLITS:
            rolls = np.unpackbits(z[f"{name}_bits"], axis=1, count=KEYS).astype(np.float32)  # (sum T, 88)
            out[name] = np.split(rolls, np.cumsum(z[f"{name}_lengths"])[:-1])
        return out


def load_bundled() -> dict[str, list[np.ndarray]]:
    """The shipped JSB Chorales splits."""
    return load_npz(resources.files("grukit.data").joinpath(BUNDLED))


if __name__ == "__main__":  # rebuild the bundled file: python -m grukit.data.music JSB_Chorales.mat OUT.npz
    import sys

    save_npz(read_mat(sys.argv[1]), sys.argv[2])
