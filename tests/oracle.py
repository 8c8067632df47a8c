"""Cross-check helpers: compare symshape's prediction with real torch forward passes."""

from __future__ import annotations

import itertools
import warnings

import torch

import symshape
from symshape.verify import compare, observe


def sample_input(analysis, sizes: dict[str, int]):
    """The call's inputs at ``sizes`` as ``(args, kwargs)`` (batch 1 unless ``sizes`` gives N):
    random floats, or random token ids 0 and 1 (a mask's False and True) where an input was
    given a dtype (symshape.Input)."""
    args, kwargs = analysis.concrete_inputs(sizes)
    given = analysis.inputs.dtypes
    return (tuple(_random(s, given.get(i)) for i, s in enumerate(args)),
            {k: _random(s, given.get(k)) for k, s in kwargs.items()})


def _random(shape, dtype=None):
    return torch.rand(*shape) if dtype is None else torch.randint(0, 2, tuple(shape)).to(dtype)


BACKEND_DEPENDENT = {"count": 0}


def check_sizes(analysis, sizes: dict[str, int]) -> tuple[bool, list[str]]:
    """Run torch at ``sizes``; returns (torch accepted it, disagreements)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        obs = observe(analysis.model, sample_input(analysis, sizes), analysis.graph)
    comparison = compare(analysis, sizes, obs)
    bad = [str(m) for m in comparison.mismatches]
    BACKEND_DEPENDENT["count"] += bool(comparison.skipped)
    return obs.error is None, bad


def assert_agrees(model, input_shape, sizes_list) -> int:
    """Analyze once, compare at every size; returns how many sizes torch accepted.

    When the analysis itself refuses (a check that fails whatever the sizes are), torch must
    refuse every size too.
    """
    try:
        analysis = symshape.analyze(model, input_shape)
    except symshape.InvalidInputSize as e:
        ran = [s for s in sizes_list if torch_runs(model, input_shape, s)]
        assert not ran, f"{model}\ninput {input_shape}: symshape refuses every size ({e}), torch runs at {ran}"
        return 0
    accepted = 0
    for sizes in sizes_list:
        ok, bad = check_sizes(analysis, sizes)
        assert not bad, f"{model}\ninput {input_shape} at {sizes}:\n" + "\n".join(bad)
        accepted += ok
    return accepted


def grid(names, values) -> list[dict[str, int]]:
    return [dict(zip(names, combo)) for combo in itertools.product(values, repeat=len(names))]


def torch_runs(model, input_shape, sizes: dict[str, int]) -> bool:
    """Does the real forward run at these sizes (batch 1)? Lazy models run on a fresh copy."""
    from symshape.modules import has_lazy
    from symshape.modules import copy_model as _copy

    m = _copy(model) if has_lazy(model) else model
    dtype = getattr(input_shape, "dtype", None)  # (symshape.Input: token ids)
    x = _random((1, *(sizes[d] if isinstance(d, str) else d for d in getattr(input_shape, "shape", input_shape))), dtype)
    saved = {n: b.detach().clone() for n, b in m.named_buffers()} if m is model else {}
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            m(x)
        return True
    except Exception:
        return False
    finally:
        with torch.no_grad():
            for n, b in m.named_buffers():
                if n in saved:
                    b.copy_(saved[n])


def scan(model, input_shape, names, upto: int) -> set[tuple[int, ...]]:
    """Brute force, the test oracle: every size combination in 1..upto that torch runs."""
    found = set()
    for combo in itertools.product(range(1, upto + 1), repeat=len(names)):
        if torch_runs(model, input_shape, dict(zip(names, combo))):
            found.add(combo)
    return found


def members(sizeset, names, upto: int) -> set[tuple[int, ...]]:
    return {tuple(r[n] for n in names) for r in sizeset.enumerate(upto)}
