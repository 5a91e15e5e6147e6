"""Every model builds for its dataset's shape, runs forward/backward, and folds normalisation in."""

from __future__ import annotations

import pytest
import torch

from lth_lightning.config import ModelConfig
from lth_lightning.data import DataInfo
from lth_lightning.models import build_model, classifier_name

SHAPES = {"digits": (1, 8), "mnist": (1, 28), "cifar": (3, 32)}
CASES = [
    ("lenet", "digits"), ("lenet", "mnist"), ("madry_cnn", "mnist"), ("mlp", "mnist"), ("vgg11", "cifar"),
    ("vgg16", "cifar"),
    ("vgg19", "cifar"), ("vgg16", "mnist"), ("resnet18", "cifar"), ("preact_resnet18", "cifar"),
    ("wrn", "cifar"),
]


@pytest.mark.parametrize(("name", "data"), CASES)
def test_forward_backward(name, data):
    channels, size = SHAPES[data]
    info = DataInfo(channels, size, 10, (0.5,) * channels, (0.25,) * channels)
    model = build_model(ModelConfig(name=name, depth=10, width=2), info, seed=0)
    x = torch.rand(2, channels, size, size)
    out = model(x)
    assert out.shape == (2, 10)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert classifier_name(model).endswith("classifier")


def test_wrn_34_10_has_the_standard_size():
    info = DataInfo(3, 32, 10, (0.5,) * 3, (0.25,) * 3)
    params = sum(p.numel() for p in build_model(ModelConfig(name="wrn", depth=34, width=10), info).parameters())
    assert 46_000_000 < params < 46_300_000  # WRN-34-10: 46.16M


def test_normalisation_is_inside_the_model():
    info = DataInfo(1, 8, 10, (0.3,), (0.4,))
    model = build_model(ModelConfig(name="lenet"), info, seed=0)
    x = torch.rand(3, 1, 8, 8)
    assert torch.allclose(model(x), model.net((x - 0.3) / 0.4), atol=1e-6)


def test_seed_fixes_theta0():
    info = DataInfo(1, 8, 10, (0.3,), (0.4,))
    a, b, c = (build_model(ModelConfig(), info, seed=s) for s in (1, 1, 2))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(next(a.parameters()), next(c.parameters()))


def test_width_defaults_are_per_model():
    info = DataInfo(1, 28, 10, (0.5,), (0.25,))
    lenet = build_model(ModelConfig(name="lenet"), info)
    assert lenet.net.features[0].out_channels == 32  # not WRN's widen factor 10
    wide = build_model(ModelConfig(name="lenet", width=2), info)
    assert wide.net.features[0].out_channels == 64
