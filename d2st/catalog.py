"""One catalog of facts: backbones, metrics, datasets and the official schedules, one row each.

Adding a backbone, metric or dataset is one row here; everything else (run names, the paper's
table names, the schedule family, parameter-free metrics, folder names) reads these tables.
Model internals of a backbone (stage widths, strides, normalisation) are the row of
:data:`d2st.models.backbones.TRUNKS` with the same name; a test checks the two tables agree.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Backbone:
    """A backbone row: ``short`` goes into run names, ``reported`` is the paper tables' name."""

    short: str
    reported: str
    family: str  # "resnet" | "vit": selects the official schedule row and weight-decay rule


BACKBONES: dict[str, Backbone] = {
    "resnet18": Backbone("rn18", "resnet18", "resnet"),
    "resnet34": Backbone("rn34", "resnet34", "resnet"),
    "resnet50": Backbone("rn50", "resnet50", "resnet"),
    "resnet_tiny": Backbone("rntiny", "resnet_tiny", "resnet"),
    "resnet_tiny16": Backbone("rntiny16", "resnet_tiny16", "resnet"),
    "vit_b16": Backbone("vitb16", "clip_vit_b16", "vit"),
    "vit_l14": Backbone("vitl14", "clip_vit_l14", "vit"),
    "vit_tiny": Backbone("vittiny", "vit_tiny", "vit"),  # tests only (random weights)
    "vit_tiny8": Backbone("vittiny8", "vit_tiny8", "vit"),  # GPU-check CPU smoke (random weights)
}


@dataclass(frozen=True)
class Metric:
    """A matching-metric row: ``parameter_free`` metrics need no training for a frozen model."""

    reported: str
    parameter_free: bool


METRICS: dict[str, Metric] = {
    "bimhm": Metric("Bi-MHM", True),
    "otam": Metric("OTAM", True),
    "trx": Metric("TRX", False),
}


@dataclass(frozen=True)
class Dataset:
    """A dataset row: ``short`` goes into run names."""

    short: str


DATASETS: dict[str, Dataset] = {
    "ssv2_full": Dataset("ssv2full"),
    "ssv2_small": Dataset("ssv2small"),
    "kinetics100": Dataset("kinetics100"),
    "hmdb51": Dataset("hmdb51"),
    "ucf101": Dataset("ucf101"),
    "synthetic": Dataset("synthetic"),
}


@dataclass(frozen=True)
class Schedule:
    """The official training schedule of one backbone family x dataset.

    ``lr`` and ``warmup_start_lr`` and ``episodes`` are paper Table 13; ``steps`` are the official
    configs' SOLVER.STEPS (of 10 "epochs", so step k starts at fraction steps[k] / 10), ``factors``
    their SOLVER.LRS, ``aux_weight`` the weight of the auxiliary global-class loss
    (authors' repository, configs/projects/*/*.yaml). Warm-up is one "epoch" = 10% of training.
    """

    lr: float
    warmup_start_lr: float
    episodes: int
    steps: tuple[int, ...]
    factors: tuple[float, ...]
    aux_weight: float


SCHEDULES: dict[tuple[str, str], Schedule] = {
    ("resnet", "ssv2_full"): Schedule(2e-3, 4e-4, 120000, (0, 4, 6, 8), (1, 0.5, 0.1, 0.05), 1.0),
    ("resnet", "ssv2_small"): Schedule(2e-3, 4e-4, 40000, (0, 4, 6, 8), (1, 0.1, 0.05, 0.01), 0.5),
    ("resnet", "kinetics100"): Schedule(2e-3, 4e-4, 10000, (0, 2, 5, 8), (1, 0.1, 0.05, 0.01), 1.5),
    ("resnet", "hmdb51"): Schedule(2e-3, 4e-4, 8000, (0, 4, 6, 8), (1, 0.1, 0.05, 0.01), 2.0),
    ("resnet", "ucf101"): Schedule(2e-3, 4e-4, 8000, (0, 2, 5, 8), (1, 0.5, 0.1, 0.05), 1.5),
    ("vit", "ssv2_full"): Schedule(1e-3, 2e-4, 120000, (0, 4, 6, 8), (1, 0.5, 0.1, 0.05), 2.0),
    ("vit", "ssv2_small"): Schedule(1e-3, 2e-4, 40000, (0, 4, 6, 8), (1, 0.1, 0.05, 0.01), 0.5),
    ("vit", "kinetics100"): Schedule(5e-4, 1e-4, 3000, (0, 4, 6, 8), (1, 0.1, 0.05, 0.01), 0.0),
    ("vit", "hmdb51"): Schedule(1e-3, 2e-4, 3000, (0, 5, 7, 9), (1, 0.5, 0.1, 0.05), 2.5),
    ("vit", "ucf101"): Schedule(5e-4, 1e-4, 2400, (0, 5, 7, 9), (1, 0.1, 0.05, 0.01), 0.0),
}

# Where runs and evaluations live, relative to the working directory (the workflow's results/).
RUNS_DIR = "results/runs"
EVALS_DIR = "results/evals"

# decoded clips a training process keeps in memory (d2st train --cache-mb; the synthetic train
# split needs ~15 MB, an SSv2 clip at 224 px 1.2 MB); speed only, results do not depend on it
CLIP_CACHE_MB = 256


def backbone(name: str) -> Backbone:
    if name not in BACKBONES:
        raise KeyError(f"unknown backbone {name!r}; known: {list(BACKBONES)}")
    return BACKBONES[name]


def short_backbone(name: str) -> str:
    """Run-name short form; an uncatalogued name drops its underscores."""
    row = BACKBONES.get(name)
    return row.short if row else name.replace("_", "")


def short_dataset(name: str) -> str:
    row = DATASETS.get(name)
    return row.short if row else name.replace("_", "")


def reported_backbone(name: str) -> str:
    row = BACKBONES.get(name)
    return row.reported if row else name


def reported_metric(name: str) -> str:
    row = METRICS.get(name)
    return row.reported if row else name


def parameter_free(metric: str) -> bool:
    return METRICS[metric].parameter_free
