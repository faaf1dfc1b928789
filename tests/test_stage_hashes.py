"""Stage hashes (rule stage_hashes): SHA-256 per file, rows in pipeline order whatever the input."""

import hashlib
import random

import pytest

from d2st.demo_report import HASH_COLUMNS, STAGES, sha256_file, stage_hash_rows


@pytest.fixture
def files(tmp_path):
    rng = random.Random(0)
    paths = {}
    for name in [
        "manifest.csv",
        "shards.csv",
        "trunk.safetensors",
        "b.safetensors",
        "a.safetensors",
    ]:
        p = tmp_path / name
        p.write_bytes(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 5000))))
        paths[name] = p
    return paths


def test_sha256_matches_hashlib_any_chunk(files):
    for p in files.values():
        want = hashlib.sha256(p.read_bytes()).hexdigest()
        assert sha256_file(p) == want
        assert sha256_file(p, chunk=7) == want


def test_rows_hash_each_file_in_pipeline_order(files):
    items = [
        ("table", "demo", files["a.safetensors"]),
        ("run", "run_b", files["b.safetensors"]),
        ("run", "run_a", files["a.safetensors"]),
        ("trunk", "synthetic/resnet_tiny", files["trunk.safetensors"]),
        ("data", "shards/test", files["shards.csv"]),
        ("data", "shards/test", files["manifest.csv"]),
        ("run", "run_a", files["a.safetensors"]),  # listed twice: hashed once
    ]
    df = stage_hash_rows(items)
    assert list(df.columns) == HASH_COLUMNS
    assert len(df) == 6
    # pipeline order (alphabetical would put "trunk" last), then item, then path
    assert list(df["stage"]) == ["data", "data", "trunk", "run", "run", "table"]
    assert list(df["item"][3:5]) == ["run_a", "run_b"]
    assert df["path"][0].endswith("manifest.csv") and df["path"][1].endswith("shards.csv")
    for _, r in df.iterrows():
        assert r["sha256"] == hashlib.sha256(open(r["path"], "rb").read()).hexdigest()
    shuffled = items[:]
    random.Random(1).shuffle(shuffled)
    assert stage_hash_rows(shuffled).equals(df)
    assert set(df["stage"]) <= set(STAGES)


def test_bad_stage_and_missing_file_are_named(files, tmp_path):
    with pytest.raises(ValueError, match="weights"):
        stage_hash_rows([("weights", "x", files["a.safetensors"])])
    missing = tmp_path / "absent.safetensors"
    with pytest.raises(FileNotFoundError, match="absent.safetensors"):
        stage_hash_rows([("run", "x", missing)])
