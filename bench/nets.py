"""The networks the benchmarks run on."""

import os
import sys

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
