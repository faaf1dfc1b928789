"""Adapter benchmark: aDSTA and a whole adapted-backbone step, ours vs a dense reference.

``reference_adsta`` is the straightforward implementation the fused one is checked against
(tests/test_adsta.py): the trilinear sampling is materialised as an explicit dense
(N_s x T*H*W) weight matrix and multiplied with the volume, and attention is an explicit einsum
+ softmax. Rows: forward+backward seconds (median of ``reps``) and peak memory for each
(case, impl, dtype, device).

Memory: on CUDA ``torch.cuda.max_memory_allocated`` during the step ("cuda_max_allocated"); on
CPU, the bytes of tensors autograd saves for backward, deduplicated by storage
("saved_tensors"), i.e. the activation memory a training step holds at its peak. It leaves out
transient buffers inside single kernels.
"""

from __future__ import annotations

import csv
import statistics
import time
import types
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch
from einops import rearrange

from d2st.bench.common import machine_info
from d2st.models.adsta import ADSTA


def reference_adsta(m: ADSTA, x: torch.Tensor) -> torch.Tensor:
    """aDSTA (Eq. 3-4) with dense trilinear weights and einsum attention; same weights as ``m``.

    x: (B, N, C) tokens, the first T*H*W the volume in (t, h, w) order -> (B, N, C).
    """
    B, N, C = x.shape
    T, H, W = m.feature_size
    G = m.num_heads
    q = m.q(x)  # (B, N, C)
    q_vol = rearrange(q[:, : T * H * W], "b (t h w) (g c) -> (b g) c t h w", t=T, h=H, g=G)
    pos = rearrange(m.sampling_locations(q_vol), "bg i j k a -> bg (i j k) a")  # (BG, N_s, 3)
    weights = []
    for axis, n in enumerate((T, H, W)):
        p = pos[..., axis].float()
        u = (p + 1) / 2 * (n - 1) if m.align_corners else ((p + 1) * n - 1) / 2  # voxel coords
        grid = torch.arange(n, device=x.device, dtype=torch.float32)
        weights.append((1 - (u[..., None] - grid).abs()).clamp(min=0))  # (BG, N_s, n) hat kernel
    dense = torch.einsum("gnt,gnh,gnw->gnthw", *weights).flatten(2)  # (BG, N_s, T*H*W)
    x_vol = rearrange(x[:, : T * H * W], "b v (g c) -> (b g) v c", g=G)  # (BG, THW, C/G)
    sampled = dense.to(x_vol.dtype) @ x_vol  # (BG, N_s, C/G)
    sampled = rearrange(sampled, "(b g) n c -> b n (g c)", b=B)  # (B, N_s, C)
    k, v = m.k(sampled), m.v(sampled)
    q, k, v = (rearrange(z, "b n (g d) -> b g n d", g=G) for z in (q, k, v))
    attn = torch.einsum("bgnd,bgmd->bgnm", q, k) * (C // G) ** -0.5
    out = torch.einsum("bgnm,bgmd->bgnd", attn.softmax(-1), v)  # (B, G, N, C/G)
    return m.proj(rearrange(out, "b g n d -> b n (g d)"))


@contextmanager
def reference_mode(module: torch.nn.Module):
    """Run every ADSTA inside ``module`` through ``reference_adsta`` within the block."""
    patched = [m for m in module.modules() if isinstance(m, ADSTA)]
    for m in patched:
        m.forward = types.MethodType(reference_adsta, m)
    try:
        yield module
    finally:
        for m in patched:
            del m.forward  # back to the class's forward


def _saved_bytes(fn) -> int:
    seen: dict[int, int] = {}

    def pack(t):
        try:
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        except (RuntimeError, NotImplementedError):
            pass
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())


def _measure(step, device: str, reps: int) -> tuple[float, float, str]:
    step()  # warm-up
    times = []
    for _ in range(reps):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        step()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        step()
        return (
            statistics.median(times),
            torch.cuda.max_memory_allocated() / 2**20,
            "cuda_max_allocated",
        )
    return statistics.median(times), _saved_bytes(step) / 2**20, "saved_tensors"


def _adsta_cases(quick: bool):
    """(name, feature (T,H,W), C', heads, density, extra queries): ResNet-50 stages, ViT-B/16."""
    if quick:
        return [
            ("r50_layer3_S", (2, 14, 14), 256, 4, (1, 4, 4), 0),
            ("vitb16_S", (2, 7, 7), 192, 4, (1, 4, 4), 2),
        ]
    return [
        ("r50_layer1_S", (8, 56, 56), 64, 1, (2, 8, 8), 0),
        ("r50_layer1_T", (8, 56, 56), 64, 1, (8, 4, 4), 0),
        ("r50_layer2_S", (8, 28, 28), 128, 2, (2, 4, 4), 0),
        ("r50_layer3_S", (8, 14, 14), 256, 4, (2, 4, 4), 0),
        ("r50_layer4_S", (8, 7, 7), 512, 8, (2, 2, 2), 0),
        ("vitb16_S", (8, 14, 14), 192, 4, (2, 4, 4), 8),
        ("vitb16_T", (8, 14, 14), 192, 4, (8, 2, 2), 8),
    ]


def run(out_dir: Path, quick: bool = False) -> Path:
    """Write ``adapter.csv`` to ``out_dir`` and return its path."""
    from d2st.models.config import ModelCfg, build_encoder

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    reps = 1 if quick else 3
    rows = []
    for device in devices:
        for dtype in ("fp32", "bf16"):
            amp = torch.autocast(device, dtype=torch.bfloat16) if dtype == "bf16" else nullcontext()
            for name, feature, dim, heads, density, extra in _adsta_cases(quick):
                torch.manual_seed(0)
                m = ADSTA(dim, heads, feature, density).to(device)
                x = torch.randn(
                    1,
                    feature[0] * feature[1] * feature[2] + extra,
                    dim,
                    device=device,
                    requires_grad=True,
                )
                for impl in ("ours", "reference"):
                    fwd = m.forward if impl == "ours" else types.MethodType(reference_adsta, m)

                    def step(fwd=fwd, amp=amp, x=x):
                        with amp:
                            y = fwd(x)
                        y.float().square().mean().backward()

                    sec, mem, method = _measure(step, device, reps)
                    rows.append(
                        dict(
                            case=f"adsta_{name}",
                            impl=impl,
                            dtype=dtype,
                            batch=1,
                            shape="x".join(map(str, feature)),
                            seconds=round(sec, 5),
                            peak_mem_mb=round(mem, 2),
                            mem_method=method,
                        )
                    )
            size, frames = (64, 2) if quick else (224, 8)
            for backbone in () if quick and dtype == "bf16" else ("resnet50", "vit_b16"):
                torch.manual_seed(0)
                enc = (
                    build_encoder(ModelCfg(backbone=backbone, frames=frames, image_size=size))
                    .to(device)
                    .train()
                )
                with torch.no_grad():  # non-zero up so the whole adapter is exercised
                    for a in enc.adapters.values():
                        a.up.weight.normal_(std=1e-3)
                v = torch.randn(1, frames, 3, size, size, device=device)

                def step(enc=enc, v=v, amp=amp):
                    with amp:
                        y = enc(v)
                    y.float().square().mean().backward()

                for impl in ("ours", "reference"):
                    with reference_mode(enc) if impl == "reference" else nullcontext():
                        sec, mem, method = _measure(step, device, reps)
                    rows.append(
                        dict(
                            case=f"step_{backbone}_d2st",
                            impl=impl,
                            dtype=dtype,
                            batch=1,
                            shape=f"{frames}x{size}x{size}",
                            seconds=round(sec, 5),
                            peak_mem_mb=round(mem, 2),
                            mem_method=method,
                        )
                    )
                del enc
    path = out_dir / "adapter.csv"
    with open(path, "w", newline="") as f:
        info = {d: machine_info(d) for d in devices}
        keys = [*rows[0], *info["cpu"]]
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for r in rows:
            dev = "cuda" if r["mem_method"] == "cuda_max_allocated" else "cpu"
            w.writerow({**r, **info[dev]})
    return path
