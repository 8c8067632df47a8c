"""Rewrite a wrong Linear's in_features in the model's source file (``symshape check --fix``), or
another fixed layer's constructor argument (a GRU's input_size, a conv's in_channels, a LayerNorm's
int normalized_shape, a Bilinear's in1/in2_features: ``_ARGUMENTS``).

Only the expression that built the analyzed Linear is edited, found from the model itself: the
nearest class above the layer that is defined in Python source (or the factory function or
module-level instance the model spec names), then the attribute and ``nn.Sequential`` positions
down to the ``nn.Linear(...)`` call, following names assigned once. Its ``in_features`` is
rewritten when it is a literal (``nn.Linear(20000, 50)``), an arithmetic expression of literals
(``nn.Linear(64 * 4 * 4, 10)``), or a constructor parameter the model was built with at its
literal default (``def __init__(self, n=100)``, used once). Only those characters change; the
rest of the file keeps its bytes (encoding, newlines, form feeds). Anything else -- a value from
a config, a parameter passed by a caller, one literal that builds two layers needing different
values -- is refused with the reason: symshape will not guess where the fix belongs.
"""

from __future__ import annotations

import ast
import difflib
import inspect
import operator
import os
import re
import tempfile
import tokenize
from dataclasses import dataclass
from io import BytesIO
from typing import Any

import torch.nn as nn

__all__ = ["Edit", "Refusal", "Site", "apply_edits", "locate", "plan_fixes", "read_source", "unified_diff",
           "write_source"]

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.FloorDiv: operator.floordiv,
        ast.Pow: operator.pow}


@dataclass(frozen=True)
class Edit:
    layer: str
    line: int  # 1-based
    start: int  # character offsets in the file
    end: int
    old: str
    new: str


@dataclass(frozen=True)
class Refusal:
    layer: str
    reason: str


@dataclass(frozen=True)
class Site:
    """Where the analyzed Linear was built, as the model says: in the class ``name`` defined at
    ``line`` (``kind="class"``), the factory function ``name`` (``"function"``) or the
    module-level instance ``name`` (``"instance"``, ``line`` 0), at ``path`` below it (an
    attribute, then ``nn.Sequential`` positions). ``defaults``: the parameters of that class's
    ``__init__`` (or the factory) the model was built with at their defaults."""

    kind: str
    name: str
    line: int
    path: tuple[str, ...]
    defaults: frozenset = frozenset()


def locate(model: nn.Module, layer: str, built_by: Any = None, spec_name: str = "",
           kwargs: dict | None = None) -> Site | None:
    """The :class:`Site` of ``layer`` in ``model``; ``built_by`` is what the model spec names (a
    class, a factory or an instance, called with ``kwargs``). None where no source says."""
    parts = layer.split(".") if layer not in ("", "(model)") else []
    given = set(kwargs or {})
    for i in range(len(parts) - 1, -1, -1):
        owner = model.get_submodule(".".join(parts[:i])) if i else model
        cls = type(owner)
        if cls.__module__.startswith("torch."):
            continue
        try:
            line = inspect.getsourcelines(cls)[1]
        except (OSError, TypeError):
            return None
        defaults = _parameters(cls.__init__) - given if i == 0 and built_by is cls else frozenset()
        return Site("class", cls.__name__, line, tuple(parts[i:]), frozenset(defaults))
    if inspect.isfunction(built_by):
        return Site("function", built_by.__name__, built_by.__code__.co_firstlineno, tuple(parts),
                    frozenset(_parameters(built_by) - given))
    if isinstance(built_by, nn.Module) and spec_name:
        return Site("instance", spec_name.split(".")[-1], 0, tuple(parts))
    return None


def _parameters(fn) -> set[str]:
    try:
        return {p.name for p in inspect.signature(fn).parameters.values() if p.default is not inspect.Parameter.empty}
    except (TypeError, ValueError):
        return set()


# -- reading the source ------------------------------------------------------------------------------

def read_source(path: str) -> tuple[str, str]:
    """The file's text and its encoding (PEP 263 / a BOM), newlines kept as they are."""
    with open(path, "rb") as fh:
        data = fh.read()
    encoding, _ = tokenize.detect_encoding(BytesIO(data).readline)
    return data.decode(encoding), encoding


def write_source(path: str, text: str, encoding: str) -> None:
    """Replace the file atomically (a temporary file beside it, then ``os.replace``), keeping
    its permissions; refuses a file that is not writable."""
    if not os.access(path, os.W_OK):
        raise PermissionError(f"{path} is not writable")
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".symshape-", suffix=".py.tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode(encoding))
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, os.stat(path).st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # Python's line ends: not a form feed, not U+2028


def _offsets(text: str) -> list[int]:
    """The offset where each line starts, as ast counts lines."""
    return [0] + [m.end() for m in _LINE_BREAK.finditer(text)]


def _col(source: str, lines: list[int], lineno: int, byte_col: int) -> int:
    """ast gives UTF-8 byte columns; turn one into a character offset within its line."""
    line = source[lines[lineno - 1]: lines[lineno] if lineno < len(lines) else len(source)]
    return len(line.encode("utf-8")[:byte_col].decode("utf-8", errors="ignore"))


def _span(source: str, lines: list[int], node: ast.AST) -> tuple[int, int]:
    start = lines[node.lineno - 1] + _col(source, lines, node.lineno, node.col_offset)
    end = lines[node.end_lineno - 1] + _col(source, lines, node.end_lineno, node.end_col_offset)
    return start, end


# -- finding the call --------------------------------------------------------------------------------

def _value(node: ast.AST | None) -> int | None:
    """The int an expression of int literals evaluates to, else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, right = _value(node.left), _value(node.right)
        if left is None or right is None:
            return None
        try:
            return _OPS[type(node.op)](left, right)
        except (ZeroDivisionError, OverflowError):
            return None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        v = _value(node.operand)
        return None if v is None else -v
    return None


def _callee(call: ast.AST) -> str:
    if not isinstance(call, ast.Call):
        return ""
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def _arg(call: ast.Call, index: int, keyword: str) -> ast.AST | None:
    if len(call.args) > index and not any(isinstance(a, ast.Starred) for a in call.args[: index + 1]):
        return call.args[index]
    return next((k.value for k in call.keywords if k.arg == keyword), None)


def _first_line(node) -> int:
    return min([d.lineno for d in getattr(node, "decorator_list", [])] + [node.lineno])


def _assigned_once(body: list[ast.stmt]) -> dict[str, ast.AST]:
    """Names assigned exactly once (``x = ...``) among ``body``'s statements, and the value."""
    seen: dict[str, list[ast.AST]] = {}
    for stmt in body:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Assign):
                for t in node.targets:
                    for name in ast.walk(t):
                        if isinstance(name, ast.Name):
                            seen.setdefault(name.id, []).append(node.value if t is name else None)
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and isinstance(node.target, ast.Name):
                seen.setdefault(node.target.id, []).append(getattr(node, "value", None)
                                                          if isinstance(node, ast.AnnAssign) else None)
            elif isinstance(node, (ast.For, ast.With, ast.NamedExpr)):
                targets = [node.target] if isinstance(node, (ast.For, ast.NamedExpr)) else [
                    i.optional_vars for i in node.items if i.optional_vars is not None]
                for t in targets:
                    for name in ast.walk(t):
                        if isinstance(name, ast.Name):
                            seen.setdefault(name.id, []).extend([None, None])
    return {k: v[0] for k, v in seen.items() if len(v) == 1 and v[0] is not None}


class _Scope:
    """Where the walk down the path starts: an expression, the names assigned once around it,
    and the function whose parameters those names may be."""

    def __init__(self, start: ast.AST | None, names: dict, function: ast.FunctionDef | None = None):
        self.start, self.names, self.function = start, names, function


def _scope(tree: ast.Module, site: Site) -> tuple[_Scope | None, str]:
    if site.kind == "instance":
        found = [n for n in tree.body if isinstance(n, (ast.Assign, ast.AnnAssign))
                 and any(isinstance(t, ast.Name) and t.id == site.name
                         for t in (n.targets if isinstance(n, ast.Assign) else [n.target]))]
        if len(found) != 1 or found[0].value is None:
            return None, f"{site.name} is not assigned once at module level"
        return _Scope(found[0].value, _assigned_once(tree.body)), ""
    kinds = (ast.ClassDef,) if site.kind == "class" else (ast.FunctionDef, ast.AsyncFunctionDef)
    defs = [n for n in ast.walk(tree) if isinstance(n, kinds) and n.name == site.name
            and (not site.line or _first_line(n) == site.line)]
    if len(defs) != 1:
        return None, f"cannot find {site.kind} {site.name} (line {site.line}) in the file"
    node = defs[0]
    if site.kind == "function":
        returns = [n.value for n in ast.walk(node) if isinstance(n, ast.Return) and n.value is not None]
        if len(returns) != 1:
            return None, f"{site.name}() does not build the model in one return statement"
        return _Scope(returns[0], _assigned_once(node.body), node), ""
    if not site.path:
        return None, "the Linear is the model itself"
    attr = site.path[0]
    made = [(fn, n) for fn in node.body if isinstance(fn, ast.FunctionDef) for n in ast.walk(fn)
            if isinstance(n, ast.Assign) and any(isinstance(t, ast.Attribute) and t.attr == attr
                                                 and isinstance(t.value, ast.Name) and t.value.id == "self"
                                                 for t in n.targets)]
    if len(made) != 1:
        return None, f"self.{attr} is assigned {len(made)} times in class {site.name}" if made else \
            f"class {site.name} does not assign self.{attr} = ... itself"
    fn, assign = made[0]
    return _Scope(assign.value, _assigned_once(fn.body), fn), ""


def _follow(scope: _Scope, steps: tuple[str, ...]) -> ast.AST | None:
    """From the scope's start, down ``steps`` (``nn.Sequential`` positions), through names
    assigned once: the expression that built the layer, or None."""
    node, seen = scope.start, 0
    while seen < 64:
        seen += 1
        if isinstance(node, ast.Name) and node.id in scope.names:
            node = scope.names[node.id]
            continue
        if not steps:
            return node
        if _callee(node) == "Sequential" and steps[0].isdigit() and not node.keywords and not any(
                isinstance(a, ast.Starred) for a in node.args) and int(steps[0]) < len(node.args):
            node, steps = node.args[int(steps[0])], steps[1:]
            continue
        return None
    return None


def _loads(function: ast.AST, name: str) -> int:
    return sum(1 for n in ast.walk(function) if isinstance(n, ast.Name) and n.id == name
               and isinstance(n.ctx, ast.Load))


def _default_of(function: ast.FunctionDef, name: str) -> ast.AST | None:
    args = function.args
    positional = args.posonlyargs + args.args
    for a, d in zip(positional[len(positional) - len(args.defaults):], args.defaults):
        if a.arg == name:
            return d
    for a, d in zip(args.kwonlyargs, args.kw_defaults):
        if a.arg == name:
            return d
    return None


#: the constructor argument (position) that sets each fixed size --fix can rewrite, by class
_ARGUMENTS: dict[str, dict[str, int]] = {
    "Linear": {"in_features": 0}, "Bilinear": {"in1_features": 0, "in2_features": 1},
    **{c: {"input_size": 0} for c in ("RNN", "GRU", "LSTM")},
    **{f"{c}{d}d": {"in_channels": 0} for c in ("Conv", "ConvTranspose") for d in (1, 2, 3)},
    **{f"{c}{d}d": {"num_features": 0} for c in ("BatchNorm", "InstanceNorm") for d in (1, 2, 3)},
    "GroupNorm": {"num_channels": 1}, "LayerNorm": {"normalized_shape": 0}, "PReLU": {"num_parameters": 0},
}
#: fixed sizes --fix leaves to the user, and why
_BY_HAND = {"embed_dim": "embed_dim is also the layer's output size (and must divide by num_heads)",
            "d_model": "d_model is also the layer's output size",
            "kdim": "kdim sets the key projection", "vdim": "vdim sets the value projection"}


def _target(site: Site, scope: _Scope, call: ast.Call, layer: str, value: int,
            parameter: str = "in_features", position: int = 0) -> tuple[ast.AST | None, str]:
    """The expression to rewrite for the call's ``parameter``, or why there is none."""
    arg = _arg(call, position, parameter)
    if arg is None:
        return None, f"its {parameter} argument is not written out"
    return _literal_for(site, scope, arg, value, parameter)


def _literal_for(site: Site, scope: _Scope, arg: ast.AST, value: int, in_features: str) -> tuple[ast.AST | None, str]:
    """The literal to rewrite for ``arg`` (the expression that sets ``in_features``): itself, or
    the literal default of the constructor parameter it names; or why there is none."""
    if _value(arg) is not None:
        return arg, ""
    where = ast.unparse(arg)
    if isinstance(arg, ast.Name) and scope.function is not None:
        default = _default_of(scope.function, arg.id)
        if default is not None and _value(default) is not None:
            if arg.id not in site.defaults:
                return None, (f"{in_features} comes from the parameter {arg.id} (line {arg.lineno}), which the "
                              f"model was built with another value for: pass {arg.id}={value}")
            if _loads(scope.function, arg.id) != 1:
                return None, (f"{in_features} comes from the parameter {arg.id} (line {arg.lineno}), which is used "
                              f"for more than this layer: set it to {value} where it is defined")
            return default, ""
    return None, (f"{in_features} comes from {where} (line {arg.lineno}), not a literal: "
                  f"set it to {value} where it is defined")


def plan_fixes(source: str, findings, filename: str = "<model>",
               sites: dict[str, Site | None] | None = None) -> tuple[list[Edit], list[Refusal]]:
    """The edits that set each finding's Linear to its correct in_features, and the refusals.
    ``sites`` gives each finding's :class:`Site` (by layer name; see :func:`locate`)."""
    tree = ast.parse(source, filename)
    lines = _offsets(source)
    planned: dict[tuple[int, int], list[tuple[object, Edit]]] = {}
    refusals = []
    for f in findings:
        parameter, kind = getattr(f, "parameter", "in_features"), getattr(f, "kind", "nn.Linear")
        cls = kind[3:] if kind.startswith("nn.") else ""
        value = getattr(f, "right_value", f.value)
        if value is None:
            lazy = getattr(f, "lazy_fix", None)
            refusals.append(Refusal(f.layer, f"{parameter} depends on the input size"
                                    + (f"; use {lazy.replace('(...)', '')}" if lazy else "")))
            continue
        if ".shape[" in parameter:
            edit, why = _shape_edit(source, lines, tree, f, (sites or {}).get(f.layer), value, filename)
            if edit is None:
                refusals.append(Refusal(f.layer, why))
            else:
                planned.setdefault((edit.start, edit.end), []).append((f, edit))
            continue
        if parameter in _BY_HAND or parameter not in _ARGUMENTS.get(cls, {}):
            why = _BY_HAND.get(parameter) or (f"{parameter} is the shape of a tensor the model builds"
                                              if ".shape[" in parameter else f"symshape does not rewrite {parameter}")
            refusals.append(Refusal(f.layer, f"{why}: set it to {value} by hand"))
            continue
        site = (sites or {}).get(f.layer)
        if site is None:
            refusals.append(Refusal(f.layer, f"no source in {filename} says where it is built"))
            continue
        scope, why = _scope(tree, site)
        call = _follow(scope, site.path[1:] if site.kind == "class" else site.path) if scope else None
        if call is None:
            refusals.append(Refusal(f.layer, why or f"cannot follow {'.'.join(site.path)} to an nn.{cls} call "
                                                    f"in {filename}"))
            continue
        if _callee(call) != cls or (cls == "Linear" and _value(_arg(call, 1, "out_features")) not in
                                    (f.out_features, None)):
            want = f"nn.Linear(..., {f.out_features})" if cls == "Linear" else f"nn.{cls}(...)"
            refusals.append(Refusal(f.layer, f"the source builds it with {ast.unparse(call)[:80]} (line "
                                             f"{call.lineno}), not {want}"))
            continue
        node, why = _target(site, scope, call, f.layer, value, parameter, _ARGUMENTS[cls][parameter])
        if node is None:
            refusals.append(Refusal(f.layer, why))
            continue
        start, end = _span(source, lines, node)
        planned.setdefault((start, end), []).append(
            (f, Edit(f.layer, node.lineno, start, end, source[start:end], str(value))))
    edits = []
    for (start, end), wanted in sorted(planned.items()):
        values = {e.new for _, e in wanted}
        if len(values) > 1:  # one literal builds several layers that need different values
            needs = ", ".join(f"{e.layer} needs {e.new}" for _, e in wanted)
            for _, e in wanted:
                refusals.append(Refusal(e.layer, f"{e.old} (line {e.line}) builds several layers: {needs}"))
            continue
        first = wanted[0][1]  # several layers built by one literal, all needing this value: one edit
        edits.append(Edit(", ".join(e.layer for _, e in wanted), first.line, start, end, first.old, first.new))
    return edits, refusals


#: the tensor constructors whose positional sizes --fix rewrites in ``nn.Parameter(torch.randn(5, 800))``
_MAKERS = {"randn", "rand", "zeros", "ones", "empty", "Tensor", "FloatTensor"}


def _shape_edit(source: str, lines, tree, f, site: Site | None, value: int, filename: str):
    """The edit that sets one size of a parameter made as ``self.w = nn.Parameter(torch.randn(5,
    800))`` (a finding of ``F.linear(x, self.w)`` or ``x @ self.w``), or why there is none."""
    name, _, index = f.parameter.partition(".shape[")
    dim = int(index.rstrip("]"))
    if site is None:
        return None, f"no source in {filename} says where {name} is made"
    scope, why = _scope(tree, site)
    node = _follow(scope, site.path[1:] if site.kind == "class" else site.path) if scope else None
    if node is None:
        return None, why or f"cannot follow {'.'.join(site.path)} to where {name} is made in {filename}"
    if _callee(node) == "Parameter" and node.args:
        node = node.args[0]
    if _callee(node) not in _MAKERS or node.keywords and any(k.arg == "size" for k in node.keywords):
        return None, (f"{name} is made by {ast.unparse(node)[:60]} (line {node.lineno}), not torch.randn(...)-style "
                      f"sizes: give it {value} in dim {dim} by hand")
    sizes = node.args
    if len(sizes) == 1 and isinstance(sizes[0], (ast.Tuple, ast.List)):
        sizes = sizes[0].elts
    if any(isinstance(a, ast.Starred) for a in sizes) or dim >= len(sizes):
        return None, (f"{name}'s size in dim {dim} is not written out in {ast.unparse(node)[:60]} (line "
                      f"{node.lineno}): set it to {value} where it is defined")
    target, why = _literal_for(site, scope, sizes[dim], value, f"{name}.shape[{dim}]")
    if target is None:
        return None, why
    start, end = _span(source, lines, target)
    return Edit(f.layer, target.lineno, start, end, source[start:end], str(value)), ""


def apply_edits(source: str, edits: list[Edit]) -> str:
    for e in sorted(edits, key=lambda e: e.start, reverse=True):
        source = source[: e.start] + e.new + source[e.end:]
    return source


def unified_diff(old: str, new: str, path: str) -> str:
    return "".join(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                        fromfile=f"a/{path}", tofile=f"b/{path}"))
