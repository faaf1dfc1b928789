"""The experiment planner (d2st.plan: expand_matrix / run_dict) and the table builder."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from d2st.naming import run_name
from d2st.plan import MatrixError, expand_matrix, run_dict
from d2st.plots import plot_table
from d2st.tables import build_table, to_markdown

REPO = Path(__file__).resolve().parents[1]
CONFIGS = {
    n: REPO / "workflow" / "config" / f"{n}.yaml" for n in ("default", "demo_full", "paper", "test")
}


def load(name: str) -> dict:
    return yaml.safe_load(CONFIGS[name].read_text())


def fake_eval(run: str, shots=(1, 5), pairs=False, acc=None) -> pd.DataFrame:
    """eval.csv rows (docs/CONTRACTS.md columns) with accuracies derived from the run name."""
    rows = []
    base = acc if acc is not None else 30 + (sum(map(ord, run)) % 600) / 10
    protocols = [("standard", s) for s in shots] + ([("reversed_pairs", 1)] if pairs else [])
    for protocol, shot in protocols:
        rows.append(
            dict(
                run=run,
                dataset="x",
                backbone="x",
                adapter="x",
                metric="bimhm",
                protocol=protocol,
                way=5 if protocol == "standard" else 2,
                shot=shot,
                episodes=100,
                accuracy=base + shot + (5 if protocol == "reversed_pairs" else 0),
                ci95=0.5,
                seed=0,
                tunable_params=10,
                total_params=1000,
                peak_mem_mb=2048.0,
                train_time_s=30.0,
                eval_time_s=2.0,
            )
        )
    return pd.DataFrame(rows)


def test_paper_matrix_matches_every_reported_row():
    """Every row of every paper table finds exactly its reported number (no silent NaN)."""
    cfg = load("paper")
    m = expand_matrix(cfg)
    for table, rows in m.tables.items():
        spec = cfg["tables"][table]
        if not spec.get("reported"):
            continue
        reported = pd.read_csv(REPO / "results" / "reported" / spec["reported"])
        df = build_table(rows, pd.DataFrame(), reported)
        assert len(df) == sum(len(r.shots) for r in rows), table
        assert df["reported"].notna().all(), (table, df[df["reported"].isna()])
        assert df["reproduced"].isna().all()  # nothing evaluated: NaN, never a dropped row
        # the table keeps the reported CSV's column names
        assert set(reported.columns) - {"accuracy"} <= set(df.columns), table


def test_paper_matrix_covers_the_reported_d2st_rows():
    """Table 1: every reported D2ST-Adapter number (both backbones x 5 datasets x 2 shots)."""
    m = expand_matrix(load("paper"))
    reported = pd.read_csv(REPO / "results" / "reported" / "table1.csv")
    ours = reported[reported["method"] == "D2ST-Adapter"]
    df = build_table(m.tables["table1"], pd.DataFrame(), reported)
    assert len(df) == len(ours) == 20
    assert sorted(df["reported"]) == sorted(ours["accuracy"])


def test_shared_runs_are_trained_once():
    """D2ST ResNet-50 SSv2-Full Bi-MHM is in Tables 1, 4, 5 and 6: one run, tested at 1 and 5."""
    m = expand_matrix(load("paper"))
    name = run_name("d2st", "resnet50", "bimhm", "ssv2_full", 5, 1, 8, 0)
    users = [t for t, rows in m.tables.items() if any(r.run == name for r in rows)]
    assert {"table1", "table4", "table5", "table6"} <= set(users)
    assert list(m.runs).count(name) == 1
    assert m.eval_shots[name] == [1, 5]
    # Table 11 needs 1..5 shots of its runs
    r18 = run_name("d2st", "resnet18", "bimhm", "ssv2_full", 5, 1, 8, 0)
    assert m.eval_shots[r18] == [1, 2, 3, 4, 5]


def test_conflicting_run_definitions_fail_naming_both_tables():
    cfg = {
        "run_defaults": {"metric": "bimhm", "backbone": "resnet50", "dataset": "ssv2_full"},
        "tables": {
            "a": {"rows": [{"run": {"adapter": "d2st"}}]},
            "b": {
                "rows": [{"run": {"adapter": "d2st", "overrides": {"model.bottleneck_ratio": 0.5}}}]
            },
        },
    }
    with pytest.raises(MatrixError, match=r"tables\.a and tables\.b.*variant"):
        expand_matrix(cfg)
    cfg["tables"]["b"]["rows"][0]["run"]["variant"] = "r0.5"
    assert len(expand_matrix(cfg).runs) == 2


def test_incomplete_row_is_named():
    cfg = {"tables": {"t": {"rows": [{"run": {"adapter": "d2st"}}]}}}
    with pytest.raises(MatrixError, match=r"tables\.t\.rows\[0\].*backbone"):
        expand_matrix(cfg)


@pytest.mark.parametrize("name", ["default", "paper", "test"])
def test_every_run_config_is_a_valid_train_config(name):
    """The resolved config of every run loads with d2st.config (unknown keys would fail there)."""
    config_mod = pytest.importorskip("d2st.config")
    cfg = load(name)
    m = expand_matrix(cfg)
    for run in m.runs.values():
        rc = run_dict(cfg, run, train_shards="tr", test_shards="te", weights="random", out_dir="o")
        loaded = config_mod.resolve(rc, train_classes=64)
        assert loaded.run.name == run.name
        assert loaded.model.adapter == run.adapter and loaded.metric.name == run.metric
        assert loaded.model.frames == run.frames
        if not run.needs_training:
            assert loaded.train.episodes == 0


def test_paper_schedule_and_overrides_reach_the_run_config():
    cfg = load("paper")
    m = expand_matrix(cfg)
    ratio = next(r for r in m.runs.values() if r.variant == "r0.125")
    rc = run_dict(cfg, ratio, train_shards="a", test_shards="b", weights="hub", out_dir="o")
    assert rc["model"]["bottleneck_ratio"] == 0.125
    assert rc["schedule"] == "ssv2_small/vit_b16"


def test_build_table_joins_evals_and_reported():
    cfg = load("paper")
    m = expand_matrix(cfg, only=["table4"])
    rows = m.tables["table4"]
    evals = pd.concat([fake_eval(r.run) for r in rows], ignore_index=True)
    reported = pd.read_csv(REPO / "results" / "reported" / "table4.csv")
    df = build_table(rows, evals, reported)
    for _, r in df.iterrows():
        ev = evals[(evals.run == r["run"]) & (evals.shot == r["shot"])]
        assert r["reproduced"] == pytest.approx(float(ev["accuracy"].iloc[0]))
        rep = reported[
            (reported.method == r["method"])
            & (reported.dataset == r["dataset"])
            & (reported.shot == r["shot"])
        ]
        assert r["reported"] == pytest.approx(float(rep["accuracy"].iloc[0]))
    md = to_markdown(df, title="t")
    assert md.count("\n| ") == len(df) + 1  # header + one line per row


def test_memory_and_params_are_reproduced_next_to_reported():
    cfg = load("paper")
    rows = expand_matrix(cfg, only=["table10"]).tables["table10"]
    evals = pd.concat([fake_eval(r.run) for r in rows], ignore_index=True)
    reported = pd.read_csv(REPO / "results" / "reported" / "table10.csv")
    df = build_table(rows, evals, reported)
    assert (df["reproduced_memory_gb"] == 2.0).all()
    assert (df["reproduced_tunable_params_pct"] == 1.0).all()
    assert df["memory_gb"].notna().all()


def test_demo_table_has_method_metric_protocol(tmp_path):
    cfg = load("demo_full")
    m = expand_matrix(cfg)
    rows = m.tables["demo_full"]
    evals = pd.concat([fake_eval(r.run, pairs=True) for r in rows], ignore_index=True)
    df = build_table(rows, evals, kind="demo")
    methods = {r["key"]["method"] for r in cfg["tables"]["demo_full"]["rows"]}
    assert set(df["method"]) == methods
    assert set(df["metric"]) == {"Bi-MHM", "OTAM", "TRX"}
    assert set(df["protocol"]) == {"standard", "reversed_pairs"}
    # per row (method x metric x seed): shots 1 and 5 (standard) + one reversed-pair row, and one
    # mean row per (method x metric x protocol x shot) over the 3 seeds
    assert len(df) == len(rows) * 3 + len(rows) * 3 // 3
    assert len(df.drop_duplicates(["method", "metric", "protocol", "shot", "seed"])) == len(df)
    assert df["accuracy"].notna().all()
    png = plot_table(df, "demo", tmp_path / "demo.png", title="demo")
    assert png.stat().st_size > 1000


def test_efficiency_table_per_episode_times():
    cfg = load("demo_full")
    rows = expand_matrix(cfg).tables["efficiency_demo"]
    evals = pd.concat([fake_eval(r.run) for r in rows], ignore_index=True)
    df = build_table(rows, evals, kind="efficiency", train_episodes={r.run: 300 for r in rows})
    assert len(df) == len(rows)
    assert df["train_s_per_episode"].tolist() == [pytest.approx(0.1)] * len(rows)
    assert df["eval_s_per_episode"].tolist() == [pytest.approx(0.02)] * len(rows)
    assert not math.isnan(df["tunable_params_pct"].iloc[0])


def test_reported_copies_match_shared(shared):
    for f in sorted((shared / "paper" / "reported").glob("*.csv")):
        assert (REPO / "results" / "reported" / f.name).read_bytes() == f.read_bytes(), f.name


def test_tables_command(tmp_path):
    """`d2st tables` builds every table of a config from whatever eval.csv files exist."""
    from d2st.cli import main

    cfg = load("paper")
    m = expand_matrix(cfg, only=["table9"])
    evals_dir = tmp_path / "evals"
    first = m.tables["table9"][0].run
    (evals_dir / first).mkdir(parents=True)
    fake_eval(first).to_csv(evals_dir / first / "eval.csv", index=False)
    out = tmp_path / "tables"
    rc = main(
        [
            "tables",
            "--config",
            str(CONFIGS["paper"]),
            "--table",
            "table9",
            "--evals",
            str(evals_dir),
            "--reported",
            str(REPO / "results" / "reported"),
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    df = pd.read_csv(out / "table9.csv")
    assert df["reproduced"].notna().sum() == 2  # the one evaluated run, shots 1 and 5
    assert (out / "table9.md").is_file() and (out / "table9.png").is_file()


def test_demo_table_keeps_seed_rows_and_adds_the_mean_with_a_t_interval():
    from d2st.tables import with_seed_means

    df = pd.DataFrame(
        {
            "method": ["a"] * 3,
            "metric": ["bimhm"] * 3,
            "protocol": ["standard"] * 3,
            "shot": [1] * 3,
            "seed": [2, 0, 1],
            "accuracy": [60.0, 50.0, 70.0],
            "ci95": [1.0, 1.0, 1.0],
            "run": ["r2", "r0", "r1"],
        }
    )
    out = with_seed_means(df)
    assert out.seed.tolist() == ["0", "1", "2", "mean"]
    mean = out[out.seed == "mean"].iloc[0]
    assert mean.accuracy == pytest.approx(60.0) and mean.n_seeds == 3
    # t_{0.975, 2} = 4.303 (t tables); sd of (50, 60, 70) = 10
    assert mean.ci95 == pytest.approx(4.303 * 10 / math.sqrt(3))


def test_lr_selection_takes_the_best_validation_score_and_the_smaller_lr_on_ties():
    from d2st.plan import Run, choose_lr, lr_candidates, selection_of

    assert choose_lr({1e-3: 50.0, 3e-3: 60.0, 1e-2: 59.8}) == 3e-3  # tie within 0.5 -> smaller
    assert choose_lr({1e-3: 50.0, 3e-3: 60.0, 1e-2: 61.0}) == 1e-2
    sel = selection_of({"lr_selection": {"values": [1e-3, 1e-2], "seed": 0}})
    runs = {
        r.name: r
        for r in (Run("d2st", "resnet_tiny", "bimhm", "synthetic", seed=s) for s in (0, 1, 2))
    }
    runs["none"] = Run("none", "resnet_tiny", "bimhm", "synthetic")  # nothing to train
    cands = lr_candidates(runs, sel)
    assert len(cands) == 1  # one method, whatever its seeds
    (c,) = cands.values()
    assert sorted(c) == [1e-3, 1e-2] and all(r.seed == 0 for r in c.values())
    assert all(dict(r.overrides)["train.lr"] == lr for lr, r in c.items())
