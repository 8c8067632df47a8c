"""The networks the benchmarks run on."""

import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples"))

import unet  # noqa: E402


def ten_layer_2d() -> nn.Sequential:
    """A 10-layer 2-D net: convolutions (padded, strided, dilated) and pools (ceil_mode too)."""
    return nn.Sequential(
        nn.Conv2d(3, 16, 5),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.Conv2d(32, 32, 3, stride=2, padding=1),
        nn.MaxPool2d(3, 2, ceil_mode=True),
        nn.Conv2d(32, 64, 3, dilation=2, padding=2),
        nn.AvgPool2d(2),
        nn.Conv2d(64, 64, 1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.LazyLinear(10),
    )


def unet5() -> nn.Module:
    return unet.UNet(levels=5).eval()


class Bottleneck(nn.Module):
    """ResNet's bottleneck block: 1x1, 3x3 (strided), 1x1, with a projected shortcut when needed."""

    def __init__(self, c_in: int, width: int, stride: int):
        super().__init__()
        c_out = 4 * width
        self.conv1, self.bn1 = nn.Conv2d(c_in, width, 1, bias=False), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width)
        self.conv3, self.bn3 = nn.Conv2d(width, c_out, 1, bias=False), nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.down = None
        if stride != 1 or c_in != c_out:
            self.down = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + (x if self.down is None else self.down(x)))


class ResNet50(nn.Module):
    """A ResNet-50-size net (torchvision's layout, 25.6M parameters) without torchvision."""

    def __init__(self, classes: int = 1000):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
                                  nn.MaxPool2d(3, 2, 1))
        layers, c = [], 64
        for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            for i in range(blocks):
                layers.append(Bottleneck(c, width, stride if i == 0 else 1))
                c = 4 * width
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.layers(self.stem(x))), 1))


def ceil_chain() -> nn.Sequential:
    """A ceil_mode pooling chain: torch.export's formula for it is wrong at some sizes."""
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.MaxPool2d(3, 2, ceil_mode=True), nn.Conv2d(4, 4, 3),
                         nn.MaxPool2d(2, 3, ceil_mode=True), nn.MaxPool2d(3, 2, 1, ceil_mode=True), nn.Flatten(),
                         nn.LazyLinear(10))
