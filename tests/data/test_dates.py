"""grukit.data.dates: the season of a file's dates, their order, and the steps they skip."""
import datetime as dt

import numpy as np
import pytest

from grukit.data.dates import check_order, dates_after, infer_season, insert_skipped, parse_dates, to_datetime
from grukit.errors import UsageError


def test_a_utc_z_suffix_reads_on_every_supported_python():
    """Python 3.10's datetime.fromisoformat refuses "Z" (3.11 reads it); pyproject allows 3.10."""
    utc = dt.timezone.utc
    assert to_datetime("2020-01-01T06:30:00Z") == dt.datetime(2020, 1, 1, 6, 30, tzinfo=utc)
    assert to_datetime("2020-01-01T06:30:00+00:00") == to_datetime("2020-01-01 06:30:00z")


def test_infer_season():
    assert infer_season(["2020-01-01", "2020-01-08", "2020-01-15"]) == 52
    assert infer_season(["2020-01-01", "2020-01-02", "2020-01-03"]) == 365
    assert infer_season(["2020-01-01", "2020-02-01", "2020-03-01"]) == 12
    assert infer_season(None) == 1 and infer_season(["a", "b", "c"]) == 1
    assert infer_season(["2020-01", "2020-02", "", "2020-03"]) == 12  # a blank date is skipped


def test_skipped_steps_become_nan_rows_labelled_like_their_neighbours():
    dates = [f"2021-03-{d:02d}T00:00:00+01:00" for d in range(20, 28)] + ["2021-03-29T00:00:00+02:00"]
    stamps = parse_dates(dates, "d", "f.csv")
    values, labels = insert_skipped(np.arange(9.0)[:, None], stamps, dates, 365, "d", "f.csv")
    assert labels[8] == "2021-03-28T00:00:00+01:00" and labels[9] == dates[8]  # the row before's offset and format
    assert np.isnan(values[8]).all() and values[9, 0] == 8.0
    ends = ["2020-01-31", "2020-02-29", "2020-03-31"] + [f"2020-{m:02d}-28" for m in range(5, 13)]  # April skipped
    _, labels = insert_skipped(np.zeros((11, 1)), parse_dates(ends, "m", "f.csv"), ends, 12, "m", "f.csv")
    assert labels[3] == "2020-04-30"  # the day of the row before, within the month
    untouched = np.array([[1.0], [2.0]])
    assert insert_skipped(untouched, [dt.datetime(2020, 1, 1), dt.datetime(2020, 2, 1)], ["a", "b"], 12, "m",
                          "f.csv")[0] is untouched  # nothing skipped: the same array


def test_order_ignores_blank_dates_and_names_the_rows():
    check_order([dt.datetime(2020, 1, 1), None, dt.datetime(2020, 1, 3)], ["2020-01-01", "", "2020-01-03"], "d",
                "f.csv")
    with pytest.raises(UsageError, match=r"got '2020-01-02' in row 4 after '2020-01-03' in row 2"):
        check_order([dt.datetime(2020, 1, 3), None, dt.datetime(2020, 1, 2)], ["2020-01-03", "", "2020-01-02"],
                    "d", "f.csv")


def test_a_skipped_month_keeps_the_series_day_and_month_ends_stay_month_ends():
    """Found by a review: a month was labelled by the day of the row before it alone, so a series of the 28th
    skipping March got 03-31 once 02-28 looked like a month end."""
    import calendar

    for day, want in ((28, "2021-03-28"), (31, "2021-03-31")):  # 31: each month's last day
        dates = [f"2021-{m:02d}-{min(day, calendar.monthrange(2021, m)[1]):02d}" for m in range(1, 13) if m != 3]
        stamps = parse_dates(dates, "d", "m.csv")
        _, labels = insert_skipped(np.arange(11.0)[:, None], stamps, list(dates), 12, "d", "m.csv")
        assert labels[2] == want and labels[3] == dates[2], dates


def test_no_dates_past_year_9999():
    """Found by a review: a weekly series ending in December 9999 ended forecast in an OverflowError traceback,
    after training, with its files left behind; past the calendar the outlook has no dates."""
    assert dates_after(["9999-12-06", "9999-12-13"], 3, 52) is None
    assert dates_after(["9998-12-06", "9998-12-13"], 2, 52) == ["9998-12-20", "9998-12-27"]


def test_hourly_dates_imply_a_daily_season_of_24():
    """A mutation audit: moving the hourly band of `infer_season` (0.03–0.05 days) left every test passing."""
    hours = [f"2020-01-01T{h:02d}:00" for h in range(6)]
    assert infer_season(hours) == 24
    assert infer_season([f"2020-01-01 {h:02d}:30" for h in range(0, 12, 2)]) == 1  # every 2 hours: no season


def test_two_dates_are_too_few_to_set_a_season():
    """A mutation audit: `infer_season` reading a season off two dates (one spacing) passed every test."""
    assert infer_season(["2020-01-01", "2020-01-08"]) == 1
    assert infer_season(["2020-01-01", "2020-01-08", "2020-01-15"]) == 52


def test_one_month_end_alone_does_not_make_a_month_end_series():
    """A mutation audit: `month_ends` accepting a single day (02-28 alone) passed every test; the next date
    of a lone 2021-02-28 is 03-28, not 03-31."""
    assert dates_after(["2021-02-28"], 2, 12) == ["2021-03-28", "2021-04-28"]
    assert dates_after(["2021-01-31", "2021-02-28"], 1, 12) == ["2021-03-31"]  # two month ends: it is one


def test_a_blank_date_gives_no_dates_after():
    """A mutation audit: dropping the blank-date check of `dates_after` (a crash on None) passed every test."""
    assert dates_after(["2020-01", ""], 2, 12) is None
    assert dates_after(["", "2020-01", "2020-02"], 1, 12) is None


def test_four_weekly_dates_have_13_steps_a_year_and_their_skipped_periods_become_gaps(tmp_path):
    """Found by a mutation audit: dates 28 days apart fell in the monthly band (28–31.5 days), so a four-weekly
    series got season 12 (it has 13 periods a year), and filling its gaps warned that two rows fell in one
    month and kept them as they were. A monthly series' median spacing is 30 or 31 days, even around February."""
    start = dt.date(2020, 1, 3)
    dates = [(start + dt.timedelta(days=28 * i)).isoformat() for i in range(30)]  # (30,) every fourth Friday
    assert infer_season(dates) == 13
    assert infer_season(["2021-01-31", "2021-02-28", "2021-03-31", "2021-04-30"]) == 12  # 28, 31, 30 days
    kept = dates[:10] + dates[11:]  # the 11th period skipped
    values = np.arange(29.0)[:, None]  # (29, 1)
    stamps = parse_dates(kept, "date", tmp_path / "f.csv")
    filled, labels = insert_skipped(values, stamps, kept, 13, "date", tmp_path / "f.csv")
    assert filled.shape == (30, 1) and np.isnan(filled[10, 0]) and labels == dates
    assert dates_after(dates[-2:], 2, 13) == [(start + dt.timedelta(days=28 * i)).isoformat() for i in (30, 31)]
