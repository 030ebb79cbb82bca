"""grukit.tasks.folds: fold statistics and the paired lead, by hand."""
from __future__ import annotations

import numpy as np
import pytest

from grukit.tasks.folds import fold_summary, fold_table, fold_verdict


@pytest.mark.parametrize("higher_better", [True, False])
def test_lead_is_signed_so_positive_means_the_reference_is_better(higher_better):
    scores = {"ref": [0.8, 0.6, 0.7], "other": [0.7, 0.65, 0.6]}
    s = fold_summary(scores, reference="ref", higher_better=higher_better)
    delta = np.array([0.1, -0.05, 0.1]) * (1 if higher_better else -1)
    lead = s["lead"]["other"]
    assert lead["mean"] == pytest.approx(delta.mean())
    assert lead["se"] == pytest.approx(delta.std(ddof=1) / np.sqrt(3))
    assert (lead["folds_ahead"], lead["folds_behind"]) == ((2, 1) if higher_better else (1, 2))
    assert s["stats"]["other"] == pytest.approx({"mean": 0.65, "std": 0.05, "min": 0.6, "max": 0.7})
    assert "ref" not in s["lead"]


def test_table_orders_best_first_and_shows_extra_columns():
    scores = {"GRU": [0.4, 0.5], "ridge": [0.45, 0.52], "naive": [2.0, 2.2]}
    s = fold_summary(scores, reference="GRU", higher_better=False)
    text = fold_table(s, reference="GRU", higher_better=False, score="MASE", extra={"GRU": {"pooled": 1.0}})
    lines = text.splitlines()
    assert lines[0].startswith("| model | pooled | MASE: fold mean |")
    assert [line.split(" | ")[0] for line in lines[2:]] == ["| GRU", "| ridge", "| naive"]
    assert "+0.0350 ± " in lines[3] and "2 of 2" in lines[3]


def test_won_counts_every_fold_and_names_ties_and_whose_wins():
    """Before, a tied fold left the count ("1 of 2" over 3 folds) and the column did not say whose wins."""
    scores = {"GRU": [0.80, 0.70, 0.75], "majority": [0.50, 0.70, 0.50]}
    s = fold_summary(scores, reference="GRU", higher_better=True)
    text = fold_table(s, reference="GRU", higher_better=True, score="accuracy")
    assert text.splitlines()[0].endswith("| folds won by the GRU |")
    assert "| 2 of 3 (1 tied) |" in text.splitlines()[3]


def test_the_verdict_says_which_leads_may_be_noise():
    """Found by a review: "The GRU leads every baseline" of a lead of +0.0001 ± 0.0024 won on 1 fold of 3."""
    s = fold_summary({"GRU": [0.50, 0.60, 0.70], "ridge": [0.52, 0.58, 0.705], "naive": [0.90, 1.00, 1.20]},
                     reference="GRU", higher_better=False)
    verdict = fold_verdict(s["lead"], reference="GRU", score="MASE")
    assert verdict.startswith("The GRU leads every baseline in mean MASE over the folds")
    assert verdict.endswith("so it may be chance: ridge (+0.0017 ± 0.0117, ahead on 2 of 3 folds).")
    assert "naive (" not in verdict  # a lead of 0.43 ± 0.03 is not noise
    one = fold_summary({"GRU": [0.5], "ridge": [0.9]}, reference="GRU", higher_better=False)
    assert one["stats"]["GRU"]["std"] is None and one["lead"]["ridge"]["se"] is None  # no spread, not 0.0
    assert fold_verdict(one["lead"], reference="GRU", score="MASE").endswith(
        "With one fold there is no standard error: a lead may be chance.")  # found by a review: "± 0.0000"
    table = fold_table(one, reference="GRU", higher_better=False, score="MASE")
    assert "± 0.0000" not in table and "| +0.4000 |" in table and "| — |" in table  # found by a fuzz


def _lead(mean, se, ahead=2, folds=3):
    return {"mean": mean, "se": se, "folds_ahead": ahead, "folds_behind": folds - ahead, "folds": folds}


def test_a_lead_of_exactly_zero_is_not_a_lead():
    """A mutation audit: counting a mean lead of 0 as leading passed every test."""
    verdict = fold_verdict({"ridge": _lead(0.0, 0.01, ahead=1)}, reference="GRU", score="MASE")
    assert verdict.startswith("The GRU does NOT lead ridge in mean MASE")


def test_only_leads_within_two_standard_errors_are_called_chance():
    """A mutation audit: one standard error instead of two, and listing leads the reference does not have (a
    negative mean) as chance, passed every test."""
    verdict = fold_verdict({"a": _lead(0.015, 0.01), "b": _lead(0.03, 0.01), "c": _lead(-0.01, 0.01, ahead=1)},
                           reference="GRU", score="MASE")
    assert verdict.startswith("The GRU does NOT lead c in mean MASE")
    assert verdict.endswith("so it may be chance: a (+0.0150 ± 0.0100, ahead on 2 of 3 folds).")
