"""Seed 001: "How to compute the parameters in the CNN classifier?" (MNIST-like, 1x100x100 input).

The thread's classifier starts with ``nn.Linear(64, 20)``; at 1x100x100 the features are
64x7x7 = 3136, hence "mat1 and mat2 shapes cannot be multiplied".

    symshape formula examples/seed001_cnnclf.py:CNNclf --input 1,H,W
    symshape formula examples/seed001_cnnclf.py:CNNclf --input 1,100,100    # 3136, not 64
    symshape check examples/seed001_cnnclf.py:CNNclf --input 1,100,100      # and the fix
"""

import torch.nn as nn


class CNNclf(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels=1, out_channels=64, kernel_size=3),
            nn.ReLU(),
            nn.MaxPool2d((2, 2), stride=2),
            nn.Conv2d(in_channels=64, out_channels=128, kernel_size=3),
            nn.ReLU(),
            nn.MaxPool2d((2, 2), stride=3),
            nn.Conv2d(in_channels=128, out_channels=64, kernel_size=3),
            nn.ReLU(),
            nn.MaxPool2d((2, 2), stride=2),
        )
        self.clf = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64, 20, bias=True),
            nn.ReLU(),
            nn.Linear(20, 10, bias=True),
        )

    def forward(self, x):
        x = self.net(x)
        x = self.clf(x)
        return x


def answer():
    """The answer's fix: ``nn.Linear(3136, 20)`` for 1x100x100 inputs."""
    model = CNNclf()
    model.clf[1] = nn.Linear(3136, 20, bias=True)
    return model
