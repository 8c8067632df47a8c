"""One or more cross-checked cases for every registered rule target (see test_rules.py).

A case is a small model, an input shape and a grid of sizes that includes sizes torch refuses.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from oracle import grid


class Fn(nn.Module):
    """``forward(x) = fn(x, *args, **kwargs)``, optionally after ``pre``."""

    def __init__(self, fn, *args, pre: nn.Module | None = None, **kwargs):
        super().__init__()
        self.fn, self.args, self.kwargs, self.pre = fn, args, kwargs, pre

    def forward(self, x):
        if self.pre is not None:
            x = self.pre(x)
        return self.fn(x, *self.args, **self.kwargs)


class Method(nn.Module):
    """``forward(x) = x.<name>(*args)``."""

    def __init__(self, name, *args, **kwargs):
        super().__init__()
        self.name, self.args, self.kwargs = name, args, kwargs

    def forward(self, x):
        return getattr(x, self.name)(*self.args, **self.kwargs)


class Branches(nn.Module):
    """``forward(x) = combine(a(x), b(x))``: residual adds, cat skips, broadcasting."""

    def __init__(self, combine, a: nn.Module, b: nn.Module):
        super().__init__()
        self.combine, self.a, self.b = combine, a, b

    def forward(self, x):
        return self.combine(self.a(x), self.b(x))


class FunctionalConv(nn.Module):
    def __init__(self, fn, weight_shape, **kwargs):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(*weight_shape))
        self.fn, self.kwargs = fn, kwargs

    def forward(self, x):
        return self.fn(x, self.weight, **self.kwargs)


class FunctionalLinear(nn.Module):
    def __init__(self, in_f, out_f):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_f, in_f))

    def forward(self, x):
        return F.linear(x.flatten(1), self.weight)


class Bilinear(nn.Module):
    """``Bilinear(flatten(x), x.sum(2).flatten(1))``: two inputs whose last dims depend on the sizes."""

    def __init__(self, in1, in2, out, functional=False):
        super().__init__()
        self.layer = nn.Bilinear(in1, in2, out)
        self.functional = functional

    def forward(self, x):
        a, b = x.flatten(1), x.sum(2).flatten(1)
        if self.functional:
            return F.bilinear(a, b, self.layer.weight, self.layer.bias)
        return self.layer(a, b)


class ShapeView(nn.Module):
    """``x.view(x.shape[0], x.shape[1] * x.shape[2], -1)``: getattr(shape), getitem, arithmetic."""

    def forward(self, x):
        return x.view(x.shape[0], x.shape[1] * x.shape[2], -1)


class SizeQueries(nn.Module):
    """``x.dim()``, ``x.numel()``, ``x.nelement()``, ``x.ndimension()``, ``x.ndim`` feeding a reshape."""

    def forward(self, x):
        n = x.numel() // x.size(0)
        assert_rank = x.dim() + x.ndimension() + x.ndim
        return x.reshape(x.size(0), n + 0 * assert_rank).view(x.nelement() // n, -1)


class Custom(nn.Module):
    """``forward(x) = fn(self, x)``: small forwards written inline in the case table."""

    def __init__(self, fn, **modules):
        super().__init__()
        self.fn = fn
        for k, m in modules.items():
            setattr(self, k, m)

    def forward(self, x):
        return self.fn(self, x)


class PoolUnpool(nn.Module):
    """``unpool(*pool(x))``, optionally back to ``x.size()``."""

    def __init__(self, pool, unpool, sized=False):
        super().__init__()
        self.pool, self.unpool, self.sized = pool, unpool, sized

    def forward(self, x):
        y, i = self.pool(x)
        return self.unpool(y, i, output_size=x.size()) if self.sized else self.unpool(y, i)


class UpTo(nn.Module):
    """U-Net style: ``up(x, output_size=skip.size())`` then a sum with the skip."""

    def __init__(self, up, down):
        super().__init__()
        self.up, self.down = up, down

    def forward(self, x):
        y = self.down(x)
        z = nn.functional.max_pool2d(y, 2)
        return self.up(z, output_size=y.size()) + y


class UpToFixed(nn.Module):
    def __init__(self, up, size):
        super().__init__()
        self.up, self.size = up, size

    def forward(self, x):
        return self.up(x, output_size=self.size)


@dataclass
class Case:
    id: str
    make: Callable[[], nn.Module]
    input_shape: tuple
    sizes: list[dict[str, Any]]


S1 = grid(("L",), range(1, 21))
S2 = grid(("H", "W"), [1, 2, 3, 4, 5, 7, 8, 9, 12])
S2_SMALL = grid(("H", "W"), [1, 2, 3, 5, 8])
S3 = grid(("T", "H", "W"), [1, 2, 3, 5])
SHAPES = {1: (2, "L"), 2: (2, "H", "W"), 3: (2, "T", "H", "W")}
SIZES = {1: S1, 2: S2, 3: S3}


def _assigned(x):
    """``y[..., 1:, 1:] = v``: an item assignment (a step whose check is v's broadcast)."""
    y = x.clone()
    y[:, :, 1:, 1:] = x[:, :, :-1, :-1] * 2
    return y


def _with(module: nn.Module, **attributes) -> nn.Module:
    """``module`` with these attributes set after it was made (past the checks of its __init__)."""
    for k, v in attributes.items():
        setattr(module, k, v)
    return module


def _per_dim(make_by_d: Callable[[int], nn.Module], label: str) -> list[Case]:
    return [Case(f"{label}{d}d", lambda d=d: make_by_d(d), SHAPES[d], SIZES[d]) for d in (1, 2, 3)]


from layers import ADAPT, AVGPOOL, BN, CONV, CONVT, F_ADAPT, F_AVG, F_CONV, F_CONVT, F_MAX, IN, MAXPOOL, PADS, T_MAX  # noqa: E402


def _pad_arg(d: int, left: int, right: int) -> tuple:
    return (left, right) * d


def build_cases() -> list[Case]:
    cases: list[Case] = []
    add = cases.append
    # convolution
    cases += _per_dim(lambda d: CONV[d](2, 3, 3, stride=2, padding=1), "conv_s2p1_")
    cases += _per_dim(lambda d: CONV[d](2, 2, 3, dilation=2, padding="same", padding_mode="reflect"), "conv_same_reflect_")
    cases += _per_dim(lambda d: CONV[d](2, 4, 2, padding="same", groups=2), "conv_same_even_")
    cases += _per_dim(lambda d: CONV[d](2, 3, 3, padding=1, padding_mode="circular", stride=3), "conv_circular_")
    cases += _per_dim(lambda d: CONV[d](2, 3, 2, padding=2, padding_mode="replicate", dilation=3), "conv_replicate_")
    cases += _per_dim(lambda d: CONV[d](2, 3, 4, padding="valid"), "conv_valid_")
    cases += _per_dim(lambda d: CONV[d](3, 3, 1), "conv_wrong_channels_")
    add(Case("lazy_conv2d", lambda: nn.LazyConv2d(3, 3, stride=2), SHAPES[2], S2))
    add(Case("conv2d_tuple", lambda: nn.Conv2d(2, 3, (3, 1), stride=(1, 2), padding=(0, 1), dilation=(2, 1)), SHAPES[2], S2))
    cases += _per_dim(lambda d: FunctionalConv(F_CONV[d], (4, 1, *(3,) * d), stride=2, padding=1, groups=2), "F_conv_")
    add(Case("F_conv2d_same", lambda: FunctionalConv(F.conv2d, (3, 2, 4, 4), padding="same"), SHAPES[2], S2))
    cases += _per_dim(lambda d: CONVT[d](2, 3, 3, stride=2, padding=2, output_padding=1), "convT_")
    cases += _per_dim(lambda d: CONVT[d](2, 3, 2, stride=3, padding=1, dilation=2, output_padding=2), "convT_dil_")
    cases += _per_dim(lambda d: nn.Sequential(nn.ConstantPad1d((-1, 0), 0.0), CONVT[d](2, 2, 2, 2)), "convT_empty_")
    cases += _per_dim(lambda d: CONVT[d](2, 2, 2, stride=1, padding=3), "convT_small_")
    cases += _per_dim(lambda d: CONVT[d](3, 2, 2, stride=2), "convT_wrong_channels_")
    add(Case("lazy_convT2d", lambda: nn.LazyConvTranspose2d(3, 3, stride=2), SHAPES[2], S2))
    cases += _per_dim(lambda d: FunctionalConv(F_CONVT[d], (2, 2, *(3,) * d), stride=2, padding=1, output_padding=1, groups=1), "F_convT_")
    add(Case("convT_output_size", lambda: UpTo(nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1), nn.Conv2d(2, 2, 3, padding=1)), SHAPES[2], S2))
    add(Case("convT_output_size_fixed", lambda: UpToFixed(nn.ConvTranspose2d(2, 2, 3, stride=3), (10, 11)), SHAPES[2], S2))
    # pooling
    cases += _per_dim(lambda d: MAXPOOL[d](3, 2, padding=1, dilation=2), "maxpool_dil_")
    cases += _per_dim(lambda d: MAXPOOL[d](3, 2, ceil_mode=True), "maxpool_ceil_")
    cases += _per_dim(lambda d: MAXPOOL[d](2, 3, padding=1, ceil_mode=True), "maxpool_ceil_lastwin_")
    cases += _per_dim(lambda d: MAXPOOL[d](2, return_indices=True), "maxpool_indices_")
    cases += _per_dim(lambda d: MAXPOOL[d](3, 1, padding=2), "maxpool_badpad_")
    cases += _per_dim(lambda d: AVGPOOL[d](3, 2, padding=1, ceil_mode=True), "avgpool_ceil_")
    cases += _per_dim(lambda d: AVGPOOL[d](2, 3, padding=1, ceil_mode=True, count_include_pad=False), "avgpool_lastwin_")
    cases += _per_dim(lambda d: AVGPOOL[d](4), "avgpool_")
    cases += _per_dim(lambda d: Fn(F_MAX[d], 2, 2, 1, 1, True), "F_maxpool_")
    cases += _per_dim(lambda d: Fn(F_MAX[d], 3, 1, 1, return_indices=True), "F_maxpool_indices_")
    cases += _per_dim(lambda d: Fn(T_MAX[d], 3, 2, ceil_mode=True), "torch_maxpool_")
    cases += _per_dim(lambda d: Fn(F_AVG[d], 3, stride=2, padding=1, ceil_mode=True), "F_avgpool_")
    cases += _per_dim(lambda d: ADAPT[d][0]((2,) * d), "adaptive_avg_")
    cases += _per_dim(lambda d: ADAPT[d][1]((None,) + (3,) * (d - 1) if d > 1 else 3), "adaptive_max_")
    cases += _per_dim(lambda d: Fn(F_ADAPT[d][0], 2), "F_adaptive_avg_")
    cases += _per_dim(lambda d: Fn(F_ADAPT[d][1], 1, return_indices=True), "F_adaptive_max_indices_")
    cases += _per_dim(lambda d: Fn(F_ADAPT[d][1], 2), "F_adaptive_max_")
    crop = {1: lambda: nn.ConstantPad1d((-2, -1), 0.0), 2: lambda: nn.ConstantPad2d((-2, -1, 0, -1), 0.0),
            3: lambda: nn.ConstantPad3d((-2, -1, 0, 0, -1, 0), 0.0)}
    for d in (1, 2, 3):
        avg, mx = ADAPT[d]
        outs = [(2,) * d, (1,) * d, ((None,) + (1,) * (d - 1)) if d > 1 else 1]
        for j, o in enumerate(outs):
            for cls in (avg, mx):
                add(Case(f"adaptive_empty_{cls.__name__}_{j}", lambda cls=cls, o=o, d=d: nn.Sequential(crop[d](), cls(o)),
                         SHAPES[d], SIZES[d]))
    add(Case("adaptive_avg_rank2_fast", lambda: nn.Sequential(nn.Flatten(), nn.Unflatten(1, (1, -1)), nn.Flatten(0), nn.Unflatten(0, (1, -1)), nn.AdaptiveAvgPool2d(1)), SHAPES[1], S1))
    # padding
    for label, by_d in PADS.items():
        spec = {"zero": (2, -1), "constant": (-2, 1), "reflect": (2, -1), "replicate": (-2, 1), "circular": (3, 1)}[label]
        if label == "constant":
            cases += _per_dim(lambda d, by_d=by_d, spec=spec: by_d[d](_pad_arg(d, *spec), 0.5), f"pad_{label}_")
        else:
            cases += _per_dim(lambda d, by_d=by_d, spec=spec: by_d[d](_pad_arg(d, *spec)), f"pad_{label}_")
    add(Case("pad_constant_both_negative", lambda: nn.ConstantPad1d((-2, -3), 0.0), SHAPES[1], S1))
    add(Case("pad_reflect_shrinks", lambda: nn.ReflectionPad1d((-2, -1)), SHAPES[1], S1))
    for mode in ("constant", "reflect", "replicate", "circular"):
        add(Case(f"F_pad_{mode}", lambda mode=mode: Fn(F.pad, (1, 2, 2, 0), mode=mode), SHAPES[2], S2))
    # linear
    add(Case("linear_fixed", lambda: nn.Sequential(nn.Flatten(), nn.Linear(8, 3)), SHAPES[2], S2))
    add(Case("lazy_linear", lambda: nn.Sequential(nn.Flatten(), nn.LazyLinear(3)), SHAPES[2], S2))
    add(Case("linear_last_dim", lambda: nn.Linear(4, 3), SHAPES[2], S2))
    add(Case("F_linear", lambda: FunctionalLinear(18, 2), SHAPES[2], S2))
    add(Case("bilinear", lambda: Bilinear(18, 6, 2), SHAPES[2], S2))
    add(Case("F_bilinear", lambda: Bilinear(18, 6, 2, functional=True), SHAPES[2], S2))
    # reshaping
    add(Case("flatten_module", lambda: nn.Flatten(2), SHAPES[3], S3))
    add(Case("unflatten_module", lambda: nn.Sequential(nn.Flatten(), nn.Unflatten(1, (2, -1, 2))), SHAPES[2], S2))
    add(Case("unflatten_fixed", lambda: nn.Sequential(nn.Flatten(), nn.Unflatten(1, (2, 4))), SHAPES[2], S2))
    add(Case("torch_unflatten", lambda: Fn(torch.unflatten, 2, (-1, 2)), SHAPES[2], S2))
    add(Case("method_unflatten", lambda: Method("unflatten", -1, (2, -1)), SHAPES[2], S2))
    add(Case("view_batch", lambda: Method("view", -1, 4), SHAPES[2], S2))
    add(Case("view_tuple", lambda: Method("view", (2, -1)), SHAPES[2], S2))
    add(Case("view_fixed", lambda: Method("view", 1, 2, 4, 2), SHAPES[2], S2))
    add(Case("reshape_method", lambda: Method("reshape", -1, 3), SHAPES[2], S2))
    add(Case("torch_reshape", lambda: Fn(torch.reshape, (-1,)), SHAPES[2], S2))
    add(Case("torch_flatten", lambda: Fn(torch.flatten, 1), SHAPES[3], S3))
    add(Case("method_flatten", lambda: Method("flatten", 1, 2), SHAPES[3], S3))
    add(Case("shape_view", ShapeView, SHAPES[2], S2))
    add(Case("size_queries", SizeQueries, SHAPES[2], S2))
    # shape-preserving
    from symshape.rules.pointwise import _PLAIN_FUNCTIONS, _PLAIN_METHODS, _PLAIN_MODULES

    special = {nn.Threshold: lambda: nn.Threshold(0.1, 0.0)}
    for cls in _PLAIN_MODULES:
        add(Case(f"plain_{cls.__name__}", special.get(cls, cls), SHAPES[2], S2_SMALL))
    fn_args = {F.threshold: (0.1, 0.0), torch.clamp: (0.0, 1.0)}
    for fn in _PLAIN_FUNCTIONS:
        add(Case(f"plain_fn_{fn.__name__}", lambda fn=fn: Fn(fn, *fn_args.get(fn, ())), SHAPES[2], S2_SMALL))
    m_args = {"clamp": (0.0, 1.0), "clamp_": (0.0, 1.0), "to": (torch.float32,)}
    for name in _PLAIN_METHODS:
        if name == "type_as":
            continue  # takes a tensor: case "int_bool_type_as"
        add(Case(f"plain_method_{name}", lambda name=name: Method(name, *m_args.get(name, ())), SHAPES[2], S2_SMALL))
    for cls in (nn.Softmax, nn.LogSoftmax, nn.Softmin):
        add(Case(f"{cls.__name__}", lambda cls=cls: cls(dim=1), SHAPES[2], S2_SMALL))
    for fn in (F.softmax, F.log_softmax, F.softmin, torch.softmax, torch.log_softmax):
        add(Case(f"fn_{fn.__name__}", lambda fn=fn: Fn(fn, -1), SHAPES[2], S2_SMALL))
    add(Case("method_softmax", lambda: Method("softmax", 1), SHAPES[2], S2_SMALL))
    add(Case("method_log_softmax", lambda: Method("log_softmax", dim=2), SHAPES[2], S2_SMALL))
    add(Case("softmax2d", nn.Softmax2d, SHAPES[2], S2_SMALL))
    add(Case("dropout1d", nn.Dropout1d, SHAPES[1], S1))
    add(Case("F_dropout1d", lambda: Fn(F.dropout1d, 0.5), SHAPES[1], S1))
    # dropouts: a rate outside [0, 1] raises at every size (the module checks it when made too:
    # set afterwards)
    for cls in (nn.Dropout, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout, nn.Dropout1d):
        shape, sizes = (SHAPES[1], S1) if cls is nn.Dropout1d else (SHAPES[2], S2_SMALL)
        add(Case(f"dropout_{cls.__name__}", cls, shape, sizes))
        add(Case(f"dropout_{cls.__name__}_rate", lambda cls=cls: _with(cls(), p=1.5), shape, sizes))
    for fn in (F.dropout, F.dropout2d, F.dropout3d, F.alpha_dropout, F.feature_alpha_dropout, F.dropout1d):
        shape, sizes = (SHAPES[1], S1) if fn is F.dropout1d else (SHAPES[2], S2_SMALL)
        add(Case(f"dropout_fn_{fn.__name__}", lambda fn=fn: Fn(fn, 0.2), shape, sizes))
        add(Case(f"dropout_fn_{fn.__name__}_rate", lambda fn=fn: Fn(fn, -0.1), shape, sizes))
    add(Case("glu", lambda: nn.GLU(dim=2), SHAPES[2], S2))
    add(Case("F_glu", lambda: Fn(F.glu, -1), SHAPES[2], S2))
    add(Case("prelu", lambda: nn.PReLU(2), SHAPES[2], S2_SMALL))
    add(Case("prelu_wrong", lambda: nn.PReLU(3), SHAPES[2], S2_SMALL))
    cases += _per_dim(lambda d: BN[d](2), "batchnorm_train_")
    cases += _per_dim(lambda d: BN[d](2).eval(), "batchnorm_eval_")
    add(Case("batchnorm_wrong", lambda: nn.BatchNorm2d(3).eval(), SHAPES[2], S2_SMALL))
    add(Case("batchnorm_no_stats", lambda: nn.BatchNorm2d(3, affine=False, track_running_stats=False), SHAPES[2], S2_SMALL))
    lazy_norms = {"LazyBatchNorm": (nn.LazyBatchNorm1d, nn.LazyBatchNorm2d, nn.LazyBatchNorm3d),
                  "LazyInstanceNorm": (nn.LazyInstanceNorm1d, nn.LazyInstanceNorm2d, nn.LazyInstanceNorm3d)}
    for label, classes in lazy_norms.items():
        cases += _per_dim(lambda d, classes=classes: classes[d - 1](), f"{label}_")
    cases += _per_dim(lambda d: IN[d](2, affine=True), "instancenorm_")
    add(Case("instancenorm_eval_stats", lambda: nn.InstanceNorm2d(2, track_running_stats=True).eval(), SHAPES[2], S2_SMALL))
    add(Case("instancenorm_wrong", lambda: nn.InstanceNorm2d(3, affine=True), SHAPES[2], S2_SMALL))
    add(Case("groupnorm", lambda: nn.GroupNorm(2, 2), SHAPES[2], S2_SMALL))
    add(Case("groupnorm_wrong", lambda: nn.GroupNorm(3, 3), SHAPES[2], S2_SMALL))
    add(Case("layernorm", lambda: nn.LayerNorm([5]), SHAPES[2], S2))
    add(Case("layernorm_2", lambda: nn.LayerNorm([2, 3, 4]), SHAPES[2], S2))
    add(Case("rmsnorm", lambda: nn.RMSNorm(3), SHAPES[2], S2))
    add(Case("local_response_norm", lambda: nn.LocalResponseNorm(2), SHAPES[1], S1))
    # several tensors
    conv_a = lambda: nn.Conv2d(2, 2, 3)  # noqa: E731
    conv_b = lambda: nn.Conv2d(2, 2, 1, stride=2)  # noqa: E731
    for op in (operator.add, operator.sub, operator.mul, operator.truediv, torch.add, torch.sub,
               torch.mul, torch.div, torch.maximum, torch.minimum):
        add(Case(f"broadcast_{op.__name__}", lambda op=op: Branches(op, conv_a(), conv_b()), SHAPES[2], S2))
    add(Case("floordiv", lambda: Branches(operator.floordiv, nn.Identity(), nn.AdaptiveAvgPool2d((1, None))), SHAPES[2], S2_SMALL))
    add(Case("pow", lambda: Branches(operator.pow, nn.Identity(), nn.AdaptiveAvgPool2d(1)), SHAPES[2], S2_SMALL))
    for op in (operator.iadd, operator.isub, operator.imul, operator.itruediv):  # traced as add, sub ...
        add(Case(f"inplace_{op.__name__}", lambda op=op: Branches(op, nn.ReLU(), nn.AdaptiveAvgPool2d((None, 1))), SHAPES[2], S2_SMALL))
    for name in ("add", "sub", "mul", "div", "add_", "sub_", "mul_", "div_", "maximum", "minimum"):
        add(Case(f"method_{name}", lambda name=name: Branches(lambda a, b, name=name: getattr(a, name)(b), nn.ReLU(), conv_b()), SHAPES[2], S2))
    add(Case("scalar_mul", lambda: Fn(operator.mul, 2.0), SHAPES[2], S2_SMALL))
    add(Case("broadcast_static_mismatch", lambda: Branches(operator.add, nn.Conv2d(2, 3, 1), nn.Conv2d(2, 2, 1)), SHAPES[2], S2_SMALL))
    for fn in (torch.cat, torch.concat, torch.concatenate):
        add(Case(f"cat_{fn.__name__}", lambda fn=fn: Branches(lambda a, b, fn=fn: fn([a, b], 1), nn.Conv2d(2, 3, 3, padding=1), nn.Identity()), SHAPES[2], S2))
    add(Case("cat_mismatch", lambda: Branches(lambda a, b: torch.cat([a, b], dim=1), conv_a(), conv_b()), SHAPES[2], S2))
    add(Case("cat_spatial", lambda: Branches(lambda a, b: torch.cat((a, b), -1), nn.MaxPool2d(2), nn.AvgPool2d(2, ceil_mode=True)), SHAPES[2], S2))
    add(Case("stack", lambda: Branches(lambda a, b: torch.stack([a, b], 2), nn.MaxPool2d(2), nn.AvgPool2d(2, ceil_mode=True)), SHAPES[2], S2))
    cases += more_cases()
    cases += meta_cases()
    return cases


def more_cases() -> list[Case]:
    """Dims rearranged, reduced and split; sequence layers; resampling; blocks; unpooling."""
    cases: list[Case] = []
    add = cases.append
    S = S2
    # layout
    add(Case("permute_reshape", lambda: Custom(lambda m, x: x.permute(0, 2, 3, 1).reshape(x.size(0), -1)), SHAPES[2], S))
    add(Case("view_as_reshape_as", lambda: Custom(lambda m, x: (
        x.flatten(2).view_as(x), x.permute(0, 2, 3, 1).reshape_as(x), x[:, :, :2].reshape_as(x[:, :, :2].flatten(1)))),
        SHAPES[2], S))
    # a view to fixed sizes that the element count pins (LeViT's (N, L, C) as (N, 14, 14, C), CoaT's
    # tokens without the class token as (N, C, 56, 56)): chunks found from both ends
    add(Case("view_tokens_as_fixed_grid", lambda: Custom(lambda m, x: (
        x.flatten(2).transpose(1, 2).view(x.shape[0], 4, 4, 2),
        x.flatten(2).transpose(1, 2).reshape(x.shape[0], 2, 8, 2).transpose(1, 2).view(x.shape[0], 8, 4))), SHAPES[2], S))
    add(Case("view_tokens_without_class_token", lambda: Custom(lambda m, x: torch.cat(
        [x.flatten(2).transpose(1, 2)[:, :1], x.flatten(2).transpose(1, 2)], 1)[:, 1:].transpose(1, 2).view(
        x.shape[0], 2, 4, 4)), SHAPES[2], S))
    add(Case("view_as_mismatch", lambda: Custom(lambda m, x: x.flatten(1).view_as(x[:, :, 1:])), SHAPES[2], S))
    add(Case("torch_permute_contiguous_view", lambda: Custom(lambda m, x: torch.permute(x, (0, 3, 2, 1)).contiguous().view(-1, 2)), SHAPES[2], S))
    for name, fn in (("transpose", lambda x: x.transpose(1, 3)), ("torch_transpose", lambda x: torch.transpose(x, 2, 3)),
                     ("swapaxes", lambda x: x.swapaxes(1, 2)), ("torch_swapaxes", lambda x: torch.swapaxes(x, 1, 2)),
                     ("swapdims", lambda x: x.swapdims(1, 2)), ("torch_swapdims", lambda x: torch.swapdims(x, 1, 2)),
                     ("t", lambda x: x.flatten(1).t()), ("torch_t", lambda x: torch.t(x.flatten(1))),
                     ("unsqueeze", lambda x: x.unsqueeze(-1)), ("torch_unsqueeze", lambda x: torch.unsqueeze(x, 0)),
                     ("squeeze", lambda x: x.mean(1, keepdim=True).squeeze(1)),
                     ("torch_squeeze", lambda x: torch.squeeze(x[:, :1], 1)),
                     ("expand", lambda x: x[:, :1].expand(-1, 3, -1, -1)),
                     ("expand_as", lambda x: x[:, :1].expand_as(x)),
                     ("slice_inner", lambda x: x[:, :, 1:-1]), ("slice_index", lambda x: x[:, 0]),
                     ("slice_step", lambda x: x[..., ::2]), ("slice_none", lambda x: x[:, None, :, 2:5:2]),
                     ("slice_tail", lambda x: x[:, :, -3:, 4]), ("slice_neg_index", lambda x: x[:, :, -2])):
        add(Case(f"layout_{name}", lambda fn=fn: Custom(lambda m, x, fn=fn: fn(x)), SHAPES[2], S))
    reductions = [torch.mean, torch.sum, torch.amax, torch.amin, torch.prod, torch.logsumexp, torch.nansum,
                  torch.nanmean, torch.argmax, torch.argmin]
    for fn in reductions:
        add(Case(f"reduce_{fn.__name__}", lambda fn=fn: Custom(lambda m, x, fn=fn: fn(x, 2, keepdim=True)), SHAPES[2], S2_SMALL))
    for name in ("mean", "sum", "amax", "amin", "prod", "logsumexp", "nansum", "nanmean", "argmax", "argmin"):
        add(Case(f"reduce_method_{name}", lambda name=name: Custom(lambda m, x, name=name: getattr(x, name)(-1)), SHAPES[2], S2_SMALL))
    add(Case("reduce_all_any", lambda: Custom(lambda m, x: (torch.all(x > 0, 1), torch.any(x > 0, dim=(2, 3)), (x > 0).all(), (x > 0).any(1))), SHAPES[2], S2_SMALL))
    add(Case("reduce_mean_dims", lambda: Custom(lambda m, x: x.mean([2, 3])), SHAPES[2], S2_SMALL))
    add(Case("addcmul_broadcast", lambda: Custom(lambda m, x: (torch.addcmul(x, x[:, :, :1], torch.ones(x.shape[-1]), value=2),
                                                               x.addcmul(x[:1], x[..., :1]))), SHAPES[2], S2_SMALL))
    add(Case("addcdiv_broadcast", lambda: Custom(lambda m, x: (torch.addcdiv(x[:, :1], x, x[..., 1:2] + 1),
                                                               x.permute(0, 2, 3, 1).addcdiv(x[:, :, :, :1].permute(0, 2, 3, 1), x[:1, :1, :1, :1] + 3).view(-1))), SHAPES[2], S2_SMALL))
    add(Case("addcdiv_number", lambda: Custom(lambda m, x: x.addcdiv(x, 3.0)), SHAPES[2], S2_SMALL))
    add(Case("lerp_broadcast", lambda: Custom(lambda m, x: (torch.lerp(x, x[:, :, :1], 0.5), x.lerp(x[..., :1], x[:, :1]))), SHAPES[2], S2_SMALL))
    add(Case("ternary_mismatch", lambda: Custom(lambda m, x: torch.addcmul(x, x[:, :, 1:], x)), SHAPES[2], S2_SMALL))
    add(Case("masked_fill_broadcast", lambda: Custom(lambda m, x: (
        x.masked_fill(x[:, :, :1] > 0, float("-inf")), torch.masked_fill(x[..., :1], x[:1, :1] < 0, 2),
        x.permute(0, 2, 3, 1).masked_fill(x[0, 0] > 0, torch.tensor(0.5)).view(-1),
        x.clone().masked_fill_(x[:, :1, :, :1] > 0, -1.0).view(-1),
        torch.masked_fill(input=x, mask=x[:1] < 0, value=0), x.masked_fill(mask=x > 1, value=True))), SHAPES[2], S2_SMALL))
    add(Case("in_place_arithmetic", lambda: Custom(lambda m, x: (
        x.clone().floor_divide_(x[:, :1] + 2).remainder_(x[..., :1] + 3).pow_(2).view(-1),
        (x > 0).bitwise_and_(x[:, :, :1] > 1).bitwise_or_(x[:1] > 2).bitwise_xor_(x[0, 0] > 3),
        x.clone().add_(x[:, :1], alpha=2).sub_(1).mul_(x[..., :1]).div_(x[:1], rounding_mode="floor"))),
        SHAPES[2], S2_SMALL))
    add(Case("in_place_mismatch", lambda: Custom(lambda m, x: x[:, :, :1].clone().add_(x)), SHAPES[2], S2_SMALL))
    add(Case("masked_fill_mismatch", lambda: Custom(lambda m, x: x[:, :, :, :1].clone().masked_fill_(x > 0, 0.0)),
             SHAPES[2], S2_SMALL))
    add(Case("cumulative", lambda: Custom(lambda m, x: (torch.cumsum(x, 2), torch.cumprod(x, -1, dtype=torch.float64),
                                                        x.cumprod(1), (x > 0).cumsum(3).flatten(),
                                                        x.transpose(2, 3).cumsum(1).view(-1))), SHAPES[2], S2_SMALL))
    add(Case("floating_unary", lambda: Custom(lambda m, x: (
        torch.rsqrt(x), torch.sqrt(x), torch.exp(x), torch.log(x), torch.sin(x), torch.cos(x),
        x.rsqrt(), x.sqrt(), x.exp(), x.log(), x.sin(), x.cos().permute(0, 2, 3, 1).sin().view(-1),
        # an integer grid's sin is floating point: the branch on its dtype shows it
        torch.arange(x.shape[-1]).sin().flatten() if torch.arange(x.shape[-1]).cos().dtype.is_floating_point
        else x)), SHAPES[2], S2_SMALL))
    add(Case("rms_norm_function", lambda: Custom(lambda m, x: (
        F.rms_norm(x, (x.shape[-1],)), F.rms_norm(x.permute(0, 2, 3, 1), (2,), torch.ones(2)).view(-1))),
        SHAPES[2], S2_SMALL))
    add(Case("rms_norm_wrong_shape", lambda: Custom(lambda m, x: F.rms_norm(x, (3,))), SHAPES[2], S2_SMALL))
    add(Case("repeat_interleave", lambda: Custom(lambda m, x: (
        x.permute(0, 2, 3, 1).repeat_interleave(x.shape[2] // 2, dim=1).view(-1), torch.repeat_interleave(x, 2),
        torch.repeat_interleave(x, x.shape[-1] - 3, -1, output_size=x.shape[-1] * (x.shape[-1] - 3)))),
        SHAPES[2], S2_SMALL))
    add(Case("repeat_interleave_output_size", lambda: Custom(lambda m, x: x.repeat_interleave(2, dim=-1, output_size=8)),
             SHAPES[2], S2_SMALL))
    add(Case("repeat_interleave_bad_dim", lambda: Custom(lambda m, x: x.repeat_interleave(1, dim=4)), SHAPES[2], S2_SMALL))
    add(Case("meshgrid", lambda: Custom(lambda m, x: (
        torch.stack(torch.meshgrid(torch.arange(x.shape[-2]), torch.arange(x.shape[-1]), indexing="ij"), -1).flatten(),
        [g.transpose(0, 1).reshape(-1) for g in torch.meshgrid([torch.arange(x.shape[-1] * 2)[::2].float(), torch.tensor(1.),
                                                                 torch.arange(3.)], indexing="xy")],
        torch.meshgrid(x[0, 0, 0], x[0, 0, :, 0])[1].unsqueeze(0).view(x.shape[-1], -1))), SHAPES[2], S2_SMALL))
    add(Case("meshgrid_2d_input", lambda: Custom(lambda m, x: torch.meshgrid(x[0, 0], indexing="ij")), SHAPES[2], S2_SMALL))
    add(Case("meshgrid_dtypes", lambda: Custom(lambda m, x: torch.meshgrid(torch.arange(x.shape[-1]), torch.arange(2.),
                                                                          indexing="ij")), SHAPES[2], S2_SMALL))
    add(Case("meshgrid_indexing", lambda: Custom(lambda m, x: torch.meshgrid(x[0, 0, 0], indexing="yx")), SHAPES[2], S2_SMALL))
    add(Case("negative", lambda: Custom(lambda m, x: (-x, -x.permute(0, 2, 3, 1)[..., 1::2], -(x > 0).long())),
             SHAPES[2], S2_SMALL))
    add(Case("negative_bool", lambda: Custom(lambda m, x: -(x > 0)), SHAPES[2], S2_SMALL))
    add(Case("stack_layouts", lambda: Custom(lambda m, x: (
        torch.stack([x.transpose(-1, -2)[0, 0], x[0, 1].t()], -1).view(-1),
        torch.stack([x.permute(0, 2, 3, 1), x.permute(0, 2, 3, 1)], 1).flatten(),
        torch.stack([x[:, :, :1].expand(-1, -1, x.shape[2], -1)] * 2, 0).view(-1))), SHAPES[2], S2_SMALL))
    add(Case("one_hot", lambda: Custom(lambda m, x: (
        F.one_hot(torch.arange(x.shape[-1]) % 3, 4), F.one_hot((x[0, 0] > 0).long(), num_classes=2).view(-1),
        F.one_hot(torch.arange(x.shape[-2] * 2).view(2, -1).t() // x.shape[-2], 5).view(-1),
        F.one_hot(torch.arange(x.shape[-1]) % 3, 3).sum().float() + x.sum())), SHAPES[2], S2_SMALL))
    add(Case("one_hot_not_long", lambda: Custom(lambda m, x: F.one_hot(x.int(), 3)), SHAPES[2], S2_SMALL))
    add(Case("one_hot_no_class", lambda: Custom(lambda m, x: F.one_hot(x[0, 0].long() * 0, 0)), SHAPES[2], S2_SMALL))
    add(Case("cumulative_bad_dim", lambda: Custom(lambda m, x: x.cumprod(4)), SHAPES[2], S2_SMALL))
    add(Case("reduce_std_var", lambda: Custom(lambda m, x: (torch.std(x, 1), torch.var(x, (2, 3), keepdim=True), x.std(2, True, True), x.var())), SHAPES[2], S2_SMALL))
    add(Case("reduce_norm", lambda: Custom(lambda m, x: (x.norm(p=2, dim=(1, 2), keepdim=True), x.norm(dim=-1), torch.norm(x, dim=(2, 3)), x.norm(), x.norm(p=1, dim=1), torch.norm(x, 3, 2, True))), SHAPES[2], S2_SMALL))
    add(Case("reduce_vector_norm", lambda: Custom(lambda m, x: (torch.linalg.vector_norm(x, dim=(1, 3), keepdim=True), torch.linalg.vector_norm(x, 3, (), True), torch.linalg.vector_norm(x))), SHAPES[2], S2_SMALL))
    add(Case("reduce_norm_fro_three_dims", lambda: Custom(lambda m, x: torch.norm(x, p="fro", dim=(1, 2, 3))), SHAPES[2], S2_SMALL))
    add(Case("max_min", lambda: Custom(lambda m, x: (torch.max(x, 1)[0], torch.min(x, 2, keepdim=True)[1], x.max(), x.min(3), torch.max(x, x[:, :1]))), SHAPES[2], S2_SMALL))
    add(Case("reduce_no_entries", lambda: Custom(lambda m, x: (  # a slice of one row leaves none: torch raises
        x[:, :, 1:].amax(2), x[:, :, :, 1:].argmin(-1), x[:, :, 1:].max(2)[0], x[:, :, 1:].sum(2), x.sum(()))), SHAPES[2], S))
    add(Case("chunk_spatial", lambda: Custom(lambda m, x: torch.cat(x.chunk(3, dim=2), 2)), SHAPES[2], S))
    add(Case("chunk_channels", lambda: Custom(lambda m, x: torch.chunk(x, 2, 1)[1]), SHAPES[2], S2_SMALL))
    add(Case("split_sections", lambda: Custom(lambda m, x: torch.split(x, [1, 1], 1)[0] + x.split(1, dim=1)[1]), SHAPES[2], S2_SMALL))
    add(Case("unbind", lambda: Custom(lambda m, x: x.unbind(1)[0] * torch.unbind(x, 1)[1]), SHAPES[2], S2_SMALL))
    add(Case("assert_size", lambda: Custom(lambda m, x: (torch._assert(x.shape[2] == 8, "H must be 8"), x)[1]), SHAPES[2], S))
    add(Case("assert_ge", lambda: Custom(lambda m, x: (torch._assert(x.size(3) > 4, "W > 4"), x)[1]), SHAPES[2], S))
    add(Case("F_layer_norm", lambda: Custom(lambda m, x: F.layer_norm(x, (5,))), SHAPES[2], S))
    add(Case("item_bounded_and_exact", lambda: Custom(lambda m, x: (  # a count is at most W; full(T).item() is T
        torch._assert((x > 0).sum(3).amax().item() <= x.size(3), "a count of W entries is at most W"),
        x[:, :, :torch.full((1,), x.size(2)).item() - 1])[1]), SHAPES[2], S))
    add(Case("numbers_as_tensors", lambda: Custom(lambda m, x: (  # torch.div(H, 2): a 0-dim tensor, an int one a size
        x.view(x.size(0), x.size(1), torch.div(x.size(2), 2, rounding_mode="floor"), -1),
        x.new_zeros((torch.floor_divide(x.size(3), 2) + 1, 2)), x * torch.true_divide(x.size(2), 3),
        torch.add(x.size(2), x.size(3), alpha=2).shape)), SHAPES[2], S))
    add(Case("as_strided_chunks", lambda: Custom(lambda m, x: (  # overlapping windows of a reshaped transpose
        x.transpose(2, 3).reshape(x.size(0), -1, x.size(2)).as_strided(
            (x.size(0), x.size(1) * x.size(3) - 1, 2), (x.size(1) * x.size(2) * x.size(3), 1, 1)),
        torch.as_strided(x, (x.size(0), 2), (1, 1)), x.transpose(2, 3).reshape(-1, x.size(2)).stride())),
        SHAPES[2], S))
    # sequence
    add(Case("embedding", lambda: nn.Sequential(Custom(lambda m, x: (x * 0).long()), nn.Embedding(10, 4)), SHAPES[2], S2_SMALL))
    add(Case("embedding_positions", lambda: Custom(lambda m, x: (
        m.e(torch.arange(x.shape[-1])), F.embedding(torch.arange(x.shape[-2] * 2) // 2, m.e.weight),
        F.embedding((x * 0).long(), m.e.weight)), e=nn.Embedding(6, 3)), SHAPES[2], S2_SMALL))
    add(Case("gather", lambda: Custom(lambda m, x: (
        torch.gather(x, -1, torch.argsort(x, -1)[..., :2]), x.gather(1, x.argmax(1, keepdim=True)),
        torch.gather(x, 3, torch.arange(x.shape[-1]).expand_as(x)), x.gather(0, torch.zeros(1, 1, 1, 1).long()),
        torch.gather(x, 2, x.topk(1, dim=2).indices), torch.gather(x, 2, torch.arange(x.shape[-1]).expand_as(x)))),
        SHAPES[2], S2_SMALL))
    add(Case("scatter", lambda: Custom(lambda m, x: (
        torch.scatter(torch.zeros_like(x), -1, x.topk(1, dim=-1).indices, 1.0),
        torch.zeros_like(x).scatter(2, x.argmax(2, keepdim=True), x[:, :, :1]),
        torch.scatter_add(x, 3, torch.argsort(x, -1)[..., :2], x[..., :2]),
        x.scatter_add(1, x.argmax(1, keepdim=True), x[:, :1]),
        torch.scatter_reduce(x, -1, torch.argsort(x, -1), x, "amax"),
        x.scatter_reduce(0, torch.zeros(1, 1, 1, 1).long(), x[:1, :1, :1, :1], "sum", include_self=False),
        torch.zeros_like(x).scatter_(-1, x.topk(1, dim=-1).indices, 2.0),
        x.clone().scatter_add_(2, x.argmin(2, keepdim=True), x[:, :, :1]),
        x.clone().scatter_reduce_(-1, x.argmax(-1, keepdim=True), x[..., :1], "prod"))), SHAPES[2], S2_SMALL))
    if hasattr(torch, "_grouped_mm"):  # (torch 2.8 and later)
        add(Case("grouped_mm", lambda: Custom(lambda m, x: torch._grouped_mm(
            x.reshape(-1, 8), m.w.transpose(-2, -1), offs=torch.full((3,), x.shape[1], dtype=torch.int32)),
            w=nn.Parameter(torch.randn(3, 6, 8))), ("L", 8), grid(("L",), [1, 2, 5])))
    add(Case("int_bool_type_as", lambda: Custom(lambda m, x: x.int().type_as(x) + x.bool().float()), SHAPES[2], S2_SMALL))
    seq = ("L", 3)
    seqs = grid(("L",), [1, 2, 5])
    add(Case("rnn", lambda: nn.RNN(3, 4, batch_first=True), seq, seqs))
    add(Case("gru_bidirectional", lambda: nn.GRU(3, 4, num_layers=2, bidirectional=True, batch_first=True), seq, seqs))
    add(Case("lstm_proj", lambda: nn.LSTM(3, 4, proj_size=2, batch_first=True), seq, seqs))
    add(Case("lstm_seq_first", lambda: nn.LSTM(3, 4), seq, seqs))
    add(Case("rnn_wrong", lambda: nn.RNN(5, 4, batch_first=True), seq, seqs))
    add(Case("mha", lambda: Custom(lambda m, x: m.att(x, x, x), att=nn.MultiheadAttention(3, 1, batch_first=True)), seq, seqs))
    add(Case("mha_heads", lambda: Custom(lambda m, x: m.att(x, x, x, need_weights=True, average_attn_weights=False)[1],
                                          att=nn.MultiheadAttention(4, 2)), ("L", 4), seqs))
    add(Case("mha_no_weights", lambda: Custom(lambda m, x: m.att(x, x[:, :1], x[:, :1], need_weights=False)[0],
                                               att=nn.MultiheadAttention(3, 3, batch_first=True)), seq, seqs))
    add(Case("mha_function", lambda: Custom(lambda m, x: F.multi_head_attention_forward(
        x.transpose(0, 1), x[:, 1:].transpose(0, 1), x[:, 1:].transpose(0, 1), 4, 2, m.att.in_proj_weight,
        m.att.in_proj_bias, None, None, False, 0.0, m.att.out_proj.weight, m.att.out_proj.bias, training=False,
        attn_mask=torch.zeros(x.shape[1], x.shape[1] - 1)), att=nn.MultiheadAttention(4, 2)), ("L", 4), seqs))
    add(Case("transformer_encoder", lambda: nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0, batch_first=True), ("L", 4), seqs))
    add(Case("transformer_decoder", lambda: Custom(lambda m, x: m.dec(x, x), dec=nn.TransformerDecoderLayer(4, 2, 8, dropout=0.0, batch_first=True)), ("L", 4), seqs))
    # resampling
    add(Case("upsample_2", lambda: nn.Upsample(scale_factor=2), SHAPES[2], S))
    add(Case("upsample_size", lambda: nn.Upsample(size=(5, 7), mode="bilinear"), SHAPES[2], S))
    add(Case("upsample_1_5", lambda: nn.Upsample(scale_factor=1.5, mode="bilinear"), SHAPES[2], S))
    add(Case("upsample_nearest2d", lambda: nn.UpsamplingNearest2d(scale_factor=0.5), SHAPES[2], S))
    add(Case("upsample_bilinear2d", lambda: nn.UpsamplingBilinear2d(scale_factor=(2, 0.75)), SHAPES[2], S))
    add(Case("upsample_linear1d", lambda: nn.Upsample(scale_factor=0.25, mode="linear"), SHAPES[1], S1))
    add(Case("upsample_trilinear", lambda: nn.Upsample(scale_factor=1.5, mode="trilinear"), SHAPES[3], S3))
    add(Case("F_interpolate", lambda: Custom(lambda m, x: F.interpolate(x, scale_factor=0.5, mode="bicubic")), SHAPES[2], S))
    add(Case("F_interpolate_size", lambda: Custom(lambda m, x: F.interpolate(x, size=(x.size(2) * 2, 3))), SHAPES[2], S))
    add(Case("F_upsample", lambda: Custom(lambda m, x: F.upsample(x, scale_factor=2)), SHAPES[2], S))
    add(Case("F_upsample_nearest", lambda: Custom(lambda m, x: F.upsample_nearest(x, scale_factor=3)), SHAPES[2], S))
    add(Case("F_upsample_bilinear", lambda: Custom(lambda m, x: F.upsample_bilinear(x, size=(4, 6))), SHAPES[2], S))  # via F.interpolate
    add(Case("pixel_shuffle", lambda: nn.Sequential(nn.Conv2d(2, 8, 1), nn.PixelShuffle(2)), SHAPES[2], S))
    add(Case("pixel_shuffle_wrong", lambda: nn.PixelShuffle(2), SHAPES[2], S2_SMALL))
    add(Case("F_pixel_shuffle", lambda: Custom(lambda m, x: F.pixel_shuffle(torch.cat([x, x], 1), 2)), SHAPES[2], S))
    add(Case("pixel_unshuffle", lambda: nn.PixelUnshuffle(2), SHAPES[2], S))
    add(Case("F_pixel_unshuffle", lambda: Custom(lambda m, x: F.pixel_unshuffle(x, 3)), SHAPES[2], S))
    add(Case("channel_shuffle", lambda: nn.ChannelShuffle(2), SHAPES[2], S2_SMALL))
    add(Case("channel_shuffle_wrong", lambda: nn.ChannelShuffle(3), SHAPES[2], S2_SMALL))
    add(Case("torch_channel_shuffle", lambda: Custom(lambda m, x: torch.channel_shuffle(x, 2)), SHAPES[2], S2_SMALL))
    add(Case("torch_native_channel_shuffle", lambda: Custom(lambda m, x: torch.native_channel_shuffle(x, 2)), SHAPES[2], S2_SMALL))
    # blocks
    add(Case("unfold", lambda: nn.Unfold(3, padding=1, stride=2), SHAPES[2], S))
    add(Case("F_unfold", lambda: Custom(lambda m, x: F.unfold(x, (2, 3), dilation=2)), SHAPES[2], S))
    add(Case("fold", lambda: nn.Sequential(nn.Unfold(2, stride=2), nn.Fold((8, 8), 2, stride=2)), SHAPES[2], S))
    add(Case("F_fold", lambda: Custom(lambda m, x: F.fold(F.unfold(x, 2), (5, 5), 2)), SHAPES[2], S))
    # pooling extras
    LP = {1: nn.LPPool1d, 2: nn.LPPool2d, 3: nn.LPPool3d}
    F_LP = {1: F.lp_pool1d, 2: F.lp_pool2d, 3: F.lp_pool3d}
    cases += _per_dim(lambda d: LP[d](2, 3, 2, ceil_mode=True), "lp_pool_")
    cases += _per_dim(lambda d: Custom(lambda m, x, d=d: F_LP[d](x.abs(), 1.5, 2)), "F_lp_pool_")
    add(Case("lp_pool_inf", lambda: nn.LPPool2d(float("inf"), 3), SHAPES[2], S))
    UN = {1: nn.MaxUnpool1d, 2: nn.MaxUnpool2d, 3: nn.MaxUnpool3d}
    F_UN = {1: F.max_unpool1d, 2: F.max_unpool2d, 3: F.max_unpool3d}
    cases += _per_dim(lambda d: PoolUnpool(MAXPOOL[d](2, return_indices=True), UN[d](2)), "max_unpool_")
    cases += _per_dim(lambda d: PoolUnpool(MAXPOOL[d](3, 2, 1, return_indices=True), lambda y, i, d=d: F_UN[d](y, i, 3, 2, 1)), "F_max_unpool_")
    add(Case("max_unpool_size", lambda: PoolUnpool(nn.MaxPool2d(2, return_indices=True), nn.MaxUnpool2d(2), sized=True), SHAPES[2], S))
    add(Case("fractional_ratio", lambda: nn.FractionalMaxPool2d(2, output_ratio=0.5), SHAPES[2], S))
    add(Case("fractional_size", lambda: nn.FractionalMaxPool2d(3, output_size=(4, 2)), SHAPES[2], S))
    add(Case("fractional_3d", lambda: nn.FractionalMaxPool3d(2, output_ratio=(0.5, 0.75, 0.5), return_indices=True), SHAPES[3], S3))
    add(Case("F_fractional", lambda: Custom(lambda m, x: F.fractional_max_pool2d(x, 2, output_size=3)), SHAPES[2], S))
    add(Case("F_fractional_3d_indices", lambda: Custom(lambda m, x: F.fractional_max_pool3d(x, 2, output_ratio=0.5, return_indices=True)), SHAPES[3], S3))
    add(Case("F_fractional_2d_indices", lambda: Custom(lambda m, x: F.fractional_max_pool2d(x, 2, output_ratio=0.5, return_indices=True)[1]), SHAPES[2], S))
    add(Case("F_fractional_2d_tuple", lambda: Custom(lambda m, x: F.fractional_max_pool2d(x, 2, output_ratio=(0.5, 0.75), return_indices=True)[1]), SHAPES[2], S))
    add(Case("chunk_unpacked", lambda: Custom(lambda m, x: x.chunk(3, dim=2)[2]), SHAPES[2], S))
    # splitting at fixed points, narrowing, selecting by index (tensor arguments are constants)
    for name, f in {
        "unsafe_chunk": lambda m, x: torch.unsafe_chunk(x, 2, 2)[0] + x.unsafe_chunk(3, dim=3)[0].sum(),
        "unsafe_split": lambda m, x: torch.unsafe_split(x, 1, 1)[1] * x.unsafe_split(1, dim=1)[0],
        "tensor_split_sections": lambda m, x: torch.cat(x.tensor_split(3, dim=2), 2),
        "tensor_split_indices": lambda m, x: torch.tensor_split(x, [1, 4], dim=3)[1],
        "tensor_split_tensor": lambda m, x: x.tensor_split(torch.tensor([2, -1]), 2)[2],
        "tensor_split_tensor_sections": lambda m, x: torch.tensor_split(x, torch.tensor(2), dim=3)[0],
        "hsplit": lambda m, x: torch.hsplit(x[0], 2)[1] + x[0].hsplit([1])[0].sum(),
        "vsplit": lambda m, x: torch.vsplit(x[0, 0], 2)[0] + x[0, 0].vsplit([2])[1].sum(),
        "dsplit": lambda m, x: torch.dsplit(x, [1, 3])[1] + x.dsplit(3)[0].sum(),
        "narrow": lambda m, x: torch.narrow(x, 2, 1, 2) + x.narrow(-1, -3, 2).sum(),
        "narrow_tensor_start": lambda m, x: x.narrow(3, torch.tensor(1), 2),
        "index_select": lambda m, x: torch.index_select(x, 3, torch.tensor([0, 2])).sum() + x.index_select(2, torch.tensor([1])),
        "advanced_index": lambda m, x: x[:, :, [0, 2]],
        "advanced_index_apart": lambda m, x: x[:, [1, 0], :, torch.tensor([0, 3])],
        "advanced_index_mask": lambda m, x: x[:, torch.tensor([True, False])][..., torch.tensor([[0], [-2]])],
        "advanced_index_int": lambda m, x: x[0, :, [1, -1]],
        "constant_pad_nd": lambda m, x: torch.constant_pad_nd(x, (-1, 1, -2, 1), 0.5),
        "upsample_bilinear2d_aa": lambda m, x: torch.ops.aten._upsample_bilinear2d_aa(
            x, None, False, [1.7, 0.5]) + torch.ops.aten._upsample_bilinear2d_aa.vec(x, None, True, [1.7, 0.5]),
    }.items():
        add(Case(name, lambda f=f: Custom(f), SHAPES[2], S))
    add(Case("F_fractional_3d", lambda: Custom(lambda m, x: F.fractional_max_pool3d(x, 2, output_size=1)), SHAPES[3], S3))
    # comparisons and logic, broadcasting like arithmetic
    conv_b = lambda: nn.Conv2d(2, 2, 1, stride=2)  # noqa: E731
    for op in (operator.eq, operator.ne, operator.lt, operator.le, operator.gt, operator.ge, operator.mod,
               torch.eq, torch.ne, torch.lt, torch.le, torch.gt, torch.ge, torch.pow):
        add(Case(f"compare_{op.__name__}", lambda op=op: Branches(op, nn.ReLU(), conv_b()), SHAPES[2], S))
    for op in (operator.and_, operator.or_, operator.xor, torch.logical_and, torch.logical_or):
        add(Case(f"logic_{op.__name__}", lambda op=op: Branches(lambda a, b, op=op: op(a > 0, b > 0), nn.ReLU(), conv_b()), SHAPES[2], S))
    for name in ("eq", "ne", "lt", "le", "gt", "ge", "pow"):
        add(Case(f"method_{name}", lambda name=name: Branches(lambda a, b, name=name: getattr(a, name)(b), nn.ReLU(), conv_b()), SHAPES[2], S))
    return cases


class ClassTokenAttention(nn.Module):
    """ViT's pattern: patches, a class token in front, a fixed position embedding added (a size
    of 1 broadcasts: the sequence length is a Piecewise), then attention (torch's meta kernel)."""

    def __init__(self, patches: int = 4):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 2, stride=2)
        self.cls = nn.Parameter(torch.zeros(1, 1, 4))
        self.pos = nn.Parameter(torch.zeros(1, patches + 1, 4))

    def forward(self, x):
        x = self.conv(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        return F.scaled_dot_product_attention(x, x, x)


def meta_cases() -> list[Case]:
    """Ops without a hand rule: torch's own meta kernels, every branch explored (symshape.meta).
    Each compares with real forward passes over a grid that includes the sizes torch refuses."""
    cases: list[Case] = []
    add = cases.append
    S, S1_ = S2, S1
    w16 = torch.randn(16, 5)
    add(Case("meta_batch_norm_eval", lambda: Custom(lambda m, x: F.batch_norm(x, torch.zeros(2), torch.ones(2))), SHAPES[2], S))
    add(Case("meta_batch_norm_train", lambda: Custom(lambda m, x: F.batch_norm(x, torch.zeros(2), torch.ones(2), training=True)), SHAPES[2], S))
    add(Case("meta_group_norm", lambda: Custom(lambda m, x: F.group_norm(x, 2)), SHAPES[2], S))
    add(Case("meta_instance_norm", lambda: Custom(lambda m, x: F.instance_norm(x)), SHAPES[2], S))
    add(Case("meta_normalize", lambda: Custom(lambda m, x: F.normalize(x, dim=-1)), SHAPES[2], S))
    add(Case("meta_matmul_fixed", lambda: Custom(lambda m, x: x @ w16), (2, "H", 16), grid(("H",), range(1, 9))))
    add(Case("meta_matmul_wrong", lambda: Custom(lambda m, x: x @ w16), SHAPES[2], grid(("H", "W"), [1, 2, 3, 15, 16, 17])))
    add(Case("meta_matmul_self", lambda: Custom(lambda m, x: x @ x.transpose(-1, -2)), SHAPES[2], S))
    add(Case("meta_matmul_square", lambda: Custom(lambda m, x: torch.matmul(x, x)), SHAPES[2], S))
    add(Case("meta_bmm", lambda: Custom(lambda m, x: torch.bmm(x.flatten(0, 1), x.flatten(0, 1).transpose(1, 2))), SHAPES[2], S))
    add(Case("matmul_method", lambda: Custom(lambda m, x: x.matmul(x.transpose(-1, -2)).flatten(1)), SHAPES[2], S))
    add(Case("bmm_method", lambda: Custom(lambda m, x: x.flatten(0, 1).bmm(x.flatten(0, 1)).view(-1)), SHAPES[2], S))
    add(Case("mm_function", lambda: Custom(lambda m, x: torch.mm(x[0, 0], x[0, 1].t())), SHAPES[2], S))
    add(Case("mm_method", lambda: Custom(lambda m, x: x[0, 0].t().mm(x[0, 1]).view(-1)), SHAPES[2], S))
    add(Case("float_max_min", lambda: Custom(lambda m, x: (
        x * torch.arange(x.shape[-1]).mul(max(x.shape[-2] / x.shape[-1], 1.0)).long(),
        x[..., :int(4 * min(x.shape[-1] / 2, 1.0, 3 / 4)) + 1].flatten(1),
        x[..., :math.ceil(1 - max(x.shape[-1] / -4, -2.5))].flatten(1),
        torch.ones(math.floor(min(x.shape[-2] / 3, x.shape[-1] / 2)) + 1, 2),
        torch.zeros(int(max(x.shape[-1] / 2, x.shape[-2] / 3)) + 1).unsqueeze(0) + x.sum(),
        F.pad(x, (0, int(max(x.shape[-1] * 0.5, 2.0)))).flatten(1))), SHAPES[2], S))
    add(Case("max_of_an_int_and_a_float", lambda: nn.Sequential(Custom(lambda m, x: (
        x[..., :int(max(x.shape[-1], 2.5))].flatten(1),
        x[..., :min(x.shape[-2], x.shape[-1])].flatten(1)))), SHAPES[2], S))
    add(Case("max_min_of_int_sizes", lambda: Custom(lambda m, x: (
        F.adaptive_avg_pool2d(x, (max(3, x.shape[-2]), max(3, x.shape[-1]))).flatten(1),  # VGG's head
        F.pad(x, (0, max((math.ceil(x.shape[-1] / 2) - 1) * 2 + 3 - x.shape[-1], 0))).flatten(1),  # "same"
        x[..., : min(x.shape[-2] - 2, x.shape[-1], 5)].flatten(1),
        x[..., : max(x.shape[-2] - 4, 0)].flatten(1))), SHAPES[2], S))
    add(Case("slice_bounds_from_sizes", lambda: Custom(lambda m, x: (
        x[..., : x.shape[-2] - 2].flatten(1),  # negative at H = 1: counts from the end
        x[..., x.shape[-2] - 3:].flatten(1),
        x[..., -x.shape[-2]:].flatten(1),  # negative at every size
        x[:, : 4 - x.shape[-1], 1 - x.shape[-2]: x.shape[-1] - 5].flatten(1))), SHAPES[2], S))
    add(Case("broadcast_beside_a_size_never_one", lambda: Custom(lambda m, x: (
        # W beside 4*floor(W/4): where W % 4 == 0 equal, and at W == 1 a 1 beside a 0 (0 columns,
        # which view(..., -1, 4) then refuses: -1 is ambiguous); 4*floor(W/4) either way
        (x + x[..., : 4 * (x.shape[-1] // 4)]).view(x.shape[0], x.shape[1], x.shape[2], -1, 4).flatten(1),
        (x[..., : 2 * (x.shape[-2] // 2), :] * x).view(x.shape[0], x.shape[1], -1, 2, x.shape[-1]).flatten(1))),
        SHAPES[2], S))
    add(Case("floordiv_by_a_size", lambda: Custom(lambda m, x: (
        x[..., : x.shape[-1] // (x.shape[-2] // 3)].flatten(1),  # ZeroDivisionError where H < 3
        x[..., : x.shape[-2] % (x.shape[-1] - 2) + 1].flatten(1),  # where W == 2; W == 1: % by -1
        x.flatten(1)[:, : x.numel() // (x.shape[-1] // 2) - 1],  # exactly N*2*H only where W is even
        torch.zeros(x.shape[-1] * x.shape[-2] // math.ceil(x.shape[-2] / 2), 2),
        torch.zeros(x[..., 1:].flatten(1).shape[1] // (x.shape[-1] - 1), 1))), SHAPES[2], S))  # 2*H, exactly
    add(Case("eye_sizes", lambda: Custom(lambda m, x: (x @ torch.eye(x.shape[-1]), torch.eye(x.shape[-2], x.shape[-1] - 3,
                                                                                         dtype=torch.float64).flatten(),
                                                       torch.eye(2, x.shape[-2]) @ x)), SHAPES[2], S))
    add(Case("tensor_of_data", lambda: Custom(lambda m, x: (
        torch.as_tensor(x * 2) + torch.asarray(x, dtype=torch.float64).float(), torch.tensor(x[:, :, 1:]).flatten(1),
        x * torch.tensor(x.shape[-1], dtype=torch.float32), x.flatten(2) * torch.tensor([x.shape[-2], x.shape[-1]]).sum(),
        torch.tensor([[x.shape[-2], 1], [2, x.shape[-1]]]).float() @ x[..., :2, :],
        torch.tensor([x.shape[-1] / 2, 1.5]).expand(x.shape[-2], 2), torch.as_tensor([x.shape[-1]] * 3).expand(2, 3))),
        SHAPES[2], S))
    add(Case("tensor_of_ragged_data", lambda: Custom(lambda m, x: x * torch.tensor([[x.shape[-1]], [1, 2]]).sum()),
             SHAPES[2], S2_SMALL))
    add(Case("linspace_steps", lambda: Custom(lambda m, x: x * torch.linspace(0, 1, x.shape[-1])), SHAPES[2], S))
    add(Case("arange_from_half", lambda: Custom(lambda m, x: x * (torch.arange(0.5, x.shape[-1]) / 2)), SHAPES[2], S))
    add(Case("logspace_steps", lambda: Custom(lambda m, x: x * torch.logspace(0, 1, x.shape[-2] - 2).unsqueeze(1)), SHAPES[2], S))
    add(Case("meta_sdpa", lambda: Custom(lambda m, x: F.scaled_dot_product_attention(x, x, x)), SHAPES[2], S))
    add(Case("meta_sdpa_kv", lambda: Custom(lambda m, x: F.scaled_dot_product_attention(x, x[..., :2, :], x[..., :2, :])), SHAPES[2], S))
    add(Case("meta_roll", lambda: Custom(lambda m, x: x.roll(2, -1)), SHAPES[2], S))
    add(Case("meta_torch_roll", lambda: Custom(lambda m, x: torch.roll(x, (1, 3), (2, 3))), SHAPES[2], S))
    add(Case("meta_flip", lambda: Custom(lambda m, x: x.flip(2, 3)), SHAPES[2], S))
    add(Case("flip_functions", lambda: Custom(lambda m, x: (torch.flip(x, (1, -1)), torch.fliplr(x), torch.flipud(x),
                                                            x.fliplr(), x.flipud(), x.flip(dims=[0]))), SHAPES[2], S))
    add(Case("flip_permuted_view", lambda: Custom(lambda m, x: torch.flip(x.permute(0, 2, 3, 1), (1,)).view(-1)), SHAPES[2], S))
    add(Case("roll_permuted_view", lambda: Custom(lambda m, x: (torch.roll(x.transpose(1, 3), 1, 2).view(-1),
                                                                x.roll(-3).view(-1))), SHAPES[2], S))
    add(Case("roll_refused", lambda: Custom(lambda m, x: torch.roll(x, (1, 2), (1,))), SHAPES[2], S))
    add(Case("meta_tile", lambda: Custom(lambda m, x: x.tile(2, 1)), SHAPES[2], S))
    add(Case("meta_repeat", lambda: Custom(lambda m, x: x.repeat(1, 2, 1, 3)), SHAPES[2], S))
    add(Case("meta_expand_as", lambda: Custom(lambda m, x: x[:, :, :1].expand_as(x)), SHAPES[2], S))
    add(Case("meta_unbind", lambda: Custom(lambda m, x: torch.unbind(x, 1)[1]), SHAPES[2], S))
    add(Case("meta_add_fixed", lambda: Custom(lambda m, x: torch.add(x, torch.zeros(1, 2, 5, 1))), SHAPES[2], S))
    add(Case("meta_where", lambda: Custom(lambda m, x: torch.where(x > 0, x, torch.zeros(1, 1, 1, 4))), SHAPES[2], S))
    add(Case("meta_outer", lambda: Custom(lambda m, x: torch.outer(x.flatten(), torch.ones(3))), SHAPES[1], S1_))
    add(Case("meta_cumsum", lambda: Custom(lambda m, x: x.cumsum(-1)), SHAPES[2], S))
    add(Case("meta_diff", lambda: Custom(lambda m, x: torch.diff(x, dim=-1)), SHAPES[2], S))
    add(Case("unfold", lambda: Custom(lambda m, x: (x.unfold(3, 3, 2), x.unfold(2, 2, 1).transpose(2, 3).unfold(-1, 1, 3).reshape(-1))), SHAPES[2], S))
    add(Case("meta_tril", lambda: Custom(lambda m, x: x.tril()), SHAPES[2], S))
    add(Case("meta_local_response_norm", lambda: Custom(lambda m, x: F.local_response_norm(x, 2)), SHAPES[2], S))
    add(Case("meta_baddbmm", lambda: Custom(lambda m, x: torch.baddbmm(torch.zeros(1, 1, 1), x[0], x[0].transpose(1, 2))), SHAPES[2], S))
    add(Case("addmm", lambda: Custom(lambda m, x: (torch.addmm(torch.ones(x.shape[-1]), x[0, 0], torch.ones(x.shape[-1], x.shape[-1])), x[0, 1].addmm(x[0, 0], x[0, 0].t()))), SHAPES[2], S))
    add(Case("baddbmm_method", lambda: Custom(lambda m, x: x[0, :, :, :1].baddbmm(x[0], x[0].transpose(1, 2))), SHAPES[2], S))
    add(Case("einsum", lambda: Custom(lambda m, x: (torch.einsum("nchw,nkhw->nck", x, x), torch.einsum("bhwc,wkc->bhwk", x.permute(0, 2, 3, 1), torch.ones(x.shape[-1], 2, x.shape[1])))), SHAPES[2], S))
    add(Case("setitem", lambda: Custom(lambda m, x: _assigned(x)), SHAPES[2], S))
    add(Case("meta_piecewise_input", lambda: ClassTokenAttention(), SHAPES[2], grid(("H", "W"), [1, 2, 3, 4, 5, 6])))
    add(Case("meta_piecewise_input_1", lambda: ClassTokenAttention(1), SHAPES[2], grid(("H", "W"), [1, 2, 3, 4, 5])))
    return cases


CASES = build_cases()
