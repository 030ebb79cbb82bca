"""grukit.report: the number formatting, tables and atomic file writes that every command's outputs go through
(from a mutation audit; the commands' own tests read the files it writes)."""
import json
import math

import pytest

from grukit.report import figure, number, plural, table, write_csv, write_json, write_report


def test_zero_and_negative_floats_keep_their_decimals():
    """A mutation audit: formatting 0.0 as "0", or -0.5 as "-0.5" (significant digits for every value below
    0.1, negatives included), passed every test."""
    assert table([{"a": 0.0, "b": -0.5, "c": 0.01234567}], ["a", "b", "c"]).splitlines()[2] == \
        "| 0.0000 | -0.5000 | 0.01235 |"
    assert number(0.0) == "0.0000" and number(-0.5) == "-0.5000" and number(-0.001234) == "-0.001234"


def test_a_missing_cell_is_empty():
    """A mutation audit: a missing cell read as 0 passed every test."""
    assert table([{"model": "GRU"}], ["model", "MAE"]).splitlines()[2] == "| GRU |  |"


def test_plural_of_zero():
    """A mutation audit: "0 member" (no s for any n <= 1) passed every test."""
    assert plural(0, "member") == "0 members" and plural(1, "member") == "1 member"


def test_json_refuses_nan_and_leaves_no_temporary_file(tmp_path):
    """A mutation audit: metrics.json with NaN written, and a .tmp file left beside it, passed every test."""
    with pytest.raises(ValueError):
        write_json(tmp_path / "bad.json", {"loss": math.nan})
    path = write_json(tmp_path / "m.json", {"loss": 0.5})
    assert json.loads(path.read_text()) == {"loss": 0.5}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]  # nothing of the refused one


def test_csv_floats_are_written_in_full(tmp_path):
    """A mutation audit: rounding the floats of a CSV passed every test."""
    path = write_csv(tmp_path / "h.csv", {"epoch": [1, 2], "loss": [0.123456789012, 1e-9]})
    assert path.read_text() == "epoch,loss\n1,0.123456789012\n2,1e-09\n"


def test_report_layout_and_figure_links(tmp_path):
    """A mutation audit: a section without the blank line after its heading, and a figure linked by its full path
    (broken once the folder moves), passed every test."""
    path = write_report(tmp_path / "r.md", "T", [("A", " body \n"), ("Fig", figure("curves", tmp_path / "c.png"))])
    assert path.read_text() == "# T\n\n## A\n\nbody\n\n## Fig\n\n![curves](c.png)\n"
