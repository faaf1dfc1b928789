"""``d2st verify``: every check of the reader, listed rather than raised, plus (deep) every clip.

Plain verify runs :func:`d2st.data.shards.reader.inspect_folder` with checksums: completeness,
the SHA-256 of every shard against ``shards.csv`` (so a zeroed 512-byte block is found without
libhdf5 ever parsing the damaged file), HDF5 structure and the manifest row by row. ``deep``
then reads every clip of the intact shards, compares its CRC-32 with the one stored when it was
written (``clip_crc32``), and decodes it.
"""

from __future__ import annotations

from pathlib import Path

import h5py

from d2st.data.shards.layout import attr, clip_crc32, decode_jpeg
from d2st.data.shards.reader import inspect_folder


def verify(root: str | Path, deep: bool = False) -> list[str]:
    """Check a shard folder; returns a list of problems (empty = valid), one line each.

    Failed rows are not problems here: they are the recorded outcome for those videos.
    """
    root = Path(root)
    problems, index = inspect_folder(root, None, checksums=True)
    if not deep or index is None or problems:
        return problems
    for p in index.paths:
        with h5py.File(p, "r") as f:
            fmt, T, S = attr(f.attrs["frame_format"]), int(f.attrs["frames"]), int(f.attrs["size"])
            crcs = f["clip_crc32"][()]
            for r in range(f["frames"].shape[0]):
                x = f["frames"][r]
                if clip_crc32(x) != int(crcs[r]):
                    problems.append(f"{p.name}: row {r}: CRC-32 differs from the one written")
                    continue
                x = decode_jpeg(x) if fmt == "jpeg" else x
                if x.shape != (T, S, S, 3):
                    problems.append(f"{p.name}: row {r} decodes to {x.shape}")
    return problems
