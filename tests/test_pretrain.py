"""Geometry pretraining: runs on a tiny benchmark, lowers its loss, saves a loadable trunk."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from d2st.data import synthetic as syn
from d2st.data.shards import prepare
from d2st.models.backbones import create_trunk
from d2st.pretrain import linear_probe_r2, load_frame_set, pretrain


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("pt")
    syn.generate(out / "syn", seed=0, size=32, frames=8, videos_per_class=4, jobs=1, progress=False)
    shards = out / "shards"
    prepare(
        out / "syn" / "splits" / "train.csv",
        out / "syn" / "videos",
        shards,
        frames=8,
        size=32,
        jobs=1,
        fmt="raw",
        progress=False,
    )
    return out, shards


def test_frames_join_their_geometry_rows(tiny):
    out, shards = tiny
    data = load_frame_set(shards, out / "syn" / "geometry.csv")
    geo = pd.read_csv(out / "syn" / "geometry.csv", dtype={"video_id": str})
    n_videos = len(pd.read_csv(out / "syn" / "splits" / "train.csv"))
    assert data.frames.shape == (n_videos * 8, 32, 32, 3)
    assert data.targets.shape == (n_videos * 8, 6)
    # targets are the geometry rows of the frames that were actually sampled
    first = geo[geo.video_id == geo.video_id.iloc[0]].sort_values("frame")
    assert torch.allclose(
        torch.tensor(data.targets[:8]),
        torch.tensor(
            first[["x", "y", "size", "cos", "sin", "opacity"]].to_numpy(), dtype=torch.float32
        ),
        atol=1e-5,
    )


def test_pretrain_lowers_loss_and_saves_a_trunk_create_trunk_loads(tiny):
    out, shards = tiny
    path = out / "rt.safetensors"
    report = pretrain(
        shards, out / "syn" / "geometry.csv", path, epochs=4, batch_size=64, seed=0, progress=False
    )
    log = pd.read_csv(out / "rt.log.csv")
    assert log.loss.iloc[-1] < log.loss.iloc[0]
    assert set(report["probe_r2"]) == {"x", "y", "size", "orientation", "opacity"}
    trunk = create_trunk("resnet_tiny", path)
    x = torch.randn(2, 3, 32, 32)
    # same weights through create_trunk as the ones the pretrainer holds: deterministic rebuild
    again = create_trunk("resnet_tiny", path)
    assert torch.equal(trunk(x), again(x))
    assert not torch.equal(trunk(x), create_trunk("resnet_tiny", "random")(x))


def test_pretrain_is_deterministic(tiny):
    out, shards = tiny
    from safetensors.torch import load_file

    a = out / "a.safetensors"
    b = out / "b.safetensors"
    for p in (a, b):
        pretrain(
            shards, out / "syn" / "geometry.csv", p, epochs=1, batch_size=64, seed=5, progress=False
        )
    sa, sb = load_file(str(a)), load_file(str(b))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_linear_probe_r2_matches_definition():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 5, generator=g).double().numpy()
    w = torch.randn(5, 6, generator=g).double().numpy()
    y = x @ w
    r2 = linear_probe_r2(x[:300], y[:300], x[300:], y[300:], ridge=0.0)
    assert all(v > 0.999 for v in r2.values())  # exactly linear targets: R^2 = 1
    noise = torch.randn(100, 6, generator=g).double().numpy()
    r2_noise = linear_probe_r2(x[:300], y[:300], x[300:], noise, ridge=0.0)
    assert all(v < 0.2 for v in r2_noise.values())  # unrelated targets: no explained variance
