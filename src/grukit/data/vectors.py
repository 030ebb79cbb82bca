"""Pretrained word vectors: a fixed table word → g ∈ R^P that a model reads beside what it learns.

    g(t) = G[t]                          if the table holds the token t
         = mean_p G[p]                   else, over the parts p of t that it holds, as GloVe's
                                         tokenizer splits a word at its apostrophe: "century's" →
                                         "century", "'s"; "doesn't" → "does", "n't"
         = none                          otherwise (the caller reads 0)

Bundled (`BUNDLED`): GloVe 6B, 50 dimensions (Pennington, Socher & Manning 2014; Wikipedia 2014 +
Gigaword 5; PDDL 1.0), cut to its 20,000 most frequent words and every word (and part) of the
bundled MR sentences that it holds, float16. Any table in GloVe's text format (`word v1 … vP` a
line) or word2vec/fastText's (.vec, with an `N P` first line) can be given by path, plain or .gz;
`read_text` keeps the first `frequent` words of such a file (these files list words from the most
frequent down) and any word of `wanted`.

Example:
    >>> from grukit.data.vectors import load_bundled
    >>> glove = load_bundled()
    >>> glove.dims, glove.vector("good").shape, glove.vector("doesn't") is not None, glove.vector("xqzv")
    (50, (50,), True, None)
"""
from __future__ import annotations

import gzip
import io
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from grukit import _checks
from grukit.errors import UsageError

BUNDLED = "vectors/glove_6b_50d.npz"  # inside the grukit.data package
FREQUENT = 20_000  # the most frequent words kept from a table (besides the words a run needs)


def parts(token: str) -> list[str]:
    """The pieces GloVe's tokenizer makes of a token at its apostrophe ("doesn't" → "does", "n't")."""
    if "'" not in token.strip("'"):
        return [token]
    if token.endswith("n't") and len(token) > 3:
        return [token[:-3], "n't"]
    head, tail = token.split("'", 1)
    return [head, "'" + tail]


@dataclass(frozen=True)
class WordVectors:
    """A table of U words and their P-d vectors: `vector(token)` is g(token) above, `rows` many of them."""

    words: tuple[str, ...]  # U words, each once
    matrix: np.ndarray  # (U, P) float32, row i the vector of words[i]
    source: str  # where the table came from, for reports
    index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.matrix.ndim != 2 or len(self.words) != len(self.matrix) or not len(self.words):
            raise ValueError(f"matrix: expected shape ({len(self.words)}, P) with at least one row, got "
                             f"{self.matrix.shape}")
        object.__setattr__(self, "index", {w: i for i, w in enumerate(self.words)})
        if len(self.index) != len(self.words):
            raise ValueError("words: expected each word once, got repeats")

    @property
    def dims(self) -> int:
        """P, the width of a vector."""
        return self.matrix.shape[1]

    def vector(self, token: str) -> np.ndarray | None:
        """g(token) (P,) float32, the mean of its parts' vectors if the table lacks it, None if neither."""
        if token in self.index:
            return self.matrix[self.index[token]]
        found = [self.index[p] for p in parts(token) if p in self.index]
        return self.matrix[found].mean(axis=0) if found else None

    def rows(self, tokens: Iterable[str]) -> np.ndarray:
        """(n, P) float32: g of each token, 0 where it has none."""
        tokens = list(tokens)
        out = np.zeros((len(tokens), self.dims), dtype=np.float32)  # (n, P)
        for i, token in enumerate(tokens):
            g = self.vector(token)
            if g is not None:
                out[i] = g
        return out


def _lines(path: Path, argument: str) -> Iterable[str]:
    if not path.exists():
        raise UsageError(f"{argument}: expected 'glove', 'none' or a word-vector file, got {str(path)!r}, which "
                         f"does not exist")
    if why := _checks.not_a_file(path):
        raise UsageError(f"{argument}: expected a word-vector file, got {path}, which {why}")
    raw = gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")  # noqa: SIM115 (closed below)
    try:  # utf-8-sig: a byte-order mark is not part of the first word; only \n ends a line
        with io.TextIOWrapper(raw, encoding="utf-8-sig", newline="\n") as text:
            yield from text
    except (UnicodeDecodeError, OSError, EOFError, zlib.error) as err:  # OSError: gzip's "Not a gzipped file"
        raise UsageError(f"{argument}: expected a word-vector text file (UTF-8, or .gz of one), got {path} "
                         f"({type(err).__name__}: {err})") from None


def _number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


_ASCII_SPACE = " \t\r\n\f\v"
_FIELDS = re.compile(f"[{re.escape(_ASCII_SPACE)}]+")


def read_text(path: str | Path, *, wanted: Iterable[str] = (), frequent: int = FREQUENT,
              argument: str = "--vectors") -> WordVectors:
    """The table in `path` (GloVe or word2vec text format, .gz too): its first `frequent` words and every
    word of `wanted` or part of one (`parts`) that it holds; a later repeat of a word is skipped.

    Fields are separated by ASCII spaces and tabs (a word may be a Unicode space, as some of fastText's
    are) and blank lines are skipped. P is word2vec's header's
    second number, else the first line's count of numbers; a word may hold spaces ("new york 0.1 …")
    as long as none of its later pieces is a number. A malformed file is a UsageError naming
    `argument`, the line and what it holds."""
    path = Path(path)
    need = {p for w in wanted for p in (w, *parts(w))}
    words, rows, P = [], [], None
    seen: set[str] = set()
    for n, line in enumerate(_lines(path, argument), start=1):
        fields = _FIELDS.split(line.strip(_ASCII_SPACE))  # only ASCII spaces: a word may be a no-break space
        if fields == [""]:
            continue
        # word2vec's "N P", on the first line that is not blank (P is None until that line)
        if P is None and len(fields) == 2 and all(f.isdigit() for f in fields):
            P = int(fields[1])
            if P < 1:  # found by a review: "3 0" made a table of no numbers, refused later without the flag
                raise UsageError(f"{argument}: expected a word2vec header 'N P' with P >= 1 numbers a word, got "
                                 f"{line.strip()!r} on line {n} of {path}")
            continue
        if P is None:
            P = len(fields) - 1
            if P < 1:
                raise UsageError(f"{argument}: expected lines 'word v1 ... vP', got {line.strip()[:60]!r} on line "
                                 f"{n} of {path}")
        if len(fields) < P + 1 or any(_number(f) for f in fields[1:len(fields) - P]):
            raise UsageError(f"{argument}: expected a word and {P} numbers on line {n} of {path} (as on the lines "
                             f"before), got {len(fields) - 1} fields after the first")
        word = " ".join(fields[: len(fields) - P])  # a few tables hold words with spaces
        if word in seen or not (len(words) < frequent or word in need):
            continue
        try:
            rows.append(np.array(fields[len(fields) - P:], dtype=np.float32))  # (P,)
        except ValueError:
            raise UsageError(f"{argument}: expected {P} numbers after the word on line {n} of {path}, got "
                             f"{' '.join(fields[len(fields) - P:])[:60]!r}") from None
        if not np.isfinite(rows[-1]).all():
            raise UsageError(f"{argument}: expected finite numbers on line {n} of {path}, got inf or nan")
        words.append(word)
        seen.add(word)
    if not words:
        raise UsageError(f"{argument}: expected lines 'word v1 ... vP', got an empty file: {path}")
    return WordVectors(tuple(words), np.stack(rows), str(path))


def save_npz(vectors: WordVectors, path: str | Path) -> None:
    """Write `vectors` as float16 rows and the newline-joined UTF-8 words (`load_npz` reads it)."""
    words = np.frombuffer("\n".join(vectors.words).encode("utf-8"), dtype=np.uint8)
    np.savez_compressed(path, vectors=vectors.matrix.astype(np.float16), words=words)


def load_npz(path: str | Path, source: str | None = None) -> WordVectors:
    """Read a file written by `save_npz`."""
    with np.load(path, allow_pickle=False) as z:
        words = tuple(z["words"].tobytes().decode("utf-8").split("\n"))
        return WordVectors(words, z["vectors"].astype(np.float32), source or str(path))


def load_bundled() -> WordVectors:
    """The shipped GloVe 6B 50d table (see the module docstring and DATA.md)."""
    return load_npz(resources.files("grukit.data").joinpath(BUNDLED), "GloVe 6B 50d, bundled subset")


def load(source: str, wanted: Iterable[str] = ()) -> WordVectors | None:
    """--vectors: "glove" the bundled table, "none" no vectors, else the path of a text table (`read_text`)."""
    if source == "none":
        return None
    if source == "glove":
        return load_bundled()
    return read_text(source, wanted=wanted)


if __name__ == "__main__":  # rebuild the bundled file: python -m grukit.data.vectors glove.6B.50d.txt OUT.npz
    import sys

    from grukit.data.sentiment import load_mr, tokenize

    mr = {t for sentence in load_mr()[0] for t in tokenize(sentence)}
    save_npz(read_text(sys.argv[1], wanted=mr), sys.argv[2])
