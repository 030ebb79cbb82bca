"""What a run writes into --out and reads back: the training state round trip, metrics.csv, the checks on found
files (`grukit.run_files`). `fit`'s use of them (resume, damaged states) is tested in test_train.py."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

import grukit
from grukit import run_files as R
from grukit.errors import UsageError
from grukit.snapshots import Snapshots


def _trained_gru():
    """A grukit.GRU and an AdamW that has taken two steps (its moments and step count are set)."""
    torch.manual_seed(0)
    model = grukit.GRU(3, 4)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.8, 0.95))
    for _ in range(2):
        output, _ = model(torch.randn(5, 2, 3))  # (T, N, H)
        output.pow(2).mean().backward()
        opt.step()
        opt.zero_grad()
    return model, opt


def test_a_run_state_reads_back_as_written(tmp_path):
    model, opt = _trained_gru()
    best = {k: v.detach().clone() + 1 for k, v in model.state_dict().items()}  # another epoch's weights
    meta = {"epoch": 3, "best_epoch": 2, "step": 6, "history": [{"epoch": 1, "seconds": 0.1}]}
    rng = {"rng.cpu.0": torch.get_rng_state()}
    R.save_run_state(tmp_path / R.STATE_FILE, model, best, opt, meta, rng, Snapshots(0))
    tensors, got = R.load_run_state(tmp_path / R.STATE_FILE)
    assert {k: got[k] for k in meta} == meta
    for part, want in (("model", model.state_dict()), ("best", best)):
        weights = R.stored_weights(tensors, got, part)
        assert weights.keys() == want.keys() and all(torch.equal(weights[k], want[k]) for k in want)
    again = torch.optim.AdamW(model.parameters(), lr=1.0)
    again.load_state_dict(R.unflatten_optimizer(tensors, got["optimizer"]))
    saved, restored = opt.state_dict(), again.state_dict()
    assert restored["param_groups"] == saved["param_groups"]  # lr, betas (a tuple again), weight decay
    for i, state in saved["state"].items():
        assert all(torch.equal(torch.as_tensor(state[k]), torch.as_tensor(restored["state"][i][k])) for k in state)
    torch.rand(3)  # moves the generator on
    R.set_rng_states(tensors, 0, torch.device("cpu"))
    assert torch.equal(torch.get_rng_state(), rng["rng.cpu.0"])


def test_load_run_state_refuses_another_grukit_file(tmp_path):
    model, _ = _trained_gru()
    R.save_model(model, tmp_path / R.BEST_FILE)
    with pytest.raises(ValueError, match="expected a grukit training state file"):
        R.load_run_state(tmp_path / R.BEST_FILE)


def test_metrics_csv_takes_every_column_in_order_of_first_appearance(tmp_path):
    history = [{"epoch": 1, "train_loss": 0.5}, {"epoch": 2, "train_loss": 0.25, "val_loss": 0.125}]
    R.write_csv(tmp_path / R.CSV_FILE, history)
    with open(tmp_path / R.CSV_FILE, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["epoch", "train_loss", "val_loss"]
    assert rows == [{"epoch": "1", "train_loss": "0.5", "val_loss": ""},
                    {"epoch": "2", "train_loss": "0.25", "val_loss": "0.125"}]


def test_check_own_checkpoints_refuses_another_models_or_an_unreadable_file(tmp_path):
    model, _ = _trained_gru()
    R.save_model(model, tmp_path / R.LAST_FILE)
    R.check_own_checkpoints(grukit.GRU(3, 4), tmp_path)  # the same class: this run's own
    with pytest.raises(UsageError, match=r"--resume: expected .*last\.safetensors to hold .* got grukit\.GRU"):
        R.check_own_checkpoints(torch.nn.Linear(2, 2), tmp_path)
    (tmp_path / R.BEST_FILE).write_text("junk")
    with pytest.raises(UsageError, match=r"model\.safetensors to hold .* got an unreadable file \(ValueError\)"):
        R.check_own_checkpoints(grukit.GRU(3, 4), tmp_path)


def test_load_weights_names_resume_and_the_mismatch(tmp_path):
    model, _ = _trained_gru()
    with pytest.raises(UsageError, match=r"^--resume: the weights in x do not fit this model \(.*size mismatch"):
        R.load_weights(grukit.GRU(3, 5), model.state_dict(), "x")



@pytest.mark.parametrize("path,expected", [
    ("last.state.safetensors", False),  # the state file itself is not written before the state file
    (".last.state.safetensors.x1.tmp", True),  # ... but a temporary file of its write is
    ("fold-3/metrics.csv", True),
    ("runs/fold-3/model.safetensors", False),  # a fold-j/ folder deeper down is not one of this run's folds
    ("fold-/model.safetensors", False),
    (".model.safetensors.x1.bak", False),  # only ".<name>.<anything>.tmp" is a temporary file of a write
    (".model.safetensors.tmp", False),
])
def test_written_before_a_state_is_exactly_the_documented_files(path, expected):
    """Guards every clause of written_before_a_state: the first three own files (not the state), their and the
    state's temporary files, at the top or in one fold-j/ folder only. The doctest covered two True and two
    False cases; widening any clause passed."""
    assert R.written_before_a_state(Path(path)) is expected


def test_rng_of_a_state_written_before_per_rank_states_is_restored():
    """Guards set_rng_states' fallback to a file's un-ranked "rng.cpu" (written before per-rank states)."""
    saved = torch.get_rng_state()
    want = torch.rand(3)
    torch.rand(5)  # moves the generator on
    R.set_rng_states({"rng.cpu": saved}, 2, torch.device("cpu"))
    assert torch.equal(torch.rand(3), want)
