"""``d2st model-info``: parameter counts, GFLOPs per clip and aDSTA grids of a model, as JSON.

tunable_pct = tunable / total * 100, where total counts the trunk (ViT without its projection)
plus the adapters and extras: the denominator that reproduces the paper's Table 9/10 percentages.
GFLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` over one forward of a
(1, T, 3, S, S) clip run on the meta device (shapes only, no arithmetic): ``gflops_per_clip``
counts a multiply-add as 2 FLOPs; ``gmacs_per_clip`` (half of it) is the convention of the
papers' "GFLOPs" columns (fvcore). Operators without a FLOP formula (``grid_sample``, softmax,
norms, activations) are not counted.

``--mm`` (D2ST-Adapter-MM) adds the MM head: its Transformer and logit scale are tunable; the
frozen CLIP ``visual.proj`` counts in ``total_params``, the frozen text transformer does not (it is
``text_params``; ``tunable_pct_with_text`` uses it too). The per-clip FLOPs then include the
projection into the joint space and the query's pass through the modulation Transformer (the test
cost of one query clip); the text tower runs once per class name, not per clip, and is not counted.
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
    p.add_argument("--no-flops", action="store_true", help="skip the GFLOPs count")
    p.add_argument("--mm", action="store_true", help="D2ST-Adapter-MM: add the multimodal head")
    p.add_argument(
        "--config",
        default=None,
        help="a run config YAML: count its model section (the other model flags are ignored; "
        "random weights, which change no count)",
    )
    p.add_argument(
        "--resnet-heads", default="stage", choices=["stage", "per64"], help="aDSTA heads rule"
    )
    p.add_argument(
        "--vit-offset-conv",
        default="official",
        choices=["official", "derived"],
        help="ViT aDSTA offset conv kernel/stride rule",
    )


def clip_flops(enc, frames: int, image_size: int, mm=None) -> int:
    """FLOPs (2 per multiply-add) of one forward of ``enc`` on a (1, T, 3, S, S) clip.

    With ``mm`` (a MultiModalHead) the (1, T, C) features are then projected into the joint space
    and refined by the modulation Transformer as a query clip. The modules are moved to the meta
    device first (they are unusable afterwards).
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    enc = enc.eval().to("meta")
    if mm is not None:
        mm = mm.eval().to("meta")
    clip = torch.zeros(1, frames, 3, image_size, image_size, device="meta")
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        feats = enc(clip)  # (1, T, C)
        if mm is not None:
            mm.refine_query(mm.project(feats))  # (1, T, D)
    return counter.get_total_flops()


def mm_counts(mm) -> dict:
    """Parameter counts of a MultiModalHead: tunable, frozen besides the text, text transformer."""
    text = {id(p) for p in mm.tower.text.parameters()}
    head = [p for p in mm.parameters() if id(p) not in text]
    return {
        "tunable": sum(p.numel() for p in head if p.requires_grad),
        "head_total": sum(p.numel() for p in head),
        "text": sum(p.numel() for p in mm.tower.text.parameters()),
        "embed_dim": mm.embed_dim,
    }


def model_info(cfg, flops: bool = True) -> dict:
    """Counts, GFLOPs per clip and per-stage adapter geometry of ``build_encoder(cfg)`` (and of
    the MM head with ``cfg.mm``)."""
    from d2st.models.adsta import ADSTA
    from d2st.models.config import build_encoder, build_mm

    enc = build_encoder(cfg)
    mm = build_mm(cfg, enc.feature_dim)
    stages = []
    for name, adapter in enc.adapters.items():
        row: dict = {
            "stage": name,
            "params": sum(p.numel() for p in adapter.parameters()),
            "adapters": getattr(adapter, "per_block", 1),
        }
        for path in getattr(adapter, "pathways", ()):
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
    extra = {}
    if mm is not None:
        counts = mm_counts(mm)
        tunable, total = tunable + counts["tunable"], total + counts["head_total"]
        with_text = total + counts["text"]
        extra = {
            "mm": {
                "head_tunable_params": counts["tunable"],
                "joint_dim": counts["embed_dim"],
                "text_params": counts["text"],
                "total_params_with_text": with_text,
                "tunable_pct_with_text": round(100 * tunable / with_text, 3),
            }
        }
    out = {
        "config": cfg.to_dict(),
        "options": cfg.resolved(),
        "feature_dim": enc.feature_dim,
        "total_params": total,
        "tunable_params": tunable,
        "tunable_pct": round(100 * tunable / total, 3),
        "pct_denominator": "total incl. adapters",
        "adapters_per_block": max((row["adapters"] for row in stages), default=0),
        "stages": stages,
        **extra,
    }
    if flops:
        n = clip_flops(enc, cfg.frames, cfg.image_size, mm)
        clip = f"1x{cfg.frames}x3x{cfg.image_size}x{cfg.image_size}"
        out.update(
            clip=clip,
            flops_per_clip=n,
            gflops_per_clip=round(n / 1e9, 3),
            gmacs_per_clip=round(n / 2e9, 3),
        )
    return out


def config_model(path):
    """The ``model:`` section of a run config, with random trunk and text weights (the counts and
    FLOPs do not depend on the weights; nothing is downloaded)."""
    from d2st.config import ConfigError, read_yaml
    from d2st.models.config import ModelCfg

    model = dict(read_yaml(path).get("model") or {})
    model.update(weights="random", mm_text_weights=None)
    try:
        return ModelCfg(**model)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{path}: model: {e}") from None


def main(args: argparse.Namespace) -> int:
    from d2st.models.config import ModelCfg

    if args.config is not None:
        cfg = config_model(args.config)
        print(json.dumps(model_info(cfg, flops=not args.no_flops), indent=2))
        return 0
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
        mm=args.mm,
    )
    print(json.dumps(model_info(cfg, flops=not args.no_flops), indent=2))
    return 0
