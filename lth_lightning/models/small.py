"""Small networks for MNIST-sized data and the 8×8 digits default."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

Widths = Callable[[int], int]  # a layer's published width -> the width built (``ModelConfig.channels``)


def same(count: int) -> int:
    return count


class LeNet(nn.Module):
    """Two conv blocks (conv-ReLU-pool) and two linear layers; sized from the input."""

    def __init__(self, in_channels: int, image_size: int, num_classes: int, ch: Widths = same) -> None:
        super().__init__()
        c1, c2, hidden = ch(32), ch(64), ch(256)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        )
        side = image_size // 4
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(c2 * side * side, hidden), nn.ReLU(inplace=True))
        self.classifier = nn.Linear(hidden, num_classes)

    def forward(self, x):
        return self.classifier(self.fc(self.features(x)))


class MadryCNN(nn.Module):
    """The standard MNIST adversarial-training net (Madry et al. 2018): 5×5 convs of 32 and 64 channels, each
    followed by ReLU and 2×2 max-pooling, a 1024-unit hidden layer. About 3.3 M parameters on 28×28 inputs, 10×
    LeNet's MACs: wide enough that removing channels can save time even on a CPU."""

    def __init__(self, in_channels: int, image_size: int, num_classes: int, ch: Widths = same) -> None:
        super().__init__()
        c1, c2, hidden = ch(32), ch(64), ch(1024)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        )
        side = image_size // 4
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(c2 * side * side, hidden), nn.ReLU(inplace=True))
        self.classifier = nn.Linear(hidden, num_classes)

    def forward(self, x):
        return self.classifier(self.fc(self.features(x)))


class WongCNN(nn.Module):
    """The small MNIST net of Wong et al. 2020's fast adversarial training script: two 4×4 stride-2 convs of 16 and 32
    channels, a 100-unit hidden layer, no pooling. About 0.6 M MACs on 28×28: the net their ~88 % PGD figure is for."""

    def __init__(self, in_channels: int, image_size: int, num_classes: int, ch: Widths = same) -> None:
        super().__init__()
        c1, c2, hidden = ch(16), ch(32), ch(100)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 4, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c1, c2, 4, stride=2, padding=1), nn.ReLU(inplace=True),
        )
        side = image_size // 4
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(c2 * side * side, hidden), nn.ReLU(inplace=True))
        self.classifier = nn.Linear(hidden, num_classes)

    def forward(self, x):
        return self.classifier(self.fc(self.features(x)))


class MLP(nn.Module):
    def __init__(self, in_channels: int, image_size: int, num_classes: int, hidden: list[int],
                 ch: Widths = same) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_channels * image_size * image_size
        for h in map(ch, hidden):
            layers += [nn.Linear(width, h), nn.ReLU(inplace=True)]
            width = h
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(width, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x))
