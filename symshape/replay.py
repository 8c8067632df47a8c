"""What a model's own forward computed, for the replay of its traced graph to take instead of
computing it again (symshape.verify's proof: one meta-device forward, then the graph node by node).

A meta kernel's output (its shape, strides, dtype) is a function of its arguments' metadata and
plain values alone, so a graph node whose arguments match a call the forward made, by that
metadata, takes that call's output: :class:`ModuleCalls` for modules (the n-th call of each),
:class:`OpCalls` for torch functions and tensor methods (any call of the same function). Where
the match cannot be shown (an argument that is neither a tensor nor a plain value, a function
called with arguments in another form), the node runs as usual.
"""

from __future__ import annotations

import inspect
import operator
from typing import Any

import torch

from torch.utils._device import DeviceContext  # the mode ``with torch.device(...)`` enters

__all__ = ["NOT_FOUND", "ModuleCalls", "OpCalls", "op_calls", "signature"]

#: no recorded output (None is an output like any other)
NOT_FOUND = object()


def signature(value: Any):
    """What an output's shape can depend on in ``value`` (the arguments of a call): every tensor's
    shape, strides, offset, dtype, layout, device and grad flag, and plain Python values (slices
    and ``...`` among them); anything else is unique (never equal), so a call with such an
    argument is never reused."""
    if isinstance(value, torch.Tensor):
        try:
            return ("T", tuple(value.shape), tuple(value.stride()), value.storage_offset(), value.dtype,
                    value.layout, value.device.type, value.requires_grad)
        except (RuntimeError, NotImplementedError):  # a nested tensor has no sizes or strides
            return object()
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(signature(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple((k, signature(v)) for k, v in value.items()))
    if value is None or isinstance(value, (bool, int, float, str, torch.dtype, torch.device)):
        return (type(value).__name__, value)
    if isinstance(value, slice):
        return ("slice", signature(value.start), signature(value.stop), signature(value.step))
    if value is Ellipsis:
        return ("...",)
    return object()


class ModuleCalls:
    """Each module's calls in the model's forward, in order: the arguments' signature, and the
    output with its signature when the call returned (a later in-place change of the output, a
    ``t.unsqueeze_(0)``, shows as a changed signature and the call is not reused)."""

    def __init__(self):
        self.inputs: dict[str, list] = {}
        self.outputs: dict[str, list] = {}
        self.open: dict[str, list[int]] = {}  # calls entered and not yet returned (a module calling itself)

    def enter(self, name: str, args, kwargs) -> None:
        self.inputs.setdefault(name, []).append(signature((tuple(args), dict(kwargs))))
        self.outputs.setdefault(name, []).append(NOT_FOUND)
        self.open.setdefault(name, []).append(len(self.inputs[name]) - 1)

    def leave(self, name: str, out) -> None:
        if self.open.get(name):
            self.outputs[name][self.open[name].pop()] = (out, signature(out))

    def output(self, name: str, k: int, called):
        """The output of module ``name``'s ``k``-th call, if ``called`` (the signature of the
        arguments now) is what it was called with."""
        if k >= len(self.inputs.get(name, ())) or self.inputs[name][k] != called:
            return NOT_FOUND
        done = self.outputs[name][k]
        if done is NOT_FOUND or signature(done[0]) != done[1]:
            return NOT_FOUND
        return done[0]


#: ops that change a tensor's sizes, strides, offset or grad flag in place: after one, a recorded
#: argument or output may no longer be what it was, and nothing more is reused
RESHAPING_IN_PLACE = frozenset({
    "resize_", "resize_as_", "unsqueeze_", "squeeze_", "transpose_", "t_", "as_strided_", "swapdims_",
    "swapaxes_", "set_", "__set__", "detach_", "requires_grad_", "share_memory_", "__setattr__"})

#: an operator of the graph (``x + y``) as the tensor method torch's function mode sees
_OPERATOR_METHODS = {operator.truediv: ("div",), operator.mod: ("remainder",), operator.pos: ("positive",)}


class _Recording(DeviceContext):
    """``with torch.device(device)`` (torch's own mode: factory functions make tensors there),
    which also records every call of a torch function or tensor method made under it: the
    function, its arguments and its output."""

    def __init__(self, device):
        super().__init__(device)
        self.recorded: dict = {}  # function -> [(args, kwargs, output)]
        self.reshaped = False
        self.active = True  # recording (the forward); afterwards (the replay) only reshaping is watched

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = super().__torch_function__(func, types, args, kwargs)
        name = getattr(func, "__name__", "")
        if name in RESHAPING_IN_PLACE or (kwargs and "out" in kwargs):
            self.reshaped = True
        elif self.active and not _in_place(name):  # its output is its input: run again, never reused
            try:
                self.recorded.setdefault(func, []).append((args, kwargs or {}, out))
            except TypeError:  # an unhashable callable
                pass
        return out


class OpCalls:
    """The torch calls of one forward (see :func:`op_calls`), looked up by a graph node."""

    def __init__(self, recording: _Recording):
        self.recording = recording
        self.keys: dict = {}  # function -> {the arguments' key: output}, made when first asked

    def stop(self) -> None:
        """The forward is over: record nothing more (the replay's own calls are not the model's)."""
        self.recording.active = False

    def output(self, node_op: str, target, args, kwargs):
        """The output of a call the forward made that a graph node (``call_function`` of
        ``target``, or ``call_method`` named ``target``) with these arguments repeats."""
        rec = self.recording
        if rec.reshaped:  # (the replay runs under the mode too: its own reshaping ops count)
            return NOT_FOUND
        for func in _functions(node_op, target, args):
            calls = rec.recorded.get(func)
            if not calls:
                continue
            keys = self.keys.get(func)
            if keys is None:
                keys = self.keys[func] = {}
                for a, k, out in calls:
                    keys.setdefault(_key(func, a, k), out)
            found = keys.get(_key(func, args, kwargs), NOT_FOUND)
            if found is not NOT_FOUND:
                return found
        return NOT_FOUND


def op_calls(device: str):
    """A context manager that is ``torch.device(device)`` and records the calls made under it,
    and the :class:`OpCalls` that looks them up."""
    recording = _Recording(device)
    return recording, OpCalls(recording)


def _functions(node_op: str, target, args) -> list:
    """What torch's function mode saw for a node's call: the function itself, a tensor method by
    name, an operator on a tensor as the tensor's method (``operator.add`` -> ``Tensor.add``)."""
    if node_op == "call_method":  # (an in-place op is never among the recorded: not found)
        found = getattr(torch.Tensor, target, None) if isinstance(target, str) else None
        return [found] if found is not None else []
    if getattr(target, "__module__", None) in ("_operator", "operator"):
        if not args or not isinstance(args[0], torch.Tensor):
            return []
        base = target.__name__.rstrip("_")
        names = (base, f"__{base}__", *_OPERATOR_METHODS.get(target, ()))
        return [f for f in (getattr(torch.Tensor, n, None) for n in names) if f is not None]
    return [target]


def _in_place(name: str) -> bool:
    """Whether a torch function or method named so changes its input in place (``add_``, not
    ``__add__``; ``__iadd__``, ``x += y``)."""
    return name in _IN_PLACE_OPERATORS or (name.endswith("_") and not name.startswith("__"))


_IN_PLACE_OPERATORS = frozenset(f"__i{op}__" for op in (
    "add", "sub", "mul", "truediv", "div", "floordiv", "mod", "pow", "matmul", "and", "or", "xor", "lshift", "rshift"))


_PARAMETERS: dict = {}


def _parameters(func) -> inspect.Signature | None:
    try:
        return _PARAMETERS[func]
    except KeyError:
        pass
    except TypeError:
        return None
    try:
        found = inspect.signature(func)
    except (TypeError, ValueError):  # a builtin without a signature: its arguments are compared as given
        found = None
    _PARAMETERS[func] = found
    return found


def _key(func, args, kwargs):
    """A call's arguments by parameter, defaults filled in (``F.layer_norm(x, s, w, b, eps)``
    as written and as the function passes itself on to the mode, ``weight=w, ...``, are one);
    as given where the function has no signature Python can read."""
    params = _parameters(func)
    if params is not None:
        try:
            bound = params.bind(*args, **kwargs)
        except TypeError:
            pass
        else:
            bound.apply_defaults()
            return ("bound", tuple((name, signature(v)) for name, v in bound.arguments.items()))
    return ("given", signature(tuple(args)), tuple((k, signature(kwargs[k])) for k in sorted(kwargs)))
