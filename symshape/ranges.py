"""The least and greatest entry of integer tensors computed from sizes.

Relative-position models index a table whose length depends on the input with an index tensor
they compute from sizes (SAM's ``rel_pos[(arange(q)[:, None] - arange(k)[None, :] + k - 1).long()]``).
torch checks every index against the table's length; symshape cannot see the entries, but it can
follow their exact extremes:

    arange(start, end):   start … end - 1   (integer start and step)
    full(shape, v):       v … v   (also zeros, ones, and their _like and new_ forms)
    a constant:           the least and greatest of its entries (int64 or int32; a buffer too, on
                          the CPU: RoBERTa's 514 zero ``token_type_ids`` are 0 … 0)
    t.sum(d), t.cumsum(d): n*c, and c … n*c, of a t whose every entry is c ≥ 0 (n: dim d's size)
    t + c, t - c, t * c:  shifted or scaled by a number or a size (c ≥ 0 for *)
    t // c:               the extremes' quotients (c > 0 a number, or a size dividing lo and hi + 1;
                          also ``torch.div(t, c, rounding_mode="floor")``)
    a + b, a - b:         lo_a ± … exactly, where a and b vary along different dims (a broadcast
                          of every pair: each combination of entries occurs), or one of them is
                          one number (a tensor of ones: OPT's ``cumsum(mask, 1) * mask``)
    views, expand, flip, repeat, .long(), .float(), .to(device):  unchanged
    gather, index_select, take, any [...]:  c … c, of a t whose every entry is c
    stack, cat:           the least and greatest of the parts' extremes
    clamp(t, a, b):       the extremes clamped (clamp is monotone)
    meshgrid:             each grid the extremes of its vector
    (arange(q)[:, None] * max(k / q, 1.0) - arange(k)[None, :] * max(q / k, 1.0)
     + (k - 1) * max(q / k, 1.0)).long():   0 … RelPosReach(q, k), the scaled relative-position
                          index (MViTv2, SAM), computed in float32 as torch does (symshape.dims)

Only an exact range is kept (both ends attained wherever the tensor is not empty); anything else
drops it, and an index whose entries symshape cannot bound is refused where the size it indexes
depends on the input.

The indices torch's sorting and selecting ops return have a bound instead (``index_bound``: every
entry in ``0 … bound - 1``, not necessarily attained): ``argsort``, ``sort``, ``topk``,
``kthvalue``, ``argmax``/``argmin``, ``max``/``min``/``median``/``mode``/``cummax``/``cummin``
along a dim of size ``n`` give indices below ``n`` (MAE's ``argsort(noise)[:, :keep]`` into a
``gather``); ``t % c`` lies below a positive ``c``, and ``t // c`` of a ``t`` below ``b`` below
``(b - 1) // c + 1`` (a detector's best scores of ``L`` queries by ``C`` classes, each divided by
``C``: below ``L``). The ops that only move or repeat entries keep it (views, ``expand``, ``repeat``,
``flip``, any ``[...]``, ``.long()``), and so do the ops that pick entries of it (``gather``,
``index_select``: the bound of the tensor picked from, not of the index); any other drops it, but for a bound the op's own rule
made (a max pooling's indices).

An in-place op writes into the storage its views share (``idx[:2].fill_(L)`` changes ``idx``):
:func:`shares_storage` and :func:`writes_in_place` tell the engine which results may share their
argument's storage and which calls write into it, and :func:`overwritten` is what is left known
of each such tensor.
"""

from __future__ import annotations

import functools
import inspect
import math
import operator
from dataclasses import replace
from typing import Any

import sympy
import torch

from .dims import (DoubleProduct, RelPosReach, SizeRatio, as_expr, canonical, decide, float_extremum, floor_div,
                   integer_polynomial, maximum, minimum, product)
from .bounds import bounds as form_bounds, compose, leaf, padded, reduced, subset, unpadded
from .tensor import Pieces, SymTensor, tuple_like

__all__ = ["entry_bounds", "propagate"]

_SHAPE_METHODS = frozenset({"view", "reshape", "unsqueeze", "flatten", "expand", "expand_as", "permute",
                            "transpose", "contiguous", "clone", "t", "float", "double", "long", "int",
                            "detach", "unflatten", "flip", "roll", "repeat", "tile"})
#: dtypes that hold every integer entry a size can make exactly (``.to(dtype)``)
_EXACT_DTYPES = (torch.int64, torch.float64, torch.float32, torch.int32)
_SHAPE_FUNCTIONS = (torch.unsqueeze, torch.flatten, torch.reshape, torch.permute, torch.transpose, torch.clone,
                    torch.flip, torch.roll, torch.tile)
_ADD = (operator.add, torch.add, "add", "__add__", "__radd__")
_SUB = (operator.sub, torch.sub, "sub", "__sub__")
_MUL = (operator.mul, torch.mul, "mul", "__mul__", "__rmul__")
_FLOORDIV = (operator.floordiv, torch.floor_divide, "floor_divide", "__floordiv__")
_MOD = (operator.mod, torch.remainder, "remainder", "__mod__")


def _number(v) -> sympy.Expr | None:
    """An exact integer-valued scalar (an int, an integral float, a size, a constant ratio), else None."""
    if isinstance(v, bool):
        return None
    if isinstance(v, SizeRatio):
        v = v.expr
    if isinstance(v, (float, sympy.Float)):  # (a Python float or a sympy one: 13.0 from (k - 1)*1.0)
        if not float(v).is_integer():
            return None
        v = int(v)
    e = sympy.Integer(v) if isinstance(v, int) else v
    if not isinstance(e, sympy.Expr) or not e.is_integer:
        return None
    return e


def _range(v) -> tuple | None:
    if isinstance(v, SymTensor):
        if v.entry_range is not None:
            return v.entry_range
        if v.values is not None and v.dtype in (torch.int64, torch.int32):  # a constant's entries
            entries = _flat_values(v.values)
            if entries:
                return sympy.Integer(min(entries)), sympy.Integer(max(entries))
        return None
    e = _number(v)
    return None if e is None else (e, e)


def entry_bounds(t: SymTensor) -> tuple | None:
    """``(lo, hi)``: every entry of the integer or bool tensor ``t`` lies in ``lo … hi`` (sympy,
    finite), from what symshape knows of its entries: exact extremes or known entries first, then
    a form's bounds, an index bound, a bool's ``0 … 1``; None where it knows no finite bounds (a
    float tensor's entries are data to symshape)."""
    if not isinstance(t.dtype, torch.dtype) or t.dtype.is_floating_point or t.dtype.is_complex:
        return None
    found = [_range(t), form_bounds(t.entry_form)[:2] if t.entry_form is not None else None,
             (sympy.Integer(0), t.index_bound - 1) if t.index_bound is not None else None,
             (sympy.Integer(0), sympy.Integer(1)) if t.dtype == torch.bool else None]
    return next(((as_expr(lo), as_expr(hi)) for lo, hi in filter(None, found)
                 if not any(as_expr(e).has(sympy.oo, -sympy.oo, sympy.zoo) for e in (lo, hi))), None)


def _flat_values(values) -> list:
    if isinstance(values, tuple):
        return [e for v in values for e in _flat_values(v)]
    return [values]


def _apart(a: SymTensor, b: SymTensor) -> bool:
    """Every pair of entries occurs in ``a ± b``: at each (right-aligned) dim at most one of them
    has a size other than 1."""
    n = max(a.ndim, b.ndim)
    sa = (1,) * (n - a.ndim) + a.shape
    sb = (1,) * (n - b.ndim) + b.shape
    return all(x == 1 or y == 1 for x, y in zip(sa, sb))


def _arange(args, kwargs) -> tuple | None:
    """``arange(end)``, ``arange(start, end, step)``, each also by keyword as torch takes them
    (``arange(end=bs)``, ``arange(0, end=n)``)."""
    names = ("end",) if len(args) == 1 and "end" not in kwargs else ("start", "end", "step")[:len(args)]
    given = {**dict(zip(names, args)), **{k: kwargs[k] for k in ("start", "end", "step") if k in kwargs}}
    if "end" not in given or len(args) > 3:
        return None  # (torch raises)
    start, end, step = (_number(given.get(k, d)) for k, d in (("start", 0), ("end", None), ("step", 1)))
    if start is None or end is None or step is None:
        return None
    if step != 1:
        return None  # with a step the last entry is start + step*(count - 1): not followed
    return start, end - 1


def _binary(which: str, a, b) -> tuple | None:
    ra, rb = _range(a), _range(b)
    if ra is None or rb is None:
        return None
    if isinstance(a, SymTensor) and isinstance(b, SymTensor) and not _apart(a, b):
        # a tensor whose every entry is one number is that number (OPT's positions:
        # cumsum(mask, 1) * mask of a mask of ones); else the pairs that occur are not known
        if rb[0] == rb[1]:
            b = rb[0]
        elif ra[0] == ra[1]:
            a = ra[0]
        else:
            return None
    if which == "add":
        return ra[0] + rb[0], ra[1] + rb[1]
    if which == "sub":
        return ra[0] - rb[1], ra[1] - rb[0]
    # a product: by a scalar that is never negative
    if isinstance(a, SymTensor) and isinstance(b, SymTensor):
        return None
    (lo, hi), c = (ra, rb[0]) if isinstance(a, SymTensor) else (rb, ra[0])
    if not c.is_nonnegative:
        return None
    return lo * c, hi * c


def _floor_divided(r: tuple | None, c) -> tuple | None:
    """The exact extremes of ``t // c`` for ``t`` of exact extremes ``r`` and a positive ``c``: the
    floor is monotone, so they are the extremes' quotients -- where symshape can write them (a
    constant ``c``, or ``c`` a size that divides ``lo`` and ``hi + 1``: ``arange(H*W) // W`` is
    ``0 … H - 1``, the row of each position)."""
    if r is None or c is None:
        return None
    lo, hi = r
    if c.is_Integer:
        return (floor_div(lo, int(c)), floor_div(hi, int(c))) if c > 0 else None
    if not _at_least(c, 1):
        return None
    q_lo, q_hi = sympy.cancel(lo / c), sympy.cancel((hi + 1) / c)
    if not (integer_polynomial(q_lo) and integer_polynomial(q_hi)):
        return None
    return q_lo, q_hi - 1


def _whole_slice(i) -> bool:
    """``:``, and ``0:`` (OPT's ``positions[:, cache_length:]`` with no cache), of any dim."""
    return isinstance(i, slice) and i.start in (None, 0) and i.stop is None and i.step in (None, 1) \
        and not isinstance(i.start, bool) and not isinstance(i.step, bool)


def _unwrapped(f):
    return getattr(f, "__wrapped_factory__", f)


def _transfer(target, kind: str, args, kwargs) -> tuple | None:
    # (while symshape traces, torch.arange is a wrapper around the builtin: symshape.rebinding.FACTORIES)
    if kind == "function" and _unwrapped(target) is _unwrapped(torch.arange):
        return _arange(args, kwargs)
    if kind == "function" and _unwrapped(target) in (_unwrapped(torch.tensor), _unwrapped(torch.as_tensor)) \
            and len(args) == 1 and kwargs.get("dtype") in (None, *_EXACT_DTYPES):
        e = _number(args[0])  # (torch.tensor(L): one entry, L; DeBERTa's attention span)
        return None if e is None else (e, e)
    filled = _filled(target, kind, args, kwargs)
    if filled is not None:
        return filled
    if kind == "function" and _op_name(target, kind) == "pad":
        return _pad_range(args, kwargs)
    counted = _counted(_op_name(target, kind), args, kwargs)
    if counted is not None:
        return counted
    name = target
    if kind == "method" and (name == "long" and not args[1:] or name == "to" and args[1:] == (torch.long,)) \
            and isinstance(args[0], SymTensor) and args[0].float_form is not None and _range(args[0]) is None:
        return _rel_pos_range(args[0].float_form)  # (where the ratios are 1, the integer extremes are kept)
    if kind == "method" and name == "to":
        dtypes = [a for a in (*args[1:], *kwargs.values()) if isinstance(a, torch.dtype)]
        # (``t.to(device)``: the dtype, and the entries, as they are; ``t.to(other)``: other's dtype)
        same = not dtypes and not any(isinstance(a, SymTensor) for a in (*args[1:], *kwargs.values()))
        keeps = same or len(dtypes) == 1 and dtypes[0] in _EXACT_DTYPES
        return _range(args[0]) if keeps and isinstance(args[0], SymTensor) else None
    if _op_name(target, kind) in _SELECTING and args and isinstance(args[0], SymTensor):
        r = _range(args[0])  # entries picked from a tensor whose every entry is one number: that number
        return r if r is not None and r[0] == r[1] else None
    if (kind == "method" and name in _SHAPE_METHODS) or (kind == "function" and target in _SHAPE_FUNCTIONS):
        return _range(args[0]) if args and isinstance(args[0], SymTensor) else None
    if name is operator.getitem and len(args) == 2 and isinstance(args[0], SymTensor):
        index = args[1] if isinstance(args[1], tuple) else (args[1],)
        whole = all(i is None or i is Ellipsis or _whole_slice(i) for i in index)
        r = _range(args[0])  # a part may miss the extremes, but for a tensor of one number
        return r if whole or r is not None and r[0] == r[1] else None
    if len(args) == 2 and not kwargs:
        for which, ops in (("add", _ADD), ("sub", _SUB), ("mul", _MUL)):
            if name in ops:
                return _binary(which, *args)
        if name in _FLOORDIV and isinstance(args[0], SymTensor):
            return _floor_divided(_range(args[0]), _number(args[1]))
    if len(args) == 1 and name in (operator.neg, torch.neg, "neg", "__neg__"):
        r = _range(args[0])
        return None if r is None else (-r[1], -r[0])
    if kind == "function" and target in (torch.stack, torch.cat, torch.concat) and args \
            and isinstance(args[0], (list, tuple)) and args[0]:
        parts = args[0]
        ranges = [_range(t) if isinstance(t, SymTensor) else None for t in parts]
        if any(r is None for r in ranges):
            return None
        # each part's extremes are among the whole's, where it is not empty: all parts are
        # (stack: one shape), or each is at every size
        if target is not torch.stack and not all(decide(sympy.Ge(t.numel(), 1)) is True or t.numel().is_positive
                                                 for t in parts):
            return None
        return functools.reduce(minimum, [r[0] for r in ranges]), functools.reduce(maximum, [r[1] for r in ranges])
    if name in (torch.clamp, torch.clip, "clamp", "clip", "clamp_min", torch.clamp_min) \
            and args and isinstance(args[0], SymTensor):
        return _clamped(_range(args[0]), args[1:], kwargs, name in ("clamp_min", torch.clamp_min))
    return None


#: ops whose result's entries are entries of their first argument, picked by an index tensor
#: (RoBERTa's ``torch.gather(token_type_ids_buffer, 1, positions)``)
_SELECTING = frozenset({"gather", "take_along_dim", "index_select", "take"})


def _counted(name: str | None, args, kwargs) -> tuple | None:
    """``t.sum(d)`` and ``t.cumsum(d)`` of a tensor whose every entry is one ``c >= 0``: ``n*c``,
    and ``c … n*c`` (``n`` the size of dim ``d``, at least 1); ``t.sum()``: ``numel*c``. (The
    RoBERTa-style positions ``cumsum(ones_like(ids), 1)``: ``1 … L``.)"""
    if name not in ("sum", "cumsum") or not args or not isinstance(args[0], SymTensor):
        return None
    x, r = args[0], _range(args[0])
    if r is None or r[0] != r[1] or not r[0].is_nonnegative or set(kwargs) - {"dim", "dtype", "keepdim"}:
        return None
    n = _counted_along(name, x, args, kwargs)
    if n is None:
        return None
    if not _at_least(n, 1):
        return None  # (an empty dim: no entries, or a sum of 0)
    c = r[0]
    return (c * n, c * n) if name == "sum" else (c, c * n)


#: factories filling a tensor with one number, and where it stands among their arguments (the
#: methods, ``t.new_full(shape, v)``, count ``t`` as the first)
_FULL = {"full": 1, "full_like": 1, "new_full": 2}
#: ... and those whose number is their name's
_CONSTANT_FILLS = {"zeros": 0, "zeros_like": 0, "new_zeros": 0, "ones": 1, "ones_like": 1, "new_ones": 1}
_NEW = frozenset({"new_full", "new_zeros", "new_ones"})


def _filled(target, kind: str, args, kwargs) -> tuple | None:
    """``full(shape, v)``, ``full_like(t, v)``, ``t.new_full(shape, v)``, ``zeros``, ``ones``
    and theirs: every entry is that number (in a dtype that holds it exactly)."""
    name = target if kind == "method" else _op_name(target, kind) if kind == "function" else None
    if (name in _NEW) != (kind == "method"):
        return None
    if name in _CONSTANT_FILLS:
        e = sympy.Integer(_CONSTANT_FILLS[name])
        return e, e
    at = _FULL.get(name)
    if at is None:
        return None
    v = args[at] if len(args) > at else kwargs.get("fill_value")
    dtype = kwargs.get("dtype")
    if dtype is not None and dtype not in _EXACT_DTYPES:
        return None
    e = _number(v)
    return None if e is None else (e, e)


def _meshgrid(args, grids: tuple, sized: bool) -> tuple:
    """Each grid of ``meshgrid(a, b, ...)`` holds every entry of its vector: the same extremes."""
    vectors = list(args[0]) if len(args) == 1 and isinstance(args[0], (list, tuple)) else list(args)
    if len(vectors) != len(grids):
        return tuple_like(grids, (_marked(replace(g, entry_range=None), sized) if isinstance(g, SymTensor) else g
                                  for g in grids))
    return tuple_like(grids, (_marked(replace(g, entry_range=_range(v)), sized) if isinstance(g, SymTensor) else g
                              for g, v in zip(grids, vectors)))


def _clamped(r: tuple | None, args, kwargs, only_min: bool) -> tuple | None:
    """``clamp(t, min, max)`` is monotone: its extremes are the extremes' clamps."""
    if r is None:
        return None
    low = args[0] if args else kwargs.get("min")
    high = None if only_min else (args[1] if len(args) > 1 else kwargs.get("max"))
    lo, hi = r
    for bound, keep in ((low, maximum), (high, minimum)):
        if bound is None:
            continue
        c = _number(bound)
        if c is None:
            return None
        lo, hi = keep(lo, c), keep(hi, c)
    return lo, hi


# -- the scaled relative-position index ------------------------------------------------------------
#
# MViTv2's ``cal_rel_pos_type`` (and SAM's and ViTDet's ``get_rel_pos``) index a table of relative
# positions between a grid of q queries and one of k keys with
#
#     dist = arange(q)[:, None] * max(k / q, 1.0) - arange(k)[None, :] * max(q / k, 1.0)
#     dist += (k - 1) * max(q / k, 1.0)
#     table[dist.long()]
#
# in float32. Each float32 step is followed (``SymTensor.float_form``): ``("scaled", n, r)`` for
# ``arange(n) * r`` (any view of it), ``("difference", q, r_q, k, r_k)`` for two of those apart,
# ``("shifted", q, r_q, k, r_k, c)`` for that plus ``c``; ``.long()`` of exactly the idiom has the
# extremes 0 and :class:`~symshape.dims.RelPosReach`. Anything else is not followed (an index
# computed so is refused, as before).

#: views that keep every entry of a float32 tensor of the idiom as it is
_FORM_VIEWS = frozenset({"unsqueeze", "contiguous", "clone"})
_IADD = (operator.iadd, "add_", "__iadd__")


def _ratio(v) -> sympy.Expr | None:
    """A float's exact value (a ratio of sizes, or a Python float), else None."""
    if isinstance(v, SizeRatio) and not isinstance(v, DoubleProduct):
        return v.expr
    if isinstance(v, float) and v == v and abs(v) != float("inf"):
        return sympy.Rational(*v.as_integer_ratio())
    return None


def _arange_length(t) -> sympy.Expr | None:
    """``n`` where ``t`` is an integer tensor holding ``0 … n - 1`` along its one dim of size
    other than 1 (``arange(n)`` and its unsqueezed views), else None."""
    if not isinstance(t, SymTensor) or t.dtype not in (torch.int64, torch.int32) or t.entry_range is None:
        return None
    long = [n for n in t.shape if n != 1]
    if len(long) != 1 or t.entry_range != (0, canonical(long[0] - 1)):
        return None
    return long[0]


def _float_form(target, kind: str, args, kwargs) -> tuple | None:
    """The float_form of a call's result (see above), or None. (Asked of every op: a form starts
    only at a product, and any other step needs an argument that has one.)"""
    if kwargs or not args:
        return None
    if target in _MUL:
        if len(args) != 2 or torch.get_default_dtype() is not torch.float32:
            return None
        vector, ratio = args if isinstance(args[0], SymTensor) else args[::-1]
        n, r = _arange_length(vector), _ratio(ratio)
        return None if n is None or r is None else ("scaled", n, r)
    forms = [t.float_form if isinstance(t, SymTensor) else None for t in args[:2]]
    if all(f is None for f in forms):
        return None
    if target in _FORM_VIEWS or kind == "function" and target is torch.unsqueeze:
        return forms[0]
    if len(args) != 2:
        return None
    a, b = args
    if target in _SUB and all(f is not None and f[0] == "scaled" for f in forms) and _apart(a, b):
        return ("difference", *forms[0][1:], *forms[1][1:])
    shift = _ratio(b) if not isinstance(b, int) or isinstance(b, bool) else sympy.Integer(b)
    if (target in _ADD or target in _IADD) and forms[0] is not None and forms[0][0] == "difference" \
            and shift is not None:
        return ("shifted", *forms[0][1:], shift)
    return None


def _rel_pos_range(form: tuple) -> tuple | None:
    """``.long()`` of a float32 tensor of the idiom: its exact extremes (0 and RelPosReach), where
    the ratios and the shift are exactly the idiom's; else None."""
    if form[0] != "shifted":
        return None
    _, q, q_ratio, k, k_ratio, shift = form
    if (q_ratio, k_ratio, shift) != _idiom(q, k):
        return None
    return sympy.Integer(0), RelPosReach(q, k)


def _idiom(q: sympy.Expr, k: sympy.Expr) -> tuple:
    """The idiom's ratios and shift for grids of ``q`` and ``k``, as the trace computes them
    (``max(k / q, 1.0)``: symshape.arithmetic's ``float_extremum``)."""
    one = sympy.Integer(1)
    k_ratio = float_extremum(sympy.Max, (q / k, one))
    return float_extremum(sympy.Max, (k / q, one)), k_ratio, (k - 1) * k_ratio


def propagate(target, kind: str, args, kwargs, value: Any, family: str | None = None) -> Any:
    """``value`` (a call's result) with its exact entry range where the call keeps one, and
    without any range a rule passed along otherwise; with the bound of the indices it returns or
    keeps; marked ``sized`` where its entries may depend on the sizes (see the module's doc);
    a permutation only as ``sort``, ``argsort`` return it (or an item of their pair).
    ``family``: the rule that computed it (``"meta"``: torch's meta kernels)."""
    if kwargs.get("rounding_mode") == "floor" and kind != "module" and _op_name(target, kind) in ("div", "divide"):
        # (a floor division, as ultralytics writes it: ``torch.div(index, nc, rounding_mode="floor")``)
        target = "floor_divide" if kind == "method" else torch.floor_divide
        kwargs = {k: v for k, v in kwargs.items() if k != "rounding_mode"}
    value = _propagated(target, kind, args, kwargs, value, family)
    if kind != "module" and (_op_name(target, kind) in _PERMUTING
                             or target is operator.getitem and args and isinstance(args[0], (list, tuple))):
        return value
    return _each(value, lambda t: replace(t, permutation=False) if t.permutation else t)


#: ops whose indices of a 1-D tensor are a permutation of its positions
_PERMUTING = frozenset({"sort", "argsort"})


def _propagated(target, kind: str, args, kwargs, value: Any, family: str | None) -> Any:
    name = _op_name(target, kind)
    if kind != "module":
        value = _bounded(name, target, args, kwargs, value)
    sized = _sized(family if kind != "module" else None, name, args, kwargs)
    if kind == "function" and target is torch.meshgrid and isinstance(value, tuple):
        return _meshgrid(args, value, sized)
    if target is operator.getitem and args and isinstance(args[0], (list, tuple)):
        return value  # an item of a list or tuple: that tensor, as it is
    if not isinstance(value, SymTensor) or kind == "module":
        # (a tensor a module run whole returns may be marked already: symshape.meta's account)
        return _each(value, lambda t: _marked(
            replace(t, entry_range=None, float_form=None, entry_form=None)
            if t.entry_range is not None or t.float_form is not None or t.entry_form is not None else t,
            sized or t.sized))
    form = _float_form(target, kind, args, kwargs)
    if form != value.float_form:
        value = replace(value, float_form=form)
    entries = _entry_form(name, args, kwargs, value)
    numbers = value.entry_range is not None and not any(isinstance(v, SymTensor) for v in (*args, *kwargs.values()))
    # (a 0-dim tensor of two numbers: its rule computed its one entry, symshape.rules.combine.numbers_tensor)
    r = value.entry_range if numbers else _transfer(target, kind, args, kwargs)
    if r is None or not all(isinstance(e, sympy.Expr) and e.is_integer for e in r):
        if value.entry_range is not None or value.entry_form is not entries:
            value = replace(value, entry_range=None, entry_form=entries)
        return _marked(value, sized)
    lo, hi = canonical(r[0]), canonical(r[1])
    return replace(value, entry_range=(lo, hi), sized=sized or bool(lo.free_symbols or hi.free_symbols),
                   entry_form=entries if entries is not None or value.dtype is None else leaf(lo, hi, value.dtype))


def _entry_form(name: str | None, args, kwargs, value: SymTensor):
    """The form of an elementwise call's result (symshape.bounds), where one of its tensors has
    entries symshape knows something of, or integer entries that may depend on the sizes; a
    leaf of the bounds of its first tensor's entries for an op that only moves, repeats or picks
    them (``squeeze``, ``expand``, ``x[i]``, ``gather``: DeBERTa's clamped relative positions
    into a ``gather``); else None."""
    tensors = [a for a in args if isinstance(a, SymTensor)]
    # (a pad of integers is followed whatever they are: a count of them may skip the padding)
    counted = name == "pad" and value.dtype in (torch.int64, torch.int32, torch.bool)
    if not name or not tensors or value.dtype is None or not (counted or any(_known(t) for t in tensors)) \
            or any(isinstance(v, SymTensor) for v in kwargs.values()):
        return None
    values = [_operand_form(a) if isinstance(a, SymTensor) else a for a in args]
    if any(v is None for v, a in zip(values, args) if isinstance(a, SymTensor)):
        return None
    if name == "pad" and isinstance(args[0], SymTensor) and args[0].dtype == value.dtype:
        return _padded(values[0], args, kwargs, value.dtype)
    if name in ("any", "all") and isinstance(args[0], SymTensor) and value.dtype == torch.bool:
        count = _counted_along(name, args[0], args, kwargs)  # (the entries each answer reduces)
        nonempty = count is not None and _at_least(count, 1)
        return reduced(name, values[0], value.dtype, nonempty)
    form = compose(name, values, kwargs, value.dtype)
    if form is None and (name in _KEEP_ENTRIES or name in _SELECTING) and isinstance(args[0], SymTensor) \
            and args[0].dtype == value.dtype and value.dtype in _FORM_DTYPES:
        return subset(values[0], value.dtype)  # (within its bounds, evaluated when an index asks)
    return form


#: the dtypes whose entries symshape.bounds follows
_FORM_DTYPES = (torch.int64, torch.int32, torch.bool, torch.float32, torch.float64)


def _pad_arguments(args, kwargs) -> tuple:
    """``F.pad(x, pad, mode, value)``'s amounts (sizes, or None where one is no integer), mode,
    and value as torch writes it into x's dtype (None where symshape does not tell)."""
    x, amounts = args[0], args[1] if len(args) > 1 else kwargs.get("pad")
    mode = kwargs.get("mode", args[2] if len(args) > 2 else "constant")
    value = kwargs.get("value", args[3] if len(args) > 3 else None)
    value = _written_as(0 if value is None else value, x.dtype) if isinstance(value, (int, float, type(None))) \
        else None
    amounts = [_number(a) for a in amounts] if isinstance(amounts, (list, tuple)) else None
    return (None if amounts is None or None in amounts else amounts), mode, value


def _pad_range(args, kwargs) -> tuple | None:
    """``F.pad(x, amounts, value=v)`` of an x with exact extremes, in the constant mode: the
    least and greatest of those and ``v``, exactly where x is not empty and the pad adds an entry
    at every size (every amount at least 0, one of them more)."""
    x = args[0] if args else None
    r = _range(x) if isinstance(x, SymTensor) else None
    if r is None or x.dtype not in (torch.int64, torch.int32):
        return None
    amounts, mode, value = _pad_arguments(args, kwargs)
    if mode != "constant" or value is None or amounts is None or len(amounts) > 2 * x.ndim \
            or not all(_at_least(a, 0) for a in amounts):
        return None
    sizes = list(x.shape)
    for i, a in enumerate(amounts):
        sizes[len(sizes) - 1 - i // 2] += a
    grown = sympy.expand(product(sizes) - product(x.shape))
    if not (_at_least(product(x.shape), 1) and _at_least(grown, 1)):
        return None
    return minimum(r[0], sympy.Integer(value)), maximum(r[1], sympy.Integer(value))


def _at_least(e, c) -> bool:
    """``e >= c`` at every size, for an integer ``e`` (``c``: 0 or 1; a product of sizes is at
    least 1): by sympy's signs, else :func:`decide`."""
    e = canonical(e)
    return bool((e - c).is_nonnegative or c <= 1 and e.is_integer and e.is_positive) or decide(sympy.Ge(e, c)) is True


def _written_as(value, dtype):
    """A number as torch writes it into a tensor of ``dtype`` (truncated to an integer, nonzero
    as a bool's True, rounded to a float's precision), or None where torch refuses it (past the
    dtype's range) or symshape does not tell."""
    if dtype == torch.bool:
        return bool(value)
    if dtype in (torch.int64, torch.int32):
        info = torch.iinfo(dtype)
        if isinstance(value, float) and not (math.isfinite(value) and info.min <= math.trunc(value) <= info.max):
            return None
        return int(value) if info.min <= int(value) <= info.max else None
    out = float(torch.tensor(value, dtype=torch.float64).to(dtype))
    return out if math.isfinite(out) or not math.isfinite(value) else None


def _padded(form, args, kwargs, dtype):
    """``F.pad(x, pad, mode, value)``'s form: in the constant mode, x's entries and ``value`` (0
    where None; where an amount is 0 it adds none: a bound), else x's entries only."""
    amounts, mode, value = _pad_arguments(args, kwargs)
    if dtype not in _FORM_DTYPES or mode != "constant":
        return subset(form, dtype) if dtype in _FORM_DTYPES and mode in ("reflect", "replicate", "circular") else None
    if value is None:
        return None
    return padded(form, value, dtype, args[0].shape, amounts is not None and all(_at_least(a, 0) for a in amounts))


def _known(t: SymTensor) -> bool:
    return t.entry_form is not None or t.entry_range is not None or t.index_bound is not None \
        or (t.values is not None and t.dtype in (torch.int64, torch.int32)) \
        or (t.sized and isinstance(t.dtype, torch.dtype) and not t.dtype.is_floating_point)


def _operand_form(t: SymTensor):
    """``t``'s form as an operand of an elementwise call: its own, or a leaf of what is known of
    its entries; None where its dtype is not known. (Broadcast or not: see symshape.bounds.)"""
    form = t.entry_form
    if form is None:
        if not isinstance(t.dtype, torch.dtype):
            return None
        r = _range(t)
        if r is not None:
            return leaf(r[0], r[1], t.dtype)
        if t.dtype == torch.bool:
            return leaf(0, 1, t.dtype)
        if t.index_bound is not None:
            return leaf(0, t.index_bound - 1, t.dtype)
        if t.dtype.is_floating_point:
            return leaf(-math.inf, math.inf, t.dtype, nan=True)
        return leaf(-sympy.oo, sympy.oo, t.dtype)
    return form


#: rules whose numbers are entries of their result (``i * L``, ``arange(L)``, ``torch.tensor([L])``)
_VALUE_FAMILIES = frozenset({"elementwise", "elementwise_method", "elementwise3", "elementwise_in_place",
                             "masked_fill", "masked_fill_", "arange", "linspace", "tensor_of_data", "eye", "setitem"})
#: ops on torch's meta kernels whose numbers are entries of their result (any other's numbers are
#: sizes: ``zeros(L)``, ``roll(x, L)``)
_VALUE_OPS = frozenset({"arange", "linspace", "logspace", "full", "full_like", "new_full", "fill_", "fill",
                        "tensor", "as_tensor", "scalar_tensor", "randperm", "randint", "tril_indices", "triu_indices",
                        "add", "sub", "mul", "div", "true_divide", "floor_divide", "remainder", "fmod", "pow", "where",
                        "clamp", "clip", "maximum", "minimum", "rsub", "addcmul", "addcdiv", "lerp", "__add__",
                        "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__", "__rtruediv__",
                        "__floordiv__", "__rfloordiv__", "__mod__", "__pow__", "__rpow__", "add_", "sub_", "mul_",
                        "div_", "clamp_", "clip_", "clamp_min", "clamp_max", "clamp_min_", "clamp_max_",
                        "index_fill", "index_fill_", "masked_fill", "masked_fill_", "__setitem__", "index_put",
                        "index_put_", "put_", "floor_divide_", "remainder_", "pow_"})


#: Python's operators whose aten namesakes carry no pointwise tag, and the ops they are
_OPERATORS = {"__and__": "bitwise_and", "__or__": "bitwise_or", "__xor__": "bitwise_xor", "__rand__": "bitwise_and",
              "__ror__": "bitwise_or", "__rxor__": "bitwise_xor", "__invert__": "bitwise_not"}


def pointwise(target, kind: str) -> bool:
    """Whether a call of ``target`` (a function, or a method's name) is of an aten op torch tags
    pointwise (see :func:`_pointwise`)."""
    return kind in ("function", "method") and _pointwise(_op_name(target, kind))


@functools.lru_cache(maxsize=None)
def _pointwise(name: str | None) -> bool:
    """Whether ``name`` (a method or function, in place or not) is an aten op torch tags
    pointwise: each entry of its result is computed from the entries and numbers it is given,
    so a size given as a number is in the entries (``idx | L``, ``torch.fmax(i, L)``)."""
    if not name:
        return False
    name = _OPERATORS.get(name, name)
    dunder = name.startswith("__") and name.endswith("__")
    base = name[2:-2] if dunder else name.rstrip("_")
    packet = getattr(torch.ops.aten, name, None) if dunder else None
    if packet is None:
        packet = getattr(torch.ops.aten, base, None) if base and not base.startswith("_") else None
    if packet is None or not hasattr(packet, "overloads"):
        return False
    return any(torch.Tag.pointwise in getattr(packet, o).tags for o in packet.overloads())


#: reductions whose entries depend on how many entries they reduce (``ones(L).sum()`` is ``L``)
_COUNTING = frozenset({"sum", "nansum", "prod", "cumsum", "cumprod", "count_nonzero", "mean", "nanmean", "var",
                       "std", "var_mean", "std_mean", "logsumexp", "logcumsumexp", "norm", "trace", "bincount",
                       "histc"})


def _counts_sizes(name: str | None, args, kwargs) -> bool:
    """A reduction over a tensor with a dim whose size depends on the input, where what it counts
    are not the input's own values: a count of nonzero entries, or a sum of integers or of known
    entries (a mask's ``cumsum``, ``ones(L).sum()``). Its entries may depend on the sizes. (The
    reduced dims are not told apart: any such dim counts. A sum of float activations is data,
    as the activations are.)"""
    if name not in _COUNTING:
        return False
    x = args[0] if args else kwargs.get("input")
    if not isinstance(x, SymTensor) or all(as_expr(d).is_Integer for d in x.shape):
        return False
    integral = x.dtype is not None and not (x.dtype.is_floating_point or x.dtype.is_complex)
    return name == "count_nonzero" or integral or x.entry_range is not None or x.values is not None


def _sized(family: str | None, name: str | None, args, kwargs) -> bool:
    """Whether a call's result may have entries that depend on the sizes: one of its tensors does,
    a number it takes as an entry is a size (an op in _VALUE_OPS, or one torch tags pointwise), or
    it counts entries along a dim of such a size (``cumsum``, ``sum``)."""
    if _counts_sizes(name, args, kwargs):
        return True
    value_op = family in _VALUE_FAMILIES or (family == "meta" and (name in _VALUE_OPS or _pointwise(name)))
    for v in _leaves((args, kwargs)):
        if isinstance(v, SymTensor):
            if v.sized:
                return True
        elif value_op and _a_size(v):
            return True
    return False


def _a_size(v) -> bool:
    """Whether ``v`` is a number that depends on the sizes (``L``, ``L / 2``)."""
    if isinstance(v, SizeRatio):
        v = v.expr
    return isinstance(v, sympy.Expr) and not v.is_Number and bool(v.free_symbols)


def writes_sized(family: str | None, target, kind: str, args, kwargs) -> bool:
    """Whether the entries an in-place op writes may depend on the sizes (``idx[:] = L``,
    ``idx.add_(L)``, ``idx.copy_(arange(L))``)."""
    return _sized(family, _op_name(target, kind), args, kwargs)


def overwritten(value: Any, sized: bool) -> Any:
    """A tensor (or each tensor of a tuple or list) after an in-place op wrote into its storage
    (itself, or a view of it: ``idx[:2].fill_(L)``): no entries, range or bound known any longer,
    and ``sized`` where the write's entries are."""

    def after(t: SymTensor) -> SymTensor:
        if t.entry_range is None and t.index_bound is None and t.values is None and t.float_form is None \
                and t.entry_form is None and not t.permutation and (t.sized or not sized):
            return t
        return replace(t, entry_range=None, index_bound=None, values=None, float_form=None, entry_form=None,
                       permutation=False, sized=t.sized or sized)

    return _each(value, after)


def written_whole(target: Any, index: Any, item: Any) -> SymTensor | None:
    """``target`` after ``target[index] = item`` where that writes each of its entries: a 1-D
    ``target`` indexed by a permutation of its positions (``inverse[perm] = arange(n)``), each
    of ``item``'s entries ``0 … bound - 1``: bounded so (else None: nothing known)."""
    if not (isinstance(target, SymTensor) and isinstance(index, SymTensor) and index.permutation
            and target.ndim == 1 and index.ndim == 1 and target.shape == index.shape
            and target.dtype in (torch.int64, torch.int32)):
        return None
    r = _range(item)
    bound = r[1] + 1 if r is not None and _at_least(r[0], 0) \
        else _operand_bound(item)
    if bound is None or isinstance(item, SymTensor) and item.ndim > 1:
        return None
    return replace(target, index_bound=canonical(bound))


# -- which tensors share storage --------------------------------------------------------------------
#
# An in-place op writes into a tensor's storage, which its views share: ``idx[:2].fill_(L)`` changes
# ``idx``. What is known of the entries of every tensor that may share that storage is dropped (and
# each is ``sized`` where the write is). Which results may share their argument's storage is
# over-approximated: a view, and every op that may return its argument itself (``.to()`` of its own
# dtype, ``contiguous()`` of a contiguous tensor, dropout in eval mode, ``nn.Identity``).

#: methods whose result may share the storage of the tensor they are called on
_SHARING_METHODS = frozenset({
    "view", "view_as", "reshape", "reshape_as", "flatten", "unflatten", "squeeze", "unsqueeze", "transpose",
    "permute", "t", "narrow", "select", "expand", "expand_as", "unfold", "split", "split_with_sizes", "chunk",
    "unbind", "tensor_split", "hsplit", "vsplit", "dsplit", "diagonal", "movedim", "moveaxis", "swapaxes",
    "swapdims", "as_strided", "detach", "real", "imag", "contiguous", "to", "type", "type_as", "long", "int",
    "float", "double", "half", "bfloat16", "bool", "short", "char", "byte", "cpu", "cuda", "alias", "conj",
    "resolve_conj", "resolve_neg", "positive", "align_to", "rename", "refine_names", "as_subclass"})
#: functions (torch's, torch.nn.functional's) whose result may share its first argument's storage,
#: beyond the methods above (a function of one of those names is asked of them too)
_SHARING_FUNCTIONS = frozenset({
    "view_as_real", "view_as_complex", "broadcast_to", "atleast_1d", "atleast_2d", "atleast_3d", "adjoint",
    "dropout", "alpha_dropout", "feature_alpha_dropout", "dropout1d", "dropout2d", "dropout3d"})
#: tensor attributes that share the tensor's storage
_SHARING_ATTRIBUTES = frozenset({"data", "T", "mT", "H", "mH", "real", "imag"})
#: modules whose output may be their input itself, or a view of it
_SHARING_MODULES = (torch.nn.Identity, torch.nn.Flatten, torch.nn.Unflatten, torch.nn.modules.dropout._DropoutNd)


def shares_storage(target, kind: str, module, args) -> bool:
    """Whether a call's result may share the storage of its first argument (a tensor, or for
    ``[i]``, a tuple of tensors: the split pieces of one)."""
    if kind == "module":
        return isinstance(module, _SHARING_MODULES) or writes_in_place(target, kind, module, args, {})
    if kind == "method":
        return target in _SHARING_METHODS or writes_in_place(target, kind, module, args, {})
    if target is operator.getitem:
        return True
    if target is getattr:
        return len(args) > 1 and args[1] in _SHARING_ATTRIBUTES
    name = getattr(_unwrapped(target), "__name__", None)  # (torch.Tensor.view(x, ...) as x.view(...))
    return name in _SHARING_FUNCTIONS or name in _SHARING_METHODS or writes_in_place(target, kind, module, args, {})


def writes_in_place(target, kind: str, module, args, kwargs) -> bool:
    """Whether a call writes into its first argument: ``x[i] = v``, an in-place method
    (``x.add_(v)``, ``x += v``) or function (``torch.relu_``), ``inplace=True``, a module built
    with ``inplace=True``."""
    if kind == "module":
        return getattr(module, "inplace", False) is True
    if kind == "method":
        return target == "__setitem__" or isinstance(target, str) and target.endswith("_") \
            and not target.startswith("_") and target != "requires_grad_"
    if target is operator.setitem:
        return True
    name = getattr(_unwrapped(target), "__name__", "")
    if not isinstance(name, str):
        return False
    if name.endswith("_") and not name.startswith("_") and name != "requires_grad_":
        return True
    return _inplace_argument(target, args, kwargs)


def writes_nothing(target, kind: str, args, kwargs) -> bool:
    """Whether an in-place write selects its entries by a bool mask that is never true, so that
    it writes none (Longformer's ``mask[attention_mask == 2] = max``, where the attention mask's
    entries lie in ``0 … 1``): ``x[mask] = v``, ``x[..., mask] = v``, ``x.masked_fill_(mask, v)``,
    ``x.masked_scatter_(mask, v)``, ``x.index_put_((mask,), v)``."""
    if kind == "module" or len(args) < 2 or kwargs:
        return False
    name = "__setitem__" if target is operator.setitem else _op_name(target, kind)
    if name in ("__setitem__", "index_put_"):
        index = args[1]
        picks = index if isinstance(index, (tuple, list)) else (index,)
    elif name in ("masked_fill_", "masked_scatter_"):
        picks = (args[1],)
    else:
        return False
    return any(_never_true(p) for p in picks)


def _never_true(t) -> bool:
    if not isinstance(t, SymTensor) or t.dtype != torch.bool:
        return False
    ends = entry_bounds(t)
    return ends is not None and ends[1] == 0


def _inplace_argument(target, args, kwargs) -> bool:
    """``inplace=True`` given to a function that takes it (``F.relu(x, inplace=True)``, or by
    position: ``F.relu(x, True)``)."""
    if kwargs.get("inplace") is True:
        return True
    if not any(a is True for a in args):
        return False
    try:
        at = _inplace_position(target)
    except TypeError:  # (an unhashable callable)
        return False
    return at is not None and len(args) > at and args[at] is True


@functools.lru_cache(maxsize=None)
def _inplace_position(target) -> int | None:
    try:
        parameters = list(inspect.signature(target).parameters)
    except (TypeError, ValueError):
        return None
    return parameters.index("inplace") if "inplace" in parameters else None


def without_forms(value: Any) -> Any:
    """``value``'s tensors without their entry forms: the output of a module call reused for
    another call, which is another tensor (a form stands for one tensor's entries)."""
    return _each(value, lambda t: replace(t, entry_form=None) if t.entry_form is not None else t)


def marked_sized(value: Any) -> Any:
    """``value``'s tensors, each marked as having entries that may depend on the sizes (what a
    module run whole on torch's meta kernels returns from an ``arange`` of a size)."""
    return _each(value, lambda t: _marked(t, True))


def _leaves(value) -> list:
    out, stack = [], [value]
    while stack:
        v = stack.pop()
        if isinstance(v, (list, tuple)):
            stack.extend(v)
        elif isinstance(v, dict):
            stack.extend(v.values())
        else:
            out.append(v)
    return out


def _marked(t, sized: bool):
    if not isinstance(t, SymTensor) or t.sized == sized:
        return t
    return replace(t, sized=sized)


#: ops returning indices along a dim (alone, or as the second of a pair), and where their dim
#: stands among the positional arguments (after the tensor)
_INDICES = {"argsort": 1, "sort": 1, "topk": 2, "kthvalue": 2, "argmax": 1, "argmin": 1, "max": 1, "min": 1,
            "median": 1, "nanmedian": 1, "mode": 1, "cummax": 1, "cummin": 1}
#: ... whose dim defaults to the last (the others without a dim reduce over every entry)
_LAST_BY_DEFAULT = frozenset({"argsort", "sort", "topk", "kthvalue", "mode"})
#: ops that only move, repeat or select entries: their result's entries are the input's
_KEEP_ENTRIES = _SHAPE_METHODS | {"repeat", "tile", "flip", "fliplr", "flipud", "roll", "narrow", "select", "squeeze",
                                  "movedim", "moveaxis", "swapaxes", "swapdims", "chunk", "split", "tensor_split",
                                  "unbind", "to", "type", "cpu", "requires_grad_", "__getitem__"}


def _op_name(target, kind: str) -> str | None:
    if kind == "method":
        return target if isinstance(target, str) else None
    if target is operator.getitem:
        return "__getitem__"
    name = getattr(target, "__name__", None)
    if isinstance(name, str) and name and getattr(operator, name, None) is target:  # operator.lshift: __lshift__
        return f"__{name.rstrip('_')}__"
    # (while symshape traces, torch's factories are wrappers around them: symshape.rebinding.FACTORIES)
    target = _unwrapped(target)
    if target is torch.nn.functional.pad:
        return "pad"
    name = getattr(target, "__name__", None)
    return name if isinstance(name, str) and _unwrapped(getattr(torch, name, None)) is target else None


def _index_dim_size(name: str, args, kwargs) -> sympy.Expr | None:
    """The size of the dim ``name``'s indices point along, or None where it returns none."""
    x = args[0] if args else kwargs.get("input")
    if not isinstance(x, SymTensor):
        return None
    at = _INDICES[name]
    dim = args[at] if len(args) > at else kwargs.get("dim", -1 if name in _LAST_BY_DEFAULT else None)
    if dim is None:
        return None if name not in ("argmax", "argmin") else canonical(x.numel())
    if not isinstance(dim, int) or isinstance(dim, bool):
        return None  # (max(x, y): no indices)
    if x.ndim == 0:
        return sympy.Integer(1)
    try:
        return x.shape[x.dim(dim)]
    except IndexError:
        return None


def _with_bound(value, bound):
    if isinstance(value, SymTensor):
        return replace(value, index_bound=bound) if value.index_bound != bound else value
    return value


#: reductions whose every entry is one of the input's (the values of ``max(x, dim)``: _INDICES)
_EXTREMA = frozenset({"max", "min", "amax", "amin"})
#: conversions of a bool tensor to integers: entries 0 and 1, below 2
_TO_INTEGERS = frozenset({"long", "int", "short", "to", "type"})
#: counts: sums of entries along a dim (every entry at least 0 and below a bound: at most
#: ``n*(bound - 1)``), and ``count_nonzero`` (at most ``n``)
_COUNTS = frozenset({"sum", "cumsum", "count_nonzero"})


#: the sums and products :func:`_arithmetic_bound` bounds
_BOUND_ARITHMETIC = frozenset({"add", "__add__", "__radd__", "mul", "__mul__", "__rmul__"})


def _operand_bound(v) -> sympy.Expr | None:
    """Every entry of ``v`` lies in ``0 … bound - 1``: a tensor's index bound (2 for a bool
    tensor), a number or size ``c >= 0`` (``c + 1``); None where nothing bounds it so."""
    if isinstance(v, SymTensor):
        return sympy.Integer(2) if v.dtype == torch.bool else v.index_bound
    c = _number(v)
    if c is None or not _at_least(c, 0):
        return None
    return c + 1


def _arithmetic_bound(name: str, args, kwargs) -> sympy.Expr | None:
    """The bound of ``a + b`` or ``a * b`` where both operands are bounded (:func:`_operand_bound`)
    and one is a bounded tensor: entries of ``0 … A - 1`` and ``0 … B - 1`` add up to at most
    ``A + B - 2`` and multiply to at most ``(A - 1)*(B - 1)``. RoBERTa numbers its positions so:
    ``(cumsum(mask, 1) + past) * mask + padding_idx``, below ``L + 1 + padding_idx``."""
    if kwargs or len(args) != 2 or not any(isinstance(a, SymTensor) and a.index_bound is not None for a in args):
        return None
    bounds = [_operand_bound(a) for a in args]
    if any(b is None for b in bounds):
        return None
    a, b = bounds
    return canonical(a + b - 1) if name in ("add", "__add__", "__radd__") else canonical((a - 1) * (b - 1) + 1)


def _count_bound(name: str, args, kwargs) -> sympy.Expr | None:
    """A bound on the entries of a count along a dim of size ``n`` (the whole tensor without a
    dim): ``(x > 2).sum(-1)`` lies in ``0 … n``, below ``n + 1`` -- a mask's count into
    ``one_hot``, checked as a sort's indices are (past the size, whether one reaches it is data)."""
    x = args[0] if args and isinstance(args[0], SymTensor) else None
    if x is None or set(kwargs) - {"dim", "keepdim", "dtype"}:
        return None
    if name == "count_nonzero" or x.dtype == torch.bool:
        most = sympy.Integer(1)
    elif x.index_bound is not None:
        most = x.index_bound - 1
    else:
        return None
    n = _counted_along(name, x, args, kwargs)
    return None if n is None else canonical(n * most + 1)


def _counted_along(name: str, x: SymTensor, args, kwargs) -> sympy.Expr | None:
    """How many entries each entry of a count (``sum``, ``cumsum``, ``count_nonzero``) of ``x``
    adds up: its dim's size, or ``x``'s every entry without a dim (not for ``cumsum``, which
    needs one); None for several dims."""
    dim = args[1] if len(args) > 1 else kwargs.get("dim")
    sizes = unpadded(x.entry_form) or x.shape  # (a pad of zeros adds only zeros)
    if dim is None and name != "cumsum":
        return canonical(product(sizes))
    if isinstance(dim, int) and not isinstance(dim, bool) and x.ndim > 0:
        try:
            return sizes[x.dim(dim)]
        except IndexError:
            return None
    return None


def _bounded(name: str | None, target, args, kwargs, value: Any) -> Any:
    if name in _COUNTS and isinstance(value, SymTensor):
        bound = _count_bound(name, args, kwargs)
        if bound is not None:
            return _with_bound(value, bound)
    if name in _TO_INTEGERS and args and isinstance(args[0], SymTensor) and args[0].dtype == torch.bool \
            and isinstance(value, SymTensor) and value.dtype in (torch.int64, torch.int32, torch.int16):
        return _with_bound(value, sympy.Integer(2))  # (x > 2).long(): 0 and 1
    if name in _INDICES:
        n = _index_dim_size(name, args, kwargs)
        if n is not None:
            whole = name in _PERMUTING and isinstance(args[0], SymTensor) and args[0].ndim == 1
            if isinstance(value, SymTensor) and value.dtype in (torch.int64, None) and name in ("argsort", "argmax",
                                                                                                "argmin"):
                return replace(_with_bound(value, n), permutation=whole)
            if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], SymTensor):
                indices = replace(_with_bound(value[1], n), permutation=whole)
                # (the values are entries of the input: below its bound, where it has one)
                bound = args[0].index_bound if isinstance(args[0], SymTensor) else None
                return type(value)([_with_bound(value[0], bound), indices])
    if name in _EXTREMA and args and isinstance(args[0], SymTensor) and args[0].index_bound is not None \
            and isinstance(value, SymTensor) and not any(isinstance(a, SymTensor)
                                                         for a in (*args[1:], *kwargs.values())):
        return _with_bound(value, args[0].index_bound)  # (x.max(), x.amax(d): one of the bounded entries)
    if (name in _MOD or target in _MOD) and len(args) == 2 and not kwargs and isinstance(args[0], SymTensor) and isinstance(value, SymTensor):
        c = _number(args[1])  # t % c lies in 0 … c - 1 for a positive c, whatever t
        if c is not None and _at_least(c, 1) and value.dtype in (torch.int64, None):
            return _with_bound(value, c)
    if (name in _FLOORDIV or target in _FLOORDIV) and len(args) == 2 and not kwargs and isinstance(value, SymTensor) \
            and isinstance(args[0], SymTensor) and args[0].index_bound is not None \
            and value.dtype in (torch.int64, torch.int32):
        c = _number(args[1])  # entries in 0 … b - 1 divided by a positive c: 0 … (b - 1) // c
        if c is not None and _at_least(c, 1):
            most = args[0].index_bound - 1
            most = floor_div(most, int(c)) if c.is_Integer else sympy.floor(most / c)
            return _with_bound(value, canonical(most + 1))
    if name in _BOUND_ARITHMETIC and isinstance(value, SymTensor) and value.dtype in (torch.int64, torch.int32):
        bound = _arithmetic_bound(name, args, kwargs)
        if bound is not None:
            return _with_bound(value, bound)
    if (name in _SELECTING or name == "__getitem__") and args and isinstance(args[0], SymTensor) \
            and args[0].index_bound is not None and isinstance(value, SymTensor) \
            and value.dtype in (torch.int64, torch.int32):
        return _with_bound(value, args[0].index_bound)  # entries picked from bounded ones (not the index's)
    inputs = [a for a in (*args, *kwargs.values()) if isinstance(a, SymTensor)]
    kept = {t.index_bound for t in inputs if t.index_bound is not None}
    if name == "type_as" and len(args) == 2 and isinstance(args[0], SymTensor) and args[0].index_bound is not None \
            and isinstance(value, SymTensor) and value.dtype in (torch.int64, torch.int32):
        return _with_bound(value, args[0].index_bound)  # (cumsum(mask).type_as(mask): an integer dtype)
    if name in _KEEP_ENTRIES and len(kept) == 1 and isinstance(args[0] if args else None, SymTensor) \
            and args[0].index_bound is not None:
        if name == "to" and not all(a in (torch.int64, torch.int32) for a in (*args[1:], *kwargs.values())
                                    if isinstance(a, torch.dtype)):
            return _stripped(value, kept)
        return _each(value, lambda t: _with_bound(t, args[0].index_bound))
    return _stripped(value, kept)


def _stripped(value, inherited: set):
    """``value`` without the bounds it took from its inputs (a rule's ``with_shape`` passes them
    on): the entries of ``i + 5`` or ``i.sum()`` are not below ``i``'s bound. A bound the rule made
    itself stays."""
    if not inherited:
        return value
    return _each(value, lambda t: _with_bound(t, None) if t.index_bound in inherited else t)


def _each(value, f):
    """``f`` applied to each tensor of ``value`` (a tensor, or a tuple or list of them)."""
    if isinstance(value, SymTensor):
        return f(value)
    if type(value) is tuple or isinstance(value, Pieces) or type(value).__module__ == "torch.return_types":
        return tuple_like(value, (_each(v, f) for v in value))
    if isinstance(value, list):
        return [_each(v, f) for v in value]
    return value
