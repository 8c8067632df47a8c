"""Rewrite a wrong Linear's in_features in the model's source file (``symshape check --fix``).

Only a literal (``nn.Linear(20000, 50)``) or a simple arithmetic expression of literals
(``nn.Linear(64 * 4 * 4, 10)``) is rewritten, and only that argument's characters change, so the
rest of the line, its formatting and its comments stay as they are. A value that comes from
elsewhere -- a variable, a constructor argument, a config -- is refused with the reason: the fix
belongs there, and symshape will not guess where.
"""

from __future__ import annotations

import ast
import difflib
import operator
from dataclasses import dataclass

__all__ = ["Edit", "Refusal", "plan_fixes", "apply_edits", "unified_diff"]

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


def _value(node: ast.AST) -> int | None:
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


def _is_linear(call: ast.Call) -> bool:
    f = call.func
    name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
    return name == "Linear"


def _arg(call: ast.Call, index: int, keyword: str) -> ast.AST | None:
    if len(call.args) > index:
        return call.args[index]
    return next((k.value for k in call.keywords if k.arg == keyword), None)


def _path(call: ast.Call, parents: dict) -> list[str]:
    """Where a call lands in the module tree, as far as the source says: ``self.fc1 = ...`` gives
    ``[fc1]``; an argument of ``nn.Sequential(...)`` assigned to ``self.clf`` gives ``[clf, 1]``."""
    out: list[str] = []
    node = call
    while True:
        parent = parents.get(node)
        if isinstance(parent, ast.Call) and node in parent.args:
            out.insert(0, str(parent.args.index(node)))
            node = parent
            continue
        if isinstance(parent, (ast.Assign, ast.AnnAssign)):
            targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
            t = targets[0]
            if isinstance(t, ast.Attribute):
                out.insert(0, t.attr)
            elif isinstance(t, ast.Name):
                out.insert(0, t.id)
        return out


def _offsets(text: str) -> list[int]:
    starts, pos = [0], 0
    for line in text.splitlines(keepends=True):
        pos += len(line)
        starts.append(pos)
    return starts


def plan_fixes(source: str, findings, filename: str = "<model>") -> tuple[list[Edit], list[Refusal]]:
    """The edits that set each finding's Linear to its correct in_features, and the refusals."""
    tree = ast.parse(source, filename)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and _is_linear(n)]
    lines = _offsets(source)
    edits, refusals = [], []
    for f in findings:
        if f.value is None:
            refusals.append(Refusal(f.layer, "in_features depends on the input size; use nn.LazyLinear"))
            continue
        wanted = f.layer.split(".")

        def matches_out(c):
            return _value(_arg(c, 1, "out_features")) == f.out_features

        by_value = [c for c in calls if matches_out(c) and _value(_arg(c, 0, "in_features")) == f.declared]
        by_path = [c for c in calls if matches_out(c) and _path(c, parents)
                   and wanted[-len(_path(c, parents)):] == _path(c, parents)[-len(wanted):]]
        chosen = by_value if len(by_value) == 1 else [c for c in by_value if c in by_path]
        if len(chosen) != 1:
            named = [c for c in by_path if _value(_arg(c, 0, "in_features")) is None]
            if len(named) == 1:
                node = _arg(named[0], 0, "in_features")
                where = ast.get_source_segment(source, node) if node is not None else "?"
                refusals.append(Refusal(f.layer, f"in_features comes from {where!s} (line {named[0].lineno}), "
                                                 f"not a literal: set it to {f.value} where it is defined"))
            elif not by_value:
                refusals.append(Refusal(f.layer, f"no nn.Linear(..., {f.out_features}) with in_features "
                                                 f"{f.declared} in {filename}"))
            else:
                refusals.append(Refusal(f.layer, f"{len(chosen) or len(by_value)} matching nn.Linear calls "
                                                 f"in {filename}; which one is ambiguous"))
            continue
        node = _arg(chosen[0], 0, "in_features")
        start = lines[node.lineno - 1] + _col(source, lines, node.lineno, node.col_offset)
        end = lines[node.end_lineno - 1] + _col(source, lines, node.end_lineno, node.end_col_offset)
        edits.append(Edit(f.layer, node.lineno, start, end, source[start:end], str(f.value)))
    return edits, refusals


def _col(source: str, lines: list[int], lineno: int, byte_col: int) -> int:
    """ast gives UTF-8 byte columns; turn one into a character offset within its line."""
    line = source[lines[lineno - 1]: lines[lineno] if lineno < len(lines) else len(source)]
    return len(line.encode("utf-8")[:byte_col].decode("utf-8", errors="ignore"))


def apply_edits(source: str, edits: list[Edit]) -> str:
    for e in sorted(edits, key=lambda e: e.start, reverse=True):
        source = source[: e.start] + e.new + source[e.end:]
    return source


def unified_diff(old: str, new: str, path: str) -> str:
    return "".join(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                        fromfile=f"a/{path}", tofile=f"b/{path}"))
