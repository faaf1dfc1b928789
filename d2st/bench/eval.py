"""Evaluation speed: N test episodes on cached per-video features vs recomputing every episode.

Both paths score the same seeded episodes with the same tiny adapted model (resnet_tiny + D2ST
adapter, random data), so the accuracies must agree exactly; the row ``speedup`` is the ratio of
wall times. Writes ``eval.csv`` with :func:`d2st.bench.common.machine_info` columns.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from d2st.bench.common import machine_info, timer


class ArrayShards:
    """In-memory stand-in for a ShardSet (``labels``, ``len``, ``get_many``)."""

    def __init__(self, clips: np.ndarray, labels: np.ndarray):
        self.clips, self.labels = clips, labels

    def __len__(self):
        return len(self.labels)

    def get_many(self, idx):
        return self.clips[np.asarray(list(idx), dtype=np.int64)]


def random_shards(classes: int, per_class: int, frames: int, size: int, seed: int) -> ArrayShards:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), per_class).astype(np.int64)
    clips = rng.integers(0, 256, (len(labels), frames, size, size, 3), dtype=np.uint8)
    return ArrayShards(clips, labels)


def tiny_run(out: Path, backbone="resnet_tiny", adapter="d2st", frames=8, size=32, amp="none"):
    """Train a tiny run for one update on random data; returns (config overrides, shards)."""
    from d2st.config import load_config
    from d2st.train import train

    overrides = [f"run.out_dir={out}", "run.name=bench", f"model.backbone={backbone}",
                 f"model.adapter={adapter}", f"model.frames={frames}", f"model.image_size={size}",
                 "train.episodes=4", "train.accumulate=4", "train.device=cpu", f"train.amp={amp}",
                 "train.warmup_episodes=0"]  # fmt: skip
    shards = random_shards(8, 6, frames, size + 4, seed=0)
    result = train(load_config(None, overrides), train_set=shards, progress=False)
    return result.run_dir


def run(out_dir: Path, quick: bool) -> Path:
    from d2st.evaluate import evaluate

    n = 30 if quick else 500
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run_dir = tiny_run(tmp)
        test = random_shards(10, 10, 8, 36, seed=1)
        results = {}
        for mode, cache in (("cached", True), ("recomputed", False)):
            with timer() as t:
                table = evaluate(run_dir, None, tmp / mode / "eval.csv", shots=[1], episodes=n,
                                 cache=cache, device="cpu", shard_set=test)  # fmt: skip
            results[mode] = (t(), float(table.accuracy.iloc[0]))
    for mode, (wall, acc) in results.items():
        rows.append({"bench": "eval", "mode": mode, "backbone": "resnet_tiny", "adapter": "d2st",
                     "episodes": n, "wall_s": wall, "episodes_per_s": n / wall, "accuracy": acc,
                     "speedup": results["recomputed"][0] / wall,
                     "same_accuracy": results["cached"][1] == results["recomputed"][1],
                     **machine_info("cpu")})  # fmt: skip
    path = Path(out_dir) / "eval.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path
