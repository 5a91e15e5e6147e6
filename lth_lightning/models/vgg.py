"""VGG with BatchNorm, CIFAR style (one linear classifier on 512 features)."""

from __future__ import annotations

from torch import nn

from lth_lightning.models.small import Widths, same

CFGS: dict[int, list[int | str]] = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
         512, 512, 512, 512, "M"],
}


class VGG(nn.Module):
    def __init__(self, depth: int, in_channels: int, image_size: int, num_classes: int, ch: Widths = same) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels, side = in_channels, image_size
        for v in CFGS[depth]:
            if v == "M":
                if side >= 2:  # small inputs (28×28, 8×8) run out of resolution before the 5th pool
                    layers.append(nn.MaxPool2d(2))
                    side //= 2
                continue
            width = ch(int(v))
            layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                       nn.ReLU(inplace=True)]
            channels = width
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x))
