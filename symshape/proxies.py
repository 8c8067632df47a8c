"""The values symshape's trace hands the model's forward: fx's proxies, made to answer as the
values they stand for do.

A traced tensor answers ``isinstance(x, torch.Tensor)`` (a parameter ``isinstance(p,
nn.Parameter)``), a traced size ``isinstance(h, int)``; ``len`` and unpacking of a traced tuple take
its real number of items (``a, b = x.unbind(1)`` where the count depends on the size follows
Python's answer); a tensor's device flags (``x.is_cuda``) are plain values; ``x += y`` is torch's
in-place ``add_``; ``x[..., :k] = v``, ``math.ceil(h / 2)``, ``round(...)`` and ``f"{h}"`` are
recorded or written as symshape writes sizes. What would make torch's C++ read a traced value's
memory as a tensor's (a legacy constructor, numpy's array protocol) is refused by name.
"""

from __future__ import annotations

import bisect
import inspect
import math
import operator
import sys

import sympy
import torch
import torch.fx
import torch.nn as nn

from . import callsite
from .dims import SizeRatio
from .modules import attribute_at
from .records import Record
from .rules.reshape import DEVICE_ATTRIBUTES, reported_dtype
from .tensor import Repeated, SymTensor

__all__ = ["LEGACY_CONSTRUCTORS", "SizedAttribute", "SizedMixin", "SizedProxy"]


#: the calls a traced tensor answers as a tensor: Python's own type checks (torch.jit.isinstance
#: and torch.is_tensor call isinstance too); a read of ``x.__class__`` that is no call, too
_TYPE_CHECKS = frozenset({"isinstance", "issubclass"})


def _stands_for(value) -> type | None:
    """The Python type a traced value has in torch: what ``isinstance`` of its proxy answers."""
    if isinstance(value, SymTensor):
        return torch.Tensor
    if isinstance(value, SizeRatio):
        return float
    if isinstance(value, sympy.Basic):
        if isinstance(value, sympy.logic.boolalg.Boolean):
            return bool
        return int if value.is_integer else None
    if isinstance(value, list):
        return list
    if isinstance(value, tuple):
        sizes = all(isinstance(v, (int, sympy.Expr)) and not isinstance(v, bool) for v in value)
        return torch.Size if sizes else tuple
    return None


#: torch's legacy constructors, which read a tensor argument in C++ (``torch.Tensor(x)``), and the
#: functions that make a tensor subclass of one (``nn.Parameter(x)`` calls ``_make_subclass``)
LEGACY_CONSTRUCTORS = frozenset({"Tensor", "FloatTensor", "DoubleTensor", "HalfTensor", "BFloat16Tensor", "ByteTensor",
                                 "CharTensor", "ShortTensor", "IntTensor", "LongTensor", "BoolTensor", "Variable",
                                 "_make_subclass", "_make_wrapper_subclass"})

#: the attributes numpy reads of a value to make an array of it
_NUMPY_PROTOCOL = frozenset({"__array_struct__", "__array_interface__", "__array__", "__array_ufunc__",
                             "__array_function__", "__array_priority__", "__array_wrap__", "__array_prepare__",
                             "__array_finalize__", "__array_namespace__"})


class SizedMixin:
    @property
    def __class__(self):
        # isinstance(x, torch.Tensor), torch.jit.isinstance, isinstance(h, int) on a traced value
        # answer as on the real one: type.__instancecheck__ consults __class__ when type(x) is
        # not a subclass (a decoder that concatenates its skip only if it is a Tensor)
        tracer = self.__dict__.get("tracer")
        value = tracer.value(self) if tracer is not None else None
        called = callsite.callee(sys._getframe(1)) if isinstance(value, SymTensor) else None
        if called in LEGACY_CONSTRUCTORS:
            # asked by torch's C++ inside a legacy constructor, which would then read this
            # object's memory as a tensor's (a crash of the process): refused by name instead
            raise torch.fx.proxy.TraceError(
                f"{called}(x) of a traced tensor: a legacy constructor symshape cannot follow; write x itself, "
                "x.detach() or x.to(dtype)")
        if called is not None and called not in _TYPE_CHECKS:
            # asked by a call that is no type check: torch's C++ argument parser (torch.pow(x, 2)
            # tries pow(Scalar, Tensor) first, and a "tensor" there would be read as a 0-dim one:
            # a crash of the process), under whatever name the model calls it (``pow = torch.pow``):
            # the proxy it is, whose __torch_function__ fx then calls, as for any fx proxy
            return type(self)
        held = _held(tracer, self) if isinstance(value, SymTensor) else None
        if held is not None:  # the model's own parameter or buffer: its class (nn.Parameter ...)
            return type(held)
        return _stands_for(value) or type(self)

    def __len__(self) -> int:
        value = self.tracer.value(self)
        if isinstance(value, (tuple, list)):
            return self.tracer.count(value)
        if callsite.callee(sys._getframe(1)) in LEGACY_CONSTRUCTORS:
            # torch.Tensor([h]): the constructor asks each item whether it is a sequence
            raise torch.fx.proxy.TraceError(
                f"{callsite.callee(sys._getframe(1))}([...]) of a traced size: a legacy constructor symshape "
                "cannot follow; write torch.tensor([...])")
        return super().__len__()

    def __iter__(self):
        # fx unpacks ``a, b = proxy`` into two items whatever their number; for tensors whose
        # number depends on the size, Python must see that number (too many or too few raise)
        tracer = self.__dict__.get("tracer")
        if tracer is not None and isinstance(tracer.value(self), Repeated):
            return tracer.iter(self)
        # otherwise as torch.fx.Proxy.__iter__, which reads the caller's instruction (this frame
        # would hide it): ``q, k, v = t`` takes three items
        caller = inspect.currentframe().f_back
        instructions, offsets = callsite.instructions(caller.f_code)
        at = bisect.bisect_left(offsets, caller.f_lasti) if sys.version_info >= (3, 11) else caller.f_lasti // 2
        if instructions[at].opname == "UNPACK_SEQUENCE":
            return (self[i] for i in range(instructions[at].argval))
        return self.tracer.iter(self)

    def __getattr__(self, k: str):
        # a tensor's device as the analysis runs the model (the CPU): its flags (``x.is_cuda``)
        # and its type (``x.device.type``) are plain values, for Python that fx does not follow
        # (``torch.autocast(device_type=x.device.type)``, ``if x.device.type != "meta"``). The
        # device itself stays a traced value: an op given ``device=x.device`` must run where the
        # graph is replayed (the proof replays it on the meta device)
        tracer = self.__dict__.get("tracer")
        if tracer is not None and k in DEVICE_ATTRIBUTES and k != "device":
            if isinstance(tracer.value(self), SymTensor):
                return DEVICE_ATTRIBUTES[k]
        if tracer is not None and k in ("_is_param", "_is_buffer") and issubclass(type(self), SizedProxy) \
                and isinstance(tracer.value(self), SymTensor):
            # torch sets them only on a tensor made a Parameter or a Buffer (``isinstance(x,
            # Parameter)`` asks it of any tensor): the model's own tensor's, and an op's output
            # never has them
            held = _held(tracer, self)
            if held is None or not hasattr(held, k):
                raise AttributeError(k)
            return getattr(held, k)
        if tracer is not None and k == "type" and self.__dict__.get("attr") == "device":
            if isinstance(tracer.value(self.__dict__["root"]), SymTensor):
                return DEVICE_ATTRIBUTES["device"].type
        if tracer is not None:
            held = tracer.value(self)
            if k == "dtype" and isinstance(held, SymTensor):
                # a plain value, as the getattr rule answers it: torch.finfo(x.dtype), as
                # transformers' eager mask asks, takes no traced value
                return reported_dtype(held)
            if _unset_field(held, k):
                return None  # (a ModelOutput's field that is not set: None, as Python must see it for ``is None``)
            if isinstance(held, SymTensor) and not k.startswith("__"):
                # an attribute the tensor has not is none, as Python sees it: ``hasattr(w, "SCB")``
                # (transformers asks a weight whether bitsandbytes quantized it) is False, not a
                # traced attribute that makes every hasattr() true and takes the other branch
                own = _held(tracer, self)
                if not (hasattr(own, k) if own is not None else hasattr(torch.Tensor, k)):
                    raise AttributeError(f"'{type(own).__name__ if own is not None else 'Tensor'}' object has no "
                                         f"attribute '{k}'")
        if k in _NUMPY_PROTOCOL:  # numpy asks whether a value is an array (np.array(x.shape[2:]))
            if tracer is None or isinstance(tracer.value(self), SymTensor):
                raise torch.fx.proxy.TraceError("numpy of a traced tensor (np.asarray(x)): symshape follows the "
                                                "shapes of torch's tensors, not numpy's arrays")
            raise AttributeError(k)  # a size is none: numpy holds it as an object (each op Python's)
        return SizedAttribute(self, k)

    # x += y on a tensor is torch's in-place add_ (y must broadcast to x's shape, which x keeps);
    # fx has no in-place dunders, and Python would fall back to x = x + y (out of place: x may
    # grow). A size's x += 1 falls back as before (NotImplemented).
    def _in_place(self, method: str, other):
        tracer = self.__dict__.get("tracer")
        if tracer is None or not isinstance(tracer.value(self), SymTensor):
            return NotImplemented
        return tracer.create_proxy("call_method", method, (self, other), {})

    def __setitem__(self, key, value):
        # x[..., :k] = v: fx records no in-place item assignment; a node, whose rule checks v
        self.tracer.create_proxy("call_function", operator.setitem, (self, key, value), {})

    # math.ceil(H / 2), math.floor(...), round(...) are not proxied by fx: a graph node
    def __ceil__(self):
        return self.tracer.create_proxy("call_function", math.ceil, (self,), {})

    def __floor__(self):
        return self.tracer.create_proxy("call_function", math.floor, (self,), {})

    def __round__(self, ndigits=None):
        return self.tracer.create_proxy("call_function", round, (self,) if ndigits is None else (self, ndigits), {})

    def __format__(self, spec: str) -> str:
        # f"got {h}x{w}" in a model's message: the size as symshape writes it ("HxW")
        value = self.tracer.value(self)
        if isinstance(value, sympy.Basic):
            return format(str(value), spec)
        return super().__format__(spec)


def _held(tracer, proxy) -> torch.Tensor | None:
    """The model's own tensor a ``get_attr`` proxy stands for (a parameter, a buffer); None for
    any other proxy."""
    if not issubclass(type(proxy), SizedProxy) or proxy.node.op != "get_attr":  # (not isinstance:
        return None  # it asks __class__, which asks this)
    try:
        obj = attribute_at(getattr(tracer, "root", None), proxy.node.target)
    except AttributeError:
        return None
    return obj if type(obj) is torch.Tensor or issubclass(type(obj), nn.Parameter) else None


#: Python's in-place operators and the tensor methods they are (``x += y`` is ``x.add_(y)``)
_IN_PLACE = {"__iadd__": "add_", "__isub__": "sub_", "__imul__": "mul_", "__itruediv__": "div_",
             "__ifloordiv__": "floor_divide_", "__imod__": "remainder_", "__ipow__": "pow_",
             "__iand__": "bitwise_and_", "__ior__": "bitwise_or_", "__ixor__": "bitwise_xor_"}
for _dunder, _method in _IN_PLACE.items():
    setattr(SizedMixin, _dunder, lambda self, other, _method=_method: self._in_place(_method, other))


class SizedProxy(SizedMixin, torch.fx.Proxy):
    pass


def _unset_field(value, name: str) -> bool:
    """Whether ``value`` is a recorded ModelOutput (symshape.records) whose field ``name`` is
    not set: reading it gives None."""
    if not isinstance(value, Record):
        return False
    try:
        return value.field(name) is None
    except LookupError:
        return False


class SizedAttribute(SizedMixin, torch.fx.proxy.Attribute):
    pass
