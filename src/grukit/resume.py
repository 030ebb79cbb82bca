"""Resuming a run: what it must share with the run it continues, and the refusal that says what differs.

    settings(model, config, train, P) = {"model_config": the model's class and config,
                                         "config": the TrainConfig,
                                         "loss": the step loss's own settings,
                                         "data": {train_samples, train_sha256 = fingerprint(train),
                                                  val_sha256 = the same of val (what picks the epoch),
                                                  buffers_sha256 = buffers_digest(model)},
                                         "run": {"processes": P, "threads": torch's threads,
                                                 "kernels": the backends its GRU layers run on}}

`grukit.train.fit` saves these with every state file; `check(saved, now, path)` raises a UsageError
naming --resume and every difference outside `MAY_CHANGE`: each setting as "name old → new" (with the
command-line flag behind it, where the model's config (`FLAGS`) or the command (`fit(flags=)`) names one), then
other data, other buffers or another process count; a run of another model class is said as such. Another
backend or thread count is allowed, and logged by `warn_rounding` when an epoch is left to train: the weights
then equal an unbroken run's to rounding, not bit for bit (`saved_threads` lets a command resume on the run's
own count). With other data, what the data shape (buffers, a vocabulary, a forecaster's scale) is said as
"other data" alone, and other buffers are named only when nothing else explains them.

Example:
    >>> import torch
    >>> from torch.utils.data import TensorDataset
    >>> from grukit.resume import check
    >>> check({"config": {"lr": 0.01}}, {"config": {"lr": 0.01}}, "runs/a/state")  # the same: nothing to say
    >>> try:
    ...     check({"config": {"lr": 0.01}}, {"config": {"lr": 0.5}}, "runs/a/state")
    ... except ValueError as err:
    ...     print(err)
    --resume: runs/a was trained with other settings: lr 0.01 → 0.5; resume as it was trained, or use another --out
"""
from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from grukit.errors import UsageError

log = logging.getLogger(__name__)

_TRAIN = "on other data (the training set's content differs: another file, or another flag that shapes it)"
_VAL = "on other data (the validation set's content differs: another file, or another flag that shapes it)"
_BUFFERS = "with other fixed model inputs (the model's buffers differ: other word vectors, ratio tables or data)"
BRIEF = 40  # a setting longer than this (as repr) is described by its size in a resume error, not shown
MAY_CHANGE = ("resume", "progress", "time_limit", "patience", "device", "backend", "kernels", "threads",
              "restore_best")  # may change on resume: none changes the trajectory, backend and threads its rounding
# may change ("run" part), but the weights then differ by rounding; "kernels" holds the backends that the
# --backend flag ("backend" in the model's config, "auto" or a name) resolved to
ROUNDING = {"kernels": "--backend", "threads": "--threads"}


def _json_config(config: Any) -> dict:
    return {f.name: getattr(config, f.name) for f in fields(config)}


def settings(model: nn.Module, config: Any, train: Dataset, processes: int,
             loss: dict[str, Any] | None = None, val: Any = None) -> dict[str, dict]:
    """What a resumed run must share with the run it continues (JSON values), as saved in the state file:
    the model's class and config, the training config (a TrainConfig), the settings of the step loss (`loss`),
    the training set's size and content, the validation data's content (it picks the best epoch and stops the
    run; `val` None: not recorded), the model's buffers, and the number of processes (each rank draws its own
    dropout)."""
    model_config = getattr(model, "config", None)
    model_part = asdict(model_config) if is_dataclass(model_config) and not isinstance(model_config, type) else {}
    return {"model_config": {"model": type(model).__name__, **model_part}, "config": _json_config(config),
            "loss": dict(loss or {}),
            "data": {"train_samples": len(train), "train_sha256": fingerprint(train),
                     **({"val_sha256": fingerprint(val)} if val is not None else {}),
                     "buffers_sha256": buffers_digest(model)},
            "run": {"processes": processes, "threads": torch.get_num_threads(), "kernels": kernels(model)}}


def kernels(model: nn.Module) -> list[str]:
    """The backends that run the model's grukit GRU layers (what backend="auto" resolved to on their device)."""
    from grukit.layer import GRU

    return sorted({m.kernel().name for m in model.modules() if isinstance(m, GRU)})


def saved_threads(out: Path) -> int | None:
    """The thread count that the run in `out` trained with (its state file, at the top or in fold-1/), or None:
    a command resuming without --threads takes it, so that the weights end as an unbroken run's, bit for bit.
    The header alone is read, unchecked: `fit` checks the whole file when it resumes."""
    from grukit.checkpoint import read_metadata
    from grukit.run_files import STATE_FILE

    for path in (out / STATE_FILE, out / "fold-1" / STATE_FILE):
        try:
            threads = read_metadata(path)["grukit.train_state"]["run"]["threads"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        return threads if isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1 else None
    return None


def buffers_digest(model: nn.Module) -> str:
    """The first 16 hex digits of a sha256 over the model's buffers at the start (fixed inputs such as ratio
    tables or word vectors): a resumed run must start from the same ones."""
    h = hashlib.sha256()
    _feed(h, dict(model.named_buffers()))
    return h.hexdigest()[:16]


def fingerprint(data: Dataset) -> str:
    """The first 16 hex digits of a sha256 over a data set's content: a resumed run must train on
    the same data (not another --csv, --transform or --season with the same number of windows).

    A dataset may give its own (a `fingerprint()` method); a TensorDataset is hashed through its
    tensors, any other Dataset through every sample: its tensors, arrays and numbers, in order; any
    other value (a validation set that only `evaluate` reads: a tensor, a tuple of them) as it is.

    Example:
        >>> import torch
        >>> from torch.utils.data import TensorDataset
        >>> zeros, ones = TensorDataset(torch.zeros(3, 2)), TensorDataset(torch.ones(3, 2))
        >>> fingerprint(zeros) == fingerprint(TensorDataset(torch.zeros(3, 2))) != fingerprint(ones)
        True
    """
    own = getattr(data, "fingerprint", None)
    if callable(own):
        return own()
    if isinstance(data, TensorDataset):
        return digest(data.tensors)
    if isinstance(data, Dataset):
        return digest(data[i] for i in range(len(data)))
    return digest([data])


def digest(values: Iterable) -> str:
    """The first 16 hex digits of a sha256 over `values`: tensors, arrays, numbers, strings, lists of them."""
    h = hashlib.sha256()
    for value in values:
        _feed(h, value)
    return h.hexdigest()[:16]


def _feed(h, value: Any) -> None:
    """Add `value` to the sha256 `h`: a tensor's or array's dtype, shape and bytes; containers item by item;
    a number or string by its repr (NumPy scalars as Python ones); any other object by its type alone."""
    if isinstance(value, torch.Tensor):
        h.update(f"{value.dtype}{tuple(value.shape)}".encode())
        plain = value.detach().cpu().resolve_conj().resolve_neg().contiguous()  # the values, not lazy flags
        h.update(plain.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(value, np.ndarray) and value.dtype != object:
        h.update(f"{value.dtype}{value.shape}".encode())
        h.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, (list, tuple, np.ndarray)):  # an object array by its items, not its pointers
        h.update(b"[")
        for v in value:
            _feed(h, v)
        h.update(b"]")
    elif isinstance(value, dict):
        for k in sorted(value, key=str):
            _feed(h, (str(k), value[k]))
    elif isinstance(value, np.generic):
        _feed(h, value.item())
    else:
        h.update(repr(value).encode() if isinstance(value, (int, float, str, bool, type(None)))
                 else type(value).__name__.encode())


def check(meta: dict, current: dict[str, dict], path: str | Path, from_data: Sequence[str] = (),
          flags: dict[str, str] | None = None, config_flags: dict[str, str] | None = None) -> None:
    """UsageError naming --resume and everything (outside MAY_CHANGE) that differs from `meta`'s: every
    setting as "name old → new", so that one derived from another (textgen's warmup_steps from --steps-per-epoch)
    comes with the one the user set, then other data, buffers or process count (`_reason`). `from_data`: the
    model config's fields that its training data set (a forecaster's scale), which differ because the data do
    (a count of them that is 0 on one side only, which a flag in `flags` switched, such as classify's bigram
    count under --no-bigrams, is also shown as a setting, with its flag);
    `flags` / `config_flags`: the command-line flag behind a model config / training config field, named beside it.

    State files written before the model config and data size were saved are checked on the training
    config alone; their model still has to fit the saved weights (`run_files.load_weights`). When to stop
    (patience, time limit) may change: it decides where the same trajectory ends, not its weights
    (a run stopped by patience goes on when resumed with more)."""
    current = json.loads(json.dumps(current, default=str))  # tuples -> lists, as in the saved JSON
    model_was = (meta.get("model_config") or {}).get("model")
    model_now = (current.get("model_config") or {}).get("model")
    if model_was is not None and model_now is not None and model_was != model_now:  # every setting would differ
        raise UsageError(f"--resume: {Path(path).parent} holds the run of another model ({model_was}, not "
                         f"{model_now}): a run of another command? resume it with that command, or use another --out")
    saved_data, data = meta.get("data") or {}, current.get("data") or {}
    other_data = any(saved_data.get(name) is not None and saved_data.get(name) != data.get(name)
                     for name in ("train_sha256", "val_sha256"))  # (a state from before val_sha256: not checked)
    named = {"model_config": flags or {}, "config": config_flags or {}}  # part -> {field: its flag}
    changed: list[str] = []  # "name old → new (set by --flag)"
    reasons: list[str] = []  # the other differences, each said once
    for part, values in current.items():
        saved = meta.get(part) or {}
        for name, value in values.items():
            if name in saved and name not in MAY_CHANGE and saved[name] != value:
                reason = _reason(part, name, saved[name], value, other_data, from_data)
                flag = named.get(part, {}).get(name)
                # a count the data set that is 0 on one side only was switched by its flag (classify's bigram
                # count under --no-bigrams): shown with the flag beside "other data", which it caused
                shown = reason is None or (reason == _TRAIN and flag and name in from_data
                                           and _switched(saved[name], value))
                if shown:
                    via = f" (set by {flag})" if flag else ""
                    changed.append(f"{name} {saved[name]!r} → {value!r}{via}")
                if reason is not None and reason not in reasons:
                    reasons.append(reason)
    if changed or other_data:  # other buffers follow from those (a member more, another table)
        reasons = [r for r in reasons if r != _BUFFERS]
    if _TRAIN in reasons:  # data said once: other training data come with other validation data, as a rule
        reasons = [r for r in reasons if r != _VAL]
    clauses = ([f"with other settings: {', '.join(changed)}"] if changed else []) + reasons
    if clauses:
        raise UsageError(f"--resume: {Path(path).parent} was trained {'; and '.join(clauses)}; resume as it was "
                         "trained, or use another --out")


def warn_rounding(meta: dict, current: dict[str, dict], path: str | Path) -> None:
    """Log when the run resumes on other backends or another thread count than `meta`'s (both may change): its
    weights will then equal an unbroken run's to rounding only. `fit` calls it when an epoch is left to train.
    A state file written before the resolved backends were saved has its --backend flag compared instead."""
    saved_run, run = meta.get("run") or {}, current.get("run") or {}
    pairs = {name: (saved_run.get(name), run.get(name)) for name in ROUNDING}
    if pairs["kernels"][0] is None:  # an older state file: the flag as given ("auto" or a name)
        pairs["kernels"] = ((meta.get("model_config") or {}).get("backend"),
                            (current.get("model_config") or {}).get("backend"))
    for name, (saved, value) in pairs.items():
        if saved is not None and value is not None and saved != value:
            saved, value = (", ".join(v) if isinstance(v, list) else v for v in (saved, value))
            flag = ROUNDING[name]
            log.warning("--resume: %s was trained with %s %s, this run has %s: its weights will equal an unbroken "
                        "run's to rounding only (%s %s resumes bit for bit)", Path(path).parent, flag, saved, value,
                        flag, saved)


def _switched(saved: Any, value: Any) -> bool:
    """True when two counts differ in being 0: one side has none at all (a flag turned them off)."""
    counts = all(isinstance(v, int) and not isinstance(v, bool) for v in (saved, value))
    return counts and (saved == 0) != (value == 0)


def _reason(part: str, name: str, saved: Any, value: Any, other_data: bool, from_data: Sequence[str]) -> str | None:
    """How a resume refusal says a difference that is not shown as "name old → new" (the data, the buffers, the
    process count, a long value such as a vocabulary), or None for one that is. With other data, what the data
    shape (buffers, a vocabulary, a forecaster's scale) goes under "other data"."""
    long = max(len(repr(saved)), len(repr(value))) > BRIEF  # a vocabulary, a list of columns
    from_the_data = name == "buffers_sha256" or long or (part == "model_config" and name in from_data)
    if name == "val_sha256":
        return _VAL
    if name in ("train_sha256", "train_samples") or (other_data and from_the_data):
        return _TRAIN
    if name == "buffers_sha256":
        return _BUFFERS
    if name == "processes":
        return f"in {saved} process(es) (torchrun --nproc_per_node), this run in {value}"
    if long:
        return f"with another {name} ({_size(saved)}; this run has {_size(value)})"
    return None


def _size(value: Any) -> str:
    """What a resume error shows of a long setting: '1,234 characters' for a text (a vocabulary, an
    alphabet), '7 items' for a list or dict, else the start of its repr."""
    if isinstance(value, str):
        return f"{len(value):,} characters"
    if isinstance(value, (list, dict)):
        return f"{len(value):,} items"
    return shorten(repr(value), BRIEF)


def shorten(text: str, width: int) -> str:
    """`text`, cut to `width` characters with "..." when longer."""
    return text if len(text) <= width else text[: width - 3] + "..."
