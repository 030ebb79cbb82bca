"""Generate text from a saved `grukit textgen` model.

    grukit sample CHECKPOINT [--prompt TEXT] [--length N] [--temperature T] [--seed S]

The checkpoint must be a CharLM written by `grukit textgen` (its alphabet travels in the
checkpoint's config); any other file exits with code 2 and one line saying so.

Example:
    >>> import argparse
    >>> from grukit.tasks import sample
    >>> p = argparse.ArgumentParser(); sample.add_arguments(p)
    >>> p.parse_args(["model.safetensors", "--length", "50"]).length
    50
"""
from __future__ import annotations

import argparse
from pathlib import Path

from grukit.errors import UsageError
from grukit.tasks.textgen_model import CharLM, generate

COMMON_ARGUMENTS = False  # generation writes nothing: no --out or --epochs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="model.safetensors from grukit textgen")
    parser.add_argument("--prompt", default="\n", help="text to continue (default: a newline)")
    parser.add_argument("--length", type=int, default=500, help="characters to generate (default 500)")
    parser.add_argument("--temperature", type=float, default=0.8, help="softmax temperature > 0 (default 0.8)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda (default cpu)")


def load_model(path: Path, device: str = "cpu") -> CharLM:
    """The CharLM in `path`; UsageError for a missing file or any other kind of file."""
    import grukit

    if not path.is_file():
        raise UsageError(f"CHECKPOINT: file not found: {path}")
    try:
        model = grukit.load(path, device=device)
    except (ValueError, KeyError, TypeError) as err:
        raise UsageError(f"CHECKPOINT: expected a grukit textgen model, got {path} ({str(err).splitlines()[0]})") \
            from None
    if not isinstance(model, CharLM):
        raise UsageError(f"CHECKPOINT: expected a grukit textgen model (CharLM), got a {type(model).__name__} "
                         f"in {path}")
    return model


def run(args: argparse.Namespace) -> dict:
    if args.length < 1:
        raise UsageError(f"--length: expected an integer >= 1, got {args.length}")
    if not args.temperature > 0:
        raise UsageError(f"--temperature: expected a number > 0, got {args.temperature}")
    model = load_model(args.checkpoint, args.device)
    text = generate(model, args.prompt, length=args.length, temperature=args.temperature, seed=args.seed)
    return {"summary": text, "files": {}}
