"""Decode a user's file with a named encoding, or fail with one line naming the argument; find a CSV's
field separator.

    text = bytes.decode(encoding), without a leading byte-order mark
    delimiter = the first of , ; tab that cuts the header and the first row into as many fields (≥ 2)

A UTF-8 byte-order mark is dropped before decoding in any encoding (a spreadsheet writes
one), and a decoded one (utf-16, utf-8-sig) after. A byte the encoding cannot read, an
unknown codec name or a missing file is a `UsageError` that names `argument`, so the CLI
exits 2 with one line instead of reading mojibake. A spreadsheet set to a European locale
saves "CSV" with semicolons, and some tools write tabs: `csv_table` reads all three.

Example:
    >>> import tempfile, pathlib
    >>> from grukit.data.files import csv_table, read_decoded
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "café.txt"
    >>> _ = path.write_bytes("day;café\\n1;2\\n".encode("latin-1"))
    >>> text = read_decoded(path, "--csv", "latin-1")
    >>> csv_table(text, "--csv", path)
    (['day', 'café'], [(2, ['1', '2'])])
"""
from __future__ import annotations

import csv
import io
import re
import unicodedata
from pathlib import Path

from grukit import _checks
from grukit.errors import UsageError


def read_decoded(path: str | Path, argument: str, encoding: str = "utf-8") -> str:
    """The whole of `path` decoded with `encoding`; UsageError naming `argument` (or --encoding) otherwise."""
    path = Path(path)
    if (why := _checks.not_a_file(path)) == "does not exist":
        raise UsageError(f"{argument}: file not found: {path}")
    if why:  # /dev/null, a pipe: reading one would give nothing or wait for ever
        raise UsageError(f"{argument}: expected a regular file, got {path}, which {why}")
    try:
        raw = path.read_bytes()
    except OSError as err:  # no permission, an I/O error
        raise UsageError(f"{argument}: cannot read {path}: {err.strerror or type(err).__name__}") from None
    data = raw.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark is not text, in any encoding
    mark = len(raw) - len(data)  # offsets below count the file's bytes, the mark's too
    try:
        text = data.decode(encoding).removeprefix("\ufeff")  # nor is a decoded one (utf-16, utf-8-sig)
    except UnicodeDecodeError as err:
        hint = ("--encoding utf-16: it starts with a UTF-16 byte-order mark" if data[:2] in (b"\xff\xfe", b"\xfe\xff")
                else "--encoding cp1252 for a Windows file, latin-1 otherwise")
        raise UsageError(f"{argument}: expected {encoding} text, got byte 0x{data[err.start]:02x} at offset "
                         f"{err.start + mark} of {path} (try {hint})") from None
    except (LookupError, UnicodeError):  # UnicodeError: a codec that decodes nothing, such as 'undefined'
        raise UsageError(f"--encoding: expected a Python codec name such as utf-8 or latin-1, got {encoding!r}") \
            from None
    if "\x00" in text:  # valid UTF-8, but no text file holds NUL: UTF-16 without its byte-order mark, or binary
        at = text.index("\x00")
        raise UsageError(f"{argument}: expected {encoding} text, got a NUL character at character {at} of {path} "
                         f"(UTF-16 without a byte-order mark? try --encoding utf-16-le or utf-16-be)")
    return text


DELIMITERS = (",", ";", "\t")  # tried in this order


def _first_rows(text: str, sep: str) -> tuple[list[str], list[str] | None]:
    """(header, first non-blank row or None) of `text` cut at `sep`; any line end, quoted newlines kept."""
    rows = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    header = next(rows, [])
    return header, next((row for row in rows if row), None)


def delimiter(text: str) -> str:
    """The first of DELIMITERS that cuts the header of `text` into two or more fields and its first row into
    as many (and empty ones beyond: a trailing separator), or that cuts a header-only file at all; else the
    first that cuts the first row into more than one field and at most as many, not counting trailing empty
    ones (a short row); "," when none does (a one-column file)."""
    cuts = {}
    for sep in DELIMITERS:
        try:
            cuts[sep] = _first_rows(text, sep)  # (header, first row or None)
        except csv.Error:  # not a readable file with this separator; csv_reader's caller names the problem
            continue
    for sep, (header, first) in cuts.items():
        if len(header) > 1 and (first is None or (len(first) >= len(header)
                                                  and not any(c.strip() for c in first[len(header):]))):
            return sep
    for sep, (header, first) in cuts.items():
        filled = list(first or [])
        while filled and not filled[-1].strip():
            filled.pop()
        if len(header) > 1 and 1 < len(filled) <= len(header):
            return sep
    return ","


def column_name(name: str) -> str:
    """A column name given by the user in the form of `csv_table`'s header: "é" typed as one character or as
    "e" and an accent (as some systems save it) is one name.

    Example:
        >>> column_name("e\u0301t\u00e9") == column_name("\u00e9te\u0301")
        True
    """
    return unicodedata.normalize("NFC", name)


def csv_table(text: str, argument: str, path: str | Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """(header, [(row number, cells)]) of `text`: the header is its first non-blank line (row 1), its names
    stripped of spaces and in Unicode's composed form (NFC, as `column_name` gives a name typed by the user);
    every later line is a row, numbered as the file's lines (where the row ends), a
    blank one with no cells ([]), for the caller to skip or read as empty; fields cut by `delimiter(text)`,
    any line end, quoted fields keep their newlines. A row with more fields than the header (a decimal
    comma in a comma-separated file) or an unreadable file is a UsageError naming `argument`, the row and
    `path`, never a silently shifted or cut row; extra fields that are all empty (a trailing separator) are
    dropped."""
    blank = re.match(r"(?:[ \t]*(?:\r\n|\r|\n))*", text).group(0)  # blank lines before the header are not it ...
    skipped = len(blank.replace("\r\n", "\n").replace(" ", "").replace("\t", ""))  # ... but lines of the file
    text = text[len(blank):]
    sep = delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    limit = csv.field_size_limit(len(text) + 1)  # csv's own limit, 131,072 characters, would refuse a long cell
    try:
        header = [column_name(name.strip()) for name in next(reader, [])]  # "é" one way
        rows = [(reader.line_num + skipped, cells) for cells in reader]
    except csv.Error as err:
        raise UsageError(f"{argument}: not a readable CSV file: {path} ({err} at row {reader.line_num})") from None
    finally:
        csv.field_size_limit(limit)
    for i, (line, cells) in enumerate(rows):
        if len(cells) > len(header) and not any(cell.strip() for cell in cells[len(header):]):
            rows[i] = (line, cells[:len(header)])  # a trailing separator ("2020-01,1,"): empty fields, no data
        elif len(cells) > len(header):
            hint = " (quote a field that holds a comma, such as a decimal comma)" if sep == "," else ""
            raise UsageError(f"{argument}: expected at most {len(header)} fields per row, as in the header, "
                             f"got {len(cells)} in row {line} of {path}{hint}")
    return header, rows
