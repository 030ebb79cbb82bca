"""grukit.data.music: the bundled JSB Chorales and .mat reading."""
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from grukit.data import music
from grukit.errors import UsageError

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "music" / "JSB_Chorales.mat"


def test_bundled_splits_are_binary_88_key_rolls():
    splits = music.load_bundled()
    assert [len(splits[k]) for k in ("train", "valid", "test")] == [229, 76, 77]
    assert sum(len(r) for r in splits["train"]) == 13807
    for rolls in splits.values():
        for r in rolls:
            assert r.shape[1] == 88 and r.dtype == np.float32 and np.isin(r, (0.0, 1.0)).all()


@pytest.mark.skipif(not SHARED.is_file(), reason="JSB_Chorales.mat not present in ../shared/data")
def test_bundled_equals_the_mat_file():
    bundled, mat = music.load_bundled(), music.read_mat(SHARED)
    for k in bundled:
        assert len(bundled[k]) == len(mat[k])
        assert all(np.array_equal(a, b) for a, b in zip(bundled[k], mat[k]))


def _mat(path, **splits):
    cells = {}
    for key, rolls in splits.items():
        cell = np.empty((1, len(rolls)), dtype=object)
        for i, r in enumerate(rolls):
            cell[0, i] = r
        cells[key] = cell
    scipy.io.savemat(path, cells)
    return path


def test_read_mat_and_npz_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    rolls = {k: [(rng.random((t, 88)) < 0.05).astype(np.uint8) for t in (5, 9)]
             for k in ("traindata", "validdata", "testdata")}
    splits = music.read_mat(_mat(tmp_path / "m.mat", **rolls))
    np.testing.assert_array_equal(splits["valid"][1], rolls["validdata"][1])
    music.save_npz(splits, tmp_path / "m.npz")
    back = music.load_npz(tmp_path / "m.npz")
    assert all(np.array_equal(a, b) for k in splits for a, b in zip(splits[k], back[k]))


def test_bad_mat_files_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="nope.mat', which does not exist"):
        music.read_mat(tmp_path / "nope.mat")
    with pytest.raises(UsageError, match="which is a folder"):
        music.read_mat(tmp_path)
    (tmp_path / "junk.mat").write_bytes(b"junk")
    with pytest.raises(UsageError, match="not a readable"):
        music.read_mat(tmp_path / "junk.mat")
    (tmp_path / "text.mat").write_bytes(b"hello, not a mat file")  # scipy's header parser: IndexError (a review)
    with pytest.raises(UsageError, match="--mat: .* is not a readable .mat file"):
        music.read_mat(tmp_path / "text.mat")
    good = [np.zeros((4, 88), np.uint8)]
    with pytest.raises(UsageError, match="missing"):
        music.read_mat(_mat(tmp_path / "a.mat", traindata=good, validdata=good))
    with pytest.raises(UsageError, match="88"):
        music.read_mat(_mat(tmp_path / "b.mat", traindata=[np.zeros((4, 80), np.uint8)], validdata=good,
                            testdata=good))
    with pytest.raises(UsageError, match="0/1"):
        music.read_mat(_mat(tmp_path / "c.mat", traindata=[np.full((4, 88), 2, np.uint8)], validdata=good,
                            testdata=good))


def test_numeric_and_sparse_layouts_that_savemat_writes_are_read(tmp_path):
    """Found by a review: scipy.io.savemat of equally long rolls writes a numeric (N, T, 88) array, of one roll a
    (T, 88) one, and MATLAB may store a roll sparse; each was refused as 'shape ()'."""
    import scipy.sparse

    rng = np.random.default_rng(0)
    rolls = (rng.random((3, 6, 88)) < 0.1).astype(np.float64)  # (N, T, 88)
    one = (rng.random((7, 88)) < 0.1).astype(np.float64)  # (T, 88)
    cell = np.empty((2,), dtype=object)
    cell[0], cell[1] = scipy.sparse.csc_matrix(one), one[:4]
    path = tmp_path / "layouts.mat"
    scipy.io.savemat(path, {"traindata": rolls, "validdata": one, "testdata": cell})
    splits = music.read_mat(path)
    assert [r.shape for r in splits["train"]] == [(6, 88)] * 3 and np.array_equal(splits["train"][1], rolls[1])
    assert len(splits["valid"]) == 1 and np.array_equal(splits["valid"][0], one)
    assert [r.shape for r in splits["test"]] == [(7, 88), (4, 88)] and np.array_equal(splits["test"][0], one)


GOOD = np.zeros((4, 88), np.uint8)  # a valid roll of 4 steps


def test_a_single_non_binary_value_is_refused(tmp_path):
    """One value outside {0, 1} in an otherwise binary roll is a UsageError (all values are checked)."""
    bad = np.zeros((4, 88), np.uint8)
    bad[2, 30] = 2
    with pytest.raises(UsageError, match="0/1"):
        music.read_mat(_mat(tmp_path / "m.mat", traindata=[bad], validdata=[GOOD], testdata=[GOOD]))


def test_a_roll_of_one_step_is_refused(tmp_path):
    """A roll needs T >= 2 (one step has nothing to predict): T = 1 is a UsageError."""
    with pytest.raises(UsageError, match="T>=2"):
        music.read_mat(_mat(tmp_path / "m.mat", traindata=[np.zeros((1, 88), np.uint8)], validdata=[GOOD],
                            testdata=[GOOD]))


def test_an_empty_split_is_refused(tmp_path):
    """A split that holds no sequences is a UsageError naming it."""
    with pytest.raises(UsageError, match="testdata holds no sequences"):
        music.read_mat(_mat(tmp_path / "m.mat", traindata=[GOOD], validdata=[GOOD], testdata=[]))
