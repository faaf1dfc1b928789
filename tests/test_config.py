"""Run config: defaults, YAML + overrides, errors naming the key, presets from the official table."""

from __future__ import annotations

import pytest

from d2st.config import (
    OFFICIAL,
    ConfigError,
    RunConfig,
    from_dict,
    load_config,
    parse_override,
    preset,
)


def test_defaults_resolve_frames_and_crop_from_the_model():
    cfg = load_config(None)
    assert cfg.data.frames == cfg.model.frames and cfg.data.crop == cfg.model.image_size


def test_yaml_and_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  lr: 2e-3\n  shot: 5\nmetric:\n  name: trx\n")
    cfg = load_config(path, ["train.lr=1e-4", "metric.trx_cardinalities=[2, 3, 4]", "run.name=x"])
    assert cfg.train.lr == pytest.approx(1e-4) and isinstance(cfg.train.lr, float)
    assert cfg.train.shot == 5 and cfg.metric.name == "trx"
    assert cfg.metric.trx_cardinalities == [2, 3, 4] and cfg.run.name == "x"


def test_parse_override_nests_and_parses_yaml():
    assert parse_override("a.b.c=[1, 2]") == {"a": {"b": {"c": [1, 2]}}}
    assert parse_override("eval.cache_features=false") == {"eval": {"cache_features": False}}
    with pytest.raises(ConfigError):
        parse_override("novalue")


@pytest.mark.parametrize(
    "override, key",
    [
        ("train.lrr=1", "train.lrr"),
        ("bogus.x=1", "bogus"),
        ("metric.name.deep=1", "metric.name"),
        ("model.nope=3", "model.nope"),
    ],
)
def test_unknown_key_is_named(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(None, [override])


@pytest.mark.parametrize(
    "override, key",
    [
        ("train.episodes=ten", "train.episodes"),
        ("train.episodes=1.5", "train.episodes"),
        ("train.lr=fast", "train.lr"),
        ("data.color_jitter=3", "data.color_jitter"),
        ("data.flip=both", "data.flip"),
        ("metric.name=euclid", "metric.name"),
        ("metric.trx_cardinalities=[2, x]", r"metric.trx_cardinalities\[1\]"),
        ("eval.shots=5", "eval.shots"),
        ("model.backbone=resnet9000", "model.backbone"),
        ("data.frames=4", "data.frames"),
    ],
)
def test_wrong_type_is_named(override, key):
    with pytest.raises((ConfigError, ValueError), match=key):
        load_config(None, [override])


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(None, ["preset=ssv2_small/resnet50", "metric.name=otam"])
    cfg.save(tmp_path / "config.yaml")
    again = load_config(tmp_path / "config.yaml")
    assert again == cfg and isinstance(again, RunConfig)


@pytest.mark.parametrize("family_backbone", ["resnet50", "vit_b16"])
@pytest.mark.parametrize("dataset", ["ssv2_full", "ssv2_small", "kinetics100", "hmdb51", "ucf101"])
def test_presets_follow_the_official_table(dataset, family_backbone, shared):
    import pandas as pd

    cfg = from_dict({"preset": f"{dataset}/{family_backbone}"})
    t13 = pd.read_csv(shared / "paper" / "reported" / "table13.csv")
    name = "resnet50" if family_backbone == "resnet50" else "clip_vit_b16"
    rows = t13[(t13.backbone == name) & (t13.dataset == dataset)].set_index("hyperparameter").value
    assert cfg.train.lr == float(rows["base_learning_rate"])
    assert cfg.train.warmup_start_lr == float(rows["warmup_start_learning_rate"])
    assert cfg.train.episodes == int(rows["training_episodes"])
    assert cfg.train.warmup_episodes == int(rows["warmup_episodes"])
    assert cfg.train.accumulate == int(rows["batch_size"])
    assert cfg.model.backbone == family_backbone and cfg.data.dataset == dataset
    assert cfg.train.lr_milestones[0] == 0.0 and len(cfg.train.lr_factors) == 4


def test_aux_weights_match_the_official_configs():
    want = {
        "resnet": [1.0, 0.5, 1.5, 2.0, 1.5],
        "vit": [2.0, 0.5, 0.0, 2.5, 0.0],
    }
    order = ["ssv2_full", "ssv2_small", "kinetics100", "hmdb51", "ucf101"]
    for fam, weights in want.items():
        assert [OFFICIAL[(fam, d)][5] for d in order] == weights
    assert preset("hmdb51", "resnet18")["metric"]["aux_weight"] == 2.0
    with pytest.raises(ConfigError, match="preset"):
        preset("imagenet", "resnet50")
