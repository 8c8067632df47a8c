"""Hostile input: nothing from a model or a user is evaluated as code (issue 22).

A rule reads module attributes (kernel sizes, output sizes, scale factors ...). A string there
must never reach an evaluator (``sympy.sympify`` runs Python code); the rule refuses it with the
layer's name instead. The canary below writes to a list if it is ever evaluated.
"""

from __future__ import annotations

import builtins
import copy

import pytest
import torch
import torch.nn as nn

import symshape
from cases import CASES
from oracle import assert_agrees
from symshape.dims import as_expr, size_symbol
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


# -- arguments (issue 22 point 6) ------------------------------------------------------------------

SEED_NET = lambda: nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.LazyLinear(3))  # noqa: E731


@pytest.mark.parametrize("name", ["self", "lambda", "class", "format", "1H", "H W", "", "N"])
def test_size_names_that_would_break_later_are_refused_at_analyze(name):
    with pytest.raises(symshape.InvalidArgument, match=repr(name) if name else "identifier"):
        symshape.analyze(SEED_NET(), (1, name, 8))


@pytest.mark.parametrize("name", ["type", "int", "x", "H_1"])
def test_size_names_that_shadow_builtins_work_on_every_path(name):
    a = symshape.analyze(SEED_NET(), (1, name, 8))
    f = a.formula()
    assert f(**{name: 10}) == 4 * 8 * 6 == f(10) == a.evaluate(**{name: 10}).in_features["2"]
    assert f.grid(**{name: [10, 12]}).values.tolist() == [192, 240]


def test_the_compiled_formula_gives_the_slow_paths_errors():
    f = symshape.analyze(SEED_NET(), (1, "H", "W")).formula()
    assert f(H=10, W=10) == 256
    with pytest.raises(symshape.InvalidArgument, match="unknown size name.*Z"):
        f(H=10, W=10, Z=1)
    with pytest.raises(symshape.InvalidArgument, match="got 3 positional"):
        f(10, 10, 10)
    with pytest.raises(symshape.InvalidArgument, match="missing size.*W"):
        f(H=10)


def test_a_grid_refuses_floats_bools_and_values_past_int64():
    f = symshape.analyze(SEED_NET(), (1, "H", "W")).formula()
    for bad in ([28.7], [True], torch.tensor([28.0]), torch.tensor([True])):
        with pytest.raises(symshape.InvalidArgument, match="ints"):
            f.grid(H=bad, W=[28])
    with pytest.raises(symshape.InvalidArgument, match="int64"):
        f.grid(H=[2 ** 40], W=[2 ** 40])
    big = f.grid(H=[2 ** 20], W=[2 ** 20]).values  # 4*(2**20 - 2)**2 fits, and is exact
    assert int(big[0, 0]) == 4 * (2 ** 20 - 2) ** 2 == f(H=2 ** 20, W=2 ** 20)


def test_an_input_entry_past_int64_is_refused_even_beside_a_zero():
    """A fixed entry torch's sizes cannot hold is an InvalidArgument naming it, also where an
    entry 0 makes the sample empty (the element count alone says nothing of it)."""
    with pytest.raises(symshape.InvalidArgument, match="int64"):
        symshape.analyze(nn.Conv1d(1, 1, 1), (0, 2 ** 64))
    with pytest.raises(symshape.InvalidArgument, match="int64"):
        symshape.analyze(nn.Conv1d(1, 1, 1), (1, 2 ** 63))


def test_verify_refuses_sizes_it_cannot_run_before_allocating():
    a = symshape.analyze(SEED_NET(), (1, "H", "W"))
    with pytest.raises(symshape.InvalidArgument, match="missing size"):
        a.verify(sizes=[{"H": 28}])
    with pytest.raises(symshape.InvalidArgument, match="positive int"):
        a.verify(sizes=[{"H": -5, "W": 28}])
    with pytest.raises(symshape.InvalidArgument, match="device='meta'"):
        a.verify(sizes=[{"H": 2 ** 16, "W": 2 ** 16}])
    with pytest.raises(symshape.InvalidArgument, match="even on the meta device"):
        a.verify(sizes=[{"H": 2 ** 40, "W": 2 ** 40}], device="meta")
    assert a.verify(sizes=[{"H": 2 ** 16, "W": 2 ** 16}], device="meta").ok


@pytest.mark.parametrize("batch", [0, -1, 1.5, True, "3"])
def test_batch_arguments_are_positive_ints(batch):
    a = symshape.analyze(SEED_NET(), (1, "H", "W"))
    with pytest.raises(symshape.InvalidArgument, match="batch"):
        a.valid_sizes(batch=batch)
    with pytest.raises(symshape.InvalidArgument, match="batch"):
        a.solve(100, batch=batch)


def test_numpy_integers_are_sizes():
    np = pytest.importorskip("numpy")
    a = symshape.analyze(SEED_NET(), (np.int64(1), "H", 8))
    assert a.at(H=np.int32(10)).in_features["2"] == 192


def test_verify_leaves_the_global_rng_where_it_was():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Dropout(0.5))
    a = symshape.analyze(model, (1, "H", "W"))
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    assert a.verify(sizes=[{"H": 8, "W": 8}, {"H": 9, "W": 7}]).ok
    assert torch.equal(torch.rand(3), expected)


def test_verify_feeds_a_half_model_its_own_dtype():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 2)).to(torch.bfloat16)
    assert symshape.analyze(model, (1, "H", "W")).verify(sizes=[{"H": 8, "W": 8}, {"H": 9, "W": 8}]).ok


# -- bounded work (issue 22 point 5) ---------------------------------------------------------------

class _Forever(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Identity()

    def forward(self, x):
        while x.dim() > 0:  # the rank never changes: the loop never ends
            x = self.c(x) + 1
        return x


def test_a_loop_that_never_ends_stops_at_the_node_limit(monkeypatch):
    from symshape import trace as trace_module
    monkeypatch.setattr(trace_module, "MAX_NODES", 5_000)  # the same code path, sooner
    model = _Forever()
    before = dict(model.__dict__)
    call = nn.Module.__call__
    with pytest.raises(symshape.BoundExceeded, match="MAX_NODES = 5000"):
        symshape.analyze(model, (1, "H", "W"))
    assert model.__dict__ == before and nn.Module.__call__ is call
    assert nn.Identity()(torch.ones(2)).tolist() == [1.0, 1.0]  # plain forwards still run


def test_nesting_past_the_recursion_limit_is_a_clear_error():
    m = nn.Conv2d(1, 1, 1)
    for _ in range(1_200):
        m = nn.Sequential(m)
    with pytest.raises(symshape.BoundExceeded, match="recursion limit"):
        symshape.analyze(m, (1, "H", "W"))


def test_a_hundred_ceil_mode_pool_and_upsample_pairs_analyze():
    layers = []
    for _ in range(100):
        layers += [nn.MaxPool2d(2, ceil_mode=True), nn.Upsample(scale_factor=2)]
    model = nn.Sequential(*layers)
    assert_agrees(model, (1, "H", "W"), [{"H": h, "W": w} for h in (1, 2, 5, 8) for w in (3, 4)])


def test_solving_huge_flat_sizes_factorizes():
    """The solver factorizes a flat size of 10**18 exactly; at those sizes a conv's output holds
    about 2**60 elements, past what symshape states (2**58, torch's int64 byte count for 8-byte
    dtypes): evaluating there is a clear error, the formula itself exact."""
    a = symshape.analyze(SEED_NET(), (1, "H", "W"))
    for n in (10 ** 18, 2 ** 62):
        first = a.solve(n).min()
        assert a.in_features["2"].xreplace({size_symbol(k): v for k, v in first.items()}) == n
        with pytest.raises(symshape.BoundExceeded, match="2\\*\\*58"):
            a.evaluate(**first)


def test_valid_sizes_of_a_product_with_many_divisors_merges_quickly():
    # D*H*W == 720720 (6 distinct primes: 7,290 ordered triples); pairwise merging took a minute
    model = nn.Sequential(nn.Conv3d(1, 1, 1), nn.Flatten(), nn.Linear(720720, 2))
    a = symshape.analyze(model, (1, "D", "H", "W"))
    valid = a.valid_sizes()
    triples = {(d, h, 720720 // (d * h)) for d in sympy_divisors(720720) for h in sympy_divisors(720720 // d)}
    assert len(triples) == 7290
    assert all(valid.contains(D=d, H=h, W=w) for d, h, w in list(triples)[::97])
    assert not valid.contains(D=1, H=1, W=720719) and not valid.contains(D=7, H=7, W=7)


def sympy_divisors(n):
    import sympy
    return sympy.divisors(n)


# -- what tracing does not see (issue 22 point 4) --------------------------------------------------

import random  # noqa: E402

import torch.nn.functional as F  # noqa: E402


def _with_hook(kind: str):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(7))
    if kind == "forward":
        model[0].register_forward_hook(lambda m, i, o: F.max_pool2d(o, 2))
    elif kind == "pre":
        model[0].register_forward_pre_hook(lambda m, i: (i[0][..., ::2, :],))
    elif kind == "kwargs":
        model[0].register_forward_hook(lambda m, args, kwargs, o: o[..., 1:], with_kwargs=True)
    elif kind == "inner_sequential":
        model = nn.Sequential(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), nn.Flatten(), nn.LazyLinear(7))
        model[0].register_forward_hook(lambda m, i, o: o[:, :, ::3])
    return model


@pytest.mark.parametrize("kind", ["forward", "pre", "kwargs", "inner_sequential"])
def test_hooks_on_submodules_are_followed(kind):
    # the reproducer: a hook that pools the conv's output; torch feeds 196 at 16x16, not 784
    accepted = assert_agrees(_with_hook(kind), (3, "H", "W"), [{"H": h, "W": w} for h in (3, 4, 7, 16) for w in (3, 5, 16)])
    assert accepted > 0
    if kind == "forward":
        assert symshape.analyze(_with_hook(kind), (3, "H", "W")).at(H=16, W=16).in_features["2"] == 196


class _OwnCall(nn.Conv2d):
    def __call__(self, x):
        return super().__call__(x)[..., 1:]


def test_a_module_that_overrides_call_is_followed_and_a_hooked_model_is_refused_by_name():
    assert_agrees(nn.Sequential(_OwnCall(3, 4, 3), nn.Flatten()), (3, "H", "W"),
                  [{"H": h, "W": w} for h in (3, 5) for w in (3, 4, 9)])
    root = nn.Sequential(nn.Conv2d(3, 4, 3))
    root.register_forward_hook(lambda m, i, o: o[..., 1:])
    with pytest.raises(symshape.UntraceableModel, match="(?s)forward hooks .* nn.Sequential\\(model\\)"):
        symshape.analyze(root, (3, "H", "W"))
    assert_agrees(nn.Sequential(root), (3, "H", "W"), [{"H": 3, "W": w} for w in (3, 4, 9)])


def test_global_module_hooks_are_refused_by_name():
    handle = torch.nn.modules.module.register_module_forward_hook(lambda m, i, o: o)
    try:
        with pytest.raises(symshape.UntraceableModel, match="global_forward_hooks"):
            symshape.analyze(nn.Conv2d(3, 4, 3), (3, "H", "W"))
    finally:
        handle.remove()
    assert symshape.analyze(nn.Conv2d(3, 4, 3), (3, "H", "W")).output_shape == symshape.analyze(
        nn.Conv2d(3, 4, 3), (3, "H", "W")).output_shape


class _DrawsInPython(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        if self.training and random.random() < 0.5:
            x = x[..., 1:]
        return self.conv(x)


def test_a_branch_on_pythons_random_is_refused_and_eval_mode_skips_it():
    model = _DrawsInPython()
    state = random.getstate()
    with pytest.raises(symshape.UntraceableModel, match="random.random"):
        symshape.analyze(model.train(), (3, "H", "W"))
    assert random.getstate() == state and not hasattr(random.random, "__wrapped_draw__")
    assert symshape.analyze(model.eval(), (3, "H", "W")).output_shape[-1] == symshape.analyze(
        nn.Conv2d(3, 3, 1), (3, "H", "W")).output_shape[-1]
