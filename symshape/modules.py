"""Questions about the user's modules that several layers ask, answered in one place."""

from __future__ import annotations

import contextlib
import copy
import inspect
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
    return copy.deepcopy(model, memo)


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
