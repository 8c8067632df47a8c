"""Ops on several tensors: broadcasting arithmetic (``+``, ``*`` ...), torch.cat, torch.stack.

Broadcasting (per dim, right-aligned, a missing dim counts as 1)::

    out = b if a == 1 else a        and torch needs  a == b  or  a == 1  or  b == 1

When the two sizes are different expressions that rule is kept whole (a Piecewise), because a
size such as ``floor(H/4)`` may well be 1 at some input; against a fixed size other than 1 (a
position embedding of 14 x 14) the result is that size wherever torch broadcasts. ``torch.cat`` needs every other dim
equal and adds the sizes along ``dim``; ``torch.stack`` needs equal shapes and inserts a dim.
"""

from __future__ import annotations

import operator

import sympy
import torch

from ..dims import as_expr, canonical, decide, equal_where, floor_div, smallest_value
from ..requirements import Requirement
from ..tensor import Pieces, Repeated, SymTensor
from .common import as_int, tensor_arg
from .registry import Context, function_rule, method_rule

__all__ = ["broadcast_shape", "numbers_tensor"]


def broadcast_shape(ctx: Context, a: SymTensor, b: SymTensor) -> SymTensor:
    n = max(a.ndim, b.ndim)
    sa = (sympy.Integer(1),) * (n - a.ndim) + a.shape
    sb = (sympy.Integer(1),) * (n - b.ndim) + b.shape
    out = []
    for i, (x, y) in enumerate(zip(sa, sb)):
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            reason = (f"the size of tensor a ({{lhs}}) must match the size of tensor b ({{rhs}}) "
                      f"at non-singleton dimension {i}")
            if x.is_Integer and y.is_Integer:
                ctx.never(reason.format(lhs=x, rhs=y))
                out.append(x)
            else:
                ctx.require(x, "broadcast", y, reason)
                if x.is_Integer or y.is_Integer:
                    # one side a fixed size other than 1 (a position embedding): wherever torch
                    # broadcasts at all, the other is 1 or equal to it, so the result is that size
                    out.append(x if x.is_Integer else y)
                else:
                    out.append(_broadcast_size(ctx, x, y))
    return SymTensor(tuple(out))


def _broadcast_size(ctx: Context, x: sympy.Expr, y: sympy.Expr) -> sympy.Expr:
    """The size two broadcastable sizes give: ``y`` where ``x`` is 1, else ``x``. Where one is
    never less than the other and the other is never 0 where torch runs this step (decided, or
    implied by the earlier requirements: a ResNet-D shortcut's ``floor((H + 5)/8)`` beside the
    main path's ``floor((H + 1)/8)``, which a pool before it keeps at least 1), that is the
    larger one -- equal sizes, or a 1 beside it -- and no case split to carry through the
    layers after it. (Beside a 0, a 1 broadcasts to 0: the smaller one.) Where one is never 1
    there, it is that one: the other is equal to it or 1."""
    if len(x.free_symbols | y.free_symbols) == 1 and not (x.has(sympy.Piecewise) or y.has(sympy.Piecewise)):
        for small, large in ((x, y), (y, x)):  # (unevaluated: sympy's own comparison is slow on long sizes)
            if (decide(sympy.Le(small, large, evaluate=False)) is True
                    and ctx.proves(sympy.Ge(small, 1, evaluate=False))):
                return large
    for side in (x, y):
        # a size never 1 where torch runs this step (``8*floor(h/8)``, a tiled window position
        # embedding beside ``h``): wherever torch broadcasts, the other is equal to it or 1, and
        # the result is that size (the other's 1 broadcasts to it, even to 0)
        if ctx.proves(sympy.Ne(side, 1, evaluate=False)):
            return side
    if equal_where(y, x, sympy.Eq(x, 1)):  # y is 1 too where x is: x, at every size
        return x
    if equal_where(x, y, sympy.Eq(y, 1)):  # (and the other way round: a causal mask's Min(8, T) beside T)
        return y
    return sympy.Piecewise((y, sympy.Eq(x, 1)), (x, True))


# (fx records ``x += y`` on traced values as operator.add: proxies have no in-place dunders)
_OPERATORS = (
    operator.add, operator.sub, operator.mul, operator.truediv, operator.floordiv, operator.pow,
    operator.eq, operator.ne, operator.lt, operator.le, operator.gt, operator.ge, operator.and_,
    operator.or_, operator.xor, operator.mod,
)
#: torch's functions of two operands: given two numbers (sizes), torch's own result (a 0-dim
#: tensor, or its refusal), where on Python numbers the operators above are size arithmetic
_TORCH_BINARY = (
    torch.add, torch.sub, torch.mul, torch.div, torch.maximum, torch.minimum, torch.eq, torch.ne,
    torch.lt, torch.le, torch.gt, torch.ge, torch.logical_and, torch.logical_or, torch.pow,
    torch.true_divide, torch.floor_divide,
)


@function_rule(*_OPERATORS, layout="elementwise")
@function_rule(*_TORCH_BINARY, on_sizes=True, layout="elementwise")
def elementwise(ctx: Context, a, b, *args, **kwargs):
    """Broadcast two tensors; a number broadcasts to anything. (Without a tensor among the
    operands an operator is size arithmetic, and a torch function gives a 0-dim tensor:
    :func:`numbers_tensor`.) Tuples of tensors are
    Python's: ``+`` joins two, ``*`` repeats one an int number of times. The result's dtype is
    torch's type promotion of the operands' (``arange(n) / 2`` is float32), and what torch
    refuses of the dtypes alone (``mask - mask`` of two bool tensors) it refuses at every size:
    both asked of torch itself (symshape.dtypes)."""
    if not isinstance(a, SymTensor) and not isinstance(b, SymTensor) and not args \
            and not isinstance(a, (tuple, list)) and not isinstance(b, (tuple, list)):
        return numbers_tensor(ctx, a, b, kwargs)
    if isinstance(a, SymTensor) and isinstance(b, SymTensor):
        return broadcast_shape(ctx, a, b)
    if isinstance(a, (tuple, list, Repeated)) or isinstance(b, (tuple, list, Repeated)):
        return _sequence_arithmetic(ctx, a, b)
    return a if isinstance(a, SymTensor) else b


#: a size's stand-in where torch is asked what it makes of the operands' kinds
_SIZE_STAND_IN = 3


def numbers_tensor(ctx: Context, a, b, kwargs: dict) -> SymTensor:
    """``torch.div(T, 8, rounding_mode="trunc") -> ()``: torch wraps two numbers in 0-dim tensors
    (Longformer's chunk counts). The dtype, and a refusal (``torch.maximum(3, 4)``, ``torch.sub(True,
    1)``), are torch's own on stand-ins of the operands' kinds (a size is an int); an integer result's
    value is known exactly, so it is a size where one is taken (``x.view(n, c, ...)``)::

        add: a + alpha*b    sub: a - alpha*b    mul: a*b    floor_divide, div(rounding_mode="floor"): floor(a/b)
        div(rounding_mode="trunc"): floor(a/b) where a >= 0 and b > 0 at every size

    An integer division needs ``b != 0`` (torch raises ZeroDivisionError)."""
    name = ctx.op.rsplit(".", 1)[-1]
    if set(kwargs) - {"alpha", "rounding_mode"} or not _plain_number(kwargs.get("alpha", 1)) \
            or kwargs.get("rounding_mode") not in (None, "floor", "trunc"):
        ctx.unsupported(f"{name} of numbers with the arguments {sorted(kwargs)}")
    if not _plain_number(a) or not _plain_number(b):
        ctx.unsupported(f"{name} of {type(a).__name__} and {type(b).__name__}")

    def stand_in(v):
        return _SIZE_STAND_IN if isinstance(v, sympy.Basic) and not v.is_Number else \
            int(v) if isinstance(v, sympy.Integer) else v

    try:
        out = getattr(torch, name)(stand_in(a), stand_in(b), **kwargs)
    except (TypeError, RuntimeError, ValueError) as e:
        ctx.refuse(f"torch.{name}: {str(e).splitlines()[0]}")
    sized = any(isinstance(v, sympy.Basic) and not v.is_Number for v in (a, b))
    value = _integer_value(ctx, name, a, b, kwargs) if not out.dtype.is_floating_point and out.dtype != torch.bool \
        else None
    if value is None:
        return SymTensor((), dtype=out.dtype, sized=sized)
    value = canonical(value)
    return SymTensor((), dtype=out.dtype, entry_range=(value, value), sized=sized)


def _plain_number(v) -> bool:
    return isinstance(v, (bool, int, float)) or isinstance(v, sympy.Basic) and (v.is_integer or v.is_Number)


def _integer_value(ctx: Context, name: str, a, b, kwargs: dict):
    a, b = as_expr(a), as_expr(b)  # (a bool is the int it is)
    alpha = as_expr(kwargs.get("alpha", 1))
    if name == "add":
        return a + alpha * b
    if name in ("sub", "subtract"):
        return a - alpha * b
    if name in ("mul", "multiply"):
        return a * b
    mode = "floor" if name == "floor_divide" else kwargs.get("rounding_mode")
    if name not in ("div", "divide", "floor_divide") or mode not in ("floor", "trunc"):
        return None
    ctx.require(b, "!=", 0, "ZeroDivisionError")
    if mode == "trunc" and not (_at_least(ctx, a, 0) and _at_least(ctx, b, 1)):
        ctx.unsupported(f"torch.{name}({a}, {b}, rounding_mode='trunc') where the operands may have "
                        "either sign")
    return floor_div(a, int(b)) if b.is_Integer and b > 0 else sympy.floor(a / b)


def _at_least(ctx: Context, v: sympy.Expr, bound: int) -> bool:
    low = smallest_value(v)
    return low is not None and low >= bound or ctx.proves(sympy.Ge(v, bound))


def _sequence_arithmetic(ctx: Context, a, b):
    counted = [v for v in (a, b) if isinstance(v, Repeated) or isinstance(v, Pieces) and any(v.requires)]
    if counted:
        ctx.unsupported("Python arithmetic on a tuple of tensors whose number depends on the input size")
    if ctx.op == "operator.add" and isinstance(a, (tuple, list)) and type(a) is type(b):
        return a + b
    if ctx.op == "operator.mul" and isinstance(a, (tuple, list)) != isinstance(b, (tuple, list)):
        times = b if isinstance(a, (tuple, list)) else a
        if isinstance(times, int) and not isinstance(times, bool):
            return a * b
    ctx.unsupported(f"{ctx.op} of a tuple of tensors and {type(b if isinstance(a, (tuple, list)) else a).__name__}")


@method_rule("add", "sub", "mul", "div", "maximum", "minimum", "eq", "ne",
             "lt", "le", "gt", "ge", "pow", layout="elementwise")
def elementwise_method(ctx: Context, self, other, *args, **kwargs):
    """``x.add(y)`` and friends: broadcast."""
    return elementwise(ctx, tensor_arg(self, "self", ctx), other)


@method_rule("add_", "sub_", "mul_", "div_", "floor_divide_", "remainder_", "pow_", "bitwise_and_", "bitwise_or_",
             "bitwise_xor_", layout=True)
def elementwise_in_place(ctx: Context, self, other, *args, **kwargs):
    """``x.add_(y)``, ``x += y`` and friends: ``out = x``, written in place, where ``y`` broadcasts
    to x's shape (each of its dims, right-aligned, equal to x's or 1, and no more dims than x:
    torch's "output with shape [1, 3, 1] doesn't match the broadcast shape [1, 3, 2]"). A number
    (a size, a ratio of sizes) broadcasts to anything. torch also refuses a result dtype that
    does not cast to x's (an int64 tensor ``+=`` a float one, or ``+= 0.5``), at every size: that
    check is torch's own, asked of empty tensors of the same dtypes (symshape.dtypes), as for
    every op of the elementwise rules."""
    x = tensor_arg(self, "self", ctx)
    _writable(ctx, x)
    if isinstance(other, SymTensor):
        _broadcasts_to(ctx, other, x, f"{ctx.op.split('.')[-1]}()")
    elif isinstance(other, (tuple, list, Repeated, Pieces)):
        ctx.unsupported(f"{ctx.op} of a tuple of tensors")
    return x


def _writable(ctx: Context, x: SymTensor) -> None:
    """An op that writes ``x`` in place: torch refuses to write an element twice (an expanded
    view, stride 0 on a dim of more than one entry); a tensor whose strides say it may be one is
    left to torch's meta kernel."""
    if not x.contiguous and x.strides is not None and any(s == 0 for s in x.strides):
        ctx.unsupported(f"{ctx.op} of a tensor that may be an expanded view (torch refuses to write an "
                        "element twice where its size is more than 1)")


def _broadcasts_to(ctx: Context, small: SymTensor, x: SymTensor, what: str) -> None:
    """Require ``small`` to broadcast to ``x``'s shape, which an in-place op keeps: no more dims,
    and each of its dims (right-aligned) equal to x's or 1."""
    if small.ndim > x.ndim:
        ctx.never(f"{what}: output with shape {list(x.shape)} doesn't match the broadcast shape of a "
                  f"{small.ndim}-dim operand")
        return
    for i, (m, n) in enumerate(zip(small.shape, x.shape[x.ndim - small.ndim:])):
        if m != n and m != 1:
            reason = (f"{what}: output with shape {list(x.shape)} doesn't match the broadcast shape: the "
                      f"operand's size ({{lhs}}) must be the output's ({{rhs}}) or 1 at dim {x.ndim - small.ndim + i}")
            ctx.require(m, "==", n, reason, unless=Requirement(m, "==", 1, reason))


def _probe(ctx: Context, call, *args, **kwargs) -> None:
    """torch's checks that do not depend on the sizes (dtypes, values), on small CPU tensors of
    the same dtypes: a refusal there is torch's at every size."""
    try:
        call(*args, **kwargs)
    except (RuntimeError, TypeError, ValueError) as e:
        ctx.never(str(e))


@function_rule(torch.addcmul, torch.addcdiv, torch.lerp, layout="elementwise")
@method_rule("addcmul", "addcdiv", "lerp", layout="elementwise")
def elementwise3(ctx: Context, *args, **kwargs):
    """Three tensors broadcast together: ``addcmul(x, t1, t2, value=)``, ``addcdiv``, ``lerp(x,
    end, weight)`` (its weight may be a number, which broadcasts to anything)."""
    if kwargs.get("out") is not None:
        ctx.unsupported(f"{ctx.op} with out=")
    operands = [*args, *(v for k, v in kwargs.items() if k not in ("value", "out"))]
    if len(operands) != 3:
        ctx.unsupported(f"{ctx.op} with {len(operands)} operands")
    if any(isinstance(v, (tuple, list, Repeated, Pieces)) for v in operands):
        ctx.unsupported(f"{ctx.op} of a tuple of tensors")
    must = 2 if ctx.op.endswith("lerp") else 3  # lerp's weight may be a number, no other operand
    for i, v in enumerate(operands[:must]):
        if not isinstance(v, SymTensor):
            ctx.refuse(f"{ctx.op.split('.')[-1]}(): argument {i} must be Tensor, not {type(v).__name__}")
    tensors = [v for v in operands if isinstance(v, SymTensor)]
    out = tensors[0]
    for t in tensors[1:]:
        out = broadcast_shape(ctx, out, t)
    return SymTensor(out.shape)


@function_rule(torch.masked_fill, layout=True)
@method_rule("masked_fill", layout=True)
def masked_fill(ctx: Context, self=None, mask=None, value=None, *args, **kwargs) -> SymTensor:
    """``x.masked_fill(mask, value)``: ``mask`` and ``x`` broadcast (``out = broadcast(x, mask)``),
    laid out contiguously (torch clones the expanded input contiguous, then fills it). Its other
    checks do not depend on the sizes -- a bool mask, a 0-dim value tensor, a value the dtype can
    hold (``-inf`` in an integer tensor is refused) -- and are torch's own: the op run once on
    0-dim CPU tensors of the same dtypes (an untracked dtype is float32, as on the meta path),
    where a refusal is torch's at every size. minGPT's causal mask,
    ``att.masked_fill(self.bias[:, :, :T, :T] == 0, float('-inf'))``, and Swin's shifted-window
    mask are this."""
    x, mask = _fill_arguments(ctx, self, mask, value, args, kwargs, "masked_fill")
    out = broadcast_shape(ctx, mask, x)
    return SymTensor(out.shape, dtype=x.dtype)


@method_rule("masked_fill_", layout=True)
def masked_fill_(ctx: Context, self, mask=None, value=None, *args, **kwargs) -> SymTensor:
    """``x.masked_fill_(mask, value)``: ``out = x``, where ``mask`` broadcasts to ``x``'s shape
    (each of its dims, right-aligned, equal to x's or 1, and no more dims than x); the other
    checks as :func:`masked_fill`'s. Written in place, so ``x`` must not be an expanded view (an
    element written twice): on a tensor of another layout the rule leaves it to torch's meta
    kernel."""
    x, mask = _fill_arguments(ctx, self, mask, value, args, kwargs, "masked_fill_")
    if not x.contiguous and x.strides is None:
        ctx.unsupported("masked_fill_ of a tensor whose strides symshape does not know (it may be an expanded "
                        "view, which torch refuses to write)")
    _writable(ctx, x)
    _broadcasts_to(ctx, mask, x, "masked_fill_()")
    return x


def _fill_arguments(ctx: Context, self, mask, value, args, kwargs, what: str) -> tuple[SymTensor, SymTensor]:
    """masked_fill's tensor and mask, after torch's checks that do not depend on the sizes, made
    on 0-dim CPU tensors of the same dtypes (a refusal there is torch's at every size)."""
    self = kwargs.pop("input", self)  # (torch.masked_fill(input=x, ...))
    mask = kwargs.pop("mask", mask)
    value = kwargs.pop("value", value)
    if args or kwargs or value is None:
        ctx.unsupported(f"{what} with other arguments than (mask, value)")
    x, mask = tensor_arg(self, "self", ctx), tensor_arg(mask, "mask", ctx)
    if isinstance(value, SymTensor):
        probe_value = torch.zeros((1,) * value.ndim, dtype=value.dtype or torch.float32)
    elif isinstance(value, sympy.Expr) and value.is_Integer:
        probe_value = int(value)
    elif isinstance(value, (bool, int, float, complex)):
        probe_value = value
    else:  # (a value computed from sizes: its magnitude may overflow the dtype at some sizes)
        ctx.unsupported(f"{what} with a value of type {type(value).__name__}")
    _probe(ctx, getattr(torch.zeros((), dtype=x.dtype or torch.float32), what),
           torch.zeros((), dtype=mask.dtype or torch.float32), probe_value)
    return x, mask


def _tensors(ctx: Context, tensors, what: str) -> list[SymTensor]:
    if not isinstance(tensors, (list, tuple)) or not tensors:
        ctx.refuse(f"{what} expects a non-empty list of tensors")
    if isinstance(tensors, Pieces) and any(tensors.requires) and what != "torch.cat":
        ctx.unsupported(f"{what} of chunks whose number depends on the input size")
    return [tensor_arg(t, "tensors", ctx) for t in tensors]


def _repeated(ctx: Context, tensors: Repeated, dim: int, what: str, extra: int = 0) -> int:
    """For torch.cat and torch.stack of unbind's or split's tensors whose number depends on the
    size: torch needs at least one; the dim, wrapped."""
    ctx.at_least(tensors.count, 1, f"{what} expects a non-empty list of tensors, gets {{lhs}}")
    n = tensors.item.ndim + extra
    if not -n <= dim < n:
        ctx.refuse(f"{what}: dim {dim} out of range for {n} dims")
    return dim % n


def _cat_repeated(ctx: Context, tensors: Repeated, dim: int) -> SymTensor:
    """torch.cat of ``c`` tensors: unbind's (all alike) give ``c`` times their size on ``dim``; a
    split's, along the dim it split, give back the whole dim (``s*(c - 1) + last``)."""
    d = _repeated(ctx, tensors, dim, "torch.cat")
    item, last = tensors.item, tensors.last
    if tensors.op == "split" and d != tensors.dim:
        ctx.unsupported("torch.cat, along another dim, of split()'s pieces whose number depends on the input size")
    size = item.shape[d] * (tensors.count - 1) + last.shape[d]
    contiguous = item.ndim not in (4, 5) or all(
        t.contiguous or (t.strides is not None and (t.strides[1] != 1 or t.shape[1] == 1)) for t in (item, last))
    return SymTensor((*item.shape[:d], canonical(size), *item.shape[d + 1:]), contiguous)


def _skipped(t: SymTensor) -> bool:
    """A tensor torch.cat leaves out: 1-D with no element (ATen's ``cat_should_skip_tensor``)."""
    return t.ndim == 1 and t.shape[0] == 0


@function_rule(torch.cat, torch.concat, torch.concatenate, layout=True)
def cat(ctx: Context, tensors, dim=0, *, axis=None) -> SymTensor:
    """``out[dim] = sum of in[dim]``; every other dim must be equal. A 1-D tensor with no
    element (``torch.tensor([])``) is left out, whatever ``dim`` is, as torch leaves it out."""
    if isinstance(tensors, Repeated):
        return _cat_repeated(ctx, tensors, as_int(axis if axis is not None else dim, "dim", ctx))
    ts = _tensors(ctx, tensors, "torch.cat")
    dim = as_int(axis if axis is not None else dim, "dim", ctx)
    # torch skips a 1-D tensor with no element (``torch.tensor([])``: a key cache before its
    # first entry), whatever the dim and the others' rank; if every one is such, the result is one
    kept = [(j, t) for j, t in enumerate(ts) if not _skipped(t)]
    if not kept:
        return SymTensor((sympy.Integer(0),))
    (_, first), ts = kept[0], [t for _, t in kept]
    if any(t.ndim == 1 and decide(sympy.Ge(t.shape[0], 1)) is not True for t in ts) \
            and (any(t.ndim != 1 for t in ts) or not -1 <= dim <= 0):
        ctx.unsupported(f"torch.cat along dim {dim} of a 1-D tensor that may have no element (torch then leaves it "
                        f"out) beside tensors of another rank: {', '.join(str(t) for t in ts)}")
    try:
        d = first.dim(dim)
    except IndexError as e:
        ctx.refuse(f"torch.cat: {e}")
    if isinstance(tensors, Pieces) and any(tensors.requires) and d != tensors.dim:
        ctx.unsupported("torch.cat, along another dim, of chunks whose number depends on the input size")
    for j, t in kept[1:]:
        if t.ndim != first.ndim:
            ctx.refuse(f"torch.cat: tensors must have the same rank, gets {first} and {t}")
        for i, (x, y) in enumerate(zip(first.shape, t.shape)):
            if i != d:
                ctx.equal(y, x, f"torch.cat: sizes must match except in dim {d}; "
                                f"tensor {j} has {{lhs}} at dim {i}, tensor 0 has {{rhs}}")
    total = canonical(sympy.Add(*[t.shape[d] for t in ts]))
    # torch allocates it contiguous unless its inputs suggest channels last (4D and 5D only),
    # which needs the channel dim's stride to be the smallest: 1 where the channels are not 1
    contiguous = first.ndim not in (4, 5) or all(
        t.contiguous or (t.strides is not None and (t.strides[1] != 1 or t.shape[1] == 1)) for t in ts)
    return SymTensor((*first.shape[:d], total, *first.shape[d + 1 :]), contiguous)


@function_rule(torch.stack, layout="fresh")
def stack(ctx: Context, tensors, dim=0) -> SymTensor:
    """``out`` inserts ``len(tensors)`` at ``dim``; all shapes must be equal. Allocated
    contiguous, unless 4D or 5D (channels last where the inputs suggest it: torch's meta kernel
    decides)."""
    if isinstance(tensors, Repeated):  # c tensors, a split's last one alike only where it is whole
        d = _repeated(ctx, tensors, as_int(dim, "dim", ctx), "torch.stack", 1)
        k = tensors.dim
        if tensors.op == "split":
            ctx.require(tensors.last.shape[k], "==", tensors.item.shape[k],
                        "stack expects each tensor to be equal size: the last piece has {lhs} entries, the others {rhs}",
                        unless=Requirement(tensors.count, "==", 1, "a single piece"))
        shape = tensors.last.shape  # every piece's, where there are several
        return SymTensor((*shape[:d], tensors.count, *shape[d:]))
    ts = _tensors(ctx, tensors, "torch.stack")
    first = ts[0]
    dim = as_int(dim, "dim", ctx)
    n = first.ndim + 1
    if not -n <= dim < n:
        ctx.refuse(f"torch.stack: dim {dim} out of range for {n} dims")
    for j, t in enumerate(ts[1:], start=1):
        if t.ndim != first.ndim:
            ctx.refuse(f"torch.stack: tensors must have the same shape, gets {first} and {t}")
        for i, (x, y) in enumerate(zip(first.shape, t.shape)):
            ctx.equal(y, x, f"torch.stack: tensor {j} has {{lhs}} at dim {i}, tensor 0 has {{rhs}}")
    d = dim % n
    return SymTensor((*first.shape[:d], len(ts), *first.shape[d:]))
