"""Training throughput and peak memory, fp32 vs bf16 autocast, per backbone (small CPU shapes).

Each (backbone, precision) runs in a fresh spawned process. Its peak resident memory is the
kernel's high-water mark ``VmHWM``, reset at the start of the measurement through
``/proc/self/clear_refs``: ``ru_maxrss`` alone is useless here, because Linux carries it across
``execve``, so every spawned child would report the parent's peak. Writes ``train.csv`` with
:func:`d2st.bench.common.machine_info` columns.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import tempfile
import time
from pathlib import Path

import pandas as pd

from d2st.bench.common import machine_info


def _reset_peak_rss() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the resident-set high-water mark (Linux >= 4.0)
    except OSError:
        pass


def _peak_rss_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _measure(backbone: str, amp: str, episodes: int, size: int) -> dict:
    import torch

    _reset_peak_rss()

    from d2st.bench.eval import random_shards
    from d2st.config import load_config
    from d2st.train import train

    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as tmp:
        shards = random_shards(8, 6, 8, size + 4, seed=0)
        base = [f"run.out_dir={tmp}", f"model.backbone={backbone}", "model.adapter=d2st",
                "model.frames=8", f"model.image_size={size}", f"train.amp={amp}", "train.device=cpu",
                "train.accumulate=2", "train.warmup_episodes=0", "train.checkpoint_every=100000"]  # fmt: skip
        train(
            load_config(None, [*base, "run.name=warm", "train.episodes=2"]),
            train_set=shards,
            progress=False,
        )
        t0 = time.perf_counter()
        train(load_config(None, [*base, "run.name=timed", f"train.episodes={episodes}"]),
              train_set=shards, progress=False)  # fmt: skip
        wall = time.perf_counter() - t0
    return {"wall_s": wall, "episodes_per_s": episodes / wall,
            "peak_mem_mb": _peak_rss_mb(), "mem_method": "VmHWM (peak RSS, process)"}  # fmt: skip


def run(out_dir: Path, quick: bool) -> Path:
    backbones = ["resnet_tiny"] if quick else ["resnet_tiny", "resnet_tiny16", "resnet18"]
    episodes, size = (4, 32) if quick else (16, 64)
    rows = []
    ctx = mp.get_context("spawn")
    for backbone in backbones:
        for amp in ("none", "bf16"):
            with ctx.Pool(1) as pool:
                r = pool.apply(_measure, (backbone, amp, episodes, size))
            rows.append({"bench": "train", "backbone": backbone, "adapter": "d2st",
                         "precision": "fp32" if amp == "none" else "bf16", "frames": 8,
                         "size": size, "episodes": episodes, **r, **machine_info("cpu")})  # fmt: skip
    df = pd.DataFrame(rows)
    fp32 = df[df.precision == "fp32"].set_index("backbone")
    df["speed_vs_fp32"] = df.episodes_per_s / df.backbone.map(fp32.episodes_per_s)
    df["mem_vs_fp32"] = df.peak_mem_mb / df.backbone.map(fp32.peak_mem_mb)
    path = Path(out_dir) / "train.csv"
    df.to_csv(path, index=False)
    return path
