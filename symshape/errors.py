"""Every error symshape raises derives from :class:`SymshapeError`."""

from __future__ import annotations

__all__ = [
    "InvalidInputSize",
    "SymshapeError",
    "UnsupportedOperation",
    "UntraceableModel",
]


class SymshapeError(Exception):
    """Base class of symshape's errors."""


class UnsupportedOperation(SymshapeError):
    """An op has no shape rule: symshape refuses rather than guess.

    ``op`` names the op (a module class, a function or a tensor method), ``where`` the module
    path of the call and ``node`` the traced graph node.
    """

    def __init__(self, op: str, where: str, node: str, detail: str = ""):
        self.op, self.where, self.node, self.detail = op, where, node, detail
        msg = f"no shape rule for {op} (called at {where!r}, traced node: {node})"
        if detail:
            msg += f": {detail}"
        super().__init__(msg)


class UntraceableModel(SymshapeError):
    """torch.fx could not trace a forward (typically Python control flow on sizes)."""

    def __init__(self, module: str, reason: str, line: str = "", hint: str = ""):
        self.module, self.reason, self.line, self.hint = module, reason, line, hint
        msg = f"cannot trace the forward of {module}: {reason}"
        if line:
            msg += f"\n  at {line}"
        if hint:
            msg += f"\n{hint}"
        super().__init__(msg)


class InvalidInputSize(SymshapeError, ValueError):
    """torch would refuse this input size; ``layer`` is the first step that fails."""

    def __init__(self, layer: str, reason: str, sizes: dict[str, int] | None = None):
        self.layer, self.reason, self.sizes = layer, reason, dict(sizes or {})
        where = ", ".join(f"{k}={v}" for k, v in self.sizes.items())
        msg = f"{layer}: {reason}"
        if where:
            msg += f" (at {where})"
        super().__init__(msg)
