"""FewShotModel: adapted encoder + matching metric (+ the official auxiliary global-class head).

D2ST-Adapter (ICCV 2025) encodes every support and query video into per-frame features with the
adapted frozen backbone (Eq. 1-4) and matches them with a temporal metric (Eq. 5); training is
cross-entropy over the W episode classes. The official code adds, unmentioned in the paper, an
auxiliary cross-entropy over the global training classes, applied by a linear classifier to the
temporal mean of each support and query video's frame features (official_impl.md §5); its weights
per backbone family x dataset are :data:`AUX_WEIGHTS` (0 where the key is absent).
"""

from __future__ import annotations

import torch
from torch import nn

# (family, dataset) -> lambda_cls of the released configs (absent -> 0: no auxiliary head)
AUX_WEIGHTS: dict[tuple[str, str], float] = {
    ("resnet", "ssv2_full"): 1.0,
    ("resnet", "ssv2_small"): 0.5,
    ("resnet", "kinetics100"): 1.5,
    ("resnet", "hmdb51"): 2.0,
    ("resnet", "ucf101"): 1.5,
    ("vit", "ssv2_full"): 2.0,
    ("vit", "ssv2_small"): 0.5,
    ("vit", "hmdb51"): 2.5,
}


class FewShotModel(nn.Module):
    """Encoder + metric (+ auxiliary linear classifier).

    Args:
        encoder: the Encoder API module ((B, T, 3, H, W) -> (B, T, C), ``.feature_dim``).
        metric: a metric module with the ``(support_feats, support_labels, query_feats)`` signature.
        aux_classes: size of the auxiliary global-class classifier; 0 builds none.
    """

    def __init__(self, encoder: nn.Module, metric: nn.Module, aux_classes: int = 0):
        super().__init__()
        self.encoder = encoder
        self.metric = metric
        self.classifier = nn.Linear(encoder.feature_dim, aux_classes) if aux_classes else None

    def encode(self, videos: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) normalised -> (B, T, C) per-frame features."""
        return self.encoder(videos)

    def forward(self, support: torch.Tensor, support_labels: torch.Tensor, query: torch.Tensor):
        """One episode.

        Args:
            support: (S, T, 3, H, W) normalised support clips.
            support_labels: (S,) episode labels 0..W-1.
            query: (Q, T, 3, H, W).

        Returns:
            logits (Q, W) and auxiliary logits (S + Q, classes) (support then query) or None.
        """
        S = support.shape[0]
        feats = self.encode(torch.cat([support, query]))  # (S + Q, T, C), one encoder pass
        logits = self.metric(feats[:S], support_labels, feats[S:])  # (Q, W)
        aux = None
        if self.classifier is not None:
            aux = self.classifier(feats.float().mean(1))  # temporal mean (S + Q, C) -> classes
        return logits, aux


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The parameters with ``requires_grad`` plus the buffers of modules that own one of them.

    This is what a run saves (checkpoint and model.safetensors): the frozen trunk (and its frozen
    BatchNorm statistics) is rebuilt from ``model.weights`` and the run seed; buffers of
    parameter-free modules (TRX's position table, tuple indices) are rebuilt deterministically.
    """
    state = {n: p for n, p in model.named_parameters() if p.requires_grad}
    for mod_name, module in model.named_modules():
        own = list(module.parameters(recurse=False))
        if any(p.requires_grad for p in own):
            for b_name, buf in module.named_buffers(recurse=False):
                if b_name in module._non_persistent_buffers_set:
                    continue
                state[f"{mod_name}.{b_name}" if mod_name else b_name] = buf
    return state


def load_trainable_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copy a :func:`trainable_state` dict into ``model``; keys must match exactly."""
    own = trainable_state(model)
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        raise KeyError(
            f"trainable state mismatch: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    with torch.no_grad():
        for k, v in state.items():
            own[k].copy_(v)


def episode_features(feats: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Cached per-video features (N, T, C) gathered for index tensors (..., V) -> (..., V, T, C)."""
    return feats[index]
