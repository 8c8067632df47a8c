"""Checks every side of a branch makes, and checks a side's conditions settle, against torch.

NaFlexViT patchifies on both sides of a branch on which side of its patch grid is longer, and
resizes its position table to the grid's longer side, then cuts it to the shorter: each side's
checks are chains ``check unless (the side's condition fails)``, and the conditions
(``floor(H/p) >= floor(W/p)``) are no union of boxes. The solver reads a check every side makes
as holding everywhere, and a ``Min`` of the grid's sides as the one the side's condition names
(symshape.chains). hypothesis draws such models; ``valid_sizes()`` is compared with a scan of
real forwards.
"""

import pytest
import sympy
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import symshape
from oracle import members, scan
from symshape.chains import links, settled_extrema, settled_tails
from symshape.dims import floor_div, size_symbol
from symshape.requirements import Requirement

UPTO = 40


class GridSides(nn.Module):
    """Patches of ``p x p`` (a view: H and W multiples of ``p``), on both sides of a branch on
    ``gh >= gw``; a position table of ``pin x pin`` resized to the longer side where it is not
    ``pin`` long, cut to the shorter, and added."""

    def __init__(self, p: int, pin: int, cut: bool):
        super().__init__()
        self.p, self.pin, self.cut = p, pin, cut
        self.pos = nn.Parameter(torch.zeros(1, 1, pin, pin))

    def _table(self, side: int):
        return self.pos if side == self.pin else F.interpolate(self.pos, size=(side, side))

    def forward(self, x):
        n, c, h, w = x.shape
        gh, gw = h // self.p, w // self.p
        if gh >= gw:
            grid = x.view(n, c, gh, self.p, gw, self.p).mean((3, 5))
            pos = self._table(gh)[:, :, :, :gw] if self.cut else self._table(gh)
        else:
            grid = x.view(n, c, gh, self.p, gw, self.p).amax((3, 5))
            pos = self._table(gw)[:, :, :gh, :] if self.cut else self._table(gw)
        return grid + pos if self.cut else grid.sum() + pos.sum()


@settings(max_examples=10, deadline=None)
@given(st.integers(2, 5), st.integers(1, 6), st.booleans())
def test_checks_on_both_sides_of_a_grids_branch_agree_with_torch(p, pin, cut):
    model = GridSides(p, pin, cut)
    valid = symshape.analyze(model, (1, "H", "W")).valid_sizes()
    runs = scan(model, (1, "H", "W"), ("H", "W"), UPTO)
    assert members(valid, ("H", "W"), UPTO) == runs and runs


def test_naflexvits_grid_runs_at_multiples_of_the_patch():
    valid = symshape.analyze(GridSides(4, 3, True), (1, "H", "W")).valid_sizes()
    assert str(valid) == "H ≥ 4, H ≡ 0 (mod 4) and W ≥ 4, W ≡ 0 (mod 4)"


H, W = size_symbol("H"), size_symbol("W")
gh, gw = floor_div(H, 4), floor_div(W, 4)


def _chain(*triples):
    req = None
    for lhs, relation, rhs in reversed(triples):
        req = Requirement(lhs, relation, rhs, "r", unless=req)
    return req


def test_a_check_every_side_makes_is_read_as_one():
    check = (3 * H * W, "==", 48 * gh * gw)
    sides = [("a", _chain((gw, ">=", gh + 1), check)), ("b", _chain((gh, ">=", gw), check))]
    assert settled_tails(sides) == [("a", links(sides[0][1])[-1])]
    # the shared link anywhere in the chains (a check first, the side's condition after it)
    first = [("a", _chain(check, (gw, ">=", gh + 1))), ("b", _chain(check, (gh, ">=", gw)))]
    assert settled_tails(first) == [("a", links(first[0][1])[0])]
    # one side only, or sides that may both be skipped (gh == 2 and gw >= gh + 1), stay chains
    assert settled_tails(sides[:1]) == sides[:1]
    skipped = [sides[0], ("c", _chain((gh, "==", 2), check))]
    assert settled_tails(skipped) == skipped
    # a link that is neither ==, != nor >= is a proposition of its own: nothing follows
    opaque = [("a", _chain((gh, "divisible", 2), check)), ("b", _chain((gh + 1, "divisible", 2), check))]
    assert settled_tails(opaque) == opaque


def test_a_min_of_the_grids_sides_is_the_one_a_fact_names():
    req = Requirement(gh * sympy.Max(0, sympy.Min(gh, gw)), "!=", gh * gw, "r")
    assert settled_extrema(req, [sympy.expand(gh - gw)]).lhs == gh * gw  # gh >= gw: Min is gw
    assert settled_extrema(req, [sympy.expand(gw - gh - 1)]).lhs == gh ** 2  # gw > gh: Min is gh
    assert settled_extrema(req, []) == req  # nothing known: unchanged
    assert settled_extrema(req, [sympy.expand(gh - gw - 1)]).lhs == gh * gw  # a stronger fact


@pytest.mark.parametrize("cut,off", [(False, "settled_tails"), (True, "settled_tails"), (True, "settled_extrema")])
def test_without_the_side_reading_the_grid_is_refused_not_guessed(cut, off, monkeypatch):
    """Each reading is what answers: with it turned off the solver names the condition (the
    table cut to the grid's shorter side needs both)."""
    import symshape.solve as S

    monkeypatch.setattr(S, off, (lambda reqs: list(reqs)) if off == "settled_tails" else (lambda req, facts: req))
    with pytest.raises(S.Unsolvable):
        symshape.analyze(GridSides(4, 3, cut), (1, "H", "W")).valid_sizes()
