"""Official annotation formats (UCF101, HMDB51, SSv2, Kinetics) parse and agree with the splits."""

from __future__ import annotations

import csv

import pytest

from d2st.data import splits as S

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def ann(shared):
    return shared / "realdata/annotations"


def _all_labels(shared, ds):
    parts = S.load_splits(ds, "d2st", source_dir=shared / "splits")
    return parts, set().union(*(set(df["label"]) for df in parts.values()))


def test_ucf101_official_lists(shared, ann):
    d = ann / "ucf101/ucfTrainTestlist"
    classes = S.read_ucf101_classind(d / "classInd.txt")
    assert len(classes) == 101 and classes[0] == "ApplyEyeMakeup"
    train = S.read_ucf101_list(d / "trainlist01.txt", classes)
    test = S.read_ucf101_list(d / "testlist01.txt", classes)
    n_lines = lambda p: sum(1 for ln in p.read_bytes().split(b"\n") if ln.strip())  # noqa: E731
    assert len(train) == n_lines(d / "trainlist01.txt")
    assert len(test) == n_lines(d / "testlist01.txt")
    assert not set(train["video_id"]) & set(test["video_id"])
    assert (train["relpath"] == train["label"] + "/" + train["video_id"] + ".avi").all()
    # the ARN few-shot split uses every UCF101 class and every clip: official split 1 covers both
    parts, labels = _all_labels(shared, "ucf101")
    assert labels == set(classes)
    fewshot = {
        v: (lab, rp)
        for df in parts.values()
        for v, lab, rp in zip(df["video_id"], df["label"], df["relpath"])
    }
    assert set(train["video_id"]) | set(test["video_id"]) == set(fewshot)
    for df in (train, test):
        assert all(
            fewshot[v] == (lab, rp)
            for v, lab, rp in zip(df["video_id"], df["label"], df["relpath"])
        )


def test_ucf101_wrong_label_names_the_line(tmp_path, ann):
    classes = S.read_ucf101_classind(ann / "ucf101/ucfTrainTestlist/classInd.txt")
    p = tmp_path / "trainlist.txt"
    p.write_text("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\r\nApplyLipstick/x.avi 1\r\n")
    with pytest.raises(S.SplitFormatError, match=r"trainlist\.txt:2: label 1"):
        S.read_ucf101_list(p, classes)


def test_hmdb51_official_split_files(shared, ann):
    df = S.read_hmdb51_splits(ann / "hmdb51/testTrainMulti_7030_splits", split=3)
    files = sorted((ann / "hmdb51/testTrainMulti_7030_splits").glob("*_split3.txt"))
    assert len(df) == sum(len(f.read_text().splitlines()) for f in files)
    # the official protocol: 70 training and 30 test clips per class
    counts = df.groupby(["label", "subset"]).size().unstack(fill_value=0)
    assert (counts["train"] == 70).all() and (counts["test"] == 30).all()
    parts, labels = _all_labels(shared, "hmdb51")
    assert set(df["label"]) <= labels
    fewshot = {v: rp for d in parts.values() for v, rp in zip(d["video_id"], d["relpath"])}
    assert all(fewshot[v] == rp for v, rp in zip(df["video_id"], df["relpath"]))


def test_ssv2_labels_and_entries(shared, ann):
    labels = S.read_ssv2_labels(ann / "ssv2/labels.json")
    assert len(labels) == 174
    for ds in ("ssv2_full", "ssv2_small"):
        _, names = _all_labels(shared, ds)
        assert len(names) == 100 and names <= set(labels)
    with open(shared / "splits/ssv2_full/DERIVED_otam_class_names.tsv", newline="") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            assert labels[r["ssv2_template"]] == int(r["ssv2_label_id"])
    test = S.read_ssv2_entries(ann / "ssv2/test.json")
    assert len(test) == 27157 and (test["label_idx"] == -1).all()
    assert (test["relpath"] == test["video_id"] + ".webm").all()
    # few-shot splits draw from SSv2 train/validation only, never from the unlabelled test set
    for ds in ("ssv2_full", "ssv2_small"):
        parts, _ = _all_labels(shared, ds)
        for df in parts.values():
            assert not set(df["video_id"]) & set(test["video_id"])


def test_something_else_files(ann):
    d = ann / "ssv2/something_else_fewshot"
    labels = S.read_ssv2_labels(d / "finetune_labels.json")
    assert len(labels) == 86
    ent = S.read_ssv2_entries(d / "finetune_5shot_training.json", labels)
    assert len(ent) == 430 and set(ent["label"]) <= set(labels)
    assert (ent["label_idx"] >= 0).all()


def test_kinetics_csv(shared, ann):
    df = S.read_kinetics_csv(ann / "kinetics/kinetics-400_val.csv")
    assert len(df) == 19906 and df["label"].nunique() == 400
    assert df["video_id"].str.match(r"^.{11}_\d{6}_\d{6}$").all()
    assert df.iloc[0]["video_id"] == "0wR5jVB-WPk_000417_000427"  # PROVENANCE's first row
    _, k100 = _all_labels(shared, "kinetics100")
    assert k100 <= set(df["label"])  # Kinetics-100 classes are Kinetics-400 classes
