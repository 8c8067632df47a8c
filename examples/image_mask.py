"""A model called with two tensors: an image and its mask, gated together, so both must have
the same height and width.

    symshape formula examples/image_mask.py:ImageMask --input 3,H,W --input mask=1,H,W
    symshape check examples/image_mask.py:ImageMask --input 3,32,32 --input 1,32,32
"""

import torch
import torch.nn as nn


class ImageMask(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.img = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2), nn.ReLU(), nn.MaxPool2d(2))
        self.msk = nn.Sequential(nn.Conv2d(1, 16, 3, stride=2), nn.MaxPool2d(2))
        self.fc = nn.Linear(16 * 6 * 6, num_classes)

    def forward(self, x, mask):
        y = self.img(x) * torch.sigmoid(self.msk(mask))
        return self.fc(y.flatten(1))
