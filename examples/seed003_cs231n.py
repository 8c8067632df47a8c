"""Seed 003: "Calculate the shape in fully connected layer after cnn" (CS231n, 3x32x32 input).

Case 1: where does 5408 = 32*13*13 come from? (13.5 rounds down to 13.)
Case 2: where does 64*4*4 come from? (32 -> 16 -> 8 -> 4.)

    symshape formula examples/seed003_cs231n.py:simple_model --input 3,32,32     # 5408
    symshape formula examples/seed003_cs231n.py:case2_model --input 3,H,W
"""

import torch.nn as nn


class Flatten(nn.Module):
    """CS231n's Flatten."""

    def forward(self, x):
        N, C, H, W = x.size()  # read in N, C, H, W
        return x.view(N, -1)


# Case 1
simple_model = nn.Sequential(
    nn.Conv2d(3, 32, kernel_size=7, stride=2),
    nn.ReLU(inplace=True),
    Flatten(),
    nn.Linear(5408, 10),  # affine layer
)

# Case 2: (conv -> batchnorm -> relu -> maxpool) * 3 -> fc
layer1 = nn.Sequential(
    nn.Conv2d(3, 16, kernel_size=5, padding=2),
    nn.BatchNorm2d(16),
    nn.ReLU(),
    nn.MaxPool2d(2),
)
layer2 = nn.Sequential(
    nn.Conv2d(16, 32, kernel_size=3, padding=1),
    nn.BatchNorm2d(32),
    nn.ReLU(),
    nn.MaxPool2d(2),
)
layer3 = nn.Sequential(
    nn.Conv2d(32, 64, kernel_size=3, padding=1),
    nn.BatchNorm2d(64),
    nn.ReLU(),
    nn.MaxPool2d(2),
)
fc = nn.Linear(64 * 4 * 4, 10)

case2_model = nn.Sequential(layer1, layer2, layer3, nn.Flatten(), fc)
