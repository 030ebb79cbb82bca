"""Scores over several folds (cross-validation, backtests): per-model statistics and a paired lead.

    stats(model)  = mean, std (ddof 1), min, max of its K fold scores s_{model, f}
    Δ_f           = ±(s_{reference, f} − s_{model, f})   signed so that Δ > 0 means the reference is better
    lead(model)   = mean_f Δ_f ± std_f(Δ_f)/√K, and on how many folds Δ_f > 0 and < 0

Pairing by fold removes what all models share on a fold (an easy test part, a calm year),
so the lead's standard error is far smaller than that of either score.

Example:
    >>> from grukit.tasks.folds import fold_summary
    >>> s = fold_summary({"GRU": [0.4, 0.5], "ridge": [0.45, 0.52]}, reference="GRU", higher_better=False)
    >>> round(s["lead"]["ridge"]["mean"], 3), s["lead"]["ridge"]["folds_ahead"], round(s["stats"]["GRU"]["mean"], 2)
    (0.035, 2, 0.45)
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from grukit.report import table


def fold_summary(scores: dict[str, Sequence[float]], *, reference: str, higher_better: bool) -> dict:
    """{"stats": {model: {mean, std, min, max}}, "lead": {model: {mean, se, folds_ahead, folds_behind, folds}}};
    std and se are None for one fold, which has no spread."""
    s = {name: np.asarray(v, dtype=float) for name, v in scores.items()}  # name -> (K,)
    K = len(s[reference])
    stats = {name: {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if K > 1 else None,
                    "min": float(v.min()), "max": float(v.max())} for name, v in s.items()}
    sign = 1.0 if higher_better else -1.0
    lead = {}
    for name, v in s.items():
        if name == reference:
            continue
        delta = sign * (s[reference] - v)  # (K,) > 0: the reference is better on that fold
        lead[name] = {"mean": float(delta.mean()), "se": float(delta.std(ddof=1) / np.sqrt(K)) if K > 1 else None,
                      "folds_ahead": int((delta > 0).sum()), "folds_behind": int((delta < 0).sum()), "folds": K}
    return {"stats": stats, "lead": lead}


def fold_verdict(lead: dict, *, reference: str, score: str) -> str:
    """Whether `reference` leads every other model in mean `score`, how the lead is paired, and which leads are
    within two standard errors (so may be noise).

    Example:
        >>> fold_verdict({"ridge": {"mean": 1e-4, "se": 2.4e-3, "folds_ahead": 1, "folds": 3}},
        ...              reference="GRU", score="MASE").split(" Its lead ")[1]
        'is within two standard errors, so it may be chance: ridge (+0.0001 ± 0.0024, ahead on 1 of 3 folds).'
    """
    behind = [name for name, d in lead.items() if d["mean"] <= 0]
    leads = "leads every baseline" if not behind else "does NOT lead " + ", ".join(behind)
    verdict = (f"The {reference} {leads} in mean {score} over the folds; the lead is paired by fold, its standard "
               "error from the per-fold differences.")
    if any(d["folds"] < 2 for d in lead.values()):  # one fold: no spread to judge a lead by
        return verdict + " With one fold there is no standard error: a lead may be chance."
    close = [f"{name} ({d['mean']:+.4f} ± {d['se']:.4f}, ahead on {d['folds_ahead']} of {d['folds']} folds)"
             for name, d in lead.items() if 0 < d["mean"] <= 2 * d["se"]]
    if close:
        verdict += f" Its lead is within two standard errors, so it may be chance: {', '.join(close)}."
    return verdict


def fold_table(summary: dict, *, reference: str, higher_better: bool, score: str,
               extra: dict[str, dict[str, float]] | None = None) -> str:
    """A markdown table, best model first: [extra columns,] fold mean, std, min, max, the reference's lead."""
    stats, lead = summary["stats"], summary["lead"]
    extra = extra or {}
    extra_columns = sorted({c for cols in extra.values() for c in cols})
    key = (lambda n: -stats[n]["mean"]) if higher_better else (lambda n: stats[n]["mean"])
    one = any(d["folds"] < 2 for d in lead.values())  # one fold: no spread, so no std and no SE
    rows = []
    for name in sorted(stats, key=key):
        st = stats[name]
        row = {"model": name, **extra.get(name, {}), f"{score}: fold mean": st["mean"],
               "fold std": "—" if one else st["std"], "min": st["min"], "max": st["max"]}
        if name != reference:
            d = lead[name]
            row[f"{reference} lead (mean ± SE)"] = f"{d['mean']:+.4f}" + ("" if one else f" ± {d['se']:.4f}")
            ties = d["folds"] - d["folds_ahead"] - d["folds_behind"]
            row[f"folds won by the {reference}"] = f"{d['folds_ahead']} of {d['folds']}" + (f" ({ties} tied)" if ties
                                                                                          else "")
        rows.append(row)
    columns = ["model", *extra_columns, f"{score}: fold mean", "fold std", "min", "max",
               f"{reference} lead (mean ± SE)", f"folds won by the {reference}"]
    return table(rows, columns)
