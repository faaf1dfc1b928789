"""D2ST-Adapter-MM end to end: the resolver's loss weight and run name, a real ``train()`` on the
tiny fixtures (text encoded once per class, the MM head trained and saved, the frozen text tower
not), and ``evaluate`` with the test vocabulary (cached == recomputed)."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from d2st.config import load_config, resolve
from d2st.evaluate import evaluate
from d2st.models.mm import MM_LOSS_WEIGHTS
from d2st.plan import MatrixError, expand_matrix
from d2st.train import train

sys.path.insert(0, str(Path(__file__).parent))
from fewshot_fixtures import make_dataset, tiny_overrides  # noqa: E402

TRAIN_CLASSES, TEST_CLASSES, EPISODES, WAY = 8, 6, 16, 3


@pytest.fixture(scope="module")
def mm_run(tmp_path_factory):
    """A tiny resnet_tiny + D2ST + MM run trained for 16 3-way episodes; the encode counters."""
    tmp = tmp_path_factory.mktemp("mm")
    train_dir, test_dir = make_dataset(tmp, TRAIN_CLASSES, TEST_CLASSES)
    extra = {"model.adapter": "d2st", "model.mm": "true", "train.episodes": EPISODES}
    spec = load_config(
        None, tiny_overrides(tmp, train_dir, test_dir, **extra), train_classes=TRAIN_CLASSES
    )
    seen = []
    result = train(spec, progress=False, on_episode=seen.append)
    tower = result.model.mm.tower
    return tmp, spec, result, test_dir, len(seen), (tower.calls, tower.encoded)


def test_resolver_sets_the_video_text_weight_and_the_run_name():
    base = {"model": {"backbone": "vit_b16", "mm": True}, "metric": {"aux_classes": 64}}
    for dataset, weight in MM_LOSS_WEIGHTS.items():
        spec = resolve({**base, "data": {"dataset": dataset}})
        assert spec.metric.aux_weight == weight, dataset
        assert spec.run.name.endswith("_mm"), spec.run.name
        # the schedule's linear-head weight (vit/ssv2_full: 2.0) is replaced, a user's kept
        sched = resolve({**base, "schedule": f"{dataset}/vit_b16"})
        assert sched.metric.aux_weight == weight
        assert resolve(base, ["metric.aux_weight=0.25"]).metric.aux_weight == 0.25
        assert resolve(sched.to_dict()) == sched  # a resolved spec resolves to itself
    plain = resolve({"schedule": "ssv2_full/vit_b16", "metric": {"aux_classes": 64}})
    assert plain.metric.aux_weight == 2.0 and not plain.run.name.endswith("_mm")


def test_planner_requires_the_mm_variant():
    row = {"run": {"adapter": "d2st", "overrides": {"model.mm": True}}}
    cfg = {
        "run_defaults": {"metric": "bimhm", "backbone": "vit_b16", "dataset": "hmdb51"},
        "tables": {"t": {"rows": [row]}},
    }
    with pytest.raises(MatrixError, match=r"tables\.t\.rows\[0\].*variant: mm"):
        expand_matrix(cfg)
    row["run"]["variant"] = "mm"
    (run,) = expand_matrix(cfg).runs.values()
    assert run.name.endswith("_mm")


def test_mm_trains_and_encodes_each_class_name_once(mm_run):
    _, spec, result, _, trained_episodes, (calls, encoded) = mm_run
    assert result.finished and trained_episodes == EPISODES
    assert spec.metric.aux_weight == 1.0  # synthetic: no CLIP-FSAR value, our 1.0
    # one tower call for the 8 train names, never one per episode (16 episodes x 3 classes)
    assert (calls, encoded) == (1, TRAIN_CLASSES)
    assert result.model.mm.class_names == [f"class{c:02d}" for c in range(TRAIN_CLASSES)]
    saved = load_file(str(result.run_dir / "model.safetensors"))
    assert "mm.logit_scale" in saved and any(k.startswith("mm.transformer.") for k in saved)
    assert not any(k.startswith("mm.tower.") for k in saved)  # the text tower stays frozen
    assert not any(k.startswith("classifier") for k in saved)  # the text logits replace it
    # the scale of the video-text logits starts at 1.0: training moved it, so that loss is on
    assert float(saved["mm.logit_scale"]) != 1.0


def test_mm_evaluate_cached_equals_recomputed(mm_run):
    tmp, _, result, test_dir, _, _ = mm_run
    common = [f"data.test_shards={test_dir}", "eval.shots=[1,2]", "eval.episodes=20"]
    run = result.run_dir
    cached = evaluate(run, tmp / "c" / "eval.csv", overrides=[*common, "eval.cache_features=true"])
    recomputed = evaluate(
        run, tmp / "r" / "eval.csv", overrides=[*common, "eval.cache_features=false"]
    )
    assert cached.accuracy.notna().all() and len(cached) == 2
    pd.testing.assert_series_equal(cached.accuracy, recomputed.accuracy)
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp / "c" / "per_class.csv"), pd.read_csv(tmp / "r" / "per_class.csv")
    )
    # the MM head's Transformer and scale count as tunable; the text transformer does not
    saved = load_file(str(run / "model.safetensors"))
    head = sum(v.numel() for k, v in saved.items() if k.startswith("mm."))
    enc = result.model.encoder.tunable_parameters()
    metric = sum(p.numel() for p in result.model.metric.parameters() if p.requires_grad)
    assert int(cached.tunable_params.iloc[0]) == enc + metric + head


def test_mm_match_uses_the_text_of_the_episode_classes(mm_run):
    """Same features, other class indices -> other logits: the text enters the matching."""
    _, _, result, _, _, _ = mm_run
    model = result.model.eval()
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(2 * WAY, 4, model.feature_dim, generator=g)
    labels = torch.arange(WAY)
    a = model.match(feats[:WAY], labels, feats[WAY:], classes=torch.tensor([0, 1, 2]))
    b = model.match(feats[:WAY], labels, feats[WAY:], classes=torch.tensor([3, 4, 5]))
    assert a.shape == (WAY, WAY) and not torch.allclose(a, b)
