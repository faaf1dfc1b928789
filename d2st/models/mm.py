"""D2ST-Adapter-MM: the multimodal extension (paper §4.2) built on CLIP-FSAR's framework.

The paper says only that D2ST-Adapter-MM "draws on the multimodal framework of CLIP-FSAR"
(Wang et al., IJCV 2023; code alibaba-mmai-research/CLIP-FSAR, head ``CNN_OTAM_CLIPFSAR``).
The facts below are that code's; docs/MODEL.md lists each with its source.

- The frozen CLIP text encoder embeds every class name once, through the prompt
  ``"a photo of {}"`` (:data:`PROMPT_TEMPLATE`); the features are cached per class name.
- Video-text contrastive loss on the base classes: the temporal mean of each support and query
  video's frame features is compared with the text features of *all* base classes by cosine
  similarity times a learnable scale (initialised to 1), trained with cross-entropy against the
  global class, weighted per dataset (:data:`MM_LOSS_WEIGHTS`).
- Prototype modulation: the class text feature is appended as one more token to the support
  prototype's T frame features, a one-layer temporal Transformer (8 heads, head width dim/8,
  MLP 2048, no positional embedding) refines the T + 1 tokens and the first T are kept; the
  query's T frames go through the same Transformer without text.

Video and text meet in CLIP's joint embedding space: the visual features are mapped by the frozen
CLIP visual projection (``visual.proj`` of the same open_clip checkpoint as the text tower). The
tiny test/demo trunks have no CLIP counterpart: they get a tiny random-init open_clip text tower
whose output width equals the visual feature width (no visual projection); it is not pretrained.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from einops import rearrange
from torch import nn

from d2st.models.backbones import _load_state_dict

PROMPT_TEMPLATE = "a photo of {}"  # CLIP-FSAR default (TEST.PROMPT unset in every config)

# dataset -> CLIP-FSAR's TRAIN.USE_CLASSIFICATION_VALUE (weight of the video-text loss)
MM_LOSS_WEIGHTS: dict[str, float] = {
    "ssv2_full": 3.0,
    "ssv2_small": 3.0,
    "kinetics100": 1.5,
    "hmdb51": 1.2,
    "ucf101": 1.5,
}


@dataclass(frozen=True)
class TextTowerSpec:
    """One row of the text-tower table: an open_clip text transformer and the joint space.

    ``embed_dim`` is the joint (text output) width; ``visual_dim`` the vision feature width that
    ``visual.proj`` maps to it (None: no projection, text output width = visual feature width).
    """

    hub: str  # open_clip model name for weights="hub" ("" = no pretrained weights exist)
    width: int
    heads: int
    layers: int
    embed_dim: int
    visual_dim: int | None
    context_length: int = 77
    vocab_size: int = 49408
    quick_gelu: bool = True  # OpenAI CLIP uses QuickGELU
    mlp_dim: int = 2048  # prototype-modulation Transformer MLP width (CLIP-FSAR: 2048)


# backbone -> text tower. CLIP rows follow open_clip's ViT-B-16 / ViT-L-14 text configs; the tiny
# rows are random-init stand-ins so the tests and the synthetic demo can run the MM path.
TEXT_TOWERS: dict[str, TextTowerSpec] = {
    "vit_b16": TextTowerSpec("ViT-B-16", 512, 8, 12, embed_dim=512, visual_dim=768),
    "vit_l14": TextTowerSpec("ViT-L-14", 768, 12, 12, embed_dim=768, visual_dim=1024),
    "resnet_tiny": TextTowerSpec("", 32, 2, 1, embed_dim=64, visual_dim=None, mlp_dim=256),
    "resnet_tiny16": TextTowerSpec("", 32, 2, 1, embed_dim=128, visual_dim=None, mlp_dim=512),
}


def prompt_text(label: str, template: str = PROMPT_TEMPLATE) -> str:
    """Class label -> prompt: underscores become spaces, then ``template.format(name)``.

    ``"move_left"`` -> ``"a photo of move left"``; SSv2's mapped names are used as they are.
    """
    name = " ".join(str(label).replace("_", " ").split())
    if not name:
        raise ValueError(f"mm: empty class name {label!r}; every class needs a name for its prompt")
    return template.format(name)


def load_class_names(path: str | Path) -> list[str]:
    """Class names ordered by ``label_idx`` from a split CSV or a shard folder's manifest.

    Args:
        path: a ``video_id,label,label_idx,relpath`` split CSV, a ``manifest.csv``, or a shard
            folder (its ``manifest.csv`` is read).

    Returns:
        ``names[i]`` is the label of class index ``i`` (0..N-1).

    Raises:
        ValueError: naming the file and the class index when an index has no name (a gap in
            0..N-1), an empty name, or two names.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "manifest.csv"
    df = pd.read_csv(path, usecols=["label", "label_idx"], dtype={"label": str})
    df = df.drop_duplicates()
    names: dict[int, str] = {}
    for label, idx in zip(df["label"], df["label_idx"]):
        idx = int(idx)
        if not isinstance(label, str) or not label.strip():
            raise ValueError(f"{path}: class index {idx} has no name (label column empty)")
        if idx in names and names[idx] != label:
            raise ValueError(f"{path}: class index {idx} has two names {names[idx]!r}, {label!r}")
        names[idx] = label
    missing = sorted(set(range(max(names, default=-1) + 1)) - set(names))
    if missing:
        raise ValueError(f"{path}: no class name for class index {missing[0]} (label_idx gap)")
    return [names[i] for i in range(len(names))]


class TextTower(nn.Module):
    """Frozen open_clip text transformer + tokenizer (+ the frozen CLIP visual projection).

    Args:
        spec: the text-tower row.
        template: prompt template with one ``{}`` for the class name.

    ``forward(names)`` returns the unnormalised joint-space text features (N, embed_dim) of the
    prompts, as CLIP's ``encode_text`` does; ``calls`` / ``encoded`` count its invocations and
    prompts (the tests check the cache with them).
    """

    def __init__(self, spec: TextTowerSpec, template: str = PROMPT_TEMPLATE):
        super().__init__()
        from open_clip.tokenizer import SimpleTokenizer
        from open_clip.transformer import QuickGELU, TextTransformer

        if template.count("{}") != 1:
            raise ValueError(f"model.mm_prompt: {template!r} needs exactly one '{{}}'")
        self.spec, self.template = spec, template
        self.text = TextTransformer(
            context_length=spec.context_length,
            vocab_size=spec.vocab_size,
            width=spec.width,
            heads=spec.heads,
            layers=spec.layers,
            output_dim=spec.embed_dim,
            act_layer=QuickGELU if spec.quick_gelu else nn.GELU,
        )
        self.tokenizer = SimpleTokenizer(context_length=spec.context_length)
        self.visual_proj = None
        if spec.visual_dim is not None:  # open_clip's init of VisionTransformer.proj
            scale = spec.visual_dim**-0.5
            self.visual_proj = nn.Parameter(scale * torch.randn(spec.visual_dim, spec.embed_dim))
        self.embed_dim = spec.embed_dim
        self.requires_grad_(False).eval()
        self.calls, self.encoded = 0, 0

    def train(self, mode: bool = True):
        """Always eval: the tower is frozen (no dropout/BN in it either way)."""
        return super().train(False)

    def load_clip_state(self, state: dict[str, torch.Tensor], where: str) -> None:
        """Load the text tower (and ``visual.proj``) from an open_clip ``CLIP.state_dict()``.

        Args:
            state: full CLIP state dict (``token_embedding.weight``, ``transformer.*``,
                ``ln_final.*``, ``text_projection``, ``positional_embedding``, ``visual.proj``).
            where: name of the source for error messages.
        """
        own = self.text.state_dict()
        missing = [k for k in own if k not in state]
        if self.visual_proj is not None and "visual.proj" not in state:
            missing.append("visual.proj")
        if missing:
            raise ValueError(f"model.mm_text_weights: {where} lacks CLIP text keys {missing[:5]}")
        self.text.load_state_dict({k: state[k] for k in own}, strict=True)
        if self.visual_proj is not None:
            with torch.no_grad():
                self.visual_proj.copy_(state["visual.proj"])

    @torch.no_grad()
    def forward(self, names: Sequence[str]) -> torch.Tensor:
        """Class labels (N) -> text features (N, embed_dim), float32, no gradient."""
        device = self.text.token_embedding.weight.device
        tokens = self.tokenizer([prompt_text(n, self.template) for n in names]).to(device)
        self.calls += 1
        self.encoded += len(names)
        return self.text(tokens).float()  # (N, context) tokens -> (N, D) EOT features


def create_text_tower(
    backbone: str, weights: str | Path = "random", template: str = PROMPT_TEMPLATE
) -> TextTower:
    """Build the frozen text tower that pairs with ``backbone`` and load its weights.

    Args:
        backbone: a key of :data:`TEXT_TOWERS` (vit_b16, vit_l14, resnet_tiny, resnet_tiny16).
        weights: "random" (open_clip init, seeded by the caller's torch seed), "hub" (open_clip
            ``pretrained="openai"`` of the row's model: the same checkpoint as the vision trunk),
            or a ``.safetensors`` / ``.pt`` file (``weights_only=True``) holding an open_clip
            ``CLIP.state_dict()`` (text keys + ``visual.proj``).
        template: prompt template.
    """
    if backbone not in TEXT_TOWERS:
        raise ValueError(
            f"model.mm: backbone {backbone!r} has no text tower; allowed: {sorted(TEXT_TOWERS)}"
        )
    spec = TEXT_TOWERS[backbone]
    tower = TextTower(spec, template)
    if str(weights) == "hub":
        if not spec.hub:
            raise ValueError(f"model.mm_text_weights: {backbone} has no hub text tower; 'random'")
        import open_clip

        clip = open_clip.create_model(spec.hub, pretrained="openai")
        tower.load_clip_state(clip.state_dict(), f"open_clip {spec.hub} openai")
    elif str(weights) != "random":
        path = Path(weights)
        if not path.is_file():
            raise ValueError(f"model.mm_text_weights: {str(weights)!r} is not random/hub/a file")
        tower.load_clip_state(_load_state_dict(path), str(path))
    return tower.requires_grad_(False).eval()


class ModulationTransformer(nn.Module):
    """CLIP-FSAR's temporal Transformer (``Transformer_v1``) in its self-attention use.

    Per layer: x <- x + Dropout(W_o MHSA(LN(x))); x <- x + FFN(x), with no LayerNorm before the
    FFN and no positional embedding (as in CLIP-FSAR). q/k/v projections have no bias.

    Args:
        dim: token width D.
        heads: attention heads (head width D / heads).
        depth: layers.
        mlp_dim: FFN hidden width.
        attn_dropout: dropout after the attention output projection (CLIP-FSAR 0.2).
        ffn_dropout: dropout after the FFN GELU and after its output (CLIP-FSAR 0.05).
    """

    def __init__(
        self,
        dim: int,
        heads: int = 8,
        depth: int = 1,
        mlp_dim: int = 2048,
        attn_dropout: float = 0.2,
        ffn_dropout: float = 0.05,
    ):
        super().__init__()
        if dim % heads:
            raise ValueError(f"mm: transformer width {dim} not divisible by {heads} heads")
        self.heads = heads
        self.layers = nn.ModuleList(
            nn.ModuleDict(
                dict(
                    norm=nn.LayerNorm(dim),
                    qkv=nn.Linear(dim, 3 * dim, bias=False),
                    out=nn.Sequential(nn.Linear(dim, dim), nn.Dropout(attn_dropout)),
                    ffn=nn.Sequential(
                        nn.Linear(dim, mlp_dim),
                        nn.GELU(),
                        nn.Dropout(ffn_dropout),
                        nn.Linear(mlp_dim, dim),
                        nn.Dropout(ffn_dropout),
                    ),
                )
            )
            for _ in range(depth)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, N, D) tokens -> (B, N, D)."""
        for layer in self.layers:
            q, k, v = layer["qkv"](layer["norm"](x)).chunk(3, dim=-1)  # 3 x (B, N, D)
            q, k, v = (rearrange(t, "b n (h d) -> b h n d", h=self.heads) for t in (q, k, v))
            att = torch.softmax(q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5, dim=-1)
            out = rearrange(att @ v, "b h n d -> b n (h d)")  # (B, N, D)
            x = x + layer["out"](out)
            x = x + layer["ffn"](x)
        return x


def cosine_eps(a: torch.Tensor, b: torch.Tensor, eps: float = 0.01) -> torch.Tensor:
    """CLIP-FSAR's ``cos_sim``: a b^T / (|a| |b|^T + eps) for a (..., N, D), b (M, D) -> (..., N, M)."""
    num = a @ b.transpose(-1, -2)
    den = a.norm(dim=-1, keepdim=True) * b.norm(dim=-1)[None] + eps
    return num / den


class MultiModalHead(nn.Module):
    """The MM parts beside encoder and metric: text tower + cache, projection, modulation, scale.

    Args:
        tower: the frozen :class:`TextTower`.
        heads, depth, mlp_dim, attn_dropout, ffn_dropout: :class:`ModulationTransformer`.
        logit_scale: initial value of the learnable scale of the video-text logits (CLIP-FSAR 1.0).

    ``set_classes(names)`` selects the class vocabulary (names[i] = label of class index i of the
    current partition) and fills ``class_text`` (N, D) from the per-name cache: a name is encoded
    by the tower the first time it is seen, never again.
    """

    def __init__(
        self,
        tower: TextTower,
        heads: int = 8,
        depth: int = 1,
        mlp_dim: int = 2048,
        attn_dropout: float = 0.2,
        ffn_dropout: float = 0.05,
        logit_scale: float = 1.0,
    ):
        super().__init__()
        self.tower = tower
        self.embed_dim = tower.embed_dim
        self.transformer = ModulationTransformer(
            tower.embed_dim, heads, depth, mlp_dim, attn_dropout, ffn_dropout
        )
        self.logit_scale = nn.Parameter(torch.tensor(float(logit_scale)))
        self._cache: dict[str, torch.Tensor] = {}
        self.class_names: list[str] = []
        self.register_buffer("class_text", torch.zeros(0, tower.embed_dim), persistent=False)

    def set_classes(self, names: Sequence[str]) -> None:
        """Class vocabulary: ``names[i]`` is the label of class index i (split ``label_idx``)."""
        names = [str(n) for n in names]
        new = [n for n in dict.fromkeys(names) if n not in self._cache]
        if new:
            for n, f in zip(new, self.tower(new).cpu()):  # one tower call for all unseen names
                self._cache[n] = f
        device = self.logit_scale.device
        self.class_text = torch.stack([self._cache[n] for n in names]).to(device)  # (N, D)
        self.class_names = names

    def text_for(self, classes: torch.Tensor) -> torch.Tensor:
        """Class indices (...) -> cached text features (..., D); clear error when out of range."""
        n = len(self.class_names)
        if n == 0:
            raise ValueError("mm: no class names set; call FewShotModel.set_class_names(names)")
        bad = (classes < 0) | (classes >= n)
        if bad.any():
            i = int(classes[bad].flatten()[0])
            raise ValueError(f"mm: no class name for class index {i} (vocabulary has {n} names)")
        return self.class_text[classes]

    def project(self, feats: torch.Tensor) -> torch.Tensor:
        """Visual frame features (..., T, C) -> joint space (..., T, D) by frozen ``visual.proj``."""
        proj = self.tower.visual_proj
        return feats if proj is None else feats @ proj.to(feats.dtype)

    def contrastive_logits(self, feats: torch.Tensor) -> torch.Tensor:
        """Video-text logits over the vocabulary: scale * cos(mean_t feats, text), (B, T, D) -> (B, N)."""
        video = feats.float().mean(-2)  # temporal mean (B, D)
        return cosine_eps(video, self.class_text.float()) * self.logit_scale

    def modulate(self, protos: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Prototype modulation: [P_w; text_w] through the Transformer, first T tokens kept.

        Args:
            protos: (..., W, T, D) class prototypes (per-frame mean of the shots).
            text: (..., W, D) their class text features.

        Returns:
            (..., W, T, D).
        """
        T = protos.shape[-2]
        x = torch.cat([protos, text.to(protos.dtype).unsqueeze(-2)], dim=-2)  # (..., W, T+1, D)
        out = self.transformer(x.reshape(-1, T + 1, x.shape[-1]))  # (B*, T+1, D)
        return out[:, :T].reshape(protos.shape)

    def refine_query(self, query: torch.Tensor) -> torch.Tensor:
        """The query side: its T frames through the same Transformer, (..., Q, T, D) -> same."""
        return self.transformer(query.reshape(-1, *query.shape[-2:])).reshape(query.shape)


def build_multimodal(
    backbone: str,
    visual_dim: int,
    weights: str | Path = "random",
    template: str = PROMPT_TEMPLATE,
) -> MultiModalHead:
    """The MM head for ``backbone`` whose encoder emits ``visual_dim``-wide frame features.

    Args:
        backbone: a key of :data:`TEXT_TOWERS`.
        visual_dim: the encoder's ``feature_dim`` (checked against the row).
        weights: text-tower weights (:func:`create_text_tower`).
        template: prompt template.
    """
    tower = create_text_tower(backbone, weights, template)
    spec = tower.spec
    expected = spec.visual_dim if spec.visual_dim is not None else spec.embed_dim
    if visual_dim != expected:
        raise ValueError(
            f"model.mm: {backbone} encoder features are {visual_dim}-d, its text tower row "
            f"expects {expected}"
        )
    return MultiModalHead(tower, mlp_dim=spec.mlp_dim)
