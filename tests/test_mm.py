"""D2ST-Adapter-MM contracts: frozen text tower, per-name text cache, gradients, MM forward/match,
and the non-MM path left exactly as it was."""

from __future__ import annotations

import csv

import pytest
import torch
import torch.nn.functional as F

from d2st.models.config import ModelCfg, build_encoder, build_mm
from d2st.models.fewshot import FewShotModel, trainable_state
from d2st.models.metrics import build_metric
from d2st.models.mm import (
    TEXT_TOWERS,
    MultiModalHead,
    TextTower,
    TextTowerSpec,
    load_class_names,
    prompt_text,
)

T, SIZE = 4, 32
NAMES = ["move_left", "move_right", "grow", "shrink", "blink", "bounce"]
TINY_SPEC = TextTowerSpec("", 16, 2, 1, embed_dim=24, visual_dim=32, mlp_dim=48)


def tiny_resnet_model(mm: bool = True, aux: int = 0, seed: int = 0) -> FewShotModel:
    """The config path the trainer uses: build_encoder, build_mm, metric at the model's width."""
    cfg = ModelCfg(backbone="resnet_tiny", weights="random", frames=T, image_size=SIZE, mm=mm)
    torch.manual_seed(seed)
    encoder = build_encoder(cfg)
    head = build_mm(cfg, encoder.feature_dim)
    dim = head.embed_dim if head is not None else encoder.feature_dim
    return FewShotModel(encoder, build_metric("bimhm", dim=dim, frames=T), aux, mm=head)


def tiny_vit_model(seed: int = 0) -> FewShotModel:
    """A tiny open_clip ViT (width 32) with a D2ST adapter per block and a tiny text tower that
    projects the 32-d CLS features into a 24-d joint space (the CLIP layout, scaled down)."""
    from open_clip.transformer import QuickGELU, VisionTransformer

    from d2st.models.adapters import build_adapter
    from d2st.models.backbones import ViTEncoder

    torch.manual_seed(seed)
    trunk = VisionTransformer(
        image_size=SIZE, patch_size=8, width=32, layers=2, heads=2, mlp_ratio=4.0,
        output_dim=16, act_layer=QuickGELU,
    )  # fmt: skip
    adapters = {
        i: build_adapter(
            "d2st",
            32,
            0.25,
            (T, 4, 4),
            tokens=True,
            num_heads=4,
            spatial_density=(2, 2, 2),
            temporal_density=(4, 1, 1),
            batch_first=trunk.transformer.batch_first,
        )  # fmt: skip
        for i in range(2)
    }
    encoder = ViTEncoder(trunk, adapters, T)
    head = MultiModalHead(TextTower(TINY_SPEC), mlp_dim=TINY_SPEC.mlp_dim)
    return FewShotModel(encoder, build_metric("otam", dim=head.embed_dim, frames=T), mm=head)


def episode(way=3, shot=2, query=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    support = torch.randn(way * shot, T, 3, SIZE, SIZE, generator=g)
    queries = torch.randn(way * query, T, 3, SIZE, SIZE, generator=g)
    labels = torch.arange(way).repeat_interleave(shot)
    q_labels = torch.arange(way).repeat_interleave(query)
    return support, labels, queries, q_labels


# --------------------------------------------------------------------------- class names


def test_prompt_text_template_and_underscores():
    assert prompt_text("move_left") == "a photo of move left"
    assert prompt_text("Closing something") == "a photo of Closing something"
    assert prompt_text("x", "a video of {}.") == "a video of x."
    with pytest.raises(ValueError, match="empty class name"):
        prompt_text(" _ ")


def test_every_dataset_has_class_names():
    """Synthetic classes and the embedded SSv2/Kinetics name table give non-empty prompts."""
    from importlib.resources import files

    from d2st.data.synthetic import PARTITIONS, classes_in

    for p in PARTITIONS:
        for c in classes_in(p):
            assert prompt_text(c.name).startswith("a photo of ")
    table = files("d2st.data").joinpath("split_classes.tsv").read_text().splitlines()
    rows = list(csv.DictReader(table, delimiter="\t"))
    assert rows and all(prompt_text(r["class_name"]) for r in rows)


def test_load_class_names_orders_by_index_and_names_gaps(tmp_path):
    ok = tmp_path / "split.csv"
    ok.write_text("video_id,label,label_idx,relpath\na,grow,1,x\nb,blink,0,y\nc,grow,1,z\n")
    assert load_class_names(ok) == ["blink", "grow"]
    gap = tmp_path / "gap.csv"
    gap.write_text("video_id,label,label_idx,relpath\na,grow,2,x\nb,blink,0,y\n")
    with pytest.raises(ValueError, match="class index 1"):
        load_class_names(gap)


def test_unknown_class_index_and_backbone_raise():
    model = tiny_resnet_model()
    model.set_class_names(NAMES[:3])
    s, lab, q, _ = episode()
    with pytest.raises(ValueError, match="class index 5"):
        model(s, lab, q, classes=torch.tensor([0, 1, 5]))
    with pytest.raises(ValueError, match="model.mm"):
        build_mm(ModelCfg(backbone="resnet50", mm=True), 2048)


# --------------------------------------------------------------------------- text tower


def test_text_tower_equals_open_clip_encode_text():
    """Loading an open_clip CLIP state_dict gives CLIP's own encode_text and visual.proj."""
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    torch.manual_seed(3)
    clip = CLIP(
        embed_dim=24,
        vision_cfg=CLIPVisionCfg(layers=1, width=32, patch_size=8, image_size=16, head_width=16),
        text_cfg=CLIPTextCfg(context_length=77, vocab_size=49408, width=16, heads=2, layers=1),
        quick_gelu=True,
    ).eval()
    tower = TextTower(TINY_SPEC)
    tower.load_clip_state(clip.state_dict(), "tiny CLIP")
    prompts = [prompt_text(n) for n in NAMES]
    with torch.no_grad():
        expected = clip.encode_text(tower.tokenizer(prompts))
    torch.testing.assert_close(tower(NAMES), expected)
    torch.testing.assert_close(tower.visual_proj, clip.visual.proj)
    with pytest.raises(ValueError, match="lacks CLIP text keys"):
        tower.load_clip_state({"visual.proj": clip.visual.proj}, "bad file")


def test_text_features_cached_once_per_class_name():
    model = tiny_resnet_model()
    tower = model.mm.tower
    model.set_class_names(NAMES)  # base classes
    assert (tower.calls, tower.encoded) == (1, len(NAMES))
    s, lab, q, _ = episode()
    for cls in ([0, 1, 2], [3, 4, 5], [5, 0, 2]):  # episodes never call the tower
        model(s, lab, q, classes=torch.tensor(cls))
    model.set_class_names(["spin_cw", "grow", "spin_ccw"])  # novel classes: only new names
    assert (tower.calls, tower.encoded) == (2, len(NAMES) + 2)
    model.set_class_names(NAMES)
    assert (tower.calls, tower.encoded) == (2, len(NAMES) + 2)
    torch.testing.assert_close(model.mm.class_text, tower(NAMES))


# --------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("build", [tiny_resnet_model, tiny_vit_model], ids=["resnet_tiny", "vit"])
def test_gradients_reach_exactly_the_tunable_parameters(build):
    model = build()
    model.set_class_names(NAMES)
    model.train()
    s, lab, q, q_lab = episode()
    classes = torch.tensor([4, 0, 2])
    logits, aux = model(s, lab, q, classes=classes)
    assert logits.shape == (6, 3) and aux.shape == (12, len(NAMES))
    global_labels = torch.cat([classes[lab], classes[q_lab]])
    (F.cross_entropy(logits, q_lab) + 3.0 * F.cross_entropy(aux, global_labels)).backward()
    tunable = {n for n, p in model.named_parameters() if p.requires_grad}
    reached = {n for n, p in model.named_parameters() if p.grad is not None}
    assert reached == tunable
    assert not any(p.requires_grad for p in model.mm.tower.parameters())  # text tower frozen
    assert {n for n in tunable if n.startswith("mm.")} == {
        n for n, _ in model.mm.named_parameters(prefix="mm") if not n.startswith("mm.tower")
    }
    assert not any(k.startswith("mm.tower") or k == "mm.class_text" for k in trainable_state(model))


def test_vit_b16_mm_adds_exactly_the_modulation_transformer_and_scale():
    """Tunable(d2st + mm) - tunable(d2st) on vit_b16 = CLIP-FSAR's Transformer at 512-d + scale."""
    d, mlp = 512, 2048
    expected = 4 * d * d + d + 2 * d + (d * mlp + mlp) + (mlp * d + d) + 1
    counts = []
    for mm in (False, True):
        cfg = ModelCfg(backbone="vit_b16", weights="random", image_size=SIZE, frames=T, mm=mm)
        encoder = build_encoder(cfg)
        head = build_mm(cfg, encoder.feature_dim)
        model = FewShotModel(encoder, build_metric("bimhm", dim=768, frames=T), mm=head)
        counts.append(model.tunable_parameters())
    assert counts[1] - counts[0] == expected
    assert head.embed_dim == 512 and tuple(head.tower.visual_proj.shape) == (768, 512)


# --------------------------------------------------------------------------- MM semantics


def test_text_enters_only_its_own_prototype_and_not_the_query():
    head = MultiModalHead(TextTower(TINY_SPEC), mlp_dim=TINY_SPEC.mlp_dim).eval()
    g = torch.Generator().manual_seed(0)
    protos, text = torch.randn(3, T, 24, generator=g), torch.randn(3, 24, generator=g)
    base = head.modulate(protos, text)
    text2 = text.clone()
    text2[1] = torch.randn(24, generator=g)  # (a constant shift would vanish in LayerNorm)
    moved = head.modulate(protos, text2)
    changed = (moved - base).abs().flatten(1).amax(1) > 1e-6
    assert changed.tolist() == [False, True, False]
    query = torch.randn(5, T, 24, generator=g)
    torch.testing.assert_close(head.refine_query(query[:2]), head.refine_query(query)[:2])


def test_contrastive_logits_definition():
    head = MultiModalHead(TextTower(TINY_SPEC), mlp_dim=TINY_SPEC.mlp_dim)
    head.set_classes(NAMES)
    with torch.no_grad():
        head.logit_scale.fill_(2.5)
    feats = torch.randn(4, T, 24)
    got = head.contrastive_logits(feats)
    for i in range(4):
        v = feats[i].mean(0)
        for n in range(len(NAMES)):
            t = head.class_text[n]
            want = 2.5 * (v @ t) / (v.norm() * t.norm() + 0.01)
            assert torch.isclose(got[i, n], want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("build", [tiny_resnet_model, tiny_vit_model], ids=["resnet_tiny", "vit"])
def test_cached_match_equals_episode_forward(build):
    """What the cached evaluator calls (match on encode features, episode batch) == forward."""
    model = build().eval()
    model.set_class_names(NAMES)
    eps = [episode(seed=k) for k in range(2)]
    classes = torch.tensor([[1, 3, 5], [2, 0, 4]])
    with torch.no_grad():
        direct = torch.stack(
            [model(s, lab, q, classes=c)[0] for (s, lab, q, _), c in zip(eps, classes)]
        )
        sf = torch.stack([model.encode(s) for s, _, _, _ in eps])  # (E, S, T, C)
        qf = torch.stack([model.encode(q) for _, _, q, _ in eps])  # (E, Q, T, C)
        labels = torch.stack([lab for _, lab, _, _ in eps])
        batched = model.match(sf, labels, qf, classes)
    torch.testing.assert_close(batched, direct, rtol=1e-4, atol=1e-4)


def test_tiny_text_tower_rows_match_their_trunks():
    for name in ("resnet_tiny", "resnet_tiny16"):
        enc = build_encoder(ModelCfg(backbone=name, frames=T, image_size=SIZE))
        assert TEXT_TOWERS[name].embed_dim == enc.feature_dim
        assert TEXT_TOWERS[name].visual_dim is None


# --------------------------------------------------------------------------- non-MM unchanged


def test_mm_false_is_the_plain_model():
    """mm=False: same parameters (keys and values), same outputs as encoder + metric + classifier
    assembled by hand; no MM module, no text tower."""
    model = tiny_resnet_model(mm=False, aux=7, seed=5)
    torch.manual_seed(5)
    cfg = ModelCfg(backbone="resnet_tiny", weights="random", frames=T, image_size=SIZE)
    encoder = build_encoder(cfg)
    metric = build_metric("bimhm", dim=encoder.feature_dim, frames=T)
    classifier = torch.nn.Linear(encoder.feature_dim, 7)
    ref = {f"encoder.{k}": v for k, v in encoder.state_dict().items()}
    ref |= {f"metric.{k}": v for k, v in metric.state_dict().items()}
    ref |= {f"classifier.{k}": v for k, v in classifier.state_dict().items()}
    got = model.state_dict()
    assert list(got) == list(ref)
    assert all(torch.equal(got[k], ref[k]) for k in ref)
    assert model.mm is None and model.feature_dim == encoder.feature_dim
    model.eval(), encoder.eval()
    s, lab, q, _ = episode()
    with torch.no_grad():
        logits, aux = model(s, lab, q)
        feats = encoder(torch.cat([s, q]))
        assert torch.equal(logits, metric(feats[:6], lab, feats[6:]))
        assert torch.equal(aux, classifier(feats.mean(1)))
        assert torch.equal(model(s, lab, q, classes=torch.tensor([9, 9, 9]))[0], logits)
