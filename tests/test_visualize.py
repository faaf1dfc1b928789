"""Figure 5 visualisation: the hook's recomputed attention is the module's, top-k is the true top-k,
weights and coordinates follow their definitions, and the CLI draws a PNG for a tiny run."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from d2st.cli import main as cli
from d2st.models.adsta import ADSTA
from d2st.models.config import ModelCfg, build_encoder
from d2st.visualize import (
    PathwayAttention,
    adsta_attention,
    capture,
    default_stage,
    norm_to_voxel,
    point_table,
    select_points,
    token_index,
    top_k,
    voxel_to_pixel,
)

sys.path.insert(0, str(Path(__file__).parent))
from fewshot_fixtures import FRAMES, SIZE, make_clips, make_dataset, tiny_overrides  # noqa: E402


def _adsta(extra_offsets: bool = True) -> ADSTA:
    torch.manual_seed(0)
    m = ADSTA(16, 2, (4, 6, 6), (2, 3, 3))
    if extra_offsets:  # large offsets, so sampling really moves off the reference grid
        torch.nn.init.normal_(m.offset[-1].weight, std=2.0)
    return m.eval()


@pytest.mark.parametrize("extra", [0, 4])  # extra = CLS-like query-only tokens (ViT)
def test_recomputed_attention_equals_module_output(extra):
    m = _adsta()
    x = torch.randn(2, 4 * 6 * 6 + extra, 16)
    pos, attn, out = adsta_attention(m, x)
    torch.testing.assert_close(out, m(x), atol=1e-6, rtol=1e-5)
    assert pos.shape == (2, 2, m.num_points, 3) and attn.shape == (2, 2, x.shape[1], m.num_points)
    torch.testing.assert_close(attn.sum(-1), torch.ones(2, 2, x.shape[1]))
    # the points are the module's own shifted points, not the reference grid
    assert (pos - m.ref.reshape(1, 1, -1, 3)).abs().max() > 0.05


def test_capture_checks_every_pathway_of_an_encoder_and_refuses_a_changed_model():
    torch.manual_seed(0)
    enc = build_encoder(
        ModelCfg(backbone="resnet_tiny", adapter="d2st", frames=4, image_size=16)
    ).eval()
    clip = torch.randn(1, 4, 3, 16, 16)
    recs = capture(enc, clip)
    assert [(r.stage, r.kind) for r in recs] == [
        (f"layer{i}", k) for i in range(1, 5) for k in ("adsta_s", "adsta_t")
    ]
    assert max(r.max_error for r in recs) < 1e-5
    assert default_stage(enc) == "layer4"
    assert [r.stage for r in capture(enc, clip, ["layer2"])] == ["layer2", "layer2"]
    # a module whose output is no longer what the recomputation gives must be refused
    m = enc.adapters["layer3"].pathways[1].attn
    h = m.register_forward_hook(lambda mod, args, out: out + 0.1)
    try:
        with pytest.raises(RuntimeError, match="layer3/adsta_t"):
            capture(enc, clip, ["layer3"])
    finally:
        h.remove()


def test_top_k_picks_the_largest_attention_mass():
    rng = np.random.default_rng(0)
    for n, k in [(9, 4), (7, 3), (5, 5), (4, 9)]:
        w = rng.random(n)
        w[1] = w[2]  # a tie
        idx = top_k(w, k)
        assert len(set(idx.tolist())) == len(idx) == min(k, n)
        best = max(sum(w[list(c)]) for c in itertools.combinations(range(n), min(k, n)))
        assert w[idx].sum() == pytest.approx(best)
        assert (np.diff(w[idx]) <= 0).all()  # largest first


def _record(G=2, T=4, H=3, W=3, N_extra=2, seed=0) -> PathwayAttention:
    g = torch.Generator().manual_seed(seed)
    n_s = 5
    attn = torch.rand(G, T * H * W + N_extra, n_s, generator=g).softmax(-1)
    pos = torch.rand(G, n_s, 3, generator=g) * 2 - 1
    return PathwayAttention("layer1", "adsta_t", (T, H, W), True, pos, attn)


def test_point_table_weights_follow_the_paper_definition():
    rec, S = _record(), 24
    q = (2, 13.0, 4.0)
    table = point_table([rec], S, q)
    N, n_s = rec.attn.shape[1:]
    qi = token_index(*q, rec.feature_size, S)
    assert qi == (2 * 3 + 1) * 3 + 0  # 8-pixel cells: y=13 in row 1, x=4 in column 0, frame 2
    for row in table.itertuples():
        total = sum(float(rec.attn[row.head, n, row.point]) for n in range(N))
        assert row.importance == pytest.approx(n_s / N * total)
        assert row.query_weight == pytest.approx(n_s * float(rec.attn[row.head, qi, row.point]))
    # select_points: per pathway, the k points of largest weight
    sel = select_points(pd.concat([table, table.assign(pathway="adsta_s")]), k_all=3, k_query=2)
    for kind in ("adsta_s", "adsta_t"):
        assert sorted(sel[(kind, "all")].importance) == sorted(table.importance)[-3:]
        assert sorted(sel[(kind, "query")].query_weight) == sorted(table.query_weight)[-2:]


@pytest.mark.parametrize("align", [True, False])
def test_coordinates_match_grid_sample_and_the_token_grid(align):
    n = 5
    # grid_sample of a ramp (value = voxel index along w) returns the voxel coordinate it reads
    ramp = torch.arange(n, dtype=torch.float64).expand(1, 1, 1, 1, n)
    p = torch.linspace(-0.75, 0.75, 7, dtype=torch.float64)  # inside: no zero padding read
    grid = torch.stack([p, torch.zeros_like(p), torch.zeros_like(p)], -1).view(1, 1, 1, 7, 3)
    read = F.grid_sample(ramp, grid, mode="bilinear", align_corners=align).flatten()
    torch.testing.assert_close(read, norm_to_voxel(p, n, align))
    # a cell's centre pixel maps back to that cell, for every cell
    S = 40
    for j in range(n):
        y = float(voxel_to_pixel(torch.tensor(float(j)), n, S))
        assert token_index(0, y, y, (1, n, n), S) == j * n + j


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from d2st.config import load_config
    from d2st.train import train

    tmp = tmp_path_factory.mktemp("viz")
    train_dir, test_dir = make_dataset(tmp, train_classes=4, test_classes=3, per_class=3)
    over = tiny_overrides(tmp, train_dir, test_dir, **{
        "model.adapter": "d2st", "train.episodes": 2, "train.accumulate": 1,
        "train.warmup_episodes": 1, "train.checkpoint_every": 2,
    })  # fmt: skip
    return tmp, train(load_config(None, over), progress=False).run_dir, test_dir


def test_cli_writes_a_png_for_a_tiny_run(tiny_run):
    tmp, run, _ = tiny_run
    png, pts = tmp / "fig" / "viz.png", tmp / "fig" / "points.csv"
    args = ["visualize", "--run", str(run), "--index", "2", "--stage", "all", "--top", "7",
            "--query", "1,20,3", "--points", str(pts), "--out", str(png)]  # fmt: skip
    assert cli(args) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = pd.read_csv(pts)
    assert set(table.pathway) == {"adsta_s", "adsta_t"}
    assert table.stage.nunique() == 4  # every ResNet stage has an adapter
    # importance is N_s / N * summed attention: its mean over one head's points is exactly 1
    means = table.groupby(["stage", "pathway", "head"]).importance.mean()
    np.testing.assert_allclose(means, 1.0, rtol=1e-6)
    assert table.frame.between(0, FRAMES - 1).all()


def test_cli_reads_a_video_file(tiny_run, tmp_path):
    from d2st.data.synthetic import encode_video

    _, run, _ = tiny_run
    clip = make_clips(1, 1, seed=3, frames=FRAMES, size=SIZE)[0][0]  # (T, S, S, 3)
    video = tmp_path / "clip.mp4"
    encode_video(np.repeat(clip, 3, axis=0), video)  # 12 frames: sampled back to T
    png = tmp_path / "v.png"
    args = ["visualize", "--run", str(run), "--video", str(video), "--resize", str(SIZE),
            "--out", str(png)]  # fmt: skip
    assert cli(args) == 0 and png.stat().st_size > 0
