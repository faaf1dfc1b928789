"""``d2st bench gpu``: the CPU smoke through the CLI (schema, correctness within tolerance), the
target arithmetic, and the device helpers the trainer logs with."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from d2st.bench import gpu
from d2st.cli import main as cli
from d2st.device import OOM_KNOBS, describe_device, oom_hint


@pytest.mark.slow
def test_cpu_smoke_through_cli_writes_the_documented_schema(tmp_path, capsys):
    assert cli(["bench", "gpu", "--device", "cpu", "--out", str(tmp_path)]) == 0
    df = pd.read_csv(tmp_path / "gpu.csv", keep_default_na=False, na_values=[""])
    assert tuple(df.columns) == gpu.COLUMNS
    plan = gpu.PLANS["smoke"]
    assert set(df.section) == {"correctness", "train", "data"}  # compile: CUDA plan only
    assert (df.device == "cpu").all() and (df.plan == "smoke").all()
    assert (df.torch == torch.__version__).all()
    assert (df[["way", "shot", "query"]].drop_duplicates().values.tolist()) == [[5, 1, 1]]

    corr = df[df.section == "correctness"]
    assert len(corr) == 2 * len(plan.backbones)
    assert set(corr["mode"]) == set(gpu.TOLERANCE)
    for _, r in corr.iterrows():
        assert r.ratio == pytest.approx(r.value / r.baseline_value, rel=1e-4)
        assert r.ratio <= gpu.TOLERANCE[r["mode"]], r.to_dict()
        assert r.met == "yes"

    train = df[df.section == "train"]
    want = {(b, m, k) for b in plan.backbones for m in gpu.MODES for k in ("episodes_per_s", "peak_mem_mib")}  # fmt: skip
    assert set(zip(train.backbone, train["mode"], train.metric)) == want
    eps = train[train.metric == "episodes_per_s"]
    assert (eps.value > 0).all() and (eps.baseline_mode == gpu.BASELINE_MODE).all()
    base = eps[eps["mode"] == gpu.BASELINE_MODE].set_index("backbone").value
    assert eps.baseline_value.tolist() == pytest.approx(eps.backbone.map(base).tolist(), rel=1e-4)
    assert eps.ratio.tolist() == pytest.approx((eps.value / eps.baseline_value).tolist(), rel=1e-4)
    assert train[train.metric == "peak_mem_mib"].value.isna().all()  # no CUDA allocator on CPU

    data = df[df.section == "data"]
    modes = {"model_step", "model_step_contiguous", "loader+model"}
    modes |= {f"loader_w{w}" for w in plan.workers}
    assert set(data["mode"]) == modes and (data.value > 0).all()
    assert (data[data["mode"].str.startswith("loader")].met.isin(["yes", "no"])).all()
    assert "gpu.csv" in capsys.readouterr().out


def test_help_shows_defaults_and_plans(capsys):
    with pytest.raises(SystemExit) as e:
        cli(["bench", "gpu", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "(default: results/bench)" in out and "(default: auto)" in out
    assert "full: resnet50, vit_b16 at 8x224^2" in out and "smoke:" in out


def test_unknown_section_is_named():
    with pytest.raises(ValueError, match="--sections: unknown"):
        gpu.run("unused", device="cpu", sections=("speed",))


@pytest.mark.parametrize(
    "value,ratio,met,gap",
    [
        (5000.0, 0.2, "yes", gpu.GB_MIB - 5000.0),  # memory bound on the value, in MiB
        (7000.0, 0.3, "no", gpu.GB_MIB - 7000.0),
        (math.nan, math.nan, "", math.nan),  # not measured (out of memory, skipped)
    ],
)
def test_memory_target_is_judged_on_the_value(value, ratio, met, gap):
    t = gpu.find_target("train", "vit_b16", "bf16_sdpa_ckpt", "peak_mem_mib")
    text, got_met, got_gap = gpu.judge(t, value, ratio)
    assert text == f"value <= {gpu.GB_MIB}" and got_met == met
    assert (math.isnan(gap) and math.isnan(got_gap)) or got_gap == pytest.approx(gap)


def test_speed_targets_are_judged_on_the_ratio():
    vit = gpu.find_target("train", "vit_b16", "bf16_sdpa", "episodes_per_s")
    res = gpu.find_target("train", "resnet50", "bf16_sdpa", "episodes_per_s")
    assert gpu.judge(vit, 10.0, 2.4) == ("ratio >= 2.5", "no", pytest.approx(-0.1))
    assert gpu.judge(res, 10.0, 2.4) == ("ratio >= 2", "yes", pytest.approx(0.4))
    assert gpu.find_target("train", "resnet_tiny", "bf16_sdpa", "episodes_per_s") is None
    assert gpu.find_target("data", "resnet50", "loader_w8", "episodes_per_s").bound == 1.0
    assert gpu.find_target("correctness", "vit_tiny8", "bf16", "max_abs_diff").on == "ratio"


def test_describe_device_names_device_and_dtype():
    line = describe_device("cpu", amp="bf16")
    assert line.startswith("cpu (") and "bf16 autocast" in line and torch.__version__ in line
    assert "fp32" in describe_device(torch.device("cpu"))


def test_oom_hint_keeps_the_type_and_names_every_knob():
    with pytest.raises(torch.cuda.OutOfMemoryError) as e:
        with oom_hint("training"):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    msg = str(e.value)
    assert msg.startswith("CUDA out of memory") and isinstance(e.value.__cause__, RuntimeError)
    for knob, _ in OOM_KNOBS:
        assert knob in msg
    assert "model.checkpointing=true" in msg and "train.amp=bf16" in msg
    with pytest.raises(ValueError, match="other"):  # any other error passes through untouched
        with oom_hint():
            raise ValueError("other")
