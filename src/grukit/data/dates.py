"""Dates of a time series file: ISO parsing, the season they imply, their order, the steps they skip.

A file's dates set its step and season from their median spacing (`infer_season`):
hourly → m = 24, daily → 365, weekly → 52, four-weekly (28 days) → 13, monthly → 12, anything
else → 1. With a known step, row i sits at step

    k_i = round((t_i − t_0) / step)        (hours, days, weeks or 4-week periods)
    k_i = 12·(year_i − year_0) + month_i − month_0        (months)

and `insert_skipped` puts a gap row (NaN) at every step no row holds, so that step t + m is
always one season after step t, when the dates are regular with a few holes (at most 10%
of the steps; else the rows stay consecutive steps, with a warning). Dates must increase
(`check_order`); none is reordered.

Example:
    >>> import numpy as np
    >>> from grukit.data.dates import infer_season, insert_skipped, parse_dates
    >>> dates = [f"2020-{m:02d}" for m in range(1, 13) if m != 4]   # April skipped
    >>> stamps = parse_dates(dates, "month", "m.csv")
    >>> infer_season(stamps)
    12
    >>> values, labels = insert_skipped(np.arange(11.0)[:, None], stamps, dates, 12, "month", "m.csv")
    >>> values[:6, 0].tolist(), labels[:6]
    ([0.0, 1.0, 2.0, nan, 3.0, 4.0], ['2020-01', '2020-02', '2020-03', '2020-04', '2020-05', '2020-06'])
"""
from __future__ import annotations

import calendar
import datetime as dt
import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from grukit.errors import UsageError

log = logging.getLogger(__name__)

def to_datetime(cell: str) -> dt.datetime | None:
    """An ISO date or time (1958, 1958-03, 1958-03-29, 1958-03-29 12:00, ...); None for a blank cell.

    Raises ValueError for anything else."""
    text = cell.strip()
    if not text:
        return None
    if len(text) == 4 and text.isdigit():  # a year
        text += "-01-01"
    elif len(text) == 7 and text[4] == "-" and (text[:4] + text[5:]).isdigit():  # a month
        text += "-01"
    elif text[-1:] in ("Z", "z"):  # UTC; Python 3.10's fromisoformat reads "+00:00" only
        text = text[:-1] + "+00:00"
    return dt.datetime.fromisoformat(text)


def _file_rows(dates: Sequence[str], rows: Sequence[int] | None) -> Sequence[int]:
    """The file's row of each date: `rows`, or i + 2 when not given (the header is row 1, no blank lines)."""
    return range(2, len(dates) + 2) if rows is None else rows


def parse_dates(dates: Sequence[str], column: str, path: Path, rows: Sequence[int] | None = None
                ) -> list[dt.datetime | None]:
    """The ISO dates of column `column` (`to_datetime`; blank cells are None); UsageError naming
    --date-column and the first row whose cell is not one (`rows`: the file's row of each date; default
    i + 2, the header being row 1)."""
    stamps, zoned = [], None
    row = _file_rows(dates, rows)
    for i, cell in enumerate(dates):
        try:
            stamp = to_datetime(cell)
        except ValueError:
            raise UsageError(f"--date-column: expected ISO dates such as 2020-01-31 or 2020-01 in column "
                             f"{column!r}, got {cell!r} in row {row[i]} of {path}") from None
        if stamp is not None:
            zoned = stamp.tzinfo is not None if zoned is None else zoned
            if (stamp.tzinfo is not None) != zoned:
                raise UsageError(f"--date-column: expected every date in column {column!r} "
                                 f"{'with' if zoned else 'without'} a time zone, got {cell!r} in row {row[i]} "
                                 f"of {path}")
        stamps.append(stamp)
    return stamps


def infer_season(dates: Sequence[str | dt.datetime | None] | None) -> int:
    """Seasonal period from the median spacing of ISO dates: 24 hourly, 365 daily, 52 weekly, 13 four-weekly
    (28 days: 13 periods a year, not 12), 12 monthly, else 1. A monthly series' median spacing is 30 or 31 days.

    `dates` are strings (`to_datetime`; ones that are not dates give 1) or parsed datetimes;
    blank ones are skipped."""
    try:
        stamps = [to_datetime(d) if isinstance(d, str) else d for d in (dates or [])[:200]]
    except ValueError:
        return 1
    stamps = [d for d in stamps if d is not None]
    if len(stamps) < 3:
        return 1
    gaps = sorted((b - a).total_seconds() for a, b in zip(stamps, stamps[1:]))
    days = gaps[len(gaps) // 2] / 86400
    for lo, hi, season in ((0.03, 0.05, 24), (0.9, 1.1, 365), (6.5, 7.5, 52), (27.5, 28.5, 13), (29, 31.5, 12)):
        if lo <= days <= hi:
            return season
    return 1


# season -> one step in seconds (12: a calendar month, of no fixed length)
STEP_SECONDS = {24: 3600.0, 365: 86400.0, 52: 7 * 86400.0, 13: 28 * 86400.0, 12: None}
STEP_NAMES = {24: "hour", 365: "day", 52: "week", 13: "4-week period", 12: "month"}


def check_order(stamps: Sequence[dt.datetime | None], dates: Sequence[str], column: str, path: Path,
                rows: Sequence[int] | None = None) -> None:
    """UsageError naming --date-column unless the dated rows strictly increase (blank dates are skipped);
    `rows` as for `parse_dates`."""
    row = _file_rows(dates, rows)
    last = None  # (row, stamp) of the previous dated row
    for i, stamp in enumerate(stamps):
        if stamp is None:
            continue
        if last is not None and stamp <= last[1]:
            a, b = dates[last[0]].strip(), dates[i].strip()
            if stamp == last[1]:
                raise UsageError(f"--date-column: expected each date once in column {column!r}, got {b!r} in rows "
                                 f"{row[last[0]]} and {row[i]} of {path} (local times around a clock change need "
                                 f"their UTC offsets)")
            raise UsageError(f"--date-column: expected increasing dates in column {column!r}, got {b!r} in row "
                             f"{row[i]} after {a!r} in row {row[last[0]]} of {path} (sort the file by date)")
        last = (i, stamp)


def _step_numbers(stamps: Sequence[dt.datetime], season: int) -> np.ndarray:
    """(T,) each date's step count from the first date, in the unit of `season` (nearest whole step)."""
    if STEP_SECONDS[season] is None:
        return np.array([12 * (s.year - stamps[0].year) + s.month - stamps[0].month for s in stamps])
    unit = STEP_SECONDS[season]
    return np.array([round((s - stamps[0]).total_seconds() / unit) for s in stamps])


MAX_SKIPPED = 0.1  # gap rows are inserted only when the dates skip at most this fraction of the steps


def insert_skipped(values: np.ndarray, stamps: Sequence[dt.datetime], dates: list[str], season: int,
                   column: str, path: Path, rows: Sequence[int] | None = None) -> tuple[np.ndarray, list[str]]:
    """(values, dates) with a NaN row (a gap) for every step the dates skip; `rows` as for `parse_dates`.

    Only where the dates are regular with a few holes: when two rows fall in the same step
    (local times around a clock change, irregular dates) or more than `MAX_SKIPPED` of the
    steps would be gaps (weekday-only "daily" data, a long hole), the rows are kept as
    consecutive steps and a warning says so."""
    k = _step_numbers(stamps, season)  # (T,) step of each row
    unit = STEP_NAMES[season]
    steps = int(k[-1]) + 1
    if steps == len(k) and (np.diff(k) == 1).all():
        return values, dates
    same = np.flatnonzero(np.diff(k) == 0)  # (S,) rows sharing a step with the next
    if len(same) or steps - len(k) > MAX_SKIPPED * steps:
        row = _file_rows(dates, rows)
        why = (f"rows {row[int(same[0])]} and {row[int(same[0]) + 1]} fall in the same {unit}" if len(same) else
               f"{steps - len(k)} of {steps} {unit}s would be gaps")
        log.warning("%s: the dates of column %r do not step one %s at a time with a few holes (%s); their rows are "
                    "kept as consecutive steps", path, column, unit, why)
        return values, dates
    full = np.full((steps, values.shape[1]), np.nan)  # (steps, F)
    full[k] = values  # (T, F) into their steps of (steps, F)
    labels = [""] * steps  # steps date strings
    for j, d in zip(k, dates):
        labels[j] = d
    ends = season == 12 and month_ends(stamps)
    for j in np.setdiff1d(np.arange(steps), k):  # the steps the file skips
        row = int(np.searchsorted(k, j)) - 1  # the file row just before step j
        labels[j] = _step_label(stamps[row], dates[row].strip(), int(j - k[row]), season, ends)
    log.info("%s: %d %ss the dates skip are gaps (rows with no value)", path, steps - len(k), unit)
    return full, labels


def month_ends(stamps: Sequence[dt.datetime | None]) -> bool:
    """True when a monthly series is dated on month ends: every date is its month's last day, and they are
    not all the same day (a series of the 28th or the 30th is not; 02-28 alone says nothing)."""
    dated = [s for s in stamps if s is not None]
    return (len({s.day for s in dated}) > 1
            and all(s.day == calendar.monthrange(s.year, s.month)[1] for s in dated))


def _step_label(before: dt.datetime, text: str, j: int, season: int, month_end: bool = False) -> str:
    """The date j steps after the row `before` (written `text`), in that row's format: for a row the file skips
    (`month_end`: the series is dated on month ends, so 04-30 goes on to 05-31)."""
    if STEP_SECONDS[season] is None:
        month = before.month - 1 + j
        year, month = before.year + month // 12, month % 12 + 1
        if len(text) == 7:  # YYYY-MM
            return f"{year:04d}-{month:02d}"
        last_day = calendar.monthrange(year, month)[1]
        stamp = before.replace(year=year, month=month, day=last_day if month_end else min(before.day, last_day))
    else:
        stamp = before + dt.timedelta(seconds=j * STEP_SECONDS[season])
    if len(text) <= 10:  # a date without a time
        return stamp.date().isoformat()
    clock = text[11:].split("+")[0].split("Z")[0].split("-")[0]  # the time of day, without its UTC offset
    spec = "minutes" if clock.count(":") == 1 else "auto" if "." in clock else "seconds"
    return stamp.isoformat("T" if "T" in text else " ", timespec=spec)


def dates_after(dates: Sequence[str], steps: int, season: int) -> list[str] | None:
    """The dates of the `steps` steps after the last of `dates`, in its format, when the dates step by
    `season`'s unit (`infer_season`) one step a row, as `insert_skipped` leaves a regular file; None
    otherwise (irregular dates, weekday-only "daily" rows, a blank or unreadable date, no fixed step, or steps
    past year 9999).

    Example:
        >>> dates_after(["2001-12-22", "2001-12-29"], 2, 52), dates_after(["2020-10", "2020-11"], 3, 12)
        (['2002-01-05', '2002-01-12'], ['2020-12', '2021-01', '2021-02'])
        >>> dates_after(["2020-03-31", "2020-04-30"], 2, 12), dates_after(["2021-01-28", "2021-02-28"], 1, 12)
        (['2020-05-31', '2020-06-30'], ['2021-03-28'])
        >>> dates_after(["2024-10-03", "2024-10-04", "2024-10-07"], 1, 365) is None  # weekdays only
        True
    """
    if season not in STEP_SECONDS or not dates:
        return None
    try:
        stamps = [to_datetime(d) for d in dates]
    except ValueError:  # not ISO dates
        return None
    if any(s is None for s in stamps) or not (np.diff(_step_numbers(stamps, season)) == 1).all():
        return None
    ends = season == 12 and month_ends(stamps)
    try:
        return [_step_label(stamps[-1], dates[-1].strip(), j, season, ends) for j in range(1, steps + 1)]
    except (OverflowError, ValueError):  # past year 9999, where Python's calendar ends
        return None
