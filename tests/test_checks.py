"""grukit._checks: the argument checks the layer, cell and task configs share (refusals and conversions).

From a mutation audit; the layer's and cell's tests exercise the same checks through their constructors."""
import os

import numpy as np
import pytest

import grukit
from grukit import _checks
from grukit.data.files import read_decoded


def test_not_a_file_tells_a_file_from_a_folder_a_pipe_and_nothing(tmp_path):
    (tmp_path / "f").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "f")
    os.mkfifo(tmp_path / "pipe")
    assert _checks.not_a_file(tmp_path / "f") is None and _checks.not_a_file(str(tmp_path / "link")) is None
    assert _checks.not_a_file(tmp_path) == "is a folder"
    assert _checks.not_a_file(tmp_path / "pipe") == "is a device, pipe or socket"
    assert _checks.not_a_file(tmp_path / "nope") == "does not exist"


def test_not_a_file_answers_where_the_path_cannot_be_reached(tmp_path):
    """A review: Path.is_file re-raises ENAMETOOLONG and EACCES, so a caller naming its argument got an OSError
    naming none ("grukit sample: error: ...: File name too long")."""
    assert _checks.not_a_file(tmp_path / ("a" * 300)) == "cannot be reached (File name too long)"
    reason = r"which cannot be reached \(File name too long\)$"
    with pytest.raises(grukit.errors.UsageError, match=r"^--text: expected a regular file, got .*, " + reason):
        read_decoded(tmp_path / ("a" * 300), "--text")


def test_flag_refuses_integers_that_bool_would_read():
    """A mutation audit: `flag` accepting any int (isinstance(value, (bool, int))) survived; 1 and 0 must be
    refused like "no", since flag (unlike `switch`) takes only True or False."""
    assert _checks.flag("with_h0", True) is True and _checks.flag("with_h0", False) is False
    for value in (1, 0, np.int64(1)):
        with pytest.raises(TypeError, match=r"^with_h0: expected True or False, got "):
            _checks.flag("with_h0", value)


def test_probability_refuses_false_as_a_dropout():
    """A mutation audit: dropping the bool test of `probability` survived; False (a Real equal to 0) must be
    refused, as True is, not read as a dropout of 0."""
    with pytest.raises(ValueError, match=r"^dropout: expected a number in \[0, 1\), got False$"):
        grukit.GRU(3, 4, dropout=False)
    with pytest.raises(ValueError, match=r"^dropout: expected a number in \[0, 1\), got False$"):
        _checks.probability("dropout", False)


def test_probability_returns_a_python_float_that_a_checkpoint_can_hold(tmp_path):
    """A mutation audit: `probability` returning its argument unconverted survived; a NumPy float32 dropout
    must become a Python float in the config, or `grukit.save` cannot write the config as JSON."""
    value = _checks.probability("dropout", np.float32(0.25))
    assert type(value) is float and value == 0.25
    assert type(_checks.probability("dropout", 0)) is float
    model = grukit.GRU(3, 4, num_layers=2, dropout=np.float32(0.25))
    assert type(model.config.dropout) is float
    grukit.save(model, tmp_path / "gru.safetensors")
    assert grukit.load(tmp_path / "gru.safetensors").config.dropout == 0.25
