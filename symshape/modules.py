"""Questions about the user's modules that several layers ask, answered in one place."""

from __future__ import annotations

import contextlib
import copy
import copyreg
import functools
import inspect
import types
import weakref
from collections import OrderedDict
from typing import Any, Iterator

import torch
import torch.nn as nn

__all__ = ["attributes_kept", "copy_model", "has_lazy", "is_lazy", "is_lazy_parameter", "positional_call"]


def is_lazy(module: nn.Module) -> bool:
    """Whether ``module`` still holds uninitialized lazy parameters (a ``LazyLinear`` before its
    first call): its in_features or in_channels are set by that call, so nothing checks them."""
    return bool(getattr(module, "has_uninitialized_params", lambda: False)())


def has_lazy(model: nn.Module) -> bool:
    """Whether any submodule of ``model`` is still lazy."""
    return any(is_lazy(m) for m in model.modules())


def is_lazy_parameter(value: Any) -> bool:
    """An uninitialized lazy parameter or buffer: it has no shape yet."""
    return isinstance(value, (nn.parameter.UninitializedParameter, nn.parameter.UninitializedBuffer))


def copy_model(model: nn.Module, device: str | None = None) -> nn.Module:
    """A deep copy. Uninitialized lazy tensors (which refuse deepcopy) get fresh counterparts;
    with ``device="meta"`` every parameter and buffer is a meta tensor, so nothing is duplicated."""
    memo: dict[int, Any] = {}
    for m in model.modules():
        for name, p in m._parameters.items():
            if p is None:
                continue
            if isinstance(p, nn.parameter.UninitializedParameter):
                memo[id(p)] = nn.parameter.UninitializedParameter(
                    requires_grad=p.requires_grad, device=device or p.device, dtype=p.dtype)
            elif device is not None:
                memo[id(p)] = nn.Parameter(torch.empty_like(p, device=device), requires_grad=p.requires_grad)
        for name, b in m._buffers.items():
            if b is None:
                continue
            if isinstance(b, nn.parameter.UninitializedBuffer):
                memo[id(b)] = nn.parameter.UninitializedBuffer(
                    requires_grad=b.requires_grad, device=device or b.device, dtype=b.dtype)
            elif device is not None:
                memo[id(b)] = torch.empty_like(b, device=device)
    return _deepcopy(model, memo)


#: values ``copy.deepcopy`` returns as they are
_ATOMIC = frozenset({int, float, bool, complex, str, bytes, type(None), type, range, types.FunctionType,
                     types.BuiltinFunctionType, type(Ellipsis), type(NotImplemented), weakref.ref, property,
                     torch.dtype, torch.layout, torch.memory_format})
#: containers copied here as ``copy.deepcopy`` copies them: a new one of the same type, its
#: items copied (an empty one -- most of a module's hook dicts -- needs no more)
_CONTAINER_TYPES = frozenset({dict, OrderedDict, list, set})


def _deepcopy(value, memo: dict):
    """``copy.deepcopy(value, memo)``, by a shorter road for what a module tree is mostly made of
    (modules whose class copies as ``nn.Module`` does, their attribute dicts, empty hook dicts,
    plain values): the same copy, without deepcopy's reduce protocol at every one of a ViT's
    ten thousand objects. Anything else is deepcopy's."""
    cls = type(value)
    if cls in _ATOMIC:
        return value
    found = memo.get(id(value), _MISSING)
    if found is not _MISSING:
        return found
    if cls in _CONTAINER_TYPES:
        new = cls()
        memo[id(value)] = new
        if value:
            if cls is list:
                new.extend(_deepcopy(v, memo) for v in value)
            elif cls is set:
                new.update(_deepcopy(v, memo) for v in value)
            else:
                for k, v in value.items():
                    new[_deepcopy(k, memo)] = _deepcopy(v, memo)
        _keep_alive(value, memo)
        return new
    if isinstance(value, nn.Module) and _copies_as_module(cls):
        new = cls.__new__(cls)  # what copyreg.__newobj__, which deepcopy calls, does
        memo[id(value)] = new
        state = value.__getstate__()
        new.__setstate__(_deepcopy(state, memo))
        _keep_alive(value, memo)
        return new
    return copy.deepcopy(value, memo)


def _keep_alive(value, memo: dict) -> None:
    """What deepcopy does with each object it copies: the original is kept alive until the copy
    is done, so that no other object takes its id meanwhile."""
    try:
        memo[id(memo)].append(value)
    except KeyError:
        memo[id(memo)] = [value]


@functools.lru_cache(maxsize=None)
def _copies_as_module(cls: type) -> bool:
    """Whether ``copy.deepcopy`` copies an instance of ``cls`` as it copies a plain ``nn.Module``:
    no ``__deepcopy__``, no reduce or state methods of its own, no slots, no copyreg entry."""
    return (getattr(cls, "__deepcopy__", None) is None and cls not in copyreg.dispatch_table
            and cls.__reduce_ex__ is object.__reduce_ex__ and cls.__reduce__ is object.__reduce__
            and cls.__getstate__ is nn.Module.__getstate__ and cls.__setstate__ is nn.Module.__setstate__
            and not copyreg._slotnames(cls) and not issubclass(cls, (list, dict)))


#: attribute values a fingerprint takes as they are (their equality is their meaning)
_PLAIN = (bool, int, float, complex, str, bytes, type(None), torch.dtype, torch.device, torch.Size)
#: the attributes every nn.Module has (its parameters, buffers, submodules, mode, hook dicts ...),
#: which a fingerprint states otherwise, or checks (hooks)
_TORCH_OWN = frozenset(vars(nn.Module()))


def module_fingerprint(module: nn.Module) -> Any:
    """What a module's forward can read of itself, as a hashable value, where all of it is plain:
    its class and every submodule's, their attributes (plain values, and tuples, lists and dicts
    of them), and each parameter's and buffer's shape, dtype and ``requires_grad``. Two modules
    with equal fingerprints compute the same shapes from the same arguments (the twelve blocks
    of a ViT). Where an attribute is anything else (a function, an object, a tensor that is not
    a parameter or buffer), the module's identity: it equals only itself."""

    def plain(value):
        if isinstance(value, _PLAIN):
            return (type(value), value)
        if isinstance(value, (tuple, list)):
            return (type(value), tuple(plain(v) for v in value))
        if isinstance(value, dict):
            return (dict, tuple((plain(k), plain(v)) for k, v in value.items()))
        raise TypeError(type(value).__name__)

    def tensor(t):
        return None if t is None else (type(t), tuple(t.shape), t.dtype, t.requires_grad)

    out = []
    try:
        for name, m in module.named_modules(remove_duplicate=False):
            own = tuple((k, plain(v)) for k, v in vars(m).items()
                        if k not in _TORCH_OWN)
            if any(m._forward_hooks) or any(m._forward_pre_hooks):
                raise TypeError("hooks")
            out.append((name, type(m), m.training, own,
                        tuple((k, tensor(v)) for k, v in m._parameters.items()),
                        tuple((k, tensor(v)) for k, v in m._buffers.items()),
                        tuple(sorted(m._non_persistent_buffers_set))))
        return tuple(out)
    except TypeError:
        return ("module", id(module))


#: the containers whose contents :func:`attributes_kept` restores in place (a forward's cache,
#: and torch's own ``_parameters``/``_buffers``/``_modules``/hook dicts)
_CONTAINERS = (dict, OrderedDict, list, set)


def _contents(value):
    return list(value) if isinstance(value, (list, set)) else dict(value)


_MISSING = object()


def _same(now, then) -> bool:
    """Whether a container holds the same objects as before (identity: ``==`` on tensors is
    elementwise)."""
    if isinstance(then, list):
        return len(now) == len(then) and all(a is b for a, b in zip(now, then))
    return len(now) == len(then) and all(now.get(k, _MISSING) is v for k, v in then.items())


def _restore(value, contents) -> None:
    value.clear()
    if isinstance(value, list):
        value.extend(contents)
    else:
        value.update(contents)


@contextlib.contextmanager
def attributes_kept(model: nn.Module) -> Iterator[None]:
    """Every submodule's attributes as they were, after the block: a traced forward that writes
    ``self.feat = y``, ``self.calls += 1`` or fills a cache (``self._cache[key] = ...``, timm's
    attention biases) leaves the model as it found it, and the next trace starts clean. One
    level of containers is restored in place (the same dict object, its old items)."""
    saved = []
    for m in model.modules():
        attrs = dict(m.__dict__)
        # an empty container (most of torch's hook dicts) is only emptied again, if need be
        inner = [(v, _contents(v) if v else None) for v in attrs.values() if type(v) in _CONTAINERS]
        saved.append((m, attrs, inner))
    try:
        yield
    finally:
        for m, attrs, inner in saved:
            if not _same(m.__dict__, attrs):
                m.__dict__.clear()
                m.__dict__.update(attrs)
            for value, contents in inner:
                if contents is None:
                    if value:
                        value.clear()
                elif not _same(_contents(value), contents):
                    _restore(value, contents)


def positional_call(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """A module called with its inputs by keyword (``self.lin(input=x)``), as its ``forward``
    binds them: the arguments of positional parameters positional (as a module rule, and a
    hook's "first input", take them), keyword-only ones still keywords. A call its ``forward``
    does not bind is returned as it is."""
    if not kwargs:
        return args, kwargs
    try:
        bound = inspect.signature(module.forward).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return args, kwargs
    return tuple(bound.args), dict(bound.kwargs)
