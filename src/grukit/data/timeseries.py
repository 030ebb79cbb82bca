"""Time series from CSV files: a target column, optional covariates, explicit gaps.

A series is a matrix y (T, F): column 0 the target, columns 1.. the covariates, with
NaN where the file has no value (an empty cell, "NA", "nan"). Gaps are never dropped
silently: `fill_gaps` returns the interpolated matrix *and* the mask of where values
were missing, so a task can feed interpolated inputs but exclude missing targets from
its loss and its metrics.

    fill:  y[t] = y[a] + (t − a)/(b − a) · (y[b] − y[a])   for a gap a < t < b (linear in time);
           leading / trailing gaps take the nearest observed value.
    causal (from step c on, `fill_gaps(values, causal_from=c)`):
           y[t] = y[a], a the last observed step ≤ t, so no filled value before step t
           depends on an observation after t (a forecast origin never reads its own future);
           the steps before c are interpolated from the observations before c only.

Dates (`read_csv(..., date_column=...)`): they must increase from row to row (a file out of
order, or with a date twice, is refused, never reordered). When their spacing is hourly,
daily, weekly or monthly (`infer_season`) and every row has a date, a date the file skips
becomes a gap row, so that step t + m is always one season after step t.

Bundled sets (see DATA.md): `load_co2()` (weekly, 2,284 rows, 59 gaps) and
`load_seattle()` (daily, target temp_max, covariates precipitation, temp_min, wind).

Example:
    >>> import numpy as np
    >>> from grukit.data.timeseries import load_co2, fill_gaps
    >>> s = load_co2()
    >>> s.values.shape, int(s.missing().sum()), s.season
    ((2284, 1), 59, 52)
    >>> filled, missing = fill_gaps(s.values)
    >>> bool(np.isfinite(filled).all()), int(missing.sum())
    (True, 59)
"""
from __future__ import annotations

import csv
import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from grukit.data import bundled
from grukit.errors import UsageError

log = logging.getLogger(__name__)

MISSING = {"", "na", "nan", "null", "none", "?"}  # cells read as a gap (case-insensitive)
CO2 = "timeseries/co2_weekly_mauna_loa.csv"
SEATTLE = "timeseries/seattle_weather_daily.csv"


@dataclass
class Series:
    """A multivariate series; row t is one time step."""

    values: np.ndarray  # (T, F) float64; column 0 is the target; NaN where missing
    names: list[str]  # F column names, names[0] the target
    dates: list[str] | None  # T date strings from the date column, or None
    source: str  # where it came from (a path)
    season: int  # seasonal period in steps (52 weekly, 365 daily, 12 monthly, 24 hourly, else 1)

    def missing(self) -> np.ndarray:
        """(T, F) bool: True where the file had no value."""
        return np.isnan(self.values)

    def __len__(self) -> int:
        return self.values.shape[0]


def _parse_float(cell: str, column: str, row: int, path: Path) -> float:
    text = cell.strip()
    if text.lower() in MISSING:
        return float("nan")
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"--column/--covariates: expected numbers in column {column!r}, "
                         f"got {cell!r} in row {row} of {path}") from None
    if not np.isfinite(value):
        raise UsageError(f"--column/--covariates: expected finite numbers in column {column!r}, "
                         f"got {cell!r} in row {row} of {path}")
    return value


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
    return dt.datetime.fromisoformat(text)


def parse_dates(dates: Sequence[str], column: str, path: Path) -> list[dt.datetime | None]:
    """The ISO dates of column `column` (`to_datetime`; blank cells are None); UsageError naming
    --date-column and the first row (the header is row 1) whose cell is not one."""
    stamps, zoned = [], None
    for i, cell in enumerate(dates):
        try:
            stamp = to_datetime(cell)
        except ValueError:
            raise UsageError(f"--date-column: expected ISO dates such as 2020-01-31 or 2020-01 in column "
                             f"{column!r}, got {cell!r} in row {i + 2} of {path}") from None
        if stamp is not None:
            zoned = stamp.tzinfo is not None if zoned is None else zoned
            if (stamp.tzinfo is not None) != zoned:
                raise UsageError(f"--date-column: expected every date in column {column!r} "
                                 f"{'with' if zoned else 'without'} a time zone, got {cell!r} in row {i + 2} "
                                 f"of {path}")
        stamps.append(stamp)
    return stamps


def infer_season(dates: Sequence[str | dt.datetime | None] | None) -> int:
    """Seasonal period from the median spacing of ISO dates: 52 weekly, 365 daily, 12 monthly, 24 hourly, else 1.

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
    for lo, hi, season in ((0.03, 0.05, 24), (0.9, 1.1, 365), (6.5, 7.5, 52), (28, 31.5, 12)):
        if lo <= days <= hi:
            return season
    return 1


def read_csv(path: str | Path, column: str, *, date_column: str | None = None,
             covariates: Sequence[str] = ()) -> Series:
    """Read `column` (the target) and `covariates` from a CSV file with a header row."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"--csv: file not found: {path}")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # a leading byte-order mark is not text
            reader = csv.DictReader(f)
            header = list(reader.fieldnames or [])
            rows = list(reader)
    except UnicodeDecodeError as err:
        raise UsageError(f"--csv: expected UTF-8 text, got an invalid byte at offset {err.start} of {path}") from None
    except csv.Error as err:
        raise UsageError(f"--csv: not a readable CSV file: {path} ({err})") from None
    if not header:
        raise UsageError(f"--csv: expected a header row, got an empty file: {path}")
    for flag, name in [("--column", column), *[("--covariates", c) for c in covariates],
                       *([("--date-column", date_column)] if date_column else [])]:
        if name not in header:
            raise UsageError(f"{flag}: expected one of {header}, got {name!r}")
    names = [column, *covariates]
    values = np.array([[_parse_float(row.get(name) or "", name, i + 2, path) for name in names]
                       for i, row in enumerate(rows)], dtype=np.float64).reshape(len(rows), len(names))
    if len(rows) == 0 or np.isnan(values[:, 0]).all():
        raise UsageError(f"--column: expected numbers in column {column!r}, got no values in {path}")
    for name, empty in zip(covariates, np.isnan(values[:, 1:]).all(axis=0)):
        if empty:
            raise UsageError(f"--covariates: expected numbers in column {name!r}, got no values in {path}")
    dates = [row.get(date_column) or "" for row in rows] if date_column else None
    stamps = parse_dates(dates, date_column, path) if dates is not None else None
    season = infer_season(stamps)
    if stamps is not None:
        _check_order(stamps, dates, date_column, path)
        if season in STEP_SECONDS and all(s is not None for s in stamps):
            values, dates = _insert_skipped(values, stamps, dates, season, date_column, path)
    return Series(values=values, names=names, dates=dates, source=str(path), season=season)


STEP_SECONDS = {24: 3600.0, 365: 86400.0, 52: 7 * 86400.0, 12: None}  # season -> one step (12: a calendar month)
STEP_NAMES = {24: "hour", 365: "day", 52: "week", 12: "month"}


def _check_order(stamps: Sequence[dt.datetime | None], dates: Sequence[str], column: str, path: Path) -> None:
    """UsageError naming --date-column unless the dated rows strictly increase (blank dates are skipped)."""
    last = None  # (row, stamp) of the previous dated row
    for i, stamp in enumerate(stamps):
        if stamp is None:
            continue
        if last is not None and stamp <= last[1]:
            a, b = dates[last[0]].strip(), dates[i].strip()
            if stamp == last[1]:
                raise UsageError(f"--date-column: expected each date once in column {column!r}, got {b!r} in rows "
                                 f"{last[0] + 2} and {i + 2} of {path}")
            raise UsageError(f"--date-column: expected increasing dates in column {column!r}, got {b!r} in row "
                             f"{i + 2} after {a!r} in row {last[0] + 2} of {path} (sort the file by date)")
        last = (i, stamp)


def _step_numbers(stamps: Sequence[dt.datetime], season: int) -> np.ndarray:
    """(T,) each date's step count from the first date, in the unit of `season` (nearest whole step)."""
    if STEP_SECONDS[season] is None:
        return np.array([12 * (s.year - stamps[0].year) + s.month - stamps[0].month for s in stamps])
    unit = STEP_SECONDS[season]
    return np.array([round((s - stamps[0]).total_seconds() / unit) for s in stamps])


def _insert_skipped(values: np.ndarray, stamps: Sequence[dt.datetime], dates: list[str], season: int,
                    column: str, path: Path) -> tuple[np.ndarray, list[str]]:
    """(values, dates) with a NaN row (a gap) for every step the dates skip."""
    k = _step_numbers(stamps, season)  # (T,)
    unit = STEP_NAMES[season]
    same = np.flatnonzero(np.diff(k) == 0)  # (S,)
    if len(same):
        i = int(same[0])
        raise UsageError(f"--date-column: expected one row per {unit} in column {column!r}, got "
                         f"{dates[i].strip()!r} (row {i + 2}) and {dates[i + 1].strip()!r} (row {i + 3}) in the "
                         f"same {unit} of {path}")
    steps = int(k[-1]) + 1
    if steps == len(k):
        return values, dates
    if steps > 2 * len(k):
        raise UsageError(f"--date-column: expected dates {unit} by {unit}, got {len(k)} rows spread over {steps} "
                         f"{unit}s (more skipped than present) in column {column!r} of {path}")
    full = np.full((steps, values.shape[1]), np.nan)  # (steps, F)
    full[k] = values
    labels = [""] * steps
    for j, d in zip(k, dates):
        labels[j] = d
    for j in np.setdiff1d(np.arange(steps), k):
        labels[j] = _step_label(stamps[0], int(j), season)
    log.info("%s: %d %ss the dates skip are gaps (rows with no value)", path, steps - len(k), unit)
    return full, labels


def _step_label(first: dt.datetime, j: int, season: int) -> str:
    """The date of step j (for a row the file skips)."""
    if STEP_SECONDS[season] is None:
        month = first.month - 1 + j
        return f"{first.year + month // 12:04d}-{month % 12 + 1:02d}"
    stamp = first + dt.timedelta(seconds=j * STEP_SECONDS[season])
    return stamp.date().isoformat() if stamp.time() == dt.time() and stamp.tzinfo is None else stamp.isoformat(" ")


def load_co2() -> Series:
    """Weekly atmospheric CO2 at Mauna Loa (ppm), 1958-03-29 .. 2001-12-29, 59 gaps."""
    return read_csv(bundled(CO2), "co2", date_column="date")


SEATTLE_COVARIATES = ("precipitation", "temp_min", "wind")  # the numeric columns besides the target


def load_seattle() -> Series:
    """Daily Seattle weather 2012–2015: target temp_max (°C), covariates precipitation, temp_min, wind."""
    return read_csv(bundled(SEATTLE), "temp_max", date_column="date", covariates=SEATTLE_COVARIATES)


def fill_gaps(values: np.ndarray, causal_from: int | None = None, names: Sequence[str] | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """Fill gaps per column; returns (filled (T, F), missing (T, F) bool).

    Steps before `causal_from` (all steps when None): linear interpolation in time between
    the observed values before `causal_from`, the ends taking the nearest one. Steps from
    `causal_from` on: the last observed value carried forward, so a filled value there
    never depends on a later observation. Each column needs an observed value before
    `causal_from` (the training part, for `forecast_data.prepare`), else a UsageError naming the
    column (`names`, when given).
    """
    values = np.asarray(values, dtype=np.float64)
    missing = np.isnan(values)  # (T, F)
    filled = values.copy()
    T = values.shape[0]
    c = T if causal_from is None else causal_from
    t = np.arange(T)  # (T,)
    for f in range(values.shape[1]):
        seen = ~missing[:c, f]  # (c,)
        if not seen.any():
            flag = "--column" if f == 0 else "--covariates"
            where = "at all" if causal_from is None else "in the training part"
            column = repr(names[f]) if names is not None else str(f)
            raise UsageError(f"{flag}: column {column} has no values {where}")
        filled[:c, f] = np.interp(t[:c], t[:c][seen], values[:c][seen, f])  # ends: nearest observed value
        if c < T:
            last = np.maximum.accumulate(np.where(missing[:, f], -1, t))  # (T,) last observed step ≤ t
            filled[c:, f] = filled[last[c:], f]  # (T − c,) carried forward
    return filled, missing
