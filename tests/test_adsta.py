"""aDSTA contracts: conv arithmetic vs Table 14 / Table 7, offset bounds, trilinear sampling."""

from __future__ import annotations

import csv

import pytest
import torch

from d2st.models.adsta import ADSTA, grid_geometry, reference_points
from d2st.models.config import TABLE14_RESNET, TABLE14_VIT, UNIFORM_DENSITY

# Official kernel/stride per insertion point (authors' repository qizhongtan/D2ST-Adapter): feature, density,
# kernel, stride. These are facts read from the official code, not outputs of ours.
OFFICIAL = [
    ((8, 56, 56), (2, 8, 8), (4, 7, 7), (4, 7, 7)),
    ((8, 56, 56), (8, 4, 4), (1, 14, 14), (1, 14, 14)),
    ((8, 28, 28), (2, 4, 4), (4, 7, 7), (4, 7, 7)),
    ((8, 28, 28), (8, 2, 2), (1, 14, 14), (1, 14, 14)),
    ((8, 14, 14), (2, 4, 4), (4, 5, 5), (4, 3, 3)),
    ((8, 14, 14), (8, 2, 2), (1, 7, 7), (1, 7, 7)),
    ((8, 7, 7), (2, 2, 2), (4, 4, 4), (4, 3, 3)),
    ((8, 7, 7), (8, 1, 1), (1, 7, 7), (1, 7, 7)),
]


def _conv_grid(feature, kernel, stride):
    """The grid a real padding-free Conv3d produces (not our formula)."""
    conv = torch.nn.Conv3d(1, 1, kernel, stride)
    with torch.no_grad():
        return tuple(conv(torch.zeros(1, 1, *feature)).shape[2:])


@pytest.mark.parametrize("feature,density,kernel,stride", OFFICIAL)
def test_official_kernel_stride_reproduced(feature, density, kernel, stride):
    k, s, g = grid_geometry(feature, density)
    assert (k, s) == (kernel, stride)
    assert g == density == _conv_grid(feature, k, s)


def _parse(s):
    return tuple(int(v) for v in s.split("-"))


def test_table14_grids(shared):
    rows = list(csv.DictReader(open(shared / "paper" / "reported" / "table14.csv")))
    assert rows
    r50 = [r for r in rows if r["backbone"] == "resnet50"]
    for (s, t), r in zip(TABLE14_RESNET, r50, strict=True):  # in-package constant == paper
        assert (s, t) == (_parse(r["adsta_s"]), _parse(r["adsta_t"]))
    vit = [r for r in rows if r["backbone"] != "resnet50"]
    assert TABLE14_VIT == (_parse(vit[0]["adsta_s"]), _parse(vit[0]["adsta_t"]))
    for r in rows:
        feature = _parse(r["feature_map"])
        for col in ("adsta_s", "adsta_t", "adsta_uniform"):
            k, s, g = grid_geometry(feature, _parse(r[col]))
            assert g == _parse(r[col]) == _conv_grid(feature, k, s)
            assert _parse(r["adsta_uniform"]) == UNIFORM_DENSITY


def test_table7_densities(shared):
    for r in csv.DictReader(open(shared / "paper" / "reported" / "table7.csv")):
        for col in ("spatial_density", "temporal_density"):
            d = _parse(r[col])
            feature = (max(8, d[0]), 14, 14)  # 16-4-4 is a 16-frame setting
            k, s, g = grid_geometry(feature, d)
            assert g == d == _conv_grid(feature, k, s)


@pytest.mark.parametrize("grid", [(2, 4, 4), (8, 2, 2), (4, 4, 4), (1, 3, 5)])
def test_reference_points_official_are_cell_centres(grid):
    ref = reference_points((8, 14, 14), (1, 1, 1), (1, 1, 1), grid, "official", True)
    for axis, n in enumerate(grid):
        vals = ref[..., axis].unique()
        expected = torch.tensor([(2 * i + 1) / n - 1 for i in range(n)])
        torch.testing.assert_close(vals.sort().values, expected)
        assert vals.abs().max() < 1


def test_reference_points_window_match_conv_windows():
    feature, density = (8, 14, 14), (2, 4, 4)
    k, s, g = grid_geometry(feature, density)
    ref = reference_points(feature, k, s, g, "window", True)
    # align_corners=True: voxel u sits at u / (n-1) * 2 - 1; window i covers [i*s, i*s+k-1].
    for axis in range(3):
        centres = [
            (i * s[axis] + (k[axis] - 1) / 2) / (feature[axis] - 1) * 2 - 1 for i in range(g[axis])
        ]
        torch.testing.assert_close(ref[..., axis].unique().sort().values, torch.tensor(centres))


@pytest.mark.parametrize("density", [(2, 4, 4), (8, 2, 2), (8, 1, 1)])
def test_offsets_within_bound(density):
    torch.manual_seed(0)
    m = ADSTA(8, 2, (8, 7, 7), density, offset_norm=False)
    with torch.no_grad():
        for p in m.offset.parameters():
            p.mul_(1000)
    q = m.q(torch.randn(2, 8 * 49, 8))
    from einops import rearrange

    q_vol = rearrange(q, "b (t h w) (g c) -> (b g) c t h w", t=8, h=7, g=2)
    delta = m.sampling_locations(q_vol) - m.ref
    bound = torch.tensor([min(1.0, 2.0 / n) for n in m.grid])
    assert (delta.abs() <= bound + 1e-6).all()
    assert (delta.abs() > 0.99 * bound).any()  # the bound is reached (tanh saturates)


@pytest.mark.parametrize("align_corners", [True, False])
def test_sample_is_trilinear_in_t_h_w_order(align_corners):
    T, H, W = 4, 5, 6
    m = ADSTA(2, 1, (T, H, W), (2, 2, 2), align_corners=align_corners)
    t, h, w = torch.meshgrid(torch.arange(T), torch.arange(H), torch.arange(W), indexing="ij")
    lin = (100 * t + 10 * h + w).float()
    torch.manual_seed(0)
    rnd = torch.randn(T, H, W)
    x_vol = torch.stack([lin, rnd])[None]  # (1, 2, T, H, W)
    p = torch.tensor([0.3, -0.45, 0.2])  # normalised (t, h, w)
    out = m.sample(x_vol, p.view(1, 1, 1, 1, 3))[0, :, 0, 0, 0]

    def to_voxel(v, n):  # grid_sample's unnormalisation
        return (v + 1) / 2 * (n - 1) if align_corners else ((v + 1) * n - 1) / 2

    u = [to_voxel(p[i].item(), n) for i, n in enumerate((T, H, W))]
    assert out[0].item() == pytest.approx(100 * u[0] + 10 * u[1] + u[2], abs=1e-4)
    # hand-computed trilinear from the 8 neighbours of the random channel
    lo = [int(v // 1) for v in u]
    fr = [v - l_ for v, l_ in zip(u, lo, strict=True)]
    val = 0.0
    for dt in (0, 1):
        for dh in (0, 1):
            for dw in (0, 1):
                wgt = (
                    (fr[0] if dt else 1 - fr[0])
                    * (fr[1] if dh else 1 - fr[1])
                    * (fr[2] if dw else 1 - fr[2])
                )
                val += wgt * rnd[lo[0] + dt, lo[1] + dh, lo[2] + dw].item()
    assert out[1].item() == pytest.approx(val, abs=1e-5)


def test_matches_dense_reference_implementation():
    from d2st.bench.adapter import reference_adsta

    torch.manual_seed(0)
    m = ADSTA(16, 2, (4, 6, 6), (2, 3, 3))
    x = torch.randn(2, 4 * 36 + 4, 16)  # volume + 4 extra (CLS) queries
    torch.testing.assert_close(m(x), reference_adsta(m, x), atol=1e-5, rtol=1e-4)


def test_extra_queries_do_not_change_volume_output():
    torch.manual_seed(0)
    m = ADSTA(8, 2, (2, 3, 3), (1, 2, 2))
    x = torch.randn(1, 18 + 2, 8)
    torch.testing.assert_close(m(x)[:, :18], m(x[:, :18]))
