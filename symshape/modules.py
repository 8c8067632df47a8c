"""Questions about the user's modules that several layers ask, answered in one place."""

from __future__ import annotations

import contextlib
import copy
import copyreg
import functools
import inspect
import operator
import threading
import types
import weakref
from collections import OrderedDict
from itertools import chain, compress, filterfalse
from typing import Any, Iterator

import sympy
import torch
import torch.nn as nn

from .tensor import standard_strides

__all__ = ["attributes_kept", "copy_model", "has_lazy", "is_lazy", "is_lazy_parameter", "passes_through",
           "plain_getattr", "positional_call", "snapshots_shared", "tracing", "untraced", "attributes_of"]


def plain_getattr(obj: Any, name: str) -> Any:
    """``getattr`` that reads a module's parameters, buffers and children from their dicts:
    while fx traces, ``nn.Module.__getattr__`` is patched to make proxies."""
    if isinstance(obj, nn.Module):
        for table in ("_parameters", "_buffers", "_modules"):
            d = obj.__dict__.get(table, {})
            if name in d:
                return d[name]
    return getattr(obj, name)


def attribute_at(root: Any, path: str) -> Any:
    """``root``'s attribute at the dotted ``path`` (a ``get_attr`` node's target), each step read
    by :func:`plain_getattr`; AttributeError where one is missing."""
    obj = root
    for part in path.split("."):
        obj = plain_getattr(obj, part)
    return obj


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
                memo[id(p)] = nn.Parameter(_empty_like(p, device), requires_grad=p.requires_grad)
        for name, b in m._buffers.items():
            if b is None:
                continue
            if isinstance(b, nn.parameter.UninitializedBuffer):
                memo[id(b)] = nn.parameter.UninitializedBuffer(
                    requires_grad=b.requires_grad, device=device or b.device, dtype=b.dtype)
            elif device is not None:
                memo[id(b)] = _empty_like(b, device)
    return _deepcopy(model, memo)


def _empty_like(t: torch.Tensor, device: str) -> torch.Tensor:
    """``torch.empty_like(t, device=device)``: for a plain tensor laid out row by row (the
    standard strides of its shape, which ``empty_like`` gives it again), made directly
    (``empty_strided``, a C++ kernel on the meta device where ``empty_like``'s is Python: half
    the time, over a NASNet's 1,600 tensors). Any other layout is ``empty_like``'s."""
    if type(t) in (torch.Tensor, nn.Parameter) and t.layout == torch.strided and not t.is_quantized \
            and standard_strides(t.shape) == t.stride():
        return torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device=device)
    return torch.empty_like(t, device=device)


#: values ``copy.deepcopy`` returns as they are
_ATOMIC = frozenset({int, float, bool, complex, str, bytes, type(None), type, range, types.FunctionType,
                     types.BuiltinFunctionType, type(Ellipsis), type(NotImplemented), weakref.ref, property,
                     torch.dtype, torch.layout, torch.memory_format})
#: the containers a module tree is made of: copied here as ``copy.deepcopy`` copies them (a new
#: one of the same type, its items copied; an empty one -- most of a module's hook dicts -- needs
#: no more), and restored in place by :func:`attributes_kept` (a forward's cache, torch's own
#: ``_parameters``/``_buffers``/``_modules``/hook dicts)
_MAPS, _SEQUENCES = frozenset({dict, OrderedDict}), frozenset({list, set})
_CONTAINERS = _MAPS | _SEQUENCES


_MISSING = object()


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
    if cls in _CONTAINERS:
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
    no ``__deepcopy__``, no reduce methods or new-arguments of its own, no slots, no copyreg entry.
    Its own ``__getstate__`` and ``__setstate__`` are called as deepcopy calls them (``object``'s
    reduce gives the state ``__getstate__()`` returns, and the copy's ``__setstate__`` takes it
    deep-copied): a convolution's, which sets a default ``padding_mode``, copies by this road too."""
    return (getattr(cls, "__deepcopy__", None) is None and cls not in copyreg.dispatch_table
            and cls.__reduce_ex__ is object.__reduce_ex__ and cls.__reduce__ is object.__reduce__
            and getattr(cls, "__getnewargs_ex__", None) is None and getattr(cls, "__getnewargs__", None) is None
            and not copyreg._slotnames(cls) and not issubclass(cls, (list, dict)))


#: attribute values a fingerprint takes as they are (their equality is their meaning)
_PLAIN = (bool, int, float, complex, str, bytes, type(None), torch.dtype, torch.device, torch.Size)
#: the attributes every nn.Module has (its parameters, buffers, submodules, mode, hook dicts ...),
#: which a fingerprint states otherwise, or checks (hooks)
_TORCH_OWN = frozenset(vars(nn.Module()))


def module_fingerprint(module: nn.Module) -> Any:
    """What a module's forward can read of itself, as a hashable value, where all of it is plain:
    its class and every submodule's, their attributes (plain values, and tuples, lists and dicts
    of them), and each parameter's and buffer's shape, dtype and ``requires_grad``; but for
    the few attributes torch's and timm's modules are known not to read (a dropout's rate, as
    :func:`_unread` says). Two modules with equal fingerprints compute the same shapes from the
    same arguments (the twelve blocks of a ViT). Where an attribute is anything else (a function, an object, a tensor that is not
    a parameter or buffer), the module's identity: it equals only itself."""

    def plain(value):
        if isinstance(value, torch.fx.Proxy):
            # a traced value set by a forward (``blk.H = H``): what it stands for, a size's
            # expression (compared as such: comparing the proxies would be a branch on the sizes)
            traced = getattr(value.tracer, "value", None)
            value = traced(value) if traced is not None else None
            if not isinstance(value, sympy.Basic):
                raise TypeError("a traced value")
            return ("traced", value)
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
            unread = _unread(m)
            own = tuple((k, plain(v)) for k, v in vars(m).items()
                        if k not in _TORCH_OWN and k not in unread)
            if any(m._forward_hooks) or any(m._forward_pre_hooks):
                raise TypeError("hooks")
            out.append((name, type(m), m.training, own,
                        tuple((k, tensor(v)) for k, v in m._parameters.items()),
                        tuple((k, tensor(v)) for k, v in m._buffers.items()),
                        tuple(sorted(m._non_persistent_buffers_set))))
        return tuple(out)
    except TypeError:
        return ("module", id(module))


#: modules whose forward, in eval mode, reads none of these attributes (timm's DropPath returns
#: its input whatever its rate: the blocks of a stage, each with its own rate, are equal), by
#: the module and name of their class
_UNREAD_IN_EVAL = {("timm.layers.drop", "DropPath"): frozenset({"drop_prob", "scale_by_keep"})}


def _unread(m: nn.Module) -> frozenset:
    """The attributes of ``m`` that its forward does not read as it is (see _UNREAD_IN_EVAL);
    a dropout's probability, in any mode, where it is one (torch's ``F.dropout`` runs the same
    op whatever its rate, and raises, at every size, for a rate outside [0, 1])."""
    cls = type(m)
    if isinstance(m, nn.modules.dropout._DropoutNd):
        p = getattr(m, "p", None)
        return _RATE if isinstance(p, (int, float)) and not isinstance(p, bool) and 0 <= p <= 1 else frozenset()
    if m.training:
        return frozenset()
    return _UNREAD_IN_EVAL.get((cls.__module__, cls.__name__), frozenset())


_RATE = frozenset({"p"})


def _same(now, then) -> bool:
    """Whether a container holds the same objects as before, in the same order (identity:
    ``==`` on tensors is elementwise); ``then`` is a copy of its contents (a dict, or a list of a
    list's or set's items). Each comparison runs in C: a module tree holds a dozen dicts per
    module."""
    if isinstance(then, list):
        now = now if isinstance(now, list) else list(now)
        return len(now) == len(then) and all(map(operator.is_, now, then))
    return len(now) == len(then) and now.keys() == then.keys() and all(map(operator.is_, now.values(), then.values()))


def _restore(value, contents) -> None:
    value.clear()
    if isinstance(value, list):
        value.extend(contents)
    else:
        value.update(contents)


class _ThisThread(threading.local):
    """What this thread's traces and analyses have open (:func:`tracing`, :func:`untraced`,
    :func:`snapshots_shared`)."""

    def __init__(self):
        super().__init__()
        self.tracing = 0  # symshape traces open in this thread (symshape.trace)
        self.untraced = 0  # calls inside one that run as in torch (a module run whole on fake tensors)
        self.kept = None  # (a weak reference to a model, the attributes attributes_kept last restored on it)
        self.sharing = 0  # snapshots_shared blocks open in this thread


_HERE = _ThisThread()


@contextlib.contextmanager
def attributes_kept(model: nn.Module) -> Iterator["_Attributes"]:
    """Every submodule's attributes as they were, after the block: a traced forward that writes
    ``self.feat = y``, ``self.calls += 1`` or fills a cache (``self._cache[key] = ...``, timm's
    attention biases) leaves the model as it found it, and the next trace starts clean. One
    level of containers is restored in place (the same dict object, its old items, in their
    order). Within :func:`snapshots_shared`, the snapshot a block restored serves the next block
    on the same model while the model is still as it holds (the sides of a branch, traced one
    after another)."""
    last = _HERE.kept if _HERE.sharing else None
    saved = last[1] if last is not None and last[0]() is model and last[1].unchanged() else _Attributes(model)
    try:
        yield saved
    finally:
        saved.restore()
        if _HERE.sharing:
            _HERE.kept = (weakref.ref(model), saved)


@contextlib.contextmanager
def tensors_kept(model: nn.Module) -> Iterator[None]:
    """Every parameter's and buffer's values as they were, after the block: a forward that
    updates batch norm's running statistics (training mode), or rescales its own weights in place
    (transformers' RWKV in eval mode: ``weight.div_(...)``, or through ``.data``, which has a
    version counter of its own), leaves the model as it found it. Each tensor is copied before and
    compared after; a changed one is put back. (No dispatch mode watches the writes instead: one
    changes the strides some of torch's CPU kernels return.)"""
    tensors = [t for t in chain(model.parameters(), model.buffers())
               if t.layout == torch.strided and t.device.type != "meta"]
    with torch.no_grad():
        copies = [t.detach().clone() for t in tensors]
    try:
        yield
    finally:
        with torch.no_grad():
            for t, old in zip(tensors, copies):
                if not torch.equal(t, old):
                    t.copy_(old)


@contextlib.contextmanager
def snapshots_shared() -> Iterator[None]:
    """For the block (symshape.trace: one trace and the traces inside it), the snapshot of a
    model that :func:`attributes_kept` restored serves its next block on that model; after it,
    the snapshot is forgotten: it holds every attribute of the model, which must not outlive
    the analysis (a deleted model's parameters freed)."""
    _HERE.sharing += 1
    try:
        yield
    finally:
        _HERE.sharing -= 1
        if not _HERE.sharing:
            _HERE.kept = None


def attributes_of(module: nn.Module) -> "_Attributes":
    """The attributes of ``module`` and its submodules as they are now: ``unchanged()`` tells
    whether they still are (every attribute the same object, one level of containers too)."""
    return _Attributes(module)


class _Attributes:
    """What :func:`attributes_kept` restores: each module's ``__dict__`` as it is, and the
    contents of each container it holds. Whether anything changed is asked first of the whole
    tree at once -- every attribute's and every container item's name and identity, in order,
    and every length, as flat lists built and compared in C -- and only then module by module:
    a NASNet holds 25,000 attributes, and one trace after another rarely changes any."""

    def __init__(self, model: nn.Module):
        self.dicts = list(map(vars, model.modules()))
        self.copies = list(map(dict.copy, self.dicts))
        values = list(chain.from_iterable(map(dict.values, self.copies)))
        inner = list(compress(values, map(_CONTAINERS.__contains__, map(type, values))))
        # an empty container (most of torch's hook dicts) is only emptied again, if need be
        self.empty = list(filterfalse(None, inner))
        full = list(filter(None, inner))
        self.maps = list(compress(full, map(_MAPS.__contains__, map(type, full))))
        self.sequences = list(compress(full, map(_SEQUENCES.__contains__, map(type, full))))
        self.contents = [*map(dict.copy, self.maps), *map(list, self.sequences)]
        self.key = self._key()

    def _key(self) -> tuple:
        """The names, identities and lengths of everything restored, as they are now."""
        return (any(self.empty), list(map(len, self.dicts)), list(chain.from_iterable(self.dicts)),
                list(map(id, chain.from_iterable(map(dict.values, self.dicts)))),
                list(map(len, self.maps)), list(chain.from_iterable(self.maps)),
                list(map(id, chain.from_iterable(map(dict.values, self.maps)))),
                list(map(len, self.sequences)), list(map(id, chain.from_iterable(self.sequences))))

    def unchanged(self) -> bool:
        """Whether everything is as it was (the copies hold every old object: an equal identity
        is the same object)."""
        return self._key() == self.key

    def restore(self) -> None:
        if self.unchanged():
            return
        for now, then in zip(self.dicts, self.copies):
            if not _same(now, then):
                now.clear()
                now.update(then)
        for value in self.empty:
            value.clear()
        for value, then in zip([*self.maps, *self.sequences], self.contents):
            if not _same(value, then):
                _restore(value, then)


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


# -- module calls that run as in torch, inside a trace --------------------------------------------


@contextlib.contextmanager
def tracing() -> Iterator[None]:
    """A symshape trace open in this thread for the block: fx's patches of ``nn.Module`` in
    place are its own, which :func:`untraced` lets calls pass through."""
    _HERE.tracing += 1
    untraced_before, _HERE.untraced = _HERE.untraced, 0  # (a trace inside a call run as in torch traces)
    try:
        yield
    finally:
        _HERE.tracing -= 1
        _HERE.untraced = untraced_before


@contextlib.contextmanager
def untraced() -> Iterator[bool]:
    """Module calls and attribute reads in this thread, for the block, run as in torch although
    a symshape trace has patched ``nn.Module.__call__`` and ``__getattr__`` (its tracer passes
    them through: :func:`passes_through`). Yields whether a symshape trace is open here; where
    none is, the patches in place (if any) are not symshape's, and the caller undoes them.
    Passing through replaces fx's undo and redo of its patches, two class attributes of
    ``nn.Module`` set each way: each such set updates every subclass (a millisecond, with
    timm's thousands), and a model's generic ops each ran under one."""
    if not _HERE.tracing:
        yield False
        return
    _HERE.untraced += 1
    try:
        yield True
    finally:
        _HERE.untraced -= 1


def traces_open() -> int:
    """How many symshape traces are open in this thread (see :func:`tracing`)."""
    return _HERE.tracing


def passes_through() -> bool:
    """Whether this thread's module calls run as in torch now (see :func:`untraced`)."""
    return _HERE.untraced > 0
