"""Split lists: both protocols for all five datasets, sha256, line errors, URL path, CLI."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pandas as pd
import pytest

from d2st.cli import main as cli_main
from d2st.data import splits as S


def _checksums(shared: Path) -> list[dict]:
    with open(shared / "splits/CHECKSUMS.tsv", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def test_embedded_sources_equal_shared_checksums(shared):
    emb = [s.__dict__ | {"lines": str(s.lines)} for s in S.all_sources()]
    assert emb == _checksums(shared)
    assert len(emb) == len(S.DATASETS) * len(S.PROTOCOLS) * len(S.PARTITIONS)
    s = S.get_source("ucf101", "test", "trx")
    assert s.url == (
        f"https://raw.githubusercontent.com/tobyperrett/trx/{s.commit}/splits/ucf_ARN/testlist03.txt"
    )


def test_embedded_class_tables_equal_shared_derived(shared):
    with open(shared / "splits/ssv2_full/DERIVED_otam_class_names.tsv", newline="") as f:
        ref = {
            r["otam_label"]: (r["partition"], int(r["class_index"]), r["ssv2_template"])
            for r in csv.DictReader(f, delimiter="\t")
        }
    assert S.class_table("ssv2_full") == ref
    for ds in ("ssv2_small", "kinetics100"):
        with open(shared / f"splits/{ds}/DERIVED_d2st_class_index.tsv", newline="") as f:
            ref = {
                r["d2st_label"]: (r["partition"], int(r["class_index"]), r["class_name"])
                for r in csv.DictReader(f, delimiter="\t")
            }
        assert S.class_table(ds) == ref


@pytest.fixture(scope="module")
def all_splits(shared):
    return {
        (pr, ds): S.load_splits(ds, pr, source_dir=shared / "splits")
        for pr in S.PROTOCOLS
        for ds in S.DATASETS
    }


def test_all_30_files_parse_with_recorded_counts(shared, all_splits):
    for row in _checksums(shared):
        df = all_splits[(row["protocol"], row["dataset"])][row["partition"]]
        assert len(df) == int(row["lines"])
        assert list(df.columns) == S.COLUMNS
        assert not df["video_id"].duplicated().any()
        assert df["label_idx"].min() == 0
        assert df["label_idx"].max() == df["label"].nunique() - 1
        assert (df.groupby("label")["label_idx"].nunique() == 1).all()


def test_partitions_are_class_and_video_disjoint(all_splits):
    for parts in all_splits.values():
        for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
            assert not set(parts[a]["label"]) & set(parts[b]["label"])
            assert not set(parts[a]["video_id"]) & set(parts[b]["video_id"])
    bad = {
        "train": pd.DataFrame({"video_id": ["1"], "label": ["x"]}),
        "test": pd.DataFrame({"video_id": ["2"], "label": ["x"]}),
    }
    with pytest.raises(S.SplitError, match="share 1 classes"):
        S.check_disjoint(bad, "demo")


def test_protocols_agree_on_classes_and_order(shared, all_splits):
    """label -> label_idx is the same under both protocols (upstream class order), and the
    video sets agree except Kinetics-100's documented d2st/CMN differences."""
    diff = pd.read_csv(shared / "splits/kinetics100/DERIVED_d2st_vs_cmn_diff.tsv", sep="\t")
    for ds in S.DATASETS:
        for p in S.PARTITIONS:
            a, b = all_splits[("d2st", ds)][p], all_splits[("trx", ds)][p]
            ma = dict(zip(a["label"], a["label_idx"]))
            mb = dict(zip(b["label"], b["label_idx"]))
            assert ma == mb, (ds, p)
            ids_a, ids_b = set(a["video_id"]), set(b["video_id"])
            if ds == "kinetics100":
                d = diff[diff["partition"] == p]
                # d2st-only entries differ from CMN ones (different clip or file name)
                assert len(ids_a - ids_b) >= (d["in"] == "d2st_only").sum() > 0
            else:
                assert ids_a == ids_b, (ds, p)
            # same video -> same class and same relpath under both protocols
            j = a.merge(b, on="video_id", suffixes=("_a", "_b"))
            assert (j["label_a"] == j["label_b"]).all()
            assert (j["relpath_a"] == j["relpath_b"]).all(), (ds, p)


def test_real_class_names_and_relpath_rules(all_splits):
    tr = all_splits[("d2st", "ssv2_full")]["train"]
    r = tr[tr["video_id"] == "42326"].iloc[0]  # PROVENANCE example: train50//42326
    assert r["label_idx"] == 50 and r["relpath"] == "42326.webm"
    assert r["label"] == S.class_table("ssv2_full")["train50"][2]
    k = all_splits[("d2st", "kinetics100")]["train"]
    assert (k["relpath"].str.match(r"^(train|val)_256/[^/]+/[^/]+\.(mp4|mkv)$")).all()
    assert "air drumming" in set(k["label"])
    h = all_splits[("d2st", "hmdb51")]["train"]
    assert h.iloc[0]["relpath"] == "brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0.avi"
    assert (h["relpath"] == h["label"] + "/" + h["video_id"] + ".avi").all()
    u = all_splits[("trx", "ucf101")]["val"]
    assert (u["relpath"] == u["label"] + "/" + u["video_id"] + ".avi").all()


def test_extension_parameter(shared):
    df = S.load_split("ssv2_small", "val", "d2st", source_dir=shared / "splits", ext="mp4")
    assert (df["relpath"] == df["video_id"] + ".mp4").all()


def _copy_source(shared: Path, tmp: Path, src: S.SplitSource) -> Path:
    dst = tmp / src.local_copy
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shared / "splits" / src.local_copy, dst)
    return dst


def test_flipped_byte_is_a_checksum_error_naming_the_file(shared, tmp_path):
    src = S.get_source("hmdb51", "val", "trx")
    dst = _copy_source(shared, tmp_path, src)
    S.load_split("hmdb51", "val", "trx", source_dir=tmp_path)  # intact copy passes
    data = bytearray(dst.read_bytes())
    data[len(data) // 2] ^= 0x01
    dst.write_bytes(bytes(data))
    with pytest.raises(S.ChecksumError) as e:
        S.load_split("hmdb51", "val", "trx", source_dir=tmp_path)
    assert str(dst) in str(e.value) and src.sha256 in str(e.value)


def test_malformed_line_names_file_and_line(shared):
    src = S.get_source("ucf101", "val", "d2st")
    text = (shared / "splits" / src.local_copy).read_bytes().decode()
    lines = text.split("\n")
    bad = lines.copy()
    bad[41] = "val0/videos/ApplyLipstick/x.avi\r"  # single slash: not the d2st format
    with pytest.raises(S.SplitFormatError, match=r"val_few_shot\.txt:42: "):
        S.parse_split_text("\n".join(bad), "ucf101", "val", "d2st", where="val_few_shot.txt")
    bad = lines.copy()
    bad[6] = bad[6].replace("val0//", "train0//")  # wrong partition prefix
    with pytest.raises(S.SplitFormatError, match=r":7: "):
        S.parse_split_text("\n".join(bad), "ucf101", "val", "d2st", where="f")
    bad = [ln.rstrip("\r") for ln in lines]  # LF instead of CRLF
    with pytest.raises(S.SplitFormatError, match=r":1: expected a CRLF"):
        S.parse_split_text("\n".join(bad), "ucf101", "val", "d2st", where="f")
    trx = (shared / "splits/ssv2_full/vallist07.txt").read_text().split("\n")
    trx[3] = "val99/12345"  # unknown OTAM class
    with pytest.raises(S.SplitFormatError, match=r"f:4: unknown OTAM label"):
        S.parse_split_text("\n".join(trx), "ssv2_full", "val", "trx", where="f")
    trx = (shared / "splits/hmdb51/vallist03.txt").read_text().split("\n")
    trx[9] = "no_slash_here"
    with pytest.raises(S.SplitFormatError, match=r"f:10: "):
        S.parse_split_text("\n".join(trx), "hmdb51", "val", "trx", where="f")


def test_duplicate_ids_and_wrong_counts_are_errors(shared, tmp_path, monkeypatch):
    src = S.get_source("hmdb51", "test", "trx")
    text = (shared / "splits" / src.local_copy).read_text()
    lines = text.split("\n")
    dup = "\n".join([lines[0], *lines[:-1]]) + "\n"  # first line repeated: one line too many
    monkeypatch.setattr(S, "read_source", lambda *a, **k: (dup, "dup.txt"))
    with pytest.raises(S.SplitError, match="dup.txt: .*expected"):
        S.load_split("hmdb51", "test", "trx")
    same = "\n".join([lines[0], *lines[:-2]]) + "\n"  # right count, one id twice
    monkeypatch.setattr(S, "read_source", lambda *a, **k: (same, "dup.txt"))
    with pytest.raises(S.SplitError, match="duplicate video ids"):
        S.load_split("hmdb51", "test", "trx")


def test_url_download_is_verified_and_cached(shared, tmp_path):
    by_url = {s.url: (shared / "splits" / s.local_copy).read_bytes() for s in S.all_sources()}
    calls: list[str] = []

    def fetch(url: str) -> bytes:
        assert url.startswith("https://raw.githubusercontent.com/")
        calls.append(url)
        return by_url[url]

    cache = tmp_path / "cache"
    parts = S.load_splits("ucf101", "d2st", cache_dir=cache, fetch=fetch)
    assert len(calls) == 3 and len(parts["train"]) == S.get_source("ucf101", "train").lines
    src = S.get_source("ucf101", "train")
    assert (cache / src.repository / src.commit / src.path).is_file()
    S.load_splits("ucf101", "d2st", cache_dir=cache, fetch=fetch)
    assert len(calls) == 3  # served from the verified cache

    def bad_fetch(url: str) -> bytes:
        return by_url[url][:-10] + b"tampered!\n"

    with pytest.raises(S.ChecksumError, match="raw.githubusercontent.com"):
        S.load_split("hmdb51", "val", "d2st", cache_dir=tmp_path / "c2", fetch=bad_fetch)
    assert not list((tmp_path / "c2").rglob("*.txt"))  # nothing unverified is cached


def test_cli_writes_csvs_and_reports_errors(shared, tmp_path, capsys):
    out = tmp_path / "splits"
    rc = cli_main(
        [
            "splits",
            "--dataset",
            "hmdb51",
            "--protocol",
            "trx",
            "--source-dir",
            str(shared / "splits"),
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    ref = S.load_splits("hmdb51", "trx", source_dir=shared / "splits")
    for p in S.PARTITIONS:
        back = S.read_split_csv(out / "hmdb51" / f"{p}.csv")
        pd.testing.assert_frame_equal(back, ref[p].astype({"label_idx": "int64"}))
    rc = cli_main(
        [
            "splits",
            "--dataset",
            "ucf101",
            "--source-dir",
            str(tmp_path / "empty"),
            "--out",
            str(out),
        ]
    )
    assert rc == 1 and "not found" in capsys.readouterr().err
