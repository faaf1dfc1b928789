"""GPU check (``d2st bench gpu``, ``make gpu-check``): the CUDA path, its memory and its speed.

One command, one CSV (``gpu.csv``, long format: one measured quantity per row, every row with its
baseline measured in the same run and their ratio; schema in docs/BENCHMARKS.md "GPU check"):

* ``correctness``: one forward of the D2ST encoder (random weights, eval mode) on the device vs
  the same weights on the CPU in fp32, same input; ``value`` = max |device - CPU|, ``baseline``
  = max |CPU|, ``ratio`` = their quotient, checked against :data:`TOLERANCE` (fp32 with TF32 off
  for this check; bf16 autocast).
* ``train``: 5-way 1-shot episodes with the official query count (``TrainCfg``: 1 query per
  class, 10 clips of T x S^2 per episode), one forward + cross-entropy of the Bi-MHM logits
  (Eq. 5) + backward + Adam step per episode, in the :data:`MODES` (fp32 with the math attention
  kernel, the baseline the authors' hand-written attention matches; bf16 autocast with PyTorch's
  fused attention; the same plus ``model.checkpointing``). ``episodes_per_s`` is the median over
  repeats of CUDA-synchronised timings after warm-up; ``peak_mem_mib`` is
  ``torch.cuda.max_memory_allocated`` (reset per row; weights, Adam state and activations).
* ``data``: episodes/s of the trainer's own episode loader (``EpisodeClips`` over a ``ShardSet``
  of JPEG shards in a ``torch.utils.data.DataLoader`` with N workers; pinned memory on CUDA) alone,
  and feeding the model step, vs the model step alone on a resident batch. The shards are tiny
  synthetic ones built in a temporary folder by the project's renderer and ``prepare`` (or, where
  no ffmpeg binary exists, the renderer's frames written by the shard writer directly).
* ``compile``: the ``bf16_sdpa`` step with every adapter ``torch.compile``d (CUDA plan only);
  kept as a switch only where ``ratio`` > 1.

Targets (:data:`TARGETS`) become the ``target``/``met``/``gap`` columns: ``gap`` > 0 is the
margin by which a target is met, < 0 how far it is missed, in the units of ``target``.

On a machine without CUDA the same code runs the ``smoke`` plan (tiny trunks at 32^2, few steps,
well under a minute) and writes the same schema with device ``cpu``; the test suite runs it.
"""

from __future__ import annotations

import copy
import csv
import gc
import math
import shutil
import statistics
import tempfile
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from d2st.bench.common import machine_info

COLUMNS = (
    "bench",
    "section",
    "backbone",
    "mode",
    "metric",
    "value",
    "unit",
    "baseline_mode",
    "baseline_value",
    "ratio",
    "target",
    "met",
    "gap",
    "device",
    "torch",
    "cuda",
    "plan",
    "frames",
    "size",
    "way",
    "shot",
    "query",
    "warmup",
    "repeats",
    "steps",
    "workers",
    "note",
    "cpu",
    "cores",
    "torch_threads",
)
SECTIONS = ("correctness", "train", "data", "compile")


@dataclass(frozen=True)
class Plan:
    """Sizes of one run of the check (a row of :data:`PLANS`)."""

    backbones: tuple[str, ...]  # D2ST encoders measured
    frames: int  # T per clip
    size: int  # S: frame side fed to the model (model.image_size, the crop)
    shard_size: int  # stored frame side of the JPEG shards (crop taken from it, as in training)
    correctness_clips: int  # clips in the correctness forward
    warmup: int  # untimed steps per row (cuDNN autotuning, allocator, Adam state, compilation)
    repeats: int  # timed repeats; the row is their median
    steps: int  # episodes per timed repeat
    workers: tuple[int, ...]  # loader-alone rows' DataLoader workers; the last feeds the model
    data_backbone: str  # the model the loader feeds in the data section
    loader_episodes: int  # timed episodes of each data row
    data_classes: int  # synthetic train classes in the shards
    videos_per_class: int
    compile: bool  # run the compile section


PLANS: dict[str, Plan] = {
    # One H100: about 3-4 minutes (estimate; the correctness and build steps on 16 CPU cores
    # included, compilation the longest single item), bounded by --time-budget.
    "full": Plan(
        backbones=("resnet50", "vit_b16"),
        frames=8,
        size=224,
        shard_size=256,
        correctness_clips=2,
        warmup=3,
        repeats=5,
        steps=2,
        workers=(0, 8),
        data_backbone="resnet50",  # the fastest step of the two: the hungriest consumer
        loader_episodes=32,
        data_classes=6,
        videos_per_class=3,
        compile=True,
    ),
    # CPU smoke: same code path, tiny sizes (the test suite runs it).
    "smoke": Plan(
        backbones=("resnet_tiny", "vit_tiny8"),
        frames=2,
        size=32,
        shard_size=40,
        correctness_clips=1,
        warmup=1,
        repeats=1,
        steps=1,
        workers=(0, 1),
        data_backbone="vit_tiny8",
        loader_episodes=2,
        data_classes=5,
        videos_per_class=2,
        compile=False,
    ),
}


@dataclass(frozen=True)
class Mode:
    """A training configuration measured by the ``train`` section (a row of :data:`MODES`)."""

    bf16: bool  # bf16 autocast (train.amp=bf16)
    math_attention: bool  # force SDPA's math kernel (the authors' hand-written attention)
    checkpointing: bool  # model.checkpointing
    compile: bool = False  # torch.compile every adapter


MODES: dict[str, Mode] = {
    "fp32_math": Mode(bf16=False, math_attention=True, checkpointing=False),
    "bf16_sdpa": Mode(bf16=True, math_attention=False, checkpointing=False),
    "bf16_sdpa_ckpt": Mode(bf16=True, math_attention=False, checkpointing=True),
}
BASELINE_MODE = "fp32_math"
COMPILE_MODE = ("bf16_sdpa_compile", Mode(True, False, False, compile=True))

# Correctness: max |device - CPU fp32| / max |CPU fp32| allowed per precision.
TOLERANCE = {"fp32": 1e-3, "bf16": 5e-2}
MIB = 2**20
GB_MIB = 6 * 1024  # "6 GB" read as 6 GiB, the unit nvidia-smi and the paper's memory figures use


@dataclass(frozen=True)
class Target:
    """A bound on a row's ``value`` or ``ratio``; ``backbone``/``mode`` "*" match any."""

    section: str
    backbone: str
    mode: str
    metric: str
    on: str  # "value" | "ratio"
    op: str  # "<=" | ">="
    bound: float


TARGETS: tuple[Target, ...] = (
    Target("correctness", "*", "fp32", "max_abs_diff", "ratio", "<=", TOLERANCE["fp32"]),
    Target("correctness", "*", "bf16", "max_abs_diff", "ratio", "<=", TOLERANCE["bf16"]),
    # D2ST 5-way 1-shot training at 8 x 224^2: memory with bf16 + checkpointing, speed of bf16
    # without checkpointing against the fp32-math baseline.
    Target("train", "vit_b16", "bf16_sdpa_ckpt", "peak_mem_mib", "value", "<=", GB_MIB),
    Target("train", "vit_b16", "bf16_sdpa", "episodes_per_s", "ratio", ">=", 2.5),
    Target("train", "resnet50", "bf16_sdpa_ckpt", "peak_mem_mib", "value", "<=", GB_MIB),
    Target("train", "resnet50", "bf16_sdpa", "episodes_per_s", "ratio", ">=", 2.0),
    # The loader must not starve the model: alone it outruns the step, and feeding it costs
    # under 10% of the step-alone rate.
    Target("data", "*", "loader_w*", "episodes_per_s", "ratio", ">=", 1.0),
    Target("data", "*", "loader+model", "episodes_per_s", "ratio", ">=", 0.9),
    Target("compile", "*", "*", "episodes_per_s", "ratio", ">=", 1.0),
)


def _matches(pattern: str, name: str) -> bool:
    return pattern == "*" or pattern == name or (pattern.endswith("*") and name.startswith(pattern[:-1]))  # fmt: skip


def find_target(section: str, backbone: str, mode: str, metric: str) -> Target | None:
    """The first :data:`TARGETS` row for a measurement, or None."""
    for t in TARGETS:
        if t.section == section and t.metric == metric and _matches(t.backbone, backbone):
            if _matches(t.mode, mode):
                return t
    return None


def judge(target: Target | None, value: float, ratio: float) -> tuple[str, str, float]:
    """(target text, "yes"/"no"/"" met, gap) for a row; gap > 0 is the margin, < 0 the shortfall."""
    if target is None:
        return "", "", math.nan
    x = value if target.on == "value" else ratio
    text = f"{target.on} {target.op} {target.bound:g}"
    if x is None or not math.isfinite(x):
        return text, "", math.nan
    gap = target.bound - x if target.op == "<=" else x - target.bound
    return text, "yes" if gap >= 0 else "no", gap


# --------------------------------------------------------------------------- output


class Table:
    """Rows of ``gpu.csv``, rewritten after every row so a run cut short keeps what it measured."""

    def __init__(self, path: Path, common: dict):
        self.path, self.common, self.rows = path, common, []

    def add(self, section, backbone, mode, metric, value, unit, baseline_mode="",
            baseline_value=math.nan, note="", **extra) -> dict:  # fmt: skip
        value = float(value)
        baseline_value = float(baseline_value)
        ratio = value / baseline_value if baseline_value and math.isfinite(baseline_value) else math.nan  # fmt: skip
        text, met, gap = judge(find_target(section, backbone, mode, metric), value, ratio)
        row = {**self.common, **extra, "bench": "gpu", "section": section, "backbone": backbone,
               "mode": mode, "metric": metric, "value": value, "unit": unit,
               "baseline_mode": baseline_mode, "baseline_value": baseline_value, "ratio": ratio,
               "target": text, "met": met, "gap": gap, "note": note}  # fmt: skip
        self.rows.append(row)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
            w.writeheader()
            w.writerows({k: _fmt(r.get(k, "")) for k in COLUMNS} for r in self.rows)
        tmp.replace(self.path)
        shown = f"{value:.4g} {unit}" + (f" (x{ratio:.3g} vs {baseline_mode})" if baseline_mode else "")  # fmt: skip
        print(f"[gpu] {section} {backbone} {mode} {metric}: {shown} {met and 'target ' + met}".rstrip(), flush=True)  # fmt: skip
        return row


def _fmt(v):
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    return v


# --------------------------------------------------------------------------- building blocks


def build_fewshot(backbone: str, plan: Plan, checkpointing: bool = False):
    """The D2ST few-shot model the trainer builds (random trunk, Bi-MHM metric), seeded."""
    from d2st.config import MetricCfg
    from d2st.models.config import ModelCfg, build_encoder
    from d2st.models.fewshot import FewShotModel
    from d2st.models.metrics import build_metric

    torch.manual_seed(0)
    cfg = ModelCfg(backbone=backbone, frames=plan.frames, image_size=plan.size,
                   checkpointing=checkpointing)  # fmt: skip
    encoder = build_encoder(cfg)
    m = MetricCfg()
    metric = build_metric(m.name, dim=encoder.feature_dim, frames=encoder.frames,
                          otam_lambda=m.otam_lambda, trx_cardinalities=m.trx_cardinalities,
                          trx_dim=m.trx_dim)  # fmt: skip
    return FewShotModel(encoder, metric)


def episode_shape() -> tuple[int, int, int]:
    """(way, shot, query per class) of a training episode: the config defaults (official)."""
    from d2st.config import TrainCfg

    t = TrainCfg()
    return t.way, t.shot, t.query


def random_episode(plan: Plan, device: torch.device, seed: int = 0) -> dict[str, torch.Tensor]:
    """A normalised random episode on ``device``: support (W*K, T, 3, S, S), query (W*Q, ...)."""
    way, shot, query = episode_shape()
    g = torch.Generator().manual_seed(seed)
    clip = (plan.frames, 3, plan.size, plan.size)
    return {
        "support": torch.randn(way * shot, *clip, generator=g).to(device),
        "support_labels": torch.arange(way).repeat_interleave(shot).to(device),
        "query": torch.randn(way * query, *clip, generator=g).to(device),
        "query_labels": torch.arange(way).repeat_interleave(query).to(device),
    }


def attention_kernel(math_only: bool):
    """SDPA restricted to the math kernel (what a hand-written softmax(QK^T)V computes), or any."""
    if not math_only:
        return nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel(SDPBackend.MATH)


@contextmanager
def strict_fp32(device: torch.device):
    """TF32 off for matmuls and cuDNN convolutions (restored after): fp32 means fp32."""
    if device.type != "cuda":
        yield
        return
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
            yield
    finally:
        torch.set_float32_matmul_precision(before)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def free_memory(device: torch.device) -> None:
    """Return the CUDA caching allocator's blocks (after collecting reference cycles)."""
    if device.type == "cuda":
        gc.collect()
        torch.cuda.empty_cache()


def train_step(model, opt, batch: dict, mode: Mode, device: torch.device) -> float:
    """One episode: forward (autocast per ``mode``), CE over the W classes, backward, Adam step."""
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=mode.bf16)
    with attention_kernel(mode.math_attention):  # the backward (and recomputation) too
        with autocast:
            logits, _ = model(batch["support"], batch["support_labels"], batch["query"])
        loss = F.cross_entropy(logits.float(), batch["query_labels"])
        loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return float(loss.detach())


def timed(step, plan: Plan, device: torch.device) -> tuple[float, list[float], float]:
    """Median episodes/s of ``plan.repeats`` x ``plan.steps`` synchronised steps after warm-up.

    Returns:
        (episodes/s, seconds per episode of each repeat, seconds of the first warm-up step).
    """
    first = math.nan
    for i in range(max(1, plan.warmup)):
        t0 = time.perf_counter()
        step()
        synchronize(device)
        if i == 0:
            first = time.perf_counter() - t0
    per_episode = []
    for _ in range(plan.repeats):
        t0 = time.perf_counter()
        for _ in range(plan.steps):
            step()
        synchronize(device)
        per_episode.append((time.perf_counter() - t0) / plan.steps)
    return 1.0 / statistics.median(per_episode), per_episode, first


def _optimizer(model):
    return torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)


def _is_oom(e: BaseException) -> bool:
    return isinstance(e, torch.cuda.OutOfMemoryError)


# --------------------------------------------------------------------------- sections


def correctness(table: Table, plan: Plan, device: torch.device) -> None:
    """Encoder forward on ``device`` (fp32, bf16) vs the CPU fp32 forward of the same weights."""
    from d2st.models.config import ModelCfg, build_encoder

    for backbone in plan.backbones:
        torch.manual_seed(0)
        enc = build_encoder(ModelCfg(backbone=backbone, frames=plan.frames, image_size=plan.size))
        enc.eval()
        g = torch.Generator().manual_seed(1)
        x = torch.randn(plan.correctness_clips, plan.frames, 3, plan.size, plan.size, generator=g)
        with torch.no_grad():
            ref = enc(x).float()  # (B, T, C) CPU fp32 reference
        on_device = copy.deepcopy(enc).to(device)
        scale = float(ref.abs().max())
        for precision in ("fp32", "bf16"):
            ctx = strict_fp32(device) if precision == "fp32" else nullcontext()
            autocast = torch.autocast(device.type, torch.bfloat16, enabled=precision == "bf16")
            with torch.no_grad(), ctx, autocast:
                y = on_device(x.to(device)).float().cpu()
            diff = float((y - ref).abs().max())
            tf32 = precision == "fp32" and device.type == "cuda"
            note = "max|device-cpu| / max|cpu|" + ("; TF32 off" if tf32 else "")
            table.add("correctness", backbone, precision, "max_abs_diff", diff, "abs",
                      "cpu_fp32", scale, note=note)  # fmt: skip
        del on_device, enc
        free_memory(device)


def measure_train(backbone: str, mode: Mode, plan: Plan, device: torch.device) -> dict:
    """Episodes/s and peak memory of one (backbone, mode); NaNs and a note on out-of-memory."""
    model = opt = None
    try:
        model = build_fewshot(backbone, plan, mode.checkpointing).to(device).train()
        if mode.compile:
            for adapter in model.encoder.adapters.values():
                adapter.compile()  # in place: the ViT hooks call the module, so they see it too
        opt = _optimizer(model)
        batch = random_episode(plan, device)
        free_memory(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        step = lambda: train_step(model, opt, batch, mode, device)  # noqa: E731
        eps, times, first_s = timed(step, plan, device)
        peak = torch.cuda.max_memory_allocated(device) / MIB if device.type == "cuda" else math.nan
        spread = f"per-episode s min {min(times):.4g} max {max(times):.4g}; first step {first_s:.3g} s"  # fmt: skip
        return {"eps": eps, "peak": peak, "note": spread}
    except Exception as e:  # noqa: BLE001 (recorded in the row; the check goes on)
        if not _is_oom(e) and device.type != "cuda":
            raise
        kind = "out of memory" if _is_oom(e) else f"{type(e).__name__}: {str(e)[:200]}"
        return {"eps": math.nan, "peak": math.nan, "note": kind}
    finally:
        model = opt = None  # drop the references before freeing the cache
        free_memory(device)


def train_section(table: Table, plan: Plan, device: torch.device, deadline: float) -> dict:
    """Every (backbone, mode) of :data:`MODES`; returns {(backbone, mode): measurement}."""
    way, shot, query = episode_shape()
    results = {}
    for backbone in plan.backbones:
        for name, mode in MODES.items():
            if time.perf_counter() > deadline:
                r = {"eps": math.nan, "peak": math.nan, "note": "skipped: time budget"}
            else:
                r = measure_train(backbone, mode, plan, device)
            results[backbone, name] = r
            base = results[backbone, BASELINE_MODE]
            note = f"{way}-way {shot}-shot {query}-query; {r['note']}"
            table.add("train", backbone, name, "episodes_per_s", r["eps"], "episodes/s",
                      BASELINE_MODE, base["eps"], note=note)  # fmt: skip
            table.add("train", backbone, name, "peak_mem_mib", r["peak"], "MiB",
                      BASELINE_MODE, base["peak"], note="torch.cuda.max_memory_allocated"
                      if device.type == "cuda" else "n/a on cpu")  # fmt: skip
    return results


def compile_section(table: Table, plan: Plan, device: torch.device, deadline: float,
                    train_results: dict) -> None:  # fmt: skip
    name, mode = COMPILE_MODE
    for backbone in plan.backbones:
        if time.perf_counter() > deadline:
            r = {"eps": math.nan, "note": "skipped: time budget"}
        else:
            r = measure_train(backbone, mode, plan, device)
        base = train_results.get((backbone, "bf16_sdpa"), {}).get("eps", math.nan)
        table.add("compile", backbone, name, "episodes_per_s", r["eps"], "episodes/s",
                  "bf16_sdpa", base, note=f"torch.compile of every adapter; {r['note']}")  # fmt: skip


def has_ffmpeg() -> bool:
    try:
        import ffmpeg  # noqa: F401 (ffmpeg-python, used by the encoder and prepare)
    except ImportError:
        return False
    return bool(shutil.which("ffmpeg") and shutil.which("ffprobe"))


def make_jpeg_shards(folder: Path, plan: Plan) -> tuple[Path, str]:
    """Tiny JPEG shards of synthetic train-class videos; returns (shard folder, how it was made).

    With ffmpeg: the renderer's clips are encoded to mp4 and go through ``prepare`` (decode,
    resize to ``plan.shard_size``, JPEG) like real videos. Without (a bare GPU image): the
    rendered frames go straight into a JPEG shard through the same shard writer.
    """
    from d2st.data.synthetic import classes_in, render_video

    classes = [c.name for c in classes_in("train")][: plan.data_classes]
    out = Path(folder) / "shards"
    if has_ffmpeg():
        from d2st.data.shards import prepare
        from d2st.data.synthetic import encode_video

        videos = Path(folder) / "videos"
        for c in classes:
            (videos / c).mkdir(parents=True, exist_ok=True)
            for i in range(plan.videos_per_class):
                frames, _ = render_video(c, 0, i, plan.shard_size, plan.frames)  # (T, H, W, 3)
                encode_video(frames, videos / c / f"{c}-{i:03d}.mp4")
        prepare(None, videos, out, frames=plan.frames, size=plan.shard_size, fmt="jpeg",
                progress=False)  # fmt: skip
        return out, "synthetic mp4 -> d2st prepare (jpeg)"
    from d2st import __version__
    from d2st.data.shards import _expected_attrs, _ShardWriter, encode_jpeg

    out.mkdir(parents=True, exist_ok=True)
    attrs = {**_expected_attrs(plan.frames, plan.shard_size, "jpeg", 90), "d2st_version": __version__}  # fmt: skip
    n = len(classes) * plan.videos_per_class
    writer = _ShardWriter(out, 0, n, plan.frames, plan.shard_size, "jpeg", attrs)
    for label, c in enumerate(classes):
        for i in range(plan.videos_per_class):
            frames, _ = render_video(c, 0, i, plan.shard_size, plan.frames)
            writer.add(f"{c}-{i:03d}", label, list(range(plan.frames)), encode_jpeg(frames))
    writer.commit([])
    return out, "synthetic frames -> JPEG shard writer (no ffmpeg here)"


def _loader(shards, plan: Plan, workers: int, episodes: int, mean, std, device: torch.device):
    from d2st import train as trainer
    from d2st.data.episodes import EpisodeSampler

    way, shot, query = episode_shape()
    sampler = EpisodeSampler(shards.labels, way, shot, query, seed=0)
    idx = range(episodes)
    view = trainer.View(crop=plan.size, mean=tuple(mean), std=tuple(std), flip=True,
                        jitter=True, frames=plan.frames)  # fmt: skip
    data = trainer.EpisodeClips(shards, sampler, idx, view)
    return torch.utils.data.DataLoader(data, batch_size=None, shuffle=False, num_workers=workers,
                                       pin_memory=device.type == "cuda")  # fmt: skip


def _to(batch: dict, device: torch.device) -> dict:
    keys = ("support", "support_labels", "query", "query_labels")
    return {k: batch[k].to(device, non_blocking=True) for k in keys}


def data_section(table: Table, plan: Plan, device: torch.device, deadline: float) -> None:
    """Loader alone (each worker count) and loader + model vs the model step alone."""
    from d2st.data.shards import ShardSet

    backbone, name = plan.data_backbone, "bf16_sdpa"
    mode = MODES[name]
    if time.perf_counter() > deadline:
        table.add("data", backbone, "model_step", "episodes_per_s", math.nan, "episodes/s",
                  note="skipped: time budget")  # fmt: skip
        return
    with tempfile.TemporaryDirectory(prefix="d2st-gpu-check-") as tmp:
        root, how = make_jpeg_shards(Path(tmp), plan)
        shards = ShardSet(root)
        model = build_fewshot(backbone, plan).to(device).train()
        opt = _optimizer(model)
        mean, std = model.encoder.mean, model.encoder.std
        resident = _to(next(iter(_loader(shards, plan, 0, 1, mean, std, device))), device)
        step_eps = timed(lambda: train_step(model, opt, resident, mode, device), plan, device)[0]
        layout = "contiguous" if resident["support"].is_contiguous() else "support strides " + str(resident["support"].stride())  # fmt: skip
        note = f"{backbone} {name} on one resident loader batch ({layout}); shards: {how}, {plan.shard_size}px"  # fmt: skip
        table.add("data", backbone, "model_step", "episodes_per_s", step_eps, "episodes/s",
                  "model_step", step_eps, note=note)  # fmt: skip
        dense = {k: v.contiguous() for k, v in resident.items()}
        dense_eps = timed(lambda: train_step(model, opt, dense, mode, device), plan, device)[0]
        table.add("data", backbone, "model_step_contiguous", "episodes_per_s", dense_eps,
                  "episodes/s", "model_step", step_eps,
                  note="the same batch made contiguous: the cost of the loader's memory layout")  # fmt: skip
        n = plan.loader_episodes
        for workers in plan.workers:
            skip = max(1, workers)  # worker start-up and the first prefetches
            it = iter(_loader(shards, plan, workers, skip + n, mean, std, device))
            for _ in range(skip):
                next(it)
            t0 = time.perf_counter()
            for _ in range(n):
                _to(next(it), device)
            synchronize(device)
            eps = n / (time.perf_counter() - t0)
            table.add("data", backbone, f"loader_w{workers}", "episodes_per_s", eps, "episodes/s",
                      "model_step", step_eps, workers=workers,
                      note=f"EpisodeClips + DataLoader({workers} workers) -> device, no model")  # fmt: skip
            del it
        workers = plan.workers[-1]
        skip = max(1, workers)
        it = iter(_loader(shards, plan, workers, skip + n, mean, std, device))
        for _ in range(skip):
            train_step(model, opt, _to(next(it), device), mode, device)
        synchronize(device)
        t0 = time.perf_counter()
        for _ in range(n):
            train_step(model, opt, _to(next(it), device), mode, device)
        synchronize(device)
        eps = n / (time.perf_counter() - t0)
        table.add("data", backbone, "loader+model", "episodes_per_s", eps, "episodes/s",
                  "model_step", step_eps, workers=workers,
                  note=f"the training loop fed by DataLoader({workers} workers)")  # fmt: skip
        it = model = opt = None
        shards.close()
    free_memory(device)


# --------------------------------------------------------------------------- entry point


def resolve(device: str, plan: str | None) -> tuple[torch.device, str]:
    """(device, plan name): ``auto`` picks CUDA when present; the plan defaults to the device's."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: torch sees no CUDA device")
    return dev, plan or ("full" if dev.type == "cuda" else "smoke")


def run(
    out_dir: Path,
    quick: bool = False,
    *,
    device: str = "auto",
    plan: str | None = None,
    sections: tuple[str, ...] = SECTIONS,
    workers: int | None = None,
    warmup: int | None = None,
    repeats: int | None = None,
    steps: int | None = None,
    time_budget: float = 360.0,
) -> Path:
    """Run the check and write ``out_dir/gpu.csv``; returns its path.

    Args:
        out_dir: output folder.
        quick: the smoke plan whatever the device.
        device: ``auto`` (CUDA if present), ``cuda``, ``cuda:N`` or ``cpu``.
        plan: a :data:`PLANS` key; default ``full`` on CUDA, ``smoke`` otherwise.
        sections: subset of :data:`SECTIONS` to run, in that order.
        workers: DataLoader workers feeding the model (default: the plan's last).
        warmup, repeats, steps: override the plan's.
        time_budget: seconds after which remaining measurements are recorded as skipped.
    """
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        raise ValueError(f"--sections: unknown {unknown}; allowed: {list(SECTIONS)}")
    dev, plan_name = resolve(device, "smoke" if quick else plan)
    if plan_name not in PLANS:
        raise ValueError(f"--plan: unknown {plan_name!r}; allowed: {list(PLANS)}")
    p = PLANS[plan_name]
    over = {k: v for k, v in (("warmup", warmup), ("repeats", repeats), ("steps", steps)) if v is not None}  # fmt: skip
    if workers is not None:
        over["workers"] = tuple(sorted({0, workers}))
    p = replace(p, **over)
    if dev.type == "cuda":
        from d2st.device import describe_device

        print(f"[gpu] {describe_device(dev, 'bf16')}", flush=True)
    way, shot, query = episode_shape()
    common = {**machine_info(str(dev)), "cuda": torch.version.cuda or "", "plan": plan_name,
              "frames": p.frames, "size": p.size, "way": way, "shot": shot, "query": query,
              "warmup": p.warmup, "repeats": p.repeats, "steps": p.steps, "workers": ""}  # fmt: skip
    if dev.type == "cuda":
        common["device"] = torch.cuda.get_device_name(dev)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = Table(out / "gpu.csv", common)
    start = time.perf_counter()
    deadline = start + time_budget
    train_results: dict = {}
    if "correctness" in sections:
        correctness(table, p, dev)
    if "train" in sections:
        train_results = train_section(table, p, dev, deadline)
    if "data" in sections:
        data_section(table, p, dev, deadline)
    if "compile" in sections and p.compile:
        compile_section(table, p, dev, deadline, train_results)
    print(f"[gpu] {len(table.rows)} rows in {time.perf_counter() - start:.1f} s -> {table.path}")
    return table.path
