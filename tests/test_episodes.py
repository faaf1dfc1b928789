"""Episodes: shape, disjointness, purity in (seed, index), distinct ranks, nested shots."""

from __future__ import annotations

import numpy as np
import pytest

from d2st.data.episodes import EpisodeSampler

LABELS = np.repeat(np.arange(8), 7)  # 8 classes x 7 videos


def _key(ep):
    return (tuple(ep.classes), tuple(ep.support), tuple(ep.query))


def test_episode_structure():
    s = EpisodeSampler(LABELS, way=5, shot=2, query=3, seed=0)
    for g in range(20):
        ep = s.episode(g)
        assert len(set(ep.classes.tolist())) == 5
        assert ep.support.shape == (10,) and ep.query.shape == (15,)
        assert not set(ep.support) & set(ep.query)
        assert (LABELS[ep.support] == ep.classes[ep.support_labels]).all()
        assert (LABELS[ep.query] == ep.classes[ep.query_labels]).all()
        assert sorted(ep.support_labels.tolist()) == sorted(list(range(5)) * 2)


def test_episode_is_pure_function_of_seed_and_index():
    a = EpisodeSampler(LABELS, 5, 1, 1, seed=3)
    b = EpisodeSampler(LABELS, 5, 1, 1, seed=3)
    forward = [_key(a.episode(g)) for g in range(10)]
    backward = [_key(b.episode(g)) for g in reversed(range(10))][::-1]
    assert forward == backward
    other = EpisodeSampler(LABELS, 5, 1, 1, seed=4)
    assert forward != [_key(other.episode(g)) for g in range(10)]
    assert len(set(forward)) == 10


def test_ranks_get_distinct_episodes_covering_the_single_rank_stream():
    s = EpisodeSampler(LABELS, 5, 1, 1, seed=0)
    r0 = [s.rank_index(i, 0, 2) for i in range(6)]
    r1 = [s.rank_index(i, 1, 2) for i in range(6)]
    assert not set(r0) & set(r1)
    assert sorted(r0 + r1) == list(range(12))
    eps0 = {_key(s.rank_episode(i, 0, 2)) for i in range(6)}
    eps1 = {_key(s.rank_episode(i, 1, 2)) for i in range(6)}
    assert not eps0 & eps1


def test_shot_sweep_shares_classes_and_queries_with_nested_supports():
    one = EpisodeSampler(LABELS, 5, 1, 1, seed=0)
    five = EpisodeSampler(LABELS, 5, 5, 1, seed=0)
    for g in range(5):
        a, b = one.episode(g), five.episode(g)
        assert (a.classes == b.classes).all() and (a.query == b.query).all()
        assert set(a.support) <= set(b.support)


def test_small_classes_are_skipped_and_too_few_classes_fail():
    labels = np.concatenate([np.repeat(np.arange(5), 3), [9]])
    s = EpisodeSampler(labels, 5, 1, 1, seed=0)
    assert s.skipped_classes == [9]
    with pytest.raises(ValueError, match="5 classes"):
        EpisodeSampler(labels, 5, 2, 2, seed=0)


def test_stream_seeds_differ_by_episode_and_purpose():
    s = EpisodeSampler(LABELS, 5, 1, 1, seed=0)
    seeds = {s.stream_seed(g, p) for g in range(50) for p in range(3)}
    assert len(seeds) == 150 and all(0 <= x < 2**63 for x in seeds)
