"""What a run says about its device at start, and what it says when the GPU runs out of memory.

:func:`describe_device` is the one line a trainer logs before its first step (device name, compute
dtype, total and free memory on CUDA). :func:`oom_hint` turns ``torch.cuda.OutOfMemoryError`` into
the same error type whose message also names the settings that reduce memory (:data:`OOM_KNOBS`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

GIB = 1024**3

# (setting, what it does to GPU memory): the knobs an out-of-memory message names, in the order
# to try them. Each training episode runs its own forward and backward (gradients of the
# ``train.accumulate`` episodes of an update are summed), so peak memory is that of one episode.
OOM_KNOBS: tuple[tuple[str, str], ...] = (
    (
        "model.checkpointing=true",
        "keep only the input of each adapted block and recompute the block in backward "
        "(one extra forward of those blocks)",
    ),
    ("train.amp=bf16", "bf16 autocast: about half the activation memory, and faster"),
    (
        "train.accumulate",
        "episodes per optimiser update; one episode is in memory at a time whatever its value, "
        "so keep the paper's batch of 8 this way rather than by larger episodes",
    ),
    (
        "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True",
        "environment variable: less fragmentation when 'reserved but unallocated' is large",
    ),
)


def describe_device(device: torch.device | str, amp: str = "none") -> str:
    """One line naming the device, the compute dtype and (CUDA) total/free memory.

    Args:
        device: the torch device a run uses (``cuda:0``, ``cpu``...).
        amp: the run's ``train.amp`` (``none`` -> fp32, ``bf16`` -> bf16 autocast).

    Returns:
        e.g. ``"cuda:0 NVIDIA H100 80GB HBM3 (sm_90, 132 SMs), bf16 autocast, 79.1 GiB total,
        78.6 GiB free, torch 2.11.0+cu130"`` or ``"cpu (16 threads), fp32, torch 2.14.1"``.
    """
    device = torch.device(device)
    dtype = "bf16 autocast" if amp == "bf16" else "fp32"
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        p = torch.cuda.get_device_properties(index)
        free, total = torch.cuda.mem_get_info(index)
        if amp == "bf16" and not torch.cuda.is_bf16_supported():
            dtype += " (NOT supported by this GPU)"
        return (
            f"cuda:{index} {p.name} (sm_{p.major}{p.minor}, {p.multi_processor_count} SMs), "
            f"{dtype}, {total / GIB:.1f} GiB total, {free / GIB:.1f} GiB free, "
            f"torch {torch.__version__}"
        )
    return f"{device} ({torch.get_num_threads()} threads), {dtype}, torch {torch.__version__}"


def oom_message(what: str = "training", device: torch.device | str | None = None) -> str:
    """The hint appended to a CUDA out-of-memory error: the knobs of :data:`OOM_KNOBS`.

    Args:
        what: the stage that ran out ("training", "evaluation"...).
        device: named with its total memory when it is a CUDA device.
    """
    where = ""
    if device is not None and torch.device(device).type == "cuda" and torch.cuda.is_available():
        d = torch.device(device)
        index = d.index if d.index is not None else torch.cuda.current_device()
        p = torch.cuda.get_device_properties(index)
        where = f" on {p.name} ({p.total_memory / GIB:.1f} GiB)"
    lines = [f"d2st: {what} ran out of GPU memory{where}. Settings that reduce memory:"]
    lines += [f"  - {knob}: {effect}" for knob, effect in OOM_KNOBS]
    return "\n".join(lines)


@contextmanager
def oom_hint(what: str = "training", device: torch.device | str | None = None) -> Iterator[None]:
    """Re-raise ``torch.cuda.OutOfMemoryError`` with :func:`oom_message` appended.

    The raised error is again a ``torch.cuda.OutOfMemoryError`` (chained to the original), so
    callers that catch that type still do.

    Example:
        ``with oom_hint("training", device): train_loop()``
    """
    try:
        yield
    except torch.cuda.OutOfMemoryError as e:
        raise torch.cuda.OutOfMemoryError(f"{e}\n\n{oom_message(what, device)}") from e
