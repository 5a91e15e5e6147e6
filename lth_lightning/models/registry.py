"""Model names → constructors. Every model takes its input shape and classes from the data."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from lth_lightning.config import ModelConfig
from lth_lightning.data import DataInfo
from lth_lightning.models.layers import Normalized
from lth_lightning.models.resnet import ResNet18, WideResNet
from lth_lightning.models.small import MLP, LeNet, MadryCNN, WongCNN
from lth_lightning.models.vgg import VGG

Builder = Callable[[ModelConfig, DataInfo], nn.Module]

# every builder scales its layers' widths by ``model.width`` through ``m.channels``
BUILDERS: dict[str, Builder] = {
    "lenet": lambda m, d: LeNet(d.channels, d.image_size, d.num_classes, m.channels),
    "madry_cnn": lambda m, d: MadryCNN(d.channels, d.image_size, d.num_classes, m.channels),
    "wong_cnn": lambda m, d: WongCNN(d.channels, d.image_size, d.num_classes, m.channels),
    "mlp": lambda m, d: MLP(d.channels, d.image_size, d.num_classes, list(m.hidden), m.channels),
    "vgg11": lambda m, d: VGG(11, d.channels, d.image_size, d.num_classes, m.channels),
    "vgg16": lambda m, d: VGG(16, d.channels, d.image_size, d.num_classes, m.channels),
    "vgg19": lambda m, d: VGG(19, d.channels, d.image_size, d.num_classes, m.channels),
    "resnet18": lambda m, d: ResNet18(d.channels, d.num_classes, ch=m.channels),
    "preact_resnet18": lambda m, d: ResNet18(d.channels, d.num_classes, preact=True, ch=m.channels),
    "wrn": lambda m, d: WideResNet(d.channels, d.num_classes, m.depth, m.widen, m.channels),
}


def build_model(cfg: ModelConfig, info: DataInfo, seed: int | None = None) -> Normalized:
    """Build the network; with ``seed`` the initialisation θ0 is reproducible on its own."""
    if seed is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = BUILDERS[cfg.name](cfg, info)
    else:
        net = BUILDERS[cfg.name](cfg, info)
    return Normalized(net, info.mean, info.std)


def classifier_name(model: nn.Module) -> str:
    """Qualified name of the final linear layer (every model here calls it ``classifier``)."""
    names = [n for n, m in model.named_modules() if n.endswith("classifier") and isinstance(m, nn.Linear)]
    if not names:
        raise ValueError("model has no linear 'classifier' layer")
    return names[-1]
