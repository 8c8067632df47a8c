"""nn.Module -> a torch.fx Graph of the ops its forward executes, without running or changing it.

Modules with a shape rule are leaves (one ``call_module`` node each); other torch.nn modules are
leaves too, so that a missing rule is reported by name instead of traced into. Everything else is
traced through with torch.fx. An ``nn.Sequential`` of leaves takes a fast path: its graph is a
straight chain built directly, with no tracing.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import linecache
import operator
import os
import sys
import threading
import traceback
from dataclasses import dataclass
from typing import Any

import sympy
import torch
import torch.fx
import torch.nn as nn

from .bounds import ReadValue
from .dims import SizeRatio, decide, holds_at_every_size, implied, smallest_value, solved_equality
from .errors import BoundExceeded, InvalidArgument, ObjectArgument, SizeCases, SymshapeError, UnsupportedOperation, UnsupportedWhereMetaDiffers, UntraceableModel
from . import callsite, fxstate
from .helpers import MAX_HELPERS, HelperRefused, branching_helper, helpers_wrapped
from .modules import attributes_kept, passes_through, snapshots_shared, traces_open, tracing
from .rules import rule_for_module, vision
from .proxies import SizedProxy
from .rebinding import cover, factories_traced
from .records import output_mapping, plain_object, recorder, tensor_fields
from .tensor import Pieces, Repeated, SymTensor, tensors_in

__all__ = ["HINT", "HINT_WHY", "MAX_SIDES", "LibraryFunction", "ModelRaised", "Path", "SizeBranch", "Traced", "is_dynamic", "library_function", "scope_of",
           "trace", "user_line"]

_TORCH_DIR = os.path.dirname(torch.__file__)
_OWN_DIR = os.path.dirname(__file__)


#: why fx stops at some Python, said before what can be done about it
HINT_WHY = (
    "symshape follows forward with torch.fx, which cannot run Python control flow (if, while, "
    "int(), math.*) whose outcome depends on the input's size or values (loops over x.shape and "
    "checks of x.dim() are fine)."
)

HINT = (
    "  " + HINT_WHY + "\nwhat you can do:\n"
    "  - analyze a part that traces, e.g. symshape.analyze(model.features, input_shape);\n"
    "  - move the size-dependent code into its own nn.Module and register a shape rule for it "
    "with @symshape.module_rule (see docs/extending.md);\n"
    "  - express the computation with tensor ops (x.flatten(1), x.view(x.size(0), -1)) "
    "instead of Python arithmetic on sizes."
)


@dataclass(frozen=True)
class Traced:
    """The graph of ``root``'s forward; node targets of ``call_module`` are qualified names.

    ``propagation``: what a propagator fed while tracing computed (None when there was none).
    """

    graph: torch.fx.Graph
    root: nn.Module
    propagation: Any = None


def hooked(m: nn.Module) -> bool:
    """Whether calling ``m`` runs more than its forward: forward hooks or pre-hooks of its own
    (not a lazy module's shape inference), or a class that overrides ``__call__``. Such a module
    is traced through (its hooks run on the traced values), never one call of the graph."""
    if m._forward_hooks or any(getattr(h, "__func__", None) is not _LAZY_INFER for h in m._forward_pre_hooks.values()):
        return True
    return any("__call__" in vars(c) for c in type(m).__mro__ if c is not nn.Module and issubclass(c, nn.Module))


_LAZY_INFER = torch.nn.modules.lazy.LazyModuleMixin._infer_parameters


def _global_hooks() -> list[str]:
    """torch's process-wide module hooks that change what a forward returns (none, normally)."""
    import torch.nn.modules.module as module_
    names = ("_global_forward_pre_hooks", "_global_forward_hooks")
    return [n.lstrip("_") for n in names if getattr(module_, n, None)]


def own_forward(m: nn.Module):
    """The forward set on the module itself, which torch calls in place of its class's
    (pretrainedmodels sets ``model.forward = types.MethodType(forward, model)`` on the torchvision
    models it adapts); None where it has none, or one that is its class's own forward."""
    own = vars(m).get("forward")
    if own is None or getattr(own, "__self__", None) is m and getattr(own, "__func__", None) is type(m).forward:
        return None
    return own


def _is_leaf(m: nn.Module) -> bool:
    if hooked(m) or own_forward(m) is not None:  # (its own forward is traced, not its class's rule)
        return False
    if rule_for_module(m) is not None:
        return True
    if isinstance(m, nn.Sequential) and type(m).forward is nn.Sequential.forward:
        return False
    mod = type(m).__module__
    return mod.startswith("torch.nn") or mod.startswith("torch.ao.nn")


#: the key of a ``get_attr`` node's meta that holds the tensor constant fx made for it (fx sets
#: it as an attribute of the model while tracing; symshape takes it off again)
CONSTANT = "symshape_constant"
#: Python's types as torch reads them where a dtype is asked for (``dtype=int``: int64)
_PYTHON_DTYPES = {int: torch.int64, float: torch.float64, bool: torch.bool, complex: torch.complex128}
#: a node's meta key: the module call it is repeats an equal earlier one (Propagator.repeat_key)
REPEAT = "symshape_repeat"
#: a repeating call's node meta: ``(steps, shape)``, the number of steps up to and with its copies,
#: and its output shape (the proof compares it with torch's)
REPEAT_CHECK = "symshape_repeat_check"

#: the most objects of the model's classes one trace records (symshape.records)
MAX_RECORDS = 4096

#: the most sides a module's Python branches on sizes are followed on (see :class:`Path`)
MAX_SIDES = 64


class SizeBranch(torch.fx.proxy.TraceError):
    """Python branched on a condition that depends on the input size (``if h % 32:``), in a
    trace that does not follow branches: the module is traced again, once a side (:class:`Path`)."""

    def __init__(self, cond: sympy.Basic):
        self.cond = cond
        super().__init__(
            f"symbolically traced variables cannot be used as inputs to control flow: the "
            f"condition {cond} depends on the input size"
        )


class ModelRaised(Exception):
    """The model's own code raised (``raise ValueError(...)``, ``assert``) on the side traced:
    torch would raise there too. ``message``: the model's message."""

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


#: Python's comparisons: of two sizes, a bool
_COMPARISONS = frozenset({operator.eq, operator.ne, operator.lt, operator.le, operator.gt, operator.ge})


def _condition(value) -> sympy.Basic:
    """What Python's ``bool()`` asks of a size value: a relation, or ``value != 0``."""
    if isinstance(value, sympy.Expr) and not isinstance(value, sympy.logic.boolalg.Boolean):
        return sympy.Ne(value, 0)
    return value


class Path:
    """One side of every Python branch on a size: the answers to the conditions in the order
    the forward asks them. The first ``len(forced)`` new conditions get the answers ``forced``,
    later ones True; a condition already answered (or its negation) gets the same answer, and
    one that holds at every size or none (symshape.dims.decide) is no branch.
    """

    def __init__(self, forced: list[bool] | tuple = ()):
        self.forced = list(forced)
        self.decisions: list[tuple[sympy.Basic, bool]] = []
        #: sizes this side's answers make 0 (``pad > 0`` answered False, ``h % 7 == 0`` True), for
        #: the values computed after the answer: a pad of 0 is no pad (see :func:`_zeroed`)
        self.zeros: dict[sympy.Expr, sympy.Integer] = {}

    def restart(self) -> None:
        self.decisions = []
        self.zeros = {}

    def decide(self, value) -> bool:
        cond = _condition(value)
        if cond in (sympy.true, sympy.false):
            return bool(cond)
        solved = solved_equality(cond)  # (the same condition written another way: dims)
        if solved in (sympy.true, sympy.false):
            return bool(solved)
        for c, answer in self.decisions:
            if c == cond or solved_equality(c) == solved:
                return answer
            if c == sympy.Not(cond) or solved_equality(c) == sympy.Not(solved):
                return not answer
        pinned = {c.lhs: c.rhs for c, answer in self.decisions
                  if answer and isinstance(c, sympy.Eq) and c.lhs.is_Symbol and c.rhs.is_Integer}
        known = cond.xreplace({**self.zeros, **pinned}) if pinned or self.zeros else cond
        if known in (sympy.true, sympy.false):
            return bool(known)
        settled = decide(known)
        if settled is None and self.decisions:  # what this side's answers so far settle (dims.implied)
            settled = self._implied(known)
        if settled is not None:
            return settled
        if len(self.decisions) >= MAX_SIDES:
            raise UntraceableModel("a module", f"its Python branches on the sizes more than {MAX_SIDES} times "
                                               f"on one side (the last condition: {cond})")
        i = len(self.decisions)
        answer = self.forced[i] if i < len(self.forced) else True
        self.decisions.append((cond, answer))
        zero = _zeroed(cond if answer else sympy.Not(cond))
        if zero is not None:
            self.zeros[zero] = sympy.Integer(0)
        return answer

    def _implied(self, cond) -> bool | None:
        """True where the answers so far imply ``cond`` at every size where they hold, False where
        they imply its negation (VGG's ``max(7, h)`` on the side ``h < 7``: no side where both
        ``h < 7`` and ``h > 7``), else None."""
        if not isinstance(cond, sympy.Rel):
            return None
        facts = tuple(self.conditions())
        if implied(facts, cond):
            return True
        negated = cond.negated
        return False if isinstance(negated, sympy.Rel) and implied(facts, negated) else None

    def conditions(self) -> list[sympy.Basic]:
        """The conditions that hold on this side."""
        return [c if answer else sympy.Not(c) for c, answer in self.decisions]

    def others(self) -> list[list[bool]]:
        """The answers that lead to the other side of each branch this side took first."""
        answers = [a for _, a in self.decisions]
        return [answers[:j] + [not answers[j]] for j in range(len(self.forced), len(answers))]


def _zeroed(holds: sympy.Basic) -> sympy.Expr | None:
    """The size expression that ``holds`` makes 0: ``e == 0``, or ``e <= 0`` (``e < 1``) for an
    ``e`` that is never negative (a remainder, a pad amount). A bare symbol is never one (an
    input size is at least 1)."""
    if not isinstance(holds, sympy.Rel) or not holds.rhs.is_Integer:
        return None
    e, k = holds.lhs, int(holds.rhs)
    if e.is_Symbol or e.is_Number or not e.free_symbols:
        return None
    if isinstance(holds, sympy.Eq) and k == 0:
        return e
    if (isinstance(holds, sympy.Le) and k == 0) or (isinstance(holds, sympy.Lt) and k == 1):
        low = smallest_value(e)
        if e.is_nonnegative or (low is not None and low >= 0) or decide(sympy.Ge(e, 0)):
            return e
    return None


def _bind(value, placeholder):
    """``value`` (an argument of a call) with each symbolic value in it replaced by
    ``placeholder()``, in order, tuples and lists rebuilt: the placeholders of a traced call."""
    if is_dynamic(value):
        return placeholder()
    if isinstance(value, (tuple, list)) and not hasattr(value, "_fields"):
        return type(value)(_bind(v, placeholder) for v in value)
    return value


def _containers(value, out: list | None = None, seen: set | None = None) -> list:
    """The lists, dicts and sets in a call's arguments (nested in tuples, lists and dicts), each
    with what it holds: :func:`_changed` tells whether the call changed one. Each once (a list
    may hold itself)."""
    out = [] if out is None else out
    seen = set() if seen is None else seen
    kind = type(value)  # (its true class: a traced value answers isinstance as what it stands for,
    if issubclass(kind, torch.fx.Proxy):  # and iterating it would add nodes to the graph)
        return out
    if issubclass(kind, (tuple, list, dict, set)):
        if id(value) in seen:
            return out
        seen.add(id(value))
    if issubclass(kind, (list, dict, set)):
        out.append((value, _items(value)))
    if issubclass(kind, (tuple, list, dict)):
        for v in value.values() if issubclass(kind, dict) else value:
            _containers(v, out, seen)
    return out


def _list_ids(values, out: set, dicts: set | None = None) -> None:
    """The ids of the lists among ``values`` and in the tuples, lists and dicts they hold, into
    ``out`` (what :func:`_containers` finds, lists alone and without copying what they hold: a
    module call that returns a list asks it of every attribute of every module inside)."""
    dicts = set() if dicts is None else dicts
    for v in values:
        kind = type(v)
        if issubclass(kind, torch.fx.Proxy):  # (see _containers)
            continue
        if issubclass(kind, list):
            if id(v) not in out:  # (a list may hold itself)
                out.add(id(v))
                _list_ids(v, out, dicts)
        elif issubclass(kind, tuple):
            _list_ids(v, out, dicts)
        elif issubclass(kind, dict) and id(v) not in dicts:  # (a dict may hold itself too)
            dicts.add(id(v))
            _list_ids(v.values(), out, dicts)


def _items(container) -> list:
    """What a list, set or dict holds (a dict's keys, then its values)."""
    return [*container.keys(), *container.values()] if isinstance(container, dict) else list(container)


def _changed(held: list) -> bool:
    """Whether a container :func:`_containers` listed holds other items now, compared by
    identity (``==`` of traced values would be a node of the graph)."""
    for container, items in held:
        now = _items(container)
        if len(now) != len(items) or any(a is not b for a, b in zip(now, items)):
            return True
    return False


#: where a traced value sits in the form of a module call's output (_Tracer._output)
LEAF = object()


def _rebuilt(proxy: torch.fx.Proxy, form):
    """The output of a repeated module call (one node of the graph, ``proxy``) in the form of the
    first call's (``form``, see _Tracer._output): its tuples and lists again, each traced value
    an item of the node's value (``proxy[0][1]``), each other item as it was."""
    if form is LEAF:
        return proxy
    if type(form) in (tuple, list):
        return type(form)(_rebuilt(proxy[i], f) if _traced(f) else f for i, f in enumerate(form))
    return form


def _plain(value) -> bool:
    """A tensor, a size, or a tuple or list of them (what an item of a repeated output may be)."""
    if isinstance(value, (SymTensor, int, sympy.Expr)):
        return True
    return type(value) in (tuple, list) and all(_plain(v) for v in value)


def _holds_list(out) -> bool:
    """Whether a module call's output is or holds a list (in its tuples and lists)."""
    return type(out) is list or type(out) is tuple and any(map(_holds_list, out))


def _traced(form) -> bool:
    """Whether a traced value sits in ``form``."""
    return form is LEAF or (type(form) in (tuple, list) and any(_traced(f) for f in form))


def is_dynamic(value) -> bool:
    """A value that depends on the input size: a tensor or a size expression."""
    if isinstance(value, sympy.Basic):
        return bool(value.free_symbols)
    if isinstance(value, SizeRatio):
        return bool(value.expr.free_symbols)
    return isinstance(value, SymTensor)


class _Tracer(torch.fx.Tracer):
    """torch.fx's tracer, told each node's symbolic value as it is made.

    With a propagator (an object with ``feed(node)`` and ``env``: node -> value, see
    :class:`symshape.engine.Propagator`) the tracer knows ranks and sizes while it traces, so
    Python that only asks about them runs: ``len(x.shape)``, ``for s in x.size()[1:]: n *= s``,
    ``if x.dim() == 3:``. A condition that depends on the input size still cannot be traced.
    """

    def __init__(self, propagator=None, leaves: frozenset = frozenset(), path: Path | None = None,
                 call: tuple | None = None, helpers: tuple = ()):
        # buffers become graph nodes, so that slicing one by a size (``self.mask[:, :, :T, :T]``)
        # is an op with a rule rather than Python indexing a real tensor with a traced value
        super().__init__()
        self.proxy_buffer_attributes = True
        self.thread = threading.get_ident()
        self.propagator = propagator
        #: modules whose forward fx could not follow: called whole (torch's meta kernels run them)
        self.leaves = leaves
        #: the side of each branch on a size to follow (None: such a branch stops the trace)
        self.path = path
        #: the root's call ``(args, kwargs)``, symbolic values among them, when tracing one call
        self.call = call
        #: (id of the module, (key, index)) while a call equal to an earlier one becomes one node
        self._repeating: tuple | None = None
        #: the model's own trace (not a side of a branch): what trace() learned so far (_Retry),
        #: and the snapshot of the model's attributes it restores after (modules.attributes_kept)
        self.retry: _Retry | None = None
        self.kept = None
        #: fx's cache of parameter proxies for this trace (Tracer.getattr's argument)
        self._proxies: dict | None = None
        #: the model's helper functions recorded as one call each (symshape.helpers): their
        #: bindings ``(namespace, name, function)``, and the functions
        self._helper_bindings = helpers
        self.helpers = frozenset(fn for _, _, fn in helpers)
        #: objects of the model's classes recorded so far (symshape.records), and those being
        #: recorded (by id)
        self._records = 0
        self._recording: set[int] = set()

    def create_args_for_root(self, root_fn, is_module, concrete_args=None):
        if is_module:  # (fx traces the class's forward; torch calls the module's own, where it has one)
            root_fn = _forward_function(self.root, root_fn)
        if self.call is None:
            return super().create_args_for_root(root_fn, is_module, concrete_args)
        counter = itertools.count()

        def placeholder():
            return self.create_proxy("placeholder", f"input_{next(counter)}", (), {})

        args, kwargs = self.call
        bound_args = [_bind(a, placeholder) for a in args]
        bound_kwargs = {k: _bind(v, placeholder) for k, v in kwargs.items()}
        self._bind_outer(self.root, placeholder)

        def call(root):
            return root_fn(root, *bound_args, **bound_kwargs)

        return call, [self.root]

    def _bind_outer(self, root: nn.Module, placeholder) -> None:
        """Attributes of ``root``'s modules that hold a traced value of an enclosing trace (the
        reference Swin backbone's layer sets ``blk.H, blk.W = H, W`` before calling each block,
        which is traced here on its own, by sides): each becomes a placeholder of this trace after
        the call's, whose value is the one the enclosing trace gave it. Written into the module's
        ``__dict__``, restored after the trace with every attribute (modules.attributes_kept).
        Where this trace is the only one open, there is none to look for (no walk of every
        attribute of a model traced whole once per side of its branches)."""
        if self.propagator is None or traces_open() <= 1:
            return
        for module in root.modules():
            for name, value in list(vars(module).items()):
                if not issubclass(type(value), torch.fx.Proxy) or value.tracer is self:
                    continue
                outer = getattr(value.tracer, "value", None)
                known = outer(value) if outer is not None else _MISSING
                if is_dynamic(known):
                    self.propagator.inputs.append(known)
                    vars(module)[name] = placeholder()

    def call_module(self, m, forward, args, kwargs):
        # fx's patch of nn.Module.__call__ is process-wide: another thread's own forward runs as
        # is, and so does a module this thread runs whole on fake tensors (symshape.meta)
        if threading.get_ident() != self.thread or passes_through():
            return forward(*args, **kwargs)
        if not self._installed(m):
            # a module the model calls that is none of its submodules (transformers wraps a
            # function as a module of the kernels hub: its apply_rotary_pos_emb): traced through
            # as the model's own code, which it is (fx knows it by no name)
            return forward(*args, **kwargs)
        prop = self.propagator
        if prop is None or self.is_leaf_module(m, ""):
            return super().call_module(m, forward, args, kwargs)
        # a call equal to one traced before (the same module or one of the same fingerprint, with
        # the same arguments, where the same holds) is one node of the graph, and takes its steps
        values = self._values((args, kwargs))
        key = prop.repeat_key(m, *values) if values is not None else None
        if key is None:
            return super().call_module(m, forward, args, kwargs)
        found = prop.repeat_of(m, key)
        if found is not None:
            self._repeating = (id(m), found)
            try:
                out = super().call_module(m, forward, args, kwargs)
            finally:
                self._repeating = None
            return _rebuilt(out, prop.repeat_form(found))
        start = prop.open_call(m)
        here = self._mark()
        held = _containers((args, kwargs))
        out = _MISSING
        try:
            out = super().call_module(m, forward, args, kwargs)
        except SizeBranch as e:
            # (where the call changed a list it was given, the trace starts again: taking its
            # nodes back would leave the list holding values of nodes no longer in the graph)
            if here is None or _changed(held) or not self._resumed(m, here, e):
                raise
        finally:
            # a call that changed a list or dict it was given (DLA's trees append to the caller's
            # ``children``) repeats nothing: one node would not change it again (asked only of
            # a call that returned: a call taken back or refused keeps nothing)
            value, form = (None, None) if out is _MISSING or _changed(held) else self._output(out, m, held)
            prop.close_call(key, m, self.path_of_module(m), start, value, form)
        if out is _MISSING:  # taken back: the module is one call of the graph, traced by sides
            return super().call_module(m, forward, args, kwargs)
        return out

    def _holds_tensor(self, v) -> bool:
        """Whether ``v`` is a tensor or a traced value that is or holds one."""
        if isinstance(v, torch.fx.Proxy):
            return bool(tensors_in(self.value(v)))
        return isinstance(v, torch.Tensor)

    def _installed(self, m: nn.Module) -> bool:
        """Whether ``m`` is a submodule of the module traced (its root among them)."""
        if self.submodule_paths:
            return m in self.submodule_paths
        try:
            self.path_of_module(m)
        except NameError:
            return False
        return True

    def _output(self, out, m: nn.Module, held: list) -> tuple:
        """A module call's output as ``(value, form)``: its symbolic value, and its form (the tuples
        and lists it is made of, ``LEAF`` where a traced value sits, other items as they are), for
        an equal later call to return alike (:func:`_rebuilt`). ``(None, None)`` where it holds
        something else (a dict, a named tuple, an object), a list the call was given, or a list
        one of the module's attributes holds (a later call's list would be a new one)."""
        shared: set = set()
        if _holds_list(out):  # the containers it may not hold (asked only where it holds a list)
            shared = {id(c) for c, _ in held}
            for sub in m.modules():
                _list_ids(vars(sub).values(), shared)
        try:
            return self._output_items(out, shared)
        except LookupError:
            return None, None

    def _output_items(self, out, shared: set) -> tuple:
        if isinstance(out, torch.fx.Proxy):
            value = self.value(out)
            if not _plain(value):
                raise LookupError
            return value, LEAF
        if type(out) in (tuple, list):
            if type(out) is list and id(out) in shared:
                raise LookupError
            pairs = [self._output_items(v, shared) for v in out]
            return type(out)(v for v, _ in pairs), type(out)(f for _, f in pairs)
        if out is None or type(out) in (int, float, bool, str):
            return out, out
        raise LookupError

    def _mark(self) -> tuple | None:
        """Where the model's own trace stands before a module call (None on a side of a branch,
        where no module's branch stops the trace, or where fx's state cannot be marked)."""
        if self.retry is None:
            return None
        graph = fxstate.mark(self)
        return None if graph is None else (graph, self.propagator.mark(), getattr(self, "nodes", 0))

    def _resumed(self, m: nn.Module, here: tuple, e: SizeBranch) -> bool:
        """Module ``m``'s own Python branched on a size: what its call added is taken back and it
        becomes one call of the graph, which the engine traces by sides (as trace() does when it
        starts the model again, without tracing what came before again). Only where nothing of the
        model changed (a module that set an attribute before it branched: trace() starts again
        from a clean model) and the branch is ``m``'s, not a module's inside it that could not
        become one call."""
        graph, propagation, nodes = here
        if len(self.module_stack) != graph[2] + 1 or (self.kept is not None and not self.kept.unchanged()):
            return False
        where = self.path_of_module(m)
        if not self.retry.branching(where, type(m), e):
            return False
        fxstate.rollback(self, graph, self._proxies)
        self.propagator.rollback(propagation)
        self.nodes = nodes
        self.leaves = self.leaves | {id(m)}
        self.propagator.forking = self.propagator.forking | {id(m)}
        return True

    def _values(self, obj):
        """``obj`` (a call's arguments) with each traced value as the propagator has it; None
        where one has none (or sits in a named tuple)."""
        def value(v):
            if isinstance(v, torch.fx.Proxy):
                found = self.value(v)
                if found is _MISSING:
                    raise LookupError
                return found
            if isinstance(v, (tuple, list)):
                if hasattr(v, "_fields"):
                    raise LookupError
                return type(v)(value(i) for i in v)
            if isinstance(v, dict):
                return {k: value(i) for k, i in v.items()}
            return v
        try:
            return value(obj)
        except LookupError:
            return None

    def getattr(self, attr, attr_val, parameter_proxy_cache):
        if threading.get_ident() != self.thread or passes_through():
            return attr_val
        self._proxies = parameter_proxy_cache
        if isinstance(attr_val, torch.fx.Proxy):
            # a value the forward assigned in this trace (``self.rel_indices = ...``, ConViT): the
            # attribute is that value, as in Python (fx would give the proxy it cached for the
            # name, the tensor the attribute held before)
            return attr_val
        # fx finds a parameter's (a buffer's) name by a scan of the root's named_parameters() at
        # every access: quadratic in a model's size (Inception v4: 1.7 s). The same first name
        # from a map made once per trace; a tensor the map does not hold goes to fx's own scan
        if isinstance(attr_val, torch.Tensor) and isinstance(self.root, nn.Module):
            names = self._names.get("params" if isinstance(attr_val, nn.Parameter) else "buffers")
            found = names.get(id(attr_val)) if names is not None else None
            if found is not None and found[1] is attr_val:
                return self._attr_proxy(found[0], attr_val, parameter_proxy_cache)
        return super().getattr(attr, attr_val, parameter_proxy_cache)

    def _attr_proxy(self, name: str, attr_val, parameter_proxy_cache):
        """fx's get_attr proxy for the parameter or buffer ``name`` (Tracer.getattr's own)."""
        if name not in parameter_proxy_cache:
            factory = None if not self.param_shapes_constant else (
                lambda node: torch.fx.proxy.ParameterProxy(self, node, name, attr_val))
            parameter_proxy_cache[name] = self.create_proxy("get_attr", name, (), {}, proxy_factory_fn=factory)
        return parameter_proxy_cache[name]

    def trace(self, root, concrete_args=None):
        self.thread = threading.get_ident()
        self._names = {}
        if isinstance(root, nn.Module):
            self._names["params"] = {}
            for name, t in root.named_parameters():
                self._names["params"].setdefault(id(t), (name, t))
            if self.proxy_buffer_attributes:
                self._names["buffers"] = {}
                for name, t in root.named_buffers():
                    self._names["buffers"].setdefault(id(t), (name, t))
        with factories_traced(self), tracing(), helpers_wrapped(self._helper_bindings):
            for m in root.modules() if isinstance(root, nn.Module) else ():
                cover(getattr(type(m).forward, "__globals__", None))
            if isinstance(root, LibraryFunction):
                cover(getattr(root.fn, "__globals__", None))
            if not isinstance(root, nn.Module):
                cover(getattr(root, "__globals__", None))
            return super().trace(root, concrete_args)

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return _is_leaf(m) or id(m) in self.leaves or (self._repeating is not None and self._repeating[0] == id(m))

    def proxy(self, node: torch.fx.Node) -> torch.fx.Proxy:
        return SizedProxy(node, self)

    def create_arg(self, a):
        # a proxy says its __class__ is what it stands for (torch.Tensor, int ...): fx's own
        # isinstance(a, torch.Tensor) would otherwise store it away as a tensor constant
        if isinstance(a, torch.fx.Proxy):
            return a.node
        if self.propagator is not None and output_mapping(a):  # (a ModelOutput: its fields are attributes)
            return self._record(a, dict(a))
        try:
            return super().create_arg(a)
        except NotImplementedError:  # (fx's "argument of type ...")
            if self.propagator is None or not plain_object(a):
                raise
        # an object of the model's class (transformers' DynamicCache in a language model's
        # output): one node records its fields that hold tensors (symshape.records)
        return self._record(a, tensor_fields(a, is_tensor=self._holds_tensor))

    def _record(self, a, fields: dict) -> torch.fx.Node:
        if id(a) in self._recording or self._records >= MAX_RECORDS:  # (an object that holds itself is no shape)
            raise NotImplementedError(f"argument of type: {type(a)} (it holds itself)")
        self._records += 1
        self._recording.add(id(a))
        try:
            fields = self.create_arg(fields)
        finally:
            self._recording.discard(id(a))
        return self.create_node("call_function", recorder(type(a)), (fields,), {})

    def create_proxy(self, kind, target, args, kwargs, name=None, type_expr=None, proxy_factory_fn=None):
        self.nodes = getattr(self, "nodes", 0) + 1
        if self.nodes > MAX_NODES:  # a loop whose end never comes (``while x.dim() > 0``)
            raise BoundExceeded(f"MAX_NODES = {MAX_NODES}", f"the forward made more than {MAX_NODES:,} ops in one "
                                "trace: a Python loop that does not end, or a model larger than symshape traces")
        # (torch.zeros(n, dtype=int), x.to(int): torch's int64; fx keeps no Python type in a graph)
        if isinstance(kwargs.get("dtype"), type) and kwargs["dtype"] in _PYTHON_DTYPES:
            kwargs = {**kwargs, "dtype": _PYTHON_DTYPES[kwargs["dtype"]]}
        if kind == "call_method" and target == "to" and len(args) > 1 and isinstance(args[1], type) \
                and args[1] in _PYTHON_DTYPES:
            args = (args[0], _PYTHON_DTYPES[args[1]], *args[2:])
        proxy = super().create_proxy(kind, target, args, kwargs, name, type_expr, proxy_factory_fn)
        if kind == "call_module" and self._repeating is not None:
            proxy.node.meta[REPEAT] = self._repeating[1]
        if self.propagator is not None:
            self._feed(proxy.node)
            if kind == "call_function" and target in _COMPARISONS and self.propagator.env.get(proxy.node) in (
                    True, sympy.true):
                # a comparison of sizes that holds at every size is Python's True: transformers'
                # ``torch_compilable_check(a == b, ...)`` asks ``callable(cond)``, which a proxy
                # answers True. (One that fails at every size stays traced: ``torch._assert`` of
                # it is a refusal of every size, which a plain False would raise in the trace.)
                return True
        return proxy

    def _feed(self, node: torch.fx.Node) -> None:
        env = self.propagator.env
        for n in node.all_input_nodes:
            if n not in env:
                self._feed(n)
        if node not in env:
            self.propagator.feed(node)

    def value(self, proxy: torch.fx.Proxy):
        """The symbolic value of ``proxy`` (``_MISSING`` without a propagator)."""
        if self.propagator is None:
            return _MISSING
        node = proxy.node
        self._feed(node)
        return self.propagator.env.get(node, _MISSING)

    def to_bool(self, obj: torch.fx.Proxy) -> bool:
        value = self.value(obj)
        if isinstance(value, (bool, int, sympy.logic.boolalg.BooleanAtom)) or (
                isinstance(value, sympy.Basic) and value.is_Integer):
            return bool(value)  # the same at every size: the branch taken is the only one
        if isinstance(value, sympy.Basic):
            if self.path is not None:
                return self.path.decide(value)
            settled = decide(_condition(value))  # the same answer at every size: no branch
            if settled is not None:
                return settled
            raise SizeBranch(value)
        if isinstance(value, SymTensor):
            raise torch.fx.proxy.TraceError(
                "a Python branch on a tensor's values (bool() of a tensor): the side torch takes "
                "depends on the data, not on the sizes")
        if isinstance(value, ReadValue):  # ``if mask.any().item():`` decided where 0 is or is not in its bounds
            for answer, cond in ((True, sympy.Or(sympy.Gt(value.lo, 0), sympy.Lt(value.hi, 0))),
                                 (False, sympy.And(sympy.Eq(value.lo, 0), sympy.Eq(value.hi, 0)))):
                if holds_at_every_size(cond):
                    return answer
            raise torch.fx.proxy.TraceError(
                f"a Python branch on {value}, whose bounds do not decide it: the side torch takes depends on "
                "the data, not on the sizes")
        return super().to_bool(obj)

    def iter(self, obj: torch.fx.Proxy):
        value = self.value(obj)
        if isinstance(value, (tuple, list)):  # a size, or several tensors: their count is known
            return iter([obj[i] for i in range(self.count(value))])
        if isinstance(value, Repeated):
            return self._one_by_one(obj, value)
        return super().iter(obj)

    def _one_by_one(self, obj: torch.fx.Proxy, value: Repeated):
        """unbind's or split's tensors whose number depends on the size, as Python takes them:
        one more while ``count >= i + 1`` holds (a branch on the size: ``a, b = x.unbind(1)``
        asks three times, and the sides where the count is not 2 raise in the model's code; a
        loop over them asks until the side limit refuses it)."""
        i = 0
        while self.holds(sympy.Ge(value.count, i + 1)):
            yield obj[i]
            i += 1

    def holds(self, cond: sympy.Basic) -> bool:
        """Python's answer to a condition on sizes: decided, or the side this trace takes."""
        if self.path is not None:
            return self.path.decide(cond)
        if cond in (sympy.true, sympy.false):
            return bool(cond)
        settled = decide(_condition(cond))
        if settled is not None:
            return settled
        raise SizeBranch(cond)

    def count(self, value) -> int:
        """How many items Python sees in ``value``: for chunk()'s pieces, whose count depends on
        the size (``x.chunk(3)`` of 4 rows is 2 pieces), the pieces that exist on this side."""
        if not isinstance(value, Pieces) or not any(value.requires):
            return len(value)
        for i, req in enumerate(value.requires):
            if req is not None and not self.holds(sympy.Ge(req[0], req[1])):
                return i
        return len(value)


_MISSING = object()


# -- library functions fx was told to leave alone ------------------------------------------------

class LibraryFunction(nn.Module):
    """A library's Python function that fx records as one call (``torch.fx.wrap``, as timm does
    for code that branches on sizes or calls ``float()`` of one, like its position grids),
    as a module whose forward calls it: symshape traces it as it traces a module's forward,
    following its branches on sizes side by side."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *args, **kwargs):
        return self.fn(*args, **kwargs)

    def extra_repr(self) -> str:
        return f"{self.fn.__module__}.{self.fn.__qualname__}"


@functools.lru_cache(maxsize=256)
def library_function(fn) -> LibraryFunction | None:
    """The module tracing ``fn``, for a plain Python function outside torch and symshape (None
    for anything else: torch's ops, builtins, operator and math)."""
    module = getattr(fn, "__module__", None) or ""
    if not inspect.isfunction(fn) or module.split(".")[0] in ("torch", "symshape", "operator", "math", "builtins"):
        return None
    return LibraryFunction(fn)


def _forward_function(root: nn.Module, fn):
    """The function torch runs as ``root``'s forward, taking ``root`` first as fx calls it: the
    class's ``fn``; the function of a method set on ``root`` itself; or, for another callable set
    on it (accelerate's hooks set ``functools.partial(new_forward, module)``), a call of it that
    takes the class's parameters (fx reads them through ``__wrapped__``)."""
    own = own_forward(root)
    if own is None:
        return fn
    if getattr(own, "__self__", None) is root and inspect.isfunction(getattr(own, "__func__", None)):
        return own.__func__

    @functools.wraps(fn)
    def own_call(self, *args, **kwargs):
        return own(*args, **kwargs)

    return own_call


def _sequential_leaves(seq: nn.Sequential, prefix: str, out: list) -> bool:
    """Collect ``(qualname, module)`` of a Sequential of leaves and plain Sequentials."""
    for name, child in seq._modules.items():
        if child is None:
            continue
        qual = f"{prefix}.{name}" if prefix else name
        if _is_leaf(child):
            out.append(qual)
        elif type(child) is nn.Sequential and not hooked(child) and own_forward(child) is None:
            if not _sequential_leaves(child, qual, out):
                return False
        else:
            return False
    return True


def _leaf_graph(model: nn.Module, call: tuple | None = None) -> torch.fx.Graph:
    """The graph of a model that is itself a leaf: one ``call_module`` of the root (given
    ``call``, with its arguments: a placeholder for each symbolic value, in order)."""
    graph = torch.fx.Graph()
    if call is None:
        args, kwargs = (graph.placeholder("input"),), {}
    else:
        counter = itertools.count()

        def placeholder():
            return graph.placeholder(f"input_{next(counter)}")

        args = tuple(_bind(a, placeholder) for a in call[0])
        kwargs = {k: _bind(v, placeholder) for k, v in call[1].items()}
    node = graph.call_module("", args, kwargs)
    node.meta["nn_module_stack"] = {"": ("", type(model))}
    graph.output(node)
    return graph


def _fast_sequential(model: nn.Module) -> torch.fx.Graph | None:
    if type(model) is not nn.Sequential or own_forward(model) is not None:
        return None
    leaves: list[str] = []
    if not _sequential_leaves(model, "", leaves):
        return None
    graph = torch.fx.Graph()
    value = graph.placeholder("input")
    for qual in leaves:
        value = graph.call_module(qual, (value,))
        value.meta["nn_module_stack"] = {qual: (qual, type(model.get_submodule(qual)))}
    graph.output(value)
    return graph


def user_line(e: BaseException) -> str:
    """The model's source line an error arose on (``file:line: code``, or ""): the innermost frame
    outside torch and symshape in the error's traceback or its causes' (a module run whole), else
    in the running stack below symshape's first frame (the forward fx is tracing; never the code
    that called ``analyze``)."""
    seen: BaseException | None = e
    for _ in range(8):
        if seen is None:
            break
        line = _user_frame(seen.__traceback__)
        if line:
            return line
        seen = seen.__cause__ or seen.__context__
    frame, found = sys._getframe(1), None  # innermost first; source read only for the one shown
    while frame is not None:
        filename = frame.f_code.co_filename
        if found is None and callsite.model_code(filename):
            found = (filename, frame.f_lineno)
        elif found is not None and os.path.abspath(filename).startswith(_OWN_DIR):
            return f"{found[0]}:{found[1]}: {linecache.getline(found[0], found[1]).strip()}"
        frame = frame.f_back
    return ""


def _user_frame(tb) -> str:
    """The innermost traceback frame outside torch and symshape: the user's line."""
    for frame in reversed(traceback.extract_tb(tb)):
        if callsite.model_code(frame.filename):
            line = (frame.line or "").strip()
            return f"{frame.filename}:{frame.lineno}: {line}"
    return ""


#: held while fx traces (re-entrant: the sides of a branch are traced inside a trace). fx patches
#: ``nn.Module.__call__`` and ``__getattr__`` for the process while it traces, and two traces at
#: once would undo each other's patches; other threads' forwards pass through the patches.
TRACE_LOCK = threading.RLock()

#: the most ops one trace records before it stops (BoundExceeded)
MAX_NODES = 100_000

#: the most modules whose forward is run whole instead of traced, before tracing gives up
MAX_WHOLE_MODULES = 32


def trace(model: nn.Module, propagator=None, whole: frozenset = frozenset(), path: Path | None = None,
          call: tuple | None = None) -> Traced:
    """Trace ``model``'s forward into a graph; raises :class:`UntraceableModel` when fx cannot.

    ``propagator`` (optional) is a callable making a fresh propagator, which computes each node's
    symbolic value while fx traces; its result is ``Traced.propagation``. Errors it raises (an op
    without a rule) pass through unchanged.

    Where fx cannot follow a module's forward (Python that branches on a size, ``isinstance`` of
    a traced value, ``int()`` of a size ...), that module becomes one call of the graph, and the
    trace starts again. The propagator is told which of those modules branch on a size
    (``forking``: their ids): the engine traces such a module again once per side of its
    branches (``path``) and merges the sides; the others run whole under torch's meta kernels
    (symshape.meta), so the module's own Python decides, as in torch. ``whole`` names modules
    (qualified names; ``""`` the model) to run whole from the start.

    With ``path`` (one side of each branch) and ``call`` (the root's arguments), one call of
    ``model`` is traced down that side; where the model's own code raises on it,
    :class:`ModelRaised` carries its message.
    """
    if not isinstance(model, nn.Module):
        raise InvalidArgument(f"symshape analyzes an nn.Module, got {type(model).__name__}")
    if (call is None or path is None) and hooked(model):
        raise UntraceableModel(
            f"{type(model).__name__} (the model itself)",
            "it has forward hooks or pre-hooks, or overrides __call__, and what they do to its input or output "
            "is not part of its forward", "",
            "symshape follows them on a submodule: analyze nn.Sequential(model), or remove them while analyzing")
    if _global_hooks():
        raise UntraceableModel(type(model).__name__, f"torch's global module hooks are set ({', '.join(_global_hooks())}): "
                               "they run around every module's forward, which symshape does not follow")
    # fx patches nn.Module for the whole process while it traces: one trace at a time
    with TRACE_LOCK, snapshots_shared():
        return _trace(model, propagator, whole, path, call)


def _trace(model: nn.Module, propagator, whole: frozenset, path: Path | None, call: tuple | None) -> Traced:
    # the model's own call (its one input, or ``call``: several), not one side of a branch
    root = path is None
    if root:
        if "" in whole:
            return _fed(_leaf_graph(model, call), model, propagator)
        graph = _leaf_graph(model, call) if _is_leaf(model) else _fast_sequential(model) if call is None else None
        if graph is not None:
            return _fed(graph, model, propagator)
    vision.register()  # torchvision's rules, before fx swaps its wrapped functions for patches
    state = _Retry(model, propagator, call, {id(model.get_submodule(q)) for q in whole}, root)
    while True:
        prop = propagator() if propagator is not None else None
        if prop is not None:
            prop.forking = frozenset(state.forking)
        if path is not None:
            path.restart()
        tracer = _Tracer(prop, frozenset(state.ids), path, call, tuple(state.helpers))
        if path is None and prop is not None:
            tracer.retry = state
        try:
            with attributes_kept(model) as tracer.kept:
                graph = tracer.trace(model, concrete_args=None if call is not None else _defaults(model))
                for node in graph.nodes:  # fx stores tensor constants on the model: the graph keeps them
                    if node.op == "get_attr" and node.target.startswith("_tensor_constant"):
                        node.meta[CONSTANT] = getattr(model, node.target)
            if prop is not None:
                for node in graph.nodes:  # the output node, and any node fx made without a proxy
                    tracer._feed(node)
            return Traced(graph, model, prop.result() if prop is not None else None)
        except HelperRefused as e:  # (before the errors it may carry: the trace as it was answers them)
            done = state.helper_refused(e.fn)
        except UnsupportedOperation as e:
            done = state.unsupported(e, tracer)
        except SymshapeError:  # a size torch refuses at every size, and the like: the answer
            raise
        except Exception as e:  # fx raises TraceError, TypeError, ... from inside user code
            if path is not None and isinstance(e, ModelRaised):
                raise  # (Python's ZeroDivisionError on a side where a size divides by 0: symshape.engine)
            if path is not None and raised_by_model(e):
                raise ModelRaised(f"{type(e).__name__}: {e}") from e
            done = state.untraceable(e, tracer)
        if done is not None:
            return done


class _Retry:
    """What :func:`trace` learned from the attempts that stopped: the modules to call whole
    (``ids``), those among them whose Python branches on a size (``forking``), and why fx
    stopped in each (``why``, by qualified name)."""

    def __init__(self, model: nn.Module, propagator, call, ids: set[int], root: bool = True):
        self.model, self.propagator, self.call = model, propagator, call
        #: tracing the model's own call: where fx cannot follow its forward, it runs whole
        self.root = root
        self.ids, self.forking = ids, set()
        self.why: dict[str, UntraceableModel] = {}
        #: the model's helper functions that branch on a size, recorded as one call each
        #: (symshape.helpers), and those whose sides could not answer
        self.helpers: list[tuple] = []
        self.refused: set = set()

    def unsupported(self, e: UnsupportedOperation, tracer) -> Traced | None:
        """An op inside a module that no rule answers: the module runs whole (torch's meta
        kernels on every branch); if that refuses too, this op's refusal is the answer."""
        if isinstance(e, UnsupportedWhereMetaDiffers):
            raise e  # torch's meta kernels would answer, differently from its CPU kernels
        if isinstance(e, SizeCases):
            raise e  # analyze() analyzes each case, every layer kept (a module run whole keeps none)
        stopped = self.why.get(e.where)
        if stopped is not None:
            failing = self.model.get_submodule(e.where) if e.where else self.model
            if isinstance(e, ObjectArgument) and self.root and id(failing) in self.forking:
                # a module traced by sides for its branches was handed a key cache it updates:
                # the whole forward traced by sides instead, each side one trace with its cache
                try:
                    return _fed(_leaf_graph(self.model, self.call), self.model, self.propagator, True)
                except SymshapeError:
                    raise e from None
            if id(failing) in self.forking:
                raise e  # its branches on sizes were followed: the op refused on a side is the reason
            # a module run whole that torch's meta kernels cannot answer either: fx's reason
            raise stopped from e
        stack = list(tracer.module_stack.values())
        where = stack[-1][0] if stack else ""
        if not where:
            if not self.root:
                raise e
            try:
                return _fed(_leaf_graph(self.model, self.call), self.model, self.propagator)
            except SymshapeError:
                raise e from None
        failing = self.model.get_submodule(where)
        if id(failing) in self.ids or len(self.ids) >= MAX_WHOLE_MODULES:
            raise e
        self.ids.add(id(failing))
        self.why[where] = e
        return None

    def untraceable(self, e: Exception, tracer) -> Traced | None:
        """fx could not follow a module's forward: it is called whole from now on (traced by
        sides of its branches when it branched on a size)."""
        stack = list(tracer.module_stack.values())
        where = stack[-1][0] if stack else ""
        stopped = _stopped(stack[-1][1] if stack else type(self.model), where, e)
        if not where:  # the model's own forward: run it whole (or by sides of its branches)
            if not self.root:
                raise stopped from e
            if isinstance(e, SizeBranch) and self._helper(e):
                return None  # again, the helper function that branched recorded as one call
            try:
                return _fed(_leaf_graph(self.model, self.call), self.model, self.propagator,
                            isinstance(e, SizeBranch))
            except SizeCases:
                raise  # analyze() analyzes each case (a side's view whose strides depend on a size of 1)
            except SymshapeError as refused:
                if isinstance(e, SizeBranch):  # its branches were followed: what a side met is the reason too
                    first = str(refused).splitlines()[0]
                    stopped.reason += f"; traced side by side, it stops at {first}"
                    stopped.args = (stopped.module, stopped.reason, stopped.line, stopped.hint, stopped.module_path)
                raise stopped from refused
        if not self._called_whole(where, stopped, isinstance(e, SizeBranch)):
            raise stopped from e
        return None

    def _helper(self, e: SizeBranch) -> bool:
        """The branch was taken in a helper function the model's code calls: recorded as one call
        from now on (symshape.helpers), unless it is already, or its sides refused, or too many are."""
        found = branching_helper(e.__traceback__)
        if found is None or found[2] in self.refused or len(self.helpers) >= MAX_HELPERS \
                or any(fn is found[2] for _, _, fn in self.helpers):
            return False
        self.helpers.append(found)
        return True

    def helper_refused(self, fn) -> None:
        """A helper's sides could not answer: traced through again, as before it was recorded."""
        self.helpers = [h for h in self.helpers if h[2] is not fn]
        self.refused.add(fn)

    def branching(self, where: str, cls: type, e: SizeBranch) -> bool:
        """The module at ``where`` branches on a size: called whole from now on, traced by sides;
        False where it cannot be (already called whole, or too many are)."""
        return self._called_whole(where, _stopped(cls, where, e), True)

    def _called_whole(self, where: str, stopped: UntraceableModel, forks: bool) -> bool:
        failing = self.model.get_submodule(where)
        if id(failing) in self.ids or len(self.ids) >= MAX_WHOLE_MODULES:
            return False
        self.ids.add(id(failing))
        if forks:
            self.forking.add(id(failing))
        self.why[where] = stopped
        return True


def _stopped(cls: type, where: str, e: Exception) -> UntraceableModel:
    """Why fx could not follow the forward of the module of class ``cls`` at ``where``."""
    name = f"{cls.__name__} at {where!r}" if where else f"{cls.__name__} (the model itself)"
    stopped = UntraceableModel(name, f"{type(e).__name__}: {e}", _user_frame(e.__traceback__), HINT, where)
    stopped.model_raised = raised_by_model(e)  # (symshape.analysis asks torch whether it raises too)
    return stopped


#: what a model's own code raises to refuse an input (``raise ValueError``, ``assert``)
_MODEL_ERRORS = (AssertionError, ValueError, RuntimeError, IndexError)


def raised_by_model(e: BaseException) -> bool:
    """Whether ``e`` is the model's own refusal: raised by a line of the model's code (outside
    torch and symshape) and not fx's report that it cannot follow the code."""
    if not isinstance(e, _MODEL_ERRORS) or isinstance(e, torch.fx.proxy.TraceError):
        return False
    frames = traceback.extract_tb(e.__traceback__)
    if not frames:
        return False
    path = os.path.abspath(frames[-1].filename)
    return not (path.startswith(_TORCH_DIR) or path.startswith(_OWN_DIR))


def _defaults(model: nn.Module) -> dict[str, Any] | None:
    """The forward's parameters after the input that have defaults, bound to them: fx would make
    them proxies, and ``if mask is not None`` would take the branch torch never takes."""
    try:
        params = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):  # a builtin or C forward: nothing to bind
        return None
    out = {p.name: p.default for p in params[1:]
           if p.default is not inspect.Parameter.empty
           and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}
    return out or None


def _fed(graph: torch.fx.Graph, model: nn.Module, propagator, forks: bool = False) -> Traced:
    """A graph built directly, its values computed by a fresh propagator (told that the model
    branches on a size when ``forks``)."""
    if propagator is None:
        return Traced(graph, model)
    prop = propagator()
    if forks:
        prop.forking = frozenset({id(model)})
    for node in graph.nodes:
        prop.feed(node)
    return Traced(graph, model, prop.result())


def scope_of(node: torch.fx.Node) -> str:
    """The qualified name of the module whose forward made ``node`` ('' for the model itself)."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    names = [v[0] for v in stack.values()]
    if node.op == "call_module":
        names = names[:-1]
    return names[-1] if names else ""
