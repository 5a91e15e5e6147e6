"""A network this package does not define, for ``model._target_`` (README: Bring your own model).

    PYTHONPATH=. python -m lth_lightning +experiment=frontier model._target_=examples.nets.small_cnn
"""

from torch import nn


def small_cnn(num_classes: int, in_channels: int, width: int = 32) -> nn.Module:
    """Two 3x3 convs with BatchNorm, global pooling and a head called ``head`` (not ``classifier``)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, num_classes),
    )
