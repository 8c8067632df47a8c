"""Dtypes against torch: the result of an elementwise op, a reduction, torch.cat is torch's type
promotion of its operands' (``arange(n) / 2`` is float32, ``mask.sum()`` int64), and what
torch refuses of the dtypes alone (``long += 0.5``, ``mask - mask``) it refuses at every size.

symshape gave every op the first operand's dtype: it refused ``-(mask.sum())`` as "negation of a
bool tensor" at every size where torch runs it, said a model with ``long += 0.5`` runs wherever
its proof could not see otherwise, and took the cat of two index tensors for an untracked float.
symshape.dtypes asks torch itself, on witnesses of the same dtypes (see its docstring).
"""

from __future__ import annotations

import operator

import pytest
import sympy
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import symshape
from oracle import assert_agrees, grid
from symshape import dtypes
from symshape.tensor import SymTensor

_DTYPES = [torch.bool, torch.uint8, torch.int32, torch.int64, torch.float16, torch.float32, torch.float64,
           torch.complex64]
_BINARY = [operator.add, operator.sub, operator.mul, operator.truediv, operator.floordiv, operator.mod,
           operator.pow, operator.and_, operator.or_, operator.xor, torch.maximum, torch.minimum, "add", "sub",
           "mul", "div", "pow", "add_", "sub_", "mul_", "div_", "floor_divide_", "remainder_", "pow_",
           "bitwise_and_", "bitwise_or_", "bitwise_xor_"]
L = sympy.Symbol("L", integer=True, positive=True)
_NUMBERS = st.sampled_from([True, 2, -1, 0.5, 1j])


def _operand(dtype, ndim, empty=False):
    """A real operand for torch: entries 1..3 (no division by zero), every dim 2 (or 0)."""
    shape = ((0,) if empty else (2,)) * ndim
    if dtype == torch.bool:
        return torch.ones(shape, dtype=dtype)
    return torch.randint(1, 4, shape).to(dtype)


def _call(op, args):
    if isinstance(op, str):
        return getattr(args[0], op)(*args[1:])
    return op(*args)


@st.composite
def _binary_call(draw):
    op = draw(st.sampled_from(_BINARY))
    a = (draw(st.sampled_from(_DTYPES)), draw(st.integers(0, 3)))
    if draw(st.booleans()) or isinstance(op, str) and op.endswith("_") or op in (torch.maximum, torch.minimum):
        b = (draw(st.sampled_from(_DTYPES)), draw(st.integers(0, a[1] if isinstance(op, str) else 3)))
    else:
        b = draw(_NUMBERS)
    return op, a, b


def _symbolic(spec):
    return SymTensor((L,) * spec[1], dtype=spec[0]) if isinstance(spec, tuple) else spec


def _real(spec, empty=False):
    return _operand(*spec, empty=empty) if isinstance(spec, tuple) else spec


@settings(max_examples=400, deadline=None)
@given(_binary_call())
def test_binary_ops_dtype_and_refusal_are_torchs(call):
    """For an elementwise op of tensors of any dtypes and dims (0-dim ones rank below tensors
    with dims, Python numbers below both) or numbers: symshape's dtype is torch's result's where
    torch runs, and it claims a refusal exactly where torch refuses at every size -- with
    operands of two entries per dim and with empty ones."""
    op, a, b = call
    symbolic = [_symbolic(a), _symbolic(b)]
    refused = dtypes.refusal(op, symbolic, {})
    outcomes = []
    for empty in (False, True):
        try:
            out = _call(op, [_real(a, empty), _real(b, empty)])
        except (RuntimeError, TypeError, ValueError, NotImplementedError) as e:
            outcomes.append(str(e).split("\n")[0])
        else:
            outcomes.append(None)
            promoted = dtypes.result_dtype(op, symbolic, {})
            assert promoted is not dtypes.NOT_PROBED
            assert promoted == out.dtype, (op, a, b, promoted, out.dtype)
    if refused is not None:
        assert outcomes == [refused, refused], (op, a, b, refused, outcomes)
    else:
        assert outcomes == [None, None], (op, a, b, outcomes)


@pytest.mark.parametrize("dtype", [torch.bool, torch.uint8, torch.int32, torch.int64, torch.float16, torch.float64])
@pytest.mark.parametrize("op", ["sum", "prod", "amax", "argmax", "any", "nansum", "cumsum"])
def test_reductions_dtype_is_torchs(dtype, op):
    """``mask.sum()`` and ``x.prod()`` of an integer or bool tensor are int64, ``argmax`` int64,
    ``any`` bool, ``amax`` the input's (cumsum's rule sets its own: the same)."""
    x = _operand(dtype, 2)
    try:
        expected = getattr(x, op)(-1).dtype
    except (RuntimeError, NotImplementedError):
        pytest.skip(f"torch has no {op} of {dtype}")
    assert dtypes.result_dtype(op, [SymTensor((L, L), dtype=dtype), -1], {}) == expected


def test_an_untracked_float_stays_untracked_and_a_wider_one_is_kept():
    """The input's dtype (None: a float the caller chooses) stands as float32: ``x * 2`` and
    ``x + arange(n)`` are the input's, ``x + float64`` is float64."""
    x = SymTensor((L,))
    idx = SymTensor((L,), dtype=torch.int64)
    assert dtypes.result_dtype(operator.mul, [x, 2], {}) is None
    assert dtypes.result_dtype(operator.add, [x, idx], {}) is None
    assert dtypes.result_dtype(operator.add, [x, SymTensor((L,), dtype=torch.float64)], {}) == torch.float64
    # a refusal of it only where torch refuses every float width
    assert dtypes.refusal(operator.and_, [x, x], {}) == '"bitwise_and_cpu" not implemented for \'Float\''
    assert dtypes.refusal(operator.add, [x, 1j], {}) is None


def test_an_argument_without_a_witness_is_not_probed():
    """A tuple of tensors whose number depends on the size has no witness."""
    assert dtypes.result_dtype(torch.cat, [object()], {}) is dtypes.NOT_PROBED
    assert dtypes.refusal(torch.cat, [object()], {}) is None


def test_probing_leaves_torchs_rng_alone():
    """Witnesses are made of ones, never drawn: torch's random state is the user's."""
    state = torch.get_rng_state()
    dtypes.result_dtype(operator.truediv, [SymTensor((L,), dtype=torch.int16), 3], {})
    dtypes.refusal("add_", [SymTensor((L,), dtype=torch.int16), 0.25], {})
    assert torch.equal(state, torch.get_rng_state())


# -- through analyze(): a chain of dtype-changing ops, then an op whose check is a dtype's

_STARTS = ["input", "mask", "arange", "int32", "double"]
_STEPS = ["truediv2", "floordiv2", "mul_half", "add_true", "add_one", "sum_keep", "cat_self", "cmp", "float", "long",
          "mul_arange", "add_double0d", "where", "sqrt", "type_as_arange", "stack_sum"]
_CONSUMERS = ["neg", "iadd_half", "imul_two", "sub_self", "and_self", "fill_inf", "sqrt", "none"]


class Chain(nn.Module):
    """``t`` made from the input ``x`` of shape (1, L), passed through ``steps``, then through a
    ``consumer`` whose check is a dtype's (torch refuses ``-mask``, ``long += 0.5``, ``mask -
    mask``, ``float & float``, ``-inf`` in an integer tensor)."""

    def __init__(self, start, steps, consumer):
        super().__init__()
        self.start, self.steps, self.consumer = start, steps, consumer

    def _start(self, x):
        n = x.shape[-1]
        return {"input": lambda: x[0], "mask": lambda: x[0] > 0.5, "arange": lambda: torch.arange(n),
                "int32": lambda: torch.ones(n, dtype=torch.int32), "double": lambda: x[0].double()}[self.start]()

    def _step(self, s, t, x):
        n = x.shape[-1]
        return {
            "truediv2": lambda: t / 2, "floordiv2": lambda: t // 2, "mul_half": lambda: t * 0.5,
            "add_true": lambda: t + True, "add_one": lambda: t + 1, "sum_keep": lambda: t.sum(-1, keepdim=True) + t,
            "cat_self": lambda: torch.cat([t, t], -1)[:n], "cmp": lambda: t > 1, "float": lambda: t.float(),
            "long": lambda: t.long(), "mul_arange": lambda: t * torch.arange(n),
            "add_double0d": lambda: t + torch.ones((), dtype=torch.float64), "where": lambda: torch.where(t > 1, t, t),
            "sqrt": lambda: torch.sqrt(t), "type_as_arange": lambda: t.type_as(torch.arange(n)),
            "stack_sum": lambda: torch.stack([t, t]).sum(0),
        }[s]()

    def forward(self, x):
        t = self._start(x)
        for s in self.steps:
            t = self._step(s, t, x)
        c = self.consumer
        if c == "neg":
            t = -t
        elif c in ("iadd_half", "imul_two"):
            t = t.clone()
            if c == "iadd_half":
                t += 0.5
            else:
                t *= 2
        elif c == "sub_self":
            t = t - t
        elif c == "and_self":
            t = t & t
        elif c == "fill_inf":
            t = t.masked_fill(t != t, float("-inf"))
        elif c == "sqrt":
            t = torch.sqrt(t)
        return t.reshape(1, -1)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(_STARTS), st.lists(st.sampled_from(_STEPS), max_size=3), st.sampled_from(_CONSUMERS))
def test_dtype_chains_agree_with_torch(start, steps, consumer):
    """Wherever torch runs the chain symshape answers (no refusal of a dtype torch does not
    make), and where torch refuses a dtype it refuses at every size, naming torch's reason."""
    assert_agrees(Chain(start, steps, consumer), ("L",), grid(["L"], range(1, 7)))


@pytest.mark.parametrize("steps, consumer, runs", [
    (["sum_keep"], "neg", True),                        # -(mask.sum()): int64, not bool
    (["cat_self"], "and_self", True),                  # cat of two bool masks is bool
    ([], "iadd_half", False),                          # mask += 0.5: Float can't be cast to Bool
    (["truediv2"], "fill_inf", True),                  # a mask / 2 is float32
    (["add_one"], "fill_inf", False),                  # mask + 1 is int64: -inf does not fit
    ([], "sub_self", False),                           # mask - mask
])
def test_examples_torch_runs_or_refuses_at_every_size(steps, consumer, runs):
    model = Chain("mask", steps, consumer)
    if runs:
        assert assert_agrees(model, ("L",), grid(["L"], range(1, 7))) == 6
        symshape.analyze(model, ("L",))
    else:
        with pytest.raises(symshape.InvalidInputSize, match="whatever L is"):
            symshape.analyze(model, ("L",))
        assert assert_agrees(model, ("L",), grid(["L"], range(1, 7))) == 0


def test_a_float_index_is_torchs_refusal_at_every_size():
    """``x[..., arange(L) / 2]``: a float32 index, which torch refuses whatever the size."""

    class FloatIndex(nn.Module):
        def forward(self, x):
            return x[..., torch.arange(x.shape[-1]) / 2]

    with pytest.raises(symshape.InvalidInputSize, match="tensors used as indices must be long"):
        symshape.analyze(FloatIndex(), (3, "L"))
    assert assert_agrees(FloatIndex(), (3, "L"), grid(["L"], range(1, 5))) == 0


def test_one_hot_of_a_mask_count_is_int64():
    """``F.one_hot(mask.sum(-1), n)``: the count is int64, which one_hot takes (it was refused
    as a bool tensor)."""

    class Counts(nn.Module):
        def forward(self, x):
            return F.one_hot((x > 2).sum(-1), 5).flatten(1)[:, :5] + x[:, 0, :5]

    symshape.analyze(Counts(), (3, "L"))
    assert assert_agrees(Counts(), (3, "L"), grid(["L"], range(5, 9))) == 4


def test_an_error_that_is_not_torchs_refusal_is_no_refusal():
    """A witness that trips another error (a dim out of range for its number of dims) claims
    no refusal and raises nothing: the caller's rule decides."""
    x = SymTensor((L,), dtype=torch.int64)
    assert dtypes.refusal("sum", [x, 2], {}) is None
    assert dtypes.result_dtype("sum", [x, 2], {}) is dtypes.NOT_PROBED


class _Embedded(nn.Module):
    """Token ids through ``F.embedding`` (float32, as its weight), then an op whose dtype check
    torch's CPU kernel makes and its meta kernel does not (``bitwise_and``), or IBert's numpy
    names (``x.mean(axis=2, keepdims=True)``, ``torch.sum(x, axis=1)``)."""

    def __init__(self, then: str):
        super().__init__()
        self.then, self.weight = then, nn.Parameter(torch.randn(10, 6))

    def forward(self, ids):
        x = F.embedding(ids, self.weight)
        if self.then == "bitwise":
            return x.bitwise_and(1)
        return torch.sum(x - x.mean(axis=2, keepdims=True), axis=1)


def test_an_embedding_has_its_weights_dtype():
    """``F.embedding``'s result is its weight's dtype, not its indices' (it was taken as int64,
    so a float's ``bitwise_and`` was answered as running, and IBert's ``x.mean(axis=2)``, on the
    meta kernel, as refused at every size)."""
    ids = symshape.Input(("T",), torch.long)
    with pytest.raises(symshape.InvalidInputSize, match="not implemented for 'Float'"):
        symshape.analyze(_Embedded("bitwise"), ids)
    with pytest.raises(NotImplementedError):
        _Embedded("bitwise")(torch.zeros(1, 3, dtype=torch.long))
    analysis = symshape.analyze(_Embedded("mean"), ids)
    report = analysis.verify(sizes=[{"T": t} for t in (1, 4, 9)], device="cpu")
    assert report.ok and sum(1 for r in report.results if r[1]) == 3
    # numpy's names are torch's for its native reductions: the hand rule reads them (it refused
    # them, and torch's meta kernel answered instead)
    assert {s.rule for s in analysis.steps if s.op in ("Tensor.mean", "torch.sum")} == {"reduction"}


@pytest.mark.parametrize("op", ["bitwise_and", "bitwise_left_shift", "bitwise_not", "gcd"])
def test_a_dtype_only_the_cpu_kernel_refuses_is_refused_at_every_size(op):
    """Ops torch tags pointwise that symshape runs on torch's meta kernels: where the CPU kernel
    refuses the operands' dtypes (integer ops on floats) and the meta kernel does not, symshape
    refuses every size, as the CPU does; for integers it runs."""

    class Op(nn.Module):
        def forward(self, x):
            return getattr(torch, op)(x) if op == "bitwise_not" else getattr(torch, op)(x, x)

    with pytest.raises(symshape.InvalidInputSize, match="not implemented for 'Float'"):
        symshape.analyze(Op(), ("L",))
    assert assert_agrees(Op(), ("L",), grid(["L"], range(1, 4))) == 0
    ints = symshape.Input(("L",), torch.long)
    symshape.analyze(Op(), ints)
    for n in (1, 3):
        Op()(torch.ones(1, n, dtype=torch.long))


class PythonTypes(nn.Module):
    """Python's ``int``, ``float``, ``bool`` given as a dtype (transformers' ``torch.zeros(batch,
    dtype=int)``): torch reads them as int64, float64, bool."""

    def __init__(self, kind=int):
        super().__init__()
        self.kind, self.floats = kind, kind is float  # (``kind is float`` in forward: symshape's
        # stand-in for the name float, docs/how-it-works.md)

    def forward(self, x):  # x: (N, T, 4)
        counts = torch.zeros(x.shape[1], device=x.device, dtype=self.kind) + x[0, :, 0].to(self.kind)
        return counts if self.floats else torch.nn.functional.one_hot(counts.long().clamp(0, 3), 4)


@pytest.mark.parametrize("kind", [int, float, bool])
def test_python_types_as_dtypes_are_torchs(kind):
    assert assert_agrees(PythonTypes(kind), ("T", 4), [{"T": t} for t in (1, 3)]) == 2
    # traced op by op (torch.fx keeps no Python type in a graph: the model was run whole before)
    assert "torch.zeros" in [s.op for s in symshape.analyze(PythonTypes(kind), ("T", 4)).steps]
