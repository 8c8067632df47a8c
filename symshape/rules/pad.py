"""Padding: ZeroPad, ConstantPad, ReflectionPad, ReplicationPad, CircularPad (1d/2d/3d) and F.pad.

Every mode adds ``left + right`` to a padded dim:  ``out = in + left + right``. The modes differ
in what torch accepts (measured against torch, see tests/test_rules.py):

* constant: negative padding crops; ``in + min(left, 0) + min(right, 0) >= 0``;
* reflect:  non-empty input dims, ``left < in`` and ``right < in``, every ``out >= 0`` and at
  least one padded ``out >= 1`` (a single padded dim: ``out >= 1``);
* replicate: as reflect without the ``left < in`` bound;
* circular: ``left <= in`` and ``right <= in``; with a negative amount, torch's own steps
  (:func:`circular_outcome`): its copies between slices refuse finitely many sizes.

An amount may be a size expression (``F.pad(x, [dx // 2, dx - dx // 2])`` with ``dx`` computed
from sizes, TensorFlow-"same" padding): the same checks hold, as requirements, where the
amount's sign does not depend on the size (decided for every size >= 1); where it does, the
rule steps aside and torch's meta kernel decides.
"""

from __future__ import annotations

import functools

import torch
import torch.nn as nn
import torch.nn.functional as F

import sympy

from ..derivations import Padded
from ..dims import DEPENDS, canonical, integer_polynomial, product, settle
from ..requirements import Requirement
from ..tensor import SymTensor
from .common import as_int, spatial_unit, tensor_arg
from .registry import Context, function_rule, module_rule

# the CPU kernels' output memory format by input rank (symshape.tensor.kernel_layout), measured
# for padding that grows: the output follows the input (1D: contiguous); circular padding's is
# contiguous; padding that only shrinks is a narrowed copy (not modelled: torch's meta kernel)
_FOLLOWS = {3: "contiguous", 4: "suggest", 5: "suggest"}

__all__ = ["pad_shape"]


@functools.lru_cache(maxsize=4096)
def _always(kind, lhs, rhs=0) -> bool:
    """Whether ``lhs (kind) rhs`` holds at every size >= 1: decided by symshape
    (:func:`~symshape.dims.decide`) where it is a relation of one size, else as sympy evaluates
    it. (The relation is built unevaluated first: sympy's own evaluation asks its assumptions of
    ``lhs - rhs``, milliseconds on a "same" pad's floors, and decides nothing decide() does not.)
    Cached: a stage's blocks, and the sides of a branch, pad by the same amounts."""
    settled = settle(kind(lhs, rhs, evaluate=False))
    if settled is DEPENDS:  # proven to hold at some sizes only: sympy cannot do better
        return False
    if settled is not None:
        return settled
    return kind(lhs, rhs) is sympy.true


def _amount(value, ctx: Context):
    """A padding amount: an int, or an integer size expression whose sign is the same at every
    size (decided); anything else is refused to this rule (torch's meta kernel decides then)."""
    if isinstance(value, (int, sympy.Integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, sympy.Expr) and value.free_symbols and (integer_polynomial(value) or value.is_integer is not False):
        value = canonical(value)
        if _always(sympy.Ge, value) or _always(sympy.Le, value):
            return value
        ctx.unsupported(f"pad amount {value} is negative at some sizes and positive at others")
    return as_int(value, "pad", ctx)


def _nonpositive(p) -> bool:
    """Whether an amount crops (or is 0) at every size: an int <= 0 or an expression decided so."""
    return p <= 0 if isinstance(p, int) else _always(sympy.Le, p)


def _negative(p) -> bool:
    """Whether an amount may crop: an int < 0, or an expression that is <= 0 at every size."""
    return p < 0 if isinstance(p, int) else _nonpositive(p)


def _constant_rank(ctx: Context, x: SymTensor, k: int, pad: tuple[int, ...], layer: str) -> None:
    if k > x.ndim:
        ctx.refuse(f"{layer}: padding length {len(pad)} needs at least {k} dims, gets {x.ndim}D {x}")


def _batched_rank(mode: str):
    """reflect/replicate/circular pad ``k`` dims of a ``k + 1``D or ``k + 2``D input."""
    def check(ctx: Context, x: SymTensor, k: int, pad: tuple[int, ...], layer: str) -> None:
        if x.ndim not in (k + 1, k + 2):
            ctx.refuse(f"{layer}: {mode} padding of {k} dims expects a {k + 1}D or {k + 2}D input, "
                       f"gets {x.ndim}D {x}")
        if mode == "circular" and any(_negative(p) and not isinstance(p, int) for p in pad):
            ctx.unsupported("negative circular padding by an amount that depends on the input size")
        if mode in ("reflect", "replicate"):
            for i in range(x.ndim - k - 1 if x.ndim == k + 2 else 0, x.ndim):
                ctx.at_least(x.shape[i], 1, f"{mode} padding needs non-empty dims, gets {{lhs}} at dim {i}")
    return check


def _constant_dim(ctx: Context, size, left, right, unit: str, k: int) -> None:
    """Negative padding crops: ``in + min(left, 0) + min(right, 0) >= 0``."""
    crop = sum(p for p in (left, right) if _negative(p))
    if crop != 0:
        ctx.at_least(size, -crop, f"negative padding ({left}, {right}) crops {-crop} {unit}, gets {{lhs}}")


def _slice(size: int, start: int, end: int) -> tuple[int, int]:
    """``at::slice``'s start and length (step 1): a negative bound counts from the end, then both
    are clamped into the dim."""
    start, end = start + size if start < 0 else start, end + size if end < 0 else end
    start = min(max(start, 0), size)
    return start, min(max(end, start), size) - start


def circular_outcome(n: int, left: int, right: int, lead_small: bool) -> str | None:
    """What torch's ``_pad_circular`` does on one padded dim of ``n`` entries, step by step:
    None where it runs, else which check fails -- ``wrap`` (an amount above ``n``), ``negative``
    (``n + left + right < 0``), ``shape`` (a copy between slices whose lengths differ, neither
    1) or ``overlap`` (a copy within the output between partly overlapping slices, which torch
    detects only where they are dense: ``lead_small``, every dim before this one of size < 2,
    and neither is empty)."""
    if not (left <= n and right <= n):
        return "wrap"
    out = n + left + right
    if out < 0:
        return "negative"
    _, into = _slice(out, max(left, 0), out - max(right, 0))  # the input into the output's middle
    _, taken = _slice(n, max(-left, 0), n - max(-right, 0))
    if not (taken == into or taken == 1):
        return "shape"
    copies = ((0, left, out - left - max(right, 0), out - max(right, 0), left > 0),  # the left edge
              (out - right, out, max(left, 0), max(left, 0) + right, right > 0))  # the right edge
    for a_start, a_end, b_start, b_end, done in copies:
        if not done:
            continue
        sa, la = _slice(out, a_start, a_end)
        sb, lb = _slice(out, b_start, b_end)
        if not (lb == la or lb == 1):
            return "shape"
        dense = lead_small or (la == out and lb == out) or (la < 2 and lb < 2 and out < 2)
        if dense and la and lb and sa < sb + lb and sb < sa + la and not (sa == sb and la == lb):
            return "overlap"
    return None


_CIRCULAR_ERRORS = {
    "wrap": "Padding value causes wrapping around more than once ({lhs} {unit}, circular padding {pad})",
    "negative": "Negative padding value is resulting in an empty dimension ({lhs} {unit}, circular padding {pad})",
    "shape": "circular padding {pad} of {lhs} {unit} copies between slices of different lengths (torch: "
             "The size of tensor a must match the size of tensor b)",
    "overlap": "circular padding {pad} of {lhs} {unit} copies between overlapping parts of its output (torch: some "
               "elements of the input tensor and the written-to tensor refer to a single memory location)",
}


def _circular_negative(ctx: Context, x: SymTensor, out: list, pad: tuple[int, ...], k: int) -> None:
    """Negative circular padding, exactly as torch computes it (:func:`circular_outcome`): each
    padded dim's sizes at which a check fails are finitely many (every check compares the size
    with sums of the amounts, so from ``2*(|left| + |right|) + 2`` entries on none fails), each
    a requirement; an overlap only where every earlier dim of the output has size < 2 and the
    copy is not empty (where torch can tell)."""
    for j in range(k):
        dim = x.ndim - 1 - j
        left, right = pad[2 * j], pad[2 * j + 1]
        if left >= 0 and right >= 0:
            continue
        n = x.shape[dim]
        unit = spatial_unit(k - 1 - j, k) if k <= 3 else "entries"
        lead = product(out[:dim])
        others = product([*out[:dim], *out[dim + 1:]])
        dense_only = Requirement(lead, ">=", 2, "an earlier dim of 2 or more: torch cannot tell the overlap",
                                 unless=Requirement(others, "==", 0, "an empty copy"))
        pad_text = (left, right)
        if max(left, right) > 0:
            ctx.at_least(n, max(left, right), _CIRCULAR_ERRORS["wrap"].format(lhs="{lhs}", unit=unit, pad=pad_text))
        if left + right < 0:
            ctx.at_least(n, -left - right, _CIRCULAR_ERRORS["negative"].format(lhs="{lhs}", unit=unit, pad=pad_text))
        values = [int(n)] if n.is_Integer else range(2 * (abs(left) + abs(right)) + 2)
        for v in values:
            anyway, dense = circular_outcome(v, left, right, False), circular_outcome(v, left, right, True)
            if dense in (None, "wrap", "negative"):
                continue
            reason = _CIRCULAR_ERRORS[anyway or dense].format(lhs="{lhs}", unit=unit, pad=pad_text)
            ctx.require(n, "!=", v, reason, unless=None if anyway else dense_only)


def _circular_dim(ctx: Context, size, left, right, unit: str, k: int) -> None:
    """``left <= in`` and ``right <= in`` (a negative amount: :func:`_circular_negative`)."""
    if isinstance(left, int) and isinstance(right, int) and min(left, right) < 0:
        return
    for p in ((max(left, right),) if isinstance(left, int) and isinstance(right, int) else (left, right)):
        ctx.at_least(size, p,
                     f"circular padding ({left}, {right}) wraps around more than once below {{rhs}} {unit}, gets {{lhs}}")


def _edge_dim(mode: str):
    """reflect (``left < in``, ``right < in``) and replicate: the padded size must stay >= 1 (>= 0
    with several padded dims, whose joint check is in :func:`pad_shape`)."""
    def check(ctx: Context, size, left, right, unit: str, k: int) -> None:
        if isinstance(left, int) and isinstance(right, int):
            if mode == "reflect" and max(left, right) > 0:
                ctx.at_least(size, max(left, right) + 1, f"reflection padding ({left}, {right}) needs more than "
                                                         f"{max(left, right)} {unit}, gets {{lhs}}")
        elif mode == "reflect":
            for p in (left, right):
                ctx.at_least(size, p + 1, f"reflection padding ({left}, {right}) needs more than {p} {unit}, "
                                          f"gets {{lhs}}")
        if _negative(canonical(left + right)) and canonical(left + right) != 0:
            least = 1 if k == 1 else 0  # with several padded dims, torch lets one be empty
            ctx.at_least(size, least - left - right,
                         f"{mode} padding ({left}, {right}) needs at least {{rhs}} {unit}, gets {{lhs}}")
    return check


#: mode -> (the check of the input's rank, the check of each padded dim)
_MODES = {
    "constant": (_constant_rank, _constant_dim),
    "reflect": (_batched_rank("reflect"), _edge_dim("reflect")),
    "replicate": (_batched_rank("replicate"), _edge_dim("replicate")),
    "circular": (_batched_rank("circular"), _circular_dim),
}


def pad_shape(ctx: Context, x: SymTensor, pad: tuple[int, ...], mode: str, layer: str) -> SymTensor:
    """``out = in + left + right`` for each padded dim; ``pad`` is F.pad's (last dim first) list."""
    if mode not in _MODES:
        ctx.unsupported(f"padding mode {mode!r}")
    if len(pad) % 2:
        ctx.refuse(f"{layer}: padding length must be divisible by 2, gets {len(pad)}")
    k = len(pad) // 2
    rank_check, dim_check = _MODES[mode]
    rank_check(ctx, x, k, pad, layer)
    if mode == "circular" or all(_nonpositive(p) for p in pad):
        ctx.memory_format = "contiguous" if mode == "circular" else "none"
    shape = list(x.shape)
    outs = []
    derived: list[Padded] = []
    for j in range(k):
        dim = x.ndim - 1 - j
        left, right = pad[2 * j], pad[2 * j + 1]
        size = shape[dim]
        unit = spatial_unit(k - 1 - j, k) if k <= 3 else "entries"
        dim_check(ctx, size, left, right, unit, k)
        out = canonical(size + left + right)
        outs.append(out)
        derived.insert(0, Padded(unit, size, left, right, mode, out))  # F.pad lists the last dim first
        shape[dim] = out
    for d in derived:
        ctx.derive(d)
    if mode == "circular" and any(isinstance(p, int) and p < 0 for p in pad):
        _circular_negative(ctx, x, shape, pad, k)
    shrinking = all(_negative(canonical(left + right)) and canonical(left + right) != 0
                    for left, right in zip(pad[::2], pad[1::2]))
    if mode in ("reflect", "replicate") and k > 1 and shrinking:
        # torch's check is "some padded dim of the output is non-empty"; with all of them >= 0
        # that is "their sum is at least 1" (a dim that does not shrink is never empty)
        ctx.at_least(sum(outs), 1, f"{mode} padding {pad} leaves every padded dim empty")
    return SymTensor(tuple(shape))


@module_rule(nn.ZeroPad1d, nn.ZeroPad2d, nn.ZeroPad3d, nn.ConstantPad1d, nn.ConstantPad2d,
             nn.ConstantPad3d, mode="constant", memory_format=_FOLLOWS)
@module_rule(nn.ReflectionPad1d, nn.ReflectionPad2d, nn.ReflectionPad3d, mode="reflect", memory_format=_FOLLOWS)
@module_rule(nn.ReplicationPad1d, nn.ReplicationPad2d, nn.ReplicationPad3d, mode="replicate", memory_format=_FOLLOWS)
@module_rule(nn.CircularPad1d, nn.CircularPad2d, nn.CircularPad3d, mode="circular", memory_format=_FOLLOWS)
def pad(ctx: Context, module: nn.Module, x, *, mode: str) -> SymTensor:
    """``out = in + left + right`` on each padded dim (module.padding is F.pad's order)."""
    x = tensor_arg(x, "input", ctx)
    pads = tuple(as_int(p, "padding", ctx) for p in module.padding)
    return pad_shape(ctx, x, pads, mode, type(module).__name__)


@function_rule(torch.constant_pad_nd, memory_format=_FOLLOWS)
def constant_pad_nd(ctx: Context, input, pad, value=0) -> SymTensor:
    """``out = in + left + right`` on each dim ``pad`` names (F.pad's constant mode)."""
    x = tensor_arg(input, "input", ctx)
    pads = tuple(_amount(p, ctx) for p in pad)
    return pad_shape(ctx, x, pads, "constant", "constant_pad_nd")


@function_rule(F.pad, memory_format=_FOLLOWS)
def pad_function(ctx: Context, input, pad, mode: str = "constant", value=None) -> SymTensor:
    """``out = in + left + right`` on each dim ``pad`` names, last dim first."""
    x = tensor_arg(input, "input", ctx)
    pads = tuple(_amount(p, ctx) for p in pad)
    return pad_shape(ctx, x, pads, mode, "F.pad")
