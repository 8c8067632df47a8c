"""Rewrite a view that folds the batch dim into its -1 (``symshape check --fix``):
``x.view(-1, 9216)`` becomes ``x.flatten(1)``, and ``x.view(-1, 256, 6, 6)`` becomes
``x.view(x.size(0), 256, 6, 6)``, so one sample stays one row whatever the input size.

The call is found from the model, not by pattern: the traced step's fx node gives the class whose
forward made it and the sizes torch was given; in that class's ``forward`` (parsed, never run)
the one ``.view(...)``/``.reshape(...)`` call whose arguments are those int literals (or
arithmetic of them, ``256 * 6 * 6``) is rewritten, and only its characters change. No such
call, several, a ``-1`` that is not first, or a receiver that is not a plain name where it must
be repeated: refused with the reason.
"""

from __future__ import annotations

import ast
import inspect
from dataclasses import dataclass

from .fix import Edit, Refusal, _offsets, _span, _value
from .trace import scope_of

__all__ = ["ViewCall", "plan_view_fix", "view_call"]


@dataclass(frozen=True)
class ViewCall:
    """A traced ``view``/``reshape``: its step, the class whose ``forward`` called it, the
    method's name and the sizes it was given."""

    step: str
    owner: type
    method: str
    sizes: tuple[int, ...]


def view_call(analysis, step_name: str) -> ViewCall | None:
    """The :class:`ViewCall` of the step ``step_name`` (None where its sizes are not all ints
    or the step is not a traced method call)."""
    step = next((s for s in analysis.steps if s.name == step_name), None)
    if step is None or step.kind != "method" or analysis.graph is None:
        return None
    node = next((n for n in analysis.graph.nodes if n.name == step.node), None)
    if node is None or node.target not in ("view", "reshape"):
        return None
    sizes = node.args[1:]
    if len(sizes) == 1 and isinstance(sizes[0], (list, tuple)):
        sizes = tuple(sizes[0])
    if not sizes or not all(isinstance(s, int) and not isinstance(s, bool) for s in sizes):
        return None
    scope = scope_of(node)
    owner = analysis.model.get_submodule(scope) if scope else analysis.model
    return ViewCall(step_name, type(owner), node.target, tuple(sizes))


def source_file(call: ViewCall) -> str:
    """The file that defines the class whose forward made the view ("" where none)."""
    try:
        return inspect.getsourcefile(call.owner) or ""
    except TypeError:
        return ""


def plan_view_fix(source: str, call: ViewCall) -> Edit | Refusal:
    """The edit of ``source`` (the file defining ``call.owner``) that keeps the batch dim first."""
    if call.sizes[0] != -1 or call.sizes.count(-1) != 1:
        return Refusal(call.step, f"{call.method}{call.sizes}: symshape rewrites a view whose -1 comes first")
    tree = ast.parse(source)
    try:
        line = inspect.getsourcelines(call.owner)[1]
    except (OSError, TypeError):
        line = None
    classes = [c for c in ast.walk(tree) if isinstance(c, ast.ClassDef) and c.name == call.owner.__name__
               and (line is None or c.lineno <= line <= c.end_lineno)]
    forwards = [f for c in classes for f in c.body if isinstance(f, ast.FunctionDef) and f.name == "forward"]
    if len(forwards) != 1:
        return Refusal(call.step, f"no single forward of {call.owner.__name__} in its source")
    found = [n for n in ast.walk(forwards[0]) if _is_call(n, call)]
    if len(found) != 1:
        many = "no" if not found else f"{len(found)}"
        return Refusal(call.step, f"{many} calls .{call.method}{_shown(call.sizes)} in {call.owner.__name__}.forward")
    target = found[0]
    lines = _offsets(source)
    _, start = _span(source, lines, target.func.value)  # just after the receiver: ".view(-1, 9216)"
    _, end = _span(source, lines, target)
    if len(call.sizes) == 2:
        new = ".flatten(1)"
    elif isinstance(target.func.value, ast.Name):
        args = _size_args(target)
        rest = source[_span(source, lines, args[1])[0]:_span(source, lines, args[-1])[1]]
        new = f".{call.method}({target.func.value.id}.size(0), {rest})"
    else:
        return Refusal(call.step, f"{call.method}{_shown(call.sizes)} of an expression: write "
                                  f"x = <it> first, then x.{call.method}(x.size(0), ...)")
    return Edit(call.step, target.lineno, start, end, source[start:end], new)


def _shown(sizes) -> str:
    return "(" + ", ".join(str(s) for s in sizes) + ")"


def _size_args(call: ast.Call) -> list[ast.AST]:
    """The size arguments of ``x.view(a, b)`` or ``x.view((a, b))``."""
    if len(call.args) == 1 and isinstance(call.args[0], (ast.Tuple, ast.List)):
        return list(call.args[0].elts)
    return list(call.args)


def _is_call(node: ast.AST, call: ViewCall) -> bool:
    """Whether ``node`` is ``<something>.view(sizes)`` with exactly these int sizes."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == call.method
            and not node.keywords):
        return False
    args = _size_args(node)
    return len(args) == len(call.sizes) and all(_value(a) == s for a, s in zip(args, call.sizes))
