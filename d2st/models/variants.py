"""The model's table rows, free of torch: adapter variants, backbone trunks, insertion positions.

Every row is plain data: :data:`VARIANTS` (one :class:`AdapterSpec` per adapter name; the paper's
variants and the peers of Table 1 / Table 3), :class:`AdapterOptions` (where the official code
departs from the paper), :data:`TRUNKS` (one :class:`TrunkSpec` per backbone) and
:data:`POSITIONS` (Table 9). The config resolver (``d2st.config``, ``d2st resolve``) validates a
run against these rows without importing torch; ``adapters.py`` and ``backbones.py`` build the
modules they describe.
"""

from __future__ import annotations

from dataclasses import dataclass

Size3 = tuple[int, int, int]


@dataclass(frozen=True)
class AdapterSpec:
    """One row of the variant table."""

    pathways: tuple[str, ...]  # pathway kinds run in parallel after DPE; () = vanilla adapter
    dpe: bool = False  # 3x3x3 depthwise dynamic position embedding before the pathways (Eq. 2)
    density: Size3 | None = None  # fixed density for both aDSTA pathways (aDSTA-Uniform)
    mid_act: str = "gelu"  # activation after fusion; "vanilla"/"dst" read the matching option
    block: str | None = None  # ViT-only block rule (BLOCK_RULES); None = an Adapter after the block
    ratio: float | None = None  # the method's own bottleneck ratio; None = model.bottleneck_ratio
    scale: float = 1.0  # AIM: s on the MLP-Adapter
    temporal_adapters: int = 1  # AIM: T-Adapters per block (2 in AIM's SSv2 setting)
    extras: tuple[str, ...] | None = None  # trainable trunk extras; None = model.train_extras


BLOCK_RULES = ("st_vit", "aim", "dualpath")
VIT_ONLY = "is for ViT backbones only"  # error text (checked by ModelCfg)

VARIANTS: dict[str, AdapterSpec | None] = {
    "d2st": AdapterSpec(("adsta_s", "adsta_t"), dpe=True),
    "d2st_s": AdapterSpec(("adsta_s",), dpe=True),
    "d2st_t": AdapterSpec(("adsta_t",), dpe=True),
    "d2st_uniform": AdapterSpec(("adsta_s", "adsta_t"), dpe=True, density=(4, 4, 4)),
    "dst": AdapterSpec(("conv_s", "conv_t"), mid_act="dst"),
    "st": AdapterSpec(("conv_st",), mid_act="none"),
    "vanilla": AdapterSpec((), mid_act="vanilla"),
    # Peers on CLIP ViT (docs/MODEL.md "Peer adapters on ViT" gives each fact's source).
    "st_vit": AdapterSpec((), block="st_vit", ratio=0.5, extras=()),
    "aim": AdapterSpec(
        (), block="aim", ratio=0.25, scale=0.5, extras=("temporal_embedding", "ln_post")
    ),
    "aim_ssv2": AdapterSpec(
        (),
        block="aim",
        ratio=0.25,
        scale=1.0,
        temporal_adapters=2,
        extras=("temporal_embedding", "ln_post"),
    ),
    "dualpath": AdapterSpec(
        (), block="dualpath", ratio=0.25, extras=("class_embedding", "positional_embedding")
    ),
    "none": None,
    "full": None,
}


@dataclass(frozen=True)
class AdapterOptions:
    """Where the official code departs from the paper; official values are the defaults.

    See docs/MODEL.md ("Official vs paper") for the source of each line.
    """

    fusion: str = "mean"  # pathway fusion: "mean" (official (x_s + x_t) / 2) | "sum" (paper)
    offset_norm: bool = True  # LayerNorm in the aDSTA offset network (official) | False (paper)
    vit_act: bool = True  # ViT: GELU after down and after up (official) | False (paper)
    vanilla_act: str = "relu"  # vanilla adapter activation: "relu" (official) | "gelu" (paper)
    dst_act: str = "fused_relu"  # DST: one ReLU after fusion (official) | "path_gelu" (paper:
    #                              BN + GELU per pathway, nothing after fusion)
    ref_points: str = "official"  # aDSTA reference points: "official" (2i+1)/n-1 | "window"
    align_corners: bool = True  # grid_sample align_corners (official True)
    cls_query: bool = True  # ViT: CLS tokens are aDSTA queries (official) | False
    offset_factor: float = 2.0  # f in |offset| <= min(1, f/n) (official 2.0)

    def __post_init__(self):
        for key, value, allowed in (
            ("fusion", self.fusion, ("mean", "sum")),
            ("vanilla_act", self.vanilla_act, ("relu", "gelu")),
            ("dst_act", self.dst_act, ("fused_relu", "path_gelu")),
            ("ref_points", self.ref_points, ("official", "window")),
        ):
            if value not in allowed:
                raise ValueError(f"{key}: unknown {value!r}; allowed: {list(allowed)}")


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class TrunkSpec:
    """One row of the backbone table."""

    family: str  # "resnet" (timm) or "vit" (open_clip)
    hub: str  # the library's pretrained name used for weights="hub"
    stage_channels: tuple[int, ...]  # ResNet: channels after layer1..4; ViT: (width,) * layers
    stage_strides: tuple[int, ...]  # ResNet: cumulative stride after layer1..4; ViT: (patch,)*L
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    kwargs: tuple = ()  # constructor arguments for the random-init build (timm ResNet / open_clip ViT)


# Official: torchvision ImageNet ResNet (timm's ``*.tv_in1k`` tags hold exactly those weights)
# and OpenAI CLIP ViTs (QuickGELU). Tiny ResNets: BasicBlock [1,1,1,1], deep stem, no maxpool,
# layer4 dilated (output_stride 16) so a 32x32 frame gives maps 16, 8, 4, 4.
TRUNKS: dict[str, TrunkSpec] = {
    "resnet18": TrunkSpec("resnet", "resnet18.tv_in1k", (64, 128, 256, 512), (4, 8, 16, 32)),
    "resnet34": TrunkSpec("resnet", "resnet34.tv_in1k", (64, 128, 256, 512), (4, 8, 16, 32)),
    "resnet50": TrunkSpec("resnet", "resnet50.tv_in1k", (256, 512, 1024, 2048), (4, 8, 16, 32)),
    "resnet_tiny": TrunkSpec(
        "resnet",
        "",
        (8, 16, 32, 64),
        (2, 4, 8, 8),
        kwargs=(("channels", (8, 16, 32, 64)), ("stem_width", 4)),
    ),
    "resnet_tiny16": TrunkSpec(
        "resnet",
        "",
        (16, 32, 64, 128),
        (2, 4, 8, 8),
        kwargs=(("channels", (16, 32, 64, 128)), ("stem_width", 8)),
    ),
    "vit_b16": TrunkSpec(
        "vit",
        "ViT-B-16",
        (768,) * 12,
        (16,) * 12,
        CLIP_MEAN,
        CLIP_STD,
        kwargs=(
            ("patch_size", 16),
            ("width", 768),
            ("layers", 12),
            ("heads", 12),
            ("output_dim", 512),
        ),
    ),
    # Tiny CLIP-style ViT for tests (random weights only): 2 blocks of width 64, 2 heads.
    "vit_tiny": TrunkSpec(
        "vit",
        "",
        (64,) * 2,
        (16,) * 2,
        CLIP_MEAN,
        CLIP_STD,
        kwargs=(
            ("patch_size", 16),
            ("width", 64),
            ("layers", 2),
            ("heads", 2),
            ("output_dim", 32),
        ),
    ),
    "vit_l14": TrunkSpec(
        "vit",
        "ViT-L-14",
        (1024,) * 24,
        (14,) * 24,
        CLIP_MEAN,
        CLIP_STD,
        kwargs=(
            ("patch_size", 14),
            ("width", 1024),
            ("layers", 24),
            ("heads", 16),
            ("output_dim", 768),
        ),
    ),
    # Test/smoke-sized CLIP-style ViT: 2 blocks of width 64, patch 8 (a 32x32 frame is 4x4 tokens).
    "vit_tiny8": TrunkSpec(
        "vit",
        "",
        (64,) * 2,
        (8,) * 2,
        CLIP_MEAN,
        CLIP_STD,
        kwargs=(("patch_size", 8), ("width", 64), ("layers", 2), ("heads", 2), ("output_dim", 32)),
    ),
}


def trunk_spec(name: str) -> TrunkSpec:
    """The row of backbone ``name`` (ValueError naming the allowed names)."""
    if name not in TRUNKS:
        raise ValueError(f"backbone: unknown name {name!r}; allowed: {sorted(TRUNKS)}")
    return TRUNKS[name]


# Insertion positions (Table 9), by name: which of the n stages/blocks get an adapter.
POSITIONS = {
    "full": lambda n: list(range(n)),
    "early": lambda n: list(range(n // 2)),
    "late": lambda n: list(range(n - n // 2, n)),
    "skip": lambda n: list(range(0, n, 2)),
}


def insertion_indices(positions: str, n: int) -> list[int]:
    """Stage/block indices that get an adapter for a named insertion position (Table 9)."""
    if positions not in POSITIONS:
        raise ValueError(f"positions: unknown {positions!r}; allowed: {list(POSITIONS)}")
    return POSITIONS[positions](n)


def stage_feature_sizes(name: str, image_size: int) -> list[tuple[int, int]]:
    """(H, W) of the feature map after each ResNet stage / ViT block for a square input."""
    spec = trunk_spec(name)
    if spec.family == "vit":
        g = image_size // spec.stage_strides[0]
        return [(g, g)] * len(spec.stage_strides)
    return [(-(-image_size // s),) * 2 for s in spec.stage_strides]
