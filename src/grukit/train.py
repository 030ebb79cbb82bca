"""One training loop for every task: AdamW, clipping, a schedule, early stopping, checkpoints, DDP.

    for epoch e = 1 .. E:
        for batch b in a permutation of `train` seeded by (seed, e), this rank's share:
            loss = step_loss(model, b);  loss.backward()
            g ← g · min(1, clip / ‖g‖₂)                       gradient-norm clipping
            lr_t = schedule(t)                                   warmup, then cosine / linear / constant
            AdamW step with lr_t
        metrics = evaluate(model, val)                           under no_grad, model.eval()
        keep the best weights by metrics[config.metric]; stop after `patience` epochs without improvement
        out/last.safetensors (grukit.save) + out/last.state.safetensors, out/metrics.csv

The loop knows no task: a task gives a `Dataset`, a `step_loss(model, batch) -> loss`
and an `evaluate(model, val) -> {name: float}`.

Determinism and resume. The data order of epoch e depends only on (seed, e); the
learning rate only on the global step; the random state (dropout) is saved after every
epoch. `fit(..., config=replace(config, resume=True), out=same_dir)` therefore ends with
the same weights, bit for bit, as a run that was never stopped. The training state
(optimizer moments, step, RNG, best weights, history, and with `snapshots` the weights
around the best epoch, `grukit.snapshots`) lives in `last.state.safetensors`:
tensors plus JSON metadata, never pickle. It also records the model's config, the
training config, the number of training samples and a hash of their content (`resume.fingerprint`);
a resumed run whose settings differ (another model size, another --epochs and so another
schedule, other data) is refused with
a UsageError naming --resume and every difference (`grukit.resume`). Only `resume.MAY_CHANGE`
may differ.

A loss or gradient that becomes nan or inf raises `DivergedError` (a FloatingPointError); under
DDP every rank raises it at the same step, since the all-reduced gradient decides.

Distributed. Under `torchrun --nproc_per_node P` (env WORLD_SIZE > 1) the first `fit` of a
process joins the process group, which every later `fit` of the process uses and which is left when
the process exits (`grukit.distributed`). The loop wraps the model in DistributedDataParallel and
gives rank k the samples k, k+P, ... of every global batch, so `batch_size` is the global
batch. Every rank evaluates the full validation set (identical numbers, identical stopping);
only rank 0 writes files and shows progress. `grukit.distributed.is_main()` tells a task whether it is rank 0.

Files: after every epoch rank 0 writes the best and the latest weights, the training state and metrics.csv
into `out` (when it is not None); `grukit.run_files` names them, writes them and reads them back.

Example:
    >>> import torch, tempfile
    >>> from torch.utils.data import TensorDataset
    >>> from grukit.train import TrainConfig, fit
    >>> x = torch.randn(64, 3); y = x @ torch.tensor([1.0, -2.0, 0.5])
    >>> model = torch.nn.Linear(3, 1)
    >>> def step_loss(m, b): return ((m(b[0]).squeeze(1) - b[1]) ** 2).mean()
    >>> def evaluate(m, v): return {"val_loss": step_loss(m, v.tensors).item()}
    >>> data = TensorDataset(x, y)
    >>> result = fit(model, data, data, step_loss=step_loss, evaluate=evaluate,
    ...              config=TrainConfig(epochs=30, lr=0.05, batch_size=16, progress=False), out=None)
    >>> result.best["val_loss"] < 0.05
    True
"""
from __future__ import annotations

import copy
import gc
import inspect
import logging
import math
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset, default_collate

from grukit import resume
from grukit.distributed import (
    OWN_GROUP,
    any_rank,
    check_same_buffers,
    init_distributed,
    is_main,
    leave_group,
    resolve_device,
    world,
)
from grukit.errors import UsageError
from grukit.kernels import cpu as cpu_kernel
from grukit.run_files import (
    BEST_FILE,
    CSV_FILE,
    LAST_FILE,
    STATE_FILE,
    check_own_checkpoints,
    load_run_state,
    load_weights,
    rng_states,
    save_model,
    save_run_state,
    set_rng_states,
    stored_weights,
    unflatten_optimizer,
    write_csv,
    written_before_a_state,
)
from grukit.snapshots import Snapshots

log = logging.getLogger(__name__)

LR_MAX = float(torch.finfo(torch.float32).max)  # AdamW multiplies float32 weights by lr: beyond, it fails


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10  # passes over `train` (or over steps_per_epoch batches)
    batch_size: int = 32  # global batch size (split across DDP ranks)
    lr: float = 1e-3  # peak learning rate of AdamW
    weight_decay: float = 0.01  # AdamW decoupled weight decay
    betas: tuple[float, float] = (0.9, 0.999)  # AdamW moment coefficients
    clip: float = 1.0  # max global gradient L2 norm; 0 turns clipping off
    schedule: str = "cosine"  # "cosine" | "linear" (decay to min_lr_ratio·lr) | "constant"
    warmup_steps: int = 0  # linear warmup from 0 to lr over this many steps (at most half the run's)
    min_lr_ratio: float = 0.0  # final lr as a fraction of lr (cosine / linear)
    steps_per_epoch: int | None = None  # batches per epoch; None = one full pass
    metric: str = "val_loss"  # key of evaluate()'s dict that picks the best epoch
    mode: str = "min"  # "min" or "max": which direction of `metric` is better
    patience: int | None = None  # stop after this many epochs without improvement; None = never
    restore_best: bool = True  # load the best epoch's weights into the model at the end
    time_limit: float | None = None  # seconds of the whole run (a resumed run's earlier calls count); stop before
    # an epoch that would overrun it
    seed: int = 0  # seeds the data order and torch's RNG
    device: str = "cpu"  # "cpu", "cuda", "cuda:1", or "auto" (cuda when available)
    progress: bool = True  # tqdm progress bar on rank 0, when stderr is a terminal
    resume: bool = False  # continue from out/last.state.safetensors when it exists
    snapshots: int = 0  # k: also return the weights of epochs best−k … best+k (FitResult.snapshots)

    def __post_init__(self) -> None:
        _check(self.epochs >= 1, "epochs", "an integer >= 1", self.epochs)
        _check(self.batch_size >= 1, "batch_size", "an integer >= 1", self.batch_size)
        _check(0 < self.lr <= LR_MAX, "lr", f"a number > 0 and at most {LR_MAX:.4g} (float32's largest)", self.lr)
        _check(self.weight_decay >= 0 and math.isfinite(self.weight_decay), "weight_decay", "a finite number >= 0",
               self.weight_decay)
        _check(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "betas", "two numbers in [0, 1)",
               self.betas)
        _check(self.clip >= 0, "clip", "a number >= 0", self.clip)
        _check(self.warmup_steps >= 0, "warmup_steps", "an integer >= 0", self.warmup_steps)
        _check(0 <= self.min_lr_ratio <= 1, "min_lr_ratio", "a number in [0, 1]", self.min_lr_ratio)
        _check(self.schedule in ("cosine", "linear", "constant"), "schedule",
               "'cosine', 'linear' or 'constant'", self.schedule)
        _check(self.mode in ("min", "max"), "mode", "'min' or 'max'", self.mode)
        _check(self.patience is None or self.patience >= 1, "patience", "None or an integer >= 1", self.patience)
        _check(self.steps_per_epoch is None or self.steps_per_epoch >= 1, "steps_per_epoch",
               "None or an integer >= 1", self.steps_per_epoch)
        _check(self.snapshots >= 0, "snapshots", "an integer >= 0", self.snapshots)


@dataclass
class FitResult:
    history: list[dict[str, float]]  # one dict per epoch (the rows of metrics.csv)
    best: dict[str, float]  # the row of the best epoch
    best_epoch: int  # 1-based epoch whose weights the model holds (restore_best=True)
    stopped_early: bool  # patience or time_limit ended the run before config.epochs
    seconds: float  # wall time of this call (a resumed run counts only its own part)
    files: dict[str, Path] = field(default_factory=dict)  # name -> path of what was written
    time_limited: bool = False  # config.time_limit ended the run (stopped_early is True too)
    # (epoch, CPU weights) of the epochs best−k … best+k that ran, k = config.snapshots (grukit.snapshots)
    snapshots: list[tuple[int, dict[str, torch.Tensor]]] = field(default_factory=list)
    # wall time of the run over all its calls: this one's (when it trained an epoch; from after the kernels were
    # built or loaded) and, for a resumed run, the calls before it (saved with each state); what a report calls
    # the time of training
    run_seconds: float = 0.0

    def shown_files(self) -> dict[str, Path]:
        """The files a command prints after its run, by the names every command uses: the best epoch's checkpoint
        and the per-epoch log (the latest-epoch and optimiser state files serve --resume and are not listed)."""
        return {"checkpoint": self.files["model"], "log": self.files["csv"]}


class DivergedError(FloatingPointError):
    """The training loss or its gradient, or the validation metric, became nan or inf (most often: a learning
    rate too high)."""

    def __init__(self, value: float, epoch: int, step: int, what: str = "loss", all_ranks: bool = False,
                 part: str = "training"):
        super().__init__(f"{part} {what} became {value} at epoch {epoch}, step {step}")
        self.value, self.epoch, self.step, self.what, self.part = value, epoch, step, what, part
        self.all_ranks = all_ranks  # raised by every rank at this step (the all-reduced gradient decided)


def _diverged(bar, value: float, epoch: int, step: int, what: str, all_ranks: bool = False,
              part: str = "training") -> None:
    """Close the progress bar (the error message starts a line of its own), raise DivergedError."""
    if bar is not None:
        bar.close()
    raise DivergedError(value, epoch, step, what, all_ranks, part)


def _check(ok: bool, name: str, expected: str, got: Any) -> None:
    if not ok:
        raise ValueError(f"{name}: expected {expected}, got {got!r}")


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA) so that model initialisation is reproducible."""
    torch.manual_seed(seed)


# ----------------------------------------------------------------------------- schedule

def learning_rate(step: int, total_steps: int, config: TrainConfig) -> float:
    """lr at global step `step` (0-based) of `total_steps`: linear warmup, then the configured decay.

        warmup:   lr · (step+1) / w                                  for step < w = min(warmup_steps, total/2)
        cosine:   lr · (m + (1-m) · ½(1 + cos(π p)))                  m = min_lr_ratio,
        linear:   lr · (m + (1-m) · (1 - p))                         p = (step − a) / (total − 1 − a)

    a = max(w − 1, 0) is the step at the peak lr (the warmup's last, or the first without one), so the
    decay leaves the peak at once and its last step, total − 1, has p = 1: lr · m (a run of one step takes
    it at the peak). The warmup takes at most half the run, so a short run still reaches lr and decays.

    Example:
        >>> config = TrainConfig(lr=1.0, schedule="linear", warmup_steps=0, min_lr_ratio=0.1)
        >>> [round(learning_rate(k, 4, config), 2) for k in range(4)]
        [1.0, 0.7, 0.4, 0.1]
    """
    w = min(config.warmup_steps, total_steps // 2)
    if step < w:
        return config.lr * (step + 1) / w
    if config.schedule == "constant":
        return config.lr
    a = max(w - 1, 0)  # the peak
    p = min(1.0, (step - a) / max(1, total_steps - 1 - a))
    m = config.min_lr_ratio
    decay = 0.5 * (1.0 + math.cos(math.pi * p)) if config.schedule == "cosine" else 1.0 - p
    return config.lr * (m + (1.0 - m) * decay)


# ----------------------------------------------------------------------------- batches

def _epoch_order(n: int, seed: int, epoch: int, needed: int | None) -> torch.Tensor:
    """The sample order of one epoch: a permutation seeded by (seed, epoch), repeated if `needed` > n."""
    g = torch.Generator().manual_seed((seed * 1_000_003 + epoch) % 2**64)  # a 64-bit seed for any seed >= 0
    if needed is None:
        return torch.randperm(n, generator=g)
    parts = [torch.randperm(n, generator=g) for _ in range(-(-needed // n))]
    return torch.cat(parts)[:needed]


def _batches(data: Dataset, order: torch.Tensor, batch_size: int, rank: int, size: int,
             collate: Callable | None) -> Iterator[Any]:
    """This rank's part of each global batch of `order`; a batch too small to split is dropped."""
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        if len(idx) < size:
            return
        idx = idx[rank::size]  # (B / size,)
        if collate is not None:
            yield collate([data[i] for i in idx.tolist()])
        elif isinstance(data, TensorDataset):
            yield tuple(t[idx] for t in data.tensors)
        else:
            yield default_collate([data[i] for i in idx.tolist()])


def _to(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: _to(v, device) for k, v in batch.items()}
    return batch


def steps_per_epoch(n_train: int, config: TrainConfig, processes: int = 1) -> int:
    """Optimizer steps in one epoch (the same on every rank): a last batch smaller than the number of processes
    is not split (`_batches` drops it), so it is no step.

    Example:
        >>> config = TrainConfig(batch_size=32)
        >>> steps_per_epoch(33, config), steps_per_epoch(33, config, processes=2), steps_per_epoch(34, config, 2)
        (2, 1, 2)
    """
    if config.steps_per_epoch is not None:
        return config.steps_per_epoch
    full, rest = divmod(n_train, config.batch_size)
    return max(1, full + (rest >= processes))


# ----------------------------------------------------------------------------- the loop

def _ddp(model: nn.Module) -> nn.Module:
    """`model` in DistributedDataParallel that sends no buffers with a forward: forward_sync_buffers=False where
    torch has it (2.13 on, where broadcast_buffers warns that it is deprecated; it still sends them once, at the
    start, which changes nothing: `check_same_buffers` has found them equal), broadcast_buffers=False before."""
    ddp = nn.parallel.DistributedDataParallel
    off = "forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(ddp).parameters else "broadcast_buffers"
    return ddp(model, **{off: False})


def _files_of_the_state(model: nn.Module, best_weights: dict[str, torch.Tensor], history: list[dict],
                        out: Path) -> None:
    """Write the last and best models and the CSV log as a resumed state has them (`model` holds its last
    weights). An epoch stopped after writing these but before its state leaves them one epoch ahead of it, and
    a file may have been deleted or damaged since; a resumed run that trains no further epoch would end with
    them (found by a review)."""
    save_model(model, out / LAST_FILE)
    best = copy.deepcopy(model)
    best.load_state_dict(best_weights)
    save_model(best, out / BEST_FILE)
    write_csv(out / CSV_FILE, history)


def _per_member(train_loss: float, model: nn.Module) -> str:
    """" (sum of M members, x each)" for an ensemble, whose config has `members` M > 1 and whose step loss sums
    its members' own losses (each member trains on its own), so that the logged sum is not read as one model's
    loss beside the validation loss; "" for any other model."""
    members = getattr(getattr(model, "config", None), "members", 1)
    if not isinstance(members, int) or isinstance(members, bool) or members < 2:
        return ""
    return f" (sum of {members} members, {train_loss / members:.4f} each)"


def fit(model: nn.Module, train: Dataset, val: Any, *, step_loss: Callable[[nn.Module, Any], torch.Tensor],
        evaluate: Callable[[nn.Module, Any], dict[str, float]], config: TrainConfig,
        out: str | Path | None, collate: Callable[[list], Any] | None = None,
        loss_settings: dict[str, Any] | None = None, flags: dict[str, str] | None = None) -> FitResult:
    """Train `model` on `train`, pick the best epoch on `val`; see the module docstring.

    model      an nn.Module; with `out`, it needs a `config` dataclass (grukit.save)
    train      a torch Dataset; a TensorDataset is batched by indexing its tensors
    val        anything; only `evaluate` reads it
    step_loss  (model, batch) -> scalar loss tensor; batch is on config.device
    evaluate   (model, val) -> {name: float}; must contain config.metric; runs under no_grad
    collate    list of samples -> batch (default: torch's default_collate)
    loss_settings  JSON values that shape `step_loss`, named by their flag ({"--adversarial": 0.05} for
               classify): a resumed run must share them
    flags      the command-line flag behind each `config` field a command sets from one ({"lr": "--lr"}), named
               when a resume is refused for it
    out        folder for checkpoints and metrics.csv (created), or None to write nothing
    """
    t0 = time.perf_counter()
    device = resolve_device(config.device)
    init_distributed(device)
    try:
        return _fit(model, train, val, step_loss=step_loss, evaluate=evaluate, config=config, out=out,
                    collate=collate, t0=t0, device=device, loss_settings=loss_settings or {}, flags=flags or {})
    except DivergedError as err:
        if err.all_ranks and OWN_GROUP[0] and torch.distributed.is_initialized():
            # the failed frames hold the DDP wrapper, whose reducer holds the group: drop them (and any
            # cycle through them), meet the other ranks (which failed at the same step), then leave the
            # group, so that its threads end here and not at interpreter exit
            traceback.clear_frames(err.__traceback__)
            gc.collect()
            torch.distributed.barrier()
            leave_group()
        raise  # other errors, and one rank's own DivergedError, leave at once; torchrun stops the job
    finally:
        cpu_kernel.empty_cache()  # the cpu kernel's pooled step buffers serve the next step, not what follows


def _fit(model: nn.Module, train: Dataset, val: Any, *, step_loss: Callable, evaluate: Callable,
         config: TrainConfig, out: str | Path | None, collate: Callable | None, t0: float, loss_settings: dict,
         device: torch.device, flags: dict[str, str]) -> FitResult:
    """`fit` once the process group is joined (under torchrun); `fit` leaves it only after a divergence."""
    rank, size = world()
    _check(config.batch_size % size == 0, "batch_size", f"a multiple of the world size {size}", config.batch_size)
    _check(len(train) >= size, "train", f"at least one sample per rank ({size})" if size > 1 else "a non-empty dataset",
           len(train))
    torch.manual_seed(config.seed + rank)
    model.to(device)
    resume.kernels(model)  # resolves each GRU layer's backend, so the cpu kernel builds (on first use) before epoch 1
    out = Path(out) if out is not None else None
    main = rank == 0 and out is not None
    if main:
        out.mkdir(parents=True, exist_ok=True)
        for stale in out.glob(".*.tmp"):  # left by a write that a kill (not Ctrl-C) cut short
            if written_before_a_state(stale.relative_to(out)):
                stale.unlink(missing_ok=True)

    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
    t_run = time.perf_counter()  # what run_seconds counts of this call: not the kernel's build or load, nor the
    # optimizer's first construction (which imports torch._dynamo: a second)
    per_epoch = steps_per_epoch(len(train), config, size)
    total_steps = per_epoch * config.epochs
    history: list[dict[str, float]] = []
    best_value: float | None = None
    best_epoch, bad_epochs, step, start_epoch = 0, 0, 0, 1
    best_weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    snaps = Snapshots(config.snapshots)
    stopped_early = time_limited = False
    seconds_before = 0.0  # wall time of the calls of this run before this one (a resumed run's)
    limit_before = 0.0  # the same counted as the time limit counts: from each call's start (t0), set-up included
    epoch_seconds = 0.0  # the last epoch's wall time

    state_path = out / STATE_FILE if out is not None else None
    # saved in each state
    settings = resume.settings(model, config, train, size, loss_settings, val) if out is not None else {}
    if config.resume and state_path is not None and state_path.exists():
        try:  # a state file edited or damaged by hand fails anywhere in here: one line naming --resume
            tensors, meta = load_run_state(state_path)
            model_config = getattr(model, "config", None)
            resume.check(meta, settings, state_path, from_data=getattr(model_config, "FROM_DATA", ()),
                         flags=getattr(model_config, "FLAGS", {}), config_flags=flags)  # e.g. a forecaster's scale
            load_weights(model, stored_weights(tensors, meta, "model"), state_path)
            best_weights = stored_weights(tensors, meta, "best")
            if not best_weights:
                raise ValueError("no weights of the best epoch")
            opt.load_state_dict(unflatten_optimizer(tensors, meta["optimizer"]))
            set_rng_states(tensors, rank, device)
            snaps = Snapshots.restore(config.snapshots, tensors, meta.get("snapshots"), state_path)
            history, best_value, best_epoch = list(meta["history"]), meta["best_value"], int(meta["best_epoch"])
            # a state written before run_seconds was saved: its epochs' own seconds
            seconds_before = float(meta.get("run_seconds", sum(row["seconds"] for row in history)))
            limit_before = float(meta.get("limit_seconds", seconds_before))  # (a state from before it was saved)
            bad_epochs, step, start_epoch = int(meta["bad_epochs"]), int(meta["step"]), int(meta["epoch"]) + 1
            epoch_seconds = float(history[-1]["seconds"]) if history else 0.0  # what the next epoch may take
        except UsageError:
            raise
        except (KeyError, TypeError, AttributeError, IndexError, ValueError, RuntimeError) as err:
            detail = resume.shorten(" ".join(str(err).split()) or type(err).__name__, 120)
            raise UsageError(f"--resume: {state_path} is damaged ({type(err).__name__}: {detail}); use another "
                             "--out to start again") from None
        if config.snapshots and "snapshots" not in meta:
            log.warning("resume: %s holds no snapshots (written before they existed): the window around the "
                        "best epoch holds only the epochs from here on", state_path)
        # the saved flag records a patience stop (a time limit stops before saving): re-judge it by this
        # run's patience, so a resumed run with more patience goes on where an unbroken one would
        stopped_early = (config.patience is not None and bad_epochs >= config.patience
                         and meta["epoch"] < config.epochs)
        if main:
            _files_of_the_state(model, best_weights, history, out)
        if start_epoch <= config.epochs and not stopped_early:  # an epoch is left to train
            resume.warn_rounding(meta, settings, state_path)
            log.info("resuming after epoch %d (step %d) from %s", meta["epoch"], step, state_path)
        else:
            log.info("resume: the run in %s had ended after epoch %d (%s): nothing is left to train, and its outputs "
                     "are written again from the saved state", out, meta["epoch"],
                     "stopped by its patience" if stopped_early else f"of at most {config.epochs}")
    elif config.resume:
        if out is not None:  # every rank reads them, so that under torchrun all refuse together
            check_own_checkpoints(model, out)  # starting from scratch overwrites them
        log.warning("resume: no %s in %s; starting from scratch", STATE_FILE, out)

    # buffers (ratio tables, word vectors) are fixed inputs, never sent with a forward: every rank must start
    # with the same ones
    if size > 1:
        check_same_buffers(model, size, device)
    trained = _ddp(model) if size > 1 else model
    better = (lambda a, b: a < b) if config.mode == "min" else (lambda a, b: a > b)
    files: dict[str, Path] = {}
    lr = learning_rate(step, total_steps, config)

    for epoch in range(start_epoch, config.epochs + 1):
        if stopped_early:
            break
        spent = limit_before + time.perf_counter() - t0  # the whole run's: a resume does not restart the clock
        if config.time_limit is not None and any_rank(spent + epoch_seconds > config.time_limit, size, device):
            log.info("time limit %g s of the run reached before epoch %d%s", config.time_limit, epoch,
                     " (a resumed run counts the seconds of its earlier calls)" if epoch == start_epoch > 1 else "")
            stopped_early = time_limited = True
            break
        te = time.perf_counter()
        needed = per_epoch * config.batch_size if config.steps_per_epoch is not None else None
        order = _epoch_order(len(train), config.seed, epoch, needed)
        trained.train()
        loss_sum = torch.zeros(2, dtype=torch.float64)  # (sum of batch losses, batches)
        norm_sum = 0.0
        bar = _progress(per_epoch, f"epoch {epoch}/{config.epochs}", config.progress and rank == 0)
        for batch in _batches(train, order, config.batch_size, rank, size, collate):
            lr = learning_rate(step, total_steps, config)
            for group in opt.param_groups:
                group["lr"] = lr
            loss = step_loss(trained, _to(batch, device))
            if size == 1 and not torch.isfinite(loss):  # under DDP the all-reduced gradient decides, below
                _diverged(bar, loss.item(), epoch, step, "loss")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if config.clip > 0:
                norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
            else:
                norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()
                                                             if p.grad is not None]))
            if not torch.isfinite(norm):  # under DDP the all-reduced gradient's: a nan on one rank stops all
                what, value = ("gradient norm", float(norm)) if torch.isfinite(loss) else ("loss", loss.item())
                _diverged(bar, value, epoch, step, what, size > 1)
            opt.step()
            step += 1
            loss_sum += torch.tensor([loss.item(), 1.0], dtype=torch.float64)
            norm_sum += float(norm)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss_sum[0].item() / loss_sum[1].item():.4f}", lr=f"{lr:.2e}")
        if size > 1:
            loss_sum = loss_sum.to(device)  # (2,) nccl reduces CUDA tensors only
            torch.distributed.all_reduce(loss_sum)
            loss_sum = loss_sum.cpu()
        batches = max(1.0, loss_sum[1].item())
        model.eval()
        with torch.no_grad():
            metrics = {k: float(v) for k, v in evaluate(model, val).items()}
        if config.metric not in metrics:
            raise KeyError(f"evaluate() returned {sorted(metrics)}; config.metric {config.metric!r} is missing")
        unbounded = [key for key in (config.metric, *metrics) if not math.isfinite(metrics[key])]
        if unbounded:  # any metric (the history is JSON); every rank evaluates the same: all raise together
            _diverged(bar, metrics[unbounded[0]], epoch, step, unbounded[0], size > 1, part="validation")
        epoch_seconds = time.perf_counter() - te
        row = {"epoch": epoch, "train_loss": loss_sum[0].item() / batches, "lr": lr,
               "grad_norm": norm_sum * size / batches, "seconds": round(epoch_seconds, 3), **metrics}
        history.append(row)
        value = metrics[config.metric]
        is_best = best_value is None or better(value, best_value)
        if is_best or config.snapshots:  # a copy on the CPU, only when it is kept
            weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            snaps.record(epoch, weights, is_best)
        if is_best:
            best_value, best_epoch, bad_epochs, best_weights = value, epoch, 0, weights
            if main:
                save_model(model, out / BEST_FILE)
        else:
            bad_epochs += 1
        if config.patience is not None and bad_epochs >= config.patience and epoch < config.epochs:
            stopped_early = True
        if bar is not None:
            bar.set_postfix(loss=f"{row['train_loss']:.4f}", **{config.metric: f"{value:.4f}"})
            bar.close()
        log.info("epoch %d/%d  train_loss %.4f%s  %s %.4f  (%.1f s)", epoch, config.epochs, row["train_loss"],
                 _per_member(row["train_loss"], model), config.metric, value, epoch_seconds)
        if stopped_early:
            log.info("early stop after epoch %d: %s did not improve for %d epochs", epoch, config.metric, bad_epochs)
        rng = rng_states(size, device) if out is not None else {}  # every rank takes part in the gather
        if main:
            save_model(model, out / LAST_FILE)
            now = time.perf_counter()
            meta = {"epoch": epoch, "step": step, "history": history, "best_value": best_value,
                    "best_epoch": best_epoch, "bad_epochs": bad_epochs, "run_seconds": seconds_before + now - t_run,
                    "limit_seconds": limit_before + now - t0, **settings}
            write_csv(out / CSV_FILE, history)  # before the state: a resume never finds the CSV behind it
            save_run_state(state_path, model, best_weights, opt, meta, rng, snaps)

    if config.restore_best and best_epoch > 0:
        model.load_state_dict(best_weights)
    if main:  # what was written (nothing when a time limit stopped the run before its first epoch ended)
        files = {name: path for name, path in (("model", out / BEST_FILE), ("last", out / LAST_FILE),
                                                ("state", out / STATE_FILE), ("csv", out / CSV_FILE)) if path.exists()}
    del trained  # DDP's reducer holds the process group: release it before the group goes
    if size > 1:
        torch.distributed.barrier()
    best = next((row for row in history if row["epoch"] == best_epoch), {})
    now = time.perf_counter()
    trained = bool(history) and history[-1]["epoch"] >= start_epoch  # an epoch ran in this call
    return FitResult(history=history, best=best, best_epoch=best_epoch, stopped_early=stopped_early,
                     seconds=now - t0, files=files, time_limited=time_limited, snapshots=snaps.around_best(),
                     run_seconds=seconds_before + (now - t_run if trained else 0.0))


def _progress(total: int, desc: str, enabled: bool):
    """A tqdm bar on a terminal; none when stderr is a file or a pipe (a log gets each epoch's line instead of
    every redraw of the bar)."""
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True, disable=None)


# world, is_main and resolve_device live in grukit.distributed; they stay importable from here, as before it
__all__ = ["TrainConfig", "FitResult", "DivergedError", "fit", "learning_rate", "steps_per_epoch", "world",
           "is_main", "resolve_device", "seed_everything"]
