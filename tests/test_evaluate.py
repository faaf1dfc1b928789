"""Evaluator: cached == recomputed, CI formula, shared episode lists, per-class and pairs outputs."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from d2st.cli import main as cli
from d2st.config import load_config
from d2st.evaluate import EVAL_COLUMNS, ci95, evaluate
from d2st.train import train

sys.path.insert(0, str(Path(__file__).parent))
from fewshot_fixtures import make_dataset, tiny_overrides  # noqa: E402


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("eval")
    train_dir, test_dir = make_dataset(tmp)
    cfg = load_config(None, tiny_overrides(tmp, train_dir, test_dir, **{"train.episodes": 8}))
    result = train(cfg, progress=False)
    return tmp, result.run_dir, test_dir


def test_ci_matches_bernoulli_theory():
    rng = np.random.default_rng(0)
    p, n = 0.7, 20000
    acc = rng.binomial(1, p, n) * 100.0
    assert ci95(acc) == pytest.approx(1.96 * np.sqrt(p * (1 - p) / n) * 100, rel=0.03)


@pytest.mark.parametrize("metric", ["bimhm"])
def test_cached_equals_recomputed(trained, metric):
    tmp, run, test_dir = trained
    common = [f"data.test_shards={test_dir}", "eval.shots=[1,2]", "eval.episodes=20"]
    cached = evaluate(run, tmp / "c" / "eval.csv", overrides=[*common, "eval.cache_features=true"])
    recomputed = evaluate(
        run, tmp / "r" / "eval.csv", overrides=[*common, "eval.cache_features=false"]
    )
    assert list(cached.columns) == EVAL_COLUMNS
    pd.testing.assert_series_equal(cached.accuracy, recomputed.accuracy)
    pd.testing.assert_series_equal(cached.ci95, recomputed.ci95)
    pc_c = pd.read_csv(tmp / "c" / "per_class.csv")
    pc_r = pd.read_csv(tmp / "r" / "per_class.csv")
    pd.testing.assert_frame_equal(pc_c, pc_r)
    assert set(pc_c["class"]) <= {f"class{c:02d}" for c in range(8, 14)}
    n_queries = pc_c[pc_c.shot == 1].n.sum()
    assert n_queries == 20 * 3  # 3-way, 1 query per class


def test_cli_with_pairs_and_seed(trained):
    tmp, run, test_dir = trained
    pairs = tmp / "pairs.csv"
    pd.DataFrame({"class_a": ["class08", "class10"], "class_b": ["class09", "class11"],
                  "kind": ["move", "move"]}).to_csv(pairs, index=False)  # fmt: skip
    out = tmp / "cli" / "eval.csv"
    args = ["evaluate", "--run", str(run), "--shards", str(test_dir), "--shots", "1",
            "--episodes", "20", "--seed", "3", "--pairs", str(pairs), "--out", str(out)]  # fmt: skip
    assert cli(args) == 0
    table = pd.read_csv(out)
    assert table.protocol.tolist() == ["standard", "reversed_pairs"]
    assert table.seed.tolist() == [3, 3] and table.way.tolist() == [3, 2]
    per_pair = pd.read_csv(out.parent / "reversed_pairs.csv")
    assert len(per_pair) == 2 and (per_pair.accuracy.between(0, 100)).all()
    again = evaluate(
        run,
        tmp / "cli2" / "eval.csv",
        overrides=[
            f"data.test_shards={test_dir}",
            "eval.shots=[1]",
            "eval.episodes=20",
            "eval.seed=3",
        ],
    )
    assert again.accuracy.iloc[0] == table.accuracy.iloc[0]


def test_evaluation_only_overrides_eval_settings(trained):
    tmp, run, test_dir = trained
    with pytest.raises(ValueError, match="train.lr"):
        evaluate(run, tmp / "bad" / "eval.csv", overrides=["train.lr=1.0"])


def test_zero_is_not_replaced_by_a_default(trained):
    """eval.episodes=0 is a value, not 'unset': the spec keeps it (no `or default`)."""
    from d2st.build import load_run

    tmp, run, test_dir = trained
    spec, _ = load_run(run, "cpu", ["eval.seed=0", "eval.pair_episodes=0"])
    assert spec.eval.seed == 0 and spec.eval.pair_episodes == 0


def test_train_then_evaluate_in_one_process_equals_the_two_commands(trained):
    """`d2st train --evaluate` (the workflow's job per run) writes what `d2st evaluate` writes."""
    tmp, run, test_dir = trained
    pairs = tmp / "pairs1.csv"
    pd.DataFrame({"class_a": ["class08"], "class_b": ["class09"], "kind": ["move"]}).to_csv(
        pairs, index=False
    )
    evals = [f"data.test_shards={test_dir}", "eval.shots=[1,2]", "eval.episodes=20"]
    one = tmp / "one" / "eval.csv"
    args = ["train", "--config", str(run / "config.yaml"), "--evaluate", str(one)]
    args += ["--pairs", str(pairs)] + [a for e in evals for a in ("--eval", e)]
    assert cli(args) == 0  # the run is finished: no training, evaluation only
    two = tmp / "two" / "eval.csv"
    assert (
        cli(["evaluate", "--run", str(run), "--pairs", str(pairs), "--out", str(two), *evals]) == 0
    )
    timing = ["eval_time_s", "peak_mem_mb"]
    a, b = pd.read_csv(one).drop(columns=timing), pd.read_csv(two).drop(columns=timing)
    assert a.protocol.tolist() == ["standard", "standard", "reversed_pairs"]
    pd.testing.assert_frame_equal(a, b)
    for name in ("per_class.csv", "reversed_pairs.csv", "eval_spec.yaml"):
        assert (one.parent / name).read_bytes() == (two.parent / name).read_bytes(), name


def test_evaluation_flags_of_train_need_evaluate(trained, capsys):
    tmp, run, test_dir = trained
    assert cli(["train", "--config", str(run / "config.yaml"), "--eval", "eval.episodes=5"]) == 1
    assert "--evaluate" in capsys.readouterr().err


def test_a_finished_run_whose_outputs_snakemake_removed_is_evaluated_not_retrained(tmp_path):
    """Changed evaluation settings rerun the workflow's job of a finished run: Snakemake removes
    model.safetensors and done first; the run's last checkpoint is the finished state, so the
    job trains no episode and rewrites the same weights before evaluating."""
    from d2st.train import main as train_main

    train_dir, test_dir = make_dataset(tmp_path)
    cfg = load_config(None, tiny_overrides(tmp_path, train_dir, test_dir, **{"train.episodes": 8}))
    run = train(cfg, progress=False).run_dir
    before = (run / "model.safetensors").read_bytes()
    log_before = (run / "train_log.csv").read_bytes()
    (run / "model.safetensors").unlink()
    (run / "done").unlink()
    seen = []
    import d2st.train as engine

    original = engine.step
    engine.step = lambda *a, **k: seen.append(1) or original(*a, **k)
    try:
        assert train_main(str(run / "config.yaml"), []) == run
    finally:
        engine.step = original
    assert seen == [] and (run / "done").is_file()
    assert (run / "model.safetensors").read_bytes() == before
    assert (run / "train_log.csv").read_bytes() == log_before
