"""Cross-check helpers: compare symshape's prediction with real torch forward passes."""

from __future__ import annotations

import itertools
import warnings

import torch

import symshape
from symshape.verify import disagreements, observe


def sample_input(analysis, sizes: dict[str, int]) -> torch.Tensor:
    shape = [sizes[str(d)] if not d.is_Integer else int(d) for d in analysis.input_shape]
    return torch.rand(1, *shape)


def check_sizes(analysis, sizes: dict[str, int]) -> tuple[bool, list[str]]:
    """Run torch at ``sizes``; returns (torch accepted it, disagreements)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        obs = observe(analysis.model, sample_input(analysis, sizes), analysis.graph)
    return obs.error is None, disagreements(analysis, sizes, obs)


def assert_agrees(model, input_shape, sizes_list) -> int:
    """Analyze once, compare at every size; returns how many sizes torch accepted."""
    analysis = symshape.analyze(model, input_shape)
    accepted = 0
    for sizes in sizes_list:
        ok, bad = check_sizes(analysis, sizes)
        assert not bad, f"{model}\ninput {input_shape} at {sizes}:\n" + "\n".join(bad)
        accepted += ok
    return accepted


def grid(names, values) -> list[dict[str, int]]:
    return [dict(zip(names, combo)) for combo in itertools.product(values, repeat=len(names))]
