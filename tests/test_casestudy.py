"""Figure 3 case study: margins and the gain/loss classes against a brute-force ranking."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from d2st.casestudy import case_study, per_class_table, read_per_class
from d2st.cli import main as cli

CLASSES = [f"c{i:02d}" for i in range(11)]


def _per_class(run: str, acc, shots=(1, 5), n=20) -> pd.DataFrame:
    rows = [
        {"run": run, "shot": s, "class": c, "label_idx": i, "accuracy": a + s, "n": n}
        for s in shots
        for i, (c, a) in enumerate(zip(CLASSES, acc, strict=True))
    ]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gain_and_loss_classes_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    accs = {r: rng.integers(0, 8, len(CLASSES)) * 10.0 for r in ("a", "b", "c")}  # many ties
    table = per_class_table([_per_class(r, a) for r, a in accs.items()])
    study = case_study(table, k=4)
    margin = {
        c: accs["a"][i] - max(accs["b"][i], accs["c"][i]) for i, c in enumerate(CLASSES)
    }  # shot 1 adds 1 to every run: no effect on a difference
    for row in study.itertuples():
        assert row.margin == pytest.approx(margin[row[1]])
    gains = study[study.group == "gain"]["class"].tolist()
    losses = study[study.group == "loss"]["class"].tolist()
    assert len(gains) == len(losses) == 4 and not set(gains) & set(losses)
    rest = [c for c in CLASSES if c not in gains]
    # brute force: no class left out beats a chosen one (gains: larger; losses: smaller margin)
    assert min(margin[c] for c in gains) >= max(margin[c] for c in rest)
    others = [c for c in rest if c not in losses]
    assert max(margin[c] for c in losses) <= min(margin[c] for c in others)
    assert [margin[c] for c in gains] == sorted((margin[c] for c in gains), reverse=True)
    assert [margin[c] for c in losses] == sorted(margin[c] for c in losses)
    assert table.attrs["shot"] == 1  # smallest common shot by default


def test_runs_on_different_episodes_are_refused():
    a = _per_class("a", np.arange(11.0))
    b = _per_class("b", np.arange(11.0), n=19)
    with pytest.raises(ValueError, match="same test episodes"):
        per_class_table([a, b])
    c = _per_class("c", np.arange(11.0))
    with pytest.raises(ValueError, match="no 3-shot rows"):
        per_class_table([a, c], shot=3)


def test_cli_writes_csv_and_png(tmp_path):
    paths = []
    for r, acc in (("d2st", np.linspace(10, 90, 11)), ("st", np.full(11, 50.0))):
        (tmp_path / r).mkdir()
        _per_class(r, acc).to_csv(tmp_path / r / "per_class.csv", index=False)
        paths.append(str(tmp_path / r))
    out = tmp_path / "fig" / "cs"
    args = ["casestudy", "--evals", *paths, "--shot", "5", "--labels", "D2ST", "ST",
            "--out", str(out)]  # fmt: skip
    assert cli(args) == 0
    study = pd.read_csv(out.with_suffix(".csv"))
    assert study["class"].tolist() == ["c10", "c09", "c08", "c07", "c00", "c01", "c02", "c03"]
    assert (study.shot == 5).all()
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(FileNotFoundError, match="per_class.csv"):
        read_per_class(tmp_path / "nowhere")


def test_workflow_pairs_runs_that_differ_only_in_the_adapter():
    from d2st.casestudy import comparable_runs
    from d2st.plan import Run

    runs = [
        Run("d2st", "resnet_tiny", "bimhm", "synthetic"),
        Run("st", "resnet_tiny", "bimhm", "synthetic"),
        Run("d2st_s", "resnet_tiny", "otam", "synthetic"),  # other metric: no d2st partner
        Run("d2st", "resnet_tiny", "otam", "synthetic", seed=1),  # other seed
        Run("st", "resnet50", "bimhm", "hmdb51"),  # dataset not asked for
        Run("d2st", "resnet50", "bimhm", "hmdb51"),
    ]
    studies = comparable_runs(
        {r.name: r for r in runs}, [("d2st", "st"), ("d2st", "d2st_s")], ["synthetic"]
    )
    assert studies == {"synthetic_resnet_tiny_bimhm_d2st_vs_st": (runs[0].name, runs[1].name)}
