"""A U-Net (Ronneberger et al. 2015) with padded convolutions: skip connections concatenate
encoder and decoder features, so both must have the same size at every level.

    symshape sizes examples/unet.py:UNet --input 1,H,W     # H and W multiples of 2**levels
"""

import torch
import torch.nn as nn


def double_conv(c_in, c_out):
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    def __init__(self, in_channels=1, classes=2, base=8, levels=5):
        super().__init__()
        widths = [base * 2**i for i in range(levels + 1)]
        self.downs = nn.ModuleList([double_conv(in_channels, widths[0])] + [
            double_conv(widths[i], widths[i + 1]) for i in range(levels)])
        self.pool = nn.MaxPool2d(2)
        self.ups = nn.ModuleList([nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
                                  for i in reversed(range(levels))])
        self.up_convs = nn.ModuleList([double_conv(2 * widths[i], widths[i]) for i in reversed(range(levels))])
        self.head = nn.Conv2d(widths[0], classes, 1)

    def forward(self, x):
        skips = []
        for down in self.downs[:-1]:
            x = down(x)
            skips.append(x)
            x = self.pool(x)
        x = self.downs[-1](x)
        for up, conv, skip in zip(self.ups, self.up_convs, reversed(skips)):
            x = torch.cat([skip, up(x)], dim=1)
            x = conv(x)
        return self.head(x)
