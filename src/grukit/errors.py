"""Errors a user can cause, kept apart from bugs.

A `UsageError` is bad input from the command line or a data file: a missing file,
an unknown column, a series too short for the window. The CLI prints its message
on one line and exits with code 2, with no traceback; every other exception is a
bug and keeps its traceback.

Example:
    >>> from grukit.errors import UsageError
    >>> err = UsageError("--column: expected one of ['co2'], got 'co3'")
    >>> isinstance(err, ValueError), str(err)
    (True, "--column: expected one of ['co2'], got 'co3'")
"""
from __future__ import annotations


class UsageError(ValueError):
    """Bad input from the user: the message names the argument, what was expected and what was given."""
