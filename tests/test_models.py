"""Every model builds for its dataset's shape, runs forward/backward, and folds normalisation in."""

from __future__ import annotations

import pytest
import torch

from lth_lightning.config import ModelConfig
from lth_lightning.data import DataInfo
from lth_lightning.models import build_model, classifier_name

SHAPES = {"digits": (1, 8), "mnist": (1, 28), "cifar": (3, 32)}
CASES = [
    ("lenet", "digits"), ("lenet", "mnist"), ("madry_cnn", "mnist"), ("wong_cnn", "mnist"), ("mlp", "mnist"),
    ("vgg11", "cifar"), ("vgg16", "cifar"),
    ("vgg19", "cifar"), ("vgg16", "mnist"), ("resnet18", "cifar"), ("preact_resnet18", "cifar"),
    ("wrn", "cifar"),
]


@pytest.mark.parametrize(("name", "data"), CASES)
def test_forward_backward(name, data):
    channels, size = SHAPES[data]
    info = DataInfo(channels, size, 10, (0.5,) * channels, (0.25,) * channels)
    model = build_model(ModelConfig(name=name, depth=10, widen=2), info, seed=0)
    x = torch.rand(2, channels, size, size)
    out = model(x)
    assert out.shape == (2, 10)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert classifier_name(model).endswith("classifier")


def test_wrn_34_10_has_the_standard_size():
    info = DataInfo(3, 32, 10, (0.5,) * 3, (0.25,) * 3)
    params = sum(p.numel() for p in build_model(ModelConfig(name="wrn", depth=34, widen=10), info).parameters())
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


def _widths(model: torch.nn.Module) -> list[int]:
    return [m.out_channels if isinstance(m, torch.nn.Conv2d) else m.out_features for m in model.modules()
            if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]


@pytest.mark.parametrize("name", ["lenet", "madry_cnn", "wong_cnn", "mlp", "vgg11", "vgg16", "vgg19", "resnet18",
                                  "preact_resnet18", "wrn"])
@pytest.mark.parametrize("width", [0.5, 0.3])
def test_width_multiplies_every_layer_rounded_to_the_multiple(name, width):
    """model.width scales every conv channel and hidden unit, rounded to model.width_multiple (never 0); the
    classifier keeps its classes; MACs are those of the net built (FlopCounterMode on the narrow net)."""
    from lth_lightning.pruning.channels import macs

    info = DataInfo(3, 32, 10, (0.5,) * 3, (0.25,) * 3)
    # (widen 4: at widen 2 and width 0.3, WRN's 16 and 32 both round to 8 and its first shortcut conv goes away)
    full = build_model(ModelConfig(name=name, depth=10, widen=4), info)
    narrow = build_model(ModelConfig(name=name, depth=10, widen=4, width=width), info)
    pairs = list(zip(_widths(full.net), _widths(narrow.net), strict=True))
    assert pairs[-1] == (10, 10)
    for wide, thin in pairs[:-1]:
        assert thin == max(8, 8 * round(wide * width / 8)) and thin % 8 == 0
    # each layer has at least one side scaled (the first its outputs, the classifier its inputs); rounding adds <15 %
    assert macs(narrow, info.shape) < 1.15 * width * macs(full, info.shape)


def test_width_must_be_positive(make_cfg):
    from lth_lightning.errors import ConfigError

    for bad in ("0", "-0.5"):
        with pytest.raises(ConfigError, match=r"model.width=.* must be > 0"):
            make_cfg(f"model.width={bad}")
