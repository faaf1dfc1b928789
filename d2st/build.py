"""Build what a run spec describes: the model, its input normalisation, the device.

Shared by training and evaluation (and anything else that loads a run); it reads a resolved
:class:`d2st.config.RunConfig` and never changes it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from d2st.config import ConfigError, RunConfig, load_config
from d2st.data.transforms import NORMALIZE
from d2st.models.fewshot import FewShotModel, load_trainable_state
from d2st.models.metrics import build_metric


def fix_threads(threads: int, deterministic: bool = True) -> None:
    """Make a process's numbers independent of the machine's core count and job scheduler.

    CPU kernels (oneDNN, MKL) split work by thread count and the split changes floating-point
    sums, so ``torch.set_num_threads`` is set from the spec, never inherited from
    ``OMP_NUM_THREADS`` or the core count; deterministic algorithms are requested where torch
    has them (``warn_only``: an op without one, e.g. CUDA ``grid_sample`` backward, warns).
    """
    torch.set_num_threads(max(1, int(threads)))
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)


def build_model(spec: RunConfig) -> FewShotModel:
    """Encoder (+ MM head) + metric (+ aux head), seeded by ``run.seed`` (a random trunk and text
    tower are rebuilt exactly).

    With ``model.mm`` (D2ST-Adapter-MM) the metric works in the MM head's joint space
    (``mm.embed_dim``) and the auxiliary slot holds the video-text logits; class names are set
    by the caller (:meth:`FewShotModel.set_class_names`).
    """
    from d2st.models.config import build_encoder, build_mm

    torch.manual_seed(spec.run.seed)
    encoder = build_encoder(spec.model)
    mm = build_mm(spec.model, encoder.feature_dim)
    m = spec.metric
    metric = build_metric(
        m.name,
        dim=mm.embed_dim if mm is not None else encoder.feature_dim,
        frames=encoder.frames,
        otam_lambda=m.otam_lambda,
        trx_cardinalities=m.trx_cardinalities,
        trx_dim=m.trx_dim,
    )
    return FewShotModel(encoder, metric, spec.aux_classes, mm=mm)


def mean_std(spec: RunConfig, encoder: nn.Module):
    """Normalisation constants: the encoder's unless ``data.normalize`` names a table entry."""
    if spec.data.normalize == "encoder":
        return tuple(encoder.mean), tuple(encoder.std)
    return NORMALIZE[spec.data.normalize]


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> ``cuda:{local_rank}`` when CUDA is available, else ``cpu``; else ``name``."""
    if name == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def load_run(run_dir: str | Path, device: str | torch.device = "cpu", overrides=()):
    """Spec and model of a finished run (frozen trunk rebuilt from the seed, trained state loaded).

    Args:
        run_dir: the run folder (``config.yaml``, ``model.safetensors``).
        device: where the model goes.
        overrides: ``eval.*`` / ``data.test_shards`` overrides of the run's evaluation settings,
            resolved with the run's config by :func:`d2st.config.load_config`.
    """
    from safetensors.torch import load_file

    run_dir = Path(run_dir)
    for o in overrides:
        key = o.split("=", 1)[0].strip()
        if not (key.startswith("eval.") or key == "data.test_shards"):
            raise ConfigError(f"{key}: evaluation may only override eval.* and data.test_shards")
    spec = load_config(run_dir / "config.yaml", overrides)
    model = build_model(spec)
    load_trainable_state(model, load_file(str(run_dir / "model.safetensors")))
    return spec, model.to(device).eval()


def check_shards(shards, spec: RunConfig, what: str) -> None:
    """Stop when a shard folder does not hold what the spec expects (frames, size).

    Args:
        shards: a ShardSet (``.frames``, ``.size``, ``.root``).
        spec: the run spec.
        what: the spec key that named the folder (``data.train_shards``), for the message.
    """
    from d2st.errors import SpecMismatch

    root = getattr(shards, "root", what)
    F = spec.data.frames_per_segment
    if int(shards.frames) != spec.model.frames * F:
        expect = f"model.frames={spec.model.frames}" + (
            f" x data.frames_per_segment={F}" if F > 1 else ""
        )
        raise SpecMismatch(
            f"{root}: the shards hold {shards.frames} frames per video but the run expects "
            f"{expect} ({what})"
        )
    if int(shards.size) < spec.model.image_size:
        raise SpecMismatch(
            f"{root}: the shards hold {shards.size}px frames but the run crops "
            f"model.image_size={spec.model.image_size} ({what})"
        )


def set_vocabulary(model: FewShotModel, shards, what: str, folder=None) -> None:
    """D2ST-Adapter-MM: give ``model`` the class names of a partition (a no-op without ``mm``).

    The names are the ``label`` column of the shard folder's ``manifest.csv`` ordered by
    ``label_idx`` (:func:`d2st.models.mm.load_class_names`); each distinct name is encoded by the
    text tower once and cached.

    Args:
        model: the few-shot model.
        shards: the partition's ShardSet (its ``.root`` is the shard folder) or a stand-in.
        what: the spec key that named the folder (``data.train_shards``), for the message.
        folder: the folder (or a split CSV) to read when ``shards`` has no ``.root``.
    """
    if model.mm is None:
        return
    from d2st.models.mm import load_class_names

    root = getattr(shards, "root", None) or folder
    if root is None:
        raise ConfigError(f"{what}: model.mm needs the partition's class names (manifest.csv)")
    model.set_class_names(load_class_names(root))
