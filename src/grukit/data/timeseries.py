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
daily, weekly, four-weekly or monthly (`infer_season`), every row has a date and the file skips at most
10% of the steps, a date the file skips becomes a gap row, so that step t + m is always one
season after step t (`grukit.data.dates`).

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

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from grukit.data import bundled
from grukit.data.dates import STEP_SECONDS, check_order, infer_season, insert_skipped, parse_dates
from grukit.data.files import column_name, csv_table, read_decoded
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
    season: int  # seasonal period in steps (52 weekly, 365 daily, 13 four-weekly, 12 monthly, 24 hourly, else 1)
    cut_from: int | None = None  # the steps the data had before --limit cut it to these (None: not cut)

    def missing(self) -> np.ndarray:
        """(T, F) bool: True where the file had no value."""
        return np.isnan(self.values)

    def __len__(self) -> int:
        return self.values.shape[0]


MAX_ABS = 1e30  # |value| beyond which float32 forecasts, squares and sums overflow


def _comma_hint(text: str) -> str:
    """How to write a number given with one comma between digits ('3,14', '1,234'), or with commas grouping the
    thousands ('1,025.8', '12,345,678'), else ''.

    Example:
        >>> _comma_hint("1,025.8")
        ' (write 1025.8: grukit reads no thousands separators)'
    """
    if re.fullmatch(r"[+-]?\d{1,3}(,\d{3})+\.\d*|[+-]?\d{1,3}(,\d{3}){2,}", text):
        return f" (write {text.replace(',', '')}: grukit reads no thousands separators)"
    whole, comma, part = text.partition(",")
    if not comma or not part.isdigit() or not whole.lstrip("+-").isdigit():
        return ""
    if len(part) == 3:  # a decimal comma or a thousands separator: only the user knows
        return f" (write {whole}.{part} for a decimal comma, {whole}{part} for a thousands separator)"
    return f" (write {whole}.{part} for a decimal comma)"


def _parse_float(cell: str, column: str, row: int, path: Path) -> float:
    text = cell.strip()
    if text.lower() in MISSING:
        return float("nan")
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"--column/--covariates: expected numbers in column {column!r}, "
                         f"got {cell!r} in row {row} of {path}{_comma_hint(text)}") from None
    if not np.isfinite(value):
        raise UsageError(f"--column/--covariates: expected finite numbers in column {column!r}, "
                         f"got {cell!r} in row {row} of {path}")
    if abs(value) > MAX_ABS:
        raise UsageError(f"--column/--covariates: expected numbers within ±{MAX_ABS:g} in column {column!r} "
                         f"(the model computes in float32), got {cell!r} in row {row} of {path}; rescale the column")
    if "_" in text:  # float() reads "316_1" as 3161
        raise UsageError(f"--column/--covariates: expected numbers in column {column!r}, "
                         f"got {cell!r} in row {row} of {path}")
    return value


def read_csv(path: str | Path, column: str, *, date_column: str | None = None,
             covariates: Sequence[str] = (), encoding: str = "utf-8") -> Series:
    """Read `column` (the target) and `covariates` from a CSV file with a header row, in `encoding`."""
    path = Path(path)
    column, covariates = column_name(column), [column_name(c) for c in covariates]
    date_column = None if date_column is None else column_name(date_column)
    header, table = csv_table(read_decoded(path, "--csv", encoding), "--csv", path)
    if len(header) == 1:  # a blank line is the one way to write an empty cell: a gap, never a dropped step
        table = [(line, cells or [""]) for line, cells in table]
    table = [(line, cells) for line, cells in table if cells]  # with two columns or more, a blank line is no row
    while table and not any(cell.strip() for cell in table[-1][1]):  # trailing blank lines, a trailing "," (Excel)
        table.pop()
    numbers = [line for line, _ in table]  # the file's row of each step (the header is row 1)
    rows = [dict(zip(header, cells)) for _, cells in table]  # a row cut short: gaps at its end
    if not header:
        raise UsageError(f"--csv: expected a header row, got an empty file: {path}")
    for flag, name in [("--column", column), *[("--covariates", c) for c in covariates],
                       *([("--date-column", date_column)] if date_column else [])]:
        if name not in header:
            raise UsageError(f"{flag}: expected one of {header}, got {name!r}")
        if header.count(name) > 1:  # a row's dict would silently hold the last of them
            raise UsageError(f"{flag}: expected a column named once in the header, got {name!r} "
                             f"{header.count(name)} times in {path}")
    if column == date_column:
        raise UsageError(f"--date-column: expected another column than --column, got {column!r} for both")
    names = [column, *covariates]
    repeated = next((c for i, c in enumerate(covariates) if c in names[:i + 1] or c == date_column), None)
    if repeated is not None:
        raise UsageError(f"--covariates: expected columns other than each other, --column and --date-column, "
                         f"got {repeated!r} twice")
    values = np.array([[_parse_float(row.get(name) or "", name, number, path) for name in names]
                       for number, row in zip(numbers, rows)], dtype=np.float64).reshape(len(rows), len(names))
    if len(rows) == 0 or np.isnan(values[:, 0]).all():
        raise UsageError(f"--column: expected numbers in column {column!r}, got no values in {path}")
    for name, empty in zip(covariates, np.isnan(values[:, 1:]).all(axis=0)):
        if empty:
            raise UsageError(f"--covariates: expected numbers in column {name!r}, got no values in {path}")
    dates = [row.get(date_column) or "" for row in rows] if date_column else None
    stamps = parse_dates(dates, date_column, path, numbers) if dates is not None else None
    season = infer_season(stamps)
    if stamps is not None:
        check_order(stamps, dates, date_column, path, numbers)
        blank = next((i for i, s in enumerate(stamps) if s is None), None)
        if season in STEP_SECONDS and blank is None:
            values, dates = insert_skipped(values, stamps, dates, season, date_column, path, numbers)
        elif season in STEP_SECONDS:
            log.warning("%s: row %d has no date in column %r, so the steps the dates skip are not filled with "
                        "gaps; the rows are taken as consecutive steps", path, numbers[blank], date_column)
    return Series(values=values, names=names, dates=dates, source=str(path), season=season)


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
