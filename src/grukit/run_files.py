"""What a training run writes into its --out folder and reads back on --resume: the file names, the training
state file (optimizer moments, step, every rank's RNG, the best weights, snapshots; tensors plus JSON metadata,
never pickle), the metrics CSV, and the checks on what is found there.

Files written into `out` (rank 0, when `out` is not None):
    model.safetensors        best weights so far (grukit.save; loadable with grukit.load)
    last.safetensors         weights after the latest epoch (grukit.save)
    last.state.safetensors   training state for --resume
    metrics.csv              one row per epoch: epoch, train_loss, lr, grad_norm, seconds, val metrics
"""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from grukit import resume
from grukit.errors import UsageError
from grukit.snapshots import Snapshots

STATE_FILE = "last.state.safetensors"
LAST_FILE = "last.safetensors"
BEST_FILE = "model.safetensors"
CSV_FILE = "metrics.csv"


def written_before_a_state(path: Path) -> bool:
    """True for a file (relative to --out) that `fit` writes at the end of an epoch before its STATE_FILE, or a
    temporary file of such a write, at the top or in a fold-j/ folder: all a run stopped during its first
    epoch's writes leaves.

    Example:
        >>> [written_before_a_state(Path(p)) for p in ("model.safetensors", "fold-2/.metrics.csv.x1.tmp",
        ...                                            "report.md", "data/model.safetensors")]
        [True, True, False, False]
    """
    own = (BEST_FILE, LAST_FILE, CSV_FILE, STATE_FILE)
    folder = path.parent
    if folder.parts and not (len(folder.parts) == 1 and re.fullmatch(r"fold-\d+", folder.name)):
        return False
    return path.name in own[:3] or any(re.fullmatch(rf"\.{re.escape(name)}\..+\.tmp", path.name) for name in own)


def _flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, st in sd["state"].items():
        for name, value in st.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{idx}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{name}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    """The optimizer's state_dict again from a state file's "optim.<param>.<name>" tensors and the metadata
    `save_run_state` wrote beside them (scalars such as the step; the parameter groups)."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    for key, value in meta["scalars"].items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    groups = [{k: tuple(v) if k == "betas" else v for k, v in g.items()} for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


def save_run_state(path: Path, model: nn.Module, best: dict[str, torch.Tensor], opt: torch.optim.Optimizer,
                   meta: dict, rng: dict[str, torch.Tensor], snaps: Snapshots) -> None:
    """Everything a resumed run needs, in one validated safetensors file (never a pickle). The model's and the
    best weights are written once: as a snapshot when `snaps` holds their epoch (meta "aliases"), else as
    "model." and "best." tensors."""
    from grukit.checkpoint import save_state

    aliases = {part: e for part, e in (("model", meta["epoch"]), ("best", meta["best_epoch"])) if e in snaps.weights}
    tensors = {} if "model" in aliases else {f"model.{k}": v.detach().cpu().contiguous()
                                             for k, v in model.state_dict().items()}
    if "best" not in aliases:
        tensors.update({f"best.{k}": v for k, v in best.items()})
    opt_tensors, opt_meta = _flatten_optimizer(opt)
    tensors.update(opt_tensors)
    tensors.update(rng)
    tensors.update(snaps.tensors())
    save_state(path, tensors, {"grukit.train_state": {**meta, "optimizer": opt_meta, "snapshots": snaps.meta(),
                                                      "aliases": aliases}})


def rng_states(size: int, device: torch.device) -> dict[str, torch.Tensor]:
    """{"rng.cpu.<rank>": state, and "rng.cuda.<rank>" on CUDA} for every rank (an all-gather under DDP, where
    each rank's dropout draws come from its own generator, seeded seed + rank)."""
    own = {"cpu": torch.get_rng_state()}  # (S,) uint8
    if device.type == "cuda":
        own["cuda"] = torch.cuda.get_rng_state(device)  # (S',) uint8
    states = {}
    for kind, state in own.items():
        parts = [state]  # parts[r] = rank r's (S,) state
        if size > 1:
            parts = [torch.empty_like(state, device=device) for _ in range(size)]  # nccl gathers CUDA tensors only
            torch.distributed.all_gather(parts, state.to(device))
        states.update({f"rng.{kind}.{r}": part.cpu() for r, part in enumerate(parts)})
    return states


def set_rng_states(tensors: dict[str, torch.Tensor], rank: int, device: torch.device) -> None:
    """Restore this rank's generators from `rng_states`' tensors (files written before it: "rng.cpu", "rng.cuda")."""
    cpu = tensors.get(f"rng.cpu.{rank}", tensors.get("rng.cpu"))
    if cpu is not None:
        torch.set_rng_state(cpu)
    cuda = tensors.get(f"rng.cuda.{rank}", tensors.get("rng.cuda"))
    if cuda is not None and device.type == "cuda":
        torch.cuda.set_rng_state(cuda, device)


def load_run_state(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, the training state's metadata) of a file `save_run_state` wrote; ValueError for another grukit
    file, and `grukit.checkpoint.load_state`'s errors for a damaged one."""
    from grukit.checkpoint import load_state

    tensors, metadata = load_state(path)
    if "grukit.train_state" not in metadata:
        raise ValueError(f"resume: expected a grukit training state file, got {str(path)!r}")
    return tensors, metadata["grukit.train_state"]


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def stored_weights(tensors: dict[str, torch.Tensor], meta: dict, part: str) -> dict[str, torch.Tensor]:
    """The "model" or "best" weights of a state file: their own tensors, or the snapshot of their epoch that
    `save_run_state` wrote in their place (meta "aliases")."""
    epoch = meta.get("aliases", {}).get(part)
    return _prefixed(tensors, f"{part}." if epoch is None else f"snapshot.{epoch}.")


def write_csv(path: Path, history: Sequence[dict[str, float]]) -> None:
    """metrics.csv: one row per epoch, the columns in order of first appearance, written atomically."""
    from grukit.checkpoint import write_atomic

    columns: list[str] = []
    for row in history:
        columns += [k for k in row if k not in columns]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    writer.writerows(history)
    write_atomic(path, text.getvalue().encode())


def save_model(model: nn.Module, path: Path) -> None:
    """`grukit.save(model, path)`: the weights with the model's config, loadable by `grukit.load`."""
    from grukit.checkpoint import save

    save(model, path)


def check_own_checkpoints(model: nn.Module, out: Path) -> None:
    """UsageError when --out holds a checkpoint that this model's run did not write (another class, or a file
    that is not a readable grukit checkpoint): a run that starts from scratch there would overwrite it."""
    from grukit.checkpoint import read_metadata, registered_name

    mine = registered_name(type(model))
    for path in (out / BEST_FILE, out / LAST_FILE):
        if not path.exists():
            continue
        try:
            theirs = read_metadata(path).get("class") or "a file without a grukit model"
        except (ValueError, OSError) as err:
            theirs = f"an unreadable file ({type(err).__name__})"
        if theirs != mine:
            raise UsageError(f"--resume: expected {path} to hold a {mine} model (this run's, stopped in its first "
                             f"epoch), got {theirs}; starting from scratch would overwrite it: use another --out")


def load_weights(model: nn.Module, weights: dict[str, torch.Tensor], path: Path) -> None:
    """model.load_state_dict(weights), or one UsageError naming --resume and the first mismatch."""
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        lines = str(err).strip().splitlines()  # a heading, then one line per mismatch
        detail = lines[min(1, len(lines) - 1)].strip()
        detail = resume.shorten(detail, 160)  # one line, not every missing key
        raise UsageError(f"--resume: the weights in {path} do not fit this model ({detail}); resume with the "
                         "same settings or use another --out") from None
