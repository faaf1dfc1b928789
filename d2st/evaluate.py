"""Few-shot evaluation of a trained run on test episodes (``d2st evaluate``).

- The episode list is a function of the seed only (:class:`d2st.data.episodes.EpisodeSampler`), so
  every method is scored on the same episodes; shots 1..5 share classes and queries.
- Test frames are fixed in the shards and the test view (centre crop) is deterministic, so each
  video's per-frame features are computed once and cached, and many episodes are then matched at
  once on the cache. This is exact: ``cache=False`` recomputes every episode's videos through the
  encoder, as the official code does, and gives the same predictions (tests check it).
- Accuracy is the mean over episodes of the per-episode query accuracy, in %, with the 95% CI
  ``1.96 * std / sqrt(N)`` over per-episode accuracies (TRX/STRM/TA2N convention; population std).
- ``pairs``: binary 1-shot episodes restricted to each time-reversed class pair
  (``protocol=reversed_pairs``): accuracy per pair (``reversed_pairs.csv``) and overall (eval.csv).
"""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from d2st.build import (
    check_shards,
    fix_threads,
    load_run,
    mean_std,
    resolve_device,
    set_vocabulary,
)
from d2st.data.episodes import EpisodeSampler
from d2st.data.transforms import eval_transform
from d2st.models.fewshot import FewShotModel

EVAL_COLUMNS = [
    "run", "dataset", "backbone", "adapter", "metric", "protocol", "way", "shot", "episodes",
    "accuracy", "ci95", "seed", "tunable_params", "total_params", "peak_mem_mb", "train_time_s",
    "eval_time_s",
]  # fmt: skip


def ci95(per_episode: np.ndarray) -> float:
    """95% normal-approximation interval half-width of the mean: 1.96 * std / sqrt(N)."""
    per_episode = np.asarray(per_episode, dtype=np.float64)
    return float(1.96 * per_episode.std() / np.sqrt(len(per_episode)))


class TestFrames:
    """A shard set seen through the test-time frame choice (``eval.frame_choice``, F > 1).

    Shards with F frames stored per segment give T*F frames per video; the test view takes one
    per segment: the centre candidate (deterministic, so cached features stay exact) or, with
    ``random``/``official`` on a rule whose test choice is random, a draw seeded per video.
    """

    def __init__(self, shards, spec):
        from d2st.data import sampling

        self.shards, self.spec, self.sampling = shards, spec, sampling
        d = spec.data
        self.rule = (
            sampling.official_rule(d.dataset) if d.frame_rule == "official" else d.frame_rule
        )
        self.labels, self.frames = shards.labels, spec.model.frames

    def __len__(self):
        return len(self.shards)

    def get_many(self, idx):
        idx = list(idx)
        clips = torch.from_numpy(np.ascontiguousarray(self.shards.get_many(idx)))
        T, F = self.spec.model.frames, self.spec.data.frames_per_segment
        gen = torch.Generator().manual_seed(
            self.spec.eval.seed * 1_000_003 + (idx[0] if idx else 0)
        )
        pos = self.sampling.eval_choice(
            len(idx), T, F, self.spec.eval.frame_choice, self.rule, gen
        )  # (B, T) stored positions
        return self.sampling.pick_frames(clips, pos).numpy()


def episode_arrays(sampler: EpisodeSampler, n: int) -> dict[str, np.ndarray]:
    """Episodes 0..n-1 stacked: support/query indices and labels, (E, S) / (E, Q), classes (E, W)."""
    eps = [sampler.episode(e) for e in range(n)]
    return {
        k: np.stack([getattr(ep, k) for ep in eps])
        for k in ("support", "support_labels", "query", "query_labels", "classes")
    }


@torch.no_grad()
def encode_videos(model: FewShotModel, shards, crop, mean, std, device, batch: int = 32):
    """Per-frame features of every video of ``shards``: (N, T, C) on ``device``."""
    feats = []
    for i in range(0, len(shards), batch):
        idx = range(i, min(i + batch, len(shards)))
        clips = torch.from_numpy(np.ascontiguousarray(shards.get_many(idx)))
        feats.append(model.encode(eval_transform(clips, crop, mean, std).to(device)))
    return torch.cat(feats)


@torch.no_grad()
def predict_cached(
    metric, feats: torch.Tensor, eps: dict, batch_episodes: int, model: FewShotModel | None = None
) -> np.ndarray:
    """Predicted episode labels (E, Q), matching ``batch_episodes`` episodes at once.

    ``model`` with an MM head (D2ST-Adapter-MM) matches through :meth:`FewShotModel.match` with
    the episodes' class indices (text modulation); otherwise ``metric`` is called directly.
    """
    mm = model is not None and model.mm is not None
    preds = []
    for i in range(0, len(eps["support"]), batch_episodes):
        sl = slice(i, i + batch_episodes)
        dev = feats.device
        s = torch.as_tensor(eps["support"][sl], device=dev)
        q = torch.as_tensor(eps["query"][sl], device=dev)
        labels = torch.as_tensor(eps["support_labels"][sl], device=dev)
        if mm:
            classes = torch.as_tensor(eps["classes"][sl], device=dev)  # (E, W)
            logits = model.match(feats[s], labels, feats[q], classes=classes)  # (E, Q, W)
        else:
            logits = metric(feats[s], labels, feats[q])  # (E, Q, W)
        preds.append(logits.argmax(-1).cpu().numpy())
    return np.concatenate(preds)


@torch.no_grad()
def predict_recomputed(model, shards, eps: dict, crop, mean, std, device) -> np.ndarray:
    """Predicted labels (E, Q), encoding every episode's videos again (the official way)."""
    preds = []
    for e in range(len(eps["support"])):

        def view(idx):
            clips = torch.from_numpy(np.ascontiguousarray(shards.get_many(idx)))
            return eval_transform(clips, crop, mean, std).to(device)

        support, query = view(eps["support"][e]), view(eps["query"][e])
        labels = torch.as_tensor(eps["support_labels"][e], device=device)
        classes = torch.as_tensor(eps["classes"][e], device=device)  # (W,), MM only
        logits, _ = model(support, labels, query, classes=classes)
        preds.append(logits.argmax(-1).cpu().numpy())
    return np.stack(preds)


def class_names(shards_dir: str | Path, split: str | Path | None = None) -> dict[str, int]:
    """label name -> label_idx from ``--split CSV`` or the shard folder's manifest.csv."""
    path = Path(split) if split else Path(shards_dir) / "manifest.csv"
    df = pd.read_csv(path, usecols=["label", "label_idx"]).drop_duplicates()
    return {str(r.label): int(r.label_idx) for r in df.itertuples()}


def _peak_mem_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _params(model: FewShotModel) -> tuple[int, int]:
    """(tunable, total): encoder + metric (+ the MM head without its frozen text transformer)."""
    metric_total = sum(p.numel() for p in model.metric.parameters())
    metric_tunable = sum(p.numel() for p in model.metric.parameters() if p.requires_grad)
    enc = model.encoder
    tunable = int(enc.tunable_parameters()) + metric_tunable
    total = int(enc.total_parameters()) + metric_total
    if model.mm is not None:
        text = {id(p) for p in model.mm.tower.text.parameters()}
        head = [p for p in model.mm.parameters() if id(p) not in text]
        tunable += sum(p.numel() for p in head if p.requires_grad)
        total += sum(p.numel() for p in head)
    return tunable, total


def evaluate(
    run_dir: str | Path,
    out: str | Path = "eval.csv",
    *,
    overrides: list[str] | tuple[str, ...] = (),
    pairs: str | Path | None = None,
    split: str | Path | None = None,
    device: str = "auto",
    shard_set=None,
) -> pd.DataFrame:
    """Score a run; write ``out`` (eval.csv), ``per_class.csv`` and (with pairs) ``reversed_pairs.csv``.

    Every evaluation setting (shots, episodes, seed, feature cache, test shards) is the run
    spec's ``eval`` section, after ``overrides`` (``eval.episodes=500``); the resolved evaluation
    spec is written next to ``out`` as ``eval_spec.yaml``.
    """
    from d2st.io import FolderLock

    run_dir, out = Path(run_dir), Path(out)
    with FolderLock(out.parent, f"d2st evaluate {run_dir.name}"):
        return _evaluate(run_dir, out, overrides, pairs, split, device, shard_set)


def _evaluate(run_dir, out, overrides, pairs, split, device, shard_set) -> pd.DataFrame:
    from d2st.data.shards import open_shards

    dev = resolve_device(device)
    spec, model = load_run(run_dir, dev, overrides)
    fix_threads(spec.train.threads, spec.train.deterministic)
    ev = spec.eval
    shots, n_eps, seed, cache = list(ev.shots), int(ev.episodes), ev.seed, ev.cache_features
    shards_dir = spec.data.test_shards
    stored = spec.model.frames * spec.data.frames_per_segment
    shards = shard_set if shard_set is not None else open_shards(shards_dir, frames=stored)
    if hasattr(shards, "frames"):
        check_shards(shards, spec, "data.test_shards")
    set_vocabulary(model, shards, "data.test_shards", split or shards_dir)  # MM: test names
    if spec.data.frames_per_segment > 1:
        shards = TestFrames(shards, spec)
    spec.save(out.parent / "eval_spec.yaml")
    labels = np.asarray(shards.labels)
    mean, std = mean_std(spec, model.encoder)
    crop = spec.model.image_size
    done_file = run_dir / "done"
    train_time = (
        json.loads(done_file.read_text()).get("train_time_s", "") if done_file.exists() else ""
    )
    tunable, total = _params(model)
    base = {
        "run": spec.run.name, "dataset": spec.data.dataset, "backbone": spec.model.backbone,
        "adapter": spec.model.adapter, "metric": spec.metric.name, "seed": seed,
        "tunable_params": tunable, "total_params": total, "train_time_s": train_time,
    }  # fmt: skip

    feats, encode_time = None, 0.0
    if cache:
        t0 = time.perf_counter()
        feats = encode_videos(model, shards, crop, mean, std, dev)
        encode_time = time.perf_counter() - t0

    def predict(eps):
        if cache:
            return predict_cached(model.metric, feats, eps, ev.batch_episodes, model)
        return predict_recomputed(model, shards, eps, crop, mean, std, dev)

    rows, per_class = [], []
    for shot in shots:
        t0 = time.perf_counter()
        eps = episode_arrays(EpisodeSampler(labels, ev.way, shot, ev.query, seed), n_eps)
        correct = predict(eps) == eps["query_labels"]  # (E, Q)
        acc = correct.mean(1) * 100
        rows.append({**base, "protocol": "standard", "way": ev.way, "shot": shot,
                     "episodes": n_eps, "accuracy": acc.mean(), "ci95": ci95(acc),
                     "peak_mem_mb": _peak_mem_mb(dev),
                     "eval_time_s": time.perf_counter() - t0 + encode_time})  # fmt: skip
        query_class = np.take_along_axis(eps["classes"], eps["query_labels"], 1)  # (E, Q)
        by_class = pd.DataFrame({"label_idx": query_class.ravel(), "ok": correct.ravel()})
        for c, g in by_class.groupby("label_idx"):
            per_class.append({"run": spec.run.name, "shot": shot, "label_idx": int(c),
                              "accuracy": g.ok.mean() * 100, "n": len(g)})  # fmt: skip

    names = None
    if pairs is not None:
        names = class_names(shards_dir, split) if shards_dir or split else None
        if names is None:
            raise ValueError("--pairs needs class names: a shard folder manifest or --split CSV")
        t0 = time.perf_counter()
        pair_rows, all_acc = [], []
        for p in pd.read_csv(pairs).itertuples():
            a, b = names[str(p.class_a)], names[str(p.class_b)]
            subset = np.flatnonzero((labels == a) | (labels == b))
            sampler = EpisodeSampler(labels[subset], 2, 1, ev.query, seed)
            eps = episode_arrays(sampler, ev.pair_episodes)
            for k in ("support", "query"):
                eps[k] = subset[eps[k]]
            acc = (predict(eps) == eps["query_labels"]).mean(1) * 100
            all_acc.append(acc)
            pair_rows.append({"run": spec.run.name, "class_a": p.class_a, "class_b": p.class_b,
                              "kind": getattr(p, "kind", ""), "episodes": len(acc),
                              "accuracy": acc.mean(), "ci95": ci95(acc)})  # fmt: skip
        acc = np.concatenate(all_acc)
        rows.append({**base, "protocol": "reversed_pairs", "way": 2, "shot": 1,
                     "episodes": len(acc), "accuracy": acc.mean(), "ci95": ci95(acc),
                     "peak_mem_mb": _peak_mem_mb(dev),
                     "eval_time_s": time.perf_counter() - t0 + encode_time})  # fmt: skip
        pd.DataFrame(pair_rows).to_csv(out.parent / "reversed_pairs.csv", index=False)

    table = pd.DataFrame(rows, columns=EVAL_COLUMNS)
    table.to_csv(out, index=False)
    pc = pd.DataFrame(per_class)
    try:
        inverse = {v: k for k, v in (names or class_names(shards_dir, split)).items()}
    except (OSError, ValueError, TypeError):
        inverse = {}
    pc.insert(2, "class", pc.label_idx.map(lambda c: inverse.get(c, str(c))))
    pc.to_csv(out.parent / "per_class.csv", index=False)
    return table
