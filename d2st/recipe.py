"""The update recipe as pure functions: update windows, lr per update, decay groups, NaN policy.

Each place where the authors' training loop (``qizhongtan/D2ST-Adapter``,
``runs/train_net_few_shot.py``) differs from a plain "mean over 8 episodes" loop is a row of a
table here, with their behaviour as the default and ours as a named option (docs/TRAINING.md has
the table "their behaviour -> our option -> default").

Their loop, as measured: 2 GPUs (DDP), ``TRAIN.BATCH_SIZE = 2`` -> 1 episode per rank per
iteration, each iteration's loss divided by 2, ``optimizer.step()`` every 8 iterations
(``BATCH_SIZE_PER_TASK``), DDP averaging the gradient over the 2 ranks. Both ranks are seeded
identically, so rank 1 draws the same episodes as rank 0. Hence one step:

- consumes 16 episode draws of the schedule (2 ranks x 8 iterations; the lr schedule counts
  iterations per rank, i.e. draws / 2, against ``STEPS_ITER`` = draws-in-total / 20);
- trains on 8 distinct episodes;
- has gradient ``mean_ranks( sum_{k<8} grad(loss_k) / 2 ) = 4 x mean_{k<8} grad(loss_k)``, i.e.
  every episode loss is scaled by 1/2 and summed;
- uses the lr set at the window's last iteration (iteration 8u+7 of rank 0 = draw 16u+14).

N draws thus give ``N // 16`` steps (500 for HMDB51/ResNet-50, N = 8000); where 16 does not divide
N (ViT-HMDB51, ViT-K100: N = 3000) the last ``N mod 16 = 8`` draws are back-propagated but never
stepped.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from torch import nn

# --------------------------------------------------------------------------- update windows


@dataclass(frozen=True)
class UpdateMode:
    """How episode draws become optimiser updates.

    Attributes:
        draws_per_episode: schedule draws consumed per distinct episode trained (theirs: 2 ranks
            drawing identical episodes -> 2; ours: 1).
        loss_scale: factor on each episode loss before backward; ``None`` = 1 / (episodes in the
            update), a mean.
        draws_per_iteration: draws that advance the schedule per iteration of the loop (theirs:
            one episode on each of 2 ranks); the lr of an update's "last iteration" is the lr at
            ``draw_end - draws_per_iteration``.
        note: one line for the logs.
    """

    draws_per_episode: int
    loss_scale: float | None
    draws_per_iteration: int
    note: str


UPDATE_MODES: dict[str, UpdateMode] = {
    # 2 identical ranks x A iterations; loss / TRAIN.BATCH_SIZE (= 2) summed; DDP mean over ranks.
    "official": UpdateMode(2, 0.5, 2, "their 2-GPU run: identical ranks, loss/2 summed"),
    # A distinct episodes, mean loss; N / A updates (twice theirs).
    "distinct": UpdateMode(1, None, 1, "A distinct episodes per update, mean loss"),
}
LEFTOVER = ("drop", "partial")  # draws after the last full window: never stepped | a short update
LR_TIMING = ("last", "start")  # lr of the window's last iteration (theirs) | of its first draw


@dataclass(frozen=True)
class UpdateWindow:
    """One optimiser update.

    Attributes:
        index: update number u (0-based).
        first: first global episode id trained (ids are contiguous: ``first .. first+count-1``,
            so data parallel ranks can split them by ``id % world``).
        count: distinct episodes trained in this update.
        draw_start, draw_end: schedule counter (episode draws, both of their ranks counted)
            before and after the update.
        last_draw: the schedule position of the window's last iteration.
        loss_scale: multiply each episode loss by this before backward; the update's gradient is
            ``loss_scale * sum_k grad(loss_k)``.
    """

    index: int
    first: int
    count: int
    draw_start: int
    draw_end: int
    last_draw: int
    loss_scale: float

    @property
    def episodes(self) -> range:
        return range(self.first, self.first + self.count)


def _mode(mode: str) -> UpdateMode:
    if mode not in UPDATE_MODES:
        raise ValueError(f"train.update_mode: unknown {mode!r}; allowed: {list(UPDATE_MODES)}")
    return UPDATE_MODES[mode]


def num_updates(total_draws: int, episodes_per_update: int, mode: str, leftover: str) -> int:
    """Updates in a run of ``total_draws`` draws (HMDB51/ResNet-50 official: 8000 -> 500)."""
    m = _mode(mode)
    if leftover not in LEFTOVER:
        raise ValueError(f"train.leftover: unknown {leftover!r}; allowed: {list(LEFTOVER)}")
    if episodes_per_update < 1 or total_draws < 0:
        raise ValueError(
            f"train.accumulate: need >= 1 episodes per update and >= 0 draws, "
            f"got {episodes_per_update}, {total_draws}"
        )
    per = episodes_per_update * m.draws_per_episode
    full, rest = divmod(total_draws, per)
    return full + (1 if rest and leftover == "partial" else 0)


def update_window(
    u: int, total_draws: int, episodes_per_update: int, mode: str = "official", leftover="drop"
) -> UpdateWindow:
    """Update ``u`` of the run: a pure function of its index (so resume = uninterrupted).

    Official mode (A = 8): update u trains the distinct episode ids ``8u .. 8u+7`` (what rank 0
    drew; rank 1 drew the same), consumes draws ``16u .. 16u+15``, its last iteration is at draw
    ``16u + 14`` and each loss is scaled by 1/2. Distinct mode (ours): ids = draws
    ``8u .. 8u+7``, last iteration at draw ``8u + 7``, scale 1/8. A partial last window
    (``leftover="partial"``) has ``ceil(rest / draws_per_episode)`` episodes.

    Args:
        u: update index, ``0 <= u < num_updates(...)``.
        total_draws: episode draws of the whole run (``train.episodes``, theirs NUM_TRAIN_TASKS).
        episodes_per_update: A (``train.accumulate``; theirs BATCH_SIZE_PER_TASK = 8).
        mode: a key of :data:`UPDATE_MODES`.
        leftover: a value of :data:`LEFTOVER`.
    """
    m = _mode(mode)
    n = num_updates(total_draws, episodes_per_update, mode, leftover)
    if not 0 <= u < n:
        raise ValueError(f"update index {u} outside 0..{n - 1}")
    d, A = m.draws_per_episode, episodes_per_update
    draw_start = u * A * d
    draw_end = min(draw_start + A * d, total_draws)
    count = min(A, math.ceil((draw_end - draw_start) / d))
    scale = m.loss_scale if m.loss_scale is not None else 1.0 / count
    last = max(draw_start, draw_end - m.draws_per_iteration)
    return UpdateWindow(u, u * A, count, draw_start, draw_end, last, scale)


def update_windows(
    total_draws: int,
    episodes_per_update: int,
    mode: str = "official",
    leftover: str = "drop",
    start: int = 0,
) -> Iterator[UpdateWindow]:
    """All update windows from update ``start`` on (see :func:`update_window`)."""
    n = num_updates(total_draws, episodes_per_update, mode, leftover)
    for u in range(start, n):
        yield update_window(u, total_draws, episodes_per_update, mode, leftover)


def gradient_scale(mode: str, episodes_per_update: int) -> float:
    """The update's gradient over the mean episode gradient (official, A = 8: 4; distinct: 1)."""
    m = _mode(mode)
    return 1.0 if m.loss_scale is None else m.loss_scale * episodes_per_update


# --------------------------------------------------------------------------- lr per update


@dataclass(frozen=True)
class Schedule:
    """Learning rate as a function of the schedule counter (episode draws).

    Linear warm-up from ``warmup_start_lr`` at draw 0 to the scheduled lr at ``warmup_draws``,
    then ``lr * factors[k]`` from fraction ``milestones[k]`` of ``total_draws`` on. This is their
    ``steps_with_relative_lrs`` policy with "epoch" = iteration / STEPS_ITER = 10 x draws / N.
    """

    lr: float
    warmup_start_lr: float
    warmup_draws: int
    total_draws: int
    milestones: tuple[float, ...]
    factors: tuple[float, ...]

    @classmethod
    def from_train(cls, t) -> Schedule:
        """From a ``TrainCfg`` (lr, warmup_start_lr, warmup_episodes, episodes, lr_*)."""
        return cls(
            t.lr,
            t.warmup_start_lr,
            t.warmup_episodes,
            t.episodes,
            tuple(t.lr_milestones),
            tuple(t.lr_factors),
        )

    def scheduled(self, draw: int) -> float:
        frac = draw / max(1, self.total_draws)
        k = max([i for i, m in enumerate(self.milestones) if m <= frac] or [0])
        return self.lr * self.factors[k]

    def lr_at(self, draw: int) -> float:
        """The lr at schedule position ``draw`` (identical to the trainer's ``lr_at``)."""
        if draw < self.warmup_draws:
            end = self.scheduled(self.warmup_draws)
            return self.warmup_start_lr + (end - self.warmup_start_lr) * draw / self.warmup_draws
        return self.scheduled(draw)


def update_lr(window: UpdateWindow, schedule: Schedule, timing: str = "last") -> float:
    """The lr an update uses: at its last iteration (theirs) or at its first draw (ours).

    First HMDB51/ResNet-50 update, official: lr at draw 14 = 4e-4 + 1.6e-3 * 14/800 = 4.28e-4.
    """
    if timing == "last":
        return schedule.lr_at(window.last_draw)
    if timing == "start":
        return schedule.lr_at(window.draw_start)
    raise ValueError(f"train.lr_timing: unknown {timing!r}; allowed: {list(LR_TIMING)}")


def warmup_updates(windows: Sequence[UpdateWindow], schedule: Schedule, timing="last") -> int:
    """Updates whose lr comes from the warm-up ramp."""
    pos = (lambda w: w.last_draw) if timing == "last" else (lambda w: w.draw_start)
    return sum(1 for w in windows if pos(w) < schedule.warmup_draws)


# --------------------------------------------------------------------------- weight decay

DECAY_RULES = ("official", "all_norms")
NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


def _authors_module_names(model: nn.Module) -> dict[str, str]:
    """Our module path -> the authors' name for it, where the two differ in holding "bn"/"norm".

    Rows (authors' ``models/base/adapter.py``): a ViT adapter's pathway LayerNorms are plain
    ``nn.LayerNorm`` named ``s_ln``/``t_ln`` (ours ``pathways.{0,1}.norm``); the ResNet adapter's
    are ``LayerNormProxy`` with the LayerNorm at ``s_ln.norm`` (same verdict as ours, no row);
    aDSTA's offset-network LayerNorm is ``conv_offset.1.norm`` (ours ``offset.1``). All other
    names agree on it (``ln_post``, ``ln_1``, ``bn1``, ``downsample.1``, DST ``s_bn``, TRX
    ``norm_k``, ``class_embedding``, ``temporal_embedding``).
    """
    from d2st.models.adapters import Adapter, DeformablePathway
    from d2st.models.adsta import ADSTA

    out = {}
    for path, m in model.named_modules():
        if isinstance(m, Adapter) and m.tokens:
            for i, pw in enumerate(m.pathways):
                if isinstance(pw, DeformablePathway):
                    side = "t" if pw.kind == "adsta_t" else "s"
                    out[f"{path}.pathways.{i}.norm"] = f"{path}.{side}_ln"
        if isinstance(m, ADSTA) and isinstance(m.offset[1], NORM_TYPES):
            out[f"{path}.offset.1"] = f"{path}.conv_offset.1.norm"
    return out


def decay_split(model: nn.Module, rule: str = "official") -> tuple[list[str], list[str]]:
    """Names of the trainable parameters that get weight decay, and those exempt.

    Args:
        model: any module; frozen parameters (``requires_grad=False``) are left out.
        rule: ``official``: exempt iff the authors' name of the parameter contains "bn" or
            "norm" (their ``construct_optimizer``; on ViT-B/16 this decays ``ln_post`` and the
            adapters' pathway LayerNorms); ``all_norms``: exempt every parameter of a norm layer
            and every name containing "bn"/"norm" (ours before issue 13).
    """
    if rule not in DECAY_RULES:
        raise ValueError(f"train.decay_rule: unknown {rule!r}; allowed: {list(DECAY_RULES)}")
    decay, exempt = [], []
    if rule == "official":
        renamed = _authors_module_names(model)
        for name, p in model.named_parameters():
            if not p.requires_grad:
                continue
            mod, _, leaf = name.rpartition(".")
            theirs = f"{renamed.get(mod, mod)}.{leaf}"
            (exempt if re.search("bn|norm", theirs) else decay).append(name)
        return decay, exempt
    norm_ids = {
        id(p)
        for m in model.modules()
        if isinstance(m, NORM_TYPES)
        for p in m.parameters(recurse=False)
    }
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        is_norm = id(p) in norm_ids or "bn" in name or "norm" in name
        (exempt if is_norm else decay).append(name)
    return decay, exempt


def param_groups(model: nn.Module, weight_decay: float, rule: str = "official") -> list[dict]:
    """Adam parameter groups: decayed (``weight_decay``) then exempt (0.0), empty ones dropped.

    ``rule="all_norms"`` gives exactly the groups of the trainer before issue 13.
    """
    decay, exempt = decay_split(model, rule)
    params = dict(model.named_parameters())
    groups = [
        {"params": [params[n] for n in decay], "weight_decay": weight_decay},
        {"params": [params[n] for n in exempt], "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]


def equivalent_weight_decay(weight_decay: float, from_scale: float, to_scale: float) -> float:
    """Coupled-L2 coefficient giving the same Adam update under another gradient scale.

    Coupled L2 adds ``wd * theta`` to the gradient before Adam normalises it, so what matters is
    ``wd / gradient scale``: their 1e-3 on a 4x mean gradient (official mode) equals 2.5e-4 on a
    mean gradient (distinct mode), up to Adam's eps, which acts on a 4x larger gradient there.

    Args:
        weight_decay: the coefficient under ``from_scale``.
        from_scale, to_scale: gradient over the mean episode gradient (:func:`gradient_scale`).
    """
    return weight_decay * to_scale / from_scale


# --------------------------------------------------------------------------- non-finite losses

NAN_POLICIES = ("official", "skip")


@dataclass
class NanGuard:
    """Per-window book-keeping of non-finite episode losses; the loop asks it what to do.

    ``official``: their loop runs ``if isnan(loss): backward; zero_grad; continue``. The
    ``zero_grad`` wipes every gradient accumulated so far in the window, and ``continue`` jumps
    over the step check. So a non-finite loss at position k of the window discards positions
    ``0..k`` (episodes after it still accumulate and the step uses only them), and a
    non-finite loss at the window's last position means no step at all (Adam's state is
    untouched). Their test is ``isnan``; an infinite loss is treated the same here (it would
    poison the weights). ``skip`` (ours): only that episode is left out; the step happens.

    Usage per window: ``g = NanGuard(policy, count)``; for each position ``k`` in order:
    ``action = g.see(k, finite)``: ``"backward"`` -> backward ``loss * scale``; ``"skip"`` -> do
    nothing; ``"wipe"`` -> zero the accumulated gradients (``opt.zero_grad()``), no backward.
    After the window: step iff ``g.step``.
    """

    policy: str
    count: int
    last_bad: int = -1
    bad: tuple[int, ...] = ()

    def __post_init__(self):
        if self.policy not in NAN_POLICIES:
            raise ValueError(
                f"train.nan_policy: unknown {self.policy!r}; allowed: {list(NAN_POLICIES)}"
            )

    def see(self, position: int, finite: bool) -> str:
        if finite:
            return "backward"
        self.bad = (*self.bad, position)
        self.last_bad = max(self.last_bad, position)
        return "wipe" if self.policy == "official" else "skip"

    @property
    def step(self) -> bool:
        """Whether the optimiser steps after this window."""
        return self.policy == "skip" or self.last_bad != self.count - 1


def kept_positions(count: int, bad: Sequence[int], policy: str) -> list[int]:
    """Window positions whose gradients reach the update (the NanGuard contract, batch form)."""
    NanGuard(policy, count)  # validates the policy name
    bad = set(bad)
    if policy == "skip":
        return [k for k in range(count) if k not in bad]
    start = max(bad, default=-1) + 1
    return list(range(start, count))


# --------------------------------------------------------------------------- the logged recipe


@dataclass(frozen=True)
class Recipe:
    """The effective training recipe (plain values; the trainer fills it from its config).

    Attributes mirror the config fields: ``update_mode``/``accumulate``/``total_draws``/
    ``leftover``/``lr_timing`` (train), ``schedule``, ``weight_decay``/``decay_rule``,
    ``nan_policy``, ``jitter_order``/``crop_range`` (augmentation), ``frame_rule``/
    ``frames_per_segment``/``test_frame_choice`` (data and eval).
    """

    schedule: Schedule
    update_mode: str = "official"
    accumulate: int = 8
    leftover: str = "drop"
    lr_timing: str = "last"
    weight_decay: float = 1e-3
    decay_rule: str = "official"
    nan_policy: str = "official"
    jitter_order: str = "official"
    crop_range: str = "official"
    frame_rule: str = "uniform"
    frames_per_segment: int = 1
    test_frame_choice: str = "centre"

    @property
    def total_draws(self) -> int:
        return self.schedule.total_draws

    def windows(self) -> list[UpdateWindow]:
        return list(
            update_windows(self.total_draws, self.accumulate, self.update_mode, self.leftover)
        )


def describe(recipe: Recipe, decay: tuple[list[str], list[str]] | None = None) -> list[str]:
    """The lines ``d2st train`` logs at start.

    Args:
        recipe: the effective recipe.
        decay: optional :func:`decay_split` result, to log the group sizes and exempt names.
    """
    ws = recipe.windows()
    m = _mode(recipe.update_mode)
    A, N = recipe.accumulate, recipe.total_draws
    used = ws[-1].draw_end if ws else 0
    scale = gradient_scale(recipe.update_mode, A)
    lines = [
        f"update mode: {recipe.update_mode} ({m.note})",
        f"episodes per update: {A} distinct, {A * m.draws_per_episode} draws of the schedule",
        f"updates in total: {len(ws)} ({N} draws, {sum(w.count for w in ws)} distinct episodes; "
        f"{N - used} leftover draws {'dropped' if recipe.leftover == 'drop' else 'in a short update'})",
        f"warm-up updates: {warmup_updates(ws, recipe.schedule, recipe.lr_timing)} "
        f"({recipe.schedule.warmup_draws} draws)",
        f"lr of an update: at its {'last iteration' if recipe.lr_timing == 'last' else 'start'}"
        + (
            f" (first update {update_lr(ws[0], recipe.schedule, recipe.lr_timing):.4g})"
            if ws
            else ""
        ),
        f"gradient scale: {scale:g} x mean episode gradient (each loss x "
        f"{m.loss_scale if m.loss_scale is not None else f'1/{A}'})",
        f"weight decay: coupled L2 {recipe.weight_decay:g}, exemption rule {recipe.decay_rule}"
        + (
            f" (equals {equivalent_weight_decay(recipe.weight_decay, scale, 1.0):g} "
            "on a mean gradient)"
            if scale != 1.0
            else ""
        ),
    ]
    if decay is not None:
        d, e = decay
        lines.append(f"weight-decay groups: {len(d)} decayed, {len(e)} exempt: {_short(e)}")
    nan = {
        "official": "a non-finite loss wipes the window's gradient so far (no step if last)",
        "skip": "a non-finite loss skips that episode only",
    }[recipe.nan_policy]
    lines += [
        f"NaN policy: {recipe.nan_policy} ({nan})",
        f"augmentation: jitter order {recipe.jitter_order}, crop offsets {recipe.crop_range}",
        f"frames: rule {recipe.frame_rule}, {recipe.frames_per_segment} stored per segment",
        f"test-time sampling: {recipe.test_frame_choice}"
        + (" (one stored frame per segment: no choice)" if recipe.frames_per_segment == 1 else ""),
    ]
    return lines


def _short(names: Sequence[str], keep: int = 4) -> str:
    collapsed = sorted({re.sub(r"\.\d+\.", ".*.", n) for n in names})
    head = ", ".join(collapsed[:keep])
    return head + (f", ... ({len(collapsed)} patterns)" if len(collapsed) > keep else "") or "none"
