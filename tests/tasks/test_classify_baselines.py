"""The classify baselines: softmax regression on bags of words, plain and NB-weighted, picked on validation."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from grukit.data.sentiment import Bigrams
from grukit.tasks import classify_baselines as B


def test_logistic_regression_picks_on_validation_and_nb_weights():
    rng = np.random.default_rng(0)

    def sentences(n):  # word 2 means positive, 3 negative, 4..9 noise
        y = rng.integers(0, 2, n)
        return [([2 if label else 3] + rng.integers(4, 10, 3).tolist(), int(label)) for label in y]

    train, val, test = sentences(200), sentences(50), sentences(50)
    pred, choice = B.logistic_regression(train, val, test, n_words=10, classes=2)
    assert (pred == np.array([y for _, y in test])).all() and choice["val_accuracy"] == 1.0
    assert choice["features"] in ("binary", "counts") and choice["l2"] in (3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5)
    R = torch.ones(10, 2)
    nb_pred, _ = B.logistic_regression(train, val, test, n_words=10, classes=2, scale=R)
    assert (nb_pred == pred).all()


def test_nb_logits_scale_each_weight_by_its_log_count_ratio():
    """Found by a review: NB-LR was only tested with R = 1, so logits that dropped S (S ∘ W → W) passed."""
    torch.manual_seed(0)
    W, b = torch.randn(7, 3), torch.randn(3)  # (V, C), (C,)
    S = torch.randn(7, 3)  # (V, C) non-uniform ratios
    data = [([2, 2, 5, 1, 6], 0), ([3], 1), ([4, 6, 6, 6], 2)]  # repeated words and an unknown one (1)
    for binary in (True, False):
        got = B._logits(W, b, S, B.bags(data, binary))  # (N, C)
        for n, (ids, _) in enumerate(data):
            words = sorted(set(ids) - {1}) if binary else [w for w in ids if w != 1]
            expected = b + sum(S[w] * W[w] for w in words)  # (C,) b_c + Σ_w x_w S[w, c] W[w, c]
            torch.testing.assert_close(got[n], expected)


def test_nb_logistic_regression_cannot_use_a_word_whose_ratios_are_zero():
    """Found by a review: NB-LR with S dropped from its logits fitted plain LR and still passed every test."""
    rng = np.random.default_rng(0)

    def sentences(n):  # word 2 means positive, 3 negative, 4..9 noise
        y = rng.integers(0, 2, n)
        return [([2 if label else 3] + rng.integers(4, 10, 3).tolist(), int(label)) for label in y]

    train, val = sentences(200), sentences(50)
    test = [([2], 1), ([3], 0), ([2, 2], 1), ([3, 3], 0)]  # the signal words alone
    plain, _ = B.logistic_regression(train, val, test, n_words=10, classes=2)
    assert plain.tolist() == [1, 0, 1, 0]
    S = torch.from_numpy(rng.uniform(0.5, 2.0, (10, 2))).float()  # (V, C) non-uniform ratios
    S[2:4] = 0.0  # the signal words weigh nothing: every test logit is b
    nb, _ = B.logistic_regression(train, val, test, n_words=10, classes=2, scale=S)
    assert len(set(nb.tolist())) == 1


def test_logistic_regression_picks_features_and_l2_on_validation_not_test(monkeypatch):
    """Found by a review: choosing the setting by its accuracy on the test part instead of validation passed."""
    rng = np.random.default_rng(0)

    def sentences(n, flip):  # label 1 when word 2 occurs twice, 0 when once (flip: the reverse); 3..7 noise
        y = rng.integers(0, 2, n)
        return [([2] * (1 + label) + rng.integers(3, 8, 3).tolist(), int(label != flip)) for label in y]

    train, val, test = sentences(300, False), sentences(60, False), sentences(60, True)
    fits = []  # (binary, λ, W (V, C), b (C,)) after each fit along the path
    real = B._lbfgs

    def spy(W, b, S, lam, bag):
        real(W, b, S, lam, bag)
        fits.append((len(fits) < 6, lam, W.detach().clone(), b.detach().clone()))

    monkeypatch.setattr(B, "_lbfgs", spy)
    pred, choice = B.logistic_regression(train, val, test, n_words=8, classes=2)

    def predictions(part, binary, W, b):  # (N,) argmax_c b_c + Σ_w x_w W[w, c]
        x = np.zeros((len(part), 8))  # (N, V)
        for n, (ids, _) in enumerate(part):
            for w in (set(ids) if binary else ids):
                x[n, w] += 1
        return (x @ W.numpy() + b.numpy()).argmax(1)  # (N,)

    def accuracies(part):  # (12,) accuracy of every fit on `part`
        y = np.array([label for _, label in part])
        return np.array([(predictions(part, binary, W, b) == y).mean() for binary, _, W, b in fits])

    assert len(fits) == 12
    on_val, on_test = accuracies(val), accuracies(test)
    k = int(np.argmax(on_val))  # the first best on validation
    assert fits[k][0] is False and on_val[k] == 1.0  # only counts tell one occurrence from two
    assert on_test[k] < on_test.max()  # the test part would pick another setting
    assert choice == {"features": "counts", "l2": fits[k][1], "val_accuracy": pytest.approx(on_val[k])}
    assert np.array_equal(pred, predictions(test, False, fits[k][2], fits[k][3]))


def test_nb_baseline_reads_the_same_bigrams_as_the_gru():
    bigrams = Bigrams(np.array([2, 2 * 6 + 3]), n_words=6)  # "<start> bad", "bad dull"
    got = B.with_bigrams([([2, 3, 4], 1), ([4, 2], 0)], bigrams)
    assert got == [([2, 3, 4, 6 + 2, 6 + 3, 1], 1), ([4, 2, 1, 1], 0)]  # unknown bigrams read as the unknown word
    flat, offsets, _ = B.bags(got, binary=True)
    assert flat.tolist() == [2, 3, 4, 8, 9, 2, 4] and offsets.tolist() == [0, 5]  # unknowns left out


def test_the_penalty_holds_the_weights_smaller_and_the_majority_is_the_training_parts(monkeypatch):
    """A mutation audit: dropping λ from the loss passed (the tests read which λ was picked, not what it does),
    and so did a majority class taken from every label, the test part's included."""
    norms = []  # ‖W‖ after each fit along the λ path
    real = B._lbfgs

    def spy(W, b, S, lam, bag):
        real(W, b, S, lam, bag)
        norms.append(W.detach().norm().item())

    monkeypatch.setattr(B, "_lbfgs", spy)
    part = [([2, 3], 1), ([4, 5], 0), ([2, 4], 1), ([3, 5], 0)] * 10
    B.logistic_regression(part, part, part, n_words=6, classes=2)
    assert norms[0] < 0.9 * norms[5]  # λ = 3e-3 against λ = 1e-5, binary features

    labels = np.array([0, 0, 0, 1, 1, 1, 1, 1, 1, 1])  # 0 the majority of the training part, 1 of the whole
    d = {"split": (np.arange(3), np.arange(3, 5), np.arange(5, 10)), "vocab": ["<pad>", "<unk>", "a"],
         "names": ["n", "p"], "labels": labels,
         "train": [([2], 0)] * 3, "val": [([2], 1)] * 2, "test": [([2], 1)] * 5}
    predictions, _ = B.baselines(d, {"R": torch.ones(3, 2)})
    assert (predictions["majority class"] == 0).all()


def test_the_penalty_is_on_w_not_on_the_scaled_weights():
    """A mutation audit: penalising S ∘ W instead of W (the same where S = 1, so plain LR could not tell) passed
    every test; at the fit's end the gradient of mean CE + λ‖W‖² must vanish."""
    torch.manual_seed(0)
    data = [([2, 3, 4], 0), ([2, 5], 1), ([3, 4, 5], 0), ([5, 6], 1), ([2, 6, 4], 0), ([6, 3], 1)] * 3
    bag = B.bags(data, binary=False)
    S = torch.rand(7, 2) * 3 + 0.5  # (V, C) ratios far from 1
    W, b = torch.zeros(7, 2, requires_grad=True), torch.zeros(2, requires_grad=True)
    lam = 1e-2
    B._lbfgs(W, b, S, lam, bag)
    loss = F.cross_entropy(B._logits(W, b, S, bag), bag[2]) + lam * W.pow(2).sum()
    grad_W, grad_b = torch.autograd.grad(loss, (W, b))
    assert grad_W.abs().max() < 1e-4 and grad_b.abs().max() < 1e-4
    assert W.detach().abs().max() > 0.1  # a fit that moved: the check is not of a zero model
