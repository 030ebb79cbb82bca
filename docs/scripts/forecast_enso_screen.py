"""Screen for docs/applications.md: does an El Niño covariate help the CO2 forecast?

El Niño years raise the growth of atmospheric CO2 (the 1997–98 event is in the default test
part). The covariate: the monthly Niño 1+2 sea surface temperature (NOAA ERSST v3b, public
domain), as shipped in the statsmodels wheel (`statsmodels/datasets/elnino/elnino.csv`; give
its path, grukit does not bundle it), as an anomaly from its 1950–1979 monthly means; week d
reads the anomaly of the calendar month before d's month, known at d. The script writes
`CO2 + nino12` as a CSV for `grukit forecast --csv ... --covariates nino12`, then prints the
ridge AR(156) with and without the covariate (ARX: the covariate's 156 weeks are inputs too)
on the four backtest folds, α chosen on each fold's validation as in the command.

    .venv/bin/python docs/scripts/forecast_enso_screen.py PATH/TO/elnino.csv OUT.csv
"""
from __future__ import annotations

import csv
import datetime as dt
import sys

from grukit.data.timeseries import read_csv
from grukit.tasks.forecast_baselines import ALPHAS, ridge_fits, ridge_predict
from grukit.tasks.forecast_data import errors, prepare

CO2 = "src/grukit/data/timeseries/co2_weekly_mauna_loa.csv"


def write_combined(elnino: str, out: str) -> None:
    """date, co2, nino12: each CO2 week with the previous calendar month's Niño 1+2 anomaly."""
    sst = {}
    for row in list(csv.reader(open(elnino)))[1:]:
        for month in range(12):
            sst[(int(float(row[0])), month + 1)] = float(row[month + 1])
    normal = {m: sum(sst[(y, m)] for y in range(1950, 1980)) / 30 for m in range(1, 13)}
    with open(out, "w") as f:
        f.write("date,co2,nino12\n")
        for date, co2 in list(csv.reader(open(CO2)))[1:]:
            d = dt.date.fromisoformat(date)
            y, m = (d.year, d.month - 1) if d.month > 1 else (d.year - 1, 12)
            f.write(f"{date},{co2},{sst[(y, m)] - normal[m]:.3f}\n")


def mase(p, W, part: str) -> float:
    t = p.origins(part)
    target, observed = p.targets(t)  # (N, K)
    return errors(ridge_predict(p, W, t), p.unscale(t, target), observed, p.mase_scale)["MASE"]


def main(elnino: str, out: str) -> None:
    write_combined(elnino, out)
    for covariates in ([], ["nino12"]):
        series = read_csv(out, "co2", date_column="date", covariates=covariates)
        for back in range(4):
            p = prepare(series.values, lookback=156, horizon=52, season=52, transform="none", back=back)
            val, alpha, test = min((mase(p, W, "val"), a, mase(p, W, "test")) for a, W in ridge_fits(p, ALPHAS))
            print(f"covariates {covariates or 'none'} fold {back + 1}: α {alpha:g}, validation MASE {val:.4f}, "
                  f"test MASE {test:.4f}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
