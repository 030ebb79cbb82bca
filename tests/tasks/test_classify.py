"""grukit classify end to end on a slice of MR; split, vocabulary and baselines checked."""
from __future__ import annotations

import json

import numpy as np
from PIL import Image

from grukit import cli
from grukit.plots import GATES_SIZE, SIZE
from grukit.tasks.classify import collate, split


def test_classify_end_to_end_on_a_slice(tmp_path, capsys):
    out = tmp_path / "cl"
    code = cli.main(["classify", "--limit", "600", "--hidden", "8", "--embedding", "8", "--epochs", "1",
                     "--out", str(out), "--backend", "fused"])
    printed = capsys.readouterr().out
    assert code == 0
    for name in ("metrics.json", "report.md", "model.safetensors", "metrics.csv", "loss.png", "gates.png",
                 "confusion.png"):
        assert (out / name).is_file() and str(out / name) in printed, name
    assert Image.open(out / "loss.png").size == SIZE and Image.open(out / "gates.png").size == GATES_SIZE
    m = json.loads((out / "metrics.json").read_text())
    assert (m["train_size"], m["val_size"], m["test_size"]) == (486, 54, 60)
    acc = m["test_accuracy"]
    assert set(acc) == {"GRU", "bag-of-words logistic regression", "majority class"}
    assert all(0.0 <= a <= 1.0 for a in acc.values())
    assert abs(acc["GRU"] * 60 - round(acc["GRU"] * 60)) < 1e-9  # a count of correct test sentences
    assert np.trace(np.array(m["confusion"])) == round(acc["GRU"] * 60) and np.sum(m["confusion"]) == 60
    assert "10-fold cross-validation" in (out / "report.md").read_text()


def test_split_is_seeded_disjoint_and_complete():
    a, b = split(1000, seed=3), split(1000, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    train, val, test = a
    assert (len(train), len(val), len(test)) == (810, 90, 100)
    assert sorted(np.concatenate(a).tolist()) == list(range(1000))
    assert not np.array_equal(split(1000, seed=4)[2], test)


def test_collate_pads_with_zero():
    ids, lengths, y = collate([([5, 6, 7], 1), ([8], 0)])
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]] and lengths.tolist() == [3, 1] and y.tolist() == [1, 0]


def test_buckets_hold_every_sentence_once_in_batches_of_similar_length():
    from grukit.tasks.classify import Buckets, collate_batch

    rng = np.random.default_rng(0)
    data = [(list(range(2, 2 + int(n))), i % 2) for i, n in enumerate(rng.integers(1, 40, 500))]
    b = Buckets(data, batch_size=16, seed=1, pool=10)
    seen = sorted(len(s[0]) * 1000 + s[1] for batch in b.batches for s in batch)
    assert seen == sorted(len(s[0]) * 1000 + s[1] for s in data) and len(b) == 3 * 10 + 2  # pools of 160, 160, 160, 20
    assert all(1 <= len(batch) <= 16 for batch in b.batches)
    padded = sum(int(collate_batch([batch])[0].numel()) for batch in b.batches)
    unsorted = sum(int(collate(data[a:a + 16])[0].numel()) for a in range(0, 500, 16))
    assert padded < 0.7 * unsorted  # far less padding than batches of random lengths
    assert [len(x[0]) for x in Buckets(data, 16, seed=1, pool=10)[3]] == [len(x[0]) for x in b[3]]
