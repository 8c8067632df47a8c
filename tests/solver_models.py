"""Random models for the solver tests: stacks, skips (add / cat) and a Linear, as Sequentials."""

from __future__ import annotations

import torch
import torch.nn as nn
from hypothesis import strategies as st

from strategies import CONV, Skip, adaptive_layer, conv_layer, pad_layer, pointwise_layer, pool_layer

NAMES = {1: ("L",), 2: ("H", "W")}
UPTO = {1: 90, 2: 24}

CT = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d}


class Rows(nn.Module):
    """``x.view(-1, k)``: runs only where k divides the element count."""

    def __init__(self, k):
        super().__init__()
        self.k = k

    def forward(self, x):
        return x.view(-1, self.k)


class UpCat(nn.Module):
    """A U-Net level: pool down, convolve, transposed-conv up, cat with the skip."""

    def __init__(self, d, c, inner: nn.Module | None, inner_c: int, k: int, s: int, cat: bool):
        super().__init__()
        pool = {1: nn.MaxPool1d, 2: nn.MaxPool2d}[d]
        self.down = pool(s)
        self.inner = inner if inner is not None else nn.Identity()
        self.up = CT[d](inner_c, c, k, stride=s)
        self.cat = cat

    def forward(self, x):
        y = self.up(self.inner(self.down(x)))
        return torch.cat([x, y], 1) if self.cat else x + y


class PlusTranspose(nn.Module):
    """``x + x.transpose(2, 3)``: both sizes must agree (or one be 1) -- a condition on a line."""

    def forward(self, x):
        return x + x.transpose(2, 3)


@st.composite
def unet(draw, d, c, depth):
    """Levels built inside out; each level's output has c (add) or 2c (cat) channels."""
    inner, inner_c = None, c
    for _ in range(depth):
        s = draw(st.integers(2, 3))
        k = draw(st.sampled_from([s, s + 1]))
        cat = draw(st.booleans())
        inner, inner_c = UpCat(d, c, inner, inner_c, k, s, cat), 2 * c if cat else c
    return inner, inner_c


@st.composite
def solver_models(draw):
    """(model, input_shape, d): a Sequential, so every layer is observable with hooks."""
    d = draw(st.sampled_from([1, 1, 2]))
    c0 = c = draw(st.integers(1, 2))
    ops = []
    for _ in range(draw(st.integers(1, 4))):
        make = draw(st.sampled_from([conv_layer, conv_layer, pool_layer, pool_layer, pad_layer,
                                     pointwise_layer, adaptive_layer]))
        op, c = draw(make(d, c, False))
        ops.append(op)
    shape = draw(st.sampled_from(["plain", "skip", "unet"]))
    if shape == "skip":
        block, cb = [], c
        for _ in range(draw(st.integers(1, 2))):
            make = draw(st.sampled_from([conv_layer, pool_layer, pad_layer]))
            op, cb = draw(make(d, cb, False))
            block.append(op)
        if cb != c:
            block.append(CONV[d](cb, c, 1))
        cat = draw(st.booleans())
        ops.append(Skip(nn.Sequential(*block), cat=cat))
        c = 2 * c if cat else c
    elif shape == "unet":
        net, c = draw(unet(d, c, draw(st.integers(1, 2))))
        ops.append(net)
    if d == 2 and draw(st.integers(0, 2)) == 0:  # couples H and W without separating them
        ops.insert(draw(st.integers(1, len(ops))), PlusTranspose())
    linear = draw(st.sampled_from(["none", "lazy", "fixed"]))
    if linear != "none":
        ops.append(nn.Flatten() if draw(st.integers(0, 3)) else Rows(draw(st.integers(1, 6))))
        ops.append(nn.LazyLinear(2) if linear == "lazy" else nn.Linear(draw(st.integers(1, 40)), 2))
    return nn.Sequential(*ops), (c0, *NAMES[d]), d
