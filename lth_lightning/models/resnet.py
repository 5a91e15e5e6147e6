"""ResNet18 (3×3 stem, no max-pool), PreActResNet18 and WideResNet, as in the CIFAR AT literature."""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from lth_lightning.models.small import Widths, same


def _conv3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = _conv3(cin, cout, stride), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = _conv3(cout, cout), nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class PreActBlock(nn.Module):
    """Pre-activation block; with ``dropout`` and widening it is also the WideResNet block."""

    def __init__(self, cin: int, cout: int, stride: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), _conv3(cin, cout, stride)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout), _conv3(cout, cout)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Conv2d(cin, cout, 1, stride=stride, bias=False)

    def forward(self, x):
        out = F.relu(self.bn1(x))
        skip = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(self.dropout(F.relu(self.bn2(out))))
        return out + skip


def _stage(block: type, cin: int, cout: int, n: int, stride: int) -> nn.Sequential:
    layers = [block(cin, cout, stride)] + [block(cout, cout, 1) for _ in range(n - 1)]
    return nn.Sequential(*layers)


class ResNet18(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, preact: bool = False, ch: Widths = same) -> None:
        super().__init__()
        block = PreActBlock if preact else BasicBlock
        # pre-activation nets normalise inside each block, so their stem is the bare conv
        widths, strides = tuple(ch(w) for w in (64, 128, 256, 512)), (1, 2, 2, 2)
        cin, stages = widths[0], []
        stem = [_conv3(in_channels, cin)] + ([] if preact else [nn.BatchNorm2d(cin), nn.ReLU(inplace=True)])
        self.stem = nn.Sequential(*stem)
        for w, s in zip(widths, strides, strict=True):
            stages.append(_stage(block, cin, w, 2, s))
            cin = w
        self.layers = nn.Sequential(*stages)
        self.final = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(inplace=True)) if preact else nn.Identity()
        self.classifier = nn.Linear(cin, num_classes)

    def forward(self, x):
        out = self.final(self.layers(self.stem(x)))
        return self.classifier(F.adaptive_avg_pool2d(out, 1).flatten(1))


class WideResNet(nn.Module):
    """WRN-depth-width (Zagoruyko & Komodakis), the TRADES/Madry CIFAR variant."""

    def __init__(self, in_channels: int, num_classes: int, depth: int = 34, widen: int = 10,
                 ch: Widths = same) -> None:
        super().__init__()
        n = (depth - 4) // 6
        widths = [ch(16), ch(16 * widen), ch(32 * widen), ch(64 * widen)]
        self.conv1 = _conv3(in_channels, widths[0])
        self.layers = nn.Sequential(
            _stage(PreActBlock, widths[0], widths[1], n, 1),
            _stage(PreActBlock, widths[1], widths[2], n, 2),
            _stage(PreActBlock, widths[2], widths[3], n, 2),
        )
        self.final_bn = nn.BatchNorm2d(widths[3])
        self.classifier = nn.Linear(widths[3], num_classes)

    def forward(self, x):
        out = F.relu(self.final_bn(self.layers(self.conv1(x))))
        return self.classifier(F.adaptive_avg_pool2d(out, 1).flatten(1))
