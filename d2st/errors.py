"""The one exception type for bad input or a bad environment: printed by ``d2st`` as one line.

A :class:`UserError` is something the user can fix (a missing file, a wrong value, a busy folder, a
full disk). Its message names the file, line or key; ``hint`` says what to do. ``d2st`` prints
``d2st <command>: error: <message>`` and, on a second line, ``hint: <hint>``; the traceback only
with ``d2st --debug``. Anything else escaping a command is a bug and keeps its type in the line.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input or environment; ``str(e)`` is the message, ``e.hint`` the optional advice.

    Args:
        message: one line naming the file, line or key.
        hint: one line saying what to do (optional).
    """

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message, hint)  # both in args, so the error pickles across processes

    @property
    def message(self) -> str:
        return str(self.args[0])

    @property
    def hint(self) -> str | None:
        return self.args[1] if len(self.args) > 1 else None

    def __str__(self) -> str:
        return self.message


class SpecMismatch(UserError):
    """The data on disk does not hold what the run spec expects (frames, size, classes)."""
