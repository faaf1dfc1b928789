"""Run configuration: typed dataclass sections, YAML + ``key=value`` overrides, official presets.

A run config has six sections (docs/CONTRACTS.md): ``run``, ``data``, ``model``
(:class:`d2st.models.config.ModelCfg`, owned by the model code), ``metric``, ``train`` and ``eval``.
Loading order: dataclass defaults <- the preset named by an optional top-level ``preset:
{dataset}/{backbone}`` key <- the YAML file's sections <- command-line ``a.b=value`` overrides.
Values are parsed as YAML (``train.shot=5``, ``metric.trx_cardinalities=[2,3,4]``), an unknown key
fails naming its dotted path, and a value of the wrong type fails naming its key.

Presets (:func:`preset`) reproduce the official configs per backbone family x dataset:
learning rates, warm-up and training episodes (paper Table 13), step milestones/factors
(official_impl.md §6) and auxiliary-loss weights (§5).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from d2st.models.config import ModelCfg


class ConfigError(ValueError):
    """A bad config key or value; the message starts with the dotted key."""


@dataclass
class RunSection:
    name: str | None = None  # run folder name; null -> d2st.naming.run_name(...)
    out_dir: str = "results/runs"  # the run directory is {out_dir}/{name}
    seed: int = 0  # model init, episode stream and augmentation seed


@dataclass
class DataCfg:
    dataset: str = (
        "synthetic"  # dataset key (ssv2_full, ssv2_small, kinetics100, hmdb51, ucf101, synthetic)
    )
    train_shards: str | None = None  # shard folder of the train partition
    test_shards: str | None = None  # shard folder of the test partition (d2st evaluate default)
    frames: int | None = None  # T per video (must match the shards); null -> model.frames
    crop: int | None = None  # crop side (random train, centre test); null -> model.image_size
    flip: Literal["none", "queries"] = (
        "queries"  # official flips training queries; paper: none on SSv2
    )
    color_jitter: bool = True  # official colour jitter on training queries (SUPPORT_QUERY_DIFF)
    normalize: Literal["encoder", "imagenet", "clip", "none"] = "encoder"  # mean/std source


@dataclass
class MetricCfg:
    name: Literal["bimhm", "otam", "trx"] = "bimhm"  # D2ST uses Bi-MHM in all main tables
    otam_lambda: float = 0.5  # soft-min lambda; 0.5 as D2ST/MoLo v2, 0.1 as HyRSM/MoLo CNN_OTAM
    trx_cardinalities: list[int] = field(
        default_factory=lambda: [2, 3]
    )  # paper appendix: [2, 3, 4]
    trx_dim: int = 1152  # TRX d_k
    aux_weight: float = (
        0.0  # weight of the auxiliary global-class CE (official per dataset: presets)
    )
    aux_classes: int | None = None  # classifier size; null -> number of train classes (resolved)


@dataclass
class TrainCfg:
    way: int = 5
    shot: int = 1  # official: 1-shot training only, 5-shot tested on the same model
    query: int = 1  # queries per class
    episodes: int = 10000  # total training episodes (all ranks together)
    lr: float = 2.0e-3  # base learning rate (Table 13)
    warmup_start_lr: float = 4.0e-4
    warmup_episodes: int = 1000  # linear warm-up to the scheduled lr (10% of training officially)
    lr_milestones: list[float] = field(default_factory=lambda: [0.0, 0.4, 0.6, 0.8])  # fractions
    lr_factors: list[float] = field(default_factory=lambda: [1.0, 0.1, 0.05, 0.01])  # x lr
    weight_decay: float = 1.0e-3  # coupled L2 in Adam; official code 1e-3, paper says 5e-4
    accumulate: int = 8  # episodes per optimiser update (the paper's "batch size 8")
    amp: Literal["none", "bf16"] = "none"  # official: fp32
    log_every: int = 10  # episodes per train_log.csv row
    checkpoint_every: int = 200  # episodes between checkpoints (rounded up to whole updates)
    device: str = "auto"  # auto -> cuda if available (per local rank) else cpu
    workers: int = 0  # DataLoader workers preparing episodes (0 = in the main process)


@dataclass
class EvalCfg:
    way: int = 5
    shots: list[int] = field(default_factory=lambda: [1, 5])
    query: int = 1  # queries per class at test (1 in HyRSM/MoLo/D2ST)
    episodes: int = 10000
    seed: int = 0  # the test episode list is a function of this seed only
    cache_features: bool = True  # encode every test video once; exact (test view deterministic)
    batch_episodes: int = 200  # episodes matched at once on cached features
    pair_episodes: int = 1000  # binary episodes per time-reversed class pair (--pairs)


@dataclass
class RunConfig:
    run: RunSection = field(default_factory=RunSection)
    data: DataCfg = field(default_factory=DataCfg)
    model: ModelCfg = field(default_factory=ModelCfg)
    metric: MetricCfg = field(default_factory=MetricCfg)
    train: TrainCfg = field(default_factory=TrainCfg)
    eval: EvalCfg = field(default_factory=EvalCfg)

    def __post_init__(self):
        for key, model_key in (("frames", "frames"), ("crop", "image_size")):
            mine, theirs = getattr(self.data, key), getattr(self.model, model_key)
            if mine is None:
                setattr(self.data, key, theirs)
            elif mine != theirs:
                raise ConfigError(f"data.{key}: {mine} differs from model.{model_key} {theirs}")

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))


# --------------------------------------------------------------------------- validation


def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it converted (int->float, list)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    bad = ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key}: expected one of {list(args)}, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except ConfigError as e:
                errors.append(e)
        raise bad
    if origin in (list, tuple):
        if origin is tuple and isinstance(value, str):
            return value  # e.g. model densities "t,h,w": the section's own __post_init__ parses it
        if not isinstance(value, list | tuple):
            raise bad
        inner = args[0] if args else Any
        return [_coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
            try:
                return float(value)
            except ValueError:
                raise bad from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad
        return value
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key)
    return value


def _build(cls, data: Any, prefix: str):
    """Instantiate dataclass ``cls`` from a mapping, naming unknown keys and bad values."""
    if data is None:
        data = {}
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or '<root>'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for k in data:
        if k not in names:
            raise ConfigError(f"{prefix + '.' if prefix else ''}{k}: unknown key")
    values = {
        k: _coerce(v, hints[k], f"{prefix + '.' if prefix else ''}{k}") for k, v in data.items()
    }
    try:
        return cls(**values)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{prefix or '<root>'}: {e}") from e


def _plain(x):
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    return x


def _merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for k, v in update.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def parse_override(text: str) -> dict[str, Any]:
    """``"train.lr=1e-3"`` -> ``{"train": {"lr": 1e-3}}``; the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"{text}: overrides are written key.sub=value")
    key, raw = text.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"{key}: bad key")
    value = yaml.safe_load(raw) if raw.strip() else None
    nested: dict[str, Any] = {parts[-1]: value}
    for p in reversed(parts[:-1]):
        nested = {p: nested}
    return nested


def from_dict(data: dict[str, Any], overrides: list[str] | None = None) -> RunConfig:
    """Build a validated RunConfig from a nested mapping (+ optional preset key and overrides)."""
    data = dict(data or {})
    for o in overrides or []:
        data = _merge(data, parse_override(o))
    name = data.pop("preset", None)
    if name is not None:
        if not isinstance(name, str) or name.count("/") != 1:
            raise ConfigError(f"preset: expected 'dataset/backbone', got {name!r}")
        data = _merge(preset(*name.split("/")), data)
    return _build(RunConfig, data, "")


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> RunConfig:
    """Read a run config YAML (``None``: defaults only) and apply ``a.b=value`` overrides."""
    data = {}
    if path is not None:
        data = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"<root>: {path} does not hold a mapping")
    return from_dict(data, overrides)


# --------------------------------------------------------------------------- presets

DATASETS = ("ssv2_full", "ssv2_small", "kinetics100", "hmdb51", "ucf101")

# (family, dataset) -> lr, warm-up start lr, training episodes, STEPS (of 10 "epochs"), LRS, aux
# weight. Warm-up = 1 "epoch" = 10% of training (= Table 13's warm-up episodes). Sources: paper
# Table 13 (lr, warm-up, episodes), official configs (steps, factors, aux; official_impl.md §5-6).
OFFICIAL: dict[tuple[str, str], tuple[float, float, int, tuple, tuple, float]] = {
    ("resnet", "ssv2_full"): (2e-3, 4e-4, 120000, (0, 4, 6, 8), (1, 0.5, 0.1, 0.05), 1.0),
    ("resnet", "ssv2_small"): (2e-3, 4e-4, 40000, (0, 4, 6, 8), (1, 0.1, 0.05, 0.01), 0.5),
    ("resnet", "kinetics100"): (2e-3, 4e-4, 10000, (0, 2, 5, 8), (1, 0.1, 0.05, 0.01), 1.5),
    ("resnet", "hmdb51"): (2e-3, 4e-4, 8000, (0, 4, 6, 8), (1, 0.1, 0.05, 0.01), 2.0),
    ("resnet", "ucf101"): (2e-3, 4e-4, 8000, (0, 2, 5, 8), (1, 0.5, 0.1, 0.05), 1.5),
    ("vit", "ssv2_full"): (1e-3, 2e-4, 120000, (0, 4, 6, 8), (1, 0.5, 0.1, 0.05), 2.0),
    ("vit", "ssv2_small"): (1e-3, 2e-4, 40000, (0, 4, 6, 8), (1, 0.1, 0.05, 0.01), 0.5),
    ("vit", "kinetics100"): (5e-4, 1e-4, 3000, (0, 4, 6, 8), (1, 0.1, 0.05, 0.01), 0.0),
    ("vit", "hmdb51"): (1e-3, 2e-4, 3000, (0, 5, 7, 9), (1, 0.5, 0.1, 0.05), 2.5),
    ("vit", "ucf101"): (5e-4, 1e-4, 2400, (0, 5, 7, 9), (1, 0.1, 0.05, 0.01), 0.0),
}


def backbone_family(backbone: str) -> str:
    """``resnet`` for every ResNet (incl. the tiny ones), ``vit`` for the CLIP ViTs."""
    return "vit" if backbone.startswith("vit") else "resnet"


def preset(dataset: str, backbone: str) -> dict[str, Any]:
    """The official settings for ``dataset`` x ``backbone`` as a nested config mapping.

    Example: ``from_dict({"preset": "hmdb51/resnet50"})`` or ``load_config(None,
    ["preset=hmdb51/vit_b16"])``. ``model.backbone`` is set; ``data.normalize`` stays "encoder"
    (ImageNet mean/std for ResNets, CLIP's for ViTs come from the encoder).
    """
    key = (backbone_family(backbone), dataset)
    if key not in OFFICIAL:
        raise ConfigError(f"preset: no official settings for {dataset}/{backbone}")
    lr, warm_lr, episodes, steps, factors, aux = OFFICIAL[key]
    return {
        "data": {"dataset": dataset},
        "model": {"backbone": backbone},
        "metric": {"name": "bimhm", "aux_weight": aux},
        "train": {
            "way": 5,
            "shot": 1,
            "query": 1,
            "episodes": episodes,
            "lr": lr,
            "warmup_start_lr": warm_lr,
            "warmup_episodes": episodes // 10,
            "lr_milestones": [s / 10 for s in steps],
            "lr_factors": list(factors),
            "weight_decay": 1e-3,
            "accumulate": 8,
        },
    }
