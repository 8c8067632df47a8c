"""Seed 000: "Infer in_features for the linear layer in Pytorch" (the classic MNIST net).

    symshape formula examples/seed000_mnist.py:Net --input 1,H,W
    symshape formula examples/seed000_mnist.py:Net --input 1,28,28      # 320
"""

import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    """The thread's network, with functional max pooling and dropout."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d()
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, 10)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
        x = x.view(x.size(0), -1)
        x = F.relu(self.fc1(x))
        x = F.dropout(x, training=self.training)
        x = F.relu(self.fc2(x))
        return F.log_softmax(x, dim=1)


class NetMaxPool(nn.Module):
    """The thread's second version, with an nn.MaxPool2d module and its "Approach 1": start from
    ``any_number = 20000`` and wait for the crash. (The thread also prints ``x.size()`` in
    forward, its "Approach 2"; symshape needs neither.)

        symshape check examples/seed000_mnist.py:NetMaxPool --input 1,28,28
    """

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.mp = nn.MaxPool2d(2)
        any_number = 20000
        self.fc1 = nn.Linear(any_number, 50)  # first try
        self.fc2 = nn.Linear(50, 10)

    def forward(self, x):
        x = F.relu(self.mp(self.conv1(x)))
        x = F.relu(self.mp(self.conv2(x)))
        x = x.view(x.size(0), -1)  # flatten the tensor
        x = F.relu(self.fc1(x))
        x = F.dropout(x, training=self.training)
        x = F.relu(self.fc2(x))
        return F.log_softmax(x, dim=1)
