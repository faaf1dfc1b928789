"""Tiny synthetic shards and run configs for the few-shot tests (trainer, evaluator, DDP).

Shards are written by ``d2st.data.shards.write_clips`` (raw frame layout) and read back by
the real ``d2st.data.shards.ShardSet``. Each class is a colour tint plus a square moving in a
class-specific direction, so a tiny adapted ResNet can learn it in a few dozen episodes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

FRAMES, SIZE, CROP = 4, 36, 32


def make_clips(classes: int, per_class: int, seed: int, frames=FRAMES, size=SIZE):
    """uint8 (N, T, H, W, 3) clips and int64 labels, class-major."""
    rng = np.random.default_rng(seed)
    clips, labels = [], []
    for c in range(classes):
        angle = 2 * np.pi * c / classes
        tint = 60 + 120 * np.abs(np.array([np.cos(angle), np.sin(angle), np.cos(2 * angle)]))
        for _ in range(per_class):
            clip = rng.integers(0, 40, (frames, size, size, 3)).astype(np.float32)
            clip += tint * 0.5
            x0, y0 = rng.integers(10, size - 18, 2)
            for t in range(frames):
                x = int(x0 + 3 * t * np.cos(angle))
                y = int(y0 + 3 * t * np.sin(angle))
                clip[t, max(0, y) : y + 8, max(0, x) : x + 8] = tint + 60
            clips.append(np.clip(clip, 0, 255).astype(np.uint8))
            labels.append(c)
    return np.stack(clips), np.array(labels, dtype=np.int64)


def write_shards(root: Path, clips: np.ndarray, labels: np.ndarray, class_names=None) -> Path:
    """One raw shard + shards.csv + manifest.csv in ``root`` (CONTRACTS layout)."""
    from d2st.data.shards import write_clips

    return write_clips(root, clips, labels, class_names=class_names)


def make_dataset(
    tmp: Path, train_classes=8, test_classes=6, per_class=6, seed=0, frames=FRAMES
) -> tuple[Path, Path]:
    """Train and test shard folders (disjoint classes, as in few-shot splits)."""
    clips, labels = make_clips(train_classes + test_classes, per_class, seed, frames=frames)
    is_train = labels < train_classes
    names = [f"class{c:02d}" for c in range(train_classes + test_classes)]
    train = write_shards(tmp / "train", clips[is_train], labels[is_train], names[:train_classes])
    test = write_shards(
        tmp / "test", clips[~is_train], labels[~is_train] - train_classes, names[train_classes:]
    )
    return train, test


def tiny_overrides(tmp: Path, train: Path, test: Path, **extra) -> list[str]:
    """key=value overrides for a tiny resnet_tiny run writing under ``tmp/runs``."""
    base = {
        "run.out_dir": str(tmp / "runs"),
        "run.name": "tiny",
        "run.seed": 0,
        "data.dataset": "synthetic",
        "data.train_shards": str(train),
        "data.test_shards": str(test),
        "model.backbone": "resnet_tiny",
        "model.frames": FRAMES,
        "model.image_size": CROP,
        "model.adapter": "st",
        "metric.name": "bimhm",
        "train.way": 3,
        "train.shot": 1,
        "train.query": 1,
        "train.episodes": 16,
        "train.warmup_episodes": 4,
        "train.lr": 5e-3,
        "train.warmup_start_lr": 1e-3,
        "train.accumulate": 4,
        "train.log_every": 4,
        "train.checkpoint_every": 4,
        "train.device": "cpu",
        # our recipe (distinct episodes, lr at the window start, ...) keeps episode ids = draws;
        # tests of the authors' recipe set train.update_mode=official explicitly
        "train.update_mode": "distinct",
        "train.lr_timing": "start",
        "train.nan_policy": "skip",
        "train.decay_rule": "all_norms",
        "eval.way": 3,
        "eval.episodes": 40,
        "eval.shots": [1, 2],
    }
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]
