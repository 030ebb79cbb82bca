"""grukit.resume: what a resumed run must share, and how a refusal says what differs."""
import logging

import numpy as np
import pytest
import torch

from grukit.errors import UsageError
from grukit.resume import check, digest, fingerprint, warn_rounding


def test_fingerprint_reads_numpy_scalars_and_object_arrays_by_value():
    """np.float32 was hashed by its type alone (1.5 and 2.5 alike) and an object array by its pointers
    (another hash in every process)."""
    assert digest([np.float32(1.5)]) != digest([np.float32(2.5)])
    assert digest([np.int64(3)]) == digest([3])
    ragged = np.empty(2, dtype=object)
    ragged[0], ragged[1] = np.arange(3), np.arange(2)
    again = np.empty(2, dtype=object)
    again[0], again[1] = np.arange(3), np.arange(2)
    assert digest([ragged]) == digest([again])
    data = [(torch.ones(2), 1), (torch.zeros(2), 0)]  # any indexable dataset of samples
    assert fingerprint(data) == fingerprint(list(data)) != fingerprint(data[::-1])


def test_a_refusal_names_every_difference_once():
    """Settings as "old → new" with the flag behind them, then what else differs, each once; with other data, what
    the data shape goes under it. Found by a review: only the first difference was named, so a second one (other
    data behind a changed setting) showed only on the next try."""
    saved = {"model_config": {"hidden": 8, "scale": 1.5, "vocabulary": "a" * 50}, "config": {"lr": 0.01},
             "data": {"train_sha256": "x", "buffers_sha256": "b"}, "run": {"processes": 1}}
    now = {"model_config": {"hidden": 4, "scale": 2.5, "vocabulary": "b" * 50}, "config": {"lr": 0.5},
           "data": {"train_sha256": "y", "buffers_sha256": "c"}, "run": {"processes": 2}}
    with pytest.raises(UsageError) as info:
        check(saved, now, "runs/a/state", from_data=("scale",), flags={"hidden": "--hidden"})
    assert str(info.value) == (
        "--resume: runs/a was trained with other settings: hidden 8 → 4 (set by --hidden), lr 0.01 → 0.5; and on "
        "other data (the training set's content differs: another file, or another flag that shapes it); and in 1 "
        "process(es) (torchrun --nproc_per_node), this run in 2; resume as it was trained, or use another --out")
    same_data = {**now, "data": {"train_sha256": "x", "buffers_sha256": "c"}}  # the data alike, the buffers not
    with pytest.raises(UsageError) as info:
        check(saved, same_data, "runs/a/state", from_data=("scale",))
    assert ("with other settings: hidden 8 → 4, scale 1.5 → 2.5, lr 0.01 → 0.5; and with another vocabulary (50 "
            "characters; this run has 50 characters); and in 1 process(es)") in str(info.value)  # the buffers
    # follow from the settings (found by a review: --members 1 → 2 was also said as other fixed inputs)
    with pytest.raises(UsageError, match=r"was trained with other fixed model inputs \(the model's buffers differ"):
        check(saved, {**saved, "data": {"train_sha256": "x", "buffers_sha256": "c"}}, "runs/a/state")
    check(saved, {**saved, "config": {"lr": 0.01}}, "runs/a/state")  # nothing differs: no refusal
    with pytest.raises(UsageError, match=r"with other settings: lr 0.01 → 0.5 \(set by --lr\);"):
        check(saved, {**saved, "config": {"lr": 0.5}}, "runs/a/state", flags={"lr": "--hidden"},
              config_flags={"lr": "--lr"})  # each part's own flags


def test_a_field_that_the_data_and_a_flag_set_is_named_with_its_flag_beside_other_data():
    """Found by a QA run: `classify --no-bigrams --resume` said only "on other data (… or another flag that shapes
    it)"; the bigram count, which the data and --bigrams set, is now shown with its flag when it went to or from 0.
    Another count (other data: --limit) and a field the data alone set (no flag) stay under "other data"."""
    saved = {"model_config": {"bigrams": 613, "scale": 1.5}, "data": {"train_sha256": "x"}}
    now = {"model_config": {"bigrams": 0, "scale": 2.5}, "data": {"train_sha256": "y"}}
    with pytest.raises(UsageError) as info:
        check(saved, now, "runs/a/state", from_data=("bigrams", "scale"), flags={"bigrams": "--bigrams/--no-bigrams"})
    assert str(info.value) == (
        "--resume: runs/a was trained with other settings: bigrams 613 → 0 (set by --bigrams/--no-bigrams); and on "
        "other data (the training set's content differs: another file, or another flag that shapes it); resume as "
        "it was trained, or use another --out")
    fewer = {"model_config": {"bigrams": 540, "scale": 2.5}, "data": {"train_sha256": "y"}}  # --limit: the data's
    with pytest.raises(UsageError) as info:
        check(saved, fewer, "runs/a/state", from_data=("bigrams", "scale"), flags={"bigrams": "--bigrams/--no-bigrams"})
    assert "was trained on other data (the training set's content differs" in str(info.value)


def test_another_backend_or_thread_count_is_allowed_and_said(caplog):
    """Found by a review: both may change on resume, but the weights then differ from an unbroken run's by rounding;
    the log says so and how to resume bit for bit."""
    saved = {"model_config": {"backend": "auto"}, "run": {"processes": 1, "threads": 2, "kernels": ["cpu"]}}
    now = {"model_config": {"backend": "fused"}, "run": {"processes": 1, "threads": 1, "kernels": ["fused"]}}
    with caplog.at_level(logging.WARNING, logger="grukit.resume"):
        check(saved, now, "runs/a/state")  # allowed
        warn_rounding(saved, now, "runs/a/state")
    assert [r.getMessage() for r in caplog.records] == [
        "--resume: runs/a was trained with --backend cpu, this run has fused: its weights will equal an unbroken "
        "run's to rounding only (--backend cpu resumes bit for bit)",
        "--resume: runs/a was trained with --threads 2, this run has 1: its weights will equal an unbroken run's to "
        "rounding only (--threads 2 resumes bit for bit)"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="grukit.resume"):
        warn_rounding(saved, saved, "runs/a/state")
        # "auto" resolved to the backend named now: the same kernels, nothing to say
        warn_rounding(saved, {**saved, "model_config": {"backend": "cpu"}}, "runs/a/state")
        assert not caplog.records
        # a state file from before the kernels were saved: its flag is compared
        old = {"model_config": {"backend": "cpu"}, "run": {"processes": 1, "threads": 1}}
        warn_rounding(old, now, "runs/a/state")
    assert [r.getMessage()[:53] for r in caplog.records] == ["--resume: runs/a was trained with --backend cpu, this"]


def test_a_run_of_another_model_is_named_as_such():
    """Found by a review: `forecast --resume` in a textgen run's folder listed nine settings ("model 'CharLM' →
    'ForecastEnsemble', hidden_size …") instead of saying the folder holds another command's run."""
    saved = {"model_config": {"model": "CharLM", "hidden_size": 8}, "config": {"lr": 0.01}}
    now = {"model_config": {"model": "ForecastEnsemble", "hidden_size": 4}, "config": {"lr": 0.5}}
    with pytest.raises(UsageError) as info:
        check(saved, now, "runs/a/state")
    assert str(info.value) == ("--resume: runs/a holds the run of another model (CharLM, not ForecastEnsemble): a run "
                               "of another command? resume it with that command, or use another --out")


def test_fingerprint_sees_shape_and_dtype_and_digest_not_dict_order():
    """A mutation audit: hashing the bytes alone passed (zeros (3, 2) and (2, 3) share them), as did a digest that
    depended on the order of a dict's keys."""
    from torch.utils.data import TensorDataset

    assert fingerprint(TensorDataset(torch.zeros(3, 2))) != fingerprint(TensorDataset(torch.zeros(2, 3)))
    assert fingerprint(TensorDataset(torch.zeros(4))) != fingerprint(TensorDataset(torch.zeros(2, dtype=torch.float64)))
    assert digest([{"a": 1, "b": 2}]) == digest([{"b": 2, "a": 1}])
