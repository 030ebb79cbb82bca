"""Diagnostic for docs/applications.md: the lowest test MASE a ridge AR reaches on the
default forecast split when its penalty α and lookback L are chosen on the test part itself.

It reads the test part on purpose and chooses nothing for grukit; it bounds what any
linear window model of the `grukit forecast` family can do on 1995–2001.

    .venv/bin/python docs/scripts/forecast_floor.py
"""
from __future__ import annotations

from grukit.data.timeseries import load_co2
from grukit.tasks.forecast_baselines import ridge_fits, ridge_predict
from grukit.tasks.forecast_data import errors, prepare

ALPHAS = (1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6)
LOOKBACKS = (52, 104, 156, 208, 260, 312)


def best_test_mase(transform: str, lookback: int) -> tuple[float, float]:
    """(lowest test MASE over ALPHAS, its α) for the command's ridge AR(lookback) (`ridge_fits`)."""
    p = prepare(load_co2().values, lookback=lookback, horizon=52, season=52, transform=transform)
    t_test = p.origins("test")
    target, observed = p.targets(t_test)  # (N, K)
    truth = p.unscale(t_test, target)  # (N, K)
    return min((errors(ridge_predict(p, W, t_test), truth, observed, p.mase_scale)["MASE"], alpha)
               for alpha, W in ridge_fits(p, ALPHAS))


def main() -> None:
    print("| transform | " + " | ".join(f"L = {L}" for L in LOOKBACKS) + " |")
    for transform in ("none", "log"):
        cells = [best_test_mase(transform, L) for L in LOOKBACKS]
        print(f"| {transform} | " + " | ".join(f"{m:.4f} (α={a:g})" for m, a in cells) + " |")


if __name__ == "__main__":
    main()
