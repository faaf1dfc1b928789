"""Few-shot matching metrics with one signature: Bi-MHM, OTAM and TRX.

Every metric is an ``nn.Module`` called as ``metric(support_feats, support_labels, query_feats)``:

- ``support_feats`` (..., S, T, C) per-frame features of the support videos,
- ``support_labels`` (..., S) episode labels in 0..W-1 (every class present),
- ``query_feats`` (..., Q, T, C),

and returns logits (..., Q, W), larger = closer (logits are minus a distance, no temperature).
Leading dimensions are optional episode batch dimensions (evaluation runs many episodes at once).

This is the matching step of D2ST-Adapter (ICCV 2025, Eq. 5: the adapted per-frame features of
query and support are compared by a temporal matching metric and trained with cross-entropy over
the W classes). The metrics follow these public implementations:

- Bi-MHM (HyRSM, Wang et al., CVPR 2022): bidirectional mean Hausdorff, sum form, on class
  prototypes (per-frame mean of the K shots), cosine distance on L2-normalised frames. D2ST's metric.
- OTAM (Cao et al., CVPR 2020; Perrett's soft-DTW re-implementation as copied by MoLo/D2ST):
  zero padding columns, hard-sum first row, soft-min with lambda, both directions, on prototypes.
- TRX (Perrett et al., CVPR 2021): temporal-relational cross-transformer over frame tuples of
  cardinalities Omega (default {2, 3}), logits averaged over cardinalities.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


def episode_way(support_labels: torch.Tensor) -> int:
    """Number of classes W of an episode whose labels are 0..W-1."""
    return int(support_labels.max()) + 1


def prototypes(support_feats: torch.Tensor, support_labels: torch.Tensor, way: int) -> torch.Tensor:
    """Per-class, per-frame mean of the support features (the D2ST prototype).

    Args:
        support_feats: (..., S, T, C).
        support_labels: (..., S) in 0..way-1.
        way: W.

    Returns:
        (..., W, T, C); features are averaged before any normalisation, as in the official code.
    """
    onehot = F.one_hot(support_labels, way).to(support_feats.dtype)  # (..., S, W)
    counts = onehot.sum(-2).clamp_min(1)  # (..., W)
    summed = torch.einsum("...sw,...stc->...wtc", onehot, support_feats)  # (..., W, T, C)
    return summed / counts[..., :, None, None]


def frame_cosine_distance(protos: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
    """D[..., q, w, i, j] = 1 - cos(P_w,i, Q_q,j) on L2-normalised frames.

    Args:
        protos: (..., W, T, C) class prototypes (i indexes prototype frames).
        queries: (..., Q, T, C) (j indexes query frames).

    Returns:
        (..., Q, W, T, T).
    """
    p = F.normalize(protos, dim=-1)
    q = F.normalize(queries, dim=-1)
    return 1.0 - torch.einsum("...wic,...qjc->...qwij", p, q)


class BiMHM(nn.Module):
    """Bidirectional mean Hausdorff metric (HyRSM), sum form on prototypes, as in D2ST.

    dist(q, c) = sum_i min_j D[i, j] + sum_j min_i D[i, j] with D the prototype-by-query cosine
    distance; logits = -dist (Eq. 5 of D2ST-Adapter uses this metric for all main tables).
    Order-free set matching: permuting the frames of a video leaves the logit unchanged.
    """

    def forward(self, support_feats, support_labels, query_feats):
        # support (..., S, T, C), labels (..., S), query (..., Q, T, C) -> (..., Q, W)
        way = episode_way(support_labels)
        dist = frame_cosine_distance(prototypes(support_feats, support_labels, way), query_feats)
        # dist (..., Q, W, T_proto, T_query)
        return -(dist.min(-1).values.sum(-1) + dist.min(-2).values.sum(-1))


def soft_min(values: Sequence[torch.Tensor], lam: float) -> torch.Tensor:
    """smin_lambda(x_1..x_k) = -lambda * log sum_i exp(-x_i / lambda), elementwise."""
    stacked = torch.stack(list(values), 0)
    return -lam * torch.logsumexp(-stacked / lam, dim=0)


def otam_cumulative_distance(dist: torch.Tensor, lam: float) -> torch.Tensor:
    """One direction of OTAM: soft-DTW over D with zero padding columns (peers' recurrence).

    D is padded with one zero column on each side of its column axis, so an alignment may enter
    and leave at any row for free; inside, the path moves through the columns in order.
    Row 0 is a hard cumulative sum; for rows l >= 1:
    C[l,1] = D[l,1] + smin(C[l-1,0], C[l-1,1], C[l,0]);
    C[l,m] = D[l,m] + smin(C[l-1,m-1], C[l,m-1]) for interior m;
    C[l,M+1] = D[l,M+1] + smin(C[l-1,M], C[l-1,M+1], C[l,M]); column 0 stays 0.
    The result C[L-1, M+1] equals smin_lambda over all such paths of their summed cost.

    Args:
        dist: (..., L, M) frame distances (rows: frames of A, columns: frames of B).
        lam: soft-min temperature lambda (> 0).

    Returns:
        (...,) cumulative alignment cost. Vectorised over leading dims; loops over the L x M grid.
    """
    L, M = dist.shape[-2:]
    padded = F.pad(dist, (1, 1))  # (..., L, M + 2)
    prev = torch.cumsum(padded[..., 0, :], dim=-1)  # row 0, (..., M + 2)
    zero = torch.zeros_like(prev[..., 0])
    for row in range(1, L):
        d = padded[..., row, :]
        cells = [zero]  # column 0 is never written
        cells.append(d[..., 1] + soft_min([prev[..., 0], prev[..., 1], cells[0]], lam))
        for m in range(2, M + 1):
            cells.append(d[..., m] + soft_min([prev[..., m - 1], cells[m - 1]], lam))
        cells.append(d[..., M + 1] + soft_min([prev[..., M], prev[..., M + 1], cells[M]], lam))
        prev = torch.stack(cells, dim=-1)  # (..., M + 2)
    return prev[..., M + 1]


class OTAM(nn.Module):
    """Ordered temporal alignment (OTAM, Cao et al. CVPR 2020) on prototypes, both directions.

    dist(q, c) = OTAM(D) + OTAM(D^T) with D the prototype-by-query cosine distance; logits =
    -dist (the metric of Eq. 5 swapped for OTAM, D2ST's commented-out alternative).

    Args:
        lam: soft-min smoothing lambda; 0.5 as D2ST and MoLo's v2 (HyRSM/MoLo CNN_OTAM use 0.1).
    """

    def __init__(self, lam: float = 0.5):
        super().__init__()
        self.lam = lam

    def forward(self, support_feats, support_labels, query_feats):
        # support (..., S, T, C), labels (..., S), query (..., Q, T, C) -> (..., Q, W)
        way = episode_way(support_labels)
        dist = frame_cosine_distance(prototypes(support_feats, support_labels, way), query_feats)
        # dist (..., Q, W, T_proto, T_query)
        both = otam_cumulative_distance(dist, self.lam) + otam_cumulative_distance(
            dist.transpose(-1, -2), self.lam
        )
        return -both

    def extra_repr(self) -> str:
        return f"lam={self.lam}"


def sinusoidal_encoding(length: int, dim: int, scale: float = 0.1) -> torch.Tensor:
    """Standard sinusoidal positional encoding (sin even / cos odd dims, base 10000) x scale."""
    position = torch.arange(length, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim)
    pe[:, 0::2] = torch.sin(position * div)
    pe[:, 1::2] = torch.cos(position * div)[:, : dim // 2]
    return pe * scale


def class_major(support: torch.Tensor, support_labels: torch.Tensor, way: int) -> torch.Tensor:
    """Reorder supports as (..., W, K, ...) by label; every class must have the same K shots."""
    counts = F.one_hot(support_labels, way).sum(-2)  # (..., W)
    shot = support_labels.shape[-1] // way
    if not bool((counts == shot).all()):
        raise ValueError("TRX needs the same number of shots for every class of an episode")
    order = torch.argsort(support_labels, dim=-1, stable=True)  # (..., S)
    index = order.reshape(*order.shape, *([1] * (support.dim() - order.dim())))
    ordered = torch.gather(support, order.dim() - 1, index.expand_as(support))
    return ordered.unflatten(order.dim() - 1, (way, shot))  # (..., W, K, ...)


class TemporalCrossTransformer(nn.Module):
    """TRX for one tuple cardinality omega (Perrett et al., CVPR 2021).

    Frame features get a sinusoidal position encoding (x0.1, length 1.5 T) and dropout, then every
    increasing omega-tuple of frames is concatenated (omega*C) and mapped by shared linear key /
    value maps to d_k; keys get a LayerNorm (values do not). For each class, every query tuple p
    attends jointly over all K*|Pi| support tuples (softmax of scaled dot products / sqrt(d_k)) to
    build a query-specific prototype t_p; distance = (1/|Pi|) sum_p ||V q_p - t_p||^2.

    Args:
        dim: frame feature size C.
        frames: T.
        cardinality: omega, frames per tuple.
        out_dim: d_k (1152 in TRX/HyRSM/MoLo).
        dropout: dropout after the position encoding.
    """

    def __init__(
        self, dim: int, frames: int, cardinality: int, out_dim: int = 1152, dropout: float = 0.1
    ):
        super().__init__()
        self.out_dim = out_dim
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("pe", sinusoidal_encoding(int(1.5 * frames), dim), persistent=False)
        tuples = torch.tensor(list(itertools.combinations(range(frames), cardinality)))
        self.register_buffer("tuples", tuples, persistent=False)  # (P, omega)
        self.k_linear = nn.Linear(dim * cardinality, out_dim)
        self.v_linear = nn.Linear(dim * cardinality, out_dim)
        self.norm_k = nn.LayerNorm(out_dim)

    @property
    def num_tuples(self) -> int:
        return self.tuples.shape[0]

    def tuple_features(self, feats: torch.Tensor) -> torch.Tensor:
        """(..., V, T, C) -> (..., V, P, omega*C) after position encoding and dropout."""
        T = feats.shape[-2]
        feats = self.dropout(feats + self.pe[:T])
        tuples = feats[..., self.tuples, :]  # (..., V, P, omega, C)
        return rearrange(tuples, "... p k c -> ... p (k c)")

    def forward(self, support_feats, support_labels, query_feats):
        # support (..., S, T, C), labels (..., S), query (..., Q, T, C) -> (..., Q, W)
        way = episode_way(support_labels)
        s = class_major(
            self.tuple_features(support_feats), support_labels, way
        )  # (..., W, K, P, kC)
        q = self.tuple_features(query_feats)  # (..., Q, P, kC)
        s_k = rearrange(self.norm_k(self.k_linear(s)), "... w k r d -> ... w (k r) d")
        s_v = rearrange(self.v_linear(s), "... w k r d -> ... w (k r) d")
        q_k = self.norm_k(self.k_linear(q))  # (..., Q, P, d)
        q_v = self.v_linear(q)  # (..., Q, P, d)
        scores = torch.einsum("...qpd,...wnd->...qwpn", q_k, s_k) / math.sqrt(self.out_dim)
        attn = scores.softmax(dim=-1)  # (..., Q, W, P, K*P) joint over the class's support tuples
        proto = torch.einsum("...qwpn,...wnd->...qwpd", attn, s_v)  # (..., Q, W, P, d)
        diff = q_v.unsqueeze(-3) - proto  # (..., Q, W, P, d)
        return -diff.pow(2).sum((-2, -1)) / self.num_tuples


class TRX(nn.Module):
    """TRX over several cardinalities; logits averaged over Omega (TRX commit ef0d9b0).

    Args:
        dim: frame feature size C.
        frames: T.
        cardinalities: Omega; (2, 3) is the field default, (2, 3, 4) matches the D2ST appendix.
        out_dim: d_k.
        dropout: dropout after the position encoding.
    """

    def __init__(
        self,
        dim: int,
        frames: int,
        cardinalities: Sequence[int] = (2, 3),
        out_dim: int = 1152,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.heads = nn.ModuleList(
            TemporalCrossTransformer(dim, frames, k, out_dim, dropout) for k in cardinalities
        )

    def forward(self, support_feats, support_labels, query_feats):
        # support (..., S, T, C), labels (..., S), query (..., Q, T, C) -> (..., Q, W)
        logits = [head(support_feats, support_labels, query_feats) for head in self.heads]
        return torch.stack(logits, 0).mean(0)


# name -> (class, constructor keywords it takes from build_metric's arguments)
METRICS: dict[str, tuple[type[nn.Module], tuple[str, ...]]] = {
    "bimhm": (BiMHM, ()),
    "otam": (OTAM, ("lam",)),
    "trx": (TRX, ("dim", "frames", "cardinalities", "out_dim")),
}


def build_metric(
    name: str,
    *,
    dim: int,
    frames: int,
    otam_lambda: float = 0.5,
    trx_cardinalities: Sequence[int] = (2, 3),
    trx_dim: int = 1152,
) -> nn.Module:
    """Build a metric from the ``METRICS`` table by name (the one place that maps names)."""
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; choose from {sorted(METRICS)}")
    cls, keys = METRICS[name]
    available = {
        "lam": otam_lambda,
        "dim": dim,
        "frames": frames,
        "cardinalities": tuple(trx_cardinalities),
        "out_dim": trx_dim,
    }
    return cls(**{k: available[k] for k in keys})
