"""What a model's own forward computed, for the replay of its traced graph to take instead of
computing it again (symshape.verify's proof: one meta-device forward, then the graph node by node).

A meta kernel's output (its shape, strides, dtype) is a function of its arguments' metadata and
plain values alone. So a module node of the graph whose arguments match, by that metadata, the
n-th call of the module in the forward takes that call's output (:class:`ModuleCalls`); and under
:class:`KernelMemo` a functional aten op called again with arguments of the same metadata -- in
the forward (the twelve blocks of a ViT) or in the replay, which repeats the forward's ops -- gets
a fresh tensor laid out as the first call's output without running torch's kernel (many meta
kernels are Python: ``native_layer_norm``'s takes 0.75 ms). Where the match cannot be shown (an
argument that is neither a tensor nor a plain value), the call runs as usual.
"""

from __future__ import annotations

from typing import Any

import torch

from torch.fx.immutable_collections import immutable_list
from torch.utils._device import DeviceContext  # the mode ``with torch.device(...)`` enters
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = ["NOT_FOUND", "KernelMemo", "ModuleCalls", "signature", "watching"]

#: no recorded output (None is an output like any other)
NOT_FOUND = object()


def signature(value: Any):
    """What an output's shape can depend on in ``value`` (the arguments of a call): every tensor's
    type, shape, strides, offset, dtype, layout, device and flags, and plain Python values (slices
    and ``...`` among them); anything else (a symbolic size among them) is unique (never equal),
    so a call with such an argument is never reused."""
    try:
        return _metadata(value)
    except _Unknown:
        return object()


class _Unknown(Exception):
    """An argument :func:`signature` cannot state."""


def _metadata(value, _open: frozenset = frozenset()):
    """:func:`signature` of ``value``; raises :class:`_Unknown` where it holds anything else, or
    holds itself (a list a model appended to itself: no metadata states it)."""
    if isinstance(value, torch.Tensor):
        try:
            shape, strides = tuple(value.shape), value.stride()
        except (RuntimeError, NotImplementedError):  # a nested or sparse tensor has no strides
            raise _Unknown from None
        if not all(type(n) is int for n in (*shape, *strides)):  # a symbolic size: its value is unknown
            raise _Unknown
        return ("T", type(value), shape, strides, value.storage_offset(), value.dtype, value.layout,
                value.device, value.requires_grad, value.is_neg(), value.is_conj())
    if isinstance(value, (list, tuple, dict)):
        if id(value) in _open:
            raise _Unknown
        _open = _open | {id(value)}
    if isinstance(value, (list, tuple)):
        # (fx's graph replay hands a node's list arguments over as its immutable_list: the
        # list the model's forward passed, as a value)
        kind = list if type(value) is immutable_list else type(value)
        return (kind, tuple(_metadata(v, _open) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple((k, _metadata(v, _open)) for k, v in value.items()))
    if value is None or type(value) in _PLAIN:
        return (type(value), value)
    if isinstance(value, slice):
        return ("slice", _metadata(value.start), _metadata(value.stop), _metadata(value.step))
    if value is Ellipsis:
        return ("...",)
    raise _Unknown


#: values a signature holds as they are (their equality is their meaning)
_PLAIN = frozenset({bool, int, float, complex, str, torch.dtype, torch.device, torch.layout, torch.memory_format})


class ModuleCalls:
    """Each module's calls in the model's forward, in order: the arguments' signature, and the
    output with its signature when the call returned (a later in-place change of the output, a
    ``t.unsqueeze_(0)``, shows as a changed signature and the call is not reused).

    With ``watched`` (the :func:`watching` mode the forward ran under, which sees every op that
    reshapes a tensor in place) the signatures are taken when a call is looked up, not at every
    call: while no such op ran, each argument and output still has the metadata it had; once
    one ran, nothing is reused."""

    def __init__(self, watched: _Watching | None = None):
        self.inputs: dict[str, list] = {}
        self.outputs: dict[str, list] = {}
        self.open: dict[str, list[int]] = {}  # calls entered and not yet returned (a module calling itself)
        self.watched = watched

    def enter(self, name: str, args, kwargs) -> None:
        call = (tuple(args), dict(kwargs))
        self.inputs.setdefault(name, []).append(call if self.watched is not None else signature(call))
        self.outputs.setdefault(name, []).append(NOT_FOUND)
        self.open.setdefault(name, []).append(len(self.inputs[name]) - 1)

    def leave(self, name: str, out) -> None:
        if self.open.get(name):
            self.outputs[name][self.open[name].pop()] = (out, None if self.watched is not None else signature(out))

    def output(self, name: str, k: int, called):
        """The output of module ``name``'s ``k``-th call, if ``called`` (the signature of the
        arguments now) is what it was called with."""
        if k >= len(self.inputs.get(name, ())):
            return NOT_FOUND
        then, done = self.inputs[name][k], self.outputs[name][k]
        if self.watched is not None:
            if self.watched.reshaped or done is NOT_FOUND or signature(then) != called:
                return NOT_FOUND
            return done[0]
        if then != called or done is NOT_FOUND or signature(done[0]) != done[1]:
            return NOT_FOUND
        return done[0]


#: ops that change a tensor's sizes, strides, offset or grad flag in place: after one, a recorded
#: argument or output may no longer be what it was, and nothing more is reused
RESHAPING_IN_PLACE = frozenset({
    "resize_", "resize_as_", "unsqueeze_", "squeeze_", "transpose_", "t_", "as_strided_", "swapdims_",
    "swapaxes_", "set_", "__set__", "detach_", "requires_grad_", "share_memory_", "__setattr__"})

class _Watching(DeviceContext):
    """``with torch.device(device)`` (torch's own mode: factory functions make tensors there),
    which also notes whether any op made under it reshaped a tensor in place."""

    def __init__(self, device):
        super().__init__(device)
        self.reshaped = False

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in RESHAPING_IN_PLACE or (kwargs and "out" in kwargs):
            self.reshaped = True
        return super().__torch_function__(func, types, args, kwargs)


def watching(device: str) -> _Watching:
    """A context manager that is ``torch.device(device)`` and notes (``.reshaped``) whether an op
    made under it reshaped a tensor in place: what :class:`ModuleCalls` is watched by."""
    return _Watching(device)


# -- torch's kernels, once per metadata ------------------------------------------------------------


class KernelMemo(TorchDispatchMode):
    """A dispatch mode under which a functional aten op (no argument changed, no output a view of
    an argument, no random numbers drawn) called again with arguments of the same metadata --
    every tensor's type, shape, strides, offset, dtype, layout, device and flags, every other
    argument's value, the default dtype -- returns fresh meta tensors laid out as the first
    call's outputs, without running the kernel. A meta kernel's output is a function of exactly
    that, so the forward computes the same shapes and raises the same errors (a call that raised
    is not remembered: it runs again). Only meta outputs are remembered; a call with a symbolic
    size, or an argument of another kind, always runs."""

    def __init__(self):
        super().__init__()
        self.outputs: dict = {}
        self.in_place: set = set()
        self.reused = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if _in_place(func):
            return self._in_place(func, args, kwargs)
        key = _kernel_key(func, args, kwargs) if _functional(func) else None
        if key is not None:
            layout = self.outputs.get(key)
            if layout is not None:
                self.reused += 1
                return _made(layout)
        out = func(*args, **kwargs)
        if key is not None:
            layout = _layout_of(out)
            if layout is not None:
                self.outputs[key] = layout
        return out

    def _in_place(self, func, args, kwargs):
        """An op that writes its first argument and returns it (``hardswish_``, ``add_``): called
        again with arguments of the same metadata, it returns that argument as the first call
        did, without running the kernel -- remembered only where the first call returned its
        argument with the metadata it had (an op that resizes its argument never is)."""
        key = _kernel_key(func, args, kwargs)
        if key is not None and key in self.in_place:
            self.reused += 1
            return args[0]
        out = func(*args, **kwargs)
        if key is not None and out is args[0] and _kernel_key(func, args, kwargs) == key:
            self.in_place.add(key)
        return out


_FUNCTIONAL: dict = {}

#: tags of ops whose output is not a function of their arguments' metadata alone
_NOT_PURE = (torch.Tag.nondeterministic_seeded, torch.Tag.dynamic_output_shape, torch.Tag.data_dependent_output)


def _functional(func) -> bool:
    """Whether an aten op writes no argument, returns no view of one and draws no random numbers
    (its schema and tags say so): what :class:`KernelMemo` may give again."""
    found = _FUNCTIONAL.get(func)
    if found is None:
        schema = getattr(func, "_schema", None)  # (a higher-order op, torch.cond's, has none)
        found = _FUNCTIONAL[func] = schema is not None and bool(schema.returns) and not schema.is_mutable \
            and all(r.alias_info is None for r in schema.returns) \
            and not any(t in getattr(func, "tags", ()) for t in _NOT_PURE)
    return found


_IN_PLACE: dict = {}


def _in_place(func) -> bool:
    """Whether an aten op writes its first argument alone and returns it, draws no random
    numbers (its schema and tags say so) and is none of the ops that reshape a tensor or give it
    another storage (:data:`RESHAPING_IN_PLACE`): what :meth:`KernelMemo._in_place` may skip."""
    found = _IN_PLACE.get(func)
    if found is None:
        schema = getattr(func, "_schema", None)
        found = _IN_PLACE[func] = schema is not None and len(schema.returns) == 1 and bool(schema.arguments) \
            and schema.name.split("::")[-1] not in RESHAPING_IN_PLACE \
            and _writes(schema.arguments[0]) and schema.returns[0].alias_info is not None \
            and schema.returns[0].alias_info.is_write \
            and set(schema.returns[0].alias_info.after_set) == set(schema.arguments[0].alias_info.after_set) \
            and not any(_writes(a) for a in schema.arguments[1:]) \
            and not any(t in getattr(func, "tags", ()) for t in _NOT_PURE)
    return found


def _writes(argument) -> bool:
    return argument.alias_info is not None and argument.alias_info.is_write


def _kernel_key(func, args, kwargs):
    """``func`` and its arguments' metadata (see :class:`KernelMemo`), or None where an argument
    is of a kind it does not know."""
    try:
        return (func, torch.get_default_dtype(), _metadata(args), _metadata(kwargs))
    except _Unknown:
        return None


def _layout_of(out):
    """What :func:`_made` needs to make ``out`` again: the shape, strides and dtype of each meta
    tensor in it (a tensor or a tuple or list of them); None for anything else."""
    if type(out) is torch.Tensor:
        if out.device.type != "meta" or out.layout != torch.strided or out.storage_offset() != 0 \
                or out.requires_grad or out.is_neg() or out.is_conj():
            return None
        shape, strides = tuple(out.shape), out.stride()
        if not all(type(n) is int for n in (*shape, *strides)):
            return None
        return ("T", shape, strides, out.dtype)
    if type(out) in (list, tuple) and out:
        parts = [_layout_of(o) for o in out]
        return None if any(p is None for p in parts) else (type(out), tuple(parts))
    return None


def _made(layout):
    if layout[0] == "T":
        _, shape, strides, dtype = layout
        return torch.empty_strided(shape, strides, dtype=dtype, device="meta")
    kind, parts = layout
    return kind(_made(p) for p in parts)
