"""Decode a user's file with a named encoding, or fail with one line naming the argument; find a CSV's
field separator.

    text = bytes.decode(encoding), without a leading byte-order mark
    delimiter = the one of , ; tab that cuts the header line into the most fields

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
        raise UsageError(f"{argument}: expected {encoding} text, got byte 0x{data[err.start]:02x} at offset "
                         f"{err.start} of {path} (try --encoding cp1252 for a Windows file, latin-1 otherwise)"
                         ) from None
    except LookupError:
        raise UsageError(f"--encoding: expected a Python codec name such as utf-8 or latin-1, got {encoding!r}") \
            from None


DELIMITERS = (",", ";", "\t")  # the first wins a tie


def delimiter(text: str) -> str:
    """The one of DELIMITERS that cuts the first line of `text` (the header) into the most fields."""
    header = text.lstrip("\r\n").split("\n", 1)[0]
    return max(DELIMITERS, key=lambda d: len(next(csv.reader([header], delimiter=d), [])))


def csv_reader(text: str) -> csv.DictReader:
    """Rows of `text` as dicts keyed by its header, fields cut by `delimiter(text)`; quoted fields keep newlines."""
    return csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter(text))
