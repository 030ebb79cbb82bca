"""Decode a user's file with a named encoding, or fail with one line naming the argument.

    text = bytes.decode(encoding), without a leading byte-order mark

A UTF-8 byte-order mark is dropped before decoding in any encoding (a spreadsheet writes
one), and a decoded one (utf-16, utf-8-sig) after. A byte the encoding cannot read, an
unknown codec name or a missing file is a `UsageError` that names `argument`, so the CLI
exits 2 with one line instead of reading mojibake.

Example:
    >>> import tempfile, pathlib
    >>> from grukit.data.files import read_decoded
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "café.txt"
    >>> _ = path.write_bytes("café".encode("latin-1"))
    >>> read_decoded(path, "--text", "latin-1")
    'café'
"""
from __future__ import annotations

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
