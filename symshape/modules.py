"""Questions about the user's modules that several layers ask, answered in one place."""

from __future__ import annotations

from typing import Any

import torch.nn as nn

__all__ = ["is_lazy", "is_lazy_parameter", "has_lazy"]


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
