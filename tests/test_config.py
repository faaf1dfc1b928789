"""Run spec: the one resolver, YAML + overrides, errors naming the key, official schedules."""

from __future__ import annotations

import dataclasses

import pytest

from d2st.catalog import BACKBONES, SCHEDULES
from d2st.config import (
    ConfigError,
    RunConfig,
    default_run_name,
    load_config,
    parse_override,
    resolve,
    schedule,
)
from d2st.models.backbones import TRUNKS


def test_resolve_fills_every_derived_value():
    spec = resolve({"metric": {"aux_weight": 1.0}}, train_classes=lambda s: 64)
    assert spec.run.name == default_run_name(spec) and spec.metric.aux_classes == 64
    assert spec.dir.name == spec.run.name


def test_resolve_is_idempotent_and_the_spec_is_frozen(tmp_path):
    spec = resolve({"schedule": "hmdb51/resnet50"}, ["run.seed=3"], train_classes=31)
    assert resolve(spec.to_dict()) == spec
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.train.lr = 1.0


def test_aux_head_without_a_class_count_is_an_error():
    with pytest.raises(ConfigError, match="metric.aux_classes"):
        resolve({"metric": {"aux_weight": 1.0}})


def test_old_preset_key_names_its_new_name():
    with pytest.raises(ConfigError, match="schedule"):
        resolve({"preset": "hmdb51/resnet50"})


def test_yaml_syntax_error_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  lr: [1,\n")
    with pytest.raises(ConfigError, match=str(path)):
        load_config(path)


def test_catalog_agrees_with_the_trunk_table():
    assert set(BACKBONES) == set(TRUNKS)
    for name, row in BACKBONES.items():
        assert row.family == TRUNKS[name].family, name


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
        ("data.frames=4", "data.frames"),  # T has one home: model.frames
    ],
)
def test_wrong_type_is_named(override, key):
    with pytest.raises((ConfigError, ValueError), match=key):
        load_config(None, [override])


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(None, ["schedule=ssv2_small/resnet50", "metric.name=otam"], train_classes=64)
    cfg.save(tmp_path / "config.yaml")
    again = load_config(tmp_path / "config.yaml")
    assert again == cfg and isinstance(again, RunConfig)


@pytest.mark.parametrize("family_backbone", ["resnet50", "vit_b16"])
@pytest.mark.parametrize("dataset", ["ssv2_full", "ssv2_small", "kinetics100", "hmdb51", "ucf101"])
def test_schedules_follow_the_official_table(dataset, family_backbone, shared):
    import pandas as pd

    cfg = resolve({"schedule": f"{dataset}/{family_backbone}"}, train_classes=64)
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
        assert [SCHEDULES[(fam, d)].aux_weight for d in order] == weights
    assert schedule("hmdb51", "resnet18")["metric"]["aux_weight"] == 2.0
    with pytest.raises(ConfigError, match="schedule"):
        schedule("imagenet", "resnet50")
