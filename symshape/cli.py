"""The ``symshape`` command: parse, call the public API, print, set the exit code.

Exit codes: 0 success, 1 a finding (a Linear whose in_features does not fit), 2 a usage error
(bad model spec, malformed --input, a size torch refuses, a model symshape cannot analyze).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from . import __version__
from .analysis import analyze
from .errors import InvalidInputSize, SymshapeError
from .load import load_model, parse_input
from .render import text_table

OK, FINDING, USAGE = 0, 1, 2


class _UsageError(Exception):
    pass


def _declared(analysis, name: str) -> str:
    step = next((s for s in analysis.steps if s.name == name and s.module is not None), None)
    if step is None:
        return "?"
    m = step.module
    if getattr(m, "has_uninitialized_params", lambda: False)():
        return "lazy"
    return str(getattr(m, "in_features", "?"))


def _model_and_input(args):
    try:
        shape = parse_input(args.input)
    except ValueError as e:
        raise _UsageError(str(e)) from e
    kwargs = None
    if args.kwargs:
        try:
            kwargs = json.loads(args.kwargs)
        except json.JSONDecodeError as e:
            raise _UsageError(f"--kwargs is not valid JSON: {e}") from e
        if not isinstance(kwargs, dict):
            raise _UsageError("--kwargs must be a JSON object, e.g. '{\"in_features\": 320}'")
    return load_model(args.model, kwargs), shape


def cmd_formula(args) -> int:
    """Each Linear's in_features: the formula, or its value when --input is all numbers."""
    model, shape = _model_and_input(args)
    analysis = analyze(model, shape)
    if not analysis.in_features:
        print("the forward calls no nn.Linear; output shape:", analysis.output_shape)
        return OK
    if analysis.size_names:
        rows = [(k, str(v), _declared(analysis, k)) for k, v in analysis.in_features.items()]
        print(text_table(("layer", "in_features", "declared"), rows))
        return OK
    ev = analysis.evaluate()
    if ev.failure is not None:
        raise InvalidInputSize(ev.failure.step, ev.failure.reason)
    wrong = {f.step: f.reason for f in ev.mismatches}
    rows = []
    for k, v in ev.in_features.items():
        declared = _declared(analysis, k)
        note = "" if declared in (str(v), "lazy") else "  <- does not fit"
        rows.append((k, str(v), declared + note))
    print(text_table(("layer", "in_features", "declared"), rows))
    for step, reason in wrong.items():
        print(f"{step}: {reason}")
    return FINDING if wrong else OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="symshape", description="Symbolic shapes for PyTorch models.")
    parser.add_argument("--version", action="version", version=f"symshape {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def model_command(name: str, help: str):
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("model", help="path/to/file.py:Name or package.module:Name (class, factory or instance)")
        p.add_argument("--input", required=True, help="one sample's shape without the batch dim, e.g. 1,H,W or 3,224,224")
        p.add_argument("--kwargs", help="constructor arguments as a JSON object")
        return p

    model_command("formula", "print each Linear's in_features as a formula of the input size").set_defaults(
        func=cmd_formula
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (_UsageError, SymshapeError) as e:
        print(f"symshape {args.command}: error: {e}", file=sys.stderr)
        return USAGE


if __name__ == "__main__":
    sys.exit(main())
