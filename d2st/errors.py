"""Errors a user can fix: the CLI prints them as one or two lines (tracebacks only with --debug)."""

from __future__ import annotations


class UserError(Exception):
    """Bad input (a file, a line, a key): the message names it and says what to do."""


class SpecMismatch(UserError):
    """The data on disk does not hold what the run spec expects (frames, size, classes)."""
