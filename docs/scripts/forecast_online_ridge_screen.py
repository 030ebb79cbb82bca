"""Screen for docs/applications.md (not adopted): an online ridge AR(156) with exponential forgetting
against the command's ridge AR(156), which is fitted once on the training windows and kept fixed, on weekly
Mauna Loa CO2 (L = 156, K = 52, m = 52).

The online ridge is refitted at the rolling origins of the validation and test parts. A refit at origin r
uses, for step k, every window o (o = L−1 ..) whose step-k target lies at or before r (o + k <= r: only
values observed by time r, training, validation and test alike), weighted λ^((r−o)/52) (λ per year; 1.0 is
the expanding window). Everything else is the command's ridge (`ridge_fits`): the same features
(`_ar_features`, prepare's train-only scaling), one linear model per k, a target k that was a gap is never a
fit target (its window drops out of step k's fit), the intercept unpenalised, α from `ALPHAS`. The normal
equations come from a recursive weighted Gram, H(s) = λ^(1/52) H(s−1) + x_s x_sᵀ, so that step k's Gram at
r is λ^(k/52) H(r−k) less the gap-target windows. To keep the run short the ridge is refitted every
`EVERY` = 4 origins (the first origin of each part, then every 4th); origins in between forecast with the
latest refit at or before them (no look-ahead).

Protocol: (λ, α) is chosen on validation MASE, (a) on the default split's validation alone (back = 0) and
(b) on the mean validation MASE over the four backtest folds (back = 0..3); the chosen setting's test MASE on
the default split and the mean test over folds 2–4 (back = 1..3) are printed. For reference only: every
(λ, α) of the grid on back = 0, and the command's fixed ridge (`ridge_ar`) on the same folds (back = 0,
transform "none": validation 0.3634, test 0.4172; "log": test 0.4132). Transforms "none" and "log".

    .venv/bin/python docs/scripts/forecast_online_ridge_screen.py    (573 s on the project's machine)
    (--every 1: refit at every origin, about 4× the run time; --folds 1: back = 0 only, no (b))
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from grukit.data.timeseries import load_co2
from grukit.tasks.forecast_baselines import ALPHAS, _ar_features, ridge_ar, ridge_fits, ridge_predict
from grukit.tasks.forecast_data import Prepared, errors, prepare

LOOKBACK, HORIZON, SEASON = 156, 52, 52
LAMBDAS = (1.0, 0.9, 0.8, 0.7, 0.5)  # forgetting per year
EVERY = 4  # refit every EVERY origins
PARTS = ("val", "test")
FOLDS = 4  # backtest folds


def windows(p: Prepared) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(origins (N,), X (N, P), Y (N, K), M (N, K)) of every window of the series: features as the command's."""
    o = np.arange(p.lookback - 1, len(p.y) - p.horizon)  # (N,)
    X = _ar_features(p, o)  # (N, P)
    Y, M = p.targets(o)
    return o, X, Y.astype(np.float64), M.astype(np.float64)


def fit(X: np.ndarray, Y: np.ndarray, M: np.ndarray, o: np.ndarray, H: dict[int, np.ndarray], d: float,
        r: int, cutoff: np.ndarray) -> np.ndarray:
    """(A, P, K) ridge weights for every α at refit origin r: step k fits windows o <= cutoff[k] weighted
    d^(r−o), those whose target k was a gap left out; H[s] = Σ_{o<=s} d^(s−o) x_o x_oᵀ."""
    K, P = Y.shape[1], X.shape[1]
    use = o[:, None] <= cutoff[None, :]  # (N, K)
    w = d ** (r - o).astype(np.float64)  # (N,)
    R = X.T @ (use * M * Y * w[:, None])  # (P, K)
    G = np.empty((K, P, P))
    for k in range(K):
        G[k] = d ** (r - cutoff[k]) * H[int(cutoff[k])]
        gone = use[:, k] & (M[:, k] == 0)  # (N,) windows whose target k was a gap
        if gone.any():
            Xg = X[gone] * np.sqrt(w[gone])[:, None]
            G[k] -= Xg.T @ Xg
    eye = np.eye(P)
    eye[-1, -1] = 0.0  # the intercept is not penalised
    A = G[None] + np.asarray(ALPHAS)[:, None, None, None] * eye  # (A, K, P, P)
    B = np.broadcast_to(R.T[None, :, :, None], (len(ALPHAS), K, P, 1))
    try:
        sol = np.linalg.solve(A, B)[..., 0]  # (A, K, P)
    except np.linalg.LinAlgError:
        sol = np.stack([np.stack([np.linalg.lstsq(A[a, k], B[a, k], rcond=None)[0][:, 0] for k in range(K)])
                        for a in range(len(ALPHAS))])
    return sol.transpose(0, 2, 1)  # (A, P, K)


def grams(X: np.ndarray, o: np.ndarray, d: float, keep: set[int]) -> dict[int, np.ndarray]:
    """{s: H(s)} for s in keep, H(s) = Σ_{o<=s} d^(s−o) x_o x_oᵀ (recursively)."""
    H, out = np.zeros((X.shape[1], X.shape[1])), {}
    for i, s in enumerate(o):
        if s > max(keep):
            break
        H = d * H + np.outer(X[i], X[i])
        if s in keep:
            out[int(s)] = H.copy()
    return out


def check(p: Prepared) -> float:
    """Largest |difference| between this machinery at λ = 1 restricted to the training windows and `ridge_fits`."""
    o, X, Y, M = windows(p)
    last = p.origins("train")[-1]
    H = grams(X, o, 1.0, {int(last)})
    W = fit(X, Y, M, o, H, 1.0, int(last), np.full(p.horizon, last))
    ref = np.stack([w for _, w in ridge_fits(p, ALPHAS)])  # (A, P, K)
    return float(np.abs(W - ref).max() / np.abs(ref).max())


def online_scores(p: Prepared, every: int) -> dict[tuple[float, float], dict[str, float]]:
    """{(λ, α): {part: MASE}} of the online ridge on p's validation and test origins."""
    o, X, Y, M = windows(p)
    K = p.horizon
    steps = np.arange(1, K + 1)
    origins = {part: p.origins(part) for part in PARTS}
    refits = np.concatenate([origins[part][::every] for part in PARTS])  # sorted: val before test
    keep = {int(r - k) for r in refits for k in steps}
    truth = {part: p.unscale(t, p.targets(t)[0]) for part, t in origins.items()}
    observed = {part: p.targets(t)[1] for part, t in origins.items()}
    rows = {part: np.searchsorted(o, t) for part, t in origins.items()}  # the origins' rows of X
    which = {part: np.searchsorted(refits, t, side="right") - 1 for part, t in origins.items()}  # latest refit
    out = {}
    for lam in LAMBDAS:
        d = lam ** (1.0 / 52)
        H = grams(X, o, d, keep)
        W = np.stack([fit(X, Y, M, o, H, d, int(r), r - steps) for r in refits])  # (R, A, P, K)
        del H
        for part, t in origins.items():
            Xt = X[rows[part]]  # (N, P)
            for a, alpha in enumerate(ALPHAS):
                scaled = np.einsum("np,npk->nk", Xt, W[which[part], a])  # (N, K)
                mase = errors(p.unscale(t, scaled), truth[part], observed[part], p.mase_scale)["MASE"]
                out.setdefault((lam, alpha), {})[part] = mase
    return out


def fixed_scores(p: Prepared) -> dict[str, float]:
    """{part: MASE} of the command's ridge (`ridge_ar`), fitted once on the training windows."""
    W, _ = ridge_ar(p)
    res = {}
    for part in PARTS:
        t = p.origins(part)
        target, observed = p.targets(t)
        res[part] = errors(ridge_predict(p, W, t), p.unscale(t, target), observed, p.mase_scale)["MASE"]
    return res


def mean(xs: list[float]) -> float:
    return float(np.mean(xs)) if len(xs) else float("nan")


def report(online: dict, fixed: dict, folds: range) -> None:
    """Print the fixed ridge, the online ridge chosen by each validation rule, and the whole grid (back = 0)."""
    f, later = fixed, [b for b in folds if b]
    print(f"  fixed ridge (ridge_ar): back=0 validation {f[0]['val']:.4f}, test {f[0]['test']:.4f}; "
          f"validation mean of {len(folds)} folds {mean([f[b]['val'] for b in folds]):.4f}; "
          f"test folds 2–4 {mean([f[b]['test'] for b in later]):.4f}")
    grid = online[0].keys()
    rules = [("(a) back=0 validation", lambda g: online[0][g]["val"])]
    if len(folds) > 1:
        rules.append((f"(b) mean validation of {len(folds)} folds",
                      lambda g: mean([online[b][g]["val"] for b in folds])))
    for name, key in rules:
        g = min(grid, key=key)
        print(f"  chosen on {name}: λ = {g[0]}, α = {g[1]:g} (validation {key(g):.4f}) -> test back=0 "
              f"{online[0][g]['test']:.4f}, test folds 2–4 {mean([online[b][g]['test'] for b in later]):.4f}")
    print(f"  grid (reference only):    back=0: λ     α        val     test   | "
          f"val mean {len(folds)} folds  test folds 2–4")
    for g in sorted(grid):
        print(f"  {'':33}{g[0]:<5} {g[1]:<8g} {online[0][g]['val']:.4f}  {online[0][g]['test']:.4f}  | "
              f"{mean([online[b][g]['val'] for b in folds]):.4f}            "
              f"{mean([online[b][g]['test'] for b in later]):.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=EVERY, help="refit every this many origins (default 4)")
    parser.add_argument("--folds", type=int, default=FOLDS, help="backtest folds (default 4)")
    args = parser.parse_args()
    folds = range(args.folds)
    values = load_co2().values
    start = time.time()
    p0 = prepare(values, lookback=LOOKBACK, horizon=HORIZON, season=SEASON)
    print(f"check: λ = 1 on the training windows vs ridge_fits, max relative |ΔW| = {check(p0):.2e}")
    print(f"online ridge AR({LOOKBACK}), K = {HORIZON}, refit every {args.every} origins; "
          f"λ ∈ {LAMBDAS}, α ∈ {ALPHAS}")
    for transform in ("none", "log"):
        online, fixed = {}, {}
        for back in folds:
            p = prepare(values, lookback=LOOKBACK, horizon=HORIZON, season=SEASON, back=back, transform=transform)
            online[back], fixed[back] = online_scores(p, args.every), fixed_scores(p)
        print(f"\ntransform {transform}  ({time.time() - start:.0f} s)")
        report(online, fixed, folds)
    print(f"\ntotal {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
