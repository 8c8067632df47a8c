"""Hostile input: nothing from a model or a user is evaluated as code (issue 22).

A rule reads module attributes (kernel sizes, output sizes, scale factors ...). A string there
must never reach an evaluator (``sympy.sympify`` runs Python code); the rule refuses it with the
layer's name instead. The canary below writes to a list if it is ever evaluated.
"""

from __future__ import annotations

import builtins
import copy

import pytest
import torch.nn as nn

import symshape
from cases import CASES
from oracle import assert_agrees
from symshape.dims import as_expr
from symshape.errors import NotASize
from symshape.rules import rule_for_module

CANARY: list = []
builtins._symshape_canary = CANARY  # reachable from an evaluated string, never otherwise
PAYLOAD = "_symshape_canary.append(1) or 3"


def _read_by_rules(model: nn.Module, input_shape) -> list[tuple[str, str]]:
    """(submodule path, attribute) for every plain configuration value that analysis reads:
    each submodule's class is swapped, for one analysis of this throwaway model, for a
    subclass that records attribute reads."""
    reads: set[tuple[str, str]] = set()
    for path, m in model.named_modules():
        if rule_for_module(m) is None:
            continue  # a forward's own attributes are read by Python, not by a rule
        cls = type(m)

        def getattribute(self, name, _cls=cls, _path=path):
            value = _cls.__getattribute__(self, name)
            if not name.startswith("_") and name != "training" and (
                    value is None or isinstance(value, (bool, int, float, str, tuple, list))):
                reads.add((_path, name))
            return value

        m.__class__ = type(cls.__name__, (cls,), {"__getattribute__": getattribute,
                                                   "__module__": cls.__module__})
    try:
        symshape.analyze(model, input_shape)
    except symshape.SymshapeError:
        pass
    return sorted(reads)


def _slots_of_cases():
    out = []
    for case in CASES:
        for path, name in _read_by_rules(case.make(), case.input_shape):
            out.append(pytest.param(case, path, name, id=f"{case.id}-{path or 'model'}.{name}"))
    return out


SLOTS = _slots_of_cases()


@pytest.mark.parametrize("case,path,attr", SLOTS)
def test_a_string_in_a_module_attribute_is_never_evaluated(case, path, attr):
    model = case.make()
    module = model.get_submodule(path)
    old = getattr(module, attr)
    # a string where the value was, and inside a tuple where the value was one
    bad = tuple(PAYLOAD for _ in old) if isinstance(old, tuple) and old else PAYLOAD
    setattr(module, attr, bad)
    before = len(CANARY)
    try:
        analysis = symshape.analyze(model, case.input_shape)
    except symshape.SymshapeError as e:
        analysis = None
        assert str(e)
    except Exception as e:  # noqa: BLE001 - any other exception is a crash, reported as such
        pytest.fail(f"setting {type(module).__name__}.{attr} to a string crashed: {type(e).__name__}: {e}")
    assert len(CANARY) == before, f"{type(module).__name__}.{attr}: a string from the model was evaluated"
    if analysis is not None:
        # accepted: then torch must agree at every size of the case (an attribute the rule never
        # reads, or a string torch itself takes)
        assert_agrees(model, case.input_shape, case.sizes[:6])
    assert len(CANARY) == before


def test_upsample_size_string_is_refused_naming_the_layer(capfd):
    model = nn.Sequential(nn.Conv2d(3, 3, 1), nn.Upsample(size="__import__('os').system('echo PWNED')"))
    with pytest.raises(symshape.UnsupportedArgument, match=r"nn\.Upsample.*'1'.*size must be an int"):
        symshape.analyze(model, (3, "H", "W"))
    assert "PWNED" not in capfd.readouterr().out


def test_cli_kwargs_string_is_never_evaluated(capfd):
    from symshape.cli import main

    code = main(["formula", "torch.nn:Upsample", "--input", "3,H,W",
                 "--kwargs", '{"size": "_symshape_canary.append(1) or 8"}'])
    assert code == 2
    assert not CANARY
    assert "size must be an int" in capfd.readouterr().err


@pytest.mark.parametrize("value", ["H", "3", "1 + 2", 1.5, object(), [1], None, b"3"])
def test_as_expr_converts_integers_only(value):
    with pytest.raises(NotASize):
        as_expr(value)


def test_as_expr_takes_any_integral_and_sympy_expressions():
    import sympy

    H = sympy.Symbol("H")
    assert as_expr(3) == 3 and as_expr(True) == 1 and as_expr(H + 1) == H + 1
    try:
        import numpy as np
    except ImportError:
        return
    assert as_expr(np.int64(7)) == 7


def test_no_evaluator_in_the_package():
    """Every sympify/parse_expr/eval/exec in the package is audited: the only exec compiles
    symshape's own generated code (symshape/compiled.py), whose names are its own."""
    import pathlib
    import re

    root = pathlib.Path(symshape.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            if re.search(r"(?<![.\w])(sympify|parse_expr|eval|exec|S)\s*\(|sympy\.(sympify|parse_expr|S)\(", code) and "def " not in code:
                found.append(f"{path.relative_to(root)}: {line.strip()}")
    assert found == ['compiled.py: exec(compile(src, "<symshape-compiled>", "exec"), namespace)  '
                     '# noqa: S102 - our own code'], found
