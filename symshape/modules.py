"""Questions about the user's modules that several layers ask, answered in one place."""

from __future__ import annotations

import contextlib
import copy
from collections import OrderedDict
from typing import Any, Iterator

import torch
import torch.nn as nn

__all__ = ["attributes_kept", "copy_model", "has_lazy", "is_lazy", "is_lazy_parameter"]


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
        inner = [(v, _contents(v)) for v in attrs.values() if type(v) in _CONTAINERS]
        saved.append((m, attrs, inner))
    try:
        yield
    finally:
        for m, attrs, inner in saved:
            if not _same(m.__dict__, attrs):
                m.__dict__.clear()
                m.__dict__.update(attrs)
            for value, contents in inner:
                if not _same(_contents(value), contents):
                    _restore(value, contents)
