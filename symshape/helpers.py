"""A model's own helper functions that branch on a size, traced on their own.

Where Python branches on a size in a module's forward, that module is traced once per side of
the branch (symshape.trace). A branch inside a plain function the forward calls (CrossViT's
``scale_image``, a U-Net's ``pad_to_multiple``) has no module of its own: it had made its caller's
module -- often the whole model -- traced once per side. Now the trace of the model starts again
with that function recorded as one call (as ``torch.fx.wrap`` records a library's function), and
the function alone is traced by its sides (symshape.trace.LibraryFunction): CrossViT, five sides
of the whole model before, is traced once, its ``scale_image`` calls by sides.

A function is recorded so only where it is a global of the module code that calls it (found by
its name there, the way fx's own autowrap finds functions), and only for calls whose arguments
are traced values and plain values (numbers, strings, dtypes, tuples of them): a function given
a list or an object could change it, which one recorded call would not. Its name in that
namespace is bound to a recording wrapper while the trace runs, and bound back after. Anything
the function's sides cannot answer sends the trace back to the way it was (:class:`HelperRefused`).
"""

from __future__ import annotations

import contextlib
import functools
import threading
import traceback
import types
from typing import Any, Iterator

import torch
import torch.fx
import torch.nn as nn

from .callsite import model_code
from .modules import passes_through

__all__ = ["HelperRefused", "MAX_HELPERS", "branching_helper", "helpers_wrapped"]

#: the most helper functions one trace records as calls
MAX_HELPERS = 8


class HelperRefused(torch.fx.proxy.TraceError):
    """A helper recorded as one call could not be answered by its sides: the trace starts again
    without recording it (its branch then makes its caller's module traced by sides, as before)."""

    def __init__(self, fn):
        self.fn = fn
        super().__init__(f"the helper {fn.__qualname__} traced by its sides")


def branching_helper(tb) -> tuple | None:
    """Where a branch on a size (the traceback ``tb`` of :class:`symshape.trace.SizeBranch`) was
    taken inside plain functions called from a module's code: the outermost of them as
    ``(namespace, name, function)``, ``namespace`` being the globals of the module code that calls
    it by ``name``. None where the branch is in a module's own code (its ``forward`` or another
    method), or the function is not found so (a nested function, a static method, a wrapper)."""
    frames = [f for f, _ in traceback.walk_tb(tb)]
    own = [i for i, f in enumerate(frames) if model_code(f.f_code.co_filename)]
    if not own:
        return None
    i = own[-1]  # the frame whose Python branched
    outermost = None
    while i >= 0 and model_code(frames[i].f_code.co_filename) and not _module_code(frames[i]):
        outermost, i = i, i - 1
    if outermost is None or i < 0 or not _module_code(frames[i]):
        return None
    caller, frame = frames[i], frames[outermost]
    name = frame.f_code.co_name
    fn = caller.f_globals.get(name)
    if type(fn) is not types.FunctionType or fn.__code__ is not frame.f_code:
        return None
    return caller.f_globals, name, fn


def _module_code(frame) -> bool:
    """A method of a module (its ``self`` a module): where a helper is called from."""
    return frame.f_code.co_argcount > 0 and frame.f_code.co_varnames[0] == "self" \
        and isinstance(frame.f_locals.get("self"), nn.Module)


# -- recording the calls while a trace runs ------------------------------------------------------

_lock = threading.Lock()
#: (id of the namespace, name) -> [namespace, function, wrapper, traces using it]
_bound: dict[tuple[int, str], list] = {}


@contextlib.contextmanager
def helpers_wrapped(helpers: tuple) -> Iterator[None]:
    """For the block, each ``(namespace, name, function)`` of ``helpers`` bound to a wrapper that
    records a call with a traced value of a tracer that asks for it (``tracer.helpers``) as one
    ``call_function`` node; any other call (another thread's, a module run whole, a side's trace
    of the function itself) runs the function as it is."""
    held = []
    with _lock:
        for namespace, name, fn in helpers:
            key = (id(namespace), name)
            entry = _bound.get(key)
            if entry is None:
                if namespace.get(name) is not fn:
                    continue
                entry = _bound[key] = [namespace, fn, _recording(fn), 0]
                namespace[name] = entry[2]
            entry[3] += 1
            held.append((key, name))
    try:
        yield
    finally:
        with _lock:
            for key, name in held:
                entry = _bound[key]
                entry[3] -= 1
                if entry[3] == 0:
                    namespace, fn, wrapper, _ = entry
                    if namespace.get(name) is wrapper:
                        namespace[name] = fn
                    del _bound[key]


def _recording(fn):
    @functools.wraps(fn)
    def helper(*args, **kwargs):
        tracer = _asking_tracer(fn, args, kwargs)
        if tracer is None:
            return fn(*args, **kwargs)
        try:
            return tracer.create_proxy("call_function", fn, args, kwargs)
        except Exception as e:  # (its sides refused: the trace goes back to tracing through it)
            raise HelperRefused(fn) from e
    return helper


def _asking_tracer(fn, args: tuple, kwargs: dict) -> Any:
    """The tracer of the traced values among the arguments where it records ``fn`` and every
    argument is a traced value or a plain one; else None."""
    if passes_through():
        return None
    found: list = []
    if not (_plain(args, found) and all(_plain(v, found) for v in kwargs.values())) or not found:
        return None
    tracer = found[0].tracer
    if any(p.tracer is not tracer for p in found) or fn not in getattr(tracer, "helpers", ()) \
            or getattr(tracer, "thread", None) != threading.get_ident():
        return None
    return tracer


_PLAIN = (bool, int, float, complex, str, type(None), torch.dtype, torch.device, torch.memory_format, torch.layout)


def _plain(value, proxies: list) -> bool:
    if isinstance(value, torch.fx.Proxy):
        proxies.append(value)
        return True
    if type(value) in _PLAIN or value is Ellipsis:
        return True
    if type(value) in (tuple, torch.Size):
        return all(_plain(v, proxies) for v in value)
    if type(value) is slice:
        return all(_plain(v, proxies) for v in (value.start, value.stop, value.step))
    return False
