"""Episodic few-shot training (``d2st train --config FILE key=value ...``).

What one run does (docs/TRAINING.md has the reasons and the official-vs-paper choices):

- episodes: global episode ``g`` is a pure function of (run.seed, g): its classes and videos
  (:class:`d2st.data.episodes.EpisodeSampler`), its augmentation (a generator seeded from (seed, g))
  and its dropout (the torch RNG is re-seeded from (seed, g) before the forward pass);
- loss: CE over the W episode classes of the metric's logits (Eq. 5) + ``metric.aux_weight`` x CE of
  the auxiliary global-class head; a non-finite loss skips that episode with a warning;
- optimiser: Adam with coupled L2 weight decay (``torch.optim.Adam(weight_decay=...)``), norm
  parameters exempt; one update per ``train.accumulate`` episodes, losses averaged;
- schedule: linear warm-up from ``warmup_start_lr`` over ``warmup_episodes`` to the scheduled lr,
  then ``lr * lr_factors[k]`` from fraction ``lr_milestones[k]`` of training on; a pure function of
  the episode counter;
- data parallel (torchrun): update ``u`` covers global episodes ``[u*A, (u+1)*A)``, rank ``r`` runs
  those with ``g % world == r``; gradients are summed over ranks (each episode loss is already
  divided by the episodes of its update), so any world size trains on the same episodes;
- checkpoints: after the update that crosses a multiple of ``checkpoint_every`` episodes and at the
  end, ``checkpoint.pt`` is replaced atomically; a killed run restarts from it and ends with the
  same weights as an uninterrupted one.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import logging
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from d2st import recipe
from d2st.build import (
    build_model,
    check_shards,
    fix_threads,
    load_run,
    mean_std,
    resolve_device,
    set_vocabulary,
)
from d2st.catalog import CLIP_CACHE_MB
from d2st.config import RunConfig, load_config, yaml_text
from d2st.data import sampling
from d2st.data.episodes import EpisodeSampler
from d2st.data.transforms import train_transform
from d2st.device import describe_device, oom_hint
from d2st.io import FolderLock, atomic_write_text, load_checkpoint, no_space, save_checkpoint
from d2st.models.fewshot import FewShotModel, load_trainable_state, trainable_state

log = logging.getLogger("d2st.train")

AUGMENT, DROPOUT = 1, 2  # stream ids for EpisodeSampler.stream_seed
LOG_COLUMNS = ("episode", "loss", "accuracy", "lr", "episodes_per_s")


# --------------------------------------------------------------------------- building blocks


def open_shards(path, frames: int | None = None):
    """The train shard folder, checked (complete manifest, checksums, ``frames`` per video)."""
    from d2st.data.shards import ShardSet, open_shards

    if path is None:
        raise ValueError("data.train_shards: no shard folder given")
    return ShardSet(path) if frames is None else open_shards(path, frames=frames)


@dataclass(frozen=True)
class View:
    """The training view of a clip (plain settings; flip and jitter apply to queries only)."""

    crop: int
    mean: tuple
    std: tuple
    flip: bool
    jitter: bool
    jitter_order: str = "gray_first"
    crop_range: str = "exclusive"
    frames: int = 8  # T used by the model
    frames_per_segment: int = 1  # F stored per segment: a random one of them per segment
    frame_rule: str = "uniform"


class EpisodeClips(torch.utils.data.Dataset):
    """Augmented clips of the global episodes ``indices`` (one item = one episode).

    Args:
        shards: a ShardSet (``.get_many(idx)`` -> uint8 (n, T*F, H, W, 3)).
        sampler: the run's EpisodeSampler.
        indices: global episode indices in the order they are trained.
        view: a :class:`View`.
    """

    def __init__(self, shards, sampler, indices, view: View):
        self.shards, self.sampler, self.indices, self.view = shards, sampler, list(indices), view

    def __len__(self):
        return len(self.indices)

    def _clips(self, idx, gen) -> torch.Tensor:
        v = self.view
        clips = torch.from_numpy(np.ascontiguousarray(self.shards.get_many(idx)))
        if v.frames_per_segment > 1:  # (B, T*F, H, W, 3) -> (B, T, H, W, 3): temporal jitter
            pos = sampling.train_choice(
                len(clips), v.frames, v.frames_per_segment, gen, v.frame_rule
            )
            clips = sampling.pick_frames(clips, pos)
        return clips

    def __getitem__(self, i):
        g, v = self.indices[i], self.view
        ep = self.sampler.episode(g)
        gen = torch.Generator().manual_seed(self.sampler.stream_seed(g, AUGMENT))
        support, query = self._clips(ep.support, gen), self._clips(ep.query, gen)
        opts = {"jitter_order": v.jitter_order, "crop_range": v.crop_range}
        s = train_transform(support, v.crop, v.mean, v.std, gen, **opts)
        q = train_transform(query, v.crop, v.mean, v.std, gen, v.flip, v.jitter, **opts)
        return {
            "index": g,
            "support": s,
            "query": q,
            "support_labels": torch.from_numpy(ep.support_labels),
            "query_labels": torch.from_numpy(ep.query_labels),
            "classes": torch.from_numpy(ep.classes),  # (W,) train class index of each label
            "global_labels": torch.from_numpy(
                np.concatenate([ep.classes[ep.support_labels], ep.classes[ep.query_labels]])
            ),
        }


# --------------------------------------------------------------------------- state


def rng_state() -> dict:
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), *n[2:]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _write_log(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=LOG_COLUMNS)
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def _read_log(path: Path, upto: int) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [r for r in csv.DictReader(f) if int(r["episode"]) <= upto]


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device_name: str) -> Dist:
    """torchrun env (WORLD_SIZE > 1) -> process group (nccl on GPU, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if resolve_device(device_name, local).type == "cuda" else "gloo"
        dist.init_process_group(backend)
    return Dist(rank, world, local)


@dataclass
class TrainResult:
    run_dir: Path
    model: FewShotModel
    episodes_done: int
    finished: bool


@dataclass
class Session:
    """Everything one rank needs to train a run; built by :func:`setup` from a read-only spec."""

    spec: RunConfig
    ddp: Dist
    device: torch.device
    shards: object
    model: FewShotModel
    opt: torch.optim.Optimizer | None
    trainable: list[torch.Tensor]
    sampler: EpisodeSampler
    out: Path
    lock: FolderLock | None = None
    start: int = 0  # schedule draws done (the episode counter of logs and checkpoints)
    update: int = 0  # optimiser updates done
    train_time: float = 0.0
    rows: list[dict] = field(default_factory=list)

    @property
    def ckpt_path(self) -> Path:
        return self.out / "checkpoint.pt"

    @property
    def log_path(self) -> Path:
        return self.out / "train_log.csv"


# --------------------------------------------------------------------------- named steps


def claim_run_dir(spec: RunConfig) -> FolderLock:
    """Make ``spec.dir`` the folder of exactly this spec, locked by this process (rank 0 only).

    A folder holding work under another config (a changed hyper-parameter) is moved aside to
    ``{name}.superseded-{hash of its config}`` and the run starts fresh: a checkpoint is never
    resumed under other settings. A second live writer fails at once naming the holder's PID.
    """
    out = spec.dir
    cfg_path = out / "config.yaml"
    lock = FolderLock(out, f"d2st train {spec.run.name}").acquire()
    if cfg_path.exists() and load_config(cfg_path) != spec:
        lock.release()
        digest = hashlib.sha256(cfg_path.read_bytes()).hexdigest()[:10]
        aside = out.with_name(f"{out.name}.superseded-{digest}")
        if aside.exists():
            shutil.rmtree(aside)
        os.replace(out, aside)
        log.warning("%s: config changed; the earlier run was moved to %s", out, aside)
        lock = FolderLock(out, f"d2st train {spec.run.name}").acquire()
    if not cfg_path.exists():
        atomic_write_text(cfg_path, yaml_text(spec))
    return lock


def setup(spec: RunConfig, train_set=None, cache_mb: float = CLIP_CACHE_MB) -> Session:
    """Open the shards, build the model and optimiser, claim the run folder (no training yet).

    ``cache_mb``: decoded clips kept in memory per process (:meth:`ShardSet.cache_clips`); it
    changes the time an episode takes, never its contents.
    """
    t = spec.train
    fix_threads(t.threads, t.deterministic)
    if spec.metric.aux_weight > 0 and spec.metric.aux_classes is None:
        raise ValueError("metric.aux_classes: unresolved; build the spec with d2st.config.resolve")
    ddp = init_distributed(t.device)
    if t.accumulate % ddp.world:
        raise ValueError(
            f"train.accumulate: {t.accumulate} not divisible by world size {ddp.world}"
        )
    device = resolve_device(t.device, ddp.local_rank)
    stored = spec.model.frames * spec.data.frames_per_segment
    shards = train_set if train_set is not None else open_shards(spec.data.train_shards, stored)
    if hasattr(shards, "frames"):
        check_shards(shards, spec, "data.train_shards")
    if hasattr(shards, "cache_clips"):
        shards.cache_clips(cache_mb)
    labels = np.asarray(shards.labels)
    if spec.aux_classes and int(labels.max()) + 1 > spec.aux_classes:
        from d2st.errors import SpecMismatch

        raise SpecMismatch(
            f"{getattr(shards, 'root', 'train shards')}: {int(labels.max()) + 1} classes but "
            f"metric.aux_classes={spec.aux_classes}"
        )
    out = spec.dir
    model = build_model(spec).to(device)
    set_vocabulary(model, shards, "data.train_shards", spec.data.train_shards)  # MM only
    groups = recipe.param_groups(model, t.weight_decay, t.decay_rule)
    opt = torch.optim.Adam(groups, lr=t.warmup_start_lr, betas=(0.9, 0.999)) if groups else None
    trainable = [p for g in groups for p in g["params"]]
    sampler = EpisodeSampler(labels, t.way, t.shot, t.query, seed=spec.run.seed)
    lock = claim_run_dir(spec) if ddp.main else None
    if ddp.world > 1:
        dist.barrier()
    log.info("device: %s", describe_device(device, t.amp))
    return Session(spec, ddp, device, shards, model, opt, trainable, sampler, out, lock)


def resume(sess: Session) -> None:
    """Continue from ``checkpoint.pt`` when there is one (else make every rank start equal)."""
    if sess.ckpt_path.exists():
        ckpt = load_checkpoint(sess.ckpt_path)
        load_trainable_state(sess.model, ckpt["model"])
        if sess.opt is not None:
            sess.opt.load_state_dict(ckpt["optimizer"])
        set_rng_state(ckpt["rng"])
        sess.start, sess.train_time = int(ckpt["episode"]), float(ckpt["train_time_s"])
        sess.update = int(ckpt["update"])
        sess.rows = _read_log(sess.log_path, sess.start) if sess.ddp.main else []
        log.info("resuming %s at episode %d", sess.out, sess.start)
    elif sess.ddp.world > 1:
        with torch.no_grad():
            for p in sess.trainable:
                dist.broadcast(p.data, 0)


def run_recipe(spec: RunConfig) -> recipe.Recipe:
    """The effective update recipe of a spec (what ``d2st train`` logs at start)."""
    t, d = spec.train, spec.data
    rule = sampling.official_rule(d.dataset) if d.frame_rule == "official" else d.frame_rule
    return recipe.Recipe(
        recipe.Schedule.from_train(t),
        update_mode=t.update_mode,
        accumulate=t.accumulate,
        leftover=t.leftover,
        lr_timing=t.lr_timing,
        weight_decay=t.weight_decay,
        decay_rule=t.decay_rule,
        nan_policy=t.nan_policy,
        jitter_order=d.jitter_order,
        crop_range=d.crop_range,
        frame_rule=rule,
        frames_per_segment=d.frames_per_segment,
        test_frame_choice=spec.eval.frame_choice,
    )


def windows_from(sess: Session) -> list[recipe.UpdateWindow]:
    """The update windows still to train (a pure function of the spec and the update counter)."""
    t = sess.spec.train
    return list(
        recipe.update_windows(t.episodes, t.accumulate, t.update_mode, t.leftover, sess.update)
    )


def episode_stream(sess: Session, windows: list[recipe.UpdateWindow]):
    """Iterator over this rank's augmented episodes of ``windows`` (a DataLoader)."""
    spec, ddp = sess.spec, sess.ddp
    mean, std = mean_std(spec, sess.model.encoder)
    mine = [g for w in windows for g in w.episodes if g % ddp.world == ddp.rank]
    view = View(
        spec.model.image_size,
        tuple(mean),
        tuple(std),
        spec.data.flip == "queries",
        spec.data.color_jitter,
        spec.data.jitter_order,
        spec.data.crop_range,
        spec.model.frames,
        spec.data.frames_per_segment,
        run_recipe(spec).frame_rule,
    )
    data = EpisodeClips(sess.shards, sess.sampler, mine, view)
    loader = torch.utils.data.DataLoader(
        data,
        batch_size=None,
        shuffle=False,
        num_workers=spec.train.workers,
        persistent_workers=False,
    )
    return iter(loader)


def new_window() -> dict:
    return {"loss": 0.0, "correct": 0.0, "n": 0, "queries": 0, "t0": time.perf_counter()}


def step(sess: Session, items, w: recipe.UpdateWindow, window: dict, on_episode=None) -> float:
    """One optimiser update over the episodes of window ``w``; returns its lr.

    Each episode's loss (Eq. 5 CE + ``aux_weight`` x auxiliary CE) is scaled by the window's
    loss scale (official: 1/2 summed, their 2-GPU run; distinct: 1/count, a mean); a non-finite
    loss is handled by ``train.nan_policy`` (:class:`d2st.recipe.NanGuard`).
    """
    spec, ddp, device, model, opt = sess.spec, sess.ddp, sess.device, sess.model, sess.opt
    t = spec.train
    lr = recipe.update_lr(w, recipe.Schedule.from_train(t), t.lr_timing)
    if opt is not None:
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad(set_to_none=True)
    guard = recipe.NanGuard(t.nan_policy, w.count)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=t.amp == "bf16")
    for pos, g in enumerate(w.episodes):
        if g % ddp.world != ddp.rank:
            continue
        batch = next(items)
        assert batch["index"] == g, (batch["index"], g)
        if on_episode is not None:
            on_episode(g)
        torch.manual_seed(sess.sampler.stream_seed(g, DROPOUT))
        with autocast:
            logits, aux = model(
                batch["support"].to(device),
                batch["support_labels"].to(device),
                batch["query"].to(device),
                classes=batch["classes"].to(device),  # used by D2ST-Adapter-MM only
            )
        q_labels = batch["query_labels"].to(device)
        loss = F.cross_entropy(logits.float(), q_labels)
        if aux is not None:
            loss = loss + spec.metric.aux_weight * F.cross_entropy(
                aux.float(), batch["global_labels"].to(device)
            )
        action = guard.see(pos, bool(torch.isfinite(loss)))
        if action != "backward":
            log.warning("episode %d: non-finite loss %s (%s)", g, float(loss.detach()), action)
            if action == "wipe" and opt is not None:
                opt.zero_grad(set_to_none=True)
            continue
        if opt is not None and loss.requires_grad:
            scaled = loss / w.count if t.update_mode == "distinct" else loss * w.loss_scale
            scaled.backward()
        window["loss"] += float(loss.detach())
        window["correct"] += float((logits.argmax(-1) == q_labels).sum())
        window["n"] += 1
        window["queries"] += q_labels.numel()
    if opt is not None and guard.step:
        if ddp.world > 1:
            _all_reduce_grads(sess.trainable)
        opt.step()
    return lr


def log_window(sess: Session, done: int, lr: float, window: dict, bar=None) -> None:
    """Append one train_log.csv row (mean loss, query accuracy, lr, episodes/s) on rank 0."""
    stats = _window_stats(window, sess.ddp)
    if not sess.ddp.main or stats is None:
        return
    loss_mean, acc, rate = stats
    sess.rows.append(
        {
            "episode": done,
            "loss": f"{loss_mean:.6f}",
            "accuracy": f"{acc:.4f}",
            "lr": f"{lr:.6g}",
            "episodes_per_s": f"{rate:.3f}",
        }
    )
    _write_log(sess.log_path, sess.rows)
    if bar is not None:
        bar.set_postfix(loss=f"{loss_mean:.3f}", acc=f"{acc:.2f}")


def checkpoint(sess: Session, done: int) -> None:
    """Replace ``checkpoint.pt`` atomically (rank 0), then wait for every rank."""
    if sess.ddp.main:
        _save_checkpoint(sess.ckpt_path, sess.model, sess.opt, done, sess.update, sess.train_time)
    if sess.ddp.world > 1:
        dist.barrier()


def finish(sess: Session, done: int) -> None:
    """Write the trained state (``model.safetensors``) and the ``done`` marker (rank 0)."""
    if not sess.ddp.main:
        return
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in trainable_state(sess.model).items()}
    tmp = sess.out / "model.safetensors.tmp"
    with no_space(tmp, what="model.safetensors"):
        save_file(state, str(tmp))
    os.replace(tmp, sess.out / "model.safetensors")
    marker = {"episodes": done, "updates": sess.update, "train_time_s": sess.train_time}
    atomic_write_text(sess.out / "done", json.dumps(marker) + "\n")


# --------------------------------------------------------------------------- the loop


def train(
    spec: RunConfig,
    *,
    train_set=None,
    max_episodes: int | None = None,
    progress: bool = True,
    on_episode=None,
    cache_mb: float = CLIP_CACHE_MB,
    reuse_from=(),
) -> TrainResult:
    """Train (or resume) the run described by ``spec``, which is only read.

    Args:
        spec: the resolved run spec (:func:`d2st.config.resolve`).
        train_set: a ShardSet-like object; default opens ``spec.data.train_shards``.
        max_episodes: stop (after a checkpoint) once this many global episodes are done — a
            controlled interruption for tests; the run is resumable.
        progress: show a tqdm bar on rank 0.
        on_episode: optional callback ``f(global_index)`` for every episode this rank trains.
        cache_mb: decoded clips kept in memory per process (results do not depend on it).
        reuse_from: finished run folders; one whose spec equals ``spec`` but for ``run.name``
            is adopted instead of training (:func:`reuse_identical`).
    """
    adopted = reuse_identical(spec, reuse_from) if reuse_from and train_set is None else None
    if adopted is not None:
        return adopted
    sess = setup(spec, train_set, cache_mb)
    try:
        with oom_hint("training", sess.device):
            return _loop(sess, max_episodes, progress, on_episode)
    finally:
        if sess.lock is not None:
            sess.lock.release()


def _loop(sess: Session, max_episodes, progress, on_episode) -> TrainResult:
    """resume -> (step, log, checkpoint)* -> finish."""
    spec = sess.spec
    resume(sess)
    t = spec.train
    if sess.ddp.main:
        for line in recipe.describe(run_recipe(spec), recipe.decay_split(sess.model, t.decay_rule)):
            log.info("recipe: %s", line)
    total = t.episodes
    stop = total if max_episodes is None else min(total, max_episodes)
    windows = windows_from(sess)
    items = episode_stream(sess, windows)
    bar = None
    if progress and sess.ddp.main:
        from tqdm import tqdm

        bar = tqdm(
            total=total, initial=sess.start, desc=spec.run.name, unit="ep", dynamic_ncols=True
        )

    sess.model.train()
    window = new_window()
    done = sess.start
    ce = max(1, t.checkpoint_every)
    for w in windows:
        if done >= stop:
            break
        last = w is windows[-1]
        t_update = time.perf_counter()
        lr = step(sess, items, w, window, on_episode)
        done, sess.update = w.draw_end, w.index + 1
        sess.train_time += time.perf_counter() - t_update
        if bar is not None:
            bar.update(w.draw_end - w.draw_start)
        if done // t.log_every > w.draw_start // t.log_every or last:
            log_window(sess, done, lr, window, bar)
            window = new_window()
        if done // ce > w.draw_start // ce or last or done >= stop:
            checkpoint(sess, done)
    if bar is not None:
        bar.close()

    finished = not windows or sess.update == windows[-1].index + 1
    if finished:
        done = max(done, windows[-1].draw_end if windows else total)
        finish(sess, done)
    return TrainResult(sess.out, sess.model, done, finished)


def _save_checkpoint(path, model, opt, episode, update, train_time):
    save_checkpoint(
        {
            "episode": episode,
            "model": {k: v.detach().cpu().clone() for k, v in trainable_state(model).items()},
            "optimizer": opt.state_dict() if opt is not None else {},
            "update": update,
            "schedule": {"episode": episode},  # the lr is a pure function of the draw counter
            "rng": rng_state(),
            "train_time_s": train_time,
        },
        path,
    )


def _all_reduce_grads(params: list[torch.Tensor]) -> None:
    """Sum gradients over ranks (episode losses are pre-divided by the update's episode count)."""
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    offset = 0
    for p, g in zip(params, grads):
        n = g.numel()
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        p.grad.copy_(flat[offset : offset + n].view_as(p))
        offset += n


def _window_stats(window: dict, ddp: Dist):
    vals = torch.tensor(
        [window["loss"], window["correct"], window["n"], window["queries"]], dtype=torch.float64
    )
    if ddp.world > 1:
        dist.all_reduce(vals)
    loss, correct, n, queries = vals.tolist()
    if n == 0:
        return None
    rate = n / max(1e-9, time.perf_counter() - window["t0"])
    return loss / n, correct / max(1, queries), rate


def same_but_name(a: RunConfig, b: RunConfig) -> bool:
    """Whether two specs train the same model: equal in every field but ``run.name``.

    The name reaches no computation: the seed, the episodes, the initial weights and every
    hyper-parameter are other fields, so two such specs train to the same bytes on one machine
    (tests/test_train.py::test_a_run_identical_but_for_its_name_is_reused_not_retrained).
    """
    return dataclasses.replace(a, run=dataclasses.replace(a.run, name=b.run.name)) == b


def reuse_identical(spec: RunConfig, candidates) -> TrainResult | None:
    """Adopt a finished run whose spec equals ``spec`` but for its name, instead of training.

    The workflow's lr selection trains every candidate lr for the selection seed; the final run
    of that seed at the chosen lr is the same computation, so its folder receives the
    candidate's ``model.safetensors`` and ``train_log.csv`` and a ``done`` marker naming the
    source. Candidates that are unfinished or differ in any other field are ignored.
    """
    for cand in map(Path, candidates):
        if not ((cand / "done").is_file() and (cand / "config.yaml").is_file()):
            continue
        if not same_but_name(load_config(cand / "config.yaml"), spec):
            continue
        lock = claim_run_dir(spec)
        try:
            out = spec.dir
            (out / "checkpoint.pt").unlink(missing_ok=True)  # a partial run of this spec
            for name in ("model.safetensors", "train_log.csv"):
                tmp = out / f"{name}.tmp"
                with no_space(tmp, what=name):
                    shutil.copyfile(cand / name, tmp)
                os.replace(tmp, out / name)
            marker = json.loads((cand / "done").read_text())
            marker["reused_from"] = str(cand)
            atomic_write_text(out / "done", json.dumps(marker) + "\n")
        finally:
            lock.release()
        log.info("%s: spec identical to %s but for run.name: its trained weights reused", out, cand)
        _, model = load_run(out)
        return TrainResult(out, model, int(marker.get("episodes", spec.train.episodes)), True)
    return None


def main(
    config: str | None,
    overrides: list[str],
    max_episodes: int | None = None,
    cache_mb: float = CLIP_CACHE_MB,
    reuse_from=(),
) -> Path:
    """CLI body: resolve the spec, train, return the run directory."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from d2st.data.shards import count_classes

    spec = load_config(
        config, overrides, train_classes=lambda s: count_classes(s.data.train_shards)
    )
    result = train(spec, max_episodes=max_episodes, cache_mb=cache_mb, reuse_from=reuse_from)
    if dist.is_initialized():
        dist.destroy_process_group()
    return result.run_dir
