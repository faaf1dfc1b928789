"""What every benchmark row carries: the machine it ran on, and a simple timer."""

from __future__ import annotations

import inspect
import os
import platform
import sys
import time
from contextlib import contextmanager

_T0 = time.perf_counter()
_progress = {"last": 0.0, "count": 0}
PROGRESS_EVERY_S = 10.0  # at most one progress line per this many seconds


def say(message: str, bench: str = "") -> None:
    """One progress / warning line on stderr: ``[bench data +12s] message``."""
    tag = f"bench {bench}".strip()
    print(f"[{tag} +{time.perf_counter() - _T0:.0f}s] {message}", file=sys.stderr, flush=True)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info(device: str = "cpu") -> dict[str, str | int]:
    """Columns that name the machine: host CPU, cores, device and library versions."""
    import torch

    info: dict[str, str | int] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count() or 0,
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "torch": torch.__version__,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["device"] = torch.cuda.get_device_name(0)
    return info


@contextmanager
def timer():
    """``with timer() as t: ...`` then ``t()`` gives the elapsed seconds.

    Every benchmark measures through this timer, so it also reports progress: at most one line
    per ``PROGRESS_EVERY_S`` on stderr, naming the benchmark module and measurements done.
    """
    caller = inspect.currentframe().f_back.f_back  # the benchmark's frame (through contextmanager)
    bench = (caller.f_globals.get("__name__", "") if caller else "").rsplit(".", 1)[-1]
    start = time.perf_counter()
    end: list[float] = []
    yield lambda: (end[0] if end else time.perf_counter()) - start
    end.append(time.perf_counter())
    _progress["count"] += 1
    if end[0] - _progress["last"] >= PROGRESS_EVERY_S:
        _progress["last"] = end[0]
        say(f"{_progress['count']} measurements done (last: {end[0] - start:.1f}s)", bench)
