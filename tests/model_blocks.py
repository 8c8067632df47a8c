"""Blocks written after torchvision's model code (resnet, mobilenetv2, squeezenet, googlenet,
densenet, shufflenetv2, alexnet/vgg), with their hyper-parameters drawn at random, and functional
calls with keyword variants: a second model generator, independent of tests/strategies.py (which
was written together with the rules), for tests/test_independent_fuzz.py."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import strategies as st


def conv3x3(inp, out, stride=1, groups=1, dilation=1):
    return nn.Conv2d(inp, out, 3, stride=stride, padding=dilation, groups=groups, bias=False, dilation=dilation)


def conv1x1(inp, out, stride=1):
    return nn.Conv2d(inp, out, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """torchvision.models.resnet.BasicBlock."""

    def __init__(self, inplanes, planes, stride=1, dilation=1):
        super().__init__()
        self.conv1, self.bn1 = conv3x3(inplanes, planes, stride, dilation=dilation), nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2, self.bn2 = conv3x3(planes, planes, dilation=dilation), nn.BatchNorm2d(planes)
        self.downsample = (nn.Sequential(conv1x1(inplanes, planes, stride), nn.BatchNorm2d(planes))
                           if stride != 1 or inplanes != planes else None)

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class Bottleneck(nn.Module):
    """torchvision.models.resnet.Bottleneck (stride on the 3x3, groups and width as ResNeXt)."""

    expansion = 4

    def __init__(self, inplanes, planes, stride=1, groups=1, base_width=64, dilation=1):
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1, self.bn1 = conv1x1(inplanes, width), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = conv3x3(width, width, stride, groups, dilation), nn.BatchNorm2d(width)
        self.conv3, self.bn3 = conv1x1(width, planes * self.expansion), nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = (nn.Sequential(conv1x1(inplanes, planes * self.expansion, stride),
                                         nn.BatchNorm2d(planes * self.expansion))
                           if stride != 1 or inplanes != planes * self.expansion else None)

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class InvertedResidual(nn.Module):
    """torchvision.models.mobilenetv2.InvertedResidual."""

    def __init__(self, inp, oup, stride, expand_ratio):
        super().__init__()
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers = []
        if expand_ratio != 1:
            layers += [nn.Conv2d(inp, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True)]
        layers += [nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden),
                   nn.ReLU6(inplace=True), nn.Conv2d(hidden, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class Fire(nn.Module):
    """torchvision.models.squeezenet.Fire."""

    def __init__(self, inplanes, squeeze, e1, e3):
        super().__init__()
        self.squeeze, self.squeeze_activation = nn.Conv2d(inplanes, squeeze, 1), nn.ReLU(inplace=True)
        self.expand1x1, self.expand1x1_activation = nn.Conv2d(squeeze, e1, 1), nn.ReLU(inplace=True)
        self.expand3x3, self.expand3x3_activation = nn.Conv2d(squeeze, e3, 3, padding=1), nn.ReLU(inplace=True)

    def forward(self, x):
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat([self.expand1x1_activation(self.expand1x1(x)),
                          self.expand3x3_activation(self.expand3x3(x))], 1)


class Inception(nn.Module):
    """torchvision.models.googlenet.Inception (its "5x5" branch is a 3x3, as there)."""

    def __init__(self, inp, ch1, ch3red, ch3, ch5red, ch5, pool_proj):
        super().__init__()
        self.branch1 = nn.Conv2d(inp, ch1, 1)
        self.branch2 = nn.Sequential(nn.Conv2d(inp, ch3red, 1), nn.Conv2d(ch3red, ch3, 3, padding=1))
        self.branch3 = nn.Sequential(nn.Conv2d(inp, ch5red, 1), nn.Conv2d(ch5red, ch5, 3, padding=1))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True), nn.Conv2d(inp, pool_proj, 1))

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class DenseLayer(nn.Module):
    """torchvision.models.densenet._DenseLayer (its input a tensor, the concatenation inside)."""

    def __init__(self, inp, growth, bn_size):
        super().__init__()
        self.norm1, self.relu1 = nn.BatchNorm2d(inp), nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(inp, bn_size * growth, 1, bias=False)
        self.norm2, self.relu2 = nn.BatchNorm2d(bn_size * growth), nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False)

    def forward(self, x):
        new = self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))
        return torch.cat([x, new], 1)


def channel_shuffle(x, groups: int):
    """torchvision.models.shufflenetv2.channel_shuffle."""
    batchsize, num_channels, height, width = x.size()
    channels_per_group = num_channels // groups
    x = x.view(batchsize, groups, channels_per_group, height, width)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(batchsize, num_channels, height, width)


class ShuffleUnit(nn.Module):
    """torchvision.models.shufflenetv2.InvertedResidual."""

    def __init__(self, inp, oup, stride):
        super().__init__()
        self.stride = stride
        branch = oup // 2
        if stride > 1:
            self.branch1 = nn.Sequential(nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False), nn.BatchNorm2d(inp),
                                         nn.Conv2d(inp, branch, 1, bias=False), nn.BatchNorm2d(branch), nn.ReLU(inplace=True))
        self.branch2 = nn.Sequential(
            nn.Conv2d(inp if stride > 1 else branch, branch, 1, bias=False), nn.BatchNorm2d(branch), nn.ReLU(inplace=True),
            nn.Conv2d(branch, branch, 3, stride, 1, groups=branch, bias=False), nn.BatchNorm2d(branch),
            nn.Conv2d(branch, branch, 1, bias=False), nn.BatchNorm2d(branch), nn.ReLU(inplace=True))

    def forward(self, x):
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class Functional(nn.Module):
    """Functional calls with keyword variants: pools with every keyword, a conv by F.conv2d with
    the module's own weight, interpolation by size or by factor, a kernel taken from a size."""

    def __init__(self, kind: str, c: int, k: int, s: int, p: int, ceil: bool, extra: bool):
        super().__init__()
        self.kind, self.k, self.s, self.p, self.ceil, self.extra = kind, k, s, p, ceil, extra
        self.weight = nn.Parameter(torch.randn(c, c, k, k) * 0.1) if kind == "conv" else None

    def forward(self, x):
        k, s, p = self.k, self.s, self.p
        if self.kind == "max":
            return F.max_pool2d(x, kernel_size=k, stride=s, padding=p, ceil_mode=self.ceil, dilation=1 + self.extra)
        if self.kind == "avg":
            return F.avg_pool2d(x, k, stride=s, padding=p, ceil_mode=self.ceil, count_include_pad=self.extra)
        if self.kind == "conv":
            return F.conv2d(x, self.weight, stride=s, padding=p, dilation=1 + self.extra)
        if self.kind == "interpolate":
            return F.interpolate(x, scale_factor=(0.5, 2.0) if self.extra else 2.0, mode="nearest")
        if self.kind == "whole":  # a kernel as large as the map: torchvision's older global pools
            return F.avg_pool2d(x, kernel_size=x.size()[2:])
        raise ValueError(self.kind)


@st.composite
def stems(draw, c_in):
    kind = draw(st.sampled_from(["resnet", "mobilenet", "squeezenet", "alexnet", "vgg", "none"]))
    c = draw(st.sampled_from([4, 8]))
    if kind == "resnet":
        return nn.Sequential(nn.Conv2d(c_in, c, 7, 2, 3, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                             nn.MaxPool2d(3, 2, 1)), c
    if kind == "mobilenet":
        return nn.Sequential(nn.Conv2d(c_in, c, 3, 2, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU6(inplace=True)), c
    if kind == "squeezenet":
        return nn.Sequential(nn.Conv2d(c_in, c, 7, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, ceil_mode=True)), c
    if kind == "alexnet":
        return nn.Sequential(nn.Conv2d(c_in, c, 11, 4, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2)), c
    if kind == "vgg":
        return nn.Sequential(nn.Conv2d(c_in, c, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2)), c
    return nn.Identity(), c_in


@st.composite
def blocks(draw, c):
    kind = draw(st.sampled_from(["basic", "bottleneck", "inverted", "fire", "inception", "dense", "shuffle",
                                 "functional"]))
    stride = draw(st.sampled_from([1, 2]))
    if kind == "basic":
        out = draw(st.sampled_from([c, 2 * c]))
        return BasicBlock(c, out, stride, dilation=draw(st.sampled_from([1, 1, 2]))), out
    if kind == "bottleneck":
        planes = draw(st.sampled_from([2, 4]))
        return Bottleneck(c, planes, stride, groups=draw(st.sampled_from([1, 2])), base_width=64), 4 * planes
    if kind == "inverted":
        out = draw(st.sampled_from([c, 2 * c]))
        return InvertedResidual(c, out, stride, draw(st.sampled_from([1, 2, 6]))), out
    if kind == "fire":
        return Fire(c, 2, 4, 4), 8
    if kind == "inception":
        return Inception(c, 2, 2, 4, 1, 2, 2), 10
    if kind == "dense":
        return DenseLayer(c, 4, 2), c + 4
    if kind == "shuffle":
        c2 = c if c % 2 == 0 else c + 1
        pre = [] if c2 == c else [nn.Conv2d(c, c2, 1)]
        return nn.Sequential(*pre, ShuffleUnit(c2, c2 if stride == 1 else 2 * c2, stride)), c2 if stride == 1 else 2 * c2
    fkind = draw(st.sampled_from(["max", "avg", "conv", "interpolate", "whole"]))
    k = draw(st.integers(1, 4))
    return Functional(fkind, c, k, draw(st.integers(1, 3)), draw(st.integers(0, k // 2)), draw(st.booleans()),
                      draw(st.booleans())), c


@st.composite
def independent_models(draw):
    """(model, input_shape): a stem, one to three blocks, and a head."""
    stem, c = draw(stems(3))
    layers = [stem]
    for _ in range(draw(st.integers(1, 3))):
        block, c = draw(blocks(c))
        layers.append(block)
    head = draw(st.sampled_from(["adaptive", "flatten", "none"]))
    if head == "adaptive":
        layers += [nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(c, 3)]
    elif head == "flatten":
        layers += [nn.Flatten(), nn.LazyLinear(3)]
    model = nn.Sequential(*layers)
    return (model.eval() if draw(st.booleans()) else model), (3, "H", "W")
