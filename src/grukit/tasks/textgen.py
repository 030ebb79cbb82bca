"""Train a character-level GRU language model; report validation nats/char and bits/char; print samples.

    grukit textgen                         tiny Shakespeare, last 10% held out for validation
    grukit textgen --text FILE.txt         any UTF-8 text (at least a few thousand characters)
    grukit sample runs/textgen-*/model.safetensors --prompt "ROMEO:" --length 300

Training: random windows of `--seq-len` + 1 characters from the first 90% (`CharLM`,
cross-entropy of every next character), AdamW with warmup and cosine decay over all
steps, dropout. Validation: the held-out 10% read once, in order, as `VAL_STREAMS`
parallel streams (fewer for a short text, `val_streams`) whose hidden state carries across
chunks, so the loss is the model's per-character cross-entropy over every held-out
character, with context lost only at the streams' starts:  loss = −(1/n) Σ_t ln p(c_{t+1} | c_1..c_t)  nats/char,
bits/char = loss / ln 2.

Example (a small slice):
    >>> import argparse, tempfile
    >>> from grukit.tasks import textgen
    >>> p = argparse.ArgumentParser(); textgen.add_arguments(p)
    >>> args = p.parse_args(["--limit", "20000", "--hidden", "16", "--steps-per-epoch", "3", "--seq-len", "32"])
    >>> args.out, args.epochs, args.seed, args.device, args.backend = tempfile.mkdtemp(), 1, 0, "cpu", "auto"
    >>> m = textgen.run(args)["metrics"]
    >>> 1.0 < m["val_loss"] < 5.0, abs(m["val_bpc"] - m["val_loss"] / 0.6931471805599453) < 1e-9
    (True, True)
"""
from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from grukit import plots
from grukit.data.text import Alphabet, load_shakespeare, read_text
from grukit.distributed import is_main
from grukit.errors import UsageError
from grukit.report import figure, plural, seconds, table, write_report
from grukit.resume import digest
from grukit.tasks.common import (
    OPTIMISER_FLAGS,
    add_encoding,
    add_resume,
    args_dict,
    check_at_least,
    check_common,
    check_trainable,
    encoding_of,
    environment,
    train_config,
    write_metrics,
)
from grukit.tasks.textgen_model import CharLM, default_prompt, generate
from grukit.train import fit, seed_everything

log = logging.getLogger(__name__)

EPOCHS = 10  # default evaluation periods of --steps-per-epoch batches each (the cosine schedule spans all)
PATIENCE = 3  # stop after this many evaluation periods without a lower validation loss
LONGER_RUN = ("On the bundled tiny Shakespeare, a longer run of the default model, "
              "`grukit textgen --epochs 25 --time-limit 0 --threads 1` "
              "(5,000 steps, one thread, 2,132 s on the project's 2-core machine, measured for "
              "docs/applications.md), reached 1.445 nats/char (2.085 bits/char) at step 4,600; its validation "
              "curve is flat after about 4,000 steps, so more steps of this size buy little.")
VAL_STREAMS = 32  # parallel streams the validation text is read in
MIN_STREAM = 500  # characters per stream at the least (fewer streams for a short validation text)
VAL_CHUNK = 256  # characters per validation forward pass (state carried between chunks)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--text", type=Path, help="a text file (default: bundled tiny Shakespeare)")
    add_encoding(parser, "--text")
    parser.add_argument("--limit", type=int, help="use only the first N characters (quick runs)")
    parser.add_argument("--hidden", type=int, default=384, help="GRU units (default 384)")
    parser.add_argument("--layers", type=int, default=1, help="GRU layers (default 1)")
    parser.add_argument("--embedding", type=int, default=64, help="character embedding size (default 64)")
    parser.add_argument("--dropout", type=float, default=0.2, help="dropout (default 0.2)")
    parser.add_argument("--seq-len", type=int, default=128, help="characters per training window (default 128)")
    parser.add_argument("--batch-size", type=int, default=64, help="windows per batch (default 64)")
    parser.add_argument("--steps-per-epoch", type=int, default=200, help="batches between evaluations (default 200; "
                        "longer runs: raise it or --epochs, and --time-limit)")
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (default 3e-3)")
    parser.add_argument("--time-limit", type=float, default=570.0,
                        help="seconds of the whole run (with --resume, the earlier calls' too); training stops "
                             "before an evaluation period that would overrun (default 570; 0 = no limit)")
    parser.add_argument("--samples", type=int, default=2, help="samples printed at the end (default 2)")
    parser.add_argument("--sample-length", type=int, default=300, help="characters per sample (default 300)")
    add_resume(parser)


class Windows(Dataset):
    """Window i = ids[i·stride : i·stride + T + 1] as (input (T,), target (T,)) shifted by one."""

    def __init__(self, ids: torch.Tensor, seq_len: int, stride: int):
        self.ids, self.T, self.stride = ids, seq_len, stride
        self.n = (len(ids) - seq_len - 1) // stride + 1

    def __len__(self) -> int:
        return self.n

    def fingerprint(self) -> str:
        """`grukit.resume.fingerprint` of the text and the window layout, without slicing every window."""
        return digest((self.ids, self.T, self.stride))

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.ids[i * self.stride: i * self.stride + self.T + 1]  # (T+1,)
        return w[:-1], w[1:]


def next_char_loss(model: torch.nn.Module, batch) -> torch.Tensor:
    """Mean cross-entropy (nats) of every next character of a batch (x (N, T), y (N, T))."""
    x, y = batch
    logits, _ = model(x)  # (N, T, V)
    return F.cross_entropy(logits.flatten(0, 1), y.flatten())


def val_streams(n_chars: int) -> int:
    """S, the streams a held-out text of `n_chars` characters is read in: VAL_STREAMS, fewer when each would
    hold under MIN_STREAM characters (every stream starts without context)."""
    return max(1, min(VAL_STREAMS, (n_chars - 1) // MIN_STREAM))


def stream_loss(model: CharLM, ids: torch.Tensor) -> dict[str, float]:
    """Cross-entropy of every next character of the id sequence, read as S = `val_streams` streams with carried
    state; the last stream reads on into the few characters that S equal streams leave over."""
    device = next(model.parameters()).device
    S = val_streams(len(ids))
    n = (len(ids) - 1) // S
    x = ids[: S * n].view(S, n).to(device)  # (S, n)
    y = ids[1: S * n + 1].view(S, n).to(device)  # (S, n)
    total, h = 0.0, None
    for a in range(0, n, VAL_CHUNK):
        logits, h = model(x[:, a:a + VAL_CHUNK], h)  # (S, c, V)
        total += F.cross_entropy(logits.flatten(0, 1), y[:, a:a + VAL_CHUNK].flatten(), reduction="sum").item()
    if S * n + 1 < len(ids):  # the tail, 1 … S − 1 characters, after the last stream's
        tail = ids[S * n:].to(device)  # (r + 1,)
        logits, _ = model(tail[None, :-1], h[:, -1:].contiguous())  # (1, r, V)
        total += F.cross_entropy(logits[0], tail[1:], reduction="sum").item()
    loss = total / (len(ids) - 1)
    return {"val_loss": loss, "val_bpc": loss / math.log(2)}


def _check(args: argparse.Namespace) -> None:
    check_at_least(args, ("hidden", "layers", "embedding", "seq_len", "batch_size", "steps_per_epoch",
                          "sample_length", "limit"))
    if not 0 <= args.dropout < 1:
        raise UsageError(f"--dropout: expected a number in [0, 1), got {args.dropout}")
    if args.samples < 0:
        raise UsageError(f"--samples: expected an integer >= 0, got {args.samples}")
    if not (args.time_limit >= 0 and math.isfinite(args.time_limit)):  # also refuses nan
        raise UsageError(f"--time-limit: expected a number of seconds > 0 (or 0 for no limit), got {args.time_limit}")


def min_chars(seq_len: int) -> int:
    """The shortest text for windows of `seq_len`: its last 10% (validation) holds one window of seq_len + 2."""
    return 10 * (seq_len + 2)


def run(args: argparse.Namespace) -> dict:
    check_common(args, threads="idle")  # two threads 1.8x faster on 2 idle cores, 1.9x slower on 2 busy ones
    _check(args)
    encoding = encoding_of(args, "--text", args.text is not None)
    text = read_text(args.text, encoding=encoding) if args.text is not None else load_shakespeare()
    source = str(args.text) if args.text is not None else "bundled tiny Shakespeare"
    cut = args.limit is not None and args.limit < len(text)
    if cut:
        source += f" (its first {args.limit:,} of {len(text):,} characters, by --limit)"
        text = text[: args.limit]
    if len(text) < min_chars(args.seq_len):
        limited = f" (its first {args.limit}, by --limit)" if cut else ""
        flag = "--text" if args.text is not None else "--limit"
        raise UsageError(f"{flag}: expected at least {min_chars(args.seq_len)} characters for --seq-len "
                         f"{args.seq_len} (90% train, 10% validation), got {len(text)}{limited}")
    split = int(len(text) * 0.9)
    alphabet = Alphabet.from_text(text[:split])
    ids = torch.from_numpy(alphabet.encode(text))  # (n,)
    train = Windows(ids[:split], args.seq_len, stride=max(1, args.seq_len // 2))
    val = ids[split:]
    seed_everything(args.seed)
    sizes = dict(embedding=args.embedding, hidden_size=args.hidden, num_layers=args.layers, dropout=args.dropout,
                 backend=args.backend)
    check_trainable(lambda: CharLM(alphabet.chars, **sizes), "--hidden, --layers, --embedding")
    model = CharLM(alphabet.chars, **sizes)
    config = train_config(args, epochs=EPOCHS, batch_size=args.batch_size, lr=args.lr, weight_decay=0.05,
                          steps_per_epoch=args.steps_per_epoch, warmup_steps=min(100, args.steps_per_epoch),
                          min_lr_ratio=0.02, clip=1.0, metric="val_loss", patience=PATIENCE,
                          time_limit=args.time_limit or None)
    out = Path(args.out)
    result = fit(model, train, val, step_loss=next_char_loss, evaluate=stream_loss, config=config, out=out,
                 flags={**OPTIMISER_FLAGS, "steps_per_epoch": "--steps-per-epoch", "warmup_steps": "--steps-per-epoch"})
    if not result.history:
        raise UsageError(f"--time-limit: {args.time_limit:g} s ran out before the first evaluation period finished; "
                         "give more time (0 = no limit)")
    if not is_main():
        return {}
    start = default_prompt(model.config.alphabet)  # a newline, unless the text had none
    samples = [generate(model, start, length=args.sample_length, temperature=0.8, seed=args.seed + i)
               for i in range(args.samples)]
    probe = text[split: split + 80]
    z, r = model.gates(torch.from_numpy(alphabet.encode(probe)).to(next(model.parameters()).device))
    files = {"loss curves": plots.loss_curves(result.history, out / "loss.png", keys=["train_loss", "val_loss"],
                                              title="textgen: cross-entropy (nats/char)"),
             "gates": plots.gates(z.cpu().numpy(), r.cpu().numpy(), out / "gates.png",
                                  title="GRU gates reading the first 80 validation characters",
                                  xlabel="character", xticklabels=[repr(c)[1:-1] or " " for c in probe])}
    best = result.best
    params = sum(p.numel() for p in model.parameters())
    metrics = {"val_loss": best["val_loss"], "val_bpc": best["val_bpc"], "best_epoch": result.best_epoch,
               "epochs_run": len(result.history), "steps": len(result.history) * args.steps_per_epoch,
               "stopped_by": "time limit" if result.time_limited else "patience" if result.stopped_early else "epochs",
               "train_seconds": round(result.run_seconds, 2), "parameters": params, "vocabulary": alphabet.size,
               "train_chars": split, "val_chars": len(text) - split, "samples": samples,
               "args": args_dict(args), "environment": environment()}
    files["metrics"] = write_metrics(out, metrics)
    summary = table([{"model": f"GRU {args.layers}×{args.hidden}", "parameters": params,
                      "val nats/char": best["val_loss"], "val bits/char": best["val_bpc"],
                      "seconds": f"{result.run_seconds:.1f}"}],
                    ["model", "parameters", "val nats/char", "val bits/char", "seconds"])
    time_limit = f", or before a period that would end past {args.time_limit:g} s (--time-limit)" \
        if args.time_limit else ""
    ended = " (training ended by the time limit)" if result.time_limited else ""
    streams = plural(val_streams(len(text) - split), "stream")
    shown = "\n\n".join(f"--- sample {i + 1} (temperature 0.8) ---\n{s.strip()}" for i, s in enumerate(samples))
    report_text = [
        ("What ran", f"Character-level language model: embedding {args.embedding} → grukit.GRU {args.layers}×"
                     f"{args.hidden} (reset before) → linear over {alphabet.size} symbols; {params:,} parameters; "
                     f"dropout {args.dropout}; windows of {args.seq_len} characters, batches of {args.batch_size}; "
                     f"AdamW lr {args.lr} with warmup and cosine decay; "
                     f"{plural(len(result.history), 'evaluation')} every "
                     f"{args.steps_per_epoch} steps (at most {args.epochs or EPOCHS}, stopping after {PATIENCE} "
                     f"without a lower validation loss{time_limit}), best {result.best_epoch}; "
                     f"{seconds(result.run_seconds)}{ended}."),
        ("Data", f"{source}: {len(text):,} characters; the first 90% ({split:,}) train, the last 10% "
                 f"({len(text) - split:,}) validate, read in order as {streams} with "
                 f"the hidden state carried across chunks of {VAL_CHUNK}. The alphabet comes from the training part."),
        ("Validation loss", summary),
        *([("Longer runs", LONGER_RUN)] if args.text is None else []),  # measured on the bundled text only
        ("Samples", "```\n" + shown + "\n```"),
        ("Figures", "\n\n".join(figure(n, p) for n, p in files.items() if str(p).endswith(".png")))]
    files["report"] = write_report(out / "report.md", "grukit textgen", report_text)
    files.update(result.shown_files())
    return {"summary": summary + "\n\n" + shown, "files": files, "metrics": metrics}
