"""grukit.train: schedule, determinism, resume == uninterrupted, early stopping, files, DDP on 2 CPU processes."""
from __future__ import annotations

import csv
import dataclasses
import json
import logging
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

import grukit
from grukit.checkpoint import register
from grukit.errors import UsageError
from grukit.kernels import cpu as cpu_kernel
from grukit.train import DivergedError, TrainConfig, _epoch_order, fit, learning_rate


@dataclasses.dataclass(frozen=True)
class TinyConfig:
    features: int  # inputs per step
    hidden: int  # GRU units


@register
class Tiny(torch.nn.Module):
    """A GRU regressor with dropout, so resume must restore the RNG state too."""

    def __init__(self, features: int, hidden: int):
        super().__init__()
        self.config = TinyConfig(features, hidden)
        self.gru = grukit.GRU(features, hidden, batch_first=True, backend="fused")
        self.drop = torch.nn.Dropout(0.3)
        self.head = torch.nn.Linear(hidden, 1)

    def forward(self, x):
        return self.head(self.drop(self.gru(x)[1][-1])).squeeze(-1)  # (N,)


def _data(n=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, 3, generator=g)  # (N, T, F)
    y = x.sum(dim=(1, 2)) * 0.1  # (N,)
    return TensorDataset(x, y)


def step_loss(model, batch):
    x, y = batch
    return ((model(x) - y) ** 2).mean()


def evaluate(model, val):
    x, y = val.tensors
    return {"val_loss": ((model(x) - y) ** 2).mean().item()}


def _train(out, epochs, resume=False, evaluate=evaluate, **kw):
    torch.manual_seed(0)
    model = Tiny(3, 8)
    config = TrainConfig(epochs=epochs, batch_size=8, lr=1e-2, seed=1, progress=False, resume=resume,
                         warmup_steps=3, **kw)
    result = fit(model, _data(), _data(16, 1), step_loss=step_loss, evaluate=evaluate, config=config, out=out)
    return model, result


def test_an_ensembles_epoch_line_gives_its_summed_train_loss_per_member(tmp_path, caplog):
    """Found by a QA run: `classify --members 3` printed "train_loss 2.1050  val_loss 0.7125", the sum of the
    members' losses beside one ensemble's validation loss. The line now says what the sum is."""
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Config:
        members: int

    with caplog.at_level(logging.INFO, logger="grukit.train"):
        model, result = _train(None, 1)
        model.config = Config(members=4)
        loss = result.history[0]["train_loss"]
        plain = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch 1/1")]
        caplog.clear()
        config = TrainConfig(epochs=1, batch_size=8, lr=1e-2, seed=1, progress=False)
        result = fit(model, _data(), _data(16, 1), step_loss=step_loss, evaluate=evaluate, config=config, out=None)
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch 1/1")]
    assert plain[0].startswith(f"epoch 1/1  train_loss {loss:.4f}  val_loss")
    loss = result.history[0]["train_loss"]
    assert said[0].startswith(f"epoch 1/1  train_loss {loss:.4f} (sum of 4 members, {loss / 4:.4f} each)  val_loss")


def test_learning_rate_warmup_then_cosine_to_floor():
    c = TrainConfig(lr=1.0, warmup_steps=4, schedule="cosine", min_lr_ratio=0.1)
    lrs = [learning_rate(s, 104, c) for s in range(104)]
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])  # the peak once, at the warmup's last step
    assert lrs[53] == pytest.approx(0.55)  # half way from step 3 to step 103
    assert all(a > b for a, b in zip(lrs[3:], lrs[4:]))
    assert lrs[-1] == pytest.approx(0.1) and learning_rate(104, 104, c) == pytest.approx(0.1)  # the floor, reached


def test_the_decay_reaches_its_floor_on_the_last_step():
    """Found by a review: p = (step − w)/(total − w) never reached 1, so a short run never reached its floor
    (cosine over 2 steps gave lr, lr/2), and with a warmup the peak came twice."""
    for schedule in ("cosine", "linear"):
        c = TrainConfig(lr=1.0, schedule=schedule, min_lr_ratio=0.1)
        assert [learning_rate(s, 2, c) for s in range(2)] == pytest.approx([1.0, 0.1])
    linear = TrainConfig(lr=1.0, schedule="linear", min_lr_ratio=0.1)
    assert [learning_rate(s, 4, linear) for s in range(4)] == pytest.approx([1.0, 0.7, 0.4, 0.1])
    assert learning_rate(0, 1, linear) == pytest.approx(1.0)  # a one-step run: the peak


def test_a_warmup_longer_than_the_run_takes_half_of_it():
    c = TrainConfig(lr=1.0, warmup_steps=20, schedule="cosine")
    lrs = [learning_rate(s, 9, c) for s in range(9)]  # 9 steps: warmup 4, then the decay
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0]) and all(a > b for a, b in zip(lrs[3:], lrs[4:]))
    assert lrs[-1] == pytest.approx(c.min_lr_ratio)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(schedule="step")
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match=r"^snapshots: expected an integer >= 0, got -1$"):
        TrainConfig(snapshots=-1)
    for field, value in (("lr", 0), ("lr", float("inf")), ("lr", 1e39), ("weight_decay", -0.1), ("betas", (0.9, 1.0)),
                         ("warmup_steps", -1), ("min_lr_ratio", 1.5)):  # found by reviews: these went unchecked
        # (1e39 overflows float32 inside AdamW)
        with pytest.raises(ValueError, match=rf"^{field}: expected"):
            TrainConfig(**{field: value})


def test_same_seed_same_weights_and_files(tmp_path):
    a, ra = _train(tmp_path / "a", 3)
    b, _ = _train(tmp_path / "b", 3)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name
    for name in ("model.safetensors", "last.safetensors", "last.state.safetensors", "metrics.csv"):
        assert (tmp_path / "a" / name).is_file(), name
    rows = list(csv.DictReader(open(tmp_path / "a" / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert [float(r["val_loss"]) for r in rows] == pytest.approx([h["val_loss"] for h in ra.history])
    best = grukit.load(tmp_path / "a" / "model.safetensors")
    assert isinstance(best, Tiny)
    assert torch.equal(best.head.weight, a.head.weight)  # the model holds the best epoch's weights


def test_training_reduces_loss(tmp_path):
    _, result = _train(None, 6)
    assert result.history[-1]["train_loss"] < 0.7 * result.history[0]["train_loss"]
    assert result.best["val_loss"] == min(h["val_loss"] for h in result.history)


def test_resume_matches_uninterrupted_run(tmp_path):
    full, full_result = _train(tmp_path / "full", 5, restore_best=False)
    calls = []

    def crash_in_epoch_3(model, val):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the run dies after epoch 2's checkpoint
        return evaluate(model, val)

    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path / "split", 5, evaluate=crash_in_epoch_3, restore_best=False)
    resumed, resumed_result = _train(tmp_path / "split", 5, resume=True, restore_best=False)
    for (name, p), q in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(p, q), name
    assert [h["val_loss"] for h in resumed_result.history] == [h["val_loss"] for h in full_result.history]
    state = json.loads(__import__("safetensors").safe_open(
        str(tmp_path / "split" / "last.state.safetensors"), "pt").metadata()["grukit.train_state"])
    assert state["epoch"] == 5 and state["step"] == 5 * 6


def _scripted(values, crash_at=None):
    """An `evaluate` returning val_loss values[i] at its i-th call (i from 0); KeyboardInterrupt at call crash_at."""
    calls = []

    def evaluate_(model, val):
        calls.append(1)
        if len(calls) - 1 == crash_at:
            raise KeyboardInterrupt
        return {"val_loss": values[len(calls) - 1]}
    return evaluate_


def test_snapshots_return_the_weights_around_the_best_epoch_and_survive_resume(tmp_path, caplog):
    losses = [3.0, 1.0, 2.0, 4.0, 5.0]  # best epoch 2: the window 1..3 is complete before the crash
    full, full_result = _train(tmp_path / "full", 5, evaluate=_scripted(losses), snapshots=1)
    assert full_result.best_epoch == 2 and [e for e, _ in full_result.snapshots] == [1, 2, 3]
    own = dict(full_result.snapshots)[2]
    assert all(torch.equal(own[k], v) for k, v in full.state_dict().items())  # the best epoch's are its weights
    assert not all(torch.equal(own[k], v) for k, v in full_result.snapshots[0][1].items())  # epoch 1's differ

    def same(a, b):
        return [e for e, _ in a] == [e for e, _ in b] and all(
            x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x) for (_, x), (_, y) in zip(a, b))

    with pytest.raises(KeyboardInterrupt):  # dies in epoch 4: the state file holds epochs 1..3
        _train(tmp_path / "split", 5, evaluate=_scripted(losses, crash_at=3), snapshots=1)
    _, resumed = _train(tmp_path / "split", 5, resume=True, evaluate=_scripted(losses[3:]), snapshots=1)
    assert same(resumed.snapshots, full_result.snapshots)
    _, again = _train(tmp_path / "split", 5, resume=True, evaluate=_scripted([]), snapshots=1)  # already finished
    assert same(again.snapshots, full_result.snapshots)
    from grukit.checkpoint import load_state, save_state

    tensors, metadata = load_state(tmp_path / "split" / "last.state.safetensors")
    assert metadata["grukit.train_state"]["aliases"] == {"model": 5, "best": 2}  # each epoch's weights stored once
    assert not any(k.startswith(("model.", "best.")) for k in tensors)
    assert _train(None, 3)[1].snapshots == []  # off by default

    with pytest.raises(KeyboardInterrupt):  # a state file written before snapshots: a warning, then from here on
        _train(tmp_path / "old", 5, evaluate=_scripted(losses, crash_at=3))
    path = tmp_path / "old" / "last.state.safetensors"
    tensors, metadata = load_state(path)
    state = metadata["grukit.train_state"]
    assert state["aliases"] == {} and not any(k.startswith("snapshot.") for k in tensors)
    del state["snapshots"], state["aliases"], state["config"]["snapshots"]  # what the older format lacks
    save_state(path, tensors, metadata)
    with caplog.at_level(logging.WARNING, logger="grukit.train"):
        _, old = _train(tmp_path / "old", 5, resume=True, evaluate=_scripted(losses[3:]), snapshots=1)
    assert "holds no snapshots" in caplog.text and old.snapshots == []


@pytest.mark.parametrize("restore_best", [True, False])
def test_resuming_a_finished_run_writes_again_a_deleted_best_model_and_log(tmp_path, restore_best):
    """The state file holds everything: a user who deleted model.safetensors or metrics.csv (or copied the state
    file alone into a new folder) gets them back (before: the task failed on the missing file, KeyError)."""
    losses = [3.0, 1.0, 2.0]
    _, first = _train(tmp_path / "run", 3, evaluate=_scripted(losses), restore_best=restore_best)
    best = grukit.load(tmp_path / "run" / "model.safetensors").state_dict()
    for name in ("model.safetensors", "metrics.csv", "last.safetensors"):
        (tmp_path / "run" / name).unlink()
    _, again = _train(tmp_path / "run", 3, resume=True, evaluate=_scripted([]), restore_best=restore_best)
    assert {"model", "csv"} <= set(again.files) and again.best_epoch == 2
    back = grukit.load(again.files["model"]).state_dict()
    assert all(torch.equal(best[k], back[k]) for k in best)  # the best epoch's weights, not the last's
    assert [int(r["epoch"]) for r in csv.DictReader(open(again.files["csv"]))] == [1, 2, 3]


def test_resuming_a_finished_run_writes_again_a_damaged_best_model(tmp_path):
    """Found by a fuzz: a resumed run whose epochs had all run rewrote a deleted model.safetensors but kept a
    damaged one, which then failed to load. Now a damaged one is written again from the state file."""
    _, first = _train(tmp_path / "run", 2)
    path = tmp_path / "run" / "model.safetensors"
    best = grukit.load(path).state_dict()
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # one flipped byte in the last tensor
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum"):
        grukit.load(path)
    _train(tmp_path / "run", 2, resume=True)
    back = grukit.load(path).state_dict()
    assert all(torch.equal(best[k], back[k]) for k in best)


def test_a_resume_puts_back_the_files_of_an_epoch_stopped_before_its_state(tmp_path, monkeypatch):
    """Found by a review: Ctrl-C after an epoch wrote model.safetensors, last.safetensors and metrics.csv but before
    its state left them an epoch ahead; a resumed run that trained no further epoch (a time limit) ended with a CSV
    row and a best model of an epoch that its state and report did not have."""
    import grukit.train as T

    save = T.save_run_state

    def stop_at_epoch_2(path, model, best, opt, meta, *rest):
        if meta["epoch"] == 2:
            raise KeyboardInterrupt
        save(path, model, best, opt, meta, *rest)

    monkeypatch.setattr(T, "save_run_state", stop_at_epoch_2)
    losses = [2.0, 1.0, 3.0]  # epoch 2 the best: its weights went to model.safetensors
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path / "run", 3, evaluate=_scripted(losses))
    monkeypatch.setattr(T, "save_run_state", save)
    assert [int(r["epoch"]) for r in csv.DictReader(open(tmp_path / "run" / "metrics.csv"))] == [1, 2]
    model, again = _train(tmp_path / "run", 3, resume=True, evaluate=_scripted(losses[1:]), time_limit=1e-9)
    assert again.time_limited and [row["epoch"] for row in again.history] == [1] and again.best_epoch == 1
    assert [int(r["epoch"]) for r in csv.DictReader(open(again.files["csv"]))] == [1]
    for name in ("model", "last"):  # both the state's epoch 1, which the model returned holds
        stored = grukit.load(again.files[name]).state_dict()
        assert all(torch.equal(stored[k], v) for k, v in model.state_dict().items()), name


def test_resume_refuses_other_validation_data(tmp_path):
    """Found by two reviews: only the training set was fingerprinted, so a resume on a file whose validation part
    differed went on, and picked its best epoch from metrics of two data sets."""
    _train(tmp_path / "a", 2)
    config = TrainConfig(epochs=2, batch_size=8, lr=1e-2, seed=1, progress=False, resume=True, warmup_steps=3)
    torch.manual_seed(0)
    with pytest.raises(UsageError, match=r"--resume: .* was trained on other data \(the validation set's content "
                                         r"differs: another file, or another flag that shapes it\); resume"):
        fit(Tiny(3, 8), _data(), _data(16, 2), step_loss=step_loss, evaluate=evaluate, config=config,
            out=tmp_path / "a")
    fit(Tiny(3, 8), _data(), _data(16, 1), step_loss=step_loss, evaluate=evaluate, config=config,
        out=tmp_path / "a")  # the same validation data: resumed


def test_run_seconds_add_the_calls_of_a_resumed_run(tmp_path, monkeypatch):
    """Found by a fuzz: reports gave the training time of the last call only (resuming a finished run replaced
    1.37 s by 0.24 s plus its load). run_seconds adds what the state saved from the calls before, and a call that
    trains nothing adds nothing."""
    import grukit.train as train

    def saved_seconds():
        meta = __import__("safetensors").safe_open(str(tmp_path / "run" / "last.state.safetensors"), "pt").metadata()
        return json.loads(meta["grukit.train_state"])["run_seconds"]

    clock = [1000.0]  # a clock that moves by 1 s at every reading
    monkeypatch.setattr(train.time, "perf_counter", lambda: clock.__setitem__(0, clock[0] + 1.0) or clock[0])
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path / "run", 3, evaluate=_scripted([1.0, 1.0], crash_at=2))  # stopped in epoch 3
    first = saved_seconds()  # at the end of epoch 2
    assert first > 0
    _, second = _train(tmp_path / "run", 3, resume=True, evaluate=_scripted([1.0]))
    assert first < second.run_seconds < first + second.seconds  # this call's, from after the kernels resolved
    at_the_end = saved_seconds()  # at the end of epoch 3, a little before the call returned
    _, third = _train(tmp_path / "run", 3, resume=True, evaluate=_scripted([]))  # finished: nothing to train
    assert third.seconds > 0 and third.run_seconds == at_the_end


def test_the_backends_are_resolved_before_the_first_epoch(monkeypatch):
    """Found by a review: the cpu kernel builds on first use (a minute), which fell in epoch 1's seconds, so
    `compare` showed 31 s/epoch for a model that trains in 0.02 s. fit resolves the backends first."""
    events = []
    kernel = grukit.GRU.kernel
    monkeypatch.setattr(grukit.GRU, "kernel", lambda self: events.append("kernel") or kernel(self))

    def step_loss_(model, batch):
        events.append("step")
        return step_loss(model, batch)

    config = TrainConfig(epochs=1, batch_size=8, progress=False)
    fit(Tiny(3, 8), _data(), _data(16, 1), step_loss=step_loss_, evaluate=evaluate, config=config, out=None)
    assert events[:2] == ["kernel", "step"]


def test_early_stopping_and_time_limit(caplog):
    def flat(model, val):
        return {"val_loss": 1.0}  # never improves after the first epoch
    torch.manual_seed(0)
    config = TrainConfig(epochs=20, batch_size=8, patience=2, progress=False)
    with caplog.at_level(logging.INFO, logger="grukit.train"):
        result = fit(Tiny(3, 4), _data(), None, step_loss=step_loss, evaluate=flat, config=config, out=None)
    assert result.stopped_early and not result.time_limited and len(result.history) == 3 and result.best_epoch == 1
    lines = [r.getMessage().split("  ")[0] for r in caplog.records]
    assert lines[-2:] == ["epoch 3/20", "early stop after epoch 3: val_loss did not improve for 2 epochs"]
    config = TrainConfig(epochs=20, batch_size=8, progress=False, time_limit=0.0)
    result = fit(Tiny(3, 4), _data(), None, step_loss=step_loss, evaluate=flat, config=config, out=None)
    assert result.stopped_early and result.time_limited and result.history == []


def test_a_time_limit_before_the_first_epoch_lists_no_files(tmp_path):
    config = TrainConfig(epochs=2, batch_size=8, progress=False, time_limit=0.0)
    result = fit(Tiny(3, 4), _data(), _data(8), step_loss=step_loss, evaluate=evaluate, config=config,
                 out=tmp_path / "run")
    assert result.history == [] and result.files == {} and list((tmp_path / "run").iterdir()) == []


def test_a_time_limit_counts_the_whole_run_across_resumes(tmp_path, caplog):
    """Found by a review: each call had the whole limit again, so a run interrupted and resumed trained longer
    than an unbroken one. A resume counts the saved run_seconds, and budgets its first epoch by the last one's."""
    from grukit.checkpoint import load_state, save_state

    _, first = _train(tmp_path / "a", 4, time_limit=1e6)
    _train(tmp_path / "b", 4, time_limit=1e6)
    for name, spent, epoch_seconds in (("a", 1000.0, 0.0), ("b", 0.0, 1000.0)):
        path = tmp_path / name / "last.state.safetensors"
        tensors, metadata = load_state(path)
        meta = metadata["grukit.train_state"]
        meta["epoch"], meta["history"] = 2, meta["history"][:2]  # as if cut at epoch 2
        # the limit counts each call from its start, set-up included (a first kernel build), which the training
        # time run_seconds leaves out (found by a review: the resume counted run_seconds and so trained longer)
        meta["run_seconds"], meta["limit_seconds"] = 0.5, spent
        meta["history"][-1]["seconds"] = epoch_seconds
        save_state(path, tensors, metadata)
    with caplog.at_level(logging.INFO, logger="grukit.train"):
        _, spent = _train(tmp_path / "a", 4, resume=True, time_limit=500.0)  # 1000 s spent: no epoch is left
    assert spent.time_limited and [row["epoch"] for row in spent.history] == [1, 2] and spent.run_seconds < 1000
    assert "time limit 500 s of the run reached before epoch 3 (a resumed run counts" in caplog.text
    _, slow = _train(tmp_path / "b", 4, resume=True, time_limit=500.0)  # the next epoch would take 1000 s
    assert slow.time_limited and len(slow.history) == 2
    _, more = _train(tmp_path / "a", 4, resume=True, time_limit=1e6)  # a longer limit trains on
    assert not more.time_limited and [row["epoch"] for row in more.history] == [1, 2, 3, 4]
    assert first.run_seconds < 1000
    meta = load_state(tmp_path / "a" / "last.state.safetensors")[1]["grukit.train_state"]
    assert meta["limit_seconds"] > 1000 and meta["run_seconds"] < 1000  # both carried on from the edited state


def test_a_state_without_limit_seconds_counts_its_run_seconds(tmp_path):
    """A state written before limit_seconds was saved: the limit counts its run_seconds instead."""
    from grukit.checkpoint import load_state, save_state

    _train(tmp_path / "a", 4, time_limit=1e6)
    path = tmp_path / "a" / "last.state.safetensors"
    tensors, metadata = load_state(path)
    meta = metadata["grukit.train_state"]
    meta["epoch"], meta["history"], meta["run_seconds"] = 2, meta["history"][:2], 1000.0
    del meta["limit_seconds"]
    save_state(path, tensors, metadata)
    _, result = _train(tmp_path / "a", 4, resume=True, time_limit=500.0)
    assert result.time_limited and len(result.history) == 2


def test_a_nan_validation_metric_is_a_divergence():
    values = iter([0.5, float("nan")])
    config = TrainConfig(epochs=3, batch_size=8, progress=False)
    with pytest.raises(DivergedError, match=r"^validation val_loss became nan at epoch 2") as info:
        fit(Tiny(3, 4), _data(), None, step_loss=step_loss, evaluate=lambda m, v: {"val_loss": next(values)},
            config=config, out=None)
    assert (info.value.part, info.value.what) == ("validation", "val_loss")
    values = iter([{"val_loss": 0.5, "val_mase": 0.3}, {"val_loss": float("inf"), "val_mase": 0.3}])
    config = TrainConfig(epochs=3, batch_size=8, progress=False, metric="val_mase")
    with pytest.raises(DivergedError, match=r"^validation val_loss became inf at epoch 2"):  # found by a review:
        fit(Tiny(3, 4), _data(), None, step_loss=step_loss, evaluate=lambda m, v: next(values),  # another metric
            config=config, out=None)  # than the one that picks epochs went into the history, which JSON refused


def test_resume_with_more_patience_goes_on_like_an_unbroken_run(tmp_path):
    def flat(model, val):
        return {"val_loss": 1.0}  # never improves after the first epoch

    _, first = _train(tmp_path / "a", 8, evaluate=flat, patience=2, restore_best=False)
    assert first.stopped_early and len(first.history) == 3
    resumed, result = _train(tmp_path / "a", 8, resume=True, evaluate=flat, patience=4, restore_best=False)
    unbroken, expected = _train(tmp_path / "b", 8, evaluate=flat, patience=4, restore_best=False)
    assert len(result.history) == len(expected.history) == 5 and result.stopped_early
    for (name, p), q in zip(resumed.state_dict().items(), unbroken.state_dict().values()):
        assert torch.equal(p, q), name


def test_resuming_an_ended_run_says_that_nothing_is_left_to_train(tmp_path, caplog):
    """Found by a QA run: resuming a finished run said "resuming after epoch 2 (step 6)" and then wrote every
    output again without a word on why no epoch ran."""
    def flat(model, val):
        return {"val_loss": 1.0}

    _train(tmp_path / "done", 2)
    _train(tmp_path / "patience", 8, evaluate=flat, patience=2)
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path / "cut", 3, evaluate=_scripted([1.0, 1.0], crash_at=2))  # stopped after epoch 2
    with caplog.at_level(logging.INFO, logger="grukit.train"):
        _train(tmp_path / "done", 2, resume=True)
        _train(tmp_path / "patience", 8, resume=True, evaluate=flat, patience=2)
        _train(tmp_path / "cut", 3, resume=True)
    said = [r.getMessage() for r in caplog.records if "resum" in r.getMessage()]
    assert said[0] == (f"resume: the run in {tmp_path / 'done'} had ended after epoch 2 (of at most 2): nothing is "
                       "left to train, and its outputs are written again from the saved state")
    assert said[1].startswith(f"resume: the run in {tmp_path / 'patience'} had ended after epoch 3 (stopped by its "
                              "patience)")
    assert said[2].startswith("resuming after epoch 2 (step ")  # an epoch left: it trains


def test_resume_refuses_other_model_or_training_settings(tmp_path):
    _train(tmp_path / "a", 2)
    with pytest.raises(UsageError, match=r"--resume: .* with other settings: epochs 2 → 3; resume as it was trained"):
        _train(tmp_path / "a", 3, resume=True)  # another schedule
    with pytest.raises(UsageError, match=r"--resume: .* with other settings: weight_decay 0.01 → 0.5; resume"):
        _train(tmp_path / "a", 2, resume=True, weight_decay=0.5)
    with pytest.raises(UsageError, match=r"--resume: .* was trained with other settings: epochs 2 → 3, weight_decay "
                                         r"0.01 → 0.5; resume as it was trained, or use another --out$"):
        _train(tmp_path / "a", 3, resume=True, weight_decay=0.5)  # found by a review: only the first was named, so
        # a setting derived from a flag (textgen's warmup_steps, from --steps-per-epoch) hid the flag's own
    config = TrainConfig(epochs=2, batch_size=8, lr=1e-2, seed=1, progress=False, resume=True, warmup_steps=3)
    with pytest.raises(UsageError, match=r"--resume: .* with other settings: hidden 8 → 4; resume"):
        fit(Tiny(3, 4), _data(), _data(16, 1), step_loss=step_loss, evaluate=evaluate, config=config,
            out=tmp_path / "a")
    with pytest.raises(UsageError, match=r"--resume: .* was trained on other data"):  # not train_samples=48
        fit(Tiny(3, 8), _data(40), _data(16, 1), step_loss=step_loss, evaluate=evaluate, config=config,
            out=tmp_path / "a")
    with pytest.raises(UsageError, match=r"--resume: .* was trained with other settings: hidden 8 → 4; and on other "
                                         r"data \(.*\); resume as it was trained"):  # found by a review: a change
        fit(Tiny(3, 4), _data(40), _data(16, 1), step_loss=step_loss, evaluate=evaluate, config=config,
            out=tmp_path / "a")  # hid the other data behind it, to be found only on the next try
    class Other(Tiny):  # another command's model: its class is named first (before: some incidental setting)
        pass

    with pytest.raises(UsageError, match=r"--resume: .* holds the run of another model \(Tiny, not Other\): a run of "
                                         r"another command\?"):
        fit(Other(3, 8), _data(), _data(16, 1), step_loss=step_loss, evaluate=evaluate, config=config,
            out=tmp_path / "a")
    _train(tmp_path / "a", 2, resume=True, time_limit=100.0)  # what may change: time limit, device, progress
    _train(tmp_path / "a", 2, resume=True, restore_best=False)  # and which weights the model ends with


def test_resume_from_a_state_file_without_model_config_or_data_size(tmp_path):
    from grukit.checkpoint import load_state, save_state

    _train(tmp_path / "old", 2)
    path = tmp_path / "old" / "last.state.safetensors"
    tensors, metadata = load_state(path)
    meta = metadata["grukit.train_state"]
    del meta["model_config"], meta["data"]  # as written before these were saved
    meta["config"]["patience"] = 3  # and by a run that stopped on another patience
    save_state(path, tensors, metadata)
    _train(tmp_path / "old", 2, resume=True)  # the training config matches: resumes
    config = TrainConfig(epochs=2, batch_size=8, lr=1e-2, seed=1, progress=False, resume=True, warmup_steps=3)
    with pytest.raises(UsageError, match=r"--resume: the weights in .* do not fit this model"):
        fit(Tiny(3, 4), _data(), _data(16, 1), step_loss=step_loss, evaluate=evaluate, config=config,
            out=tmp_path / "old")


@pytest.mark.parametrize("damage", ["a list", "no history", "epoch text", "optimizer", "rng size", "truncated",
                                    "flipped bit"])
def test_resume_from_a_damaged_state_file_is_one_usage_error(tmp_path, damage):
    """Found by a review: a state file edited by hand ended in a traceback (KeyError, TypeError, ...)."""
    from grukit.checkpoint import load_state, save_state

    _train(tmp_path / "a", 2)
    path = tmp_path / "a" / "last.state.safetensors"
    tensors, metadata = load_state(path)
    meta = metadata["grukit.train_state"]
    if damage == "a list":
        metadata["grukit.train_state"] = [meta]
    elif damage == "no history":
        del meta["history"]
    elif damage == "epoch text":
        meta["epoch"] = "x"
    elif damage == "optimizer":
        meta["optimizer"] = {"a": 1}
    elif damage == "rng size":
        tensors["rng.cpu.0"] = tensors["rng.cpu.0"][:10]
    save_state(path, tensors, metadata)
    if damage == "truncated":  # found by a review: the one damage whose message named neither --resume nor a way out
        path.write_bytes(path.read_bytes()[:-100])
    if damage == "flipped bit":  # found by a review: went unnoticed, and the run resumed from other numbers
        data = bytearray(path.read_bytes())
        data[-5] ^= 0x01
        path.write_bytes(bytes(data))
    before = path.read_bytes()
    with pytest.raises(UsageError, match=r"^--resume: .*last.state.safetensors is damaged \(\w+: .*\); use "
                                         r"another --out to start again$"):
        _train(tmp_path / "a", 2, resume=True)
    assert path.read_bytes() == before


def test_resume_on_other_backends_is_said_only_when_they_differ_and_an_epoch_is_left(tmp_path, caplog, monkeypatch):
    """Found by a fuzz: the rounding warning compared the --backend flags, so "auto" → "cpu" was said although auto
    runs on cpu there, and it was said when the run had nothing left to train. It compares the backends the
    layers run on, and only before an epoch trains."""
    for name in ("same", "other"):
        with pytest.raises(KeyboardInterrupt):
            _train(tmp_path / name, 3, evaluate=_scripted([1.0, 1.0], crash_at=2))  # stopped after epoch 2
    with caplog.at_level(logging.WARNING, logger="grukit.resume"):
        _train(tmp_path / "same", 3, resume=True)  # the same backend, an epoch to train
        _train(tmp_path / "same", 3, resume=True)  # nothing left to train
        assert not caplog.records
        monkeypatch.setattr(grukit.GRU, "kernel", lambda self: grukit.kernels.get("eager", self.weight_x_l0.device))
        _train(tmp_path / "same", 3, resume=True)  # another backend, nothing left to train
        assert not caplog.records
        _train(tmp_path / "other", 3, resume=True)
    assert [r.getMessage() for r in caplog.records] == [
        f"--resume: {tmp_path / 'other'} was trained with --backend fused, this run has eager: its weights will equal "
        "an unbroken run's to rounding only (--backend fused resumes bit for bit)"]


def test_resume_refuses_other_settings_of_the_step_loss(tmp_path):
    """Found by a review: classify --resume with another --adversarial (a setting of its step loss, in neither
    config) went on without a word, with other weights."""
    config = TrainConfig(epochs=2, batch_size=8, progress=False)
    fit(Tiny(3, 8), _data(), _data(16, 1), step_loss=step_loss, evaluate=evaluate, config=config, out=tmp_path,
        loss_settings={"--adversarial": 0.0})
    with pytest.raises(UsageError, match=r"was trained with other settings: --adversarial 0.0 → 0.5; resume as it"):
        fit(Tiny(3, 8), _data(), _data(16, 1), step_loss=step_loss, evaluate=evaluate, out=tmp_path,
            config=dataclasses.replace(config, resume=True), loss_settings={"--adversarial": 0.5})


def test_resume_refuses_another_number_of_processes(tmp_path):
    """Found by a review: a run of 2 torchrun processes resumed in 1 (or the reverse) went on without a word and
    ended with other weights (each rank draws its own dropout and RNG state)."""
    from grukit.checkpoint import load_state, save_state

    _train(tmp_path / "a", 2)
    path = tmp_path / "a" / "last.state.safetensors"
    tensors, metadata = load_state(path)
    assert metadata["grukit.train_state"]["run"] == {"processes": 1, "threads": torch.get_num_threads(),
                                                     "kernels": ["fused"]}
    metadata["grukit.train_state"]["run"]["processes"] = 2  # as a run under torchrun --nproc_per_node 2 saves it
    save_state(path, tensors, metadata)
    with pytest.raises(UsageError, match=r"^--resume: .* was trained in 2 process\(es\) \(torchrun "
                                         r"--nproc_per_node\), this run in 1; resume as it was trained"):
        _train(tmp_path / "a", 2, resume=True)


def test_a_diverging_loss_raises_diverged_error():
    config = TrainConfig(epochs=1, batch_size=8, lr=1e30, clip=0.0, progress=False)

    def nan_loss(model, batch):
        return step_loss(model, batch) * float("nan")

    with pytest.raises(DivergedError) as info:
        fit(Tiny(3, 4), _data(), None, step_loss=nan_loss, evaluate=evaluate, config=config, out=None)
    assert isinstance(info.value, FloatingPointError) and info.value.epoch == 1 and info.value.step == 0
    assert info.value.what == "loss"

    def nan_gradient(model, batch):  # a finite loss whose gradient is not
        loss = step_loss(model, batch)
        p = next(model.parameters())
        return loss + 0.0 * torch.sqrt(p - p.detach()).sum()  # value 0; gradient 0 · (d√u/du at 0 = inf) = nan

    with pytest.raises(DivergedError, match="training gradient norm became") as info:
        fit(Tiny(3, 4), _data(), None, step_loss=nan_gradient, evaluate=evaluate, config=config, out=None)
    assert info.value.what == "gradient norm"


def test_any_seed_below_2_to_the_63_orders_the_data():
    big = _epoch_order(10, 2**63 - 1, 3, None)
    assert sorted(big.tolist()) == list(range(10))
    assert torch.equal(_epoch_order(10, 7, 3, None), torch.randperm(10, generator=torch.Generator().manual_seed(
        7 * 1_000_003 + 3)))  # small seeds keep their order


def test_missing_metric_is_an_error():
    config = TrainConfig(epochs=1, batch_size=8, metric="val_accuracy", progress=False)
    with pytest.raises(KeyError, match="val_accuracy"):
        fit(Tiny(3, 4), _data(), _data(8), step_loss=step_loss, evaluate=evaluate, config=config, out=None)


DDP_SCRIPT = textwrap.dedent("""
    import dataclasses, os, sys, time, torch
    sys.path.insert(0, {tests!r})
    from test_train import Tiny, _data, step_loss, evaluate
    import grukit.distributed
    import grukit.train
    from grukit.train import DivergedError, TrainConfig, fit
    torch.manual_seed(0)
    model = Tiny(3, 8)
    rank = int(os.environ["RANK"])
    out, mode = sys.argv[1], sys.argv[3] if len(sys.argv) > 3 else "plain"
    def threads_after_leaving():  # Linux: once the group is left, none of its threads may remain
        if os.path.isdir("/proc/self/task"):
            grukit.distributed.leave_group()
            names = [open(f"/proc/self/task/{{t}}/comm").read().strip() for t in os.listdir("/proc/self/task")]
            open(os.path.join(sys.argv[2], f"rank{{rank}}.threads"), "w").write(" ".join(sorted(names)))
    config = TrainConfig(epochs=2, batch_size=8, lr=1e-2, seed=1, progress=False, snapshots=1)
    loss_fn, eval_fn = step_loss, evaluate
    if mode == "clock":
        config = TrainConfig(epochs=3, batch_size=8, lr=1e-2, seed=1, progress=False, time_limit=1e6)
    if mode == "clock" and rank == 1:  # after its first epoch, rank 1's clock jumps 10^9 s: only it is late
        real, jump = time.perf_counter, [0.0]
        grukit.train.time = type("Clock", (), {{"perf_counter": staticmethod(lambda: real() + jump[0])}})
        def eval_fn(m, val):
            jump[0] = 1e9
            return evaluate(m, val)
    if mode in ("nan", "error") and rank == 1:  # only rank 1's loss goes nan, or raises, at its third step
        calls = []
        def loss_fn(m, batch):
            calls.append(1)
            loss = step_loss(m, batch)
            if len(calls) == 3 and mode == "error":
                raise ValueError("rank 1 alone")
            return loss * float("nan") if len(calls) == 3 else loss
    if mode == "resume":  # dropout draws differ by rank: an interrupted run resumed ends as an unbroken one
        config = TrainConfig(epochs=3, batch_size=8, lr=1e-2, seed=1, progress=False)
        torch.manual_seed(0)
        unbroken = Tiny(3, 8)
        fit(unbroken, _data(32), _data(8, 1), step_loss=loss_fn, evaluate=eval_fn, config=config,
            out=os.path.join(sys.argv[2], "unbroken"))
        calls = []
        def stop_in_epoch_2(m, val):
            calls.append(1)
            if len(calls) == 2:
                raise RuntimeError("interrupted")
            return evaluate(m, val)
        broken = os.path.join(sys.argv[2], "broken")
        try:
            fit(model, _data(32), _data(8, 1), step_loss=loss_fn, evaluate=stop_in_epoch_2, config=config, out=broken)
        except RuntimeError:
            pass
        torch.manual_seed(0)
        model = Tiny(3, 8)
        fit(model, _data(32), _data(8, 1), step_loss=loss_fn, evaluate=eval_fn,
            config=dataclasses.replace(config, resume=True), out=broken)
        same = all(torch.equal(a, b) for a, b in zip(model.parameters(), unbroken.parameters()))
        open(os.path.join(sys.argv[2], f"rank{{rank}}.same"), "w").write(str(same))
        raise SystemExit(0)
    if mode == "buffers":  # a buffer each rank computed from its own share of the data: refused on every rank
        model.register_buffer("table", torch.full((2,), float(rank)))
    if mode == "twice":  # a first fit; then rank 0 works 3 s longer, so rank 1 joins the second fit early
        fit(Tiny(3, 8), _data(32), _data(8, 1), step_loss=loss_fn, evaluate=eval_fn, config=config, out=None)
        time.sleep(3.0 if rank == 0 else 0.0)
    try:  # "remainder": 33 samples, so a last batch of one, too small to split between the 2 ranks
        result = fit(model, _data(33 if mode == "remainder" else 32), _data(8, 1), step_loss=loss_fn,
                     evaluate=eval_fn, config=config, out=out)
    except RuntimeError as err:
        if mode != "buffers":
            raise
        open(os.path.join(sys.argv[2], f"rank{{rank}}.refused"), "w").write(str(err))
        raise SystemExit(0)
    except DivergedError as err:
        open(os.path.join(sys.argv[2], f"rank{{rank}}.diverged"), "w").write(str(err))
        threads_after_leaving()
        raise SystemExit(0)
    open(os.path.join(sys.argv[2], f"rank{{rank}}.epochs"), "w").write(str(len(result.history)))
    snaps = [(e, [w[k].tolist() for k in sorted(w)]) for e, w in result.snapshots]
    open(os.path.join(sys.argv[2], f"rank{{rank}}.snapshots"), "w").write(repr(snaps))
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    flat.numpy().tofile(os.path.join(sys.argv[2], f"rank{{rank}}.bin"))
    threads_after_leaving()
""")


def _torchrun(tmp_path, mode: str):
    script = tmp_path / "ddp_job.py"
    script.write_text(DDP_SCRIPT.format(tests=str(Path(__file__).parent)))
    out, dump = tmp_path / "out", tmp_path / "dump"
    dump.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(script), str(out), str(dump), mode]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)  # a hang fails here
    assert (proc.returncode == 0) == (mode != "error"), proc.stderr[-3000:]
    return out, dump, proc


def _assert_group_threads_ended(dump: Path) -> None:
    """After `leave_group`, no gloo thread is left on either rank. Before, DDP's import of torch.distributed.nn
    (after the group existed) kept the group alive past destroy_process_group; its threads ran into interpreter
    exit, where one rank now and then aborted ('terminate called without an active exception')."""
    if not Path("/proc/self/task").is_dir():
        return  # the job script reads threads from /proc: Linux only
    threads = {r: (dump / f"rank{r}.threads").read_text().split() for r in (0, 1)}
    assert not any("gloo" in name for names in threads.values() for name in names), threads


def test_ddp_an_error_on_one_rank_ends_the_job_at_once(tmp_path):
    t = time.perf_counter()
    _, _, proc = _torchrun(tmp_path, "error")
    assert "rank 1 alone" in proc.stderr and time.perf_counter() - t < 60  # no rank waits for the other


@pytest.mark.parametrize("mode", ["clock", "nan"])
def test_ddp_ranks_take_stopping_decisions_together(tmp_path, mode):
    """A time limit one rank's clock has passed, or a nan on one rank: both ranks stop (before, the
    other rank waited in the next all-reduce forever)."""
    _, dump, proc = _torchrun(tmp_path, mode)
    written = sorted(p.name for p in dump.iterdir() if p.suffix not in (".threads", ".snapshots"))
    if mode == "clock":
        assert written == ["rank0.bin", "rank0.epochs", "rank1.bin", "rank1.epochs"], proc.stderr[-3000:]
        assert [(dump / f"rank{r}.epochs").read_text() for r in (0, 1)] == ["1", "1"]
    else:
        assert written == ["rank0.diverged", "rank1.diverged"], proc.stderr[-3000:]
        assert all("nan" in (dump / f"rank{r}.diverged").read_text() for r in (0, 1))
    _assert_group_threads_ended(dump)


def test_ddp_refuses_buffers_that_differ_between_ranks(tmp_path):
    """Found by a review: fit's DDP does not send buffers (broadcast_buffers=False), so a speech normalisation
    computed from each rank's own share of the data trained on for the whole run with other inputs per rank."""
    out, dump, proc = _torchrun(tmp_path, "buffers")
    said = [(dump / f"rank{r}.refused").read_text() for r in (0, 1)]  # each rank's own error, before any training
    assert all("the model's buffers on rank(s) 1 differ from rank 0's" in text for text in said), proc.stderr[-3000:]
    assert sorted(p.name for p in dump.iterdir()) == ["rank0.refused", "rank1.refused"]


def test_ddp_resume_restores_every_ranks_random_state(tmp_path):
    """Each rank draws its own dropout masks (seed + rank): the state file keeps every rank's generator
    (before, only rank 0's, which every rank then resumed with)."""
    _, dump, _ = _torchrun(tmp_path, "resume")
    assert [(dump / f"rank{r}.same").read_text() for r in (0, 1)] == ["True", "True"]


@pytest.mark.parametrize("mode", ["plain", "twice", "remainder"])
def test_ddp_two_cpu_processes_identical_weights_and_rank0_files(tmp_path, mode):
    """One fit, or two in the same processes with rank 1 reaching the second 3 s before rank 0 (when
    each fit left and joined the group anew, rank 1 read the first group's addresses and hung), or one whose
    last batch is too small to split (found by a review: it was dropped but counted as a step, so the schedule
    ended short of its floor)."""
    out, dump, proc = _torchrun(tmp_path, mode)
    w0, w1 = (np.fromfile(dump / f"rank{r}.bin", dtype=np.float32) for r in (0, 1))
    assert w0.size > 0 and np.array_equal(w0, w1)
    assert "deprecated" not in proc.stderr  # torch 2.13 deprecates broadcast_buffers (found by a review's run)
    _assert_group_threads_ended(dump)
    snapshots = [(dump / f"rank{r}.snapshots").read_text() for r in (0, 1)]  # the same epochs and weights
    assert snapshots[0] == snapshots[1] and snapshots[0].startswith("[(1, [")
    assert sorted(p.name for p in out.iterdir()) == ["last.safetensors", "last.state.safetensors", "metrics.csv",
                                                    "model.safetensors"]
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert len(rows) == 2  # one writer: rank 0 wrote each epoch once
    config = TrainConfig(lr=1e-2)
    assert float(rows[-1]["lr"]) == pytest.approx(config.lr * config.min_lr_ratio)  # the last step's: the floor


def test_the_progress_bar_draws_on_a_terminal_only(monkeypatch):
    import io

    from grukit.train import _progress

    monkeypatch.setattr(sys, "stderr", io.StringIO())  # a log file or a pipe
    bar = _progress(10, "epoch 1/1", True)
    bar.update(5)
    bar.close()
    assert sys.stderr.getvalue() == "" and _progress(10, "epoch 1/1", False) is None


class _Pair(torch.nn.Module):
    """w is in the loss (gradient 100 per entry, norm 200); q only as 0·q, so its gradient is zero, not None."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(4, dtype=torch.float64))
        self.q = torch.nn.Parameter(torch.full((3,), 2.0, dtype=torch.float64))


def _pair_loss(model, batch):
    (x,) = batch
    return 100.0 * x.sum() * model.w.sum() + 0.0 * model.q.sum()


_ADAMW_STEP = torch.optim.AdamW.step  # the one a spy calls, however many spies were set


def _pair_fit(monkeypatch, **kw):
    """fit a _Pair over 3 one-sample batches × 2 epochs (6 steps, constant lr 0.1); returns it and the global
    gradient norm the optimizer was handed at each step."""
    norms, step = [], _ADAMW_STEP

    def spy(opt, *args, **kwargs):
        grads = [p.grad.flatten() for p in opt.param_groups[0]["params"]]
        norms.append(float(torch.linalg.vector_norm(torch.cat(grads))))
        return step(opt, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", spy)
    model = _Pair()
    config = TrainConfig(epochs=2, batch_size=1, lr=0.1, schedule="constant", progress=False, restore_best=False,
                         **kw)
    fit(model, TensorDataset(torch.ones(3, 1, dtype=torch.float64)), None, step_loss=_pair_loss,
        evaluate=lambda m, v: {"val_loss": 0.0}, config=config, out=None)
    return model, norms


def test_clipping_hands_the_optimizer_a_gradient_of_norm_at_most_clip(monkeypatch):
    """Found by a review: no test set clip above 0, so a clip that did nothing passed the suite."""
    _, clipped = _pair_fit(monkeypatch, clip=1.5)
    _, unclipped = _pair_fit(monkeypatch, clip=0.0)
    assert clipped == pytest.approx([1.5] * 6, rel=1e-6)  # clip_grad_norm_ scales by clip / (norm + 1e-6)
    assert unclipped == pytest.approx([200.0] * 6, rel=1e-12)


def test_weight_decay_shrinks_each_weight_by_one_minus_lr_times_decay_per_step(monkeypatch):
    """AdamW's decoupled decay: q (zero gradient, so no Adam update) becomes q·(1 − lr·λ) at every step. Found by
    a review: weight_decay appeared only in config checks, so an optimizer built without it passed the suite."""
    model, _ = _pair_fit(monkeypatch, weight_decay=0.5)
    assert torch.allclose(model.q.detach(), torch.full((3,), 2.0 * (1 - 0.1 * 0.5) ** 6, dtype=torch.float64),
                          rtol=0, atol=1e-12)
    model, _ = _pair_fit(monkeypatch, weight_decay=0.0)
    assert torch.equal(model.q.detach(), torch.full((3,), 2.0, dtype=torch.float64))


def test_train_loss_is_the_mean_batch_loss():
    """The logged train_loss of an epoch is the mean over its batches, not their sum (a mutation audit: the tests
    compared epochs only, which does not see a scale)."""
    data = TensorDataset(torch.zeros(64, 1))
    model = torch.nn.Linear(1, 1)
    result = fit(model, data, None, step_loss=lambda m, batch: m.weight.sum() * 0 + 2.0,
                 evaluate=lambda m, val: {"val_loss": 1.0},
                 config=TrainConfig(epochs=1, batch_size=16, progress=False), out=None)
    assert result.history[0]["train_loss"] == pytest.approx(2.0)


def test_resuming_a_run_stopped_by_patience_with_the_same_patience_trains_no_epoch(tmp_path):
    """A run that patience stopped stays stopped when resumed with the same patience (the resume re-judges the
    stop by this run's patience; only more patience goes on)."""
    losses = [1.0, 2.0, 3.0, 4.0, 5.0]
    _, first = _train(tmp_path / "run", 5, evaluate=_scripted(losses), patience=2)
    assert first.stopped_early and [row["epoch"] for row in first.history] == [1, 2, 3]
    _, again = _train(tmp_path / "run", 5, resume=True, evaluate=_scripted([]), patience=2)
    assert again.stopped_early and [row["epoch"] for row in again.history] == [1, 2, 3]


@pytest.mark.skipif(not cpu_kernel.available(), reason="grukit cpu kernel could not be built (see its warning)")
def test_fit_returns_the_cpu_kernel_s_pooled_buffers_when_it_ends():
    """The cpu kernel keeps freed buffers of 16 MiB or more for the next step of a training loop; after `fit`
    they served nothing and stayed held until exit (here 70 MiB) unless the user knew of
    `empty_cache`."""
    torch.manual_seed(0)
    model = grukit.GRU(8, 256, backend="cpu")  # big enough (T = 160, N = 64) for buffers of 16 MiB or more
    data = TensorDataset(torch.randn(64, 160, 8))

    def step_loss(m, batch):
        return m(batch[0].transpose(0, 1))[0].pow(2).mean()  # (T, N, H) → ()

    cpu_kernel.empty_cache()
    model(torch.randn(160, 64, 8))[0].sum().backward()  # one step outside fit: the pool holds its buffers
    assert cpu_kernel.cached_bytes() >= 16 << 20
    fit(model, data, None, step_loss=step_loss, evaluate=lambda m, v: {"val_loss": 0.0},
        config=TrainConfig(epochs=1, batch_size=64, progress=False), out=None)
    assert cpu_kernel.cached_bytes() == 0
