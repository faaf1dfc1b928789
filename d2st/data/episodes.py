"""N-way K-shot episodes drawn from the labels of a shard set, as pure functions of (seed, index).

Episode ``g`` of seed ``s`` is built from its own random generator seeded with ``(s, g)``
(``numpy.random.SeedSequence``), so any episode can be regenerated without replaying the ones
before it: a resumed run continues on exactly the episodes it would have seen, and every method
evaluated with the same seed is scored on the same test episodes.

Data-parallel ranks. The official code most likely gives both DDP ranks the same training
episodes: both ranks seed torch identically, the DataLoader workers' Python ``random`` states are
derived from it, and episodes depend only on that state (the D2ST-Adapter repository's DDP
training loop). Here the global episode stream is indexed once and split between ranks: rank
``r`` of ``world`` takes global episodes ``r, r + world, r + 2*world, ...``
(:meth:`EpisodeSampler.rank_index`), so ranks never share an episode and a run with 2 ranks
trains on the same episodes as one with 1 rank.

Layout of one episode: classes are drawn without replacement (their order defines the episode
labels 0..W-1); within each class, a random permutation of its videos gives the Q queries first
and the K supports next. Because queries come first, the episodes of shots 1..5 with the same
seed share classes and queries and have nested supports (a cleaner shot sweep).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Episode:
    """Video indices (into the shard set) and labels of one episode.

    Attributes:
        index: global episode index g.
        classes: (W,) shard label of each episode class; episode label w is ``classes[w]``.
        support: (W*K,) video indices, class-major (K supports of class 0, then class 1, ...).
        support_labels: (W*K,) episode labels in 0..W-1.
        query: (W*Q,) video indices, class-major.
        query_labels: (W*Q,) episode labels.
    """

    index: int
    classes: np.ndarray
    support: np.ndarray
    support_labels: np.ndarray
    query: np.ndarray
    query_labels: np.ndarray


class EpisodeSampler:
    """Seeded N-way K-shot episodes with Q queries per class.

    Args:
        labels: (N,) int shard label of every video.
        way: W classes per episode.
        shot: K supports per class.
        query: Q queries per class.
        seed: the episode stream's seed.

    Classes with fewer than K + Q videos are never drawn (listed in ``.skipped_classes``).
    """

    def __init__(self, labels, way: int, shot: int, query: int, seed: int):
        labels = np.asarray(labels, dtype=np.int64)
        self.way, self.shot, self.query, self.seed = way, shot, query, int(seed)
        classes = np.unique(labels)
        self.videos = {int(c): np.flatnonzero(labels == c) for c in classes}
        self.classes = np.array([c for c in classes if len(self.videos[int(c)]) >= shot + query])
        self.skipped_classes = sorted(set(classes.tolist()) - set(self.classes.tolist()))
        if len(self.classes) < way:
            raise ValueError(
                f"{way}-way {shot}-shot {query}-query episodes need {way} classes with at least "
                f"{shot + query} videos; only {len(self.classes)} have enough"
            )

    def episode(self, index: int) -> Episode:
        """Global episode ``index``: a pure function of (seed, index)."""
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, int(index)]))
        classes = rng.choice(self.classes, size=self.way, replace=False)
        support, query = [], []
        for c in classes:
            videos = self.videos[int(c)]
            picked = videos[rng.permutation(len(videos))[: self.query + self.shot]]
            query.append(picked[: self.query])
            support.append(picked[self.query :])
        episode_labels = np.arange(self.way, dtype=np.int64)
        return Episode(
            index=int(index),
            classes=classes.astype(np.int64),
            support=np.concatenate(support),
            support_labels=np.repeat(episode_labels, self.shot),
            query=np.concatenate(query),
            query_labels=np.repeat(episode_labels, self.query),
        )

    @staticmethod
    def rank_index(local_index: int, rank: int = 0, world: int = 1) -> int:
        """Global episode index of the ``local_index``-th episode of ``rank`` among ``world``."""
        return int(local_index) * world + rank

    def rank_episode(self, local_index: int, rank: int = 0, world: int = 1) -> Episode:
        """Episode ``local_index`` of a rank: a pure function of (seed, local_index, rank, world)."""
        return self.episode(self.rank_index(local_index, rank, world))

    def stream_seed(self, index: int, purpose: int) -> int:
        """A 63-bit seed for other randomness of episode ``index`` (augmentation, dropout ...)."""
        ss = np.random.SeedSequence([self.seed, int(index), int(purpose)])
        return int(ss.generate_state(1, dtype=np.uint64)[0]) & ((1 << 63) - 1)
