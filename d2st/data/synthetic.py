"""Synthetic few-shot motion benchmark: numpy-rendered clips encoded by ffmpeg into real containers.

Classes are defined by *motion* only: appearance (shape, two-tone colours, background,
size, speed, start, amplitude) is drawn per video by :func:`sample_appearance`, which never sees the
class. A class is a *motion program* mapping that appearance to per-frame object states
``(x, y, size, angle, opacity)``. The reversed member of every reversed pair is the same program with
the state sequence flipped in time, so the two classes have identical per-frame distributions and only
temporal order tells them apart (like SSv2 "pushing left to right" vs "right to left").

Every reversal kind among the test pairs has a base-class analogue (the prototype's rotation pair stayed
at chance when no base class rotated). See docs/SYNTHETIC.md.

Coordinates: x right, y down, both in frame units [0, 1]; ``size`` is the object's half-extent in frame
units; ``angle`` is in radians, positive = clockwise on screen; ``opacity`` in [0, 1].
"""

from __future__ import annotations

import csv
import os
import zlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SHAPES = ("square", "disc", "triangle", "cross")
BACKGROUNDS = ("plain", "noise", "stripes", "checker")
CONTAINERS = ("mp4", "webm", "avi")
PARTITIONS = ("train", "val", "test")
GEOMETRY_FIELDS = ("x", "y", "size", "cos", "sin", "opacity")
FPS = 8
SUPERSAMPLE = 2

# State layout: (n_objects, T, 5) with columns below.
X, Y, SIZE, ANGLE, OPACITY = range(5)


# ----------------------------------------------------------------------------------------------
# appearance: drawn per video, never from the class
# ----------------------------------------------------------------------------------------------


@dataclass
class Appearance:
    """Everything random about one video that is not its motion class.

    The ``speed``/``amplitude``/``phase``/``direction``/``center``/``jitter`` fields are generic
    uniform draws that each motion program maps to its own path length, radius, etc.
    """

    shape: str
    color_a: np.ndarray  # (3,) float RGB in [0,1], object body
    color_b: np.ndarray  # (3,) float RGB, the object's front half (makes rotation visible)
    background: str
    bg_a: np.ndarray  # (3,)
    bg_b: np.ndarray  # (3,)
    bg_period: float  # frame units (stripes / checker)
    bg_angle: float  # radians (stripes)
    bg_grid: np.ndarray  # (4, 4, 3) low-res colour grid (smooth noise)
    size: float  # base half-extent, frame units
    speed: float  # [0, 1]
    amplitude: float  # [0, 1]
    phase: float  # [0, 1)
    direction: float  # radians, a random drift direction
    angle0: float  # radians, initial orientation
    center: np.ndarray  # (2,) in [0.38, 0.62]
    jitter: np.ndarray  # (T, 2) standard normal


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    """HSV (all in [0,1]) -> RGB (3,) float."""
    i = int(h * 6.0) % 6
    f = h * 6.0 - int(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    return np.array(
        [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i], dtype=np.float64
    )


def sample_appearance(rng: np.random.Generator, frames: int) -> Appearance:
    """Draw one video's appearance. Takes no class on purpose: appearance is class-independent.

    Args:
        rng: the video's generator (see :func:`video_seed`).
        frames: number of rendered frames (length of the per-frame jitter).
    """
    hue = (rng.integers(6) + rng.uniform(-0.06, 0.06)) / 6.0 % 1.0  # 6 hue buckets
    color_a = _hsv(hue, rng.uniform(0.65, 1.0), rng.uniform(0.8, 1.0))
    color_b = _hsv((hue + 0.5) % 1.0, rng.uniform(0.2, 0.8), rng.uniform(0.85, 1.0))
    bg_hue = rng.uniform()
    bg_a = _hsv(bg_hue, rng.uniform(0.0, 0.5), rng.uniform(0.12, 0.45))
    bg_b = np.clip(bg_a + rng.uniform(0.06, 0.14) * rng.choice([-1.0, 1.0]), 0.0, 1.0)
    grid = np.clip(bg_a + rng.uniform(-0.12, 0.12, size=(4, 4, 3)), 0.0, 1.0)
    return Appearance(
        shape=str(SHAPES[rng.integers(len(SHAPES))]),
        color_a=color_a,
        color_b=color_b,
        background=str(BACKGROUNDS[rng.integers(len(BACKGROUNDS))]),
        bg_a=bg_a,
        bg_b=bg_b,
        bg_period=float(rng.uniform(0.12, 0.3)),
        bg_angle=float(rng.uniform(0, np.pi)),
        bg_grid=grid,
        size=float(rng.uniform(0.09, 0.14)),
        speed=float(rng.uniform()),
        amplitude=float(rng.uniform()),
        phase=float(rng.uniform()),
        direction=float(rng.uniform(0, 2 * np.pi)),
        angle0=float(rng.uniform(0, 2 * np.pi)),
        center=rng.uniform(0.38, 0.62, size=2),
        jitter=rng.standard_normal((frames, 2)),
    )


# ----------------------------------------------------------------------------------------------
# motion programs: (t (T,) in [0,1], appearance) -> states (n_objects, T, 5)
# ----------------------------------------------------------------------------------------------


def _states(t, a: Appearance, x, y, size=None, angle=None, opacity=None) -> np.ndarray:
    """Stack per-frame arrays (or scalars) for one object into (1, T, 5)."""
    full = np.ones_like(t)
    cols = [
        x * full,
        y * full,
        (a.size if size is None else size) * full,
        (a.angle0 if angle is None else angle) * full,
        (1.0 if opacity is None else opacity) * full,
    ]
    return np.stack(cols, axis=-1)[None]


def _path_length(a: Appearance) -> float:
    return 0.3 + 0.18 * a.speed


def translate(direction_deg: float) -> Callable:
    """Straight constant-speed motion through the centre region, ``direction_deg`` on screen (y down)."""

    def program(t, a):
        d = np.array([np.cos(np.radians(direction_deg)), np.sin(np.radians(direction_deg))])
        p = a.center[:, None] + (t - 0.5)[None] * _path_length(a) * d[:, None]
        return _states(t, a, p[0], p[1])

    return program


def _tri(s):
    """Triangle wave with period 1, range [-1, 1]."""
    return 2.0 * np.abs(2.0 * (s % 1.0) - 1.0) - 1.0


def zigzag(t, a):
    """Rightward travel with a 2-cycle vertical triangle wave."""
    x = a.center[0] + (t - 0.5) * _path_length(a)
    y = a.center[1] + (0.07 + 0.06 * a.amplitude) * _tri(2.0 * t + a.phase)
    return _states(t, a, x, y)


def arc(t, a):
    """Rightward travel along an upward arc (a throw)."""
    x = a.center[0] + (t - 0.5) * _path_length(a)
    y = a.center[1] + 0.1 - (0.14 + 0.08 * a.amplitude) * np.sin(np.pi * t)
    return _states(t, a, x, y)


def grow(t, a):
    """In-place growth from ~0.55x to ~1.5x the base size."""
    lo, hi = 0.55 * a.size, (1.3 + 0.3 * a.speed) * a.size
    return _states(t, a, a.center[0], a.center[1], size=lo + (hi - lo) * t)


def fade_in(t, a):
    """In-place opacity ramp 0.1 -> 1."""
    return _states(t, a, a.center[0], a.center[1], opacity=0.1 + 0.9 * t)


def _spin(a: Appearance) -> float:
    """Total clockwise turn over the clip (0.8 pi .. 1.3 pi)."""
    return (0.8 + 0.5 * a.speed) * np.pi


def spin_drift(t, a):
    """Clockwise spin while drifting in a random direction (rotation is the only class cue)."""
    d = np.array([np.cos(a.direction), np.sin(a.direction)])
    p = a.center[:, None] + (t - 0.5)[None] * 0.22 * d[:, None]
    return _states(t, a, p[0], p[1], angle=a.angle0 + _spin(a) * t)


def rotate(t, a):
    """Clockwise rotation in place."""
    return _states(t, a, a.center[0], a.center[1], angle=a.angle0 + _spin(a) * t)


def _radius(a: Appearance) -> float:
    return 0.15 + 0.08 * a.amplitude


def orbit(t, a):
    """Clockwise circular path (fixed orientation) around the centre."""
    phi = 2 * np.pi * a.phase + (1.0 + 0.5 * a.speed) * np.pi * t
    c = 0.5 + 0.5 * (a.center - 0.5)
    r = _radius(a)
    return _states(t, a, c[0] + r * np.cos(phi), c[1] + r * np.sin(phi))


def spiral_in(t, a):
    """Clockwise inward spiral: angular position turns while the radius shrinks to ~0."""
    phi = 2 * np.pi * a.phase + (1.0 + 0.5 * a.speed) * np.pi * t
    c = 0.5 + 0.5 * (a.center - 0.5)
    r = _radius(a) * (1.0 - 0.9 * t)
    return _states(t, a, c[0] + r * np.cos(phi), c[1] + r * np.sin(phi))


def approach(t, a):
    """Coming closer: grows while sliding down the frame (a ground-plane perspective cue)."""
    lo, hi = 0.5 * a.size, (1.3 + 0.3 * a.speed) * a.size
    y = a.center[1] - 0.12 + 0.24 * t
    return _states(t, a, a.center[0], y, size=lo + (hi - lo) * t)


def meet(axis: int) -> Callable:
    """Two identical objects moving towards each other along ``axis`` (0 = x, 1 = y) until they touch."""

    def program(t, a):
        c = 0.5 + 0.4 * (a.center - 0.5)
        half = (0.22 + 0.08 * a.amplitude) * (1 - t) + 1.0 * a.size * t
        objs = []
        for sign in (-1.0, 1.0):
            p = np.repeat(c[:, None], len(t), axis=1)
            p[axis] = c[axis] + sign * half
            objs.append(_states(t, a, p[0], p[1], angle=a.angle0 + (0 if sign < 0 else np.pi)))
        return np.concatenate(objs, axis=0)

    return program


def blink(t, a):
    """In-place on/off flashing (two cycles), random phase."""
    on = (np.floor(4.0 * t + 2.0 * a.phase) % 2) == 0
    return _states(t, a, a.center[0], a.center[1], opacity=np.where(on, 1.0, 0.15))


def bounce(t, a):
    """Ball bouncing on a floor while drifting sideways (direction random)."""
    side = 1.0 if np.cos(a.direction) >= 0 else -1.0
    x = a.center[0] + side * (t - 0.5) * 0.25
    y = 0.78 - (0.3 + 0.12 * a.amplitude) * np.abs(np.sin(np.pi * (1.5 * t + a.phase)))
    return _states(t, a, x, y)


def wobble(t, a):
    """In-place rocking rotation (1.5 cycles)."""
    amp = (0.25 + 0.2 * a.amplitude) * np.pi
    return _states(
        t,
        a,
        a.center[0],
        a.center[1],
        angle=a.angle0 + amp * np.sin(2 * np.pi * (1.5 * t + a.phase)),
    )


def figure8(t, a):
    """Lissajous figure-eight path (one loop)."""
    s = 2 * np.pi * (t + a.phase)
    r = _radius(a)
    return _states(t, a, 0.5 + r * np.sin(s), 0.5 + 0.5 * r * np.sin(2 * s))


def sway(t, a):
    """Horizontal back-and-forth oscillation (1.5 cycles)."""
    x = a.center[0] + (0.1 + 0.08 * a.amplitude) * np.sin(2 * np.pi * (1.5 * t + a.phase))
    return _states(t, a, x, a.center[1])


def pulse(t, a):
    """In-place size oscillation (2 cycles)."""
    s = a.size * (1.0 + (0.25 + 0.15 * a.amplitude) * np.sin(2 * np.pi * (2 * t + a.phase)))
    return _states(t, a, a.center[0], a.center[1], size=s)


def shake(t, a):
    """Random per-frame jitter of the position around a fixed point."""
    return _states(t, a, a.center[0] + 0.035 * a.jitter[:, 0], a.center[1] + 0.035 * a.jitter[:, 1])


# ----------------------------------------------------------------------------------------------
# the class table
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MotionClass:
    """One class: its program, partition, motion kind, and (for reversed members) its forward twin."""

    name: str
    partition: str  # train | val | test
    kind: str  # translation | rotation | scale | opacity | two_object | orbit
    program: Callable
    reversed: bool = False  # True: the program's states are played backwards
    reverse_of: str = ""  # the other member of a time-reversed pair ("" for singles)


def _pair(fwd: str, rev: str, partition: str, kind: str, program: Callable) -> list[MotionClass]:
    return [
        MotionClass(fwd, partition, kind, program, False, rev),
        MotionClass(rev, partition, kind, program, True, fwd),
    ]


CLASSES: tuple[MotionClass, ...] = tuple(
    # base (train) classes: 9 reversed pairs + 2 singles
    _pair("move_right", "move_left", "train", "translation", translate(0))
    + _pair("move_down", "move_up", "train", "translation", translate(90))
    + _pair("move_downright", "move_upleft", "train", "translation", translate(45))
    + _pair("zigzag_right", "zigzag_left", "train", "translation", zigzag)
    + _pair("grow", "shrink", "train", "scale", grow)
    + _pair("fade_in", "fade_out", "train", "opacity", fade_in)
    + _pair("spin_drift_cw", "spin_drift_ccw", "train", "rotation", spin_drift)
    + _pair("orbit_cw", "orbit_ccw", "train", "orbit", orbit)
    + _pair("merge_vertical", "split_vertical", "train", "two_object", meet(axis=1))
    + [
        MotionClass("blink", "train", "opacity", blink),
        MotionClass("bounce", "train", "translation", bounce),
    ]
    # val classes: 1 pair + 3 singles
    + _pair("arc_right", "arc_left", "val", "translation", arc)
    + [
        MotionClass("wobble", "val", "rotation", wobble),
        MotionClass("figure8", "val", "orbit", figure8),
        MotionClass("sway", "val", "translation", sway),
    ]
    # test (novel) classes: 5 reversed pairs + 2 singles
    + _pair("move_downleft", "move_upright", "test", "translation", translate(135))
    + _pair("rotate_cw", "rotate_ccw", "test", "rotation", rotate)
    + _pair("approach", "recede", "test", "scale", approach)
    + _pair("meet_horizontal", "separate_horizontal", "test", "two_object", meet(axis=0))
    + _pair("spiral_in", "spiral_out", "test", "orbit", spiral_in)
    + [
        MotionClass("pulse", "test", "scale", pulse),
        MotionClass("shake", "test", "translation", shake),
    ]
)
CLASS_BY_NAME = {c.name: c for c in CLASSES}


def classes_in(partition: str) -> list[MotionClass]:
    """Classes of one partition in table order (that order defines ``label_idx``)."""
    return [c for c in CLASSES if c.partition == partition]


def reversed_pairs(partition: str = "test") -> list[tuple[str, str, str]]:
    """``(class_a, class_b, kind)`` for the time-reversed pairs of a partition (a = forward member)."""
    return [(c.reverse_of, c.name, c.kind) for c in classes_in(partition) if c.reversed]


# ----------------------------------------------------------------------------------------------
# rendering
# ----------------------------------------------------------------------------------------------


def motion_states(cls: MotionClass | str, a: Appearance, frames: int) -> np.ndarray:
    """Per-frame object states (n_objects, T, 5) of ``cls`` for appearance ``a``."""
    cls = CLASS_BY_NAME[cls] if isinstance(cls, str) else cls
    t = np.linspace(0.0, 1.0, frames)
    s = np.asarray(cls.program(t, a), dtype=np.float64)  # (n_obj, T, 5)
    s[..., X : Y + 1] = np.clip(s[..., X : Y + 1], 0.02, 0.98)
    return s[:, ::-1].copy() if cls.reversed else s


def _linear_upsample(grid: np.ndarray, n: int) -> np.ndarray:
    """Bilinear upsampling of a (g, g, 3) grid to (n, n, 3), corners aligned."""
    g = grid.shape[0]
    pos = np.linspace(0, g - 1, n)
    lo = np.minimum(np.floor(pos).astype(int), g - 2)
    w = (pos - lo)[:, None]
    rows = grid[lo] * (1 - w[..., None]) + grid[lo + 1] * w[..., None]  # (n, g, 3)
    cols = rows[:, lo] * (1 - w[None]) + rows[:, lo + 1] * w[None]  # (n, n, 3)
    return cols


def render_background(a: Appearance, n: int) -> np.ndarray:
    """Static background (n, n, 3) float at the supersampled resolution ``n``."""
    yy, xx = (np.mgrid[0:n, 0:n] + 0.5) / n
    if a.background == "plain":
        return np.broadcast_to(a.bg_a, (n, n, 3)).copy()
    if a.background == "noise":
        return _linear_upsample(a.bg_grid, n)
    if a.background == "stripes":
        u = xx * np.cos(a.bg_angle) + yy * np.sin(a.bg_angle)
        m = (np.floor(u / a.bg_period) % 2)[..., None]
    else:  # checker
        m = ((np.floor(xx / a.bg_period) + np.floor(yy / a.bg_period)) % 2)[..., None]
    return a.bg_a * (1 - m) + a.bg_b * m


def _shape_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside test in object coordinates (unit half-extent, +u = the object's front)."""
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.82
    if shape == "disc":
        return u * u + v * v <= 1.0
    if shape == "triangle":  # circumradius 1, apex at +u
        return (u >= -0.5) & (np.abs(v) <= (1.0 - u) / np.sqrt(3.0))
    if shape == "cross":
        return ((np.abs(u) <= 1.0) & (np.abs(v) <= 0.36)) | (
            (np.abs(v) <= 1.0) & (np.abs(u) <= 0.36)
        )
    raise ValueError(f"unknown shape {shape!r}")


def render_states(states: np.ndarray, a: Appearance, size: int) -> np.ndarray:
    """Rasterise object states into frames.

    Rendered at ``SUPERSAMPLE``x then box-downsampled (anti-aliasing). Each frame depends only on its
    own state row, so reversing the states reverses the frames exactly.

    Args:
        states: (n_objects, T, 5) from :func:`motion_states`.
        a: the video's appearance.
        size: output side in pixels.

    Returns:
        uint8 (T, size, size, 3).
    """
    n = size * SUPERSAMPLE
    bg = render_background(a, n)
    yy, xx = (np.mgrid[0:n, 0:n] + 0.5) / n
    T = states.shape[1]
    out = np.empty((T, size, size, 3), dtype=np.uint8)
    for i in range(T):
        img = bg.copy()
        for obj in states[:, i]:
            x, y, s, ang, alpha = obj
            dx, dy = xx - x, yy - y
            c, sn = np.cos(ang), np.sin(ang)
            u = (c * dx + sn * dy) / s  # rotate by -angle into object coordinates
            v = (-sn * dx + c * dy) / s
            inside = _shape_mask(a.shape, u, v)
            col = np.where((u > 0)[..., None], a.color_b, a.color_a)
            w = (alpha * inside)[..., None]
            img = img * (1 - w) + col * w
        small = img.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE, 3).mean(axis=(1, 3))
        out[i] = np.clip(np.rint(small * 255.0), 0, 255).astype(np.uint8)
    return out


def geometry_of(states: np.ndarray) -> np.ndarray:
    """Per-frame pretraining targets (T, 6): x, y, size, cos, sin, opacity.

    For two-object classes: the objects' centroid, object 0's size/orientation/opacity.
    """
    xy = states[:, :, X : Y + 1].mean(axis=0)
    o = states[0]
    return np.stack(
        [xy[:, 0], xy[:, 1], o[:, SIZE], np.cos(o[:, ANGLE]), np.sin(o[:, ANGLE]), o[:, OPACITY]],
        axis=-1,
    )


def video_seed(seed: int, class_name: str, index: int) -> np.random.SeedSequence:
    """The seed of one video: depends on the run seed, the class name and the video index only."""
    return np.random.SeedSequence([int(seed), zlib.crc32(class_name.encode()), int(index)])


def render_video(
    class_name: str, seed: int, index: int, size: int = 32, frames: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """Render video ``index`` of a class. Returns (uint8 (T,H,W,3), geometry (T,6))."""
    a = sample_appearance(np.random.default_rng(video_seed(seed, class_name, index)), frames)
    states = motion_states(class_name, a, frames)
    return render_states(states, a, size), geometry_of(states)


# ----------------------------------------------------------------------------------------------
# encoding
# ----------------------------------------------------------------------------------------------

ENCODE_BATCH = 10  # videos encoded by one ffmpeg process (encode_videos)

# Near-lossless, single-threaded, bit-exact settings per container.
_CODEC_ARGS: dict[str, dict] = {
    "mp4": {"vcodec": "libx264", "pix_fmt": "yuv444p", "crf": 2, "preset": "fast", "bf": 0},
    "webm": {
        "vcodec": "libvpx-vp9",
        "pix_fmt": "yuv444p",
        "crf": 4,
        "b:v": 0,
        "deadline": "good",
        "cpu-used": 4,
        "row-mt": 0,
    },
    "avi": {"vcodec": "mpeg4", "pix_fmt": "yuv420p", "q:v": 1},
}


def container_for(index: int) -> str:
    """Containers rotate with the video index (same mix in every class)."""
    return CONTAINERS[index % len(CONTAINERS)]


def encode_video(frames: np.ndarray, path: Path, fps: int = FPS) -> None:
    """Encode uint8 (T,H,W,3) RGB into ``path`` (container from its suffix); atomic rename.

    Args:
        frames: uint8 (T, H, W, 3), H and W even.
        path: destination ending in .mp4, .webm or .avi.
        fps: frame rate written to the container.
    """
    encode_videos([(frames, Path(path))], fps)


def encode_videos(videos: Sequence[tuple[np.ndarray, Path]], fps: int = FPS) -> None:
    """Encode several clips of one shape with one ffmpeg process; each file atomically renamed.

    The clips are concatenated into one raw stream and cut back apart (``split`` + ``trim`` +
    ``setpts``), one output per clip with its container's codec settings. Every encoder sees
    exactly the frames and timestamps it would see alone, under bit-exact flags, so each file
    has the bytes :func:`encode_video` writes for it (tests/test_synthetic.py); only the process
    start (~60 ms of an ffmpeg run) is paid once per batch instead of once per clip.

    Args:
        videos: (uint8 (T, H, W, 3), destination) pairs, all of one (T, H, W).
        fps: frame rate written to the containers.
    """
    import ffmpeg

    if not videos:
        return
    T, H, W, _ = videos[0][0].shape
    if any(f.shape != (T, H, W, 3) for f, _ in videos):
        raise ValueError("encode_videos: every clip of a batch must have one shape (T, H, W, 3)")
    paths = [Path(p) for _, p in videos]
    tmps = [p.with_name(f".{p.stem}.tmp{p.suffix}") for p in paths]
    stream = ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{W}x{H}", framerate=fps)
    parts = stream.split() if len(videos) > 1 else None
    outputs = []
    for i, (path, tmp) in enumerate(zip(paths, tmps, strict=True)):
        clip = stream
        if parts is not None:  # frames i*T .. (i+1)*T - 1 of the stream, timestamps from 0
            clip = parts[i].trim(start_frame=i * T, end_frame=(i + 1) * T).setpts("PTS-STARTPTS")
        outputs.append(
            ffmpeg.output(
                clip,
                str(tmp),
                threads=1,
                fflags="+bitexact",
                **{"flags:v": "+bitexact", "map_metadata": -1},
                **_CODEC_ARGS[path.suffix.lstrip(".")],
            )
        )
    run = ffmpeg.merge_outputs(*outputs).global_args("-nostdin", "-loglevel", "error")
    raw = np.ascontiguousarray(np.concatenate([f for f, _ in videos])).tobytes()
    try:
        run.overwrite_output().run(input=raw, capture_stdout=True, capture_stderr=True)
    except ffmpeg.Error as e:  # pragma: no cover - depends on the local ffmpeg build
        for tmp in tmps:
            tmp.unlink(missing_ok=True)
        names = paths[0].name if len(paths) == 1 else f"{paths[0].name} .. {paths[-1].name}"
        raise RuntimeError(f"ffmpeg failed for {names}: {e.stderr.decode(errors='replace')}") from e
    for tmp, path in zip(tmps, paths, strict=True):
        os.replace(tmp, path)


# ----------------------------------------------------------------------------------------------
# the whole benchmark
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoJob:
    class_name: str
    index: int
    video_id: str
    relpath: str


def video_jobs(videos_per_class: int) -> list[VideoJob]:
    """All videos in table order: class-major, then index."""
    jobs = []
    for c in CLASSES:
        for i in range(videos_per_class):
            vid = f"{c.name}-{i:03d}"
            jobs.append(VideoJob(c.name, i, vid, f"{c.name}/{vid}.{container_for(i)}"))
    return jobs


def _make_batch(args: tuple) -> list[tuple[str, np.ndarray]]:
    """Render a batch of videos and encode them with one ffmpeg process (:func:`encode_videos`)."""
    batch, seed, size, frames, videos_dir = args
    out, clips = [], []
    for job in batch:
        arr, geom = render_video(job.class_name, seed, job.index, size, frames)
        out.append((job.video_id, geom))
        if videos_dir is not None:
            path = Path(videos_dir) / job.relpath
            path.parent.mkdir(parents=True, exist_ok=True)
            clips.append((arr, path))
    encode_videos(clips)
    return out


def _write_csv(path: Path, header: Iterable[str], rows: Iterable[Iterable]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    os.replace(tmp, path)


def generate(
    out: Path,
    seed: int = 0,
    size: int = 32,
    frames: int = 8,
    videos_per_class: int = 30,
    jobs: int = 1,
    progress: bool = True,
) -> dict[str, int]:
    """Write the benchmark to ``out`` (layout in docs/CONTRACTS.md "Synthetic benchmark").

    Deterministic by ``seed`` whatever ``jobs`` is: every video has its own seed.

    Args:
        out: output folder (created).
        seed: run seed.
        size: frame side in pixels (even, for the encoders).
        frames: rendered frames per video.
        videos_per_class: videos of every class.
        jobs: worker processes for render + encode.
        progress: show a tqdm bar on stderr.

    Returns:
        counts: videos per partition.
    """
    if size % 2 or size < 8:
        raise ValueError(f"--size must be even and >= 8, got {size}")
    if frames < 2:
        raise ValueError(f"--frames must be >= 2, got {frames}")
    out = Path(out)
    videos_dir = out / "videos"
    (out / "splits").mkdir(parents=True, exist_ok=True)
    videos_dir.mkdir(parents=True, exist_ok=True)
    all_jobs = video_jobs(videos_per_class)
    batches = [all_jobs[i : i + ENCODE_BATCH] for i in range(0, len(all_jobs), ENCODE_BATCH)]
    tasks = [(b, seed, size, frames, str(videos_dir)) for b in batches]

    from tqdm import tqdm

    bar = tqdm(total=len(all_jobs), desc="synth", unit="video", disable=not progress)
    geometry: dict[str, np.ndarray] = {}
    if jobs <= 1:
        results = map(_make_batch, tasks)
    else:
        import multiprocessing as mp

        ex = ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn"))
        results = ex.map(_make_batch, tasks)
    try:
        for made in results:
            for vid, geom in made:
                geometry[vid] = geom
            bar.update(len(made))
    finally:
        if jobs > 1:
            ex.shutdown()
    bar.close()

    label_idx = {c.name: i for p in PARTITIONS for i, c in enumerate(classes_in(p))}
    counts = {}
    for p in PARTITIONS:
        names = {c.name for c in classes_in(p)}
        rows = [
            (j.video_id, j.class_name, label_idx[j.class_name], j.relpath)
            for j in all_jobs
            if j.class_name in names
        ]
        _write_csv(out / "splits" / f"{p}.csv", ("video_id", "label", "label_idx", "relpath"), rows)
        counts[p] = len(rows)
    _write_csv(
        out / "geometry.csv",
        ("video_id", "frame", *GEOMETRY_FIELDS),
        (
            (j.video_id, f, *(f"{v:.6f}" for v in g))
            for j in all_jobs
            for f, g in enumerate(geometry[j.video_id])
        ),
    )
    _write_csv(out / "pairs.csv", ("class_a", "class_b", "kind"), reversed_pairs("test"))
    _write_csv(
        out / "classes.csv",
        ("class", "partition", "kind", "reverse_of"),
        ((c.name, c.partition, c.kind, c.reverse_of) for c in CLASSES),
    )
    return counts
