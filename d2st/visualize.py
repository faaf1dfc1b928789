"""Where aDSTA looks: shifted reference points and their attention (D2ST-Adapter §4.3, Fig. 5).

The paper (§4.3 "Visualization", Appendix F), following Deformable Attention (Xia et al.,
CVPR 2022): every shifted reference point p = p_ref + Δp (Eq. 3) is a key/value shared by all
queries (Eq. 4); its importance is the attention weight it receives, accumulated over all
queries, and the top-100 points of each pathway (aDSTA-S, aDSTA-T) are drawn on the 8 frames
with circle size = importance. For one chosen query token, the top-50 points by its own
attention weights are drawn as well.

How the numbers are obtained, so they cannot drift from the model:

- :func:`capture` registers a forward hook on every ``ADSTA`` module of the chosen adapters and
  runs the encoder once on the clip. The hook recomputes the module's forward pass from the
  module's own layers and methods (``q``, ``sampling_locations``, ``sample``, ``k``, ``v``,
  ``proj``), writing out the softmax that ``F.scaled_dot_product_attention`` keeps internal:
  ``A = softmax(Q K^T / sqrt(C/G))`` per head (Eq. 4), and checks that ``proj(A V)`` equals the
  module's actual output (:data:`ATOL`); a mismatch raises.
- Importance of point s of head g (one of the G * N_s points, each head has its own offsets):
  ``N_s / N * sum_q A[g, q, s]``, i.e. the summed attention of the paper scaled so 1 is the
  uniform share (a point attended as much as average). The scale makes points of different
  adapters comparable when several are pooled (``stage="all"``, Appendix F: "top-100/50 ...
  across all inserted D2ST-Adapters"); within one adapter it does not change the ranking.
  Queries are all tokens the module sees (ViT: the per-frame CLS tokens too, as in the model).
- Coordinates: a normalised position p in [-1, 1] is a voxel coordinate
  ``v = (p + 1) / 2 * (n - 1)`` (``align_corners=True``) or ``((p + 1) * n - 1) / 2``
  (False), exactly as ``F.grid_sample`` reads it; feature cell j of an n-cell map over an
  S-pixel frame is centred on pixel ``(j + 0.5) * S / n - 0.5``. A point is drawn on the frame
  nearest its temporal coordinate (its value is a trilinear mix of the two frames around it).

Letters: T frames, (H, W) the adapter's feature map, G heads, N queries, N_s points per head.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from einops import rearrange
from torch import nn

from d2st.models.adsta import ADSTA

ATOL = 1e-4  # max |recomputed - actual| aDSTA output allowed, relative to max(1, |output|)
PATHWAY_LABELS = {"adsta_s": "aDSTA-S (spatial)", "adsta_t": "aDSTA-T (temporal)"}
PATHWAY_COLOURS = {"adsta_s": "#ff9f1c", "adsta_t": "#2ec4f0"}
STAGE_MARKERS = "osD^vP*X"  # one marker per adapter when several are pooled (--stage all)


@dataclass
class PathwayAttention:
    """What one aDSTA module did on one clip (batch of one).

    Attributes:
        stage: the adapter's key in ``encoder.adapters`` ("layer4" for ResNet, "6" for ViT).
        kind: "adsta_s" or "adsta_t".
        feature_size: (T, H, W) of the token volume.
        align_corners: the module's ``grid_sample`` convention.
        pos: (G, N_s, 3) shifted points, normalised (t, h, w) in [-1, 1] (may leave it).
        attn: (G, N, N_s) softmax attention weights of the N queries over the N_s points.
        max_error: max |recomputed output - module output| seen by the hook.
    """

    stage: str
    kind: str
    feature_size: tuple[int, int, int]
    align_corners: bool
    pos: torch.Tensor
    attn: torch.Tensor
    max_error: float = 0.0


@torch.no_grad()
def adsta_attention(module: ADSTA, x: torch.Tensor):
    """Recompute an aDSTA forward pass (Eq. 3-4) exposing its sampling points and attention.

    Args:
        module: the ``ADSTA`` module (its own layers are used; nothing is copied).
        x: (B, N, C) the module's input (the first T*H*W tokens form the volume).

    Returns:
        pos (B, G, N_s, 3) normalised (t, h, w) points, attn (B, G, N, N_s) softmax weights and
        out (B, N, C), which must equal ``module(x)``.
    """
    B, N, C = x.shape
    T, H, W = module.feature_size
    G = module.num_heads
    q = module.q(x)  # (B, N, C)
    q_vol = rearrange(q[:, : T * H * W], "b (t h w) (g c) -> (b g) c t h w", t=T, h=H, g=G)
    pos = module.sampling_locations(q_vol)  # (B*G, T_r, H_r, W_r, 3), Eq. 3 offsets
    x_vol = rearrange(x[:, : T * H * W], "b (t h w) (g c) -> (b g) c t h w", t=T, h=H, g=G)
    sampled = rearrange(module.sample(x_vol, pos), "(b g) c t h w -> b (t h w) (g c)", b=B)
    k, v = module.k(sampled), module.v(sampled)  # (B, N_s, C)
    q, k, v = (rearrange(z, "b n (g d) -> b g n d", g=G) for z in (q, k, v))
    scale = q.shape[-1] ** -0.5  # scaled_dot_product_attention's default 1 / sqrt(C/G)
    attn = torch.softmax((q @ k.transpose(-1, -2)) * scale, dim=-1)  # (B, G, N, N_s), Eq. 4
    out = module.proj(rearrange(attn @ v, "b g n d -> b n (g d)"))  # (B, N, C)
    pos = rearrange(pos, "(b g) t h w k -> b g (t h w) k", b=B)  # (B, G, N_s, 3)
    return pos, attn, out


def adsta_modules(encoder: nn.Module) -> dict[tuple[str, str], ADSTA]:
    """(adapter key, pathway kind) -> ADSTA module, in the encoder's adapter order."""
    out = {}
    for stage, adapter in getattr(encoder, "adapters", {}).items():
        for path in getattr(adapter, "pathways", ()):
            attn = getattr(path, "attn", None)
            if isinstance(attn, ADSTA):
                out[(stage, getattr(path, "kind", "adsta"))] = attn
    return out


def default_stage(encoder: nn.Module) -> str:
    """The last adapter with an aDSTA for a ResNet, the middle one for a ViT."""
    stages = list(dict.fromkeys(s for s, _ in adsta_modules(encoder)))
    if not stages:
        raise ValueError("the model has no aDSTA pathway (adapter must be d2st, d2st_s, ...)")
    is_vit = hasattr(getattr(encoder, "trunk", None), "transformer")
    return stages[len(stages) // 2] if is_vit else stages[-1]


@torch.no_grad()
def capture(
    encoder: nn.Module, clip: torch.Tensor, stages: list[str] | None = None
) -> list[PathwayAttention]:
    """Run ``encoder`` on one clip and record every chosen aDSTA module's points and attention.

    Args:
        encoder: a ResNetEncoder / ViTEncoder (``.adapters``; (B, T, 3, H, W) -> (B, T, C)).
        clip: (1, T, 3, H, W) normalised frames (the run's test view).
        stages: adapter keys to record; None records all.

    Returns:
        One :class:`PathwayAttention` per (stage, pathway), in forward order.

    Raises:
        RuntimeError: the recomputed output differs from the module's (the model changed).
    """
    if clip.shape[0] != 1:
        raise ValueError(f"capture expects one clip (1, T, 3, H, W), got {tuple(clip.shape)}")
    modules = {k: m for k, m in adsta_modules(encoder).items() if stages is None or k[0] in stages}
    if not modules:
        raise ValueError(
            f"no aDSTA pathway in stages {stages}; have {list(adsta_modules(encoder))}"
        )
    records: list[PathwayAttention] = []

    def make_hook(stage: str, kind: str):
        def hook(module: ADSTA, args: tuple, output: torch.Tensor) -> None:
            pos, attn, out = adsta_attention(module, args[0])
            err = float((out - output).abs().max())
            if err > ATOL * max(1.0, float(output.abs().max())):
                raise RuntimeError(
                    f"aDSTA {stage}/{kind}: recomputed attention output differs from the "
                    f"module's by {err:.3g}; d2st.visualize no longer matches d2st.models.adsta"
                )
            records.append(
                PathwayAttention(
                    stage,
                    kind,
                    tuple(module.feature_size),
                    bool(module.align_corners),
                    pos[0].float().cpu(),
                    attn[0].float().cpu(),
                    err,
                )  # fmt: skip
            )

        return hook

    handles = [m.register_forward_hook(make_hook(*key)) for key, m in modules.items()]
    try:
        encoder.eval()(clip)
    finally:
        for h in handles:
            h.remove()
    return records


# --------------------------------------------------------------------------- geometry


def norm_to_voxel(p: torch.Tensor, n: int, align_corners: bool) -> torch.Tensor:
    """Normalised coordinate in [-1, 1] -> voxel coordinate in [0, n-1], as grid_sample reads it."""
    if align_corners:
        return (p + 1) / 2 * (n - 1)
    return ((p + 1) * n - 1) / 2


def voxel_to_pixel(v: torch.Tensor, n: int, pixels: int) -> torch.Tensor:
    """Voxel coordinate of an n-cell feature axis -> pixel coordinate (centre of cell j)."""
    return (v + 0.5) * pixels / n - 0.5


def pixel_to_cell(y: float, n: int, pixels: int) -> int:
    """Pixel coordinate -> index of the feature cell that covers it (clipped to the map)."""
    return int(min(n - 1, max(0, math.floor((y + 0.5) * n / pixels))))


def token_index(t: int, y: float, x: float, feature_size: tuple[int, int, int], pixels: int) -> int:
    """Volume token (t, h, w) -> flat index t*H*W + h*W + w covering pixel (y, x) of frame t."""
    T, H, W = feature_size
    if not 0 <= t < T:
        raise ValueError(f"query frame {t} not in 0..{T - 1}")
    return (t * H + pixel_to_cell(y, H, pixels)) * W + pixel_to_cell(x, W, pixels)


def top_k(weights: torch.Tensor | np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest weights (all if fewer), largest first."""
    w = torch.tensor(np.array(weights, dtype=np.float64))
    k = min(int(k), w.numel())
    return torch.topk(w, k, sorted=True).indices.numpy()


def default_query(frames: np.ndarray, cells: int, frame: int | None = None) -> tuple[int, int, int]:
    """The most moving region of the middle frame: (t, y, x) pixel centre of a cell.

    Motion is |frame - temporal median| averaged over RGB, pooled on a cells x cells grid (the
    token grid of the shown adapter); the cell with the most motion in frame ``frame`` (default
    T // 2) is the query.

    Args:
        frames: uint8 (T, S, S, 3) displayed frames.
        cells: grid side to pool motion on.
        frame: the query frame (default T // 2).
    """
    T, S = frames.shape[:2]
    t = T // 2 if frame is None else frame
    f = frames.astype(np.float32)
    motion = np.abs(f[t] - np.median(f, axis=0)).mean(-1)  # (S, S)
    pooled = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(motion)[None], cells)[0]
    h, w = divmod(int(pooled.argmax()), cells)
    c = float(voxel_to_pixel(torch.tensor(float(h)), cells, S))
    return t, round(c), round(float(voxel_to_pixel(torch.tensor(float(w)), cells, S)))


def point_table(
    records: list[PathwayAttention], pixels: int, query: tuple[int, int, int] | None = None
) -> pd.DataFrame:
    """Every shifted point of every record, one row each, with pixel coordinates and weights.

    Columns: stage, pathway, head, point, t_norm, h_norm, w_norm (normalised), t, y, x (voxel
    time and pixel coordinates), frame (nearest frame), importance (N_s / N * summed attention),
    query_token and query_weight (N_s * the query's attention; only with ``query``).
    """
    rows = []
    for r in records:
        T, H, W = r.feature_size
        G, n_s = r.pos.shape[:2]
        p = r.pos.double()  # (G, N_s, 3)
        t = norm_to_voxel(p[..., 0], T, r.align_corners)
        y = voxel_to_pixel(norm_to_voxel(p[..., 1], H, r.align_corners), H, pixels)
        x = voxel_to_pixel(norm_to_voxel(p[..., 2], W, r.align_corners), W, pixels)
        imp = r.attn.double().mean(1) * n_s  # (G, N_s): N_s / N * sum over queries
        df = pd.DataFrame(
            {
                "stage": r.stage,
                "pathway": r.kind,
                "head": np.repeat(np.arange(G), n_s),
                "point": np.tile(np.arange(n_s), G),
                "t_norm": p[..., 0].flatten().numpy(),
                "h_norm": p[..., 1].flatten().numpy(),
                "w_norm": p[..., 2].flatten().numpy(),
                "t": t.flatten().numpy(),
                "y": y.flatten().numpy(),
                "x": x.flatten().numpy(),
                "frame": t.round().clamp(0, T - 1).long().flatten().numpy(),
                "importance": imp.flatten().numpy(),
            }
        )
        if query is not None:
            qi = token_index(*query, r.feature_size, pixels)
            df["query_token"] = qi
            df["query_weight"] = (r.attn[:, qi].double() * n_s).flatten().numpy()  # (G*N_s,)
        rows.append(df)
    return pd.concat(rows, ignore_index=True)


def select_points(
    table: pd.DataFrame, k_all: int = 100, k_query: int = 50
) -> dict[tuple[str, str], pd.DataFrame]:
    """Per pathway: the top ``k_all`` points by importance and the top ``k_query`` by query weight.

    Returns {(pathway, "all" | "query"): rows of ``table``, largest weight first}.
    """
    out = {}
    for kind, g in table.groupby("pathway", sort=False):
        out[(kind, "all")] = g.iloc[top_k(g.importance.to_numpy(), k_all)]
        if "query_weight" in g:
            out[(kind, "query")] = g.iloc[top_k(g.query_weight.to_numpy(), k_query)]
    return out


# --------------------------------------------------------------------------- drawing


def marker_area(w: np.ndarray, lo: float, hi: float, panel_inches: float) -> np.ndarray:
    """Scatter marker areas (pt^2) growing linearly with weight from ``lo`` to ``hi``."""
    scale = (panel_inches * 72 / 9) ** 2  # the largest circle spans ~1/9 of the panel side
    frac = (w - lo) / (hi - lo) if hi > lo else np.ones_like(w)
    return scale * (0.08 + 0.92 * np.clip(frac, 0, 1))


def render(
    frames: np.ndarray,
    selected: dict[tuple[str, str], pd.DataFrame],
    out: str | Path,
    query: tuple[int, int, int] | None = None,
    title: str = "",
    k_all: int = 100,
    k_query: int = 50,
    panel_inches: float = 1.55,
    dpi: int = 100,
) -> Path:
    """One PNG: a row of T frame panels per (pathway, selection), circles sized by weight.

    Args:
        frames: uint8 (T, S, S, 3), the frames the model saw (after the test crop).
        selected: output of :func:`select_points`.
        out: PNG path.
        query: (t, y, x) of the query token (red star), for the "query" rows.
        title: figure title.
        k_all, k_query: the k used (row labels).
        panel_inches: side of one frame panel.
        dpi: resolution.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    T, S = frames.shape[:2]
    order = {k: i for i, k in enumerate(PATHWAY_LABELS)}
    rows = sorted(
        (key for key in selected if not selected[key].empty),
        key=lambda k: (k[1] != "all", order.get(k[0], len(order))),
    )  # all-query rows first, then the query rows; S before T
    stages = sorted(  # adapter keys in network order: layer1 < layer2, block 9 < block 10
        {str(st) for key in rows for st in selected[key]["stage"]}, key=lambda st: (len(st), st)
    )
    markers = dict(zip(stages, STAGE_MARKERS if len(stages) > 1 else "o", strict=False))
    label_w = 1.6  # inches: row labels on the left
    top_in = 0.45 + 0.2 * (len(stages) > 1)  # title (+ a legend of adapter markers) on top
    height = top_in + len(rows) * (panel_inches + 0.22)
    fig, axes = plt.subplots(
        len(rows), T, figsize=(label_w + T * panel_inches, height), squeeze=False
    )
    fig.subplots_adjust(
        left=label_w / (label_w + T * panel_inches), right=0.995, bottom=0.01,
        top=1 - top_in / height, wspace=0.04, hspace=0.14 / panel_inches * 1.6,
    )  # fmt: skip
    for r, (kind, what) in enumerate(rows):
        pts = selected[(kind, what)]
        col = "importance" if what == "all" else "query_weight"
        lo, hi = float(pts[col].min()), float(pts[col].max())
        for t in range(T):
            ax = axes[r, t]
            ax.imshow(frames[t], interpolation="nearest", extent=(-0.5, S - 0.5, S - 0.5, -0.5))
            here = pts[pts.frame == t]
            for stage, pts_s in here.groupby(here["stage"].astype(str), sort=False):
                ax.scatter(
                    pts_s.x, pts_s.y, s=marker_area(pts_s[col].to_numpy(), lo, hi, panel_inches),
                    marker=markers[stage], facecolors=PATHWAY_COLOURS.get(kind, "w"),
                    edgecolors="k", linewidths=0.5, alpha=0.8,
                )  # fmt: skip
            if what == "query" and query is not None and query[0] == t:
                ax.scatter([query[2]], [query[1]], marker="*", s=220, c="red", edgecolors="w",
                           linewidths=0.8, zorder=5)  # fmt: skip
            ax.set_xlim(-0.5, S - 0.5)
            ax.set_ylim(S - 0.5, -0.5)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"frame {t}: {len(here)} pts", fontsize=7, pad=2)
        k = k_all if what == "all" else k_query
        how = (
            "by attention from\nall queries"
            if what == "all"
            else "by attention of\nthe query \u2605"
        )
        axes[r, 0].set_ylabel(
            f"{PATHWAY_LABELS.get(kind, kind)}\ntop-{min(k, len(pts))} points\n{how}\n"
            f"size: {lo:.2f}-{hi:.2f} x uniform",
            fontsize=7.5,
            rotation=0,
            ha="right",
            va="center",
            labelpad=6,
        )
    fig.suptitle(title, fontsize=8.5, y=1 - 0.08 / height, va="top")
    if len(stages) > 1:  # which adapter each point comes from
        handles = [
            plt.Line2D([], [], ls="", marker=markers[st], mfc="w", mec="k", label=f"adapter {st}")
            for st in stages
        ]
        fig.legend(handles=handles, loc="upper center", fontsize=7, frameon=False,
                   ncol=len(stages), bbox_to_anchor=(0.5, 1 - 0.22 / height),
                   handletextpad=0.2, columnspacing=1.2)  # fmt: skip
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out


# --------------------------------------------------------------------------- end to end


def load_model(run: str | Path | None = None, config: str | Path | None = None, overrides=()):
    """(config, FewShotModel) of a trained run, or a random-init model built from a config.

    Args:
        run: a run directory (config.yaml, model.safetensors), as ``d2st evaluate`` reads it.
        config: a run config YAML (random-init adapters, trunk from ``model.weights``); used when
            ``run`` is None.
        overrides: ``key=value`` overrides of ``config``.
    """
    if run is not None:
        from d2st.evaluate import load_run

        run = Path(run)
        if not (run / "model.safetensors").is_file():
            raise FileNotFoundError(f"{run}: no model.safetensors (is the run finished?)")
        return load_run(run, "cpu")
    from d2st.config import load_config
    from d2st.train import build_model

    cfg = load_config(config, list(overrides))
    return cfg, build_model(cfg).eval()


def load_frames(
    video: str | Path,
    frames: int,
    crop: int,
    video_id: str | None = None,
    index: int | None = None,
    resize: int | None = None,
) -> tuple[np.ndarray, str]:
    """uint8 (T, S, S, 3) frames of a video file or of one clip of a shard folder, cropped.

    Args:
        video: a video file (decoded with ``d2st.data.video.decode_frames``: T segment-centre
            frames resized to ``resize``), or a shard folder (``video_id`` or ``index``).
        frames: T of the model.
        crop: the run's test crop (centre crop, as ``eval_transform``).
        video_id, index: which clip of a shard folder (default: index 0).
        resize: side a video file is resized to before the crop (default: ``crop``; real data
            shards use 256 for a 224 crop).

    Returns:
        the frames and a short description of where they came from.
    """
    from d2st.data.transforms import centre_crop

    video = Path(video)
    if video.is_dir():
        from d2st.data.shards import ShardSet

        shards = ShardSet(video)
        if video_id is not None:
            if video_id not in shards.video_ids:
                raise ValueError(f"--video-id {video_id!r} is not in {video}/manifest.csv")
            index = shards.video_ids.index(video_id)
        index = 0 if index is None else index
        clip, what = shards.get(index), f"{video.name} #{index} ({shards.video_ids[index]})"
    elif video.is_file():
        from d2st.data.video import decode_frames

        clip, _, _ = decode_frames(video, frames, resize or crop)
        what = video.name
    else:
        raise FileNotFoundError(f"--video {video}: neither a video file nor a shard folder")
    if clip.shape[0] != frames:
        raise ValueError(f"{video}: clip has {clip.shape[0]} frames, the model expects {frames}")
    x = torch.from_numpy(np.ascontiguousarray(clip)).permute(0, 3, 1, 2)  # (T, 3, H, W)
    return centre_crop(x, crop).permute(0, 2, 3, 1).contiguous().numpy(), what


def visualize(
    out: str | Path,
    video: str | Path | None = None,
    run: str | Path | None = None,
    config: str | Path | None = None,
    overrides=(),
    stage: str | None = None,
    query: tuple[int, int, int] | None = None,
    k_all: int = 100,
    k_query: int = 50,
    video_id: str | None = None,
    index: int | None = None,
    resize: int | None = None,
    points_csv: str | Path | None = None,
) -> dict:
    """Draw the Figure 5 panels of one clip for a run (or a random-init config); return a summary.

    Args:
        out: PNG path.
        video: video file or shard folder (see :func:`load_frames`); None: the run's
            ``data.test_shards``.
        run, config, overrides: the model (see :func:`load_model`).
        stage: adapter key ("layer1".."layer4", ViT block "0".."11") or "all"; default
            :func:`default_stage`.
        query: (t, y, x) query pixel in the cropped frames; default :func:`default_query`.
        k_all, k_query: points drawn per pathway (paper: 100 and 50).
        video_id, index: see :func:`load_frames`.
        resize: side a video file is resized to before the crop (default: the side of the
            run's test shards when they exist, else the crop).
        points_csv: also write the full :func:`point_table` here.
    """
    from d2st.data.transforms import eval_transform
    from d2st.train import mean_std

    cfg, model = load_model(run, config, overrides)
    enc = model.encoder
    crop = int(cfg.model.image_size)
    if video is None:
        if not cfg.data.test_shards:
            raise ValueError("--video missing and the run config has no data.test_shards")
        video = cfg.data.test_shards
    if resize is None and cfg.data.test_shards and Path(cfg.data.test_shards).is_dir():
        from d2st.data.shards import ShardSet

        resize = ShardSet(cfg.data.test_shards).size  # the side the run's test clips have
    frames, what = load_frames(video, cfg.model.frames, crop, video_id, index, resize)
    mean, std = mean_std(cfg, enc)
    clip = eval_transform(torch.from_numpy(frames)[None], crop, mean, std)  # (1, T, 3, S, S)
    available = list(dict.fromkeys(s for s, _ in adsta_modules(enc)))
    if stage in (None, ""):
        stage = default_stage(enc)
    if stage != "all" and stage not in available:
        raise ValueError(f"--stage {stage!r}: adapters with aDSTA are {available} (or 'all')")
    records = capture(enc, clip, None if stage == "all" else [stage])
    if query is None:
        coarsest = min(r.feature_size[1] for r in records)
        query = default_query(frames, coarsest)
    table = point_table(records, crop, query)
    if points_csv:
        Path(points_csv).parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(points_csv, index=False)
    selected = select_points(table, k_all, k_query)
    name = f"run {Path(run).name}" if run is not None else "random init"
    title = (
        f"{cfg.model.adapter} on {cfg.model.backbone} ({name}), adapter "
        f"{'all stages' if stage == 'all' else stage}; {what}; query ★ = frame {query[0]}, "
        f"pixel (y={query[1]}, x={query[2]})"
    )
    render(frames, selected, out, query, title, k_all, k_query)
    return {
        "out": str(out),
        "stage": stage,
        "query": list(query),
        "pathways": [f"{r.stage}/{r.kind}: grid {tuple(r.attn.shape)}" for r in records],
        "max_error": max(r.max_error for r in records),
    }
