"""TinyVGG, as in the PyTorch course that trains it on FashionMNIST: two conv blocks, then
``nn.Flatten()`` and a Linear sized for a batched ``(N, 1, 28, 28)`` input. Called on one image
without the batch dim, ``nn.Flatten()`` keeps dim 0 and the Linear gets 49 features, not 490
(docs/check.md, "Unbatched calls")."""

import torch.nn as nn


class TinyVGG(nn.Module):
    def __init__(self, hidden: int = 10, classes: int = 10):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(1, hidden, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(hidden * 7 * 7, classes))

    def forward(self, x):
        return self.classifier(self.block(x))
