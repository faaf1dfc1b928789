"""Safe file IO: atomic writes, one writer per folder, checked checkpoint loads, disk-full errors.

* :func:`atomic_write_bytes` / :func:`atomic_write_text`: write ``path.tmp<pid>``, fsync, rename
  over ``path``, fsync the folder. A reader sees the old file or the new one, never half of one;
  a killed writer leaves at most a ``*.tmp<pid>`` file, which no reader accepts.
* :class:`FolderLock`: an exclusive ``fcntl.flock`` on ``<folder>/.d2st.lock``, which also records
  the holder (PID, host, start time, command). The kernel drops a flock when its process dies, so a
  ``kill -9`` never leaves a live lock: the next writer takes the folder over and reports the dead
  holder as stale (:attr:`FolderLock.stale`). A second live writer fails at once, naming the PID.
* :func:`load_checkpoint` / :func:`save_checkpoint`: ``torch.load(weights_only=True)`` whose
  failures (0 bytes, truncated, not a checkpoint, a pickle that would run code) are one line
  naming the path; saving is atomic.
* :func:`no_space`: turns ENOSPC / EDQUOT / EFBIG into one line naming the path and the bytes
  needed.
"""

from __future__ import annotations

import errno
import fcntl
import io
import json
import os
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from d2st.errors import UserError

LOCK_NAME = ".d2st.lock"
NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class DiskFullError(UserError):
    """A write failed for lack of space (or a file-size limit); the message names path and bytes."""


class LockedError(UserError):
    """The folder is being written by another live process (the message names its PID)."""


class CheckpointError(UserError):
    """A checkpoint file is empty, truncated, damaged or not a plain-tensor checkpoint."""


# --------------------------------------------------------------------------- disk full


def human_bytes(n: float) -> str:
    """``12345678`` -> ``'12.3 MB'`` (decimal units)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


def free_bytes(path: str | Path) -> int | None:
    """Free bytes on the file system holding ``path`` (or its nearest existing parent)."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free
    except OSError:
        return None


def is_no_space(e: BaseException) -> bool:
    """True for ENOSPC / EDQUOT / EFBIG, also when a library wraps them (HDF5: ``errno = 28``)."""
    if isinstance(e, OSError) and e.errno in NO_SPACE_ERRNOS:
        return True
    text = str(e)
    return any(f"errno = {n}," in text for n in NO_SPACE_ERRNOS) or "No space left" in text


def disk_full_error(path: str | Path, need: int | None = None, what: str = "") -> DiskFullError:
    """The one-line error for a write to ``path`` that ran out of space.

    Args:
        path: the file (or folder) being written.
        need: bytes the write still needed (an estimate is fine), if known.
        what: what the bytes are for, e.g. ``"for the 40 videos not yet stored"``.
    """
    free = free_bytes(path)
    parts = [f"needs {human_bytes(need)}" if need is not None else "needs more space"]
    parts[0] += f" {what}" if what else ""
    parts.append(f"{human_bytes(free)} free" if free is not None else "")
    detail = ", ".join(p for p in parts if p)
    return DiskFullError(
        f"{path}: no space left on device ({detail})" if detail else f"{path}: no space left",
        "free some space (or pick an output folder on another disk) and run the command again",
    )


@contextmanager
def no_space(path: str | Path, need: int | None = None, what: str = "") -> Iterator[None]:
    """Re-raise a no-space failure inside the block as :func:`disk_full_error` (one line)."""
    try:
        yield
    except DiskFullError:
        raise
    except (OSError, RuntimeError) as e:
        if is_no_space(e):
            raise disk_full_error(path, need, what) from None
        raise


# --------------------------------------------------------------------------- atomic writes


def fsync_path(path: str | Path) -> None:
    """fsync a file or a folder (so a rename inside it is durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (tmp + fsync + rename + fsync of the folder).

    Raises:
        DiskFullError: no space for ``len(data)`` bytes (the temporary file is removed).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    try:
        with no_space(path, len(data)):
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_path(path.parent)
    return path


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """:func:`atomic_write_bytes` of ``text`` encoded with ``encoding``."""
    return atomic_write_bytes(path, text.encode(encoding))


# --------------------------------------------------------------------------- folder lock


def _holder_line(info: dict) -> str:
    where = f"PID {info.get('pid', '?')} on {info.get('host', '?')}"
    if info.get("started"):
        where += f" (since {info['started']})"
    return where


def _read_info(fd: int) -> dict:
    try:
        raw = os.pread(fd, 4096, 0)
        return json.loads(raw) if raw.strip() else {}
    except (OSError, ValueError):
        return {"pid": "?", "host": "?"}


class FolderLock:
    """Exclusive writer lock on a folder: ``with FolderLock(run_dir): ...``.

    The lock is an ``fcntl.flock`` on ``<folder>/.d2st.lock`` (created, and the folder too, if
    missing), so the kernel releases it when the holder exits or is killed; the file also records
    who holds it. Works on local disks and on NFS (Linux emulates flock with POSIX locks there).

    Args:
        folder: the folder one writer owns (a shard folder, a run folder).
        what: what the holder does, stored in the lock file and shown to a second writer.

    Attributes:
        stale: the record of a previous holder that died without releasing (killed), else None.

    Raises:
        LockedError: on :meth:`acquire` when another live process holds the folder.
    """

    def __init__(self, folder: str | Path, what: str = ""):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.what = what
        self.stale: dict | None = None
        self._fd: int | None = None

    def acquire(self) -> FolderLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                info = _read_info(fd)
                os.close(fd)
                raise LockedError(
                    f"{self.folder}: in use by {_holder_line(info)}"
                    + (f": {info['what']}" if info.get("what") else ""),
                    "wait for that process to finish (or stop it); one writer per folder",
                ) from None
            try:  # a releasing holder unlinks the file: make sure we locked the one at self.path
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        old = _read_info(fd)
        self.stale = old or None  # a record left behind = its holder died holding the folder
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "what": self.what,
            "command": " ".join(sys.argv)[:300],
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd
        return self

    def stale_line(self) -> str | None:
        """One line about a stale lock taken over, or None."""
        if not self.stale:
            return None
        return (
            f"{self.folder}: took over a stale lock of {_holder_line(self.stale)} (it was killed)"
        )

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # while still holding: nobody can be between steps
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def lock_holder(folder: str | Path) -> dict | None:
    """The record of the live process holding ``folder``'s :class:`FolderLock`, else None."""
    path = Path(folder) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_info(fd) or {"pid": "?", "host": "?"}
    finally:
        os.close(fd)  # also drops the shared lock if we got it
    return None


# --------------------------------------------------------------------------- checkpoints


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` with one-line errors naming ``path``.

    Raises:
        CheckpointError: missing, 0 bytes, truncated / damaged, or refused by the weights-only
            unpickler (a payload that would run code).
    """
    import pickle

    import torch

    path = Path(path)
    hint = "delete it to start that run afresh, or restore it from a copy"
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    n = path.stat().st_size
    if n == 0:
        raise CheckpointError(
            f"{path}: checkpoint is empty (0 bytes; the process writing it was killed?)", hint
        )
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        text = str(e)
        if "Unsupported global" in text or "GLOBAL" in text:  # a class/function reference
            raise CheckpointError(
                f"{path}: refused: the checkpoint holds objects other than tensors and plain "
                "values (loading it could run code)",
                "only load checkpoints written by d2st",
            ) from None
        tail = text.partition("WeightsUnpickler error:")[2].strip()
        why = tail.splitlines()[0] if tail else "unpickling failed"
        raise CheckpointError(
            f"{path}: not a checkpoint, or damaged ({n} bytes): {why[:120]}", hint
        ) from None
    except (RuntimeError, EOFError, ValueError, OSError, KeyError, AttributeError) as e:
        why = (str(e).strip().splitlines() or [""])[0].split(". This is an internal")[0][:160]
        raise CheckpointError(
            f"{path}: checkpoint is truncated or damaged ({n} bytes): {type(e).__name__}: {why}",
            hint,
        ) from None


def save_checkpoint(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to memory, then :func:`atomic_write_bytes` (disk full: one line)."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())
