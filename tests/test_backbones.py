"""create_trunk: weights from files, strictness, insertion positions, tiny trunks' geometry."""

from __future__ import annotations

import pytest
import torch

from d2st.models.backbones import TRUNKS, create_trunk, insertion_indices, stage_feature_sizes


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
@pytest.mark.parametrize("name,size", [("resnet_tiny", 32), ("resnet_tiny16", 32), ("vit_b16", 32)])
def test_checkpoint_roundtrip(tmp_path, name, size, suffix):
    torch.manual_seed(0)
    trunk = create_trunk(name, "random", image_size=size)
    path = tmp_path / f"trunk{suffix}"
    sd = {k: v.contiguous() for k, v in trunk.state_dict().items()}
    if suffix == ".pt":
        torch.save(sd, path)
    else:
        from safetensors.torch import save_file

        save_file(sd, str(path))
    torch.manual_seed(1)  # a different random init must be fully overwritten
    loaded = create_trunk(name, path, image_size=size)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), trunk(x), rtol=0, atol=0)


def test_timm_loading_is_strict(tmp_path):
    sd = create_trunk("resnet_tiny").state_dict()
    sd.pop("conv1.0.weight")
    torch.save(sd, tmp_path / "bad.pt")
    with pytest.raises(RuntimeError, match="Missing key"):
        create_trunk("resnet_tiny", tmp_path / "bad.pt")


def test_unknown_backbone_names_allowed_values():
    with pytest.raises(ValueError, match="allowed"):
        create_trunk("resnet9")


@pytest.mark.parametrize("name", ["resnet_tiny", "resnet_tiny16"])
def test_tiny_trunk_geometry(name):
    trunk = create_trunk(name)
    assert isinstance(trunk.maxpool, torch.nn.Identity)
    feats = trunk.forward_features(torch.zeros(1, 3, 32, 32))
    assert feats.shape[1:] == (TRUNKS[name].stage_channels[-1], 4, 4)
    assert stage_feature_sizes(name, 32)[-1] == (4, 4)


def test_insertion_positions():
    assert insertion_indices("full", 12) == list(range(12))
    assert insertion_indices("early", 12) == list(range(6))
    assert insertion_indices("late", 12) == list(range(6, 12))
    assert insertion_indices("skip", 4) == [0, 2]
    with pytest.raises(ValueError, match="allowed"):
        insertion_indices("middle", 4)
