"""``ModelCfg`` (the ``model:`` section of a run config) and ``build_encoder`` (its only reader).

Every option where the official code departs from the paper is a field here; ``preset`` picks
the official (default) or the paper's value for each option left as null. Leaf modules
(``ADSTA``, ``Adapter``, the encoders) take plain arguments; this is the one place that
turns the config into them. Importing this module does not import torch (the rows come from
``variants.py``); :func:`build_encoder` does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING

from d2st.models.variants import (
    POSITIONS,
    TRUNKS,
    VARIANTS,
    VIT_ONLY,
    AdapterOptions,
    Size3,
    insertion_indices,
    stage_feature_sizes,
)

if TYPE_CHECKING:  # the config side is torch-free (d2st resolve); build_encoder imports torch
    from torch import nn

# Paper Table 14 (supplementary) sampling densities (t, h, w) at T = 8, per insertion point.
# The t entry scales with T (the official kernels are K_t = 4 for aDSTA-S, 1 for aDSTA-T).
TABLE14_RESNET: tuple[tuple[Size3, Size3], ...] = (  # (aDSTA-S, aDSTA-T) after layer1..layer4
    ((2, 8, 8), (8, 4, 4)),
    ((2, 4, 4), (8, 2, 2)),
    ((2, 4, 4), (8, 2, 2)),
    ((2, 2, 2), (8, 1, 1)),
)
TABLE14_VIT: tuple[Size3, Size3] = ((2, 4, 4), (8, 2, 2))  # every block
UNIFORM_DENSITY: Size3 = (4, 4, 4)  # aDSTA-Uniform

# aDSTA heads (= offset groups) per ResNet stage, layer1..layer4, as qizhongtan/D2ST-Adapter fixes
# them whatever the depth or bottleneck ratio; "per64" is one head per 64 bottleneck channels.
RESNET_STAGE_HEADS: tuple[int, ...] = (1, 2, 4, 8)
VIT_HEADS = 4  # every ViT block (qizhongtan/D2ST-Adapter)
HEAD_RULES = ("stage", "per64")

# Offset-conv (kernel, stride) per pathway that qizhongtan/D2ST-Adapter hard-codes for every ViT
# (sized for ViT-B/16's 14x14 patch grid at T = 8); "derived" computes them from the densities.
VIT_OFFSET_CONV: dict[str, tuple[Size3, Size3]] = {
    "adsta_s": ((4, 5, 5), (4, 3, 3)),
    "adsta_t": ((1, 7, 7), (1, 7, 7)),
}
OFFSET_CONV_RULES = ("official", "derived")

# Official value first, paper value second, for every option that differs (docs/MODEL.md).
PRESETS: dict[str, dict[str, object]] = {
    "official": dict(
        fusion="mean",
        offset_norm=True,
        vit_act=True,
        vanilla_act="relu",
        dst_act="fused_relu",
        ref_points="official",
        align_corners=True,
        cls_query=True,
        offset_factor=2.0,
        temporal_embedding=True,
        train_extras=True,
    ),
    "paper": dict(
        fusion="sum",
        offset_norm=False,
        vit_act=False,
        vanilla_act="gelu",
        dst_act="path_gelu",
        ref_points="official",
        align_corners=True,
        cls_query=True,
        offset_factor=2.0,
        temporal_embedding=True,
        train_extras=False,
    ),
}


def parse_density(value) -> Size3 | None:
    """None, "t,h,w", "t-h-w" or a 3-sequence of ints -> (t, h, w)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.replace("-", ",").split(",")
    out = tuple(int(v) for v in value)
    if len(out) != 3 or min(out) < 1:
        raise ValueError(f"density must be 3 positive ints (t, h, w), got {value!r}")
    return out  # type: ignore[return-value]


@dataclass
class ModelCfg:
    """The model section of a run config. Null options take the value of ``preset``."""

    backbone: str = "resnet50"  # one of backbones.TRUNKS
    weights: str = "random"  # "random" | "hub" | path to .safetensors / .pt trunk state_dict
    adapter: str = "d2st"  # one of adapters.VARIANTS
    bottleneck_ratio: float = 0.25  # C' = ratio * C (Table 10)
    positions: str = "full"  # insertion positions full | early | late | skip (Table 9)
    spatial_density: Size3 | None = None  # aDSTA-S (t,h,w) for every stage; null = Table 14
    temporal_density: Size3 | None = None  # aDSTA-T (t,h,w) for every stage; null = Table 14
    frames: int = 8  # T frames per video (the adapters' conv/grid arithmetic depends on it)
    image_size: int = 224  # input H = W (feature map sizes, ViT positional embedding)
    # Rules the official code hard-codes (official defaults; docs/MODEL.md "Official rules").
    resnet_heads: str = "stage"  # ResNet aDSTA heads: stage (1/2/4/8, official) | per64
    vit_offset_conv: str = "official"  # ViT offset conv: official (fixed kernels) | derived
    preset: str = "official"  # default for the null options below: official | paper
    fusion: str | None = None  # pathway fusion: mean (official) | sum (paper)
    offset_norm: bool | None = None  # LayerNorm in the offset network (official) | none (paper)
    vit_act: bool | None = None  # ViT adapter GELU after down and after up (official) | no
    vanilla_act: str | None = None  # vanilla adapter activation: relu (official) | gelu (paper)
    dst_act: str | None = None  # DST: fused_relu (official) | path_gelu (paper: BN+GELU/path)
    ref_points: str | None = None  # aDSTA reference points: official (2i+1)/n-1 | window
    align_corners: bool | None = None  # grid_sample align_corners (official True)
    cls_query: bool | None = None  # ViT: CLS tokens are aDSTA queries (official True)
    offset_factor: float | None = None  # f in |offset| <= min(1, f/n) (official 2.0)
    temporal_embedding: bool | None = None  # ViT: learned zero-init temporal embedding
    train_extras: bool | None = None  # ViT: CLS emb, temporal emb, ln_post trainable (official)
    # D2ST-Adapter-MM (paper §4.2, CLIP-FSAR framework; d2st.models.mm, docs/MODEL.md)
    mm: bool = False  # frozen CLIP text tower, video-text loss, prototype modulation
    mm_text_weights: str | None = None  # null: "hub" if weights is "hub" else "random"; or a file
    mm_prompt: str = "a photo of {}"  # prompt template (CLIP-FSAR's default)
    checkpointing: bool = False  # recompute adapted blocks in backward (d2st.models.checkpointing)

    def __post_init__(self):
        for key, value, allowed in (
            ("backbone", self.backbone, TRUNKS),
            ("adapter", self.adapter, VARIANTS),
            ("positions", self.positions, POSITIONS),
            ("preset", self.preset, PRESETS),
            ("resnet_heads", self.resnet_heads, HEAD_RULES),
            ("vit_offset_conv", self.vit_offset_conv, OFFSET_CONV_RULES),
        ):
            if value not in allowed:
                raise ValueError(f"model.{key}: unknown {value!r}; allowed: {list(allowed)}")
        self.spatial_density = parse_density(self.spatial_density)
        self.temporal_density = parse_density(self.temporal_density)
        spec = VARIANTS[self.adapter]
        if spec is not None and spec.block is not None and TRUNKS[self.backbone].family != "vit":
            raise ValueError(
                f"model.adapter: {self.adapter!r} {VIT_ONLY}; model.backbone is {self.backbone!r}"
            )
        if not 0 < self.bottleneck_ratio <= 4:
            raise ValueError(f"model.bottleneck_ratio: {self.bottleneck_ratio} not in (0, 4]")
        self.resolved()  # validate option values now, naming the key

    def resolved(self) -> dict[str, object]:
        """The official-vs-paper options with nulls filled from ``preset``."""
        out = dict(PRESETS[self.preset])
        for key in out:
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        try:
            AdapterOptions(**{k: v for k, v in out.items() if k in _OPTION_FIELDS})
        except ValueError as e:
            raise ValueError(f"model.{e}") from None
        return out

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("spatial_density", "temporal_density"):
            d[k] = list(d[k]) if d[k] is not None else None
        return d


_OPTION_FIELDS = {f.name for f in fields(AdapterOptions)}


def _scale_t(density: Size3, frames: int) -> Size3:
    return (max(1, density[0] * frames // 8), density[1], density[2])


def stage_densities(cfg: ModelCfg) -> list[tuple[Size3, Size3]]:
    """(aDSTA-S, aDSTA-T) requested densities per stage/block: the config's, else Table 14."""
    spec = TRUNKS[cfg.backbone]
    n = len(spec.stage_channels)
    table = [TABLE14_VIT] * n if spec.family == "vit" else list(TABLE14_RESNET)
    out = []
    for s, t in table:
        out.append(
            (
                cfg.spatial_density or _scale_t(s, cfg.frames),
                cfg.temporal_density or _scale_t(t, cfg.frames),
            )
        )
    return out


def num_heads(family: str, hidden: int, stage: int = 0, rule: str = "stage") -> int:
    """aDSTA heads (= offset groups) at one insertion point.

    Args:
        family: "vit" (4 heads in every block) or "resnet".
        hidden: bottleneck width C'.
        stage: ResNet stage index, 0..3 for layer1..layer4.
        rule: ResNet rule, "stage" (``RESNET_STAGE_HEADS``, official) or "per64" (one head per
            64 channels, falling back to the largest count <= that which divides C'). ViT heads
            fall back the same way.

    Raises:
        ValueError: under "stage", C' is not divisible by the stage's head count.
    """
    if family == "resnet" and rule == "stage":
        h = RESNET_STAGE_HEADS[stage]
        if hidden % h:
            raise ValueError(
                f"model.resnet_heads: stage {stage + 1} bottleneck width {hidden} is not divisible "
                f"by its {h} heads (official 1/2/4/8); change model.bottleneck_ratio or use "
                "model.resnet_heads=per64"
            )
        return h
    h = VIT_HEADS if family == "vit" else max(1, hidden // 64)
    while hidden % h:
        h -= 1
    return h


def offset_convs(cfg: ModelCfg, feature_size: Size3) -> dict[str, tuple[Size3, Size3] | None]:
    """The offset conv (kernel, stride) given directly per aDSTA pathway, None = derive it.

    Under ``vit_offset_conv: official`` a ViT pathway whose density is the Table 14 default uses
    ``VIT_OFFSET_CONV`` (as the official code does for any patch grid, e.g. ViT-L/14's 16x16),
    provided the kernel fits the (T, H, W) volume; where it does not (T < 4 or a patch grid
    under 7, i.e. test-sized inputs the official code cannot run) the derived geometry is used.
    ResNets, densities set in the config and fixed-density variants always derive.
    """
    spec = VARIANTS[cfg.adapter]
    if (
        TRUNKS[cfg.backbone].family != "vit"
        or cfg.vit_offset_conv != "official"
        or spec is None
        or spec.density is not None
    ):
        return {"adsta_s": None, "adsta_t": None}
    user = {"adsta_s": cfg.spatial_density, "adsta_t": cfg.temporal_density}
    out: dict[str, tuple[Size3, Size3] | None] = {}
    for kind, (kernel, stride) in VIT_OFFSET_CONV.items():
        fits = all(k <= n for k, n in zip(kernel, feature_size, strict=True))
        out[kind] = (kernel, stride) if user[kind] is None and fits else None
    return out


def build_encoder(cfg: ModelCfg) -> nn.Module:
    """Build the adapted, partly frozen encoder described by ``cfg`` (CONTRACTS "Encoder API")."""
    from d2st.models.adapters import build_adapter
    from d2st.models.backbones import ResNetEncoder, ViTEncoder, create_trunk
    from d2st.models.block_adapters import GridFrameset
    from d2st.models.checkpointing import enable_checkpointing

    spec = TRUNKS[cfg.backbone]
    opts = cfg.resolved()
    adapter_opts = AdapterOptions(**{k: v for k, v in opts.items() if k in _OPTION_FIELDS})
    trunk = create_trunk(
        cfg.backbone, cfg.weights, image_size=cfg.image_size if spec.family == "vit" else None
    )
    sizes = stage_feature_sizes(cfg.backbone, cfg.image_size)
    densities = stage_densities(cfg)
    vit = spec.family == "vit"
    batch_first = getattr(getattr(trunk, "transformer", None), "batch_first", True)
    variant = VARIANTS[cfg.adapter]
    uses_adsta = variant is not None and any(k.startswith("adsta") for k in variant.pathways)
    adapters = {}
    for i in insertion_indices(cfg.positions, len(spec.stage_channels)):
        dim = spec.stage_channels[i]
        hidden = max(1, round(cfg.bottleneck_ratio * dim))
        volume = (cfg.frames, *sizes[i])
        convs = offset_convs(cfg, volume)
        a = build_adapter(
            cfg.adapter,
            dim,
            cfg.bottleneck_ratio,
            volume,
            tokens=vit,
            num_heads=num_heads(spec.family, hidden, i, cfg.resnet_heads) if uses_adsta else 1,
            spatial_density=densities[i][0],
            temporal_density=densities[i][1],
            opts=adapter_opts,
            batch_first=batch_first,
            spatial_conv=convs["adsta_s"],
            temporal_conv=convs["adsta_t"],
        )
        if a is not None:
            adapters[i] = a
    full = cfg.adapter == "full"
    if vit:
        frozen_only = cfg.adapter == "none"
        temporal, train_extras = bool(opts["temporal_embedding"]), bool(opts["train_extras"])
        extras = ("class_embedding", "temporal_embedding", "ln_post")
        frameset = None
        if variant is not None and variant.extras is not None:  # a peer's own trainable set
            extras, train_extras = variant.extras, True
            temporal = "temporal_embedding" in extras
        if variant is not None and variant.block == "dualpath":
            grid = sizes[0]
            frameset = GridFrameset(cfg.frames, spec.stage_channels[0], 1 + grid[0] * grid[1])
        encoder = ViTEncoder(
            trunk,
            adapters,
            cfg.frames,
            spec.mean,
            spec.std,
            temporal_embedding=temporal and not frozen_only,
            train_extras=train_extras and not frozen_only,
            train_trunk=full,
            extras=extras,
            frameset=frameset,
        )
    else:
        encoder = ResNetEncoder(trunk, adapters, cfg.frames, spec.mean, spec.std, train_trunk=full)
    return enable_checkpointing(encoder) if cfg.checkpointing else encoder


def build_mm(cfg: ModelCfg, visual_dim: int) -> nn.Module | None:
    """The D2ST-Adapter-MM head for ``cfg.mm`` (None when off); ``visual_dim`` = encoder width."""
    if not cfg.mm:
        return None
    from d2st.models.mm import build_multimodal

    text = cfg.mm_text_weights or ("hub" if str(cfg.weights) == "hub" else "random")
    return build_multimodal(cfg.backbone, visual_dim, text, cfg.mm_prompt)
