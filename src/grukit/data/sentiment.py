"""Labelled sentences: the MR polarity set, pos/neg line files or a CSV; a word tokenizer and vocabulary.

    tokens = lowercase words (letters and digits of any script, NFC; a combining vowel sign, as in Devanagari
             or Thai, is a mark of its own), with an apostrophe's suffix (’ read as '), and single other marks:
             re.findall(r"[^\\W_]+(?:'[^\\W_]+)?|[^\\w\\s]|_", NFC(text.lower()))
    ids    = vocabulary index, 0 = padding, 1 = a word not in the vocabulary
    R[w, c] = log (p_c[w] / ‖p_c‖₁) − log (q_c[w] / ‖q_c‖₁)     Naive-Bayes log-count ratio of word w for class c
        p_c = α + Σ_{i: y_i = c} 1[w ∈ sentence i],  q_c = the same over sentences of the other classes
    ρ_i = R^{(−f(i))}[ids_i]    out-of-fold ratios of training sentence i: R from the folds other than its own
    κ_t = w_{t−1}·V + w_t       the key of the bigram ending at word t (w_0's predecessor is 0, the padding id);
                                `Bigrams` numbers the keys seen often enough in training, so the same R and ρ
                                formulas give bigram ratios

Encoding: the bundled MR files are UTF-8 (the copy bundled was re-encoded from the
published latin-1; "clichés", "ladrón", "—") and are read as such. A user's
--pos/--neg/--csv files must be UTF-8 unless `encoding` says otherwise (the CLI's
--encoding), so a wrong guess fails loudly instead of producing mojibake.

Example:
    >>> from grukit.data.sentiment import load_mr, log_count_ratios, out_of_fold_ratios, tokenize, Vocabulary, Bigrams
    >>> texts, labels, names = load_mr()
    >>> len(texts), int(sum(labels)), names
    (10662, 5331, ['negative', 'positive'])
    >>> tokenize("It's a gem, isn't it?"), tokenize("Clichés — ¡olé!")
    (["it's", 'a', 'gem', ',', "isn't", 'it', '?'], ['clichés', '—', '¡', 'olé', '!'])
    >>> v = Vocabulary.build([["a", "b"], ["a"]], min_count=1)
    >>> v.encode(["a", "zzz"]), len(v)
    ([2, 1], 4)
    >>> log_count_ratios([[2, 2], [3]], [1, 0], n_words=4, classes=2).round(3).tolist()
    [[0.0, 0.0], [0.0, 0.0], [-0.693, 0.693], [0.693, -0.693]]
    >>> [rho.shape for rho in out_of_fold_ratios([[2, 2], [3], [2], [3]], [1, 0, 1, 0], 4, 2, folds=2)]
    [(2, 2), (1, 2), (1, 2), (1, 2)]
    >>> b = Bigrams.build([[2, 3], [2, 3], [3, 2]], n_words=4, min_count=2)
    >>> b.keys.tolist(), b.encode([2, 3, 2]), len(b)
    ([2, 11], [2, 3, 1], 4)
"""
from __future__ import annotations

import logging
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from grukit.data import bundled
from grukit.data.files import column_name, csv_table, read_decoded
from grukit.data.timeseries import MISSING
from grukit.errors import UsageError

log = logging.getLogger(__name__)

# a label cell read as no label (case-insensitive): what a time series reads as a gap, but "none" and "?",
# which can name a class (an intent "none")
NO_LABEL = MISSING - {"none", "?"}
MR_POS = "sentiment/rt-polarity.pos"
MR_NEG = "sentiment/rt-polarity.neg"
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)?|[^\w\s]|_")  # a word (any script), or one other mark


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(unicodedata.normalize("NFC", text.lower()).replace("\u2019", "'"))


def _lines(text: str) -> list[str]:
    """The non-blank lines, split at \\n, \\r\\n or \\r only (str.splitlines also splits at form feeds,
    U+2028 and the byte 0x85 that cp1252 uses for "…")."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return [line.strip() for line in lines if line.strip()]


def read_pos_neg(
    pos: str | Path, neg: str | Path, *, encoding: str = "utf-8"
) -> tuple[list[str], list[int], list[str]]:
    """(texts, labels, class names): one sentence per non-empty line; neg = 0, pos = 1."""
    positive = _lines(read_decoded(pos, "--pos", encoding))
    negative = _lines(read_decoded(neg, "--neg", encoding))
    for flag, lines, path in (("--pos", positive, pos), ("--neg", negative, neg)):
        if not lines:
            raise UsageError(f"{flag}: expected one sentence per line, got an empty file: {path} "
                             "(a classifier needs both classes)")
    if positive == negative:
        raise UsageError(f"--neg: expected other sentences than --pos, got the same lines ({neg} and {pos})")
    return negative + positive, [0] * len(negative) + [1] * len(positive), ["negative", "positive"]


def read_csv(path: str | Path, text_column: str, label_column: str, *,
             encoding: str = "utf-8") -> tuple[list[str], list[int], list[str]]:
    """(texts, labels, class names) from a CSV with a header; labels are the sorted distinct label values.

    Rows without text are skipped; a row with text but no label is an error naming its row
    (the file's line: the header is row 1), never a class of its own."""
    path = Path(path)
    text_column, label_column = column_name(text_column), column_name(label_column)
    if text_column == label_column:
        raise UsageError(f"--label-column: expected another column than --text-column, got {label_column!r} for both")
    header, rows = _csv_rows(path, encoding)
    for flag, name in (("--text-column", text_column), ("--label-column", label_column)):
        if name not in header:
            raise UsageError(f"{flag}: expected one of {header}, got {name!r}")
        if header.count(name) > 1:
            raise UsageError(f"{flag}: expected a column named once in the header, got {name!r} "
                             f"{header.count(name)} times in {path}")
    texts, labels, skipped = [], [], 0
    for row_number, row in rows:
        text, label = (row.get(text_column) or "").strip(), (row.get(label_column) or "").strip()
        label = unicodedata.normalize("NFC", label)  # "négatif" typed two ways is one class
        if not text:
            skipped += 1
            continue
        if label.lower() in NO_LABEL:
            raise UsageError(f"--label-column: expected a label in column {label_column!r} of every row with text, "
                             f"got {label or 'none'} in row {row_number} of {path}")
        texts.append(text)
        labels.append(label)
    if skipped:
        log.warning("%s: %d of %d rows have no text in column %r and are skipped", path, skipped, len(rows),
                    text_column)
    labels = _numbers_as_one_spelling(labels)
    names = sorted(set(labels), key=_numeric_first)
    folded = {}
    for name in names:
        if name.casefold() in folded:
            log.warning("%s: the labels %r and %r differ only in case; they are read as two classes", path,
                        folded[name.casefold()], name)
        folded.setdefault(name.casefold(), name)
    if len(names) < 2:
        raise UsageError(f"--label-column: expected at least two classes in {label_column!r}, got {names} in {path}")
    index = {name: i for i, name in enumerate(names)}
    return texts, [index[label] for label in labels], names


def _number(label: str) -> float | None:
    """The finite number a label spells ("1", "1.0", "-2e0"), or None ("pos", "1_0", "inf")."""
    try:
        value = float(label)
    except ValueError:
        return None
    return value if np.isfinite(value) and "_" not in label else None


def _numbers_as_one_spelling(labels: list[str]) -> list[str]:
    """One spelling per numeric value ("1.0" and "1" are one class, named "1"); other labels as they are."""
    return [_one_spelling(label) for label in labels]


def _one_spelling(label: str) -> str:
    value = _number(label)
    if value is None:
        return label
    try:  # an integer's own digits: exact at any size (float() made 10000000000000001 and ...000 one class)
        return str(int(label))
    except ValueError:
        return str(int(value)) if value.is_integer() else repr(value)


def _numeric_first(name: str) -> tuple:
    """Sort key: numbers by value (so "2" < "10"), then other names as text."""
    value = _number(name)
    return (0, value, "") if value is not None else (1, 0.0, name)


def _csv_rows(path: Path, encoding: str) -> tuple[list[str], list[tuple[int, dict]]]:
    """(header, [(row number, row)]) of a CSV file (`grukit.data.files.csv_table`); blank lines are skipped."""
    header, rows = csv_table(read_decoded(path, "--csv", encoding), "--csv", path)
    if not header:
        raise UsageError(f"--csv: expected a header line and rows, got an empty file: {path}")
    return header, [(line, dict(zip(header, cells))) for line, cells in rows if cells]


def load_mr() -> tuple[list[str], list[int], list[str]]:
    """MR sentence polarity v1.0 (Pang & Lee 2005): 5,331 negative then 5,331 positive sentences."""
    return read_pos_neg(bundled(MR_POS), bundled(MR_NEG), encoding="utf-8")


@dataclass(frozen=True)
class Vocabulary:
    words: tuple[str, ...]  # known words; id = position + 2 (0 padding, 1 unknown)

    @classmethod
    def build(cls, sentences: Sequence[Sequence[str]], *, min_count: int = 1) -> Vocabulary:
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


def bigram_keys(ids: Sequence[int] | torch.Tensor, n_words: int) -> torch.Tensor:
    """κ (…, T) for word ids (…, T): κ_t = w_{t−1}·V + w_t, with w_{−1} = 0 (the padding id)."""
    w = torch.as_tensor(ids, dtype=torch.int64)  # (…, T), int64 so that w_{t−1}·V cannot overflow
    prev = F.pad(w[..., :-1], (1, 0))  # (…, T) w_{t−1}, 0 before the first word
    return prev * n_words + w  # (…, T)


def bigram_rows(ids: Sequence[int] | torch.Tensor, keys: torch.Tensor, n_words: int) -> torch.Tensor:
    """(…, T) for word ids (…, T) and sorted keys (B,): 2 + the position of κ_t in `keys`, 1 if κ_t is
    not there, 0 where w_t is padding. The one lookup for `Bigrams.encode` and `SentenceClassifier`."""
    w = torch.as_tensor(ids, dtype=torch.int64)  # (…, T)
    kappa = bigram_keys(w, n_words)  # (…, T)
    found = torch.ones_like(kappa)  # (…, T) unknown unless found
    if len(keys):
        pos = torch.searchsorted(keys, kappa).clamp(max=len(keys) - 1)  # (…, T)
        found = torch.where(keys[pos] == kappa, pos + 2, found)  # (…, T)
    return found.masked_fill(w == 0, 0)  # (…, T)


@dataclass(frozen=True)
class Bigrams:
    """id(κ) = 2 + position of κ in the sorted keys of the bigrams seen ≥ `min_count` times; 1 otherwise.

    `encode` maps a sentence of word ids to the ids of the bigrams ending at each word
    (1 = a bigram not kept), so `log_count_ratios` and `out_of_fold_ratios` apply unchanged.
    `SentenceClassifier` does the same lookup (`bigram_rows`) from the keys it stores.
    """

    keys: np.ndarray  # (B,) sorted int64 keys κ
    n_words: int  # V, the word vocabulary size the keys are built on

    @classmethod
    def build(cls, sentences: Sequence[Sequence[int]], *, n_words: int, min_count: int = 1) -> Bigrams:
        counts = Counter(k for s in sentences for k in bigram_keys(s, n_words).tolist())
        keys = np.array(sorted(k for k, c in counts.items() if c >= min_count), dtype=np.int64)  # (B,)
        return cls(keys, n_words)

    def __len__(self) -> int:
        return len(self.keys) + 2

    def encode(self, ids: Sequence[int]) -> list[int]:
        return bigram_rows(ids, torch.from_numpy(self.keys), self.n_words).tolist()  # (T,) ids


def log_count_ratios(sentences: Sequence[Sequence[int]], labels: Sequence[int], n_words: int, classes: int, *,
                     alpha: float = 1.0) -> np.ndarray:
    """R (n_words, classes): each word's log-count ratio for class c against the rest (Wang & Manning 2012).

    Counts are of sentences containing the word (binarized), smoothed by `alpha`; rows 0
    (padding) and 1 (unknown) are 0. Computed from training sentences only.
    """
    present = np.zeros((classes, n_words))  # (C, V) sentences of class c containing word w
    for ids, y in zip(sentences, labels):
        present[y, np.unique(np.asarray(ids, dtype=np.int64))] += 1
    p = alpha + present  # (C, V)
    q = alpha + present.sum(0, keepdims=True) - present  # (C, V)
    R = np.log(p / p[:, 2:].sum(1, keepdims=True)) - np.log(q / q[:, 2:].sum(1, keepdims=True))  # (C, V)
    R[:, :2] = 0.0
    return R.T  # (V, C)


def out_of_fold_ratios(sentences: Sequence[Sequence[int]], labels: Sequence[int], n_words: int, classes: int, *,
                       folds: int = 5, seed: int = 0, alpha: float = 1.0) -> list[np.ndarray]:
    """ρ_i (T_i, classes) for every sentence: its words' ratios computed without its own fold.

    Sentences go to `folds` seeded random folds; fold f reads `log_count_ratios` of the
    others, so a sentence's label never shapes its own inputs (as for a test sentence).
    """
    fold = np.random.default_rng(seed).integers(0, folds, len(sentences))  # (N,)
    rho: list[np.ndarray] = [np.zeros((0, classes))] * len(sentences)
    for f in range(folds):
        rest = np.flatnonzero(fold != f)
        R = log_count_ratios([sentences[i] for i in rest], [labels[i] for i in rest], n_words, classes, alpha=alpha)
        for i in np.flatnonzero(fold == f):
            rho[i] = R[np.asarray(sentences[i], dtype=np.int64)]  # (T_i, C)
    return rho
