"""The dtype of an op's result, and the checks torch makes of dtypes alone: torch's own, asked of
small CPU tensors.

torch's type promotion (``torch.result_type``)::

    out = the highest category among the operands (bool < integer < floating < complex), and
          within it the widest dtype of the highest-priority operands that have it:
          tensors with dims  >  0-dim tensors  >  Python numbers

so ``arange(n) / 2`` is float32, ``mask.sum()`` int64, ``torch.cat([long, float])`` float32, an
int64 tensor plus a float64 0-dim tensor float64 but a float16 tensor plus one float16. Rather
than write that table again, symshape runs the op once on *witnesses*: a tensor of the same dtype
and number of dims for each traced tensor (of ones: ``(1,) * ndim``), an int for a size, a float
for a ratio of sizes, the model's own numbers as they are. The dtype torch gives the witness is
the result's at every size: no shape enters promotion, only dtypes, dims-or-0-dim, and the
numbers' types.

A check of dtypes alone (``long += 0.5``: "result type Float can't be cast to the desired output
type Long"; ``mask_a - mask_b`` of two bool tensors) is asked of *empty* witnesses (``(0,) *
ndim``): what torch refuses with no element to compute it refuses at every size, and what it
refuses only for some values (an integer division by a zero entry) it does not refuse there.

A tensor whose dtype symshape does not track (``None``: the input's, a float whose width the
caller chooses) stands as float32, and a float32 result of it is again not tracked; a refusal is
claimed of it only where torch refuses every float width (``x & x``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import sympy
import torch

from .dims import SizeRatio
from .tensor import Pieces, Repeated, SymTensor

__all__ = ["result_dtype", "refusal", "NOT_PROBED"]

#: the dtype a tensor whose dtype symshape does not track (a float) stands as
_STAND_IN = torch.float32
#: ... and the widths it may have, each of which torch must refuse for a refusal of it
_FLOATS = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


class _NotProbed(Exception):
    """An argument that has no witness (a tuple of tensors whose number depends on the size)."""


#: what :func:`result_dtype` returns where the op cannot be run on witnesses
NOT_PROBED = object()

_PLAIN = (bool, int, float, complex, str, type(None), torch.dtype, torch.device, torch.memory_format, torch.layout)


def _signature(value) -> Any:
    """``value`` with every traced tensor as ``("T", dtype, ndim)``, a size as ``("size",)``, a
    ratio of sizes as ``("ratio",)``: hashable, and all a witness needs."""
    if isinstance(value, SymTensor):
        return ("T", value.dtype, value.ndim)
    if isinstance(value, SizeRatio):
        return ("ratio",)
    if isinstance(value, sympy.Basic):
        if value.is_integer:
            return ("size",)
        raise _NotProbed
    if isinstance(value, _PLAIN):
        return ("n", type(value), value)
    if isinstance(value, (tuple, list)) and not isinstance(value, (Pieces, Repeated)):  # (fx's immutable_list)
        return ("list" if isinstance(value, list) else "tuple", tuple(_signature(v) for v in value))
    raise _NotProbed


def _witness(sig, empty: bool, stand_in: torch.dtype = _STAND_IN):
    kind = sig[0]
    if kind == "T":
        _, dtype, ndim = sig
        return torch.ones(((0,) if empty else (1,)) * ndim, dtype=dtype or stand_in, device="cpu")
    if kind == "size":
        return 1
    if kind == "ratio":
        return 1.0
    if kind == "n":
        return sig[2]
    items = [_witness(s, empty, stand_in) for s in sig[1]]
    return items if kind == "list" else tuple(items)


def _run(call, args_sig, kwargs_sig, empty: bool, stand_in: torch.dtype = _STAND_IN):
    args = [_witness(s, empty, stand_in) for s in args_sig]
    kwargs = {k: _witness(s, empty, stand_in) for k, s in kwargs_sig}
    if isinstance(call, str):  # a method of its first argument
        return getattr(args[0], call)(*args[1:], **kwargs)
    return call(*args, **kwargs)


def _tracked(args_sig, kwargs_sig) -> tuple[bool, bool]:
    """(any traced tensor, any tensor whose dtype is not tracked) among the signatures."""
    found, untracked = False, False
    todo = [*args_sig, *(s for _, s in kwargs_sig)]
    while todo:
        sig = todo.pop()
        if sig[0] == "T":
            found = True
            untracked = untracked or sig[1] is None
        elif sig[0] in ("list", "tuple"):
            todo += sig[1]
    return found, untracked


@lru_cache(maxsize=4096)
def _result_dtype(call, args_sig, kwargs_sig):
    try:
        out = _run(call, args_sig, kwargs_sig, empty=False)
    except Exception:  # torch refuses the witnesses (a value it checks): the caller's default
        return NOT_PROBED
    if not isinstance(out, torch.Tensor):
        return NOT_PROBED
    _, untracked = _tracked(args_sig, kwargs_sig)
    return None if untracked and out.dtype == _STAND_IN else out.dtype


@lru_cache(maxsize=4096)
def _refusal(call, args_sig, kwargs_sig) -> str | None:
    found, untracked = _tracked(args_sig, kwargs_sig)
    if not found:
        return None
    said = None
    for stand_in in _FLOATS if untracked else _FLOATS[:1]:
        try:
            _run(call, args_sig, kwargs_sig, empty=True, stand_in=stand_in)
        except (RuntimeError, TypeError, ValueError, NotImplementedError) as e:
            said = said or str(e).split("\n")[0]
        except Exception:  # noqa: BLE001 - anything else is no refusal symshape claims
            return None
        else:
            return None
    return said


def _signatures(args, kwargs):
    return tuple(_signature(a) for a in args), tuple(sorted((k, _signature(v)) for k, v in kwargs.items()))


def result_dtype(call, args, kwargs):
    """The dtype torch gives ``call(*args, **kwargs)`` (``call`` a function, or a method's name
    called on ``args[0]``), None for a float symshape does not track, or :data:`NOT_PROBED`
    where the op cannot be run on witnesses (an argument without one, or torch refusing the
    witnesses' values)."""
    try:
        return _result_dtype(call, *_signatures(args, kwargs))
    except (_NotProbed, TypeError):  # TypeError: an unhashable argument
        return NOT_PROBED


def refusal(call, args, kwargs) -> str | None:
    """torch's message where it refuses ``call(*args, **kwargs)`` for its operands' dtypes (or
    the model's own numbers) alone, whatever the sizes; None where it does not (for an operand
    whose dtype is not tracked: where it does not for some float width). For elementwise ops,
    where empty operands broadcast."""
    try:
        return _refusal(call, *_signatures(args, kwargs))
    except (_NotProbed, TypeError):
        return None
