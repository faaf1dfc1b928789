"""The update recipe: windows, gradient scale and lr per update against a brute-force replay of
the authors' 2-GPU loop; weight-decay groups by their naming rule; the NaN policies."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
import torch

from d2st.catalog import SCHEDULES
from d2st.config import schedule as preset
from d2st.recipe import (
    NanGuard,
    Recipe,
    Schedule,
    decay_split,
    describe,
    equivalent_weight_decay,
    gradient_scale,
    kept_positions,
    num_updates,
    param_groups,
    update_lr,
    update_window,
    update_windows,
)

BACKBONE = {"resnet": "resnet50", "vit": "vit_b16"}


def _schedule(dataset, family) -> Schedule:
    return Schedule.from_train(SimpleNamespace(**preset(dataset, BACKBONE[family])["train"]))


def _their_lr(epoch, base, warm_start, steps, lrs, max_epoch=10, warm_epochs=1):
    """Their ``get_lr_at_epoch`` with ``steps_with_relative_lrs``, written from its definition."""

    def steps_lr(e):
        bounds = list(steps) + [max_epoch]
        ind = next((i for i, s in enumerate(bounds) if e < s), len(bounds)) - 1
        return lrs[ind] * base

    if epoch < warm_epochs:
        return epoch * (steps_lr(warm_epochs) - warm_start) / warm_epochs + warm_start
    return steps_lr(epoch)


def _their_loop(n_tasks, base, warm_start, steps, lrs, ranks=2, batch_size=2, per_step=8):
    """Replay of their loop: per step, (lr set at the step's iteration, rank-0 draws, coefficient
    of each episode's gradient in the DDP-averaged update)."""
    iters = n_tasks // ranks  # DistributedSampler: NUM_TRAIN_TASKS / 2 iterations per rank
    steps_iter = iters // 10  # every run is exactly 10 "epochs"
    out, window = [], []
    for it in range(iters):
        lr = _their_lr(it / steps_iter, base, warm_start, steps, lrs)
        window.append(it)
        if (it + 1) % per_step == 0:
            # each rank: sum of loss / batch_size; DDP: mean over ranks; identical ranks
            coeff = sum(1.0 / batch_size for _ in range(ranks)) / ranks
            out.append((lr, list(window), coeff))
            window = []
    return out, window  # window: iterations back-propagated but never stepped


@pytest.mark.parametrize("family,dataset", sorted(SCHEDULES))
def test_official_windows_match_their_two_gpu_loop(family, dataset):
    row = SCHEDULES[(family, dataset)]
    lr, warm, n, steps, lrs = row.lr, row.warmup_start_lr, row.episodes, row.steps, row.factors
    theirs, never = _their_loop(n, lr, warm, steps, lrs)
    sched = _schedule(dataset, family)
    ours = list(update_windows(n, 8, "official", "drop"))
    assert len(ours) == len(theirs) == num_updates(n, 8, "official", "drop")
    for w, (their_lr, iters, coeff) in zip(ours, theirs):
        assert w.count == len(iters) == 8  # 8 distinct episodes (rank 1 repeats rank 0)
        assert w.draw_end - w.draw_start == 16
        assert w.loss_scale == coeff == 0.5
        assert update_lr(w, sched, "last") == pytest.approx(their_lr, rel=1e-12, abs=0)
    # the draws they back-propagate but never step are exactly the ones we drop
    assert n - ours[-1].draw_end == 2 * len(never)
    # distinct episode ids are contiguous and never repeat (resume = uninterrupted relies on it)
    ids = [g for w in ours for g in w.episodes]
    assert ids == list(range(8 * len(ours)))


def test_hmdb51_resnet50_preset_500_updates_scale_4_first_lr():
    sched = _schedule("hmdb51", "resnet")
    ws = list(update_windows(8000, 8, "official"))
    assert len(ws) == 500
    assert gradient_scale("official", 8) == 4.0 and gradient_scale("distinct", 8) == 1.0
    # warm-up over 800 draws from 4e-4 to 2e-3; the first step is at draw 14
    assert update_lr(ws[0], sched, "last") == pytest.approx(4e-4 + (2e-3 - 4e-4) * 14 / 800)
    assert update_lr(ws[0], sched, "last") == pytest.approx(4.28e-4)
    assert update_lr(ws[0], sched, "start") == pytest.approx(4.0e-4)
    assert [len(list(update_windows(8000, 8, "distinct")))] == [1000]


def test_vit_hmdb51_drops_its_last_8_draws_or_makes_a_short_update():
    assert num_updates(3000, 8, "official", "drop") == 187
    assert num_updates(3000, 8, "official", "partial") == 188
    last = update_window(187, 3000, 8, "official", "partial")
    assert (last.first, last.count, last.draw_start, last.draw_end) == (1496, 4, 2992, 3000)
    assert last.loss_scale == 0.5 and last.last_draw == 2998


def test_distinct_partial_start_is_the_loop_before_issue_13():
    """Ours: update covers draws [u*A, min((u+1)*A, N)), losses averaged, lr at the start."""
    N, A = 50, 8
    t = SimpleNamespace(
        lr=1e-3,
        warmup_start_lr=2e-4,
        warmup_episodes=5,
        episodes=N,
        lr_milestones=[0.0, 0.5, 0.7],
        lr_factors=[1.0, 0.1, 0.01],
    )
    sched = Schedule.from_train(t)
    ws = list(update_windows(N, A, "distinct", "partial"))
    done, k = 0, 0
    while done < N:
        end = min(done + A, N)
        w = ws[k]
        assert (w.first, w.count, w.draw_start, w.draw_end) == (done, end - done, done, end)
        assert w.loss_scale == 1.0 / (end - done)
        assert update_lr(w, sched, "start") == sched.lr_at(done)
        done, k = end, k + 1
    assert k == len(ws)


def test_schedule_equals_the_trainers_lr_at():
    train = pytest.importorskip("d2st.train")
    if not hasattr(train, "lr_at"):
        pytest.skip("the trainer takes its lr from d2st.recipe")
    t = SimpleNamespace(**preset("ucf101", "vit_b16")["train"])
    sched = Schedule.from_train(t)
    for e in range(0, t.episodes + 1, 7):
        assert sched.lr_at(e) == train.lr_at(e, t)


def test_windows_resume_from_any_update():
    full = list(update_windows(3000, 8, "official", "partial"))
    assert list(update_windows(3000, 8, "official", "partial", start=101)) == full[101:]


def test_bad_names_are_reported():
    with pytest.raises(ValueError, match="train.update_mode"):
        update_window(0, 80, 8, "twice")
    with pytest.raises(ValueError, match="train.leftover"):
        num_updates(80, 8, "official", "keep")
    with pytest.raises(ValueError, match="outside"):
        update_window(5, 80, 8, "official")
    with pytest.raises(ValueError, match="train.nan_policy"):
        NanGuard("ignore", 8)


# --------------------------------------------------------------------------- weight decay


def test_weight_decay_equivalence_under_adam():
    """Their 1e-3 on a 4x gradient == 2.5e-4 on the mean gradient (exact at eps = 0)."""
    assert equivalent_weight_decay(1e-3, 4.0, 1.0) == pytest.approx(2.5e-4)
    torch.manual_seed(0)
    theta0, g = torch.randn(20, dtype=torch.float64), torch.randn(20, dtype=torch.float64)
    results = []
    for scale, wd in ((4.0, 1e-3), (1.0, equivalent_weight_decay(1e-3, 4.0, 1.0))):
        p = torch.nn.Parameter(theta0.clone())
        opt = torch.optim.Adam([p], lr=1e-2, eps=0.0, weight_decay=wd)
        for _ in range(3):
            p.grad = scale * g.clone()
            opt.step()
        results.append(p.detach())
    torch.testing.assert_close(results[0], results[1], rtol=1e-12, atol=1e-15)


@pytest.fixture(scope="module")
def vit_encoder():
    from d2st.models.config import ModelCfg, build_encoder

    torch.manual_seed(0)
    return build_encoder(ModelCfg(backbone="vit_b16", image_size=32))


def test_vit_official_decays_exactly_what_they_decay(vit_encoder):
    names = [n for n, p in vit_encoder.named_parameters() if p.requires_grad]
    # their rule: exempt iff their name has "bn"/"norm". Their names with it: only the offset
    # network's LayerNormProxy (conv_offset.1.norm); s_ln/t_ln/ln_post/embeddings are decayed.
    offset_ln = re.compile(r"\.attn\.offset\.1\.(weight|bias)$")
    want_exempt = sorted(n for n in names if offset_ln.search(n))
    decay, exempt = decay_split(vit_encoder, "official")
    assert sorted(exempt) == want_exempt and len(want_exempt) == 12 * 2 * 2
    assert sorted(decay) == sorted(set(names) - set(want_exempt))
    for n in ("trunk.ln_post.weight", "adapters.0.pathways.0.norm.weight", "temporal_embedding"):
        assert n in decay


def test_vit_all_norms_exempts_every_norm_layer(vit_encoder):
    names = [n for n, p in vit_encoder.named_parameters() if p.requires_grad]
    norm = re.compile(r"(\.attn\.offset\.1\.|\.pathways\.\d\.norm\.|^trunk\.ln_post\.)")
    want_exempt = sorted(n for n in names if norm.search(n))
    decay, exempt = decay_split(vit_encoder, "all_norms")
    assert sorted(exempt) == want_exempt
    assert len(want_exempt) == 12 * 2 * 2 + 12 * 2 * 2 + 2
    assert sorted(decay) == sorted(set(names) - set(want_exempt))


def test_param_groups_shape_and_rules(vit_encoder):
    groups = param_groups(vit_encoder, 1e-3, "official")
    assert [g["weight_decay"] for g in groups] == [1e-3, 0.0]
    n_train = sum(p.requires_grad for p in vit_encoder.parameters())
    assert sum(len(g["params"]) for g in groups) == n_train
    train = pytest.importorskip("d2st.train")
    if hasattr(train, "param_groups") and train.param_groups is not param_groups:
        try:
            old = train.param_groups(vit_encoder, 1e-3)
        except TypeError:
            pytest.skip("the trainer's param_groups takes a rule now")
        new = param_groups(vit_encoder, 1e-3, "all_norms")
        assert [[id(p) for p in g["params"]] for g in old] == [
            [id(p) for p in g["params"]] for g in new
        ]


def test_resnet_official_equals_all_norms():
    """ResNet adapters' LayerNorms sit at s_ln.norm / t_ln.norm there: both rules agree."""
    from d2st.models.config import ModelCfg, build_encoder

    enc = build_encoder(ModelCfg(backbone="resnet_tiny", image_size=32))
    official, all_norms = decay_split(enc, "official"), decay_split(enc, "all_norms")
    assert official == all_norms
    assert any(re.search(r"\.pathways\.\d\.norm\.", n) for n in official[1])


# --------------------------------------------------------------------------- NaN policy


def _their_window(coeffs, lr=0.1):
    """Their loop on one window: loss_k = c_k * sum(w) / 2; isnan -> backward, zero_grad, skip."""
    w = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    opt = torch.optim.Adam([w], lr=lr)
    for it, c in enumerate(coeffs):
        loss = c * w.sum() / 2
        if torch.isnan(loss):
            loss.backward()
            opt.zero_grad()
            continue
        loss.backward()
        if (it + 1) % len(coeffs) == 0:
            opt.step()
            opt.zero_grad()
    return w.detach(), opt.state_dict()["state"]


def _guarded_window(coeffs, policy, lr=0.1):
    w = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    opt = torch.optim.Adam([w], lr=lr)
    guard = NanGuard(policy, len(coeffs))
    opt.zero_grad()
    for k, c in enumerate(coeffs):
        loss = c * w.sum()
        action = guard.see(k, bool(torch.isfinite(loss)))
        if action == "backward":
            (loss * 0.5).backward()
        elif action == "wipe":
            opt.zero_grad()
    if guard.step:
        opt.step()
    return w.detach(), opt.state_dict()["state"], guard


@pytest.mark.parametrize("bad", [None, 0, 3, 7])
def test_official_nan_policy_replays_their_loop(bad):
    coeffs = [float(k + 1) * (-1) ** k for k in range(8)]
    if bad is not None:
        coeffs[bad] = float("nan")
    theirs, their_state = _their_window(coeffs)
    ours, our_state, guard = _guarded_window(coeffs, "official")
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
    assert bool(our_state) == bool(their_state)  # no step at all when the last loss is NaN
    assert guard.step == (bad != 7)
    want = list(range(8)) if bad is None else list(range(bad + 1, 8))
    assert kept_positions(8, [] if bad is None else [bad], "official") == want


def test_nan_inside_window_zeroes_the_update_official_but_not_skip():
    coeffs = [1.0] * 7 + [float("nan")]
    w, state, guard = _guarded_window(coeffs, "official")
    assert not guard.step and not state
    torch.testing.assert_close(w, torch.ones(3, dtype=torch.float64), rtol=0, atol=0)
    coeffs = [1.0, 1.0, 1.0, float("nan"), 0.0, 0.0, 0.0, 0.0]  # only 0..2 carry gradient
    w, _, guard = _guarded_window(coeffs, "official")
    assert guard.step  # a step with a zero gradient: Adam moves nothing (no decay here)
    torch.testing.assert_close(w, torch.ones(3, dtype=torch.float64), rtol=0, atol=0)
    w, _, guard = _guarded_window(coeffs, "skip")
    assert guard.step and bool((w < 1).all())
    assert kept_positions(8, [3], "skip") == [0, 1, 2, 4, 5, 6, 7]


# --------------------------------------------------------------------------- logging


def test_describe_lists_the_effective_recipe(vit_encoder):
    r = Recipe(_schedule("hmdb51", "resnet"))
    text = "\n".join(describe(r, decay_split(vit_encoder, "official")))
    for needle in (
        "episodes per update: 8 distinct, 16 draws",
        "updates in total: 500",
        "warm-up updates: 50",  # steps at draws 16u + 14 < 800: u = 0..49
        "gradient scale: 4 x",
        "weight-decay groups:",
        "NaN policy: official",
        "1 stored per segment",
        "test-time sampling:",
    ):
        assert needle in text, needle
    ours = Recipe(
        _schedule("hmdb51", "resnet"), update_mode="distinct", lr_timing="start", leftover="partial"
    )
    text = "\n".join(describe(ours))
    assert "updates in total: 1000" in text and "warm-up updates: 100" in text
