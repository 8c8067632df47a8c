"""The ``symshape`` command: parse, call the public API, print, set the exit code.

Exit codes: 0 success, 1 a finding (a Linear whose in_features does not fit; no size solves the
question asked; a prediction torch contradicts), 2 a usage error (bad model spec, malformed --input, a size torch refuses, a
model symshape cannot analyze or solve, an output that cannot be written), 130 interrupted (Ctrl-C), 141 the reader closed the
output (``| head``).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import inspect
import io
import json
import os
import sys
from typing import Any, Sequence

from . import __version__
from .errors import InvalidInputSize, SymshapeError

# torch and sympy are imported by the commands that need them (`symshape --help` and
# `--version` answer without): analysis, dims, fix, load and render are imported where called
BATCH = "N"  # symshape.dims.BATCH, the batch dim's name


def analyze(*args, **kwargs):
    from .analysis import analyze
    return analyze(*args, **kwargs)


def batch_symbol():
    from .dims import batch_symbol
    return batch_symbol()


def load_model(*args, **kwargs):
    from .load import load_model
    return load_model(*args, **kwargs)


def parse_inputs(*args, **kwargs):
    from .load import parse_inputs
    return parse_inputs(*args, **kwargs)


def spec_object(*args, **kwargs):
    from .load import spec_object
    return spec_object(*args, **kwargs)


def text_table(*args, **kwargs):
    from .render import text_table
    return text_table(*args, **kwargs)

OK, FINDING, USAGE = 0, 1, 2
#: Ctrl-C (as a shell reports SIGINT), and a reader that closed stdout (as for SIGPIPE)
INTERRUPTED, CLOSED_OUTPUT = 130, 141


class _UsageError(Exception):
    pass


def _declared(analysis, name: str) -> str:
    fixed = analysis.fixed.get(name)
    if fixed is None:
        return "?"
    return "lazy" if fixed.declared is None else str(fixed.declared)


def _batch(args) -> str | None:
    """--no-batch: analyze the call exactly as --input gives it (no batch dim added)."""
    return None if getattr(args, "no_batch", False) else BATCH


def _batch_size(args) -> int:
    """--batch N: the batch size the answers are for (1 by default)."""
    return getattr(args, "batch", None) or 1


def _header(args, analysis) -> str:
    """What the answer is about: the model, its mode, the batch and the input."""
    batch = "no batch dim" if not analysis.batched else f"batch {_batch_size(args)}"
    inputs = "input" if len(args.input) == 1 else "inputs"
    return f"{args.model}: {analysis.mode} mode, {batch}, {inputs} {'; '.join(args.input)}"


def _context(args, analysis) -> dict:
    """The mode and batch of the answer, for --json."""
    return {"mode": analysis.mode, "batch": _batch_size(args) if analysis.batched else None}


def _kwargs(args) -> dict | None:
    return json.loads(args.kwargs) if args.kwargs else None


def _input_spec(args):
    """What ``analyze`` takes for the --input options: one shape, a tuple of shapes (positional
    inputs), a dict (keyword inputs) or both."""
    from .load import input_spec
    try:
        return input_spec(args.input)
    except ValueError as e:
        raise _UsageError(str(e)) from e


def _model_and_input(args):
    shape = _input_spec(args)
    kwargs = None
    if args.kwargs:
        try:
            kwargs = json.loads(args.kwargs)
        except json.JSONDecodeError as e:
            raise _UsageError(f"--kwargs is not valid JSON: {e}") from e
        if not isinstance(kwargs, dict):
            raise _UsageError("--kwargs must be a JSON object, e.g. '{\"in_features\": 320}'")
    if getattr(args, "batch", None) is not None and getattr(args, "no_batch", False):
        raise _UsageError("--batch and --no-batch exclude each other: --no-batch calls the model with exactly --input")
    model = load_model(args.model, kwargs)
    # the inference question by default: the CLI loaded this instance itself, and sets its mode
    model.train(bool(getattr(args, "train", False)))
    return model, shape


def _json_input(shape) -> dict:
    """An --input as JSON: its shape, and its dtype where it was given one (``T:int64``)."""
    if hasattr(shape, "dtype"):  # (symshape.inputs.Input)
        return {"shape": list(shape.shape), "dtype": str(shape.dtype).removeprefix("torch.")}
    return {"shape": list(shape)}


def _emit(args, result: dict, members=None, analysis=None) -> None:
    """Print ``result`` as one JSON object (``--json``); ``members`` (an iterator of sizes) is
    streamed into its ``"members"`` array, so a long listing takes no memory."""
    positional, keyword = parse_inputs(args.input)
    inputs = [_json_input(p) for p in positional] + [{"name": k, **_json_input(v)} for k, v in keyword.items()]
    doc = {"command": args.command, "model": args.model, "input": inputs[0]["shape"], "inputs": inputs,
           **(_context(args, analysis) if analysis is not None else {}), **result}
    if members is None:
        print(json.dumps(doc))
        return
    text = json.dumps(doc)
    print(text[:-1] + ', "members": [', end="")
    for i, m in enumerate(members):
        print(("" if i == 0 else ", ") + json.dumps(m), end="")
    print("]}")


def cmd_formula(args) -> int:
    """Each Linear's in_features: the formula, or its value when --input is all numbers."""
    model, shape = _model_and_input(args)
    analysis = analyze(model, shape, batch=_batch(args))
    at_batch = _at_batch(args, analysis)
    shown = (analysis.for_batch(_batch_size(args)) or analysis).output_shape  # this batch's case (a squeeze of N)
    output = [str(at_batch(s)) for s in shown] if isinstance(shown, tuple) else str(shown)
    if not args.json:
        print(_header(args, analysis))
    if not analysis.in_features:
        if args.json:
            _emit(args, {"output_shape": output, "layers": [], "problems": []}, analysis=analysis)
        else:
            print("the forward calls no nn.Linear (nor another layer whose parameters fix an input size); "
                  "output shape:", f"({', '.join(output)})" if isinstance(output, list) else output)
        return OK
    if analysis.size_names:
        rows = [(k, str(at_batch(v)), _declared(analysis, k)) for k, v in analysis.in_features.items()]
        if args.json:
            _emit(args, {"output_shape": output, "problems": [],
                         "layers": [{"layer": k, "in_features": f, "value": None, "declared": _json_declared(d),
                                     "fits": None} for k, f, d in rows]}, analysis=analysis)
        else:
            print(text_table(("layer", "in_features", "declared"), rows))
            for m in analysis.batch_merges():
                print(f"note: {m.text()}")
        return OK
    ev = analysis.evaluate(**_batch_sizes(args, analysis))
    views = _view_notes(analysis, ev)
    if ev.failure is not None and views and views[-1]["rows"] is None:
        # the batch-folding view is what torch refuses here: a finding with its fix
        if args.json:
            _emit(args, {"output_shape": output, "layers": [], "problems": [], "views": views}, analysis=analysis)
        else:
            print(views[-1]["message"])
        return FINDING
    if ev.failure is not None:
        raise InvalidInputSize(ev.failure.step, ev.failure.reason)
    wrong = {f.step: f.reason for f in ev.mismatches}
    rows, layers = [], []
    for k, v in ev.in_features.items():
        declared = _declared(analysis, k)
        note = "" if declared in (str(v), "lazy") else "  <- does not fit"
        rows.append((k, str(v), declared + note))
        layers.append({"layer": k, "in_features": str(at_batch(analysis.in_features[k])), "value": v,
                       "declared": _json_declared(declared), "fits": declared in (str(v), "lazy")})
    if args.json:
        _emit(args, {"output_shape": output, "layers": layers, "views": views,
                     "problems": [{"layer": k, "reason": r} for k, r in wrong.items()]}, analysis=analysis)
        return FINDING if wrong or views else OK
    print(text_table(("layer", "in_features", "declared"), rows))
    for step, reason in wrong.items():
        print(f"{step}: {reason}")
    for v in views:
        print(f"note: {v['message']}")
    return FINDING if wrong or views else OK


def _view_notes(analysis, ev) -> list[dict]:
    """The batch-folding views that matter at the evaluated sizes (symshape.check)."""
    from .check import merged_views
    return merged_views(analysis, analysis.batch_merges(), ev)


def _batch_sizes(args, analysis) -> dict:
    """``{"N": batch}`` for an analysis with a batch dim and a --batch other than 1."""
    b = _batch_size(args)
    return {BATCH: b} if analysis.batched and b != 1 else {}


def _at_batch(args, analysis):
    """A size expression at the batch size asked for (``N`` replaced; no batch dim: as it is)."""
    if not analysis.batched or getattr(args, "batch", None) is None:
        return lambda e: e  # no --batch: formulas keep the batch dim N
    n = batch_symbol()
    b = _batch_size(args)
    return lambda e: e.xreplace({n: b}) if hasattr(e, "xreplace") else e


def _json_declared(declared: str):
    return int(declared) if declared.isdigit() else (None if declared == "?" else declared)


def _symbolic(args):
    model, shape = _model_and_input(args)
    analysis = analyze(model, shape, batch=_batch(args))
    if not analysis.size_names:
        raise _UsageError("--input has no size name to solve for; use names, e.g. --input 1,H,W")
    return analysis


#: a size set printed as more lines than this shows the first ones and says how many more
MAX_SET_LINES = 12


def _show(label: str, sizes) -> str:
    """``label: the set`` on one line, or one line per box when there are several (the first
    MAX_SET_LINES of a long set, and how many more: ``--json`` lists every box)."""
    lines = sizes.lines()
    if len(lines) <= 1:
        return f"{label} {lines[0] if lines else sizes}"
    shown = lines if len(lines) <= MAX_SET_LINES else lines[:MAX_SET_LINES - 2]
    more = [f"  … and {len(lines) - len(shown)} more (--json lists them all)"] if len(shown) < len(lines) else []
    return "\n".join([label.rstrip()] + [f"  {line}" for line in shown] + more)


def _print_listing(sizes, max_size: int | None) -> None:
    """Every member up to ``max_size``, printed as it is found (two passes over the boxes: the
    count for the header, then the rows), so a listing of millions starts at once and takes no
    memory."""
    if max_size is None:
        return
    print(f"sizes up to {max_size} ({sizes.count(max_size)}):")
    for r in sizes.members(max_size):
        print("  " + ", ".join(f"{k}={v}" for k, v in r.items()))


def _linear_name(analysis, layer: str | None) -> str:
    """--layer, or the first Linear called; a usage error when there is no such Linear."""
    if not analysis.in_features:
        raise _UsageError("the forward calls no nn.Linear (nor another layer whose parameters fix an input size): "
                          "there is no in_features to solve for")
    if layer is None:
        return next(iter(analysis.in_features))
    if layer not in analysis.in_features:
        raise _UsageError(f"--layer {layer!r}: no fixed layer of that name; the forward calls: "
                          f"{', '.join(analysis.in_features)}")
    return layer


def cmd_solve(args) -> int:
    """The input sizes whose in_features equals --flat (exit 1 when there are none)."""
    analysis = _symbolic(args)
    layer = _linear_name(analysis, args.layer)
    sizes = analysis.solve(args.flat, layer=args.layer, square=args.square, batch=_batch_size(args))
    if args.json:
        nearest = {label: ({"value": sizes.nearest[label][0], "at": sizes.nearest[label][1].to_json()}
                           if label in sizes.nearest else None) for label in ("below", "above")}
        _emit(args, {"layer": layer, "flat": args.flat, "square": args.square, "solutions": sizes.to_json(),
                     "nearest": nearest}, sizes.members(args.max) if args.max is not None else None, analysis)
        return FINDING if sizes.is_empty else OK
    print(_header(args, analysis))
    if sizes.is_empty:
        print(f"no input size gives {layer} in_features = {args.flat}" + (" with square inputs" if args.square else ""))
        for label in ("below", "above"):
            if label in sizes.nearest:
                value, where = sizes.nearest[label]
                print(_show(f"nearest {label}: {value} at", where))
            else:
                print(f"nearest {label}: none")
        return FINDING
    print(_show(f"{layer} in_features = {args.flat} at", sizes))
    _print_listing(sizes, args.max)
    return OK


def cmd_sizes(args) -> int:
    """The input sizes the model accepts, the smallest, and those with no rounding."""
    analysis = _symbolic(args)
    batch = _batch_size(args)
    valid = analysis.valid_sizes(batch=batch)
    if args.json:
        exact = analysis.exact_sizes(batch=batch) if not valid.is_empty else valid
        _emit(args, {"valid": valid.to_json(), "smallest": valid.min(), "no_rounding": exact.to_json()},
              valid.members(args.max) if args.max is not None else None, analysis)
        return FINDING if valid.is_empty else OK
    print(_header(args, analysis))
    if valid.is_empty:
        print("valid:       no input size (torch refuses every size)")
        return FINDING
    exact = analysis.exact_sizes(batch=batch)
    smallest = ", ".join(f"{k}={v}" for k, v in valid.min().items())
    print(_show("valid:      ", valid))
    print(f"smallest:    {smallest}")
    print(_show("no rounding:", exact))
    _print_listing(valid, args.max)
    return OK


def _fit_sizes(text: str, names: tuple[str, ...]) -> dict[str, int]:
    """``--size 500x375`` (in the order of the size names) or ``--size H=500,W=375``."""
    if "=" in text:
        parts = [p.partition("=") for p in text.split(",")]
        if not all(eq and k.strip().isidentifier() and v.strip().isdigit() for k, eq, v in parts):
            raise _UsageError(f"--size {text!r}: expected sizes such as 500x375 or H=500,W=375")
        return {k.strip(): int(v) for k, _, v in parts}
    values = text.lower().replace(",", "x").split("x")
    if not all(v.strip().isdigit() for v in values) or len(values) != len(names):
        raise _UsageError(f"--size {text!r}: expected {len(names)} number(s) joined by x, one per size name "
                          f"({', '.join(names)}), e.g. {'x'.join('500' for _ in names)}")
    return dict(zip(names, (int(v) for v in values)))


def cmd_fit(args) -> int:
    """The accepted sizes nearest to --size: pad up to one, or crop down to one (exit 1: neither)."""
    analysis = _symbolic(args)
    sizes = _fit_sizes(args.size, analysis.size_names)
    near = analysis.nearest_sizes(batch=_batch_size(args), **sizes)
    if args.json:
        _emit(args, near.to_json(), analysis=analysis)
    else:
        print(_header(args, analysis))
        print(near)
    return OK if near.pad is not None or near.crop is not None else FINDING


def cmd_export_spec(args) -> int:
    """Print torch.export's dynamic_shapes for the sizes the model accepts, as Python (exit 1:
    torch.export refused every spec tried, or the exported program disagreed with eager torch)."""
    analysis = _symbolic(args)
    sizes = _fit_sizes(args.size, analysis.size_names) if args.size else {}
    spec = analysis.export_spec(batch=_batch_size(args), check=not args.no_check, **sizes)
    checked = spec.checked
    works = checked is None or checked.works
    if args.json:
        _emit(args, spec.to_json(), analysis=analysis)
        return OK if works else FINDING
    print(f"# {_header(args, analysis)}")
    print(spec.code())
    if checked is not None:
        print()
        print("\n".join(f"# {line}" for line in checked.lines()))
    return OK if works else FINDING


_SPATIAL_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("T", "H", "W")}


def _named_shape(shape: tuple, taken: dict, suffix: str = "") -> tuple[tuple, dict]:
    """``(1, 28, 28)`` -> ``((1, "H", "W"), {"H": 28, "W": 28})``: numbers after the channel dim
    become named sizes, so answers come with formulas; names already given stay. A name ``taken``
    with another value gets ``suffix`` (the second input's ``H2``)."""
    if not isinstance(shape, tuple) or any(isinstance(d, str) for d in shape) or len(shape) < 2:
        return shape, {}  # (names given; an input of token ids, which has no channels)
    spatial = len(shape) - 1
    names = _SPATIAL_NAMES.get(spatial, tuple(f"D{i}" for i in range(1, spatial + 1)))
    if any(taken.get(n, v) != v for n, v in zip(names, shape[1:])):
        names = tuple(n + suffix for n in names)
    return (shape[0], *names), dict(zip(names, shape[1:]))


def _named(spec) -> tuple[Any, dict]:
    """:func:`_named_shape` for each input of ``spec`` (see :func:`_input_spec`): equal sizes
    of several inputs share a name."""
    several = isinstance(spec, dict) or isinstance(spec, tuple) and bool(spec) and not isinstance(spec[0], (int, str))
    if not several:  # (one shape, or one Input)
        return _named_shape(spec, {})
    sizes: dict = {}

    def name(shape, i):
        named, values = _named_shape(shape, sizes, str(i + 1))
        sizes.update(values)
        return named
    if isinstance(spec, dict):
        return {k: name(v, i) for i, (k, v) in enumerate(spec.items())}, sizes
    if isinstance(spec[-1], dict):
        args = tuple(name(v, i) for i, v in enumerate(spec[0]))
        return (args, {k: name(v, len(args) + i) for i, (k, v) in enumerate(spec[1].items())}), sizes
    return tuple(name(v, i) for i, v in enumerate(spec)), sizes


def _built_at(finding) -> str:
    """The attribute path of what --fix edits: the layer's module, or the parameter whose shape
    fixes the size (``w`` of ``F.linear(x, self.w)``)."""
    if ".shape[" in finding.parameter:
        return finding.parameter.partition(".shape[")[0]
    return finding.step or finding.layer


def _source_file(model, layer: str, spec: str) -> str:
    """The file that builds ``layer``: the nearest user-defined class above it, else the spec's file."""

    parts = layer.split(".") if layer not in ("", "(model)") else []
    for i in range(len(parts) - 1, -1, -1):
        owner = model.get_submodule(".".join(parts[:i])) if i else model
        if not type(owner).__module__.startswith("torch."):
            try:
                return inspect.getsourcefile(type(owner))
            except TypeError:
                break
    where = spec.rpartition(":")[0]
    return where if where.endswith(".py") else ""


def cmd_check(args) -> int:
    """Every Linear whose in_features does not fit (exit 1), with the fix; --fix edits the source."""

    model, shape = _model_and_input(args)
    named, sizes = _named(shape)
    analysis = analyze(model, named, batch=_batch(args))
    report = analysis.check(**sizes, **_batch_sizes(args, analysis))
    if args.json and not args.fix:
        _emit(args, report.to_json(), analysis=analysis)
        return OK if report.ok else FINDING
    if args.json:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = _fix(args, model, report, analysis)
        _emit(args, {**report.to_json(), "fix_output": out.getvalue()}, analysis=analysis)
        return code
    print(_header(args, analysis))
    print(report)
    if report.ok or not args.fix:
        return OK if report.ok else FINDING
    return _fix(args, model, report, analysis)


def _fix(args, model, report, analysis) -> int:
    """Rewrite each wrong Linear where the source builds it (symshape.fix), and each view that
    folds the batch dim where the forward calls it (symshape.fixview); print the diff of a file
    only once it is written."""
    if report.ok:
        return OK
    from .fix import apply_edits, read_source, unified_diff, write_source
    planned: dict[str, list] = {}  # file -> callables planning its edits from its source
    for path, plan in [*_linear_plans(args, model, report), *_view_plans(analysis, report)]:
        planned.setdefault(path, []).append(plan)
    fixed = 0
    for path, plans in planned.items():
        try:
            source, encoding = read_source(path)
            edits = [e for plan in plans for e in plan(source)]
        except (OSError, SyntaxError, UnicodeDecodeError, LookupError) as e:
            print(f"not fixed: {', '.join(getattr(p, 'layers', '?') for p in plans)}: cannot read "
                  f"{os.path.relpath(path)}: {e}")
            continue
        if not edits:
            continue
        new = apply_edits(source, edits)
        try:
            write_source(path, new, encoding)
        except OSError as e:
            for e_ in edits:
                print(f"not fixed: {e_.layer}: cannot write {os.path.relpath(path)}: {e}")
            continue
        print(unified_diff(source, new, os.path.relpath(path)), end="")
        fixed += sum(len(e.layer.split(", ")) for e in edits)
        print(f"fixed {', '.join(e.layer for e in edits)} in {os.path.relpath(path)}")
    return OK if fixed == len(report.findings) + len(report.views) and not report.refused else FINDING


def _linear_plans(args, model, report) -> list:
    """``(file, plan)`` per file holding wrong Linears: ``plan(source)`` prints what it cannot
    fix and returns the edits."""
    from .fix import locate, plan_fixes
    built_by, spec_name, kwargs = spec_object(args.model), args.model.rpartition(":")[2], _kwargs(args)
    by_file: dict[str, list] = {}
    for f in report.findings:
        by_file.setdefault(_source_file(model, _built_at(f), args.model), []).append(f)
    out = []
    for path, findings in by_file.items():
        if not path:
            for f in findings:
                print(f"not fixed: {f.layer}: no source file to edit")
            continue

        def plan(source, path=path, findings=findings):
            sites = {f.layer: locate(model, _built_at(f), built_by, spec_name, kwargs) for f in findings}
            edits, refusals = plan_fixes(source, findings, path, sites)
            for r in refusals:
                print(f"not fixed: {r.layer}: {r.reason}")
            return edits
        plan.layers = ", ".join(f.layer for f in findings)
        out.append((path, plan))
    return out


def _view_plans(analysis, report) -> list:
    """``(file, plan)`` per batch-folding view the report flags (see :func:`_linear_plans`)."""
    from .fix import Refusal
    from .fixview import plan_view_fix, source_file, view_call
    out = []
    for v in report.views:
        call = view_call(analysis, v["step"])
        path = source_file(call) if call is not None else ""
        if not path:
            print(f"not fixed: {v['step']}: no source line to edit (not a view(...) of int sizes in a forward)")
            continue

        def plan(source, call=call):
            result = plan_view_fix(source, call)
            if isinstance(result, Refusal):
                print(f"not fixed: {result.layer}: {result.reason}")
                return []
            return [result]
        plan.layers = v["step"]
        out.append((path, plan))
    return out


def cmd_explain(args) -> int:
    """Every layer's arithmetic, symbolic or at the sizes given, as text, Markdown or LaTeX."""
    model, shape = _model_and_input(args)
    named, sizes = _named(shape)
    analysis = analyze(model, named, batch=_batch(args))
    text = analysis.explain(args.format, args.full, **sizes, **(_batch_sizes(args, analysis) if sizes else {}))
    if args.json:
        steps = [{"name": s.name, "op": s.op, "inputs": [str(i) for i in s.inputs], "output": str(s.output)}
                 for s in analysis.steps]
        _emit(args, {"format": args.format, "sizes": sizes, "steps": steps, "text": str(text)}, analysis=analysis)
        return OK
    # the header as the format's comment, so the derivation still pastes and compiles as it is
    comment = {"latex": "% {}", "md": "<!-- {} -->", "markdown": "<!-- {} -->"}.get(args.format, "{}")
    print(comment.format(_header(args, analysis)))
    print(text, end="")
    note = {"latex": "% note: {}", "md": "\n> **Note:** {}", "markdown": "\n> **Note:** {}"}.get(args.format, "note: {}")
    for m in analysis.batch_merges():
        print(note.format(m.text()))
    return OK


def cmd_verify(args) -> int:
    """Run the real model at sampled sizes and compare every step (exit 1 on any mismatch)."""
    model, shape = _model_and_input(args)
    # verify reports every disagreement itself (exit 1), so the one-forward proof is not needed first
    analysis = analyze(model, shape, prove=False, batch=_batch(args))
    report = analysis.verify(samples=args.samples, seed=args.seed, device=args.device,
                             batch=_batch_size(args) if analysis.batched else 1)
    if args.json:
        _emit(args, report.to_json(), analysis=analysis)
        return OK if report.ok else FINDING
    print(_header(args, analysis))
    print(report)
    return OK if report.ok else FINDING


def _count(least: int):
    """An argparse type: an int of at least ``least`` (argparse reports anything else, exit 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="symshape", description="Symbolic shapes for PyTorch models.")
    parser.add_argument("--version", action="version", version=f"symshape {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def model_command(name: str, help: str):
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("model", help="path/to/file.py:Name or package.module:Name (class, factory or instance)")
        p.add_argument("--input", required=True, action="append",
                       help="one sample's shape without the batch dim, e.g. 1,H,W or 3,224,224; once per input "
                            "of a model called with several (--input 3,H,W --input 1,H,W, or mask=1,H,W by keyword); "
                            "a dtype after a colon for token ids or a mask: T:int64, attention_mask=T:bool")
        p.add_argument("--kwargs", help="constructor arguments as a JSON object")
        p.add_argument("--json", action="store_true", help="print the result as one JSON object (see docs/cli.md)")
        p.add_argument("--no-batch", action="store_true",
                       help="the model is called with exactly --input (no batch dim added): an unbatched call")
        p.add_argument("--batch", type=_count(1), metavar="N",
                       help="the batch size the answer is for (default 1)")
        p.add_argument("--debug", action="store_true",
                       help="with an error, also print the traced graph node it happened at")
        p.add_argument("--train", action="store_true",
                       help="analyze the model in training mode (default: eval mode, the inference question)")
        return p

    model_command("formula", "print each Linear's in_features as a formula of the input size").set_defaults(
        func=cmd_formula
    )
    p = model_command("solve", "the input sizes that give a flat size at a Linear")
    p.add_argument("--flat", type=_count(0), required=True, help="the in_features value to reach")
    p.add_argument("--layer", help="the Linear's qualified name (default: the first one called)")
    p.add_argument("--square", action="store_true", help="require all spatial sizes to be equal")
    p.add_argument("--max", type=_count(1), metavar="N", help="also list every solution with all sizes <= N")
    p.set_defaults(func=cmd_solve)
    p = model_command("explain", "write out every layer's arithmetic (why 13.5 becomes 13)")
    p.add_argument("--format", choices=("text", "md", "markdown", "latex"), default="text",
                   help="text (default, fits 100 columns), md (tables and math) or latex (amsmath)")
    p.add_argument("--full", action="store_true",
                   help="every step and every dim (by default: the steps that change a size or round, "
                        "repeated blocks that keep every size as one line)")
    p.set_defaults(func=cmd_explain)
    p = model_command("check", "find Linear layers whose in_features does not fit, and the fix")
    p.add_argument("--fix", action="store_true",
                   help="rewrite a wrong in_features in the source file when it is a literal (prints a diff)")
    p.set_defaults(func=cmd_check)
    p = model_command("verify", "check every prediction against real torch forward passes")
    p.add_argument("--samples", type=_count(1), default=20, help="how many sizes to check (default 20)")
    p.add_argument("--seed", type=int, default=0, help="seed for the random sizes (default 0)")
    p.add_argument("--device", choices=("cpu", "meta"), default="cpu",
                   help="cpu runs the kernels; meta only torch's shape checks (faster, see docs)")
    p.set_defaults(func=cmd_verify)
    p = model_command("sizes", "the input sizes the model accepts, and those with no rounding")
    p.add_argument("--max", type=_count(1), metavar="N", help="also list every valid size with all sizes <= N")
    p.set_defaults(func=cmd_sizes)
    p = model_command("fit", "the accepted sizes nearest to an input's size, to pad or crop it to")
    p.add_argument("--size", required=True, help="the input's size: 500x375 (in the order of the size names) "
                                                  "or H=500,W=375")
    p.set_defaults(func=cmd_fit)
    p = model_command("export-spec", "torch.export's dynamic_shapes for the sizes the model accepts, as Python")
    p.add_argument("--size", help="the example's size (500x375 or H=500,W=375): the spec admits it and the example "
                                  "inputs have it (default: one where no size-dependent dim is 0 or 1)")
    p.add_argument("--no-check", action="store_true",
                   help="do not run torch.export: print the spec of the valid sizes as symshape states them")
    p.set_defaults(func=cmd_export_spec)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    if sys.stdout is None:  # started with stdout closed (`symshape ... >&-`): nobody reads the answer
        return CLOSED_OUTPUT
    try:
        args = parser.parse_args(argv)
    except KeyboardInterrupt:
        return _interrupted()
    try:
        return args.func(args)
    except (_UsageError, SymshapeError) as e:
        print(f"symshape {args.command}: error: {e}", file=sys.stderr)
        if getattr(args, "debug", False) and getattr(e, "node", None):
            print(f"symshape {args.command}: traced node: {e.node}", file=sys.stderr)
        if getattr(args, "json", False):
            kind = "UsageError" if isinstance(e, _UsageError) else type(e).__name__
            print(json.dumps({"command": args.command, "error": {"type": kind, "message": str(e)}}))
        return USAGE
    except KeyboardInterrupt:
        return _interrupted()
    except BrokenPipeError:
        return _reader_gone()
    except OSError as e:
        if e.errno not in _OUTPUT_ERRORS:
            raise
        return _unwritable(e)


#: the errors of a stdout that cannot take the output (a full disk or device, a closed descriptor)
_OUTPUT_ERRORS = (errno.ENOSPC, errno.EIO, errno.EBADF, errno.EFBIG, errno.EDQUOT)


def _unwritable(e: OSError) -> int:
    try:
        sys.stdout = open(os.devnull, "w")  # what is still buffered goes nowhere
    except OSError:
        pass
    print(f"symshape: error: cannot write the output: {e.strerror or e}", file=sys.stderr)
    return USAGE


def _interrupted() -> int:
    print("symshape: interrupted", file=sys.stderr)
    return INTERRUPTED


def _reader_gone() -> int:
    """The reader of stdout closed it (``symshape sizes ... | head -1``): stop quietly. Output
    still buffered goes nowhere (stdout points at /dev/null from here on)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return CLOSED_OUTPUT


def run() -> None:
    """The ``symshape`` command: :func:`main`, then a fast exit.

    Interpreter shutdown after importing torch and sympy takes about 0.4 s (module teardown and
    garbage collection of objects the command no longer needs), longer than symshape's own
    work. Once the command has finished and its output is flushed, nothing is left to clean up
    (files are closed as they are written), so the process ends with ``os._exit``. An
    exception still ends the normal way, with its traceback; ``SYMSHAPE_SLOW_EXIT=1`` turns the
    fast exit off (for coverage tools, which write their data at shutdown).
    """
    code = main()
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except BrokenPipeError:
        code = _reader_gone()
    except OSError as e:  # a full disk, a closed descriptor: one line, not a traceback
        code = _unwritable(e)
    if os.environ.get("SYMSHAPE_SLOW_EXIT"):
        sys.exit(code)
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
