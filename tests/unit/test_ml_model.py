"""Model shapes, local pretrained weights, and the training building blocks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchvision.models import convnext_tiny
from torchvision.ops import sigmoid_focal_loss

from darkhaloscope.config import Config, replace
from darkhaloscope.errors import ConfigError, DataFileError
from darkhaloscope.ml.model import LensFinder, build_model, load_pretrained
from darkhaloscope.ml.train import augment, loss_fn, lr_factor, resolve_device

torch.set_num_threads(2)


def test_forward_shapes():
    model = LensFinder(2, stem="patch2").eval()
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        assert model(x, torch.randn(3, 2)).shape == (3,)
        assert model.features(x).shape == (3, 768, 4, 4)  # 64 -> 32 (stem) -> 16 -> 8 -> 4
        with pytest.raises(ConfigError):
            model(x, torch.randn(3, 3))
        no_meta = LensFinder(0, stem="patch4").eval()
        assert no_meta(x).shape == (3,)
        assert no_meta.features(x).shape == (3, 768, 2, 2)  # torchvision's stem: 64 -> 16 -> 2


def test_pretrained_weights_from_a_local_file(tmp_path):
    ref = convnext_tiny(weights=None)
    path = tmp_path / "convnext_tiny.pth"
    torch.save(ref.state_dict(), path)
    cfg = replace(Config(), **{"train.pretrained_weights": str(path), "train.stem": "patch2"})
    model = build_model(cfg.train)
    torch.testing.assert_close(model.features[3][0].block[0].weight, ref.features[3][0].block[0].weight)
    torch.testing.assert_close(model.norm.weight, ref.classifier[0].weight)
    w4 = ref.features[0][0].weight
    torch.testing.assert_close(model.features[0][0].weight, w4[:, :, 0::2, 0::2] + w4[:, :, 1::2, 0::2] + w4[:, :, 0::2, 1::2] + w4[:, :, 1::2, 1::2])
    p4 = LensFinder(2, stem="patch4")
    assert load_pretrained(p4, path) == []  # every backbone weight loaded
    torch.testing.assert_close(p4.features[0][0].weight, w4)
    with pytest.raises(DataFileError):
        load_pretrained(p4, tmp_path / "missing.pth")


def test_lr_schedule_warmup_then_cosine():
    assert lr_factor(0, 10, 110) == pytest.approx(0.1)
    assert lr_factor(9, 10, 110) == pytest.approx(1.0)
    assert lr_factor(60, 10, 110) == pytest.approx(0.5)  # half-way through the cosine
    assert lr_factor(110, 10, 110) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(35, 10, 110) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.25)))


def test_augment_applies_one_dihedral_transform_per_sample():
    x = torch.arange(6 * 2 * 5 * 5, dtype=torch.float32).reshape(6, 2, 5, 5)
    out = augment(x, torch.Generator().manual_seed(0))
    for i in range(6):
        cands = [torch.rot90(x[i], k, dims=(1, 2)) for k in range(4)]
        cands += [torch.flip(c, dims=(2,)) for c in cands]
        assert any(torch.equal(out[i], c) for c in cands)
    again = augment(x, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    many = augment(x[:1].repeat(300, 1, 1, 1), torch.Generator().manual_seed(1))
    assert len({tuple(many[i, 0].flatten()[:3].tolist()) for i in range(300)}) == 8  # all 8 transforms occur


def test_losses():
    z, y = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([1.0, 0.0, 0.0])
    bce = -(y * torch.log(torch.sigmoid(z)) + (1 - y) * torch.log(1 - torch.sigmoid(z))).mean()
    torch.testing.assert_close(loss_fn(Config().train)(z, y), bce)
    focal_cfg = replace(Config(), **{"train.loss": "focal", "train.focal_gamma": 2.0}).train
    p = torch.sigmoid(z)
    pt = torch.where(y == 1, p, 1 - p)
    torch.testing.assert_close(loss_fn(focal_cfg)(z, y), (-(1 - pt) ** 2 * torch.log(pt)).mean())
    torch.testing.assert_close(loss_fn(focal_cfg)(z, y), sigmoid_focal_loss(z, y, alpha=-1, gamma=2.0, reduction="mean"))


def test_device_resolution():
    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA"):
            resolve_device("cuda")
    assert resolve_device("auto").type in ("cpu", "cuda")
    assert np.isfinite(lr_factor(5, 0, 10))
