"""``d2st model-info``: parameter counts and aDSTA grids of a model, as JSON.

tunable_pct = tunable / total * 100, where total counts the trunk (ViT without its projection)
plus the adapters and extras: the denominator that reproduces the paper's Table 9/10 percentages.
"""

from __future__ import annotations

import argparse
import json

from d2st.models.adapters import VARIANTS
from d2st.models.backbones import POSITIONS, TRUNKS


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backbone", default="resnet50", choices=list(TRUNKS))
    p.add_argument("--adapter", default="d2st", choices=list(VARIANTS))
    p.add_argument("--ratio", type=float, default=0.25, help="bottleneck ratio")
    p.add_argument("--positions", default="full", choices=list(POSITIONS))
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--spatial-density", default=None, help="t,h,w (default: Table 14)")
    p.add_argument("--temporal-density", default=None, help="t,h,w (default: Table 14)")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--weights", default="random", help="random | hub | PATH")
    p.add_argument("--preset", default="official", choices=["official", "paper"])
    p.add_argument(
        "--resnet-heads", default="stage", choices=["stage", "per64"], help="aDSTA heads rule"
    )
    p.add_argument(
        "--vit-offset-conv",
        default="official",
        choices=["official", "derived"],
        help="ViT aDSTA offset conv kernel/stride rule",
    )


def model_info(cfg) -> dict:
    """Counts and per-stage aDSTA geometry of ``build_encoder(cfg)`` (no forward pass)."""
    from d2st.models.adsta import ADSTA
    from d2st.models.config import build_encoder

    enc = build_encoder(cfg)
    stages = []
    for name, adapter in enc.adapters.items():
        row: dict = {"stage": name, "params": sum(p.numel() for p in adapter.parameters())}
        for path in adapter.pathways:
            attn = getattr(path, "attn", None)
            if isinstance(attn, ADSTA):
                row[path.kind] = {
                    "feature": list(attn.feature_size),
                    "grid": list(attn.grid),
                    "kernel": list(attn.kernel),
                    "stride": list(attn.stride),
                    "points": attn.num_points,
                    "heads": attn.num_heads,
                    "offset_conv": attn.conv_rule,
                }
        stages.append(row)
    tunable, total = enc.tunable_parameters(), enc.total_parameters()
    return {
        "config": cfg.to_dict(),
        "options": cfg.resolved(),
        "feature_dim": enc.feature_dim,
        "total_params": total,
        "tunable_params": tunable,
        "tunable_pct": round(100 * tunable / total, 3),
        "pct_denominator": "total incl. adapters",
        "stages": stages,
    }


def main(args: argparse.Namespace) -> int:
    from d2st.models.config import ModelCfg

    cfg = ModelCfg(
        backbone=args.backbone,
        weights=args.weights,
        adapter=args.adapter,
        bottleneck_ratio=args.ratio,
        positions=args.positions,
        frames=args.frames,
        spatial_density=args.spatial_density,
        temporal_density=args.temporal_density,
        image_size=args.image_size,
        preset=args.preset,
        resnet_heads=args.resnet_heads,
        vit_offset_conv=args.vit_offset_conv,
    )
    print(json.dumps(model_info(cfg), indent=2))
    return 0
