"""Generate text from a saved `grukit textgen` model.

    grukit sample CHECKPOINT [--prompt TEXT] [--length N] [--temperature T] [--out DIR]
                             [--seed S] [--device D] [--backend B] [--threads N]

The checkpoint must be a CharLM written by `grukit textgen` (its alphabet travels in the
checkpoint's config), given as the file or as the run folder holding it; any other file
exits with code 2 and one line saying so.

Common options: --seed seeds the sampling; --device is where the model runs (default auto,
as for every command: a GPU when there is one, so the same seed can give other text there
than on the CPU); --backend is the GRU kernel it runs on (default auto, the fastest for the
device, whatever kernel the model was trained with: the weights are the same for every
backend); --out DIR, only when given, also writes the text to DIR/sample.txt (without
--out nothing is written; a DIR that already holds a sample.txt is refused, so no sample
overwrites another). There is no --epochs: sampling trains nothing.

Example:
    >>> import argparse
    >>> from grukit.tasks import sample
    >>> p = argparse.ArgumentParser(); sample.add_arguments(p)
    >>> p.parse_args(["model.safetensors", "--length", "50"]).length
    50
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import math
from pathlib import Path

import torch

from grukit import _checks
from grukit.errors import UsageError
from grukit.tasks.common import check_common, check_device
from grukit.tasks.textgen_model import CharLM, default_prompt, generate

log = logging.getLogger(__name__)

COMMON_ARGUMENTS = ("seed", "device", "backend", "threads")  # --out is this module's own; no --epochs
DEFAULT_OUT = False  # write only into an --out that is given
OUT_MAY_HOLD_FILES = True  # e.g. the run folder of the checkpoint: sample.txt is written last
TEXT_FILE = "sample.txt"
MAX_LENGTH = 1_000_000  # characters per call: about 3 minutes on one core, a few MB of text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path,
                        help="model.safetensors from grukit textgen, or the run folder that holds it")
    parser.add_argument("--prompt", default=None,
                        help="text to continue (default: a newline, or a space if the training text had no newline)")
    parser.add_argument("--length", type=int, default=500, help="characters to generate, 1..1,000,000 (default 500)")
    parser.add_argument("--temperature", type=float, default=0.8, help="softmax temperature > 0 (default 0.8)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"also write the text to OUT/{TEXT_FILE} (default: print it only)")


def load_model(path: Path, device: str | torch.device = "cpu") -> CharLM:
    """The CharLM in `path` (a file, or a run folder holding model.safetensors); UsageError for a missing
    file or any other kind of file."""
    import grukit
    from grukit.run_files import BEST_FILE

    if path.is_dir():
        if not (path / BEST_FILE).is_file():
            raise UsageError(f"CHECKPOINT: expected a model file, or a textgen run folder holding {BEST_FILE}, "
                             f"got the folder {path} without it")
        path = path / BEST_FILE
    if (why := _checks.not_a_file(path)) == "does not exist":
        raise UsageError(f"CHECKPOINT: file not found: {path}")
    if why:
        raise UsageError(f"CHECKPOINT: expected a model file, got {path}, which {why}")
    try:
        model = grukit.load(path, device=device)
    except (ValueError, KeyError, TypeError, NotImplementedError, RuntimeError) as err:  # any file but ours
        detail = (str(err).splitlines() or [type(err).__name__])[0]
        raise UsageError(f"CHECKPOINT: expected a grukit textgen model, got {path} ({detail})") from None
    if not isinstance(model, CharLM):
        raise UsageError(f"CHECKPOINT: expected a grukit textgen model (CharLM), got a {type(model).__name__} "
                         f"in {path}")
    damaged = [name for name, t in model.state_dict().items() if t.is_floating_point() and not t.isfinite().all()]
    if damaged:
        raise UsageError(f"CHECKPOINT: expected finite weights, got nan or inf in {damaged[0]} of {path} "
                         "(a damaged file, or a run that diverged)")
    return model


def use_backend(model: CharLM, backend: str) -> CharLM:
    """Run the model's GRU on kernel `backend` (a name `grukit.kernels` accepts); the weights stay as they are."""
    model.gru.use_backend(backend)
    model.config = dataclasses.replace(model.config, backend=backend)
    return model


def _check(args: argparse.Namespace) -> None:
    if not 1 <= args.length <= MAX_LENGTH:
        raise UsageError(f"--length: expected an integer in 1..{MAX_LENGTH:,}, got {args.length}")
    if not (args.temperature > 0 and math.isfinite(args.temperature)):
        raise UsageError(f"--temperature: expected a finite number > 0, got {args.temperature}")
    try:
        (args.prompt or "").encode("utf-8")
    except UnicodeEncodeError as err:  # bytes of the command line that were not UTF-8 come as lone surrogates
        raise UsageError(f"--prompt: expected text, got a byte that is not UTF-8 at character {err.start} "
                         f"(check the terminal's encoding)") from None


def run(args: argparse.Namespace) -> dict:
    check_common(args)
    _check(args)
    if args.out is not None and (Path(args.out) / TEXT_FILE).exists():  # --out may be a run folder, not a sample
        raise UsageError(f"--out: expected a folder without {TEXT_FILE}, got {args.out} holding one from an earlier "
                         f"sample; use another --out")
    model = use_backend(load_model(args.checkpoint, check_device(args.device)), args.backend)
    prompt = default_prompt(model.config.alphabet) if args.prompt is None else args.prompt
    unknown = sorted(set(prompt) - set(model.config.alphabet))
    if unknown:
        log.warning("sample: the prompt's characters %s are not in the model's alphabet (its training text); "
                    "the model reads each as its unknown character", repr("".join(unknown)[:40]))
    text = generate(model, prompt, length=args.length, temperature=args.temperature, seed=args.seed)
    files = {}
    if args.out is not None:
        files["sample"] = Path(args.out) / TEXT_FILE
        files["sample"].parent.mkdir(parents=True, exist_ok=True)
        files["sample"].write_text(text, encoding="utf-8")
    return {"summary": text, "files": files}
