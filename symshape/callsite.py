"""What a Python frame is doing right now, read from its bytecode (never run): the instructions of
a code object, and the name of the callable a frame is calling.

A traced tensor answers ``isinstance(x, torch.Tensor)`` as a tensor does (symshape.trace), which
is what Python code that branches on it needs. torch's legacy constructors (``torch.Tensor(x)``,
``torch.FloatTensor(x)``, ``Variable(x)``) ask the same question from C++ and, told yes, read the
object's memory as a tensor's: a crash of the process. The question comes from the frame that
calls the constructor, at its call instruction; :func:`callee` names what that instruction calls,
so the traced value can answer differently there.

Also whose code a frame runs (:func:`model_code`): the model's, or torch's, sympy's, symshape's
or Python's own -- where a traceback's user line is, and which function branched.
"""

from __future__ import annotations

import bisect
import dis
import functools
import os
import sys
from types import CodeType, FrameType

import sympy
import torch

__all__ = ["callee", "instructions", "model_code"]

#: code that is not the model's: torch, symshape and sympy (and Python's standard library)
_NOT_MODEL = (os.path.dirname(torch.__file__), os.path.dirname(__file__), os.path.dirname(sympy.__file__))
_STDLIB = os.path.dirname(os.__file__) + os.sep


def model_code(filename: str) -> bool:
    """Whether a frame's file is the model's code (not torch, symshape, sympy or the stdlib;
    a package installed beside the stdlib, such as timm, is)."""
    path = os.path.abspath(filename)
    if any(path.startswith(d) for d in _NOT_MODEL) or filename.startswith("<frozen"):
        return False
    return not (path.startswith(_STDLIB) and not any(p in path for p in ("site-packages", "dist-packages")))


@functools.lru_cache(maxsize=512)
def instructions(code: CodeType) -> tuple[list, list]:
    """A code object's instructions and their offsets (read once: a block's ``q, k, v = t`` is
    asked at every call)."""
    found = list(dis.get_instructions(code))
    return found, [i.offset for i in found]


def callee(frame: FrameType) -> str | None:
    """The name the callable of the call ``frame`` is executing was loaded by (``Tensor`` for
    ``torch.Tensor(x)``, ``Variable`` for ``Variable(x)``): the global, attribute or method name
    whose load put it on the stack. None where the frame is not at a call, or the bytecode
    before it is not a straight run of instructions this reads (a conditional among the
    arguments, an instruction it does not know)."""
    return _callee(frame.f_code, frame.f_lasti)


@functools.lru_cache(maxsize=4096)
def _callee(code: CodeType, lasti: int) -> str | None:
    found, offsets = instructions(code)
    at = bisect.bisect_left(offsets, lasti) if sys.version_info >= (3, 11) else lasti // 2
    if not 0 <= at < len(found):
        return None
    call = found[at]
    depth = _callable_depth(call)
    if depth is None:
        return None
    for i in range(at - 1, -1, -1):
        ins = found[i]
        effect = _effect(ins)
        if effect is None:
            return None
        pops, pushes = effect
        if depth < pushes:
            return ins.argval if ins.opname in _LOADS_BY_NAME and isinstance(ins.argval, str) else None
        if ins.is_jump_target:
            return None  # arguments computed along more than one path
        depth += pops - pushes
    return None


#: loads whose argument is the name of what they push
_LOADS_BY_NAME = frozenset({"LOAD_GLOBAL", "LOAD_ATTR", "LOAD_METHOD", "LOAD_NAME", "LOAD_DEREF",
                            "LOAD_CLASSDEREF", "LOAD_FAST"})


def _callable_depth(call) -> int | None:
    """How many stack entries lie above the callable when ``call`` starts (its arguments)."""
    name, arg = call.opname, call.arg or 0
    if name in ("CALL", "CALL_FUNCTION", "CALL_METHOD"):
        return arg
    if name == "CALL_FUNCTION_KW":
        return arg + 1  # the keyword names' tuple
    if name == "CALL_FUNCTION_EX":
        return 1 + (arg & 1)  # the arguments' tuple, and their dict
    return None


#: instructions that neither take from the stack nor put on it
_NEUTRAL = frozenset({"PRECALL", "KW_NAMES", "NOP", "CACHE", "EXTENDED_ARG", "RESUME"})
_PUSH_ONE = frozenset({"LOAD_FAST", "LOAD_CONST", "LOAD_DEREF", "LOAD_CLOSURE", "LOAD_NAME", "LOAD_CLASSDEREF",
                       "LOAD_FAST_CHECK", "LOAD_FAST_AND_CLEAR", "PUSH_NULL"})
_TWO_TO_ONE = frozenset({"BINARY_SUBSCR", "BINARY_OP", "COMPARE_OP", "IS_OP", "CONTAINS_OP", "BINARY_ADD",
                         "BINARY_SUBTRACT", "BINARY_MULTIPLY", "BINARY_TRUE_DIVIDE", "BINARY_FLOOR_DIVIDE",
                         "BINARY_MODULO", "BINARY_POWER"})
_BUILDS = frozenset({"BUILD_TUPLE", "BUILD_LIST", "BUILD_SET", "BUILD_SLICE", "BUILD_STRING"})


def _effect(ins) -> tuple[int, int] | None:
    """How many entries ``ins`` takes from the stack and puts on it; None if unknown here."""
    name, arg = ins.opname, ins.arg or 0
    if name in _NEUTRAL:
        return 0, 0
    if name in _PUSH_ONE:
        return 0, 1
    if name == "LOAD_GLOBAL":
        return 0, 1 + (arg & 1 if sys.version_info >= (3, 11) else 0)  # (and a NULL before it)
    if name == "LOAD_ATTR":
        return 1, 1 + (arg & 1 if sys.version_info >= (3, 12) else 0)  # (a method and its self)
    if name == "LOAD_METHOD":
        return 1, 2
    if name in _TWO_TO_ONE:
        return 2, 1
    if name.startswith("UNARY_"):
        return 1, 1
    if name in _BUILDS:
        return arg, 1
    if name in ("CALL", "CALL_METHOD"):
        return arg + 2, 1
    if name == "CALL_FUNCTION":
        return arg + 1, 1
    if name == "CALL_FUNCTION_KW":
        return arg + 2, 1
    return None
