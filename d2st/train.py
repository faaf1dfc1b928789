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
import json
import logging
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from d2st.config import RunConfig
from d2st.data.episodes import EpisodeSampler
from d2st.data.transforms import NORMALIZE, train_transform
from d2st.models.fewshot import FewShotModel, load_trainable_state, trainable_state
from d2st.models.metrics import build_metric
from d2st.naming import run_name

log = logging.getLogger("d2st.train")

AUGMENT, DROPOUT = 1, 2  # stream ids for EpisodeSampler.stream_seed
LOG_COLUMNS = ("episode", "loss", "accuracy", "lr", "episodes_per_s")
NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


# --------------------------------------------------------------------------- building blocks


def lr_at(episode: int, t) -> float:
    """Learning rate for an update starting at global ``episode`` (``t``: a TrainCfg)."""

    def scheduled(e: int) -> float:
        frac = e / max(1, t.episodes)
        k = max([i for i, m in enumerate(t.lr_milestones) if m <= frac] or [0])
        return t.lr * t.lr_factors[k]

    if episode < t.warmup_episodes:
        end = scheduled(t.warmup_episodes)
        return t.warmup_start_lr + (end - t.warmup_start_lr) * episode / t.warmup_episodes
    return scheduled(episode)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Trainable parameters split into decayed and exempt (norm layers, names with bn/norm)."""
    exempt_ids = {
        id(p)
        for m in model.modules()
        if isinstance(m, NORM_TYPES)
        for p in m.parameters(recurse=False)
    }
    decay, exempt = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        is_norm = id(p) in exempt_ids or "bn" in name or "norm" in name
        (exempt if is_norm else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if exempt:
        groups.append({"params": exempt, "weight_decay": 0.0})
    return [g for g in groups if g["params"]]


def build_model(cfg: RunConfig, aux_classes: int = 0) -> FewShotModel:
    """Encoder + metric (+ aux head), seeded by ``run.seed`` so a random trunk is rebuilt exactly."""
    from d2st.models.config import build_encoder

    torch.manual_seed(cfg.run.seed)
    encoder = build_encoder(cfg.model)
    m = cfg.metric
    metric = build_metric(
        m.name,
        dim=encoder.feature_dim,
        frames=encoder.frames,
        otam_lambda=m.otam_lambda,
        trx_cardinalities=m.trx_cardinalities,
        trx_dim=m.trx_dim,
    )
    return FewShotModel(encoder, metric, aux_classes)


def mean_std(cfg: RunConfig, encoder: nn.Module):
    """Normalisation constants: the encoder's unless ``data.normalize`` names a table entry."""
    if cfg.data.normalize == "encoder":
        return tuple(encoder.mean), tuple(encoder.std)
    return NORMALIZE[cfg.data.normalize]


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def default_run_name(cfg: RunConfig) -> str:
    return run_name(
        cfg.model.adapter,
        cfg.model.backbone,
        cfg.metric.name,
        cfg.data.dataset,
        cfg.train.way,
        cfg.train.shot,
        cfg.data.frames,
        cfg.run.seed,
    )


def run_dir(cfg: RunConfig) -> Path:
    return Path(cfg.run.out_dir) / (cfg.run.name or default_run_name(cfg))


def open_shards(path):
    from d2st.data.shards import ShardSet

    if path is None:
        raise ValueError("data.train_shards: no shard folder given")
    return ShardSet(path)


class EpisodeClips(torch.utils.data.Dataset):
    """Augmented clips of the global episodes ``indices`` (one item = one episode).

    Args:
        shards: a ShardSet (``.get_many(idx)`` -> uint8 (n, T, H, W, 3)).
        sampler: the run's EpisodeSampler.
        indices: global episode indices in the order they are trained.
        crop, mean, std, flip, jitter: transform settings (flip/jitter apply to queries only).
    """

    def __init__(self, shards, sampler, indices, crop, mean, std, flip, jitter):
        self.shards, self.sampler, self.indices = shards, sampler, list(indices)
        self.crop, self.mean, self.std, self.flip, self.jitter = crop, mean, std, flip, jitter

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        g = self.indices[i]
        ep = self.sampler.episode(g)
        gen = torch.Generator().manual_seed(self.sampler.stream_seed(g, AUGMENT))
        support = torch.from_numpy(np.ascontiguousarray(self.shards.get_many(ep.support)))
        query = torch.from_numpy(np.ascontiguousarray(self.shards.get_many(ep.query)))
        s = train_transform(support, self.crop, self.mean, self.std, gen)
        q = train_transform(query, self.crop, self.mean, self.std, gen, self.flip, self.jitter)
        return {
            "index": g,
            "support": s,
            "query": q,
            "support_labels": torch.from_numpy(ep.support_labels),
            "query_labels": torch.from_numpy(ep.query_labels),
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


def atomic_torch_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _write_log(path: Path, rows: list[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=LOG_COLUMNS)
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)


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


# --------------------------------------------------------------------------- the loop


def train(
    cfg: RunConfig,
    *,
    train_set=None,
    max_episodes: int | None = None,
    progress: bool = True,
    on_episode=None,
) -> TrainResult:
    """Train (or resume) the run described by ``cfg``.

    Args:
        cfg: the run config.
        train_set: a ShardSet-like object; default opens ``cfg.data.train_shards``.
        max_episodes: stop (after a checkpoint) once this many global episodes are done — a
            controlled interruption for tests; the run is resumable.
        progress: show a tqdm bar on rank 0.
        on_episode: optional callback ``f(global_index)`` for every episode this rank trains.
    """
    t = cfg.train
    ddp = init_distributed(t.device)
    if t.accumulate % ddp.world:
        raise ValueError(
            f"train.accumulate: {t.accumulate} not divisible by world size {ddp.world}"
        )
    device = resolve_device(t.device, ddp.local_rank)
    shards = train_set if train_set is not None else open_shards(cfg.data.train_shards)
    labels = np.asarray(shards.labels)
    if cfg.metric.aux_weight > 0 and cfg.metric.aux_classes is None:
        cfg.metric.aux_classes = int(labels.max()) + 1
    aux_classes = cfg.metric.aux_classes if cfg.metric.aux_weight > 0 else 0
    if cfg.run.name is None:
        cfg.run.name = default_run_name(cfg)
    out = run_dir(cfg)

    model = build_model(cfg, aux_classes or 0).to(device)
    groups = param_groups(model, t.weight_decay)
    opt = torch.optim.Adam(groups, lr=t.warmup_start_lr, betas=(0.9, 0.999)) if groups else None
    trainable = [p for g in groups for p in g["params"]]
    sampler = EpisodeSampler(labels, t.way, t.shot, t.query, seed=cfg.run.seed)

    start, train_time, rows = 0, 0.0, []
    ckpt_path, log_path = out / "checkpoint.pt", out / "train_log.csv"
    if ddp.main:
        out.mkdir(parents=True, exist_ok=True)
        cfg_path = out / "config.yaml"
        if cfg_path.exists() and ckpt_path.exists():
            from d2st.config import load_config

            if load_config(cfg_path) != cfg:
                raise ValueError(
                    f"{out}: holds a run with a different config; pick another run.name"
                )
        cfg.save(cfg_path)
    if ddp.world > 1:
        dist.barrier()
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        load_trainable_state(model, ckpt["model"])
        if opt is not None:
            opt.load_state_dict(ckpt["optimizer"])
        set_rng_state(ckpt["rng"])
        start, train_time = int(ckpt["episode"]), float(ckpt["train_time_s"])
        rows = _read_log(log_path, start) if ddp.main else []
        log.info("resuming %s at episode %d", out, start)
    elif ddp.world > 1:
        with torch.no_grad():
            for p in trainable:
                dist.broadcast(p.data, 0)

    total, A = t.episodes, t.accumulate
    stop = total if max_episodes is None else min(total, max_episodes)
    mean, std = mean_std(cfg, model.encoder)
    mine = [g for g in range(start, total) if g % ddp.world == ddp.rank]
    data = EpisodeClips(
        shards,
        sampler,
        mine,
        cfg.data.crop,
        mean,
        std,
        cfg.data.flip == "queries",
        cfg.data.color_jitter,
    )
    loader = torch.utils.data.DataLoader(
        data, batch_size=None, shuffle=False, num_workers=t.workers, persistent_workers=False
    )
    items = iter(loader)
    bar = None
    if progress and ddp.main:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=start, desc=cfg.run.name, unit="ep", dynamic_ncols=True)

    model.train()
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=t.amp == "bf16")
    window = {"loss": 0.0, "correct": 0.0, "n": 0, "queries": 0, "t0": time.perf_counter()}
    done = start
    while done < stop:
        u_start, u_end = done, min(done + A, total)
        n_update = u_end - u_start
        lr = lr_at(u_start, t)
        if opt is not None:
            for g in opt.param_groups:
                g["lr"] = lr
            opt.zero_grad(set_to_none=True)
        t_update = time.perf_counter()
        for g in range(u_start, u_end):
            if g % ddp.world != ddp.rank:
                continue
            batch = next(items)
            assert batch["index"] == g, (batch["index"], g)
            if on_episode is not None:
                on_episode(g)
            torch.manual_seed(sampler.stream_seed(g, DROPOUT))
            with autocast:
                logits, aux = model(
                    batch["support"].to(device),
                    batch["support_labels"].to(device),
                    batch["query"].to(device),
                )
            q_labels = batch["query_labels"].to(device)
            loss = F.cross_entropy(logits.float(), q_labels)
            if aux is not None:
                loss = loss + cfg.metric.aux_weight * F.cross_entropy(
                    aux.float(), batch["global_labels"].to(device)
                )
            if not torch.isfinite(loss):
                log.warning("episode %d: non-finite loss %s, skipped", g, float(loss.detach()))
                continue
            if opt is not None and loss.requires_grad:
                (loss / n_update).backward()
            window["loss"] += float(loss.detach())
            window["correct"] += float((logits.argmax(-1) == q_labels).sum())
            window["n"] += 1
            window["queries"] += q_labels.numel()
        if opt is not None:
            if ddp.world > 1:
                _all_reduce_grads(trainable)
            opt.step()
        done = u_end
        train_time += time.perf_counter() - t_update
        if bar is not None:
            bar.update(n_update)
        if done // t.log_every > u_start // t.log_every or done == total:
            stats = _window_stats(window, ddp)
            if ddp.main and stats is not None:
                loss_mean, acc, rate = stats
                rows.append(
                    {
                        "episode": done,
                        "loss": f"{loss_mean:.6f}",
                        "accuracy": f"{acc:.4f}",
                        "lr": f"{lr:.6g}",
                        "episodes_per_s": f"{rate:.3f}",
                    }
                )
                _write_log(log_path, rows)
                if bar is not None:
                    bar.set_postfix(loss=f"{loss_mean:.3f}", acc=f"{acc:.2f}")
            window = {"loss": 0.0, "correct": 0.0, "n": 0, "queries": 0, "t0": time.perf_counter()}
        ce = max(1, t.checkpoint_every)
        if done // ce > u_start // ce or done == total or done >= stop:
            if ddp.main:
                _save_checkpoint(ckpt_path, model, opt, done, train_time)
            if ddp.world > 1:
                dist.barrier()
    if bar is not None:
        bar.close()

    finished = done >= total
    if finished and ddp.main:
        from safetensors.torch import save_file

        state = {k: v.detach().cpu().contiguous() for k, v in trainable_state(model).items()}
        tmp = out / "model.safetensors.tmp"
        save_file(state, str(tmp))
        os.replace(tmp, out / "model.safetensors")
        (out / "done").write_text(json.dumps({"episodes": done, "train_time_s": train_time}) + "\n")
    return TrainResult(out, model, done, finished)


def _save_checkpoint(path, model, opt, episode, train_time):
    atomic_torch_save(
        {
            "episode": episode,
            "model": {k: v.detach().cpu().clone() for k, v in trainable_state(model).items()},
            "optimizer": opt.state_dict() if opt is not None else {},
            "schedule": {"episode": episode},  # the lr is a pure function of the episode counter
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


def main(config: str | None, overrides: list[str], max_episodes: int | None = None) -> Path:
    """CLI body: load the config, train, return the run directory."""
    from d2st.config import load_config

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg = load_config(config, overrides)
    result = train(cfg, max_episodes=max_episodes)
    if dist.is_initialized():
        dist.destroy_process_group()
    return result.run_dir
