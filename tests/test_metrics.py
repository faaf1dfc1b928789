"""Metrics against brute-force definitions on tiny episodes (definitions of HyRSM, OTAM and TRX)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from d2st.models.metrics import METRICS, OTAM, TRX, BiMHM, build_metric, otam_cumulative_distance


def _episode(way=3, shot=2, query=4, frames=5, dim=6, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    support = torch.randn(way * shot, frames, dim, generator=g, dtype=dtype)
    labels = torch.arange(way).repeat_interleave(shot)
    queries = torch.randn(query, frames, dim, generator=g, dtype=dtype)
    return support, labels, queries


def _cos_dist(a, b):
    return 1.0 - float(torch.dot(a, b) / (a.norm() * b.norm()))


def _proto(support, labels, c):
    return support[labels == c].mean(0)


# ---------------------------------------------------------------- OTAM: paths enumerated


def _allowed_paths(L, M):
    """Every path of the padded grid (columns 0..M+1) that OTAM's recurrence sums over.

    A path starts at any (l, 0) (column 0 costs 0 and is free), ends at (L-1, M+1), and moves:
    right (l, m) -> (l, m+1); diagonal (l-1, m-1) -> (l, m) for m >= 1; down (l-1, m) -> (l, m)
    only in column 1 and in the right padding column M+1. Row 0 can only be entered at (0, 0).
    """
    paths = []

    def extend(path):
        r, m = path[-1]
        if (r, m) == (L - 1, M + 1):
            paths.append(list(path))
            return
        nxt = []
        if m + 1 <= M + 1:
            nxt.append((r, m + 1))
        if r + 1 < L and m + 1 <= M + 1:
            nxt.append((r + 1, m + 1))
        if r + 1 < L and m in (1, M + 1):
            nxt.append((r + 1, m))
        for cell in nxt:
            extend(path + [cell])

    for start in range(L):
        extend([(start, 0)])
    return paths


def _path_costs(D):
    L, M = D.shape
    padded = torch.nn.functional.pad(D, (1, 1))
    return torch.stack([sum(padded[r, m] for r, m in p) for p in _allowed_paths(L, M)])


@pytest.mark.parametrize("shape", [(3, 3), (4, 3), (3, 5), (1, 4), (4, 1)])
def test_otam_hard_limit_is_min_over_monotone_paths(shape):
    D = torch.rand(*shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2
    brute = _path_costs(D).min()
    got = otam_cumulative_distance(D, lam=1e-4)
    assert abs(float(got) - float(brute)) < 1e-3 * (1 + len(_allowed_paths(*shape)))


@pytest.mark.parametrize("lam", [0.1, 0.5, 2.0])
def test_otam_soft_value_is_softmin_over_paths(lam):
    D = torch.rand(4, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    brute = -lam * torch.logsumexp(-_path_costs(D) / lam, 0)
    torch.testing.assert_close(otam_cumulative_distance(D, lam), brute)


def test_otam_metric_is_both_directions_on_prototypes():
    support, labels, queries = _episode()
    logits = OTAM(lam=0.3)(support, labels, queries)
    for qi in range(queries.shape[0]):
        for c in range(3):
            p = _proto(support, labels, c)
            D = torch.tensor(
                [[_cos_dist(p[i], queries[qi, j]) for j in range(5)] for i in range(5)],
                dtype=torch.float64,
            )
            want = otam_cumulative_distance(D, 0.3) + otam_cumulative_distance(D.T, 0.3)
            assert math.isclose(float(logits[qi, c]), -float(want), rel_tol=1e-9, abs_tol=1e-9)


def test_otam_prefers_the_time_ordered_copy():
    """A query matches its own frame order better than the time-reversed order (OTAM is ordered)."""
    _, _, q = _episode(query=1, frames=6, dim=16, seed=3)
    support = torch.cat([q, q.flip(1)])  # class 0: same order, class 1: reversed
    logits = OTAM()(support, torch.tensor([0, 1]), q)
    assert logits[0, 0] > logits[0, 1]
    assert torch.allclose(
        BiMHM()(support, torch.tensor([0, 1]), q)[0, 0],
        BiMHM()(support, torch.tensor([0, 1]), q)[0, 1],
    )


# ---------------------------------------------------------------- Bi-MHM: python loops


def test_bimhm_against_python_loops():
    support, labels, queries = _episode()
    logits = BiMHM()(support, labels, queries)
    T = support.shape[1]
    for qi in range(queries.shape[0]):
        for c in range(3):
            p = _proto(support, labels, c)
            D = [[_cos_dist(p[i], queries[qi, j]) for j in range(T)] for i in range(T)]
            dist = sum(min(row) for row in D) + sum(
                min(D[i][j] for i in range(T)) for j in range(T)
            )
            assert math.isclose(float(logits[qi, c]), -dist, rel_tol=1e-9, abs_tol=1e-9)


# ---------------------------------------------------------------- TRX: naive loops


@pytest.mark.parametrize("cards", [(2,), (2, 3), (2, 3, 4)])
def test_trx_tuple_counts_are_binomials(cards):
    trx = TRX(dim=4, frames=6, cardinalities=cards, out_dim=8)
    assert [h.num_tuples for h in trx.heads] == [math.comb(6, k) for k in cards]
    for h, k in zip(trx.heads, cards):
        assert all(list(t) == sorted(set(t)) for t in h.tuples.tolist())
        assert h.tuples.shape[1] == k


def _trx_naive(trx, support, labels, queries):
    way = int(labels.max()) + 1
    out = torch.zeros(queries.shape[0], way, dtype=support.dtype)
    for head in trx.heads:
        T, C = support.shape[1:]
        pe = head.pe[:T]
        tuples = [list(t) for t in itertools.combinations(range(T), head.tuples.shape[1])]

        def tup(video, pe=pe, tuples=tuples):
            v = video + pe
            return [torch.cat([v[i] for i in t]) for t in tuples]

        for qi in range(queries.shape[0]):
            qt = tup(queries[qi])
            for c in range(way):
                st = [x for s in range(support.shape[0]) if labels[s] == c for x in tup(support[s])]
                keys = [head.norm_k(head.k_linear(x)) for x in st]
                vals = [head.v_linear(x) for x in st]
                total = 0.0
                for x in qt:
                    qk = head.norm_k(head.k_linear(x))
                    scores = torch.stack([torch.dot(qk, k) / math.sqrt(head.out_dim) for k in keys])
                    w = torch.softmax(scores, 0)
                    proto = sum(wi * v for wi, v in zip(w, vals))
                    total = total + ((head.v_linear(x) - proto) ** 2).sum()
                out[qi, c] += -total / len(tuples) / len(trx.heads)
    return out


def test_trx_against_naive_loops():
    support, labels, queries = _episode(way=2, shot=2, query=2, frames=4, dim=3)
    trx = TRX(dim=3, frames=4, cardinalities=(2, 3), out_dim=5).double().eval()
    with torch.no_grad():
        torch.testing.assert_close(
            trx(support, labels, queries), _trx_naive(trx, support, labels, queries)
        )


# ---------------------------------------------------------------- properties shared by all


def _make(name, dim, frames):
    m = build_metric(name, dim=dim, frames=frames, trx_dim=16).double().eval()
    return m


@pytest.mark.parametrize("name", sorted(METRICS))
def test_support_class_permutation_permutes_logits(name):
    support, labels, queries = _episode()
    metric = _make(name, 6, 5)
    perm = torch.tensor([2, 0, 1])  # new label of old class c is perm[c]
    order = torch.randperm(support.shape[0], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        base = metric(support, labels, queries)
        moved = metric(support[order], perm[labels][order], queries)
    torch.testing.assert_close(moved[:, perm], base)


@pytest.mark.parametrize("name", sorted(METRICS))
def test_query_identical_to_a_support_is_classified_as_its_class(name):
    support, labels, _ = _episode(way=4, shot=1, frames=5, dim=16, seed=5)
    metric = _make(name, 16, 5)
    with torch.no_grad():
        logits = metric(support, labels, support.clone())
    assert logits.argmax(-1).tolist() == labels.tolist()


@pytest.mark.parametrize("name", sorted(METRICS))
def test_batched_episodes_equal_one_by_one(name):
    eps = [_episode(seed=s) for s in range(3)]
    metric = _make(name, 6, 5)
    with torch.no_grad():
        batched = metric(*(torch.stack(x) for x in zip(*eps)))
        single = torch.stack([metric(*e) for e in eps])
    torch.testing.assert_close(batched, single)


@pytest.mark.parametrize("name", sorted(METRICS))
def test_logits_shape_and_gradients(name):
    support, labels, queries = _episode(dtype=torch.float32)
    support.requires_grad_(True)
    metric = build_metric(name, dim=6, frames=5, trx_dim=16)
    logits = metric(support, labels, queries)
    assert logits.shape == (4, 3) and torch.isfinite(logits).all()
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 0])).backward()
    assert support.grad is not None and support.grad.abs().sum() > 0
    for p in metric.parameters():
        assert p.grad is not None


def test_unknown_metric_is_named():
    with pytest.raises(ValueError, match="nope"):
        build_metric("nope", dim=4, frames=4)
