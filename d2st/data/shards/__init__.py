"""HDF5 shards of T sampled frames per video: layout, writer (``d2st prepare``), reader, verify.

* :mod:`.layout`: file names, columns, attributes, frame codecs, checksums (what is on disk).
* :mod:`.writer`: :func:`prepare` (videos -> shards; atomic, resumable, parallel, locked) and
  :func:`write_clips` (arrays -> shards).
* :mod:`.reader`: :class:`ShardSet` / :func:`ClipDataset` / :func:`open_shards`, which check the
  folder whole (complete, undamaged, as the run expects) before the first read.
* :mod:`.verify`: :func:`verify` (``d2st verify``), every check listed, ``deep`` per clip.
"""

from d2st.data.shards.layout import (
    DEFAULT_FORMAT,
    DEFAULT_JPEG_QUALITY,
    DEFAULT_SHARD_SIZE,
    FORMATS,
    MANIFEST_COLUMNS,
    SHARD_TABLE_COLUMNS,
    ShardError,
    decode_jpeg,
    encode_jpeg,
    read_manifest,
    read_shard_table,
    shard_files,
    shard_name,
)
from d2st.data.shards.reader import (
    ClipDataset,
    Expect,
    ShardSet,
    count_classes,
    inspect_folder,
    open_shards,
)
from d2st.data.shards.verify import verify
from d2st.data.shards.writer import (
    DEFAULT_ATTEMPTS,
    PrepareError,
    PrepareSummary,
    check_relpaths,
    prepare,
    split_from_folder,
    write_clips,
)

__all__ = [
    "count_classes",
    "DEFAULT_ATTEMPTS",
    "DEFAULT_FORMAT",
    "DEFAULT_JPEG_QUALITY",
    "DEFAULT_SHARD_SIZE",
    "FORMATS",
    "MANIFEST_COLUMNS",
    "SHARD_TABLE_COLUMNS",
    "ClipDataset",
    "Expect",
    "PrepareError",
    "PrepareSummary",
    "ShardError",
    "ShardSet",
    "check_relpaths",
    "decode_jpeg",
    "encode_jpeg",
    "inspect_folder",
    "open_shards",
    "prepare",
    "read_manifest",
    "read_shard_table",
    "shard_files",
    "shard_name",
    "split_from_folder",
    "verify",
    "write_clips",
]
