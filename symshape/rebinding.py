"""What symshape's trace rebinds while it runs, so that the model's Python reaches the tracer.

- torch's factories (``torch.zeros(x.size(0), 3)``: torch's argument parser would refuse a proxy
  before any ``__torch_function__`` could record it) record a call with a traced size as a graph
  node; Python's ``random`` functions refuse a draw by name; ``Variable(x)`` of a traced tensor is
  ``x.detach()``;
- the names ``int``, ``float``, ``max``, ``min`` and ``len`` in the globals of the code traced
  (where they are free) are stand-ins that record a call on a traced size (``len(x)``: its first
  size).

Installed once for every thread that traces at the time, and undone when the last trace ends;
each thread records only into its own tracer.
"""

from __future__ import annotations

import contextlib
import functools
import math
import random
import threading
import traceback

import sympy
import torch
import torch.fx

from .dims import SizeRatio
from .errors import UntraceableModel
from .proxies import SizedMixin

__all__ = ["FACTORIES", "RANDOM_FACTORIES", "RANDOM_FUNCTIONS", "cover", "factories_traced"]


# -- torch's factory functions with traced sizes ---------------------------------------------
#
# ``torch.zeros(x.size(0), 3)`` stops fx: torch's argument parser wants ints and sees a Proxy, so
# it raises TypeError before any ``__torch_function__`` could record the call. While symshape
# traces, these functions are wrappers that record a call with a Proxy among its arguments as a
# graph node (the engine then runs it on fake tensors with symbolic sizes) and call torch's own
# function otherwise. The wrappers are installed once for all threads that trace at the time and
# removed when the last one finishes; each thread records only into its own tracer.

#: the factories whose values are random (see _recording)
RANDOM_FACTORIES = frozenset({"rand", "randn", "randint"})

#: torch's functions that take sizes (or a size-valued range) and make a tensor
FACTORIES = ("zeros", "ones", "empty", "full", "rand", "randn", "randint", "arange", "linspace", "logspace", "eye",
             # and those that make a tensor of data: torch's C++ checks whether the data is a tensor by
             # isinstance, which a traced tensor answers as a tensor does, and then reads it as one
             # (a crash of the process, where fx alone raises): recorded instead, as a call on a tensor
             "tensor", "as_tensor", "asarray", "sparse_coo_tensor", "sparse_csr_tensor", "sparse_csc_tensor",
             "sparse_bsr_tensor", "sparse_bsc_tensor", "sparse_compressed_tensor")

_tracing = threading.local()
_installed_lock = threading.Lock()
_installed: dict = {"count": 0, "originals": {}, "draws": {}}


def _has_proxy(value) -> bool:
    if isinstance(value, torch.fx.Proxy):
        return True
    if isinstance(value, (tuple, list)):
        return any(_has_proxy(v) for v in value)
    if isinstance(value, dict):
        return any(_has_proxy(v) for v in value.values())
    return False


def _recording(original):
    @functools.wraps(original)
    def factory(*args, **kwargs):
        tracer = getattr(_tracing, "tracer", None)
        if tracer is not None and (_has_proxy((args, kwargs)) or original.__name__ in RANDOM_FACTORIES):
            # (a random tensor is recorded whatever its size: a Python branch on its values,
            # ``if torch.rand(()) < p``, is then one on a traced value, refused by name, and not
            # a side picked at random while tracing)
            return tracer.create_proxy("call_function", original, args, kwargs)
        return original(*args, **kwargs)

    factory.__wrapped_factory__ = original
    return factory


#: Python's random module functions a forward may branch on (``if random.random() < p``)
RANDOM_FUNCTIONS = ("random", "uniform", "randint", "randrange", "choice", "choices", "sample", "shuffle", "gauss",
                    "normalvariate", "triangular", "betavariate", "expovariate")


def _refusing_draws(original):
    @functools.wraps(original)
    def draw(*args, **kwargs):
        tracer = getattr(_tracing, "tracer", None)
        if tracer is not None:
            caller = traceback.extract_stack(limit=2)[0]
            stack = list(getattr(tracer, "module_stack", {}).values())
            where = f"{stack[-1][1].__name__} at {stack[-1][0]!r}" if stack and stack[-1][0] else "the model"
            raise UntraceableModel(
                where, f"it draws from Python's random module (random.{original.__name__}): what it does "
                "with the draw may depend on it, not on the input size, and symshape will not follow one draw",
                f"{caller.filename}:{caller.lineno}: {(caller.line or '').strip()}",
                "use torch.rand (a traced value: a branch on it is refused by name), or analyze in eval mode "
                "if the draw is for training only")
        return original(*args, **kwargs)

    draw.__wrapped_draw__ = original
    return draw


_LEGACY_NEW = torch._C._LegacyVariableBase.__new__


def _variable_new(cls, *args, **kwargs):
    """``Variable(x)`` while symshape traces: of a traced tensor, what torch makes of it,
    ``x.detach()`` (requires_grad, which it then sets, changes no size); anything else as torch
    makes it. torch's own constructor would read the traced value's memory as a tensor's."""
    data = args[0] if args else kwargs.get("data")
    if issubclass(type(data), SizedMixin) and getattr(_tracing, "tracer", None) is not None:
        return data.detach()
    return _LEGACY_NEW(cls, *args, **kwargs)


@contextlib.contextmanager
def factories_traced(tracer):
    """torch's factories record calls with traced sizes into ``tracer``, in this thread."""
    outer = getattr(_tracing, "tracer", None)
    _tracing.tracer = tracer
    with _installed_lock:
        if _installed["count"] == 0:
            for name in FACTORIES:
                original = getattr(torch, name)
                _installed["originals"][name] = original
                setattr(torch, name, _recording(original))
            for name in RANDOM_FUNCTIONS:
                original = getattr(random, name)
                _installed["draws"][name] = original
                setattr(random, name, _refusing_draws(original))
            torch.autograd.Variable.__new__ = staticmethod(_variable_new)  # (its own, C++'s before)
        _installed["count"] += 1
    try:
        yield
    finally:
        with _installed_lock:
            _installed["count"] -= 1
            if _installed["count"] == 0:
                for name, original in _installed["originals"].items():
                    setattr(torch, name, original)
                _installed["originals"].clear()
                for name, original in _installed["draws"].items():
                    setattr(random, name, original)
                _installed["draws"].clear()
                del torch.autograd.Variable.__new__
                _uncover_all()
        _tracing.tracer = outer


# -- int() and float() of a traced size ---------------------------------------------------------
#
# ``int(math.sqrt(T))``, ``int(H / 2)``, ``float(h)``: Python's int() and float() must return a
# real int or float, so a Proxy cannot stand in for the result and fx stops. While symshape traces,
# the names ``int`` and ``float`` in the globals of the code it traces (each traced module's
# forward, and functions traced whole) are stand-ins that record a call on a traced size as a
# graph node, give a plain number where the traced value is one, and are the builtin otherwise.
# The stand-ins answer ``isinstance``, ``issubclass`` and ``==`` as the builtin does; they are
# inserted only where the name is not already defined, and removed when the last trace ends.


class _BuiltinType(type):
    """The class of a stand-in: ``isinstance(3, int)`` and ``int == int`` answer as for the builtin."""

    def __instancecheck__(cls, obj):
        return isinstance(obj, cls.builtin)

    def __subclasscheck__(cls, sub):
        return issubclass(sub, cls.builtin)

    def __eq__(cls, other):
        return other is cls or other is cls.builtin

    def __hash__(cls):
        return hash(cls.builtin)

    def __repr__(cls):
        return repr(cls.builtin)


def _stand_in(builtin: type) -> type:
    def __new__(cls, *args, **kwargs):
        if len(args) == 1 and not kwargs and issubclass(type(args[0]), SizedMixin):
            proxy = args[0]
            value = proxy.tracer.value(proxy)
            if isinstance(value, (int, float)) or isinstance(value, sympy.Basic) and value.is_number:
                return builtin(value)  # a size that is the same at every input size
            if isinstance(value, SizeRatio) and not value.expr.free_symbols:
                return builtin(value.expr)
            return proxy.tracer.create_proxy("call_function", builtin, (proxy,), {})
        return builtin(*args, **kwargs)

    return _BuiltinType(builtin.__name__, (builtin,), {"__new__": __new__, "builtin": builtin,
                                                      "__module__": "builtins"})


def _float_extremum(builtin):
    """``max``/``min`` of floats of which some are traced ratios of sizes (``max(k_h / q_h,
    1.0)``, MViTv2's relative positions): one graph node, whose value is the exact extremum,
    where Python would have compared them and fx branched on the comparison (a side per
    answer, each a trace of the module). Only floats: the result of ``max`` of an int and a
    float has the type of the larger, which the sizes decide. Anything else is the builtin."""

    def stand_in(*args, **kwargs):
        traced = [a for a in args if issubclass(type(a), SizedMixin)]
        if len(args) < 2 or kwargs or not traced:
            return builtin(*args, **kwargs)
        tracer = traced[0].tracer
        if all(type(a) is float and math.isfinite(a) or issubclass(type(a), SizedMixin)
               and isinstance(tracer.value(a), SizeRatio) for a in args):
            return tracer.create_proxy("call_function", builtin, args, {})
        return builtin(*args, **kwargs)

    stand_in.__name__ = stand_in.__qualname__ = builtin.__name__
    stand_in.builtin = builtin
    return stand_in


def _length(obj):
    """``len(x)`` of a traced tensor (``batch_size = len(x)``, RT-DETR's and many model files'):
    its first size, a traced size where the input decides it (Python's own ``len`` must return a
    plain int, which fx cannot give); anything else as the builtin."""
    if issubclass(type(obj), SizedMixin):
        value = obj.tracer.value(obj)
        shape = getattr(value, "shape", None)
        if isinstance(shape, tuple) and not isinstance(value, tuple):
            if not shape:
                raise TypeError("len() of a 0-d tensor")
            return int(shape[0]) if isinstance(shape[0], sympy.Integer) else obj.size(0)
    return len(obj)


_length.builtin = len
_STAND_INS = {"int": _stand_in(int), "float": _stand_in(float),
              "max": _float_extremum(max), "min": _float_extremum(min), "len": _length}
_globals_lock = threading.Lock()
#: the globals dicts holding a stand-in, with the names inserted, while any trace runs
_covered: dict[int, tuple[dict, list[str]]] = {}


def cover(namespace: dict) -> None:
    """Put the stand-ins into ``namespace`` (a function's globals) where the names are free."""
    if not isinstance(namespace, dict) or namespace.get("__name__", "").startswith(("torch", "symshape")):
        return
    with _globals_lock:
        if id(namespace) in _covered or _installed["count"] == 0:
            return
        names = [n for n in _STAND_INS if n not in namespace]
        for n in names:
            namespace[n] = _STAND_INS[n]
        _covered[id(namespace)] = (namespace, names)


def _uncover_all() -> None:
    with _globals_lock:
        for namespace, names in _covered.values():
            for n in names:
                if namespace.get(n) is _STAND_INS[n]:
                    del namespace[n]
        _covered.clear()
