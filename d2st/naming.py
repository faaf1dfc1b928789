"""Run names: one function builds them, everything else (wildcards, folders, table keys) uses them.

Example: ``d2st_rn50_bimhm_ssv2full_5w1s_8f_s0``; an ablation adds a variant suffix,
``d2st_vitb16_bimhm_ssv2small_5w1s_8f_s0_r0.125``.
"""

from __future__ import annotations

import re

from d2st.catalog import short_backbone, short_dataset

_SAFE = re.compile(r"[^A-Za-z0-9.\-]")


def run_name(
    adapter: str,
    backbone: str,
    metric: str,
    dataset: str,
    way: int,
    shot: int,
    frames: int,
    seed: int,
    variant: str | None = None,
) -> str:
    """Build the canonical run name from a run's settings.

    Args:
        adapter: adapter variant name (``d2st``, ``dst``, ``st``, ``none`` ...).
        backbone: backbone name as in ``d2st.models.backbones`` (``resnet50``, ``vit_b16`` ...).
        metric: matching metric (``bimhm``, ``otam``, ``trx``).
        dataset: dataset key (``ssv2_full``, ``kinetics100``, ``synthetic`` ...).
        way, shot: the training episode shape.
        frames: frames per video (T).
        seed: training seed.
        variant: optional free-form suffix for ablations (``r0.125``, ``late``, ``d1-4-4_4-2-2``).
    """
    parts = [
        adapter.replace("_", ""),
        short_backbone(backbone),
        metric,
        short_dataset(dataset),
        f"{way}w{shot}s",
        f"{frames}f",
        f"s{seed}",
    ]
    if variant:
        parts.append(_SAFE.sub("-", variant))
    return "_".join(parts)
