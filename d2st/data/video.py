"""Video probing and decoding of T uniformly sampled frames with ffmpeg (via ffmpeg-python).

Only the selected frames leave ffmpeg: a ``select`` filter on the decoded frame number ``n``
keeps them, ``scale`` resizes them inside ffmpeg, and they arrive as ``rgb24`` raw video on a
pipe. No full-resolution frame passes through Python.

Sampling rule (:data:`SAMPLING_RULE`, stored in every shard): split the ``n`` frames of a video
into ``T`` equal segments and take the centre of each, ``index_i = floor((i + 0.5) * n / T)``.
This is the deterministic analogue of the official code's segment sampling (one frame drawn
uniformly at random from each of 8 segments, at training *and* test time, in the D2ST-Adapter
repository's video loader): the expected position of the official random pick is the segment centre.
Shards store exactly these T frames, so training-time temporal jitter is not possible from them;
that is a deliberate, documented choice (the shard is a cache of the test-time view; spatial
augmentation still happens on the stored frames).

Videos with fewer than ``T`` frames use the same formula, which then repeats frames
(e.g. ``n = 3, T = 8`` -> ``0 0 0 1 1 2 2 2``); they get status ``too_short`` and still land.

Statuses (:func:`decode_clip`), each with a one-line message:

* ``ok``: all T frames decoded. If the decoder logged errors but every selected frame was
  produced (e.g. ``decord__corrupted.mp4``: one broken NAL unit in the final packet, frames 0-48
  decode), the status stays ``ok`` and the message starts with ``decoder warning:`` so the row can
  be filtered. Rationale: the selected frames are complete decoder output, and the official
  decord-based loader trains on such videos too; dropping them would change the split. Pass
  ``strict=True`` to classify these as ``corrupt`` instead.
* ``too_short``: fewer source frames than T (frames repeated as above).
* ``missing``: the file does not exist.
* ``empty``: the file has 0 bytes, or the video stream has no frames.
* ``unreadable``: ffprobe cannot open the container (e.g. a truncated file missing its index).
* ``no_video``: the container has no video stream (e.g. audio-only ``.m4a``).
* ``corrupt``: ffmpeg fails, or fewer frames come out than were selected.

Environment failures are not statuses: a missing ``ffmpeg``/``ffprobe``, a video that cannot be
read for lack of permission, or a decoder that cannot be started raise
:class:`DecodeEnvironmentError` (one line naming the program or file), so that nothing is recorded
about the video: the machine failed, not the video. ``unreadable`` and ``corrupt`` may be
transient (a decoder killed by the OOM killer, a network file system hiccup): ``decode_clip(...,
attempts=n)`` tries such a video up to ``n`` times before calling it bad.

Rotation: ffmpeg applies the display-matrix rotation itself (``autorotate``, on by default), so
a phone video stored upside down (rotation -180) comes out upright. Resize: ``size x size``
bilinear, aspect ratio ignored (as the official code's fixed 256x256 resize).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import ffmpeg
import numpy as np

from d2st.errors import UserError

SAMPLING_RULE = "segment_centre: index_i = floor((i + 0.5) * n / T), i = 0..T-1"
OK_STATUSES = ("ok", "too_short")
ERROR_STATUSES = ("missing", "empty", "unreadable", "no_video", "corrupt")
RETRY_STATUSES = ("unreadable", "corrupt")  # may be transient: tried again (decode_clip attempts)
DECODERS = ("ffmpeg", "ffprobe")
INSTALL_HINT = (
    "install ffmpeg (apt install ffmpeg, or conda install -c conda-forge ffmpeg) or put it on "
    "PATH, then run the command again"
)


class DecodeEnvironmentError(UserError):
    """The machine, not the video, failed: no decoder, no permission, a decoder that won't start."""


def check_decoders() -> None:
    """Raise :class:`DecodeEnvironmentError` unless ``ffmpeg`` and ``ffprobe`` run (``-version``)."""
    for exe in DECODERS:
        if shutil.which(exe) is None:
            raise DecodeEnvironmentError(
                f"{exe} not found on PATH (it decodes the videos)", INSTALL_HINT
            )
        r = _run([exe, "-version"])
        if r.returncode != 0:
            raise DecodeEnvironmentError(
                f"{exe} -version fails (exit {r.returncode}): {_first_line(r.stderr)}", INSTALL_HINT
            )


def _run(args: list[str]) -> subprocess.CompletedProcess:
    """Run a decoder; a program that cannot be started is an environment error."""
    try:
        return subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True)
    except FileNotFoundError:
        raise DecodeEnvironmentError(
            f"{args[0]} not found on PATH (it decodes the videos)", INSTALL_HINT
        ) from None
    except PermissionError:
        raise DecodeEnvironmentError(
            f"{args[0]}: permission denied (cannot run it)", INSTALL_HINT
        ) from None


def _failed(r: subprocess.CompletedProcess, status: str, who: str) -> VideoError:
    if r.returncode < 0:  # killed by a signal (e.g. the OOM killer): not the video's fault
        return VideoError(status, f"{who} killed by signal {-r.returncode}")
    return VideoError(status, f"{who}: {_first_line(r.stderr)}")


class VideoError(Exception):
    """A video cannot be decoded; ``status`` is one of :data:`ERROR_STATUSES`."""

    def __init__(self, status: str, message: str):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


@dataclass(frozen=True)
class VideoInfo:
    """What ffprobe says about the first video stream.

    ``frames`` comes from counting packets (``-count_packets``: a demux pass, no decoding) and
    falls back to the header's ``nb_frames``, then to ``duration * fps``; ``frames_source`` says
    which. ``duration`` is ``None`` when neither the stream nor the container records it (then
    ``frames / fps`` is the best estimate). ``rotation`` is the display-matrix angle in degrees.
    """

    path: str
    frames: int
    fps: float
    duration: float | None
    width: int
    height: int
    rotation: int
    codec: str
    frames_source: str
    warning: str = ""


def _rate(s: str | None) -> float:
    if not s or s in ("0/0", "N/A"):
        return 0.0
    num, _, den = s.partition("/")
    try:
        return float(num) / float(den or 1)
    except (ValueError, ZeroDivisionError):
        return 0.0


def _float(x) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v > 0 else None


def _first_line(stderr: bytes | str | None) -> str:
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else (stderr or "")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return "no message"
    # drop run-dependent pointers ("[h264 @ 0x55f1...]" -> "[h264]") so messages are reproducible
    return re.sub(r"\[([^\]@]*?) @ 0x[0-9a-fA-F]+\]", r"[\1]", lines[0])[:200]


def _check_file(path: str | Path) -> None:
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise VideoError("missing", f"{p}: file not found") from None
    except PermissionError:
        raise DecodeEnvironmentError(
            f"{p}: permission denied", "make the videos readable"
        ) from None
    if p.is_file() and st.st_size == 0:
        raise VideoError("empty", f"{p}: file is empty (0 bytes)")
    if p.is_file() and not os.access(p, os.R_OK):
        raise DecodeEnvironmentError(f"{p}: permission denied", "make the videos readable")


def probe(path: str | Path) -> VideoInfo:
    """Probe the first video stream of ``path`` with ffprobe.

    Raises:
        VideoError: ``missing``, ``empty``, ``unreadable`` (ffprobe fails) or ``no_video``.
    """
    _check_file(path)
    args = ["ffprobe", "-show_format", "-show_streams", "-of", "json"]
    args += ["-count_packets", "-select_streams", "v:0", "-v", "error", str(path)]
    r = _run(args)
    if r.returncode != 0:
        raise _failed(r, "unreadable", "ffprobe")
    try:
        meta = json.loads(r.stdout.decode("utf-8"))
    except ValueError:
        raise VideoError("unreadable", "ffprobe: output is not JSON") from None
    streams = [s for s in meta.get("streams", []) if s.get("codec_type") == "video"]
    if not streams:
        raise VideoError("no_video", "no video stream in the container")
    s = streams[0]
    fps = _rate(s.get("avg_frame_rate")) or _rate(s.get("r_frame_rate"))
    duration = _float(s.get("duration")) or _float(meta.get("format", {}).get("duration"))
    if s.get("nb_read_packets", "").isdigit():
        frames, source = int(s["nb_read_packets"]), "packets"
    elif str(s.get("nb_frames", "")).isdigit():
        frames, source = int(s["nb_frames"]), "header"
    elif duration and fps:
        frames, source = int(round(duration * fps)), "duration*fps"
    else:
        frames, source = 0, "unknown"
    rotation = 0
    for sd in s.get("side_data_list", []) or []:
        if "rotation" in sd:
            rotation = int(float(sd["rotation"]))
    if not rotation and "rotate" in s.get("tags", {}):
        rotation = -int(float(s["tags"]["rotate"]))  # legacy tag is clockwise
    return VideoInfo(
        path=str(path),
        frames=frames,
        fps=fps,
        duration=duration,
        width=int(s.get("width") or 0),
        height=int(s.get("height") or 0),
        rotation=rotation,
        codec=str(s.get("codec_name", "unknown")),
        frames_source=source,
    )


def sample_indices(num_frames: int, T: int) -> list[int]:
    """Centre frame of each of ``T`` equal segments: ``floor((i + 0.5) * num_frames / T)``.

    Deterministic analogue of the official random-per-segment rule (see module docstring).
    Indices are non-decreasing and lie in ``[0, num_frames - 1]``; with ``num_frames < T`` some
    repeat (the ``too_short`` rule). Integer arithmetic, so no float rounding surprises.

    Args:
        num_frames: frames in the video (>= 1).
        T: frames to sample (>= 1).
    """
    if num_frames < 1 or T < 1:
        raise ValueError(f"need num_frames >= 1 and T >= 1, got {num_frames}, {T}")
    return [((2 * i + 1) * num_frames) // (2 * T) for i in range(T)]


def _select_expr(indices: list[int]) -> str:
    # not(n-k) is 1 exactly on frame k; written without commas so no filtergraph escaping is needed
    return "+".join(f"not(n-{k})" for k in indices)


def decode_frames(
    path: str | Path,
    T: int = 8,
    size: int | tuple[int, int] = 256,
    *,
    info: VideoInfo | None = None,
    threads: int = 0,
    strict: bool = False,
    autorotate: bool = True,
    extra_filters: tuple[tuple[str, tuple], ...] = (),
    rule: str = "uniform",
) -> tuple[np.ndarray, VideoInfo, list[int]]:
    """Decode ``T`` frames sampled by :func:`sample_indices`, resized to ``size`` in ffmpeg.

    Shapes: returns frames uint8 (T, H, W, 3) RGB with (H, W) = (size, size) or ``size``
    given as (H, W); the source frame numbers actually used; and the probe info (``warning`` set
    when the decoder logged errors yet produced every selected frame).

    Args:
        path: video file.
        T: frames to sample.
        size: output side (square) or (height, width); aspect ratio is not kept.
        info: a previous :func:`probe` result (saves one ffprobe call).
        threads: ffmpeg decoder threads (0 = ffmpeg's choice; 1 when many processes run).
        strict: treat logged decoder errors as ``corrupt`` even if every frame decoded.
        autorotate: apply the display-matrix rotation (ffmpeg default; False for tests).
        extra_filters: (name, args) ffmpeg filters applied after selection, before scaling.
        rule: frame-index rule, a key of :data:`d2st.data.sampling.FRAME_RULES` (``uniform``:
            :func:`sample_indices`; ``kinetics100``: the authors' Kinetics-100 linspace).

    Raises:
        VideoError: with the status and a one-line message.
    """
    info = info or probe(path)
    if info.frames < 1:
        raise VideoError("empty", "the video stream has no frames")
    h, w = (size, size) if isinstance(size, int) else size
    indices = _indices(info, T, rule)
    unique = sorted(set(indices))
    inp = ffmpeg.input(str(path), threads=threads, **({} if autorotate else {"noautorotate": None}))
    out = _selected(inp, unique, extra_filters, w, h).output(
        "pipe:", format="rawvideo", pix_fmt="rgb24", fps_mode="passthrough"
    )
    out = out.global_args("-nostdin", "-v", "error")
    r = _run(out.compile())
    if r.returncode != 0:
        raise _failed(r, "corrupt", "ffmpeg")
    raw, err = r.stdout, r.stderr
    got = len(raw) // (h * w * 3)
    if got < len(unique):
        why = _first_line(err) if err and err.strip() else "stream ended early"
        raise VideoError(
            "corrupt", f"decoded {got} of {len(unique)} selected frames (of {info.frames}): {why}"
        )
    if err and err.strip():
        if strict:
            raise VideoError("corrupt", f"decoder error: {_first_line(err)}")
        info = replace(info, warning=f"decoder warning: {_first_line(err)}")
    return _expand(raw, unique, indices, h, w), info, indices


def _indices(info: VideoInfo, T: int, rule: str) -> list[int]:
    """The source frame numbers of the ``T`` sampled frames (``rule``: see decode_frames)."""
    if rule == "uniform":
        return sample_indices(info.frames, T)
    from d2st.data.sampling import frame_indices

    return frame_indices(rule, info.frames, T, 1, fps=info.fps)


def _selected(inp, unique: list[int], extra_filters, w: int, h: int):
    """The input's first video stream: frames ``unique`` selected, filtered, scaled to w x h."""
    stream = inp["v:0"].filter("select", _select_expr(unique))
    for name, args in extra_filters:
        stream = stream.filter(name, *args)
    return stream.filter("scale", w, h, flags="bilinear")


def _expand(raw: bytes, unique: list[int], indices: list[int], h: int, w: int) -> np.ndarray:
    """The decoded ``unique`` frames as (T, H, W, 3) in ``indices`` order (repeats expanded)."""
    frames = np.frombuffer(raw, np.uint8)[: len(unique) * h * w * 3].reshape(len(unique), h, w, 3)
    pos = {k: j for j, k in enumerate(unique)}
    return frames[[pos[k] for k in indices]]


def decode_together(
    items: Sequence[tuple[str | Path, VideoInfo]], T: int, size: int, *, threads: int = 0,
    rule: str = "uniform",
) -> list[tuple[np.ndarray, list[int]]] | None:  # fmt: skip
    """:func:`decode_frames` of several probed videos by one ffmpeg process, or None.

    One input and one output file per video, each with its own select and scale filters, so
    every video's frames are the bytes :func:`decode_frames` gives it (tests/test_video.py). Only
    a clean run counts: a non-zero exit, any decoder message or a short output returns None and
    the caller decodes each video alone, which gives every verdict and message its single-video
    form. Saves the ffmpeg start (~60 ms) per video but one.
    """
    import tempfile

    plans = []
    for path, info in items:
        if info.frames < 1:
            return None
        indices = _indices(info, T, rule)
        plans.append((path, indices, sorted(set(indices))))
    with tempfile.TemporaryDirectory(prefix="d2st-decode-") as tmp:
        outs = [
            _selected(ffmpeg.input(str(path), threads=threads), unique, (), size, size).output(
                f"{tmp}/{i}.raw", format="rawvideo", pix_fmt="rgb24", fps_mode="passthrough"
            )
            for i, (path, _, unique) in enumerate(plans)
        ]
        run = ffmpeg.merge_outputs(*outs).global_args("-nostdin", "-v", "error")
        r = _run(run.compile())
        if r.returncode != 0 or (r.stderr and r.stderr.strip()):
            return None
        out = []
        for i, (_, indices, unique) in enumerate(plans):
            raw = Path(f"{tmp}/{i}.raw").read_bytes()
            if len(raw) // (size * size * 3) < len(unique):
                return None
            out.append((_expand(raw, unique, indices, size, size), indices))
    return out


@dataclass
class ClipResult:
    """Outcome of :func:`decode_clip`: frames (T,H,W,3) uint8 or None, status, one-line message."""

    status: str
    message: str
    frames: np.ndarray | None
    indices: list[int]
    source_frames: int | None
    info: VideoInfo | None = None


def decode_clip(
    path: str | Path,
    T: int = 8,
    size: int = 256,
    *,
    threads: int = 0,
    strict: bool = False,
    attempts: int = 1,
    rule: str = "uniform",
) -> ClipResult:
    """:func:`decode_frames` that classifies a bad video into a status instead of raising.

    Args:
        path, T, size, threads, strict: as :func:`decode_frames`.
        attempts: tries for a video whose outcome may be transient (:data:`RETRY_STATUSES`),
            with a short growing pause; the last outcome is returned.

    Raises:
        DecodeEnvironmentError: no decoder, no permission (nothing is said about the video).
    """
    for attempt in range(max(1, attempts)):
        if attempt:
            time.sleep(0.1 * 2**attempt)
        try:
            info = probe(path)
            frames, info, idx = decode_frames(
                path, T, size, info=info, threads=threads, strict=strict, rule=rule
            )
        except VideoError as e:
            failure = ClipResult(e.status, e.message, None, [], None)
            if e.status not in RETRY_STATUSES:
                return failure
            continue
        return _clip_result(frames, info, idx, T)
    if attempts > 1:
        failure.message = f"{failure.message} ({attempts} attempts)"
    return failure


def _clip_result(frames: np.ndarray, info: VideoInfo, idx: list[int], T: int) -> ClipResult:
    """The verdict on a decoded video: ``ok``, or ``too_short`` (fewer than T source frames)."""
    msg = info.warning
    if info.frames < T:
        status = "too_short"
        msg = "; ".join(x for x in (f"{info.frames} frames < T={T}, frames repeated", msg) if x)
    else:
        status = "ok"
    return ClipResult(status, msg, frames, idx, info.frames, info)


def decode_clips(
    paths: Sequence[str | Path], T: int = 8, size: int = 256, *, threads: int = 0,
    strict: bool = False, attempts: int = 1, rule: str = "uniform",
) -> list[ClipResult]:  # fmt: skip
    """:func:`decode_clip` of each path, the clean ones decoded by one ffmpeg process.

    Each video is probed; the probed ones are decoded together (:func:`decode_together`); a
    video whose probe failed, or every video of a batch that was not clean, goes through
    :func:`decode_clip` alone (retries, messages and statuses unchanged).
    """
    infos: list[VideoInfo | None] = []
    for p in paths:
        try:
            infos.append(probe(p))
        except VideoError:
            infos.append(None)
    good = [i for i, info in enumerate(infos) if info is not None]
    together = None
    if len(good) > 1:
        together = decode_together(
            [(paths[i], infos[i]) for i in good], T, size, threads=threads, rule=rule
        )
    done = dict(zip(good, together, strict=True)) if together is not None else {}
    return [
        _clip_result(done[i][0], infos[i], done[i][1], T) if i in done else decode_clip(
            p, T, size, threads=threads, strict=strict, attempts=attempts, rule=rule
        )
        for i, p in enumerate(paths)
    ]  # fmt: skip


VIDEO_EXTENSIONS = (
    ".mp4",
    ".webm",
    ".avi",
    ".mkv",
    ".mov",
    ".m4v",
    ".mpg",
    ".mpeg",
    ".flv",
    ".wmv",
    ".3gp",
    ".ogv",
    ".m4a",
)


def list_videos(root: str | Path) -> list[Path]:
    """Every file under ``root`` with a video/container extension, sorted (deterministic)."""
    root = Path(root)
    out = []
    for dirpath, _, files in os.walk(root):
        for f in files:
            if f.lower().endswith(VIDEO_EXTENSIONS):
                out.append(Path(dirpath) / f)
    return sorted(out)
