"""Questions about the user's modules that several layers ask, answered in one place."""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn as nn

__all__ = ["copy_model", "has_lazy", "is_lazy", "is_lazy_parameter"]


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
