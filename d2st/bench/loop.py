"""The demo's cost per piece: process start-up and the training episode loop (``loop.csv``).

Measured side by side in one run on the demo's own data (``make demo`` first): the synthetic
train shards and the seed-0 trunk. Two pieces, found by profiling the demo's jobs:

- ``startup``: wall seconds to start a job's interpreter and import what it needs, median of
  ``repeats`` fresh processes: ``d2st resolve`` (the config side, torch-free), ``torch`` alone,
  and the engines (``d2st.train`` + ``d2st.evaluate`` + timm, what a run's job imports).
- ``episode``: milliseconds per training episode of the demo's runs (st, d2st_s, d2st at 32 px,
  5-way 1-shot), decoding every clip from its JPEG shard (``--cache-mb 0``) vs keeping decoded
  clips in memory (the default); ``identical`` says whether the two trained the same bytes.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from d2st.bench.common import machine_info, say, timer

SHARDS = Path("data/shards/synthetic/train/8f_32px")
TRUNK = Path("data/pretrained/synthetic/resnet_tiny_s0.safetensors")
IMPORTS = {
    "resolve (config side)": "import d2st.config, d2st.plan, d2st.data.shards",
    "torch": "import torch",
    "engines (train + evaluate + timm)": "import d2st.train, d2st.evaluate, timm",
}


def _startup(repeats: int) -> list[dict]:
    rows = []
    for what, code in IMPORTS.items():
        times = []
        for _ in range(repeats):
            with timer() as t:
                subprocess.run([sys.executable, "-c", code], check=True)
            times.append(t())
        rows.append({"bench": "startup", "what": what, "seconds": statistics.median(times),
                     "repeats": repeats})  # fmt: skip
    return rows


def _train_ms(adapter: str, episodes: int, cache_mb: float, out: Path) -> tuple[float, bytes]:
    from d2st.config import load_config
    from d2st.train import train

    spec = load_config(None, [
        f"run.name={adapter}_{int(cache_mb)}", f"run.out_dir={out}", f"model.adapter={adapter}",
        "model.backbone=resnet_tiny", f"model.weights={TRUNK}", "model.image_size=32",
        f"data.train_shards={SHARDS}", "data.flip=none", "data.color_jitter=false",
        "train.way=5", "train.shot=1", "train.query=1", f"train.episodes={episodes}",
        "train.update_mode=distinct", "train.accumulate=1", "train.threads=1",
        "train.checkpoint_every=100000", "train.warmup_episodes=0", "metric.name=bimhm",
    ])  # fmt: skip
    t0 = time.perf_counter()
    res = train(spec, progress=False, cache_mb=cache_mb)
    ms = (time.perf_counter() - t0) / episodes * 1000
    return ms, (res.run_dir / "model.safetensors").read_bytes()


def run(out_dir: Path, quick: bool) -> Path:
    if not (SHARDS / "manifest.csv").is_file() or not TRUNK.is_file():
        raise SystemExit(f"bench loop: needs {SHARDS} and {TRUNK}; run `make demo` first")
    repeats, episodes = (2, 20) if quick else (5, 150)
    rows = _startup(repeats)
    for adapter in ("st", "d2st_s", "d2st"):
        say(f"{adapter}: {episodes} episodes, cache off and on", "loop")
        with tempfile.TemporaryDirectory() as tmp:
            off, w_off = _train_ms(adapter, episodes, 0, Path(tmp))
            on, w_on = _train_ms(adapter, episodes, 256, Path(tmp))
        for cache, ms in (("off", off), ("on", on)):
            rows.append({"bench": "episode", "what": f"{adapter}, clip cache {cache}",
                         "ms_per_episode": ms, "episodes": episodes,
                         "identical": w_off == w_on, "speed_vs_off": off / ms})  # fmt: skip
    df = pd.DataFrame(rows).assign(**machine_info("cpu"))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "loop.csv"
    df.to_csv(path, index=False)
    return path
