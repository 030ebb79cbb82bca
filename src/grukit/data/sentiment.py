"""Labelled sentences: the MR polarity set, pos/neg line files or a CSV; a word tokenizer and vocabulary.

    tokens = lowercase words, numbers and single punctuation marks:  re.findall(r"[a-z0-9]+(?:'[a-z]+)?|[^\\sa-z0-9]")
    ids    = vocabulary index, 0 = padding, 1 = a word not in the vocabulary

Encoding: the bundled MR files are latin-1 (as published) and are read as such. A
user's --pos/--neg/--csv files must be UTF-8 unless `encoding` says otherwise (the CLI's
--encoding), so a wrong guess fails loudly instead of producing mojibake.

Example:
    >>> from grukit.data.sentiment import load_mr, tokenize, Vocabulary
    >>> texts, labels, names = load_mr()
    >>> len(texts), int(sum(labels)), names
    (10662, 5331, ['negative', 'positive'])
    >>> tokenize("It's a gem, isn't it?")
    ["it's", 'a', 'gem', ',', "isn't", 'it', '?']
    >>> v = Vocabulary.build([["a", "b"], ["a"]], min_count=1)
    >>> v.encode(["a", "zzz"]), len(v)
    ([2, 1], 4)
"""
from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from grukit.data import bundled
from grukit.errors import UsageError

MR_POS = "sentiment/rt-polarity.pos"
MR_NEG = "sentiment/rt-polarity.neg"
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def _read(path: Path, argument: str, encoding: str) -> str:
    if not path.is_file():
        raise UsageError(f"{argument}: file not found: {path}")
    data = path.read_bytes()
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as err:
        raise UsageError(f"{argument}: expected {encoding} text, got byte 0x{data[err.start]:02x} at offset "
                         f"{err.start} of {path} (try --encoding latin-1)") from None
    except LookupError:
        raise UsageError(f"--encoding: expected a Python codec name such as utf-8 or latin-1, got {encoding!r}") \
            from None


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def read_pos_neg(pos: str | Path, neg: str | Path, *, encoding: str = "utf-8") -> tuple[list[str], list[int], list[str]]:
    """(texts, labels, class names): one sentence per non-empty line; neg = 0, pos = 1."""
    positive = _lines(_read(Path(pos), "--pos", encoding))
    negative = _lines(_read(Path(neg), "--neg", encoding))
    for flag, lines, path in (("--pos", positive, pos), ("--neg", negative, neg)):
        if not lines:
            raise UsageError(f"{flag}: expected one sentence per line, got an empty file: {path} "
                             "(a classifier needs both classes)")
    return negative + positive, [0] * len(negative) + [1] * len(positive), ["negative", "positive"]


def read_csv(path: str | Path, text_column: str, label_column: str, *,
             encoding: str = "utf-8") -> tuple[list[str], list[int], list[str]]:
    """(texts, labels, class names) from a CSV with a header; labels are the sorted distinct label values."""
    path = Path(path)
    rows = list(csv.DictReader(_read(path, "--csv", encoding).splitlines()))
    header = list(rows[0].keys()) if rows else []
    for flag, name in (("--text-column", text_column), ("--label-column", label_column)):
        if name not in header:
            raise UsageError(f"{flag}: expected one of {header}, got {name!r}")
    rows = [r for r in rows if (r[text_column] or "").strip()]
    names = sorted({(r[label_column] or "").strip() for r in rows})
    if len(names) < 2:
        raise UsageError(f"--label-column: expected at least two classes in {label_column!r}, got {names} in {path}")
    index = {name: i for i, name in enumerate(names)}
    return [r[text_column].strip() for r in rows], [index[r[label_column].strip()] for r in rows], names


def load_mr() -> tuple[list[str], list[int], list[str]]:
    """MR sentence polarity v1.0 (Pang & Lee 2005): 5,331 negative then 5,331 positive sentences."""
    return read_pos_neg(bundled(MR_POS), bundled(MR_NEG), encoding="latin-1")


@dataclass(frozen=True)
class Vocabulary:
    words: tuple[str, ...]  # known words; id = position + 2 (0 padding, 1 unknown)

    @classmethod
    def build(cls, sentences: Sequence[Sequence[str]], *, min_count: int = 1) -> "Vocabulary":
        counts = Counter(w for s in sentences for w in s)
        return cls(tuple(sorted(w for w, c in counts.items() if c >= min_count)))

    def __len__(self) -> int:
        return len(self.words) + 2

    def encode(self, tokens: Sequence[str]) -> list[int]:
        table = self._table()
        return [table.get(w, 1) for w in tokens]

    def _table(self) -> dict[str, int]:
        table = self.__dict__.get("_cache")
        if table is None:
            table = {w: i + 2 for i, w in enumerate(self.words)}
            object.__setattr__(self, "_cache", table)
        return table
