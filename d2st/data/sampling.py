"""Frame index rules (which frames a shard stores) and the per-clip choice among them.

A shard stores ``T * F`` frames per video, segment-major: position ``i * F + k`` is candidate
``k`` (0..F-1) of output frame ``i`` (0..T-1). ``F = frames_per_segment``; ``F = 1`` (the default)
stores exactly the T frames that are used, as before issue 13. With ``F > 1`` the clip given to
the model picks one candidate per output frame:

- at training time at random (a ``torch.Generator``), which is the authors' temporal jitter;
- at test time either at random as well (theirs for segment sampling) or the centre candidate
  ``k = F // 2`` (deterministic evaluation; for odd F it is exactly the ``F = 1`` frame).

Rules (:data:`FRAME_RULES`), after the authors' ``_interval_based_sampling``
(``qizhongtan/D2ST-Adapter``, ``datasets/base/base_dataset.py``):

- ``uniform`` (SSv2, HMDB51, UCF101): theirs draws frame i uniformly from segment i of
  ``s = floor(n / 8)`` frames, at training and at test time. Ours splits the n frames into
  ``T * F`` equal sub-segments and stores the centre of each,
  ``index_j = floor((j + 0.5) * n / (T * F))``; F = 1 gives the segment centres
  ``floor((i + 0.5) * n / T)`` (the shards' rule before issue 13), and a random candidate per
  segment approximates their random offset. Jitter is per segment.
- ``kinetics100``: theirs takes a clip of ``l = T * 35 * fps / 12`` frames (capped at
  ``floor(n / T) * T`` when longer than the video), ``max_start = max(n - l + 1, 0)``, a start
  ``U[0, max_start]`` in training and ``max_start / 2`` at test, and the indices
  ``linspace(start, start + l - 35, T)`` (float32) clamped to ``[0, n - 1]`` and truncated. The
  last ~35 frames are never used (a 100-frame video at test: 2 11 19 28 37 46 54 63). Ours
  stores F clips with starts ``max_start * (2k + 1) / (2F)`` (F = 1: their test start exactly);
  jitter picks one start per clip, shared by all T frames, as their random start does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


def uniform_indices(num_frames: int, T: int, F: int = 1, fps: float | None = None) -> list[int]:
    """Centres of ``T * F`` equal sub-segments: ``floor((j + 0.5) * n / (T * F))``, j < T*F.

    Integer arithmetic; non-decreasing; frames repeat when ``n < T * F``.
    """
    _check(num_frames, T, F)
    m = T * F
    return [((2 * j + 1) * num_frames) // (2 * m) for j in range(m)]


K100_INTERVAL, K100_TARGET_FPS = 35, 12  # their DATA.SAMPLING_RATE and TARGET_FPS for K100


def kinetics100_indices(num_frames: int, T: int, F: int = 1, fps: float | None = None) -> list[int]:
    """Their Kinetics-100 linspace rule; F clips at evenly spread starts, segment-major.

    Args:
        num_frames: n, frames in the video.
        T: frames per clip.
        F: candidate clips (frames per segment).
        fps: the video's average frame rate (their ``vr.get_avg_fps()``); required.
    """
    _check(num_frames, T, F)
    if fps is None or not fps > 0:
        raise ValueError(f"frame rule kinetics100: needs the video's fps > 0, got {fps!r}")
    n = num_frames
    length = T * K100_INTERVAL * fps / K100_TARGET_FPS
    if length > n:
        length = n // T * T
    max_start = max(n - length + 1, 0)
    clips = []
    for k in range(F):
        start = max_start * (2 * k + 1) / (2 * F)
        end = start + length - K100_INTERVAL
        idx = torch.linspace(start, end, T, dtype=torch.float32)
        clips.append(torch.clamp(idx, 0, n - 1).long().tolist())
    return [clips[k][i] for i in range(T) for k in range(F)]


@dataclass(frozen=True)
class FrameRule:
    """One row of the frame-rule table.

    Attributes:
        indices: ``f(num_frames, T, F, fps) -> T * F`` stored indices, segment-major.
        jitter: ``segment`` (an independent candidate per output frame) or ``clip`` (one
            candidate index for all T frames of a clip).
        test: the authors' test-time choice: ``random`` or ``centre``.
        text: the rule as stored in a shard's metadata.
    """

    indices: Callable[..., list[int]]
    jitter: str
    test: str
    text: str


FRAME_RULES: dict[str, FrameRule] = {
    "uniform": FrameRule(
        uniform_indices,
        "segment",
        "random",
        "uniform: index_j = floor((j + 0.5) * n / (T * F)), j = 0..T*F-1",
    ),
    "kinetics100": FrameRule(
        kinetics100_indices,
        "clip",
        "centre",
        "kinetics100: l = T*35*fps/12 (<= floor(n/T)*T), start_k = max(n-l+1,0)*(2k+1)/(2F), "
        "linspace(start_k, start_k + l - 35, T) clamped, truncated",
    ),
}
DATASET_RULES = {"kinetics100": "kinetics100"}  # the authors' rule per dataset; others: uniform
FRAME_CHOICES = ("official", "random", "centre")  # test time; official = the rule's ``test``


def official_rule(dataset: str) -> str:
    """The authors' frame rule for ``dataset`` (a key of :data:`FRAME_RULES`)."""
    return DATASET_RULES.get(dataset, "uniform")


def _rule(rule: str) -> FrameRule:
    if rule not in FRAME_RULES:
        raise ValueError(f"data.frame_rule: unknown {rule!r}; allowed: {list(FRAME_RULES)}")
    return FRAME_RULES[rule]


def _check(num_frames: int, T: int, F: int) -> None:
    if num_frames < 1 or T < 1 or F < 1:
        raise ValueError(f"need num_frames, T, frames_per_segment >= 1, got {num_frames}, {T}, {F}")


def frame_indices(
    rule: str, num_frames: int, T: int, F: int = 1, fps: float | None = None
) -> list[int]:
    """The ``T * F`` frame indices a shard stores for one video (segment-major)."""
    return _rule(rule).indices(num_frames, T, F, fps)


def train_choice(
    B: int, T: int, F: int, generator: torch.Generator, rule: str = "uniform"
) -> torch.Tensor:
    """Stored positions (B, T) of the frames used at training: one random candidate per
    segment (``jitter="segment"``) or per clip (``"clip"``). F = 1: ``arange(T)`` for every clip.
    """
    base = torch.arange(T) * F  # (T,) first candidate of each segment
    if _rule(rule).jitter == "segment":
        k = torch.randint(0, F, (B, T), generator=generator)
    else:
        k = torch.randint(0, F, (B, 1), generator=generator).expand(B, T)
    return base + k


def eval_choice(
    B: int,
    T: int,
    F: int,
    choice: str = "official",
    rule: str = "uniform",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Stored positions (B, T) of the frames used at test time.

    Args:
        choice: ``centre`` (candidate F // 2, deterministic), ``random`` (as in training; needs
            ``generator``), or ``official`` (the rule's ``test`` column: random for ``uniform``,
            centre for ``kinetics100``).
    """
    if choice not in FRAME_CHOICES:
        raise ValueError(f"eval.frame_choice: unknown {choice!r}; allowed: {list(FRAME_CHOICES)}")
    if choice == "official":
        choice = _rule(rule).test
    if choice == "centre" or F == 1:
        return (torch.arange(T) * F + F // 2).expand(B, T)
    if generator is None:
        raise ValueError("eval.frame_choice: random needs a torch.Generator")
    return train_choice(B, T, F, generator, rule)


def pick_frames(clips: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Select frames: clips (B, T*F, ...) , positions (B, T) -> (B, T, ...)."""
    if positions.shape[0] != clips.shape[0]:
        raise ValueError(f"positions for {positions.shape[0]} clips, got {clips.shape[0]} clips")
    rows = torch.arange(clips.shape[0])[:, None]  # (B, 1)
    return clips[rows, positions]
