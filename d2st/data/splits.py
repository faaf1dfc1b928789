"""Few-shot split lists: fetch (URL or local folder), verify by sha256, parse, write split CSVs.

Two protocols are supported for all five datasets (facts: ``split_sources.tsv`` next to this
module, a copy of the shared ``CHECKSUMS.tsv``; the lists themselves are never committed):

* ``d2st`` (default; the lists that produced the paper's numbers): the D2ST-Adapter repository's
  ``config/<ds>/{train,val,test}_few_shot.txt``. CRLF lines ``<partition><N>//<path-or-id>``, e.g.
  ``train50//42326`` (SSv2) or ``train0//train_256/air_drumming/<ytid>_<s>_<e>.mp4`` (Kinetics).
* ``trx`` (trx / CMN / ARN / OTAM lists from tobyperrett/trx): LF lines ``<class name>/<video id>``,
  and for SSv2-Full the anonymised OTAM form ``<partition><N>/<video id>``.

Output rows (``splits/{dataset}/{partition}.csv``): ``video_id,label,label_idx,relpath``.

* ``label`` is the real class name. SSv2-Full's anonymised ``trainN`` labels and the D2ST lists'
  ``partN`` labels of SSv2-Small / Kinetics-100 are mapped through ``split_classes.tsv`` (the
  shared ``DERIVED_*`` tables). HMDB51 / UCF101 ``d2st`` labels are the class folder of the path.
* ``label_idx`` is 0-based within the partition in upstream class order: ``N`` where the list
  carries ``partN``; otherwise the order of first appearance (which equals ``N`` for every dataset,
  a property the tests check across protocols).
* ``relpath`` is relative to the user's video root for that dataset (the rule in
  :func:`relpath_rule`, also in ``splits/README.md``).

Official annotation formats (UCF101 ``classInd``/``trainlist``, HMDB51 ``*_test_splitN.txt``,
SSv2 ``labels.json``/``train.json``/``test.json``, Kinetics CSV) have small parsers at the end,
returning the same columns, e.g. to build the full video list of a dataset for ``d2st prepare``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from d2st.errors import UserError
from d2st.io import atomic_write_bytes, atomic_write_text

DATASETS = ("ssv2_full", "ssv2_small", "kinetics100", "hmdb51", "ucf101")
PROTOCOLS = ("d2st", "trx")
PARTITIONS = ("train", "val", "test")
COLUMNS = ["video_id", "label", "label_idx", "relpath"]

#: extension appended where the list does not name the file (SSv2 ids, trx class/id lines)
DEFAULT_EXT = {
    "ssv2_full": ".webm",
    "ssv2_small": ".webm",
    "kinetics100": ".mp4",
    "hmdb51": ".avi",
    "ucf101": ".avi",
}

_HERE = Path(__file__).resolve().parent
SOURCES_TSV = _HERE / "split_sources.tsv"
CLASSES_TSV = _HERE / "split_classes.tsv"
RAW_URL = "https://raw.githubusercontent.com/{repository}/{commit}/{path}"

_TOKEN = re.compile(r"^(train|val|test)(\d+)$")


class SplitError(UserError, ValueError):
    """A split list is unusable: wrong checksum, malformed line, or a failed consistency check."""


class ChecksumError(SplitError):
    """The sha256 of a split file differs from the recorded one."""


class SplitFormatError(SplitError):
    """A line of a split file does not match its format (message names file and line)."""


@dataclass(frozen=True)
class SplitSource:
    """One upstream split file, as recorded in ``split_sources.tsv`` (= shared CHECKSUMS.tsv)."""

    protocol: str
    dataset: str
    partition: str
    repository: str
    commit: str
    path: str
    sha256: str
    lines: int
    local_copy: str

    @property
    def url(self) -> str:
        """raw.githubusercontent.com address pinned to the recorded commit."""
        return RAW_URL.format(repository=self.repository, commit=self.commit, path=self.path)

    @property
    def name(self) -> str:
        """Human-readable name used in error messages: ``repo@commit7:path``."""
        return f"{self.repository}@{self.commit[:7]}:{self.path}"


def all_sources() -> list[SplitSource]:
    """Every recorded upstream split file (30: 2 protocols x 5 datasets x 3 partitions)."""
    with open(SOURCES_TSV, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [SplitSource(**{**r, "lines": int(r["lines"])}) for r in rows]


def get_source(dataset: str, partition: str, protocol: str = "d2st") -> SplitSource:
    """The recorded source of one split list; raises ``KeyError`` naming the bad key."""
    _check_choice("dataset", dataset, DATASETS)
    _check_choice("partition", partition, PARTITIONS)
    _check_choice("protocol", protocol, PROTOCOLS)
    for s in all_sources():
        if (s.protocol, s.dataset, s.partition) == (protocol, dataset, partition):
            return s
    raise KeyError(f"no split source for {protocol}/{dataset}/{partition}")  # pragma: no cover


def _check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise KeyError(f"unknown {what} {value!r}; expected one of {', '.join(choices)}")


# --------------------------------------------------------------------------- fetching + sha256


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verify_bytes(data: bytes, source: SplitSource, where: str | Path) -> bytes:
    """Return ``data`` if its sha256 equals the recorded one, else raise :class:`ChecksumError`."""
    got = sha256_bytes(data)
    if got != source.sha256:
        raise ChecksumError(
            f"{where}: sha256 {got} != expected {source.sha256} for {source.name} "
            f"({source.protocol}/{source.dataset}/{source.partition}); the file is corrupt or a "
            "different version"
        )
    return data


def _urlopen_bytes(url: str) -> bytes:  # the one network call; tests monkeypatch it
    with urllib.request.urlopen(url, timeout=60) as r:  # noqa: S310 (https URL built from pinned facts)
        return r.read()


def fetch_source(
    source: SplitSource,
    cache_dir: str | Path,
    fetch: Callable[[str], bytes] | None = None,
) -> Path:
    """Download ``source.url`` into ``cache_dir/<repo>/<commit>/<path>``, verified by sha256.

    A cached copy with the right checksum is reused; a cached copy with a wrong checksum is
    downloaded again. The download is written to a temporary name and renamed after the check,
    so the cache never holds an unverified file under the final name.

    Args:
        source: the split file to fetch.
        cache_dir: cache folder.
        fetch: ``url -> bytes`` (default: ``urllib``); tests pass a local stand-in.
    """
    dest = Path(cache_dir) / source.repository / source.commit / source.path
    if dest.is_file() and sha256_bytes(dest.read_bytes()) == source.sha256:
        return dest
    try:
        data = (fetch or _urlopen_bytes)(source.url)
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", None) or e
        raise SplitError(
            f"cannot download {source.url} ({source.protocol}/{source.dataset}/"
            f"{source.partition}): {reason}",
            f"offline? set datasets.{source.dataset}.split_source to a local folder holding the "
            "lists (laid out like the shared splits/), or run d2st splits --source-dir DIR",
        ) from None
    verify_bytes(data, source, source.url)
    atomic_write_bytes(dest, data)
    return dest


def read_source(
    source: SplitSource,
    source_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    fetch: Callable[[str], bytes] | None = None,
) -> tuple[str, str]:
    """Bytes of one split file, verified by sha256, decoded as UTF-8.

    Args:
        source: which file.
        source_dir: a local folder laid out like the shared ``splits/`` (``local_copy`` column);
            when given, nothing is downloaded.
        cache_dir: download cache for the URL path (default ``~/.cache/d2st/splits``).
        fetch: override of the download function (tests).

    Returns:
        (text, where) where ``where`` is the path or URL used, for error messages.
    """
    if source_dir is not None:
        path = Path(source_dir) / source.local_copy
        if not path.is_file():
            raise FileNotFoundError(f"{path}: split file {source.name} not found in {source_dir}")
    else:
        cache = Path(cache_dir) if cache_dir else Path.home() / ".cache" / "d2st" / "splits"
        path = fetch_source(source, cache, fetch=fetch)
    data = verify_bytes(path.read_bytes(), source, path)
    return data.decode("utf-8"), str(path)


# --------------------------------------------------------------------------- class names


def class_table(dataset: str) -> dict[str, tuple[str, int, str]]:
    """Embedded label-token table: ``'train50' -> ('train', 50, 'Closing something')``.

    Present for ssv2_full (OTAM index -> SSv2 template, the shared DERIVED_otam_class_names.tsv)
    and for ssv2_small / kinetics100 (D2ST ``partN`` -> CMN class name, DERIVED_d2st_class_index).
    Empty for hmdb51 / ucf101, whose D2ST lists carry the class folder in the path.
    """
    out: dict[str, tuple[str, int, str]] = {}
    with open(CLASSES_TSV, newline="") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            if r["dataset"] == dataset:
                out[r["token"]] = (r["partition"], int(r["class_index"]), r["class_name"])
    return out


# --------------------------------------------------------------------------- parsing


def relpath_rule(dataset: str, protocol: str) -> str:
    """The relpath convention for one dataset/protocol (documented in splits/README.md)."""
    if dataset.startswith("ssv2"):
        return "<video_id><ext>, ext default .webm (the official code expects renamed .mp4)"
    if dataset == "kinetics100":
        if protocol == "d2st":
            return "the list's path verbatim, e.g. train_256/air_drumming/<ytid>_<s>_<e>.mp4"
        return "train_256/<class, spaces->underscores>/<video_id><ext>, ext default .mp4"
    return "<class>/<video_id><ext> (D2ST lists: path without its leading videos/), ext .avi"


def _line_error(where: str, lineno: int, line: str, why: str) -> SplitFormatError:
    return SplitFormatError(f"{where}:{lineno}: {why}: {line[:120]!r}")


def parse_split_text(
    text: str,
    dataset: str,
    partition: str,
    protocol: str,
    where: str = "<split>",
    ext: str | None = None,
) -> pd.DataFrame:
    """Parse one upstream split list into the split-CSV columns.

    Args:
        text: file content (CRLF or LF).
        dataset, partition, protocol: what the file is.
        where: file name for error messages (errors read ``where:line: reason: 'line'``).
        ext: extension for lists that do not name the file (default :data:`DEFAULT_EXT`);
            lists that carry a path with an extension (D2ST Kinetics/HMDB/UCF) keep theirs.

    Returns:
        DataFrame with columns video_id, label, label_idx, relpath in file order.
    """
    _check_choice("dataset", dataset, DATASETS)
    _check_choice("protocol", protocol, PROTOCOLS)
    ext = DEFAULT_EXT[dataset] if ext is None else ext
    if ext and not ext.startswith("."):
        ext = "." + ext
    table = class_table(dataset)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    rows: list[tuple[str, str, int | None, str]] = []
    for lineno, raw in enumerate(lines, start=1):
        line = raw[:-1] if raw.endswith("\r") else raw
        if protocol == "d2st" and not raw.endswith("\r"):
            raise _line_error(where, lineno, raw, "expected a CRLF line ending (D2ST lists)")
        if not line.strip() or line != line.strip():
            raise _line_error(where, lineno, raw, "empty line or surrounding whitespace")
        if protocol == "d2st":
            token, sep, rest = line.partition("//")
            m = _TOKEN.match(token)
            if not sep or not m or not rest or m.group(1) != partition:
                raise _line_error(where, lineno, line, f"expected '{partition}<N>//<path-or-id>'")
            idx = int(m.group(2))
            rows.append(_d2st_row(dataset, token, idx, rest, table, ext, where, lineno, line))
        else:
            head, sep, vid = line.rpartition("/")
            if not sep or not head or not vid:
                raise _line_error(where, lineno, line, "expected '<class>/<video id>'")
            m = _TOKEN.match(head)
            if dataset == "ssv2_full":
                if not m or m.group(1) != partition:
                    raise _line_error(where, lineno, line, f"expected '{partition}<N>/<video id>'")
                if head not in table:
                    raise _line_error(where, lineno, line, f"unknown OTAM label {head!r}")
                label, idx = table[head][2], int(m.group(2))
            else:
                label, idx = head, None
            rows.append((vid, label, idx, _trx_relpath(dataset, label, vid, ext)))
    for r in rows:
        if dataset.startswith("ssv2") and not r[0].isdigit():
            raise SplitFormatError(f"{where}: SSv2 video id {r[0]!r} is not numeric")
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["label_idx"] = _label_indices(df, where)
    return df


def _d2st_row(dataset, token, idx, rest, table, ext, where, lineno, line):
    if dataset.startswith("ssv2") or dataset == "kinetics100":
        if token not in table:
            raise _line_error(where, lineno, line, f"unknown class token {token!r}")
        label = table[token][2]
    if dataset.startswith("ssv2"):
        if "/" in rest or not rest.isdigit():
            raise _line_error(where, lineno, line, "expected a numeric SSv2 video id")
        return rest, label, idx, rest + ext
    parts = rest.split("/")
    if len(parts) < 2 or "." not in parts[-1]:
        raise _line_error(where, lineno, line, "expected a path '<folder>/<class>/<file>.<ext>'")
    vid = parts[-1].rsplit(".", 1)[0]
    if dataset == "kinetics100":
        return vid, label, idx, rest
    # hmdb51 / ucf101: 'videos/<class>/<file>.avi' -> label '<class>', relpath '<class>/<file>'
    if len(parts) != 3 or parts[0] != "videos":
        raise _line_error(where, lineno, line, "expected 'videos/<class>/<file>.<ext>'")
    return vid, parts[1], idx, f"{parts[1]}/{parts[2]}"


def _trx_relpath(dataset: str, label: str, vid: str, ext: str) -> str:
    if dataset.startswith("ssv2"):
        return vid + ext
    if dataset == "kinetics100":
        # same layout as the D2ST lists' train_256/ entries, so one video root serves both
        return f"train_256/{label.replace(' ', '_')}/{vid}{ext}"
    return f"{label}/{vid}{ext}"


def _label_indices(df: pd.DataFrame, where: str) -> list[int]:
    """Check the label <-> index bijection and return 0-based class indices.

    Where the list carries ``N`` it must map one-to-one onto class names and cover 0..C-1; where
    it does not, the index is the order of first appearance.
    """
    first = list(dict.fromkeys(df["label"]))
    order = {c: i for i, c in enumerate(first)}
    if df["label_idx"].isna().all():
        return [order[c] for c in df["label"]]
    pairs = df[["label", "label_idx"]].drop_duplicates()
    if pairs["label"].duplicated().any() or pairs["label_idx"].duplicated().any():
        raise SplitError(f"{where}: class names and class indices are not one-to-one")
    idx = sorted(int(i) for i in pairs["label_idx"])
    if idx != list(range(len(idx))):
        raise SplitError(f"{where}: class indices are not 0..{len(idx) - 1}")
    return [int(i) for i in df["label_idx"]]


# --------------------------------------------------------------------------- loading + checks


def load_split(
    dataset: str,
    partition: str,
    protocol: str = "d2st",
    source_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    ext: str | None = None,
    fetch: Callable[[str], bytes] | None = None,
) -> pd.DataFrame:
    """Fetch/locate, verify (sha256, line count, no duplicate ids) and parse one split list."""
    source = get_source(dataset, partition, protocol)
    text, where = read_source(source, source_dir, cache_dir, fetch)
    df = parse_split_text(text, dataset, partition, protocol, where=where, ext=ext)
    if len(df) != source.lines:
        raise SplitError(f"{where}: {len(df)} videos, expected {source.lines}")
    dup = df["video_id"][df["video_id"].duplicated()]
    if len(dup):
        raise SplitError(f"{where}: duplicate video ids, e.g. {dup.iloc[0]!r}")
    return df


def load_splits(
    dataset: str,
    protocol: str = "d2st",
    source_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    ext: str | None = None,
    fetch: Callable[[str], bytes] | None = None,
) -> dict[str, pd.DataFrame]:
    """All three partitions of a dataset, checked to share no class and no video."""
    out = {
        p: load_split(dataset, p, protocol, source_dir, cache_dir, ext, fetch) for p in PARTITIONS
    }
    check_disjoint(out, f"{protocol}/{dataset}")
    return out


def check_disjoint(parts: dict[str, pd.DataFrame], name: str = "split") -> None:
    """Raise :class:`SplitError` if two partitions share a class name or a video id."""
    keys = list(parts)
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            for col, what in (("label", "classes"), ("video_id", "videos")):
                common = set(parts[a][col]) & set(parts[b][col])
                if common:
                    raise SplitError(
                        f"{name}: partitions {a} and {b} share {len(common)} {what}, "
                        f"e.g. {sorted(common)[0]!r}"
                    )


def write_split_csv(df: pd.DataFrame, path: str | Path) -> Path:
    """Write one split CSV (columns :data:`COLUMNS`) atomically."""
    return atomic_write_text(path, df[COLUMNS].to_csv(index=False))


def read_split_csv(path: str | Path) -> pd.DataFrame:
    """Read a split CSV back with string ids (no numeric coercion of SSv2 ids).

    Raises:
        SplitError: empty or malformed file, missing columns, or a ``label_idx`` that is not an
            integer (the message names the file and line; the header is line 1).
    """
    path = Path(path)
    hint = "a split CSV has the header video_id,label,label_idx,relpath and one row per video"
    if path.is_file() and not path.read_bytes().strip():
        raise SplitError(f"{path}: empty split file", hint)
    try:
        df = pd.read_csv(
            path, dtype={"video_id": str, "label": str, "relpath": str}, keep_default_na=False
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        why = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise SplitError(f"{path}: not a readable CSV: {why}", hint) from None
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise SplitError(f"{path}: missing columns {missing}", hint)
    values = pd.to_numeric(df["label_idx"].astype(str).str.strip(), errors="coerce")
    bad = values.isna() | (values != values.round())
    if bad.any():
        k = int(df.index[bad][0])
        raise SplitError(
            f"{path}:{k + 2}: label_idx {df.at[k, 'label_idx']!r} is not an integer",
            "label_idx is the 0-based class index within the partition",
        )
    df["label_idx"] = values.astype("int64")
    return df


def write_splits(
    dataset: str,
    out_dir: str | Path,
    protocol: str = "d2st",
    source_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    ext: str | None = None,
    fetch: Callable[[str], bytes] | None = None,
) -> list[Path]:
    """Write ``out_dir/{dataset}/{partition}.csv`` for all three partitions."""
    parts = load_splits(dataset, protocol, source_dir, cache_dir, ext, fetch)
    return [write_split_csv(df, Path(out_dir) / dataset / f"{p}.csv") for p, df in parts.items()]


# --------------------------------------------------------------------------- official annotations


def _text_lines(path: str | Path) -> list[str]:
    with open(path, encoding="utf-8", newline="") as f:
        return [ln.rstrip("\r\n") for ln in f.read().splitlines()]


def read_ucf101_classind(path: str | Path) -> list[str]:
    """UCF101 ``classInd.txt`` (``<1-based idx> <Class>``, CRLF) -> class names in index order."""
    names: list[str] = []
    for lineno, line in enumerate(_text_lines(path), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit() or int(parts[0]) != len(names) + 1:
            raise _line_error(str(path), lineno, line, "expected '<next index> <ClassName>'")
        names.append(parts[1])
    return names


def read_ucf101_list(path: str | Path, classes: list[str]) -> pd.DataFrame:
    """UCF101 ``trainlistNN.txt`` (``<Class>/<video>.avi <label>``) or ``testlistNN.txt``.

    Args:
        path: the list file.
        classes: names from :func:`read_ucf101_classind`; ``label_idx`` is 0-based in that order
            (the train list's 1-based label is checked against the folder name).
    """
    index = {c: i for i, c in enumerate(classes)}
    rows = []
    for lineno, line in enumerate(_text_lines(path), start=1):
        if not line.strip():
            continue
        parts = line.split()
        rel = parts[0]
        cls, _, fname = rel.partition("/")
        if len(parts) > 2 or not fname.endswith(".avi") or cls not in index:
            raise _line_error(str(path), lineno, line, "expected '<Class>/<video>.avi [label]'")
        if len(parts) == 2 and int(parts[1]) != index[cls] + 1:
            raise _line_error(str(path), lineno, line, f"label {parts[1]} != class {cls!r}")
        rows.append((fname[:-4], cls, index[cls], rel))
    return pd.DataFrame(rows, columns=COLUMNS)


HMDB51_TAGS = {"0": "unused", "1": "train", "2": "test"}


def read_hmdb51_splits(folder: str | Path, split: int = 1) -> pd.DataFrame:
    """HMDB51 ``testTrainMulti_7030_splits/<class>_test_split<k>.txt`` files of one split.

    Lines are ``<video>.avi <tag> `` (tag 1 train, 2 test, 0 unused). Classes are sorted by name;
    returns the split-CSV columns plus ``subset`` (train/test/unused).
    """
    files = sorted(Path(folder).glob(f"*_test_split{split}.txt"))
    if not files:
        raise FileNotFoundError(f"{folder}: no *_test_split{split}.txt files")
    classes = sorted(f.name[: -len(f"_test_split{split}.txt")] for f in files)
    rows = []
    for f in files:
        cls = f.name[: -len(f"_test_split{split}.txt")]
        for lineno, line in enumerate(_text_lines(f), start=1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2 or not parts[0].endswith(".avi") or parts[1] not in HMDB51_TAGS:
                raise _line_error(str(f), lineno, line, "expected '<video>.avi <0|1|2>'")
            vid = parts[0][:-4]
            rows.append((vid, cls, classes.index(cls), f"{cls}/{parts[0]}", HMDB51_TAGS[parts[1]]))
    return pd.DataFrame(rows, columns=[*COLUMNS, "subset"])


def ssv2_template_name(template: str) -> str:
    """``'Putting [something] into [something]'`` -> ``'Putting something into something'``."""
    return template.replace("[", "").replace("]", "")


def read_ssv2_labels(path: str | Path) -> dict[str, int]:
    """SSv2 ``labels.json`` (values are strings) or Something-Else label maps (ints) -> name->id."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict):
        raise SplitFormatError(f"{path}: expected a JSON object {{template: id}}")
    out = {ssv2_template_name(k): int(v) for k, v in data.items()}
    if sorted(out.values()) != list(range(len(out))):
        raise SplitFormatError(f"{path}: label ids are not 0..{len(out) - 1}")
    return out


def read_ssv2_entries(
    path: str | Path, labels: dict[str, int] | None = None, ext: str = ".webm"
) -> pd.DataFrame:
    """SSv2 ``train.json``/``validation.json``/``test.json`` (or Something-Else) entry lists.

    Entries are ``{"id": ..., "template": "...[something]...", ...}``; test entries carry only
    ``id`` (label "" and label_idx -1). With ``labels`` the template must be a known class.
    """
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, list):
        raise SplitFormatError(f"{path}: expected a JSON list of entries")
    rows = []
    for i, e in enumerate(data):
        vid = str(e.get("id", "")) if isinstance(e, dict) else ""
        if not vid.isdigit():
            raise SplitFormatError(f"{path}: entry {i}: missing or non-numeric 'id': {e!r:.120}")
        name = ssv2_template_name(e["template"]) if "template" in e else ""
        if name and labels is not None and name not in labels:
            raise SplitFormatError(f"{path}: entry {i}: unknown template {name!r}")
        idx = labels[name] if (name and labels is not None) else -1
        rows.append((vid, name, idx, vid + ext))
    return pd.DataFrame(rows, columns=COLUMNS)


def read_kinetics_csv(path: str | Path, ext: str = ".mp4") -> pd.DataFrame:
    """Official Kinetics CSV (``label,youtube_id,time_start,time_end,split[,is_cc]``).

    ``video_id`` = ``<youtube_id>_<start:06d>_<end:06d>`` (the crawler's file name), ``relpath`` =
    ``<label>/<video_id><ext>``, ``label_idx`` = sorted label order.
    """
    df = pd.read_csv(path, dtype={"youtube_id": str}, keep_default_na=False)
    need = {"label", "youtube_id", "time_start", "time_end"}
    if not need <= set(df.columns):
        raise SplitFormatError(f"{path}: missing columns {sorted(need - set(df.columns))}")
    vid = [
        f"{y}_{int(s):06d}_{int(e):06d}"
        for y, s, e in zip(df["youtube_id"], df["time_start"], df["time_end"])
    ]
    classes = {c: i for i, c in enumerate(sorted(set(df["label"])))}
    out = pd.DataFrame(
        {
            "video_id": vid,
            "label": df["label"],
            "label_idx": [classes[c] for c in df["label"]],
            "relpath": [f"{c}/{v}{ext}" for c, v in zip(df["label"], vid)],
        }
    )
    return out
