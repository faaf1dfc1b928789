"""Frozen image trunks (timm ResNets, open_clip ViTs) wrapped with adapters, never forked.

``create_trunk(name, weights)`` builds the bare trunk named in CONTRACTS.md ("Backbones") and loads
its weights. ``ResNetEncoder`` / ``ViTEncoder`` wrap a trunk and run it frame by frame, calling
an adapter after each chosen stage (ResNet: after layer1..layer4 on the main path, official §4)
or after each chosen residual block (ViT: wrapped ``transformer.resblocks[i]``). Both return
per-frame features (B, T, C).

The trunk modules are the library's own; we only call their public pieces (timm ``conv1``..
``layer4``; open_clip ``_embeds``, ``transformer.resblocks``, ``_pool``), so weights load unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

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
        "resnet", "", (8, 16, 32, 64), (2, 4, 8, 8),
        kwargs=(("channels", (8, 16, 32, 64)), ("stem_width", 4)),
    ),
    "resnet_tiny16": TrunkSpec(
        "resnet", "", (16, 32, 64, 128), (2, 4, 8, 8),
        kwargs=(("channels", (16, 32, 64, 128)), ("stem_width", 8)),
    ),
    "vit_b16": TrunkSpec(
        "vit", "ViT-B-16", (768,) * 12, (16,) * 12, CLIP_MEAN, CLIP_STD,
        kwargs=(("patch_size", 16), ("width", 768), ("layers", 12), ("heads", 12),
                ("output_dim", 512)),
    ),
    "vit_l14": TrunkSpec(
        "vit", "ViT-L-14", (1024,) * 24, (14,) * 24, CLIP_MEAN, CLIP_STD,
        kwargs=(("patch_size", 14), ("width", 1024), ("layers", 24), ("heads", 16),
                ("output_dim", 768)),
    ),
}


def _check_name(name: str) -> TrunkSpec:
    if name not in TRUNKS:
        raise ValueError(f"backbone: unknown name {name!r}; allowed: {sorted(TRUNKS)}")
    return TRUNKS[name]


def _build_random(name: str, image_size: int | None) -> nn.Module:
    spec = _check_name(name)
    kw = dict(spec.kwargs)
    if spec.family == "resnet":
        import timm
        from timm.models.resnet import BasicBlock, ResNet

        if spec.hub:  # a named timm architecture
            return timm.create_model(name, pretrained=False, num_classes=0)
        model = ResNet(BasicBlock, [1, 1, 1, 1], num_classes=0, stem_type="deep",
                       output_stride=16, **kw)
        model.maxpool = nn.Identity()
        return model
    from open_clip.transformer import QuickGELU, VisionTransformer

    return VisionTransformer(image_size=image_size or 224, mlp_ratio=4.0, act_layer=QuickGELU, **kw)


def _load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    sd = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    return sd


def create_trunk(name: str, weights: str | Path = "random", image_size: int | None = None
                 ) -> nn.Module:
    """Build the bare trunk of backbone ``name`` and load its weights.

    Args:
        name: one of ``TRUNKS`` (resnet18/34/50, resnet_tiny, resnet_tiny16, vit_b16, vit_l14).
        weights: "random" (library init), "hub" (timm ``pretrained=True`` on the ``*.tv_in1k``
            tag the official code's torchvision weights correspond to; open_clip
            ``pretrained="openai"``), or a path to a ``.safetensors`` / ``.pt`` file holding the
            bare trunk's ``state_dict()`` (``.pt`` loads with ``weights_only=True``).
        image_size: ViT input size (positional embedding length); default 224. ResNets ignore it.

    Loading a file is strict for timm trunks (any missing or unexpected key raises). For open_clip
    trunks the projection ``proj`` may be absent (we drop it anyway) and a positional embedding of
    another grid size is resampled with open_clip's ``resize_pos_embed``; anything else missing
    or unexpected raises.

    Returns:
        timm ``ResNet`` (``num_classes=0``) or open_clip ``VisionTransformer``, in eval mode.
    """
    spec = _check_name(name)
    if str(weights) == "hub":
        if spec.family == "resnet":
            if not spec.hub:
                raise ValueError(f"weights: {name} has no hub weights; use 'random' or a path")
            import timm

            model = timm.create_model(spec.hub, pretrained=True, num_classes=0)
        else:
            import open_clip

            kw = {} if image_size in (None, 224) else {"force_image_size": image_size}
            model = open_clip.create_model(spec.hub, pretrained="openai", **kw).visual
        return model.eval()
    model = _build_random(name, image_size)
    if str(weights) != "random":
        path = Path(weights)
        if not path.is_file():
            raise ValueError(f"weights: {str(weights)!r} is not 'random', 'hub' or a file")
        sd = _load_state_dict(path)
        if spec.family == "resnet":
            model.load_state_dict(sd, strict=True)
        else:
            from open_clip.model import resize_pos_embed

            sd = {f"visual.{k}": v for k, v in sd.items()}  # the layout open_clip's helper expects
            resize_pos_embed(sd, _Holder(model))
            sd = {k.removeprefix("visual."): v for k, v in sd.items()}
            missing, unexpected = model.load_state_dict(sd, strict=False)
            missing = [k for k in missing if k != "proj"]
            if missing or unexpected:
                raise ValueError(f"weights: {path} does not match {name}: missing {missing}, "
                                 f"unexpected {unexpected}")
    return model.eval()


class _Holder(nn.Module):
    """``resize_pos_embed`` expects a CLIP model with a ``.visual`` attribute."""

    def __init__(self, visual: nn.Module):
        super().__init__()
        self.visual = visual
