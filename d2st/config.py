"""The run spec: typed, frozen dataclass sections and the one resolver that fills them.

A run spec has six sections (docs/CONTRACTS.md): ``run``, ``data``, ``model``
(:class:`d2st.models.config.ModelCfg`, owned by the model code), ``metric``, ``train`` and ``eval``.
:func:`resolve` is the only place a run's settings are merged, defaulted and derived:

    dataclass defaults <- the official schedule named by an optional top-level
    ``schedule: {dataset}/{backbone}`` key (:data:`d2st.catalog.SCHEDULES`) <- the mapping given
    (a workflow's resolved run dict or a YAML file) <- ``a.b=value`` overrides <- derived values
    (``run.name`` from the catalog's naming rule, ``metric.aux_classes`` from the train classes,
    and with ``model.mm`` the video-text loss weight ``metric.aux_weight``, see :func:`resolve`).

Values are parsed as YAML (``train.shot=5``, ``metric.trx_cardinalities=[2,3,4]``); an unknown key
fails naming its dotted path, a value of the wrong type fails naming its key. Resolving a resolved
spec gives it back unchanged, so ``config.yaml`` in a run folder is the run's whole truth and the
engines (:mod:`d2st.train`, :mod:`d2st.evaluate`) only read it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from d2st import catalog
from d2st.models.config import ModelCfg
from d2st.naming import run_name


class ConfigError(ValueError):
    """A bad config key or value; the message starts with the dotted key."""


@dataclass(frozen=True)
class RunSection:
    name: str | None = None  # run folder name; null -> d2st.naming.run_name(...) (resolved)
    out_dir: str = catalog.RUNS_DIR  # the run directory is {out_dir}/{name}
    seed: int = 0  # model init, episode stream and augmentation seed


@dataclass(frozen=True)
class DataCfg:
    dataset: str = (
        "synthetic"  # dataset key (ssv2_full, ssv2_small, kinetics100, hmdb51, ucf101, synthetic)
    )
    train_shards: str | None = None  # shard folder of the train partition
    test_shards: str | None = None  # shard folder of the test partition (d2st evaluate default)
    flip: Literal["none", "queries"] = (
        "queries"  # official flips training queries; paper: none on SSv2
    )
    color_jitter: bool = True  # official colour jitter on training queries (SUPPORT_QUERY_DIFF)
    normalize: Literal["encoder", "imagenet", "clip", "none"] = "encoder"  # mean/std source
    jitter_order: Literal["gray_first", "gray_last"] = "gray_first"  # theirs | ours before
    crop_range: Literal["exclusive", "inclusive"] = (
        "exclusive"  # offsets 0..H-c-1 (theirs) | 0..H-c
    )
    frame_rule: Literal["official", "uniform", "kinetics100"] = "official"  # decode-time indices
    frames_per_segment: int = 1  # F candidates stored per segment; F > 1: random one at training


@dataclass(frozen=True)
class MetricCfg:
    name: Literal["bimhm", "otam", "trx"] = "bimhm"  # D2ST uses Bi-MHM in all main tables
    otam_lambda: float = 0.5  # soft-min lambda; 0.5 as D2ST/MoLo v2, 0.1 as HyRSM/MoLo CNN_OTAM
    trx_cardinalities: list[int] = field(
        default_factory=lambda: [2, 3]
    )  # paper appendix: [2, 3, 4]
    trx_dim: int = 1152  # TRX d_k
    aux_weight: float = (
        0.0  # weight of the auxiliary global-class CE (official per dataset: schedule)
    )
    aux_classes: int | None = None  # classifier size; null -> number of train classes (resolved)


@dataclass(frozen=True)
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
    threads: int = 1  # torch CPU threads of train/evaluate, fixed (never inherited): results
    # on CPU depend on the thread count, so a spec fixes it (d2st.build.fix_threads)
    deterministic: bool = True  # torch.use_deterministic_algorithms (warn where none exists)
    update_mode: Literal["official", "distinct"] = "official"  # their 2-GPU run | A distinct eps
    leftover: Literal["drop", "partial"] = "drop"  # draws after the last full update (theirs: drop)
    lr_timing: Literal["last", "start"] = "last"  # lr of the update's last iteration (theirs)
    decay_rule: Literal["official", "all_norms"] = "official"  # exemption by name (theirs)
    nan_policy: Literal["official", "skip"] = "official"  # a NaN wipes the window so far (theirs)


@dataclass(frozen=True)
class EvalCfg:
    way: int = 5
    shots: list[int] = field(default_factory=lambda: [1, 5])
    query: int = 1  # queries per class at test (1 in HyRSM/MoLo/D2ST)
    episodes: int = 10000
    seed: int = 0  # the test episode list is a function of this seed only
    cache_features: bool = True  # encode every test video once; exact (test view deterministic)
    batch_episodes: int = 200  # episodes matched at once on cached features
    pair_episodes: int = 1000  # binary episodes per time-reversed class pair (--pairs)
    frame_choice: Literal["official", "random", "centre"] = "centre"  # F > 1: which stored frame


@dataclass(frozen=True)
class RunConfig:
    run: RunSection = field(default_factory=RunSection)
    data: DataCfg = field(default_factory=DataCfg)
    model: ModelCfg = field(default_factory=ModelCfg)
    metric: MetricCfg = field(default_factory=MetricCfg)
    train: TrainCfg = field(default_factory=TrainCfg)
    eval: EvalCfg = field(default_factory=EvalCfg)

    """A resolved run: T is ``model.frames``, the crop side is ``model.image_size`` (one home each)."""

    @property
    def dir(self) -> Path:
        """The run folder, ``{run.out_dir}/{run.name}``."""
        return Path(self.run.out_dir) / str(self.run.name)

    @property
    def aux_classes(self) -> int:
        """Size of the auxiliary global-class head (0: none)."""
        return int(self.metric.aux_classes or 0) if self.metric.aux_weight > 0 else 0

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))

    def save(self, path: str | Path) -> None:
        """Write the spec as YAML, atomically."""
        from d2st.io import atomic_write_text

        atomic_write_text(path, yaml_text(self))


def yaml_text(spec: RunConfig) -> str:
    """The spec as the YAML text of a run folder's ``config.yaml``."""
    return yaml.safe_dump(spec.to_dict(), sort_keys=False)


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


def merge(base: dict, update: dict) -> dict:
    """``base`` updated by ``update``, nested mappings merged key by key (neither is changed)."""
    out = dict(base)
    for k, v in update.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
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


def _set(spec: RunConfig, section: str, **values) -> RunConfig:
    return dataclasses.replace(
        spec, **{section: dataclasses.replace(getattr(spec, section), **values)}
    )


def default_run_name(spec: RunConfig) -> str:
    """The catalog's run name of a spec (``d2st_rn50_bimhm_ssv2full_5w1s_8f_s0``; an MM run ends
    in ``_mm``, the variant the workflow gives MM rows)."""
    return run_name(
        spec.model.adapter,
        spec.model.backbone,
        spec.metric.name,
        spec.data.dataset,
        spec.train.way,
        spec.train.shot,
        spec.model.frames,
        spec.run.seed,
        MM_VARIANT if spec.model.mm else None,
    )


MM_VARIANT = "mm"  # run-name suffix of D2ST-Adapter-MM runs (d2st.plan requires it in variants)


def mm_aux_weight(dataset: str) -> float:
    """D2ST-Adapter-MM's video-text loss weight for ``dataset`` (CLIP-FSAR's per-dataset value).

    Datasets CLIP-FSAR has no config for (the synthetic benchmark) get 1.0 (our choice).
    """
    from d2st.models.mm import MM_LOSS_WEIGHTS

    return MM_LOSS_WEIGHTS.get(dataset, 1.0)


def resolve(
    data: Mapping[str, Any] | None = None,
    overrides: Sequence[str] = (),
    *,
    train_classes: int | Callable[[RunConfig], int] | None = None,
) -> RunConfig:
    """The one resolver: a mapping (+ schedule key, + overrides) -> a frozen, validated run spec.

    Args:
        data: nested mapping of run-config sections, optionally with a top-level
            ``schedule: dataset/backbone`` key (the official schedule, :func:`schedule`).
        overrides: ``a.b=value`` strings applied after ``data``.
        train_classes: number of classes of the train partition, or a function of the spec
            that counts them (called only when needed); fills ``metric.aux_classes`` when the
            auxiliary head is on and its size is not given.

    Returns:
        A :class:`RunConfig` with every derived value filled in (``run.name``,
        ``metric.aux_classes``). Resolving ``spec.to_dict()`` again returns an equal spec.

    With ``model.mm`` (D2ST-Adapter-MM) the auxiliary slot holds the video-text contrastive loss
    instead of the linear global-class head, so unless the mapping or an override gives
    ``metric.aux_weight`` itself, it is CLIP-FSAR's per-dataset weight (:func:`mm_aux_weight`),
    replacing the schedule's linear-head weight.
    """
    data = dict(data or {})
    for o in overrides:
        data = merge(data, parse_override(o))
    metric = data.get("metric")
    aux_given = isinstance(metric, Mapping) and "aux_weight" in metric
    if "preset" in data:
        raise ConfigError(
            "preset: the official schedule key is now `schedule: dataset/backbone` "
            "(`model.preset` picks official|paper adapter options)"
        )
    name = data.pop("schedule", None)
    if name is not None:
        if not isinstance(name, str) or name.count("/") != 1:
            raise ConfigError(f"schedule: expected 'dataset/backbone', got {name!r}")
        data = merge(schedule(*name.split("/")), data)
    spec = _build(RunConfig, data, "")
    if spec.model.mm and not aux_given:
        spec = _set(spec, "metric", aux_weight=mm_aux_weight(spec.data.dataset))
    if spec.run.name is None:
        spec = _set(spec, "run", name=default_run_name(spec))
    if spec.metric.aux_weight > 0 and spec.metric.aux_classes is None:
        if train_classes is None:
            raise ConfigError(
                "metric.aux_classes: needed with metric.aux_weight > 0; give it or the train shards"
            )
        n = train_classes(spec) if callable(train_classes) else train_classes
        spec = _set(spec, "metric", aux_classes=int(n))
    return spec


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A run-config YAML file as a mapping; a syntax error or a non-mapping names the file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{where}: not valid YAML ({getattr(e, 'problem', e)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"<root>: {path} does not hold a mapping")
    return data


def load_config(
    path: str | Path | None,
    overrides: Sequence[str] = (),
    *,
    train_classes: int | Callable[[RunConfig], int] | None = None,
) -> RunConfig:
    """Read a run config YAML (``None``: defaults only) and :func:`resolve` it with overrides."""
    data = read_yaml(path) if path is not None else {}
    return resolve(data, overrides, train_classes=train_classes)


# --------------------------------------------------------------------------- schedules


def schedule(dataset: str, backbone: str) -> dict[str, Any]:
    """The official settings for ``dataset`` x ``backbone`` as a nested config mapping.

    Example: ``resolve({"schedule": "hmdb51/resnet50"})`` or ``load_config(None,
    ["schedule=hmdb51/vit_b16"])``. ``model.backbone`` is set; ``data.normalize`` stays "encoder"
    (ImageNet mean/std for ResNets, CLIP's for ViTs come from the encoder).
    """
    if backbone not in catalog.BACKBONES:
        raise ConfigError(f"schedule: unknown backbone {backbone!r}")
    key = (catalog.BACKBONES[backbone].family, dataset)
    if key not in catalog.SCHEDULES:
        raise ConfigError(f"schedule: no official settings for {dataset}/{backbone}")
    row = catalog.SCHEDULES[key]
    return {
        "data": {"dataset": dataset},
        "model": {"backbone": backbone},
        "metric": {"name": "bimhm", "aux_weight": row.aux_weight},
        "train": {
            "way": 5,
            "shot": 1,
            "query": 1,
            "episodes": row.episodes,
            "lr": row.lr,
            "warmup_start_lr": row.warmup_start_lr,
            "warmup_episodes": row.episodes // 10,
            "lr_milestones": [s / 10 for s in row.steps],
            "lr_factors": list(row.factors),
            "weight_decay": 1e-3,
            "accumulate": 8,
        },
    }
