"""Decode a user's file with a named encoding, or fail with one line naming the argument; find a CSV's
field separator.

    text = bytes.decode(encoding), without a leading byte-order mark
    delimiter = the first of , ; tab that cuts the header and the first row into as many fields (≥ 2)

A UTF-8 byte-order mark is dropped before decoding in any encoding (a spreadsheet writes
one), and a decoded one (utf-16, utf-8-sig) after. A byte the encoding cannot read, an
unknown codec name or a missing file is a `UsageError` that names `argument`, so the CLI
exits 2 with one line instead of reading mojibake. A spreadsheet set to a European locale
saves "CSV" with semicolons, and some tools write tabs: `csv_reader` reads all three.

Example:
    >>> import tempfile, pathlib
    >>> from grukit.data.files import csv_reader, read_decoded
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "café.txt"
    >>> _ = path.write_bytes("day;café\\n1;2\\n".encode("latin-1"))
    >>> text = read_decoded(path, "--csv", "latin-1")
    >>> [row for row in csv_reader(text)]
    [{'day': '1', 'café': '2'}]
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

from grukit.errors import UsageError


def read_decoded(path: str | Path, argument: str, encoding: str = "utf-8") -> str:
    """The whole of `path` decoded with `encoding`; UsageError naming `argument` (or --encoding) otherwise."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{argument}: file not found: {path}")
    data = path.read_bytes().removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark is not text, in any encoding
    try:
        return data.decode(encoding).removeprefix("\ufeff")  # nor is a decoded one (utf-16, utf-8-sig)
    except UnicodeDecodeError as err:
        hint = ("--encoding utf-16: it starts with a UTF-16 byte-order mark" if data[:2] in (b"\xff\xfe", b"\xfe\xff")
                else "--encoding cp1252 for a Windows file, latin-1 otherwise")
        raise UsageError(f"{argument}: expected {encoding} text, got byte 0x{data[err.start]:02x} at offset "
                         f"{err.start} of {path} (try {hint})") from None
    except LookupError:
        raise UsageError(f"--encoding: expected a Python codec name such as utf-8 or latin-1, got {encoding!r}") \
            from None


DELIMITERS = (",", ";", "\t")  # tried in this order


def _first_rows(text: str, sep: str) -> tuple[list[str], list[str] | None]:
    """(header, first non-blank row or None) of `text` cut at `sep`; any line end, quoted newlines kept."""
    rows = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    header = next(rows, [])
    return header, next((row for row in rows if row), None)


def delimiter(text: str) -> str:
    """The first of DELIMITERS that cuts the header of `text` into two or more fields and its first row into
    as many (or that cuts a header-only file at all); "," when none does (a one-column file)."""
    for sep in DELIMITERS:
        try:
            header, first = _first_rows(text, sep)
        except csv.Error:  # not a readable file with this separator; csv_reader's caller names the problem
            continue
        if len(header) > 1 and (first is None or len(first) == len(header)):
            return sep
    return ","


def csv_reader(text: str) -> csv.DictReader:
    """Rows of `text` as dicts keyed by its header (its first non-blank line), fields cut by `delimiter(text)`;
    any line end (\\n, \\r\\n, \\r), quoted fields keep their newlines."""
    text = text.lstrip("\r\n")  # blank lines before the header are not the header
    return csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter(text))
