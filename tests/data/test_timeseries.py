"""grukit.data.timeseries: bundled sets, CSV errors, gap filling."""
import datetime as dt
import logging
import os

import numpy as np
import pytest

from grukit.data.files import csv_table, delimiter, read_decoded
from grukit.data.timeseries import _comma_hint, fill_gaps, load_co2, load_seattle, read_csv
from grukit.errors import UsageError


def test_bundled_series():
    co2 = load_co2()
    assert co2.values.shape == (2284, 1) and int(co2.missing().sum()) == 59 and co2.season == 52
    assert co2.dates[0] == "1958-03-29" and co2.dates[-1] == "2001-12-29"
    sea = load_seattle()
    assert sea.names == ["temp_max", "precipitation", "temp_min", "wind"] and sea.season == 365
    assert sea.values.shape == (1461, 4) and not sea.missing().any()


def test_fill_gaps_is_linear_in_time_with_flat_ends():
    filled, missing = fill_gaps(np.array([[np.nan], [1.0], [np.nan], [np.nan], [4.0], [np.nan]]))
    assert filled[:, 0].tolist() == [1.0, 1.0, 2.0, 3.0, 4.0, 4.0]
    assert missing[:, 0].tolist() == [True, False, True, True, False, True]


def test_fill_gaps_carries_the_last_value_forward_from_causal_from():
    values = np.array([[1.0], [np.nan], [3.0], [np.nan], [np.nan], [6.0], [np.nan]])  # (7, 1)
    filled, _ = fill_gaps(values, causal_from=3)
    assert filled[:, 0].tolist() == [1.0, 2.0, 3.0, 3.0, 3.0, 6.0, 6.0]
    filled, _ = fill_gaps(np.array([[1.0], [np.nan], [np.nan], [4.0]]), causal_from=2)
    assert filled[:, 0].tolist() == [1.0, 1.0, 1.0, 4.0]  # step 1 never sees the 4.0 observed at step 3
    with pytest.raises(UsageError, match="--column: column 0 has no values in the training part"):
        fill_gaps(np.array([[np.nan], [np.nan], [2.0]]), causal_from=2)
    with pytest.raises(UsageError, match="--covariates: column 'wind' has no values in the training part"):
        fill_gaps(np.array([[1.0, np.nan], [2.0, np.nan], [3.0, 2.0]]), causal_from=2, names=["temp", "wind"])


def test_csv_errors_name_the_argument(tmp_path):
    f = tmp_path / "s.csv"
    f.write_text("t,y\n1,2\n2,NA\n3,inf\n")
    with pytest.raises(UsageError, match="--column: expected one of"):
        read_csv(f, "q")
    with pytest.raises(UsageError, match="finite"):
        read_csv(f, "y")
    with pytest.raises(UsageError, match="--csv: file not found"):
        read_csv(tmp_path / "none.csv", "y")
    f.write_text("t,y\n1,2\n2,NA\n")
    assert np.isnan(read_csv(f, "y").values[1, 0])


@pytest.mark.parametrize(("text", "kwargs", "message"), [
    ("t,y\n1,2\n2,1e300\n", {}, r"--column/--covariates: expected numbers within ±1e\+30 in column 'y'"),
    ("t,y\n1,2\n2,316_1\n", {}, r"expected numbers in column 'y', got '316_1' in row 3"),
    ("t,y,y\n1,2,3\n2,3,4\n", {}, r"--column: expected a column named once in the header, got 'y' 2 times"),
    ("t,y,x\n1,2,3\n2,3,4\n", {"covariates": ["x", "x"]}, r"--covariates: .* got 'x' twice"),
    ("t,y,x\n1,2,3\n2,3,4\n", {"covariates": ["y"]}, r"--covariates: .* got 'y' twice"),
])
def test_values_beyond_float32_underscores_and_repeated_columns_are_refused(tmp_path, text, kwargs, message):
    """Before: 1e300 ended in a JSON error naming no flag, 316_1 was read as 3161, and a repeated
    column name silently read the last such column."""
    f = tmp_path / "s.csv"
    f.write_text(text)
    with pytest.raises(UsageError, match=message):
        read_csv(f, "y", **kwargs)


def test_dates_that_do_not_parse_and_empty_covariates_name_the_argument(tmp_path):
    f = tmp_path / "s.csv"
    f.write_text("date,y,x\n2020-01-01,1,\n2020-01-02,2,\nsoon,3,\n")
    with pytest.raises(UsageError, match=r"--date-column: expected ISO dates .* got 'soon' in row 4 of"):
        read_csv(f, "y", date_column="date")
    with pytest.raises(UsageError, match=r"--covariates: expected numbers in column 'x', got no values"):
        read_csv(f, "y", covariates=["x"])
    f.write_text("date,y\n2020-01-01,1\n2020-01-02,2\n2020-01-03,3\n")
    assert read_csv(f, "y", date_column="date").season == 365


def test_months_years_and_blank_dates_are_accepted(tmp_path):
    f = tmp_path / "air.csv"
    f.write_text("Month,Passengers\n1949-01,112\n1949-02,118\n1949-03,132\n1949-04,129\n")
    assert read_csv(f, "Passengers", date_column="Month").season == 12  # monthly: from YYYY-MM dates
    f.write_text("year,y\n1700,5\n1701,11\n1702,16\n,20\n")
    s = read_csv(f, "y", date_column="year")
    assert s.season == 1 and s.dates[-1] == ""  # yearly: no season; a blank date is kept, not refused
    f.write_text("date,y\n2020-01-01T00:00+00:00,1\n2020-01-02,2\n2020-01-03,3\n")
    with pytest.raises(UsageError, match=r"--date-column: expected every date .* with a time zone, got '2020-01-02'"):
        read_csv(f, "y", date_column="date")


def test_dates_out_of_order_or_twice_are_refused_naming_the_rows(tmp_path):
    f = tmp_path / "m.csv"
    f.write_text("month,y\n2020-01,1\n2020-03,3\n2020-02,2\n2020-04,4\n")
    with pytest.raises(UsageError, match=r"^--date-column: expected increasing dates in column 'month', got "
                                         r"'2020-02' in row 4 after '2020-03' in row 3 of .*\(sort the file"):
        read_csv(f, "y", date_column="month")
    f.write_text("month,y\n2020-01,1\n2020-02,2\n2020-02,2\n2020-03,3\n")
    with pytest.raises(UsageError, match=r"^--date-column: expected each date once in column 'month', got "
                                         r"'2020-02' in rows 3 and 4 of"):
        read_csv(f, "y", date_column="month")


def test_skipped_dates_become_gaps_so_a_season_stays_m_steps(tmp_path):
    f = tmp_path / "m.csv"
    months = [f"{2010 + i // 12}-{i % 12 + 1:02d}" for i in range(36) if i not in (5, 6, 20)]
    f.write_text("month,y\n" + "".join(f"{m},{i}\n" for i, m in enumerate(months)))
    s = read_csv(f, "y", date_column="month")
    assert s.season == 12 and len(s) == 36 and np.flatnonzero(s.missing()[:, 0]).tolist() == [5, 6, 20]
    assert s.dates[4:8] == ["2010-05", "2010-06", "2010-07", "2010-08"] and s.values[7, 0] == 5.0
    days = tmp_path / "d.csv"  # daily, with a time of day and one skipped day in 12 (the row keeps the format)
    stamps = [f"2020-02-{d:02d} 06:00" for d in range(19, 29)] + ["2020-03-01 06:00"]
    days.write_text("t,y\n" + "".join(f"{t},{i}\n" for i, t in enumerate(stamps)))
    s = read_csv(days, "y", date_column="t")
    assert s.season == 365 and len(s) == 12 and s.dates[10] == "2020-02-29 06:00" and np.isnan(s.values[10, 0])


def test_irregular_dates_keep_their_rows_with_a_warning(tmp_path, caplog):
    """Rows sharing a step, weekday-only "daily" data, or a long hole: no gap rows, the rows stay consecutive
    steps (as before gap rows existed), and a warning says why."""
    weeks = tmp_path / "w.csv"  # two dates in the same week
    weeks.write_text("d,y\n2020-01-04,1\n2020-01-11,2\n2020-01-12,3\n2020-01-18,4\n2020-01-25,5\n")
    business = tmp_path / "b.csv"  # Monday to Friday: weekends would be 2 gaps in 7
    days = [d for d in range(1, 71) if (d + 2) % 7 not in (0, 6)]  # 2020-01-01 was a Wednesday
    business.write_text("d,y\n" + "".join(f"{dt.date(2020, 1, 1) + dt.timedelta(d - 1)},{d}\n" for d in days))
    far = tmp_path / "far.csv"  # one wrong year
    far.write_text("month,y\n" + "".join(f"2020-{m:02d},{m}\n" for m in range(1, 12)) + "2030-12,12\n")
    with caplog.at_level(logging.WARNING, logger="grukit.data.dates"):
        for path, rows, why in ((weeks, 5, "rows 3 and 4 fall in the same week"), (business, len(days), "of 70 days"),
                                (far, 12, "120 of 132 months")):
            s = read_csv(path, "y", date_column=path.read_text().split(",")[0])
            assert len(s) == rows and not s.missing().any()
            message = caplog.records[-1].getMessage()
            assert why in message and "kept as consecutive steps" in message


def test_a_byte_order_mark_is_not_part_of_the_header(tmp_path):
    f = tmp_path / "bom.csv"
    f.write_text("month,y\n2020-01,1\n2020-02,2\n2020-03,3\n", encoding="utf-8-sig")
    s = read_csv(f, "y", date_column="month")
    assert s.season == 12 and s.values[:, 0].tolist() == [1.0, 2.0, 3.0]


def test_a_column_name_with_an_accent_matches_however_it_is_composed(tmp_path):
    """Found by a review: a header saved with "é" as "e" + accent (decomposed, as some Mac tools write it) refused
    the name typed as one character, with two names that look the same in the message."""
    decomposed, composed = "visites e\u0301te\u0301", "visites \u00e9t\u00e9"
    for in_file, typed in ((decomposed, composed), (composed, decomposed)):
        f = tmp_path / "nfd.csv"
        f.write_text(f"date,{in_file}\n2020-01,1\n2020-02,2\n2020-03,3\n", encoding="utf-8")
        s = read_csv(f, typed, date_column="date")
        assert s.values[:, 0].tolist() == [1.0, 2.0, 3.0] and s.names[0] == composed


def test_a_csv_in_another_encoding_reads_with_encoding_and_refuses_without(tmp_path):
    f = tmp_path / "café.csv"
    f.write_bytes("month,température\n2020-01,1\n2020-02,2\n2020-03,3\n".encode("cp1252"))
    s = read_csv(f, "température", date_column="month", encoding="cp1252")
    assert s.values[:, 0].tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(UsageError, match=r"--csv: expected utf-8 text, got byte 0xe9 .*--encoding cp1252"):
        read_csv(f, "température")


def test_semicolons_and_tabs_separate_fields_and_a_decimal_comma_is_named(tmp_path):
    """A spreadsheet in a European locale saves "CSV" with ';' (and decimal commas); some tools write tabs."""
    for sep in (";", "\t"):
        f = tmp_path / "sep.csv"
        f.write_text(f"month{sep}y{sep}note\n" + "".join(f"2020-{m:02d}{sep}{m}.5{sep}a, b\n" for m in (1, 2, 3)))
        s = read_csv(f, "y", date_column="month")
        assert s.season == 12 and s.values[:, 0].tolist() == [1.5, 2.5, 3.5]
    f.write_text("month;y\n2020-01;1,5\n")
    with pytest.raises(UsageError, match=r"got '1,5' in row 2 of .* \(write 1.5 for a decimal comma\)"):
        read_csv(f, "y")
    f.write_text("month;y\n2020-01;a,b\n")
    with pytest.raises(UsageError, match=r"got 'a,b' in row 2 of \S+$"):
        read_csv(f, "y")
    f.write_text('month,y\n2020-01,"1,234"\n')  # a thousands separator, or a decimal comma: both are named
    with pytest.raises(UsageError, match=r"\(write 1.234 for a decimal comma, 1234 for a thousands separator\)"):
        read_csv(f, "y")
    for cell, written in (("1,025.8", "1025.8"), ("12,345,678", "12345678")):  # found by a review: no hint
        f.write_text(f'month,y\n2020-01,"{cell}"\n')
        with pytest.raises(UsageError, match=rf"\(write {written}: grukit reads no thousands separators\)"):
            read_csv(f, "y")


def test_the_separator_is_the_one_that_cuts_header_and_first_row_alike(tmp_path):
    """Found by a review: the separator that cut the header into most fields won, so a comma file whose
    header names held ';' was read as semicolon-separated; \\r-only line ends (old Mac Excel) were refused."""
    f = tmp_path / "s.csv"
    for text, names in (("date,y;notes;misc\n2020-01,0\n", ["date", "y;notes;misc"]),
                        ("y;usd\n1.5\n2.5\n", ["y;usd"]),
                        ("date\tprice, usd\n2020-01\t3\n", ["date", "price, usd"]),
                        ('"a;b",y\n1,2\n', ["a;b", "y"]),
                        ("date;y\n", ["date", "y"])):
        f.write_text(text)
        assert csv_table(f.read_text(), "--csv", f)[0] == names, text
    f.write_bytes(b"date,y\r2020-01,1\r2020-02,2\r2020-03,3\r")
    assert read_csv(f, "y", date_column="date").values[:, 0].tolist() == [1.0, 2.0, 3.0]
    f.write_bytes(b"\n\ndate,y\n2020-01,1\n2020-02,2\n")  # blank lines before the header: a traceback before
    assert read_csv(f, "y").values[:, 0].tolist() == [1.0, 2.0]


def test_a_trailing_empty_row_is_no_step_and_a_blank_date_says_why_holes_stay(tmp_path, caplog):
    """Before, the ',' line a spreadsheet writes at the end became an undated gap step in the test part, and
    stopped the steps the dates skip from being filled, without a word."""
    f = tmp_path / "m.csv"
    months = [f"2020-{m:02d},{m}\n" for m in range(1, 13) if m != 6]  # June skipped
    f.write_text("date,y\n" + "".join(months) + ",\n , \n")
    s = read_csv(f, "y", date_column="date")
    assert s.dates == [f"2020-{m:02d}" for m in range(1, 13)]  # June is a gap; no step after December
    assert np.isnan(s.values[5, 0]) and s.values.shape == (12, 1)
    months[2] = ",3\n"  # March's date blank: the rows stay as they are, and a warning says so
    f.write_text("date,y\n" + "".join(months))
    with caplog.at_level(logging.WARNING):
        s = read_csv(f, "y", date_column="date")
    assert s.values.shape == (11, 1) and "row 4 has no date in column 'date'" in caplog.text


def test_a_blank_line_in_a_one_column_file_is_a_gap_and_trailing_ones_are_not_steps(tmp_path):
    """Found by a review: an empty cell of a one-column file is a blank line, which the reader skipped, so
    every later value moved one step earlier (off its season) and the report said "0 missing"."""
    f = tmp_path / "one.csv"
    f.write_text("y\n1\n2\n\n4\n\n\n")
    s = read_csv(f, "y")
    assert len(s) == 4 and s.missing()[:, 0].tolist() == [False, False, True, False]
    f.write_text("t,y\n1,1\n\n3,3\n")  # two columns: a gap is written "3,", a blank line is no row
    assert read_csv(f, "y").values[:, 0].tolist() == [1.0, 3.0]


def test_a_row_with_more_fields_than_the_header_is_refused_and_names_are_stripped(tmp_path):
    """Found by a review: '10,038' in a comma file was read as 10 (the extra field dropped), and a header
    ' y ' was not found as --column y."""
    f = tmp_path / "eu.csv"
    f.write_text("y\n10,038\n11,5\n")
    with pytest.raises(UsageError, match=r"--csv: expected at most 1 fields per row, as in the header, got 2 in "
                                         r"row 2 of .*eu.csv \(quote a field that holds a comma"):
        read_csv(f, "y")
    f.write_text("date;y\n2020-01;1\n2020-02;1;2\n")
    with pytest.raises(UsageError, match=r"got 3 in row 3 of \S+$"):
        read_csv(f, "y")
    f.write_text("date,y\n2020-01,1,\n2020-02,2, \n")  # a trailing separator: empty fields, read (a review)
    assert read_csv(f, "y").values[:, 0].tolist() == [1.0, 2.0]
    f.write_text(" date , y , x \n2020-01,1,2\n2020-02,2\n")
    s = read_csv(f, "y", date_column="date", covariates=["x"])
    assert s.names == ["y", "x"] and np.isnan(s.values[1, 1]) and s.values[1, 0] == 2.0  # a short row: gaps


def test_rows_are_numbered_as_the_file_lines_after_blank_lines(tmp_path):
    """Found by a review: after blank lines, a bad cell was named by its count among the rows (3), another
    error of the same file by its line (5)."""
    f = tmp_path / "b.csv"
    f.write_text("\n\ndate,y\n2020-01,1\n2020-02,x\n")
    with pytest.raises(UsageError, match=r"got 'x' in row 5 of"):
        read_csv(f, "y", date_column="date")
    f.write_text("date,y\n2020-01,1\n\n2020-03,2\nsoon,3\n")
    with pytest.raises(UsageError, match=r"--date-column: .* got 'soon' in row 5 of"):
        read_csv(f, "y", date_column="date")


def test_file_reading_faults_found_by_a_review(tmp_path, caplog, monkeypatch):
    """Semicolon and tab files whose first row has a trailing separator or is short were read as one column; the
    byte offset after a UTF-8 byte-order mark was 3 short; UTF-16 without a mark read as text with NULs; the
    same-week warning numbered rows from the top, not as the file's lines; a folder, an unreadable file, a
    whitespace-only first line and --date-column equal to --column were not named as such."""
    for sep in (";", "\t"):
        trailing = tmp_path / "t.csv"
        trailing.write_text(f"d{sep}v\n2020-01{sep}1{sep}\n2020-02{sep}2{sep}\n" + "".join(
            f"2020-{m:02d}{sep}{m}\n" for m in range(3, 13)))
        assert read_csv(trailing, "v", date_column="d").values[:3, 0].tolist() == [1.0, 2.0, 3.0]
    from grukit.data.files import delimiter

    texts = ("d;v\n2020-01;\n", "d\tv\n1\t\t\n", "a;b,c\n1,2\n", "d;v\n",  # an empty value, a comma file, no rows
             "Date;Price, EUR;Volume, units\n2020-01-01;1,5;100\n")  # commas in the names, not a short row
    assert [delimiter(t) for t in texts] == [";", "\t", ",", ";", ";"]
    short = tmp_path / "s.csv"
    short.write_text("d;a;v\n2020-01;1\n" + "".join(f"2020-{m:02d};{m};{m}\n" for m in range(2, 13)))
    s = read_csv(short, "v", covariates=["a"], date_column="d")
    assert np.isnan(s.values[0, 0]) and s.values[1].tolist() == [2.0, 2.0]
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbfv\n1\n\xff\n")
    with pytest.raises(UsageError, match=r"got byte 0xff at offset 7 of"):
        read_csv(bom, "v")
    utf16 = tmp_path / "u16.csv"
    utf16.write_bytes("v\n1\n2\n".encode("utf-16-le"))
    with pytest.raises(UsageError, match=r"^--csv: expected utf-8 text, got a NUL character .* try --encoding utf-16"):
        read_csv(utf16, "v")
    weeks = tmp_path / "w.csv"
    weeks.write_text("d,y\n\n\n2020-01-04,1\n2020-01-11,2\n2020-01-12,3\n2020-01-18,4\n2020-01-25,5\n")  # blank 2-3
    with caplog.at_level(logging.WARNING, logger="grukit.data.dates"):
        read_csv(weeks, "y", date_column="d")
    assert "rows 5 and 6 fall in the same week" in caplog.records[-1].getMessage()
    with pytest.raises(UsageError, match=r"^--csv: expected a regular file, got .*, which is a folder$"):
        read_csv(tmp_path, "y")
    os.mkfifo(tmp_path / "pipe.csv")  # reading it would wait for a writer for ever; it said "file not found"
    with pytest.raises(UsageError, match=r"^--csv: expected a regular file, got .*pipe.csv, which is a device, pipe"):
        read_csv(tmp_path / "pipe.csv", "y")
    monkeypatch.setattr(type(weeks), "read_bytes", lambda self: (_ for _ in ()).throw(PermissionError(13, "Denied")))
    with pytest.raises(UsageError, match=r"^--csv: cannot read .*w.csv: Denied"):
        read_csv(weeks, "y")
    monkeypatch.undo()
    spaced = tmp_path / "sp.csv"
    spaced.write_text("   \nd,y\n2020-01-04,1\n2020-01-11,2\n")
    assert read_csv(spaced, "y", date_column="d").values[:, 0].tolist() == [1.0, 2.0]
    with pytest.raises(UsageError, match=r"^--date-column: expected another column than --column, got 'y'"):
        read_csv(spaced, "y", date_column="y")


def test_a_decoded_byte_order_mark_is_dropped(tmp_path):
    """A BOM the codec keeps (utf-16-le reading a UTF-16 file with its mark) is not part of the text."""
    path = tmp_path / "t.csv"
    path.write_bytes(b"\xff\xfe" + "day,value\n".encode("utf-16-le"))
    assert read_decoded(path, "--csv", "utf-16-le") == "day,value\n"


def test_comma_wins_when_comma_and_semicolon_both_fit():
    """DELIMITERS are tried in order: a file that both , and ; cut consistently is read as comma-separated."""
    assert delimiter("a;b,c;d\n1;2,3;4\n") == ","
    assert delimiter("a;b\tc;d\n1;2\t3;4\n") == ";"


def test_causal_fill_reaches_the_last_step():
    """A gap at the very last step, after causal_from, is carried forward too (no NaN left)."""
    values = np.array([[1.0], [np.nan], [3.0], [np.nan]])
    filled, missing = fill_gaps(values, causal_from=3)
    np.testing.assert_array_equal(filled[:, 0], [1.0, 2.0, 3.0, 3.0])
    np.testing.assert_array_equal(missing[:, 0], [False, True, False, True])


def test_comma_hint_offers_thousands_only_for_three_digits():
    """A comma followed by 3 digits may be a thousands separator; by 4 or more it is only a decimal comma."""
    assert _comma_hint("1,2345") == " (write 1.2345 for a decimal comma)"
    assert "thousands" in _comma_hint("1,234")
