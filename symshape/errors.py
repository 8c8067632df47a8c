"""Every error symshape raises derives from :class:`SymshapeError`."""

from __future__ import annotations

__all__ = [
    "BoundExceeded",
    "ForwardRaises",
    "InvalidArgument",
    "InvalidInputSize",
    "NotASize",
    "SymshapeError",
    "TraceMismatch",
    "UnsupportedArgument",
    "UnsupportedOperation",
    "UnknownName",
    "UnsupportedWhereMetaDiffers",
    "UntraceableModel",
]


class SymshapeError(Exception):
    """Base class of symshape's errors."""


class UnsupportedOperation(SymshapeError):
    """An op has no shape rule: symshape refuses rather than guess.

    ``op`` names the op (a module class, a function or a tensor method), ``where`` the module
    path of the call and ``node`` the traced graph node (not in the message: ``symshape --debug``
    prints it).
    """

    def __init__(self, op: str, where: str, node: str, detail: str = ""):
        self.op, self.where, self.node, self.detail = op, where, node, detail
        #: the model's source line that made the call (``file:line: code``), where known
        self.line = ""
        #: the class of the module whose forward made the call (``Inner``), and its qualified
        #: name in the model (``body.1``; "" the model itself; None where not known)
        self.module, self.module_path = "", None
        #: the next step that works (analyze a part, write a module_rule, call .eval())
        self.hint = ""
        super().__init__(op, where, node, detail)

    def __str__(self) -> str:
        msg = f"{self._lead()} (called at {self.where!r}" + (f" in {self.module}" if self.module else "") + ")"
        if self.detail:
            msg += f": {self.detail}"
        if self.line and self.line not in self.detail:  # a refusal inside a refusal says it once
            msg += f"\n  at {self.line}"
        if self.hint:
            msg += f"\n{self.hint}"
        return msg

    def _lead(self) -> str:
        return f"no shape rule for {self.op}"


class UnsupportedArgument(UnsupportedOperation):
    """The op has a rule, but an argument or module attribute is of a kind the rule does not
    model (a string where a size belongs, a symbolic kernel size ...): refused, never guessed."""

    def _lead(self) -> str:
        return f"{self.op} cannot be analyzed with these arguments"


class UnsupportedWhereMetaDiffers(UnsupportedArgument):
    """Arguments whose shapes torch's meta kernel gives where its CPU kernels raise (or the
    other way): symshape refuses them by name and, unlike other unsupported arguments, does not
    run the op, its module or the model under the meta kernels instead."""


class ObjectArgument(UnsupportedOperation):
    """A call symshape runs on its own (a module run whole or traced side by side, a function
    without a rule) is given an object of the model's class (a key cache, symshape.records): the
    call may change it, and a copy would not show the change to the code after it. Where the
    call was one for its own branches on sizes, the whole forward is traced by sides instead."""


class SizeCases(UnsupportedArgument):
    """The op's output has a different structure (rank, number of tensors) depending on whether
    ``size`` is 1 (``x.squeeze()`` of a dim of size ``N``). ``analyze()`` then analyzes the two
    cases, ``size == 1`` and ``size != 1``, each on its own (``Analysis.cases``); where it cannot
    (a size that is not one of the input's), this is the refusal."""

    def __init__(self, op: str, layer: str, node: str, detail: str, size=None):
        super().__init__(op, layer, node, detail)
        self.size = size


class UntraceableModel(SymshapeError):
    """torch.fx could not trace a forward (typically Python control flow on sizes)."""

    def __init__(self, module: str, reason: str, line: str = "", hint: str = "", module_path: str | None = None):
        self.module, self.reason, self.line, self.hint = module, reason, line, hint
        #: the qualified name of the module that could not be traced ("" the model; None: not known)
        self.module_path = module_path
        super().__init__(module, reason, line, hint, module_path)

    def __str__(self) -> str:
        msg = f"cannot trace the forward of {self.module}: {self.reason}"
        if self.line:
            msg += f"\n  at {self.line}"
        if self.hint:
            msg += f"\n{self.hint}"
        return msg


class ForwardRaises(UntraceableModel):
    """The model's own code raises for the call symshape was given, and so does torch's forward
    of it (``torch_raises``: the error and the sizes it was run at): the call is refused, not
    only symshape's trace of it -- typically an input the forward needs and was not given."""

    def __init__(self, module: str, reason: str, line: str = "", hint: str = "", module_path: str | None = None,
                 torch_raises: str = ""):
        super().__init__(module, reason, line, hint, module_path)
        self.torch_raises = torch_raises
        self.args = (module, reason, line, hint, module_path, torch_raises)

    def __str__(self) -> str:
        msg = f"the forward of {self.module} raises {self.reason}"
        if self.line:
            msg += f"\n  at {self.line}"
        msg += f"\n  torch's own forward raises the same ({self.torch_raises}): the model refuses this call, " \
               "not only symshape's trace of it"
        if self.hint:
            msg += f"\n{self.hint}"
        return msg


class BoundExceeded(SymshapeError):
    """A bound on symshape's own work was reached (the ops of one trace, Python's recursion
    limit): the model or the question is larger than symshape answers, said instead of running
    without end. ``bound`` names it."""

    def __init__(self, bound: str, detail: str):
        self.bound, self.detail = bound, detail
        super().__init__(f"{detail} ({bound})")


class InvalidInputSize(SymshapeError, ValueError):
    """torch would refuse this input size; ``layer`` is the first step that fails."""

    def __init__(self, layer: str, reason: str, sizes: dict[str, int] | None = None):
        self.layer, self.reason, self.sizes = layer, reason, dict(sizes or {})
        where = ", ".join(f"{k}={v}" for k, v in self.sizes.items())
        msg = f"{layer}: {reason}"
        if where:
            msg += f" (at {where})"
        super().__init__(msg)


class InvalidArgument(SymshapeError, ValueError, TypeError):
    """An argument symshape's API was called with is not what it takes (a size that is not a
    positive int, a missing or unknown size name). It is both a ``ValueError`` and a
    ``TypeError``, so either ``except`` catches it."""


class UnknownName(InvalidArgument, KeyError):
    """A layer or size name the analysis does not have (also a ``KeyError``)."""

    __str__ = Exception.__str__


class NotASize(SymshapeError, TypeError):
    """A value used as a size is neither an integer nor a size expression (a string, a float,
    an object). symshape never parses or evaluates such a value: the rule that read it refuses,
    naming the layer (see :func:`symshape.dims.as_expr`)."""

    def __init__(self, value, what: str = "a size"):
        self.value, self.what = value, what
        super().__init__(f"{what} must be an int or a size expression, got {value!r} ({type(value).__name__})")


class TraceMismatch(SymshapeError):
    """A forward of the real model (on the meta device) contradicts what symshape traced: the
    trace followed a path torch does not take (a Python branch that tracing cannot see, a hook
    ...). symshape refuses rather than answer; ``sizes`` is where, ``mismatches`` what differed."""

    def __init__(self, sizes: dict, mismatches: list[str], layers: list[str] = ()):
        #: ``layers``: the steps that differed, first first
        self.sizes, self.mismatches, self.layers = dict(sizes), list(mismatches), list(layers)
        at = ", ".join(f"{k}={v}" for k, v in self.sizes.items()) or "the fixed size"
        super().__init__(f"the trace does not match the model at {at}: {self.mismatches[0]}"
                         + (f" (and {len(self.mismatches) - 1} more)" if len(self.mismatches) > 1 else ""))
