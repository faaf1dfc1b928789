"""FewShotModel: adapted encoder + matching metric (+ the official auxiliary global-class head).

D2ST-Adapter (ICCV 2025) encodes every support and query video into per-frame features with the
adapted frozen backbone (Eq. 1-4) and matches them with a temporal metric (Eq. 5); training is
cross-entropy over the W episode classes. The official code adds, unmentioned in the paper, an
auxiliary cross-entropy over the global training classes, applied by a linear classifier to the
temporal mean of each support and query video's frame features (authors' repository
qizhongtan/D2ST-Adapter, its model's ``classification_layer``); its weight per backbone family x
dataset is the ``aux_weight`` column of :data:`d2st.catalog.SCHEDULES`.

D2ST-Adapter-MM (paper §4.2, CLIP-FSAR's framework, ``d2st.models.mm``) adds a
:class:`~d2st.models.mm.MultiModalHead`: features are mapped into CLIP's joint space, support
prototypes are modulated by their class text before matching, queries go through the same
Transformer, and the auxiliary slot holds the video-text contrastive logits over the current class
vocabulary (the base classes in training) instead of the linear classifier.
"""

from __future__ import annotations

import torch
from torch import nn

from d2st.models.metrics import episode_way, prototypes


class FewShotModel(nn.Module):
    """Encoder + metric (+ auxiliary linear classifier, or the D2ST-Adapter-MM head).

    Args:
        encoder: the Encoder API module ((B, T, 3, H, W) -> (B, T, C), ``.feature_dim``).
        metric: a metric module with the ``(support_feats, support_labels, query_feats)`` signature,
            built for width ``feature_dim`` (the MM head's ``embed_dim`` when ``mm`` is given).
        aux_classes: size of the auxiliary global-class classifier; 0 builds none. Ignored with
            ``mm``: the video-text logits fill the auxiliary slot.
        mm: optional :class:`~d2st.models.mm.MultiModalHead` (D2ST-Adapter-MM).
    """

    def __init__(
        self,
        encoder: nn.Module,
        metric: nn.Module,
        aux_classes: int = 0,
        mm: nn.Module | None = None,
    ):
        super().__init__()
        self.encoder = encoder
        self.metric = metric
        self.classifier = (
            nn.Linear(encoder.feature_dim, aux_classes) if aux_classes and mm is None else None
        )
        self.mm = mm

    @property
    def feature_dim(self) -> int:
        """Width C of :meth:`encode`'s features (the MM joint space when ``mm`` is set)."""
        return self.mm.embed_dim if self.mm is not None else self.encoder.feature_dim

    def set_class_names(self, names) -> None:
        """MM: the class vocabulary, ``names[i]`` = label of class index ``i`` of the partition.

        Text features are computed once per distinct name and cached; a no-op without ``mm``.
        """
        if self.mm is not None:
            self.mm.set_classes(names)

    def encode(self, videos: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) normalised -> (B, T, C) per-frame features (MM: joint space)."""
        feats = self.encoder(videos)
        return feats if self.mm is None else self.mm.project(feats)

    def match(
        self,
        support_feats: torch.Tensor,
        support_labels: torch.Tensor,
        query_feats: torch.Tensor,
        classes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Episode logits from :meth:`encode` features (leading episode dims allowed).

        Args:
            support_feats: (..., S, T, C).
            support_labels: (..., S) episode labels 0..W-1.
            query_feats: (..., Q, T, C).
            classes: (..., W) class index (into the vocabulary of :meth:`set_class_names`) of
                each episode class; required with ``mm``, ignored without.

        Returns:
            logits (..., Q, W). With ``mm``: the per-class prototypes (mean of the shots) are
            modulated by their text, the queries refined by the same Transformer, and the metric
            matches W one-shot prototypes.
        """
        if self.mm is None:
            return self.metric(support_feats, support_labels, query_feats)
        if classes is None:
            raise ValueError("mm: match/forward need classes (the episode's class indices)")
        way = episode_way(support_labels)
        protos = prototypes(support_feats, support_labels, way)  # (..., W, T, C)
        protos = self.mm.modulate(protos, self.mm.text_for(classes))  # (..., W, T, C)
        query = self.mm.refine_query(query_feats)  # (..., Q, T, C)
        labels = torch.arange(way, device=support_labels.device).expand(*protos.shape[:-2])
        return self.metric(protos, labels, query)

    def forward(
        self,
        support: torch.Tensor,
        support_labels: torch.Tensor,
        query: torch.Tensor,
        classes: torch.Tensor | None = None,
    ):
        """One episode.

        Args:
            support: (S, T, 3, H, W) normalised support clips.
            support_labels: (S,) episode labels 0..W-1.
            query: (Q, T, 3, H, W).
            classes: (W,) class index of each episode class (MM only; see :meth:`match`).

        Returns:
            logits (Q, W) and auxiliary logits (S + Q, classes) (support then query) or None;
            with ``mm`` the auxiliary logits are the video-text logits over the vocabulary.
        """
        S = support.shape[0]
        feats = self.encode(torch.cat([support, query]))  # (S + Q, T, C), one encoder pass
        logits = self.match(feats[:S], support_labels, feats[S:], classes)  # (Q, W)
        aux = None
        if self.classifier is not None:
            aux = self.classifier(feats.float().mean(1))  # temporal mean (S + Q, C) -> classes
        elif self.mm is not None:
            aux = self.mm.contrastive_logits(feats)  # (S + Q, vocabulary)
        return logits, aux

    def tunable_parameters(self) -> int:
        """Parameters with ``requires_grad`` (encoder, metric, classifier, MM head)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


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
