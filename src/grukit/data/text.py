"""Text for the character-level language model: strict reading (UTF-8 unless told otherwise) and a
character vocabulary.

    ids_i = alphabet.index(c_i) + 1,   0 = a character not seen in the training part

Example:
    >>> from grukit.data.text import load_shakespeare, Alphabet
    >>> text = load_shakespeare()
    >>> len(text), text[:9]
    (1115394, 'First Cit')
    >>> a = Alphabet.from_text("abca")
    >>> a.encode("abz").tolist(), a.decode([1, 2, 3]), a.size
    ([1, 2, 0], 'abc', 4)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grukit.data import bundled
from grukit.data.files import read_decoded
from grukit.errors import UsageError

SHAKESPEARE = "text/tinyshakespeare.txt"
UNKNOWN = "\ufffd"  # how id 0 decodes


def read_text(path: str | Path, *, argument: str = "--text", encoding: str = "utf-8") -> str:
    """The whole file as a str (without a byte-order mark, \\r\\n read as \\n); UsageError for a missing or empty
    file, or one that is not `encoding` text (`grukit.data.files.read_decoded`)."""
    text = read_decoded(path, argument, encoding).replace("\r\n", "\n")  # Windows line ends as \n
    if not text.strip():
        what = "an empty file" if not text else "a file of white space only"
        raise UsageError(f"{argument}: expected some text, got {what}: {path}")
    return text


def load_shakespeare() -> str:
    """tiny Shakespeare (1,115,394 characters), the char-rnn corpus."""
    return read_text(bundled(SHAKESPEARE))


@dataclass(frozen=True)
class Alphabet:
    chars: str  # the known characters in id order (id = position + 1)

    def __post_init__(self) -> None:
        twice = sorted({c for c in self.chars if self.chars.count(c) > 1})
        if twice:  # an edited checkpoint: a character with two ids would encode to one and decode from both
            raise ValueError(f"alphabet: expected distinct characters, got {''.join(twice)!r} more than once")

    @classmethod
    def from_text(cls, text: str) -> "Alphabet":
        return cls("".join(sorted(set(text))))

    @property
    def size(self) -> int:
        """Vocabulary size including the unknown id 0."""
        return len(self.chars) + 1

    def encode(self, text: str) -> np.ndarray:
        """(len(text),) int64 ids."""
        table = {c: i + 1 for i, c in enumerate(self.chars)}
        return np.fromiter((table.get(c, 0) for c in text), dtype=np.int64, count=len(text))

    def decode(self, ids) -> str:
        return "".join(self.chars[i - 1] if i > 0 else UNKNOWN for i in ids)
