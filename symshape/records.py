"""Objects of a model's own classes in what it returns: transformers' ``DynamicCache``.

A language model of transformers returns its key cache with its hidden states: an object of
the library's class, ``DynamicCache(layers=[DynamicLayer(keys=..., values=...), ...])``, which
torch.fx cannot record. symshape records such an object as what its shape is made of -- a
:class:`Record`: the fields that hold tensors (through lists, tuples, dicts and other such
objects), by name -- and torch's forward's object the same way (:func:`tensor_fields`), so
``analyze()`` states the shape of every tensor in the cache and the proof compares them. Its
other fields (flags, devices, a class to make layers of) say nothing about shapes.

A transformers ``ModelOutput`` (a dict that is a dataclass, with ``to_tuple``) is recorded
whole, with its class: a caller reads its fields by attribute (None where not set) and by place
(``outputs[0]``), as ``LlamaForCausalLM`` reads its inner model's.

Within one trace the object is the model's own, updated as the model updates it. One handed to
a call symshape runs on its own (a module run whole, or traced side by side) is refused by name
(``errors.ObjectArgument``), as that call may change it (the cache's ``update``) and a copy
would not show the change; where that call is a module traced by sides for its own branches,
the whole forward is traced by sides instead (symshape.trace).
"""

from __future__ import annotations

import dataclasses
import functools
import types
from typing import Any, Callable

import torch
import torch.fx
import torch.nn as nn

__all__ = ["Record", "output_mapping", "plain_object", "recorder", "tensor_fields"]

#: how deep objects inside objects are followed (a structure that refers to itself is not a shape)
MAX_DEPTH = 8


class Record(dict):
    """An object of a model's class, as its fields that hold tensors by name (a dict: shapes,
    evaluation and rendering read it as one), with its class (``cls``). A transformers
    ``ModelOutput`` (a dict of its fields that are set, each also an attribute) is recorded whole:
    ``mapping``."""

    __slots__ = ("cls",)

    def __init__(self, cls: type, fields: dict):
        super().__init__(fields)
        self.cls = cls

    @property
    def kind(self) -> str:
        return self.cls.__name__

    @property
    def mapping(self) -> bool:
        return issubclass(self.cls, dict)

    def field(self, name: str) -> Any:
        """``obj.name`` of the object recorded: a field recorded, or a ``ModelOutput``'s field
        that is not set (None); raises LookupError for any other (not recorded: it holds no
        tensor, or it is no field)."""
        if name in self:
            return self[name]
        if self.mapping and dataclasses.is_dataclass(self.cls) \
                and name in {f.name for f in dataclasses.fields(self.cls)}:
            return None
        raise LookupError(f"{self.kind}.{name} is not recorded (only the fields that hold tensors are)")

    def item(self, index: Any) -> Any:
        """``obj[index]`` of a ``ModelOutput``: a field by name, or by its place among the fields
        that are set (``outputs[0]``, ``outputs[1:]``: its ``to_tuple()``); raises LookupError
        (or TypeError) as the object does, or where it is no ModelOutput."""
        if not self.mapping:
            raise TypeError(f"{self.kind} is not indexed")
        return self[index] if isinstance(index, str) else tuple(self.values())[index]

    def __repr__(self) -> str:
        return f"{self.kind}({', '.join(f'{k}={v!r}' for k, v in self.items())})"


@functools.lru_cache(maxsize=None)
def recorder(cls: type) -> Callable[[dict], Record]:
    """The function a graph node that records an object of class ``cls`` calls (symshape's trace
    makes one per such object it hands to a node): its fields, as a :class:`Record`."""

    def record(fields: dict) -> Record:
        return Record(cls, fields)

    record.__name__ = record.__qualname__ = f"record_{cls.__name__}"
    record.record_of = cls  # type: ignore[attr-defined]
    return record


def output_mapping(value: Any) -> bool:
    """Whether ``value`` is a transformers ``ModelOutput`` (a dict that is a dataclass, with
    ``to_tuple``): recorded whole, so that its fields read as attributes
    (``outputs.last_hidden_state``, None where not set) and by place (``outputs[0]``), as a
    ModelOutput has them."""
    return isinstance(value, dict) and dataclasses.is_dataclass(value) and callable(getattr(value, "to_tuple", None))


_NOT_PLAIN = (nn.Module, torch.Tensor, torch.fx.Proxy, type, types.FunctionType, types.BuiltinFunctionType,
              types.MethodType, types.ModuleType)


def plain_object(value: Any) -> bool:
    """Whether ``value`` is an object of a class of the model's code or a library's (a class
    statement's: not one of Python's, nor torch's), with its fields in a ``__dict__``: what a
    :class:`Record` records."""
    cls = type(value)
    module = getattr(cls, "__module__", "") or ""
    return bool(cls.__flags__ & _HEAP_TYPE) and hasattr(value, "__dict__") and not isinstance(value, _NOT_PLAIN) \
        and module.split(".")[0] != "torch"


#: ``Py_TPFLAGS_HEAPTYPE``: a class made by a ``class`` statement (Python's own are not)
_HEAP_TYPE = 1 << 9


def _is_tensor(value: Any) -> bool:
    return isinstance(value, torch.Tensor)


def tensor_fields(obj: Any, convert: Callable[[Any], Any] = lambda v: v,
                  is_tensor: Callable[[Any], bool] = _is_tensor) -> dict:
    """``obj``'s fields that hold a tensor (``is_tensor``: a traced one, while symshape traces),
    in their order, each ``convert``-ed."""
    return {k: convert(v) for k, v in vars(obj).items() if holds_tensor(v, is_tensor)}


def holds_tensor(value: Any, is_tensor: Callable[[Any], bool] = _is_tensor, depth: int = 0) -> bool:
    """Whether ``value`` is a tensor, or holds one in a list, tuple, dict or plain object."""
    if is_tensor(value):
        return True
    if depth >= MAX_DEPTH:
        return False
    kind = type(value)  # (its real class: a traced value answers isinstance as what it stands for)
    if issubclass(kind, (list, tuple)):
        return any(holds_tensor(v, is_tensor, depth + 1) for v in value)
    if issubclass(kind, dict):
        return any(holds_tensor(v, is_tensor, depth + 1) for v in value.values())
    if plain_object(value):
        return any(holds_tensor(v, is_tensor, depth + 1) for v in vars(value).values())
    return False
