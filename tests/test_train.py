"""Trainer: schedule, weight-decay groups, gradients, learning, run directory, exact resume."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from d2st.build import build_model
from d2st.config import TrainCfg, load_config
from d2st.data.episodes import EpisodeSampler
from d2st.data.shards import ShardSet
from d2st.data.transforms import eval_transform
from d2st.recipe import Schedule, param_groups
from d2st.train import run_recipe, train

sys.path.insert(0, str(Path(__file__).parent))
from fewshot_fixtures import FRAMES, make_dataset, tiny_overrides  # noqa: E402


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("shards")
    return make_dataset(tmp)


def _cfg(tmp, data, **extra):
    return load_config(None, tiny_overrides(tmp, *data, **extra))


def test_lr_schedule_warmup_then_steps():
    t = TrainCfg(
        episodes=1000,
        lr=1.0,
        warmup_start_lr=0.2,
        warmup_episodes=100,
        lr_milestones=[0.0, 0.4, 0.6, 0.8],
        lr_factors=[1.0, 0.1, 0.05, 0.01],
    )
    assert Schedule.from_train(t).lr_at(0) == pytest.approx(0.2)
    assert Schedule.from_train(t).lr_at(50) == pytest.approx(0.6)
    assert Schedule.from_train(t).lr_at(100) == pytest.approx(1.0)
    assert Schedule.from_train(t).lr_at(399) == pytest.approx(1.0)
    assert Schedule.from_train(t).lr_at(400) == pytest.approx(0.1)
    assert Schedule.from_train(t).lr_at(650) == pytest.approx(0.05)
    assert Schedule.from_train(t).lr_at(999) == pytest.approx(0.01)


def test_norm_parameters_are_exempt_from_weight_decay():
    model = torch.nn.Sequential(
        torch.nn.Linear(3, 4), torch.nn.LayerNorm(4), torch.nn.BatchNorm1d(4)
    )
    model[0].bias.requires_grad_(False)
    groups = param_groups(model, 1e-3, "all_norms")
    decayed = {id(p) for g in groups if g["weight_decay"] > 0 for p in g["params"]}
    exempt = {id(p) for g in groups if g["weight_decay"] == 0 for p in g["params"]}
    assert decayed == {id(model[0].weight)}
    assert exempt == {id(p) for p in [*model[1].parameters(), *model[2].parameters()]}


@pytest.mark.parametrize(
    "adapter, metric", [("d2st", "bimhm"), ("st", "otam"), ("st", "trx"), ("none", "bimhm")]
)
def test_gradients_reach_exactly_the_trainable_parameters(tmp_path, data, adapter, metric):
    cfg = _cfg(
        tmp_path,
        data,
        **{
            "model.adapter": adapter,
            "metric.name": metric,
            "metric.trx_dim": 16,
            "metric.aux_weight": 1.0,
            "metric.aux_classes": 8,
        },
    )
    model = build_model(cfg)
    model.train()
    g = torch.Generator().manual_seed(0)
    support, query = (
        torch.randn(3, 4, 3, 32, 32, generator=g),
        torch.randn(3, 4, 3, 32, 32, generator=g),
    )
    labels = torch.arange(3)
    logits, aux = model(support, labels, query)
    loss = F.cross_entropy(logits, labels) + F.cross_entropy(aux, torch.tensor([0, 1, 2, 3, 4, 5]))
    loss.backward()
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
        else:
            assert p.grad is None, name
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert any(n.startswith("classifier") for n in trainable)
    assert any(n.startswith("encoder") for n in trainable) == (adapter != "none")


def _fixed_loss(model, train_dir, n=12):
    """Mean episode CE on fixed, un-augmented episodes (a low-noise learning signal)."""
    shards = ShardSet(train_dir)
    sampler = EpisodeSampler(shards.labels, 3, 1, 2, seed=123)
    model.eval()
    losses = []
    with torch.no_grad():
        for e in range(n):
            ep = sampler.episode(e)

            def view(idx):
                return eval_transform(
                    torch.from_numpy(shards.get_many(idx)),
                    32,
                    model.encoder.mean,
                    model.encoder.std,
                )

            logits, _ = model(view(ep.support), torch.from_numpy(ep.support_labels), view(ep.query))
            losses.append(float(F.cross_entropy(logits, torch.from_numpy(ep.query_labels))))
    return float(np.mean(losses))


def test_a_few_dozen_episodes_lower_the_loss(tmp_path, data):
    # the toy classes differ by colour tint and motion direction: query jitter and flip would
    # erase exactly that signal, so this run trains without them
    extra = {
        "train.episodes": 40,
        "train.lr": 5e-3,
        "train.warmup_episodes": 0,
        "train.lr_milestones": [0.0],
        "train.lr_factors": [1.0],
        "train.accumulate": 2,
        "train.log_every": 8,
        "train.checkpoint_every": 100,
        "data.flip": "none",
        "data.color_jitter": False,
    }
    cfg = _cfg(tmp_path, data, **extra)
    before = _fixed_loss(build_model(cfg), data[0])
    result = train(cfg, progress=False)
    after = _fixed_loss(result.model, data[0])
    assert after < before - 0.1, (before, after)


def _weights(run_dir: Path):
    from safetensors.torch import load_file

    return load_file(str(run_dir / "model.safetensors"))


def _assert_identical(a: dict, b: dict):
    assert a.keys() == b.keys() and a
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_run_directory_and_resume_equals_uninterrupted(tmp_path, data):
    full = train(_cfg(tmp_path, data, **{"run.name": "full"}), progress=False)
    out = full.run_dir
    for f in ("config.yaml", "checkpoint.pt", "model.safetensors", "train_log.csv", "done"):
        assert (out / f).is_file(), f
    import pandas as pd

    log = pd.read_csv(out / "train_log.csv")
    assert list(log.columns) == ["episode", "loss", "accuracy", "lr", "episodes_per_s"]
    assert log.episode.tolist() == [4, 8, 12, 16]
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ckpt["episode"] == 16 and {"model", "optimizer", "rng", "schedule"} <= ckpt.keys()

    cfg = _cfg(tmp_path, data, **{"run.name": "cut"})
    part = train(cfg, progress=False, max_episodes=6)  # stops after the update covering episode 6
    assert not part.finished and not (part.run_dir / "done").exists()
    assert torch.load(part.run_dir / "checkpoint.pt", weights_only=True)["episode"] == 8
    rest = train(_cfg(tmp_path, data, **{"run.name": "cut"}), progress=False)
    assert rest.finished
    _assert_identical(_weights(full.run_dir), _weights(rest.run_dir))
    assert pd.read_csv(rest.run_dir / "train_log.csv").episode.tolist() == [4, 8, 12, 16]


def test_resume_after_sigkill_equals_uninterrupted(tmp_path, data):
    extra = {"train.episodes": 24, "train.checkpoint_every": 4, "train.log_every": 8}
    full = train(_cfg(tmp_path, data, **{"run.name": "full", **extra}), progress=False)
    cfg_path = tmp_path / "kill.yaml"
    _cfg(tmp_path, data, **{"run.name": "kill", **extra}).save(cfg_path)
    run = tmp_path / "runs" / "kill"
    proc = subprocess.Popen(
        [sys.executable, "-m", "d2st.cli", "train", "--config", str(cfg_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if (run / "checkpoint.pt").exists():
            break
        time.sleep(0.05)
    killed = proc.poll() is None
    if killed:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    if not killed:
        pytest.skip("the subprocess finished before it could be killed")
    done_before = torch.load(run / "checkpoint.pt", weights_only=True)["episode"]
    assert done_before < 24 and not (run / "done").exists()
    resumed = train(load_config(cfg_path), progress=False)
    _assert_identical(_weights(full.run_dir), _weights(resumed.run_dir))


def test_non_finite_loss_skips_the_episode(tmp_path, data, monkeypatch, caplog):
    from d2st.models import metrics

    original = metrics.BiMHM.forward
    calls = {"n": 0}

    def flaky(self, s, labels, q):
        calls["n"] += 1
        out = original(self, s, labels, q)
        return out * math.nan if calls["n"] == 3 else out

    monkeypatch.setattr(metrics.BiMHM, "forward", flaky)
    with caplog.at_level("WARNING", logger="d2st.train"):
        result = train(_cfg(tmp_path, data, **{"train.episodes": 8}), progress=False)
    assert "non-finite loss" in caplog.text
    assert all(torch.isfinite(v).all() for v in _weights(result.run_dir).values())


def test_nan_at_the_end_of_a_window_zeroes_its_update_official(tmp_path, data, monkeypatch):
    """Authors' policy: a NaN wipes the window's gradient so far; at its last episode: no step."""
    from d2st.models import metrics

    original = metrics.BiMHM.forward
    calls = {"n": 0}

    def flaky(self, s, labels, q):  # the 4th episode = the last of the first 4-episode window
        calls["n"] += 1
        out = original(self, s, labels, q)
        return out * math.nan if calls["n"] == 4 else out

    extra = {"train.episodes": 8, "train.update_mode": "official", "train.nan_policy": "official"}
    extra |= {"train.checkpoint_every": 8, "run.name": "nan"}
    spec = _cfg(tmp_path, data, **extra)
    before = {k: v.clone() for k, v in build_model(spec).state_dict().items()}
    monkeypatch.setattr(metrics.BiMHM, "forward", flaky)
    result = train(spec, progress=False)
    after = result.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # one window, no step
    ckpt = torch.load(result.run_dir / "checkpoint.pt", weights_only=True)
    assert ckpt["optimizer"]["state"] == {}  # Adam never stepped


def test_official_recipe_resume_equals_uninterrupted(tmp_path, data):
    extra = {"train.update_mode": "official", "train.lr_timing": "last", "train.episodes": 24}
    extra |= {"train.nan_policy": "official", "train.decay_rule": "official"}
    full = train(_cfg(tmp_path, data, **{"run.name": "ofull", **extra}), progress=False)
    part = train(
        _cfg(tmp_path, data, **{"run.name": "ocut", **extra}), progress=False, max_episodes=6
    )
    assert not part.finished
    assert torch.load(part.run_dir / "checkpoint.pt", weights_only=True)["update"] == 1
    rest = train(_cfg(tmp_path, data, **{"run.name": "ocut", **extra}), progress=False)
    assert rest.finished
    _assert_identical(_weights(full.run_dir), _weights(rest.run_dir))
    import json

    assert json.loads((rest.run_dir / "done").read_text())["updates"] == 3  # 24 draws / (2 x 4)


def test_hmdb51_resnet50_schedule_makes_500_updates_at_their_scale_and_lr():
    """8000 draws, 8 distinct episodes per update, 2 identical ranks: 500 updates, loss x 1/2."""
    from d2st.config import resolve

    spec = resolve({"schedule": "hmdb51/resnet50"}, train_classes=31)
    r = run_recipe(spec)
    ws = r.windows()
    assert len(ws) == 500 and all(w.count == 8 and w.loss_scale == 0.5 for w in ws)
    t = spec.train
    # their lr of an update = lr at the last iteration (draw 16u + 14): warm-up 4e-4 -> 2e-3 over
    # 800 draws, so the first update uses 4e-4 + 1.6e-3 * 14 / 800
    from d2st.recipe import update_lr

    assert update_lr(ws[0], Schedule.from_train(t), t.lr_timing) == pytest.approx(4.28e-4)


@pytest.mark.parametrize(
    "key, value, words",
    [
        ("model.frames", FRAMES // 2, [f"{FRAMES} frames", f"model.frames={FRAMES // 2}"]),
        ("model.image_size", 64, ["px", "model.image_size=64"]),
    ],
)
def test_shards_that_do_not_match_the_spec_stop_the_run(tmp_path, data, key, value, words):
    """A 4-frame run on 8-frame shards would fold each clip into two videos: it must stop."""
    from d2st.errors import UserError

    spec = _cfg(tmp_path, data, **{key: value})
    with pytest.raises(UserError) as e:  # the reader's ShardError or the spec check
        train(spec, progress=False)
    for w in words:
        assert w in str(e.value)
    assert not (spec.dir / "checkpoint.pt").exists()


def test_train_only_reads_its_spec(tmp_path, data):
    spec = _cfg(tmp_path, data, **{"run.name": None, "train.episodes": 2})
    before = spec.to_dict()
    train(spec, progress=False)
    assert spec.to_dict() == before


def test_changed_config_trains_a_fresh_run(tmp_path, data):
    """Editing a hyper-parameter never resumes a checkpoint made under the old one."""
    first = train(_cfg(tmp_path, data, **{"run.name": "edit", "train.episodes": 4}), progress=False)
    changed = _cfg(tmp_path, data, **{"run.name": "edit", "train.episodes": 4, "train.lr": 1e-4})
    seen = []
    second = train(changed, progress=False, on_episode=seen.append)
    assert seen == [0, 1, 2, 3]  # trained from episode 0, not resumed
    assert second.run_dir == first.run_dir
    aside = list(tmp_path.glob("runs/edit.superseded-*"))
    assert len(aside) == 1 and (aside[0] / "model.safetensors").exists()


def test_frames_per_segment_jitters_training_and_centres_the_test_view(tmp_path):
    """F = 2 stored candidates per segment: a random one per segment at training (two seeds see
    different frames), the centre candidate at test (deterministic, so the cache stays exact)."""
    from d2st.build import load_run
    from d2st.evaluate import TestFrames, evaluate
    from d2st.train import EpisodeClips, View

    tr, te = make_dataset(tmp_path / "f2", frames=FRAMES * 2)
    clips = torch.arange(FRAMES * 2).view(1, FRAMES * 2, 1, 1, 1).expand(3, -1, 2, 2, 3)

    class Fake:
        def get_many(self, idx):
            return clips[: len(list(idx))].numpy()

    view = View(32, (0.5,) * 3, (0.5,) * 3, False, False, frames=FRAMES, frames_per_segment=2)
    picks = []
    for seed in (1, 2):
        ds = EpisodeClips(Fake(), None, [], view)
        picked = ds._clips([0, 1, 2], torch.Generator().manual_seed(seed))  # (3, T, H, W, 3)
        stored = picked[:, :, 0, 0, 0]  # the stored frame number each position took
        assert ((stored // 2) == torch.arange(FRAMES)).all()  # one candidate of each segment
        picks.append(stored)
    assert not torch.equal(picks[0], picks[1])  # temporal jitter: seeds differ

    extra = {"data.frames_per_segment": 2, "train.episodes": 4, "run.name": "f2"}
    result = train(load_config(None, tiny_overrides(tmp_path, tr, te, **extra)), progress=False)
    assert result.finished
    spec, _ = load_run(result.run_dir)
    from d2st.data.shards import ShardSet

    centre = TestFrames(ShardSet(te), spec).get_many([0, 1])
    stored = ShardSet(te).get_many([0, 1])
    assert np.array_equal(centre, stored[:, 1::2])  # candidate F // 2 = 1 of each segment
    a = evaluate(result.run_dir, tmp_path / "e1" / "eval.csv", overrides=["eval.episodes=10"])
    b = evaluate(result.run_dir, tmp_path / "e2" / "eval.csv", overrides=["eval.episodes=10"])
    assert a.accuracy.tolist() == b.accuracy.tolist()


def test_a_run_identical_but_for_its_name_is_reused_not_retrained(tmp_path, data):
    """The lr selection's candidate at the chosen lr is the final run of that seed: same bytes.

    Trained twice under two names the weights are identical (the name reaches no computation),
    so adopting the candidate's weights is exact; a candidate differing in any other field is
    never adopted.
    """
    cand = train(_cfg(tmp_path, data, **{"run.name": "cand_lr"}), progress=False)
    other = train(
        _cfg(tmp_path, data, **{"run.name": "cand_other", "train.lr": 1e-4}), progress=False
    )
    fresh = train(_cfg(tmp_path, data, **{"run.name": "final_fresh"}), progress=False)
    _assert_identical(_weights(cand.run_dir), _weights(fresh.run_dir))

    seen = []
    final = train(
        _cfg(tmp_path, data, **{"run.name": "final"}),
        progress=False,
        on_episode=seen.append,
        reuse_from=[other.run_dir, tmp_path / "runs" / "missing", cand.run_dir],
    )
    assert seen == [] and final.finished  # adopted: not a single episode trained
    _assert_identical(_weights(final.run_dir), _weights(fresh.run_dir))
    import json

    assert json.loads((final.run_dir / "done").read_text())["reused_from"] == str(cand.run_dir)
    assert load_config(final.run_dir / "config.yaml").run.name == "final"
    assert (final.run_dir / "train_log.csv").read_bytes() == (
        cand.run_dir / "train_log.csv"
    ).read_bytes()

    seen = []
    train(
        _cfg(tmp_path, data, **{"run.name": "final_lr2"}),
        progress=False,
        on_episode=seen.append,
        reuse_from=[other.run_dir],  # another lr: trains
    )
    assert seen == list(range(16))
