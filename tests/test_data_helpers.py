"""Helpers for the data-stage tests: tiny videos whose frame i carries a known brightness.

(Named test_data_* so it sits with the data tests; it defines no tests itself.)
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

CODECS = {  # extension -> ffmpeg output arguments
    ".mp4": ["-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "yuv420p"],
    ".avi": ["-c:v", "mpeg4", "-q:v", "1", "-pix_fmt", "yuv420p"],
    ".webm": [
        "-c:v",
        "libvpx-vp9",
        "-lossless",
        "1",
        "-deadline",
        "realtime",
        "-cpu-used",
        "8",
        "-pix_fmt",
        "yuv420p",
    ],
    ".mkv": ["-c:v", "ffv1", "-pix_fmt", "yuv420p"],
}


BITS = 6  # frame numbers up to 63


def level(i: int) -> int:
    """Grey level of the top half of frame i (distinct, away from clipping, for i < 48)."""
    return 16 + 4 * i


def numbered_frames(n: int, side: int = 48) -> np.ndarray:
    """(n, side, side, 3) uint8 frames that carry their own number.

    Bottom half: ``BITS`` vertical stripes, stripe b white iff bit b of i is set (robust to
    scaling and lossy coding). Top half: uniform grey :func:`level` (i), except a bright square
    in the top-left corner that shows orientation.
    """
    assert n <= 2**BITS
    x = np.empty((n, side, side, 3), np.uint8)
    w = side // BITS
    for i in range(n):
        x[i] = level(i)
        x[i, side // 2 :] = 0
        for b in range(BITS):
            if (i >> b) & 1:
                x[i, side // 2 :, b * w : (b + 1) * w] = 255
    x[:, : side // 8, : side // 8] = 250
    return x


def write_video(path: Path, frames: np.ndarray, fps: int = 25, extra: list[str] | None = None):
    """Encode (n,H,W,3) uint8 RGB frames with ffmpeg into ``path`` (codec by extension)."""
    n, h, w, _ = frames.shape
    cmd = [
        "ffmpeg",
        "-v",
        "error",
        "-nostdin",
        "-y",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        f"{w}x{h}",
        "-r",
        str(fps),
        "-i",
        "pipe:",
        *CODECS[path.suffix],
        *(extra or []),
        str(path),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(cmd, input=frames.tobytes(), check=True)
    return path


def frame_numbers(clip: np.ndarray) -> list[int]:
    """Recover the source frame number of each decoded (T,H,W,3) frame from its stripes."""
    h, w = clip.shape[1:3]
    rows = clip[:, h // 2 + h // 8 :, :, :].astype(float).mean(axis=(1, 3))  # (T, W)
    out = []
    for r in rows:
        bits = [r[int((b + 0.5) * w / BITS)] > 128 for b in range(BITS)]
        out.append(sum(1 << b for b, on in enumerate(bits) if on))
    return out
