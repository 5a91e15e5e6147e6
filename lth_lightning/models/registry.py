"""Model names → constructors. Every model takes its input shape and classes from the data."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
from torch import nn

from lth_lightning.config import ModelConfig, resolve_target
from lth_lightning.data import DataInfo
from lth_lightning.errors import ConfigError, first_line
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
    """Build the network (``model._target_``: a factory of your own); with ``seed`` the initialisation θ0 is
    reproducible on its own."""
    build = from_target if cfg._target_ else BUILDERS[cfg.name]
    if seed is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = build(cfg, info)
    else:
        net = build(cfg, info)
    return Normalized(net, info.mean, info.std)


def from_target(cfg: ModelConfig, info: DataInfo) -> nn.Module:
    """``model._target_`` called with ``model.args``, the data's ``num_classes`` (a parameter it names, or takes
    through ``**kwargs`` as torchvision's do) and ``in_channels`` (only where it names that parameter). A path that
    does not import, or a factory that returns no ``nn.Module``, is a ``ConfigError``."""
    factory = resolve_target("model._target_", cfg._target_)  # type: ignore[arg-type]
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a builtin: no signature to read, so nothing is passed but model.args
        params = {}  # type: ignore[assignment]
    open_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = dict(cfg.args)
    if "num_classes" in params or open_kwargs:
        kwargs.setdefault("num_classes", info.num_classes)
    if "in_channels" in params:
        kwargs.setdefault("in_channels", info.channels)
    try:
        net = factory(**kwargs)
    except Exception as err:  # an argument it does not take, or its own failure: one line, not its traceback
        raise ConfigError(f"model._target_={cfg._target_}({', '.join(kwargs)}): {first_line(err)}") from None
    if not isinstance(net, nn.Module):
        raise ConfigError(f"model._target_={cfg._target_} returned a {type(net).__name__}, not a torch nn.Module")
    return net


def classifier_name(model: nn.Module) -> str:
    """Qualified name of the final linear layer: every model here calls it ``classifier``; a model of your own may
    call it anything (``fc``, ``head.out``): then the last ``nn.Linear`` it registers."""
    linear = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    named = [n for n in linear if n.endswith("classifier")]
    if not linear:
        raise ValueError("model has no nn.Linear layer to call its classifier")
    return (named or linear)[-1]
