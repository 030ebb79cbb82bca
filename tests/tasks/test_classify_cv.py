"""grukit classify --folds K: the folds, the aggregate metrics, the files, bad values."""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from PIL import Image

from grukit import cli
from grukit.plots import SIZE
from grukit.tasks import classify
from grukit.tasks.classify import split
from grukit.tasks.classify_cv import _report, summarise


def test_folds_test_every_index_once_and_each_split_is_disjoint_and_complete():
    K, n = 10, 1003
    tests = []
    for f in range(K):
        train, val, test = split(n, seed=5, folds=K, fold=f)
        assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(n))
        assert len(test) in (100, 101) and len(val) == round(0.1 * (n - len(test)))
        assert all(np.array_equal(x, y) for x, y in zip((train, val, test), split(n, seed=5, folds=K, fold=f)))
        tests.append(test)
    assert sorted(np.concatenate(tests).tolist()) == list(range(n))  # each index tested exactly once
    vals = [set(split(n, seed=5, folds=K, fold=f)[1].tolist()) for f in range(K)]
    assert len(vals[1] & vals[2]) < 0.5 * len(vals[1])  # validation parts are drawn anew per fold


def test_summarise_pools_counts_and_pairs_the_differences():
    per_fold = [{"test_accuracy": {"GRU": 0.8, "LR": 0.7}, "test_size": 10, "confusion": [[4, 1], [1, 4]],
                 "best_epoch": 3, "snapshot_epochs": [2, 3, 4], "test_accuracy_best_epoch": 0.7, "train_seconds": 1.0},
                {"test_accuracy": {"GRU": 0.6, "LR": 0.65}, "test_size": 20, "confusion": [[6, 4], [4, 6]],
                 "best_epoch": 5, "snapshot_epochs": [4, 5], "test_accuracy_best_epoch": 0.65, "train_seconds": 2.0}]
    m = summarise(per_fold)
    assert m["folds"] == 2 and m["best_epochs"] == [3, 5] and m["train_seconds"] == 3.0
    assert m["snapshot_epochs"] == [[2, 3, 4], [4, 5]] and m["gru_best_epoch_alone_pooled"] == pytest.approx(20 / 30)
    assert m["accuracy"]["GRU"]["pooled"] == pytest.approx((8 + 12) / 30)
    assert m["accuracy"]["GRU"]["mean"] == pytest.approx(0.7)
    assert m["accuracy"]["LR"]["std"] == pytest.approx(np.std([0.7, 0.65], ddof=1))
    lead = m["gru_lead"]["LR"]
    assert lead["mean"] == pytest.approx(0.025) and (lead["folds_ahead"], lead["folds_behind"]) == (1, 1)
    assert lead["se"] == pytest.approx(np.std([0.1, -0.05], ddof=1) / np.sqrt(2))
    assert m["confusion"] == [[10, 5], [5, 10]] and "GRU" not in m["gru_lead"]


def test_classify_folds_end_to_end_on_a_slice(tmp_path, capsys):
    out = tmp_path / "cv"
    argv = ["classify", "--limit", "200", "--folds", "2", "--hidden", "4", "--embedding", "4", "--members", "1",
            "--epochs", "2", "--out", str(out)]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    for name in ("metrics.json", "report.md", "folds.png", "confusion.png"):
        assert (out / name).is_file() and str(out / name) in printed, name
    assert Image.open(out / "folds.png").size == SIZE
    m = json.loads((out / "metrics.json").read_text())
    fold_metrics = [json.loads((out / f"fold-{f}" / "metrics.json").read_text()) for f in (1, 2)]
    assert all((out / f"fold-{f}" / "model.safetensors").is_file() for f in (1, 2))
    assert sum(fm["test_size"] for fm in fold_metrics) == 200 == m["sentences"] == np.sum(m["confusion"])
    for name, stats in m["accuracy"].items():
        correct = sum(fm["test_accuracy"][name] * fm["test_size"] for fm in fold_metrics)
        assert stats["pooled"] == pytest.approx(correct / 200)
        assert m["per_fold"][name] == [fm["test_accuracy"][name] for fm in fold_metrics]
    assert np.trace(m["confusion"]) == round(m["accuracy"]["GRU"]["pooled"] * 200)
    report = (out / "report.md").read_text()
    assert "2-fold cross-validation" in report and "GRU lead" in report
    assert "the GRU (word vectors: GloVe 6B 50d, bundled subset) and the baselines" in report
    assert m["snapshot_epochs"] == [[1, 2], [1, 2]] and "snapshot average" in report  # 2 epochs: both averaged
    fold_report = (out / "fold-2" / "report.md").read_text()  # said "a single 90/10 split" until a review
    assert "fold 2 of a 2-fold cross-validation" in fold_report and "single 90/10" not in fold_report


@pytest.mark.parametrize("value, limit", [("1", "100"), ("-2", "100"), ("101", "100"), ("30", "20")])
def test_bad_folds_exit_2_and_leave_nothing(tmp_path, capsys, value, limit):
    out = tmp_path / "x"
    assert cli.main(["classify", "--limit", limit, "--folds", value, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--folds" in err and not out.exists()
    if limit == "20":  # more folds than sentences: refused before any training
        assert "expected at most the number of sentences (20), got 30" in err


def test_first_fold_of_ten_tests_the_default_splits_test_part():
    for n, seed in ((10662, 0), (1000, 7)):
        assert np.array_equal(split(n, seed, folds=10, fold=0)[2], split(n, seed)[2])


def test_the_report_names_snapshot_averaging_when_any_fold_averaged(tmp_path):
    """A mutation audit: naming it only when every fold averaged snapshots passed every test (both folds of the
    end-to-end run averaged); here fold 1 stopped with one epoch, fold 2 averaged two."""
    parser = argparse.ArgumentParser()
    classify.add_arguments(parser)
    args = parser.parse_args(["--members", "1"])
    args.seed = 0
    metrics = {"folds": 2, "best_epochs": [1, 3], "train_seconds": 2.0, "snapshot_epochs": [[1], [2, 3]],
               "gru_best_epoch_alone_pooled": 0.625,
               "gru_lead": {"LR": {"mean": 0.1, "se": 0.01, "folds_ahead": 2, "folds_behind": 0, "folds": 2}}}
    loaded = {"source": "MR", "tokens": [["a"], ["b"]], "names": ["neg", "pos"]}
    text = _report(tmp_path, args, loaded, metrics, "| table |", {}).read_text()
    assert "the classifiers of the epochs (fold 1: 1; fold 2: 2, 3); the best epoch alone scores 62.50% pooled" in text
    # found by a review: one member read as "the GRU ensemble (1 member)" and the classes as a Python list
    assert "and bigrams), the GRU and the baselines" in text and "classes neg, pos." in text
    metrics["snapshot_epochs"] = [[1], [3]]
    assert "snapshot average" not in _report(tmp_path, args, loaded, metrics, "| table |", {}).read_text()
