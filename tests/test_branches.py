"""Python that branches on sizes: each side traced under its condition, checked against torch.

A module whose forward asks ``if h % 32:``, ``assert``, ``min(h, w)`` or loops while a size is
large is traced once per side of its branches (symshape.trace.Path); the sides merge into one step
whose shape is defined by cases, and a side on which the model raises becomes a requirement that
carries the model's own message. Every answer below is compared with real forward passes, on
grids that include the sizes torch refuses, and ``valid_sizes()`` with a brute-force scan.
"""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import symshape
from oracle import assert_agrees, grid, members, scan


class DivisibleBy32(nn.Module):
    """The segmentation libraries' input guard."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, stride=2, padding=1)

    def forward(self, x):
        h, w = x.shape[-2:]
        if h % 32 != 0 or w % 32 != 0:
            raise RuntimeError(f"input size must be divisible by 32, got {h}x{w}")
        return self.conv(x)


class PadOddToEven(nn.Module):
    def forward(self, x):
        if x.size(-1) % 2 == 1:
            x = F.pad(x, (0, 1))
        return F.max_pool1d(x, 2)


class Net1d(nn.Module):
    """A branching module inside a model: only it is traced by sides, the rest as usual."""

    def __init__(self):
        super().__init__()
        self.pad = PadOddToEven()
        self.conv = nn.Conv1d(1, 4, 3)
        self.fc = nn.LazyLinear(3)

    def forward(self, x):
        return self.fc(self.conv(self.pad(x)).flatten(1))


class Asserts(nn.Module):
    def forward(self, x):
        assert x.shape[-1] >= 4, "too short"
        return F.avg_pool1d(x, 4)


class SmallerSide(nn.Module):
    """``min`` of two sizes compares them: a branch."""

    def forward(self, x):
        s = min(x.size(2), x.size(3))
        return F.adaptive_avg_pool2d(x[:, :, :s, :s], 2) if s >= 2 else x[:, :, :1, :1]


class Halve(nn.Module):
    """A loop over a fixed range whose body depends on the size."""

    def forward(self, x):
        for _ in range(3):
            if x.size(-1) > 8:
                x = F.max_pool1d(x, 2)
        return x


class EarlyReturn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 2, 5)

    def forward(self, x):
        if x.size(-1) < 5:
            return x.repeat(1, 2, 1)
        return self.conv(x)


class Dispatch(nn.Module):
    """Branches on the batch's size and on a spatial size, nested in modules."""

    def __init__(self):
        super().__init__()
        self.first = PadOddToEven()
        self.second = Halve()

    def forward(self, x):
        return self.second(self.first(x))


def test_a_guard_gives_the_models_valid_sizes_with_its_message():
    a = symshape.analyze(DivisibleBy32(), (1, "H", "W"))
    assert [s.rule for s in a.steps] == ["cases"]
    valid = a.valid_sizes()
    assert members(valid, ["H", "W"], 70) == {(h, w) for h in (32, 64) for w in (32, 64)}
    with pytest.raises(symshape.InvalidInputSize, match=r"divisible by 32, got HxW"):
        a.at(H=33, W=64)
    assert a.at(H=64, W=32).output_shape == (1, 4, 32, 16)
    assert_agrees(DivisibleBy32(), (1, "H", "W"), grid(("H", "W"), [1, 31, 32, 33, 64, 96]))


def test_padding_odd_sizes_to_even_is_exact_on_both_sides():
    a = symshape.analyze(PadOddToEven(), (1, "L"))
    assert [a.at(L=n).output_shape[-1] for n in (1, 2, 5, 6)] == [1, 1, 3, 3]
    assert_agrees(PadOddToEven(), (1, "L"), [{"L": n} for n in range(1, 40)])


def test_a_branching_module_inside_a_model_keeps_the_rest_step_by_step():
    net = Net1d()
    a = symshape.analyze(net, (1, "L"))
    assert [s.name for s in a.steps][:2] == ["pad", "conv"] and a.steps[0].rule == "cases"
    # in_features is still a formula of L: 4 * (ceil(L/2) - 2)
    assert [a.formula()(L=n) for n in (5, 6, 9)] == [4, 4, 12]
    assert_agrees(net, (1, "L"), [{"L": n} for n in range(1, 30)])
    assert members(a.valid_sizes(), ["L"], 30) == scan(net, (1, "L"), ["L"], 30)


def test_an_assert_is_a_requirement_with_its_message():
    a = symshape.analyze(Asserts(), (1, "L"))
    with pytest.raises(symshape.InvalidInputSize, match="too short"):
        a.at(L=3)
    assert_agrees(Asserts(), (1, "L"), [{"L": n} for n in range(1, 20)])
    assert members(a.valid_sizes(), ["L"], 20) == scan(Asserts(), (1, "L"), ["L"], 20)


@pytest.mark.parametrize("model, shape, names, values", [
    (SmallerSide(), (1, "H", "W"), ("H", "W"), [1, 2, 3, 5, 8]),
    (Halve(), (1, "L"), ("L",), list(range(1, 70))),
    (EarlyReturn(), (1, "L"), ("L",), list(range(1, 12))),
    (Dispatch(), (1, "L"), ("L",), list(range(1, 70))),
])
def test_branches_agree_with_torch(model, shape, names, values):
    assert_agrees(model, shape, grid(names, values))


def test_explain_and_check_show_the_models_message():
    a = symshape.analyze(DivisibleBy32(), (1, "H", "W"))
    text = a.explain()
    assert "divisible by 32" in text
    report = a.verify(samples=12)
    assert report.ok, str(report)


class Countdown(nn.Module):
    def forward(self, x):
        n = 0
        while x.size(-1) > n:  # one branch per size: more sides than symshape follows
            n += 1
        return x[..., :1]


class HalveWhileLong(nn.Module):
    def forward(self, x):
        while x.size(-1) > 8:  # as many halvings as log2(L): no finite set of cases
            x = F.max_pool1d(x, 2)
        return x


@pytest.mark.parametrize("model", [Countdown(), HalveWhileLong()])
def test_more_sides_than_the_bound_is_refused_naming_the_condition(model):
    with pytest.raises(symshape.UntraceableModel, match=r"L > \d+") as e:
        symshape.analyze(model, (1, "L"))
    assert "more than 64" in str(e.value.__cause__)


class BranchThenNonzero(nn.Module):
    def forward(self, x):
        if x.size(-1) % 2:  # the model itself branches: traced side by side
            x = x[..., :-1]
        return torch.nonzero(x)  # a size that depends on the data: refused on every side


def test_a_model_that_branches_names_what_stops_its_sides():
    """The root's branch is no reason to refuse (its sides are traced); the op a side stops at is."""
    with pytest.raises(symshape.UntraceableModel, match=r"traced side by side, it stops at .*nonzero") as e:
        symshape.analyze(BranchThenNonzero(), (1, "L"))
    assert "nonzero" in str(e.value.__cause__)


class StrideWhenLong(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 1, 3, stride=2)

    def forward(self, x):
        if x.size(-1) > 20:
            x = self.conv(x)
        return x


def test_a_side_that_rounds_counts_only_on_its_side_for_exact_sizes():
    a = symshape.analyze(StrideWhenLong(), (1, "L"))
    exact = members(a.exact_sizes(), ["L"], 60)
    assert exact == {(n,) for n in range(1, 61) if n <= 20 or (n - 3) % 2 == 0}
    assert_agrees(StrideWhenLong(), (1, "L"), [{"L": n} for n in range(1, 40)])


class Windows(nn.Module):
    """TinyViT's block: tokens ``(B, H, W, C)`` permuted from a convolution (not contiguous),
    padded to a multiple of the window only where needed (``if pad_b > 0 or pad_r > 0``), cut
    into windows with a ``view``, attention with a bias mask, the windows merged back, the pad cut
    off, a residual add. On the side without padding, ``H + pad_b`` is ``H`` and the view's
    ``H -> (H // 3, 3)`` is a split of one dim: both only as the side's answers imply."""

    def __init__(self, c: int = 4, ws: int = 3, heads: int = 2):
        super().__init__()
        self.conv = nn.Conv2d(1, c, 3, stride=2, padding=1)
        self.qkv = nn.Linear(c, 3 * c)
        self.bias = nn.Parameter(torch.zeros(heads, ws * ws, ws * ws))
        self.ws, self.heads = ws, heads

    def forward(self, x):
        x = self.conv(x).permute(0, 2, 3, 1)
        B, H, W, C = x.shape
        shortcut, ws = x, self.ws
        pad_b = (ws - H % ws) % ws
        pad_r = (ws - W % ws) % ws
        padding = pad_b > 0 or pad_r > 0
        if padding:
            x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        pH, pW = H + pad_b, W + pad_r
        nH, nW = pH // ws, pW // ws
        x = x.view(B, nH, ws, nW, ws, C).transpose(2, 3).reshape(B * nH * nW, ws * ws, C)
        q, k, v = self.qkv(x).view(B * nH * nW, ws * ws, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=self.bias)
        x = x.transpose(1, 2).reshape(B, nH, nW, ws, ws, C).transpose(2, 3).reshape(B, pH, pW, C)
        if padding:
            x = x[:, :H, :W].contiguous()
        return shortcut + x


def test_a_side_simplifies_under_its_own_answers():
    """Each side is analyzed under what its answers imply (symshape.dims.implied): no pad is a
    pad of 0, a size the side makes a multiple of 3 splits into (size // 3, 3) as one view. The
    model runs at every size; so says symshape, step by step, without torch's meta kernel."""
    model = Windows().eval()
    an = symshape.analyze(model, (1, "H", "W"))
    assert str(an.valid_sizes()) == "any H and W"
    assert an.at(H=13, W=7).output_shape == (1, 7, 4, 4)
    assert_agrees(model, (1, "H", "W"), grid(["H", "W"], [1, 2, 5, 6, 7, 12, 13]))


class WindowsAtStride16(Windows):
    """TinyViT-21M at 384 px: the third stage's windows of 24 on a grid of stride 16 (four
    halvings, ``(H + 15) // 16``): the side's conditions have period 384 in H."""

    def __init__(self):
        super().__init__(ws=24)
        self.conv = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1),
                                  *(nn.Conv2d(4, 4, 3, stride=2, padding=1) for _ in range(3)))


def test_a_side_at_a_long_period_simplifies_under_its_answers_too():
    """symshape.dims writes the side's conditions in the coarser size ``(H + 15) // 16`` (period
    24, not 384): the view splits the grid into windows at every size of the side, as a hand
    rule, where torch's meta kernel would branch on the strides more than 64 ways."""
    model = WindowsAtStride16().eval()
    an = symshape.analyze(model, (1, "H", "W"))
    assert str(an.valid_sizes()) == "any H and W"
    views = [(step.op, step.rule) for top in an.steps for side in top.sides for step in side[1] or ()
             if step.op == "Tensor.view"]
    assert views and all(rule != "meta" for _, rule in views), views
    assert an.at(H=384, W=400).output_shape == (1, 24, 25, 4)
    assert_agrees(model, (1, "H", "W"), [{"H": h, "W": w} for h, w in
                                         [(384, 384), (384, 385), (383, 768), (1, 384), (16, 17), (769, 400)]])


class BlockResize(nn.Module):
    """BAT's bilinear attention (timm's BilinearAttnTransform.resize_mat): the input must be a
    multiple of the block (``_assert``); a block-sized map is returned as it is where the size
    holds one block (``t <= 1``), else tiled ``t`` times (``7`` or ``7*(H // 7)``)."""

    def __init__(self, block: int = 3):
        super().__init__()
        self.block = block

    def forward(self, x):
        torch._assert(x.shape[-1] % self.block == 0, "the size must be a multiple of the block")
        t = x.shape[-1] // self.block
        m = F.adaptive_max_pool1d(x, self.block)
        if t > 1:
            m = m.repeat(1, 1, t)
        return m


class BlockResizeStack(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.conv = BlockResize(), BlockResize(), nn.Conv1d(1, 1, 3, padding=1)

    def forward(self, x):
        return self.b(self.conv(self.a(x)))


def test_sides_that_agree_wherever_the_module_returns_are_one_size():
    """``3`` where ``L // 3 <= 1`` and ``3*(L // 3)`` elsewhere are one size where the _assert
    (required on every side) has made L a multiple of 3: no Piecewise, none nested into the next
    block's cases."""
    model = BlockResizeStack().eval()
    an = symshape.analyze(model, (1, "L"))
    assert str(an.output_shape) == "(N, 1, 3*floor(L/3))"
    assert members(an.valid_sizes(), ["L"], 40) == {(n,) for n in range(3, 41, 3)}
    assert_agrees(model, (1, "L"), [{"L": n} for n in range(1, 40)])


class LiteAttention(nn.Module):
    """EfficientViT (MIT)'s LiteMLA: the device's type passed to ``torch.autocast`` and compared
    with a string, around a product of the tokens."""

    def __init__(self):
        super().__init__()
        self.qkv = nn.Conv2d(4, 12, 1)

    def forward(self, x):
        b, _, h, w = x.shape
        q, k, v = self.qkv(x).reshape(b, 3, 4, h * w).transpose(-1, -2).unbind(1)
        v = F.pad(v, (0, 1), mode="constant", value=1.0)
        if x.device.type != "meta" and not x.is_cuda:
            with torch.autocast(device_type=v.device.type, enabled=False):
                out = q @ (k.transpose(-1, -2) @ v)
        else:
            out = q @ (k.transpose(-1, -2) @ v)
        return out[..., :-1].transpose(-1, -2).reshape(b, -1, h, w)


def test_the_device_of_a_traced_tensor_is_a_plain_value():
    """``x.device`` (and ``is_cuda``) of a traced tensor is the CPU's, a plain value (the model
    was run whole under torch's meta kernels before, 96 s of EfficientViT-B0's)."""
    model = LiteAttention()
    an = symshape.analyze(model, (4, "H", "W"))
    assert "meta" not in {s.rule for s in an.steps}
    assert str(an.valid_sizes()) == "any H and W"
    assert_agrees(model, (4, "H", "W"), grid(["H", "W"], [1, 2, 5]))


class RandomBranch(nn.Module):
    def __init__(self, on: str):
        super().__init__()
        self.conv, self.on = nn.Conv2d(1, 2, 3), on

    def forward(self, x):
        p = torch.rand(()) if self.on == "random" else x.sum()
        if p < 0.5:  # the side depends on a tensor's values, not on the sizes
            x = self.conv(x)
        return x.flatten(1)


@pytest.mark.parametrize("on", ["random", "values"])
def test_a_branch_on_tensor_values_is_refused_by_name_every_time(on):
    """Issue 22 (4): a forward that branches on ``torch.rand(())`` gave a different answer on
    each call (the side drawn while tracing). A random tensor is a traced value whatever its
    size, and a branch on any tensor's values is refused, naming it, on every call."""
    for _ in range(3):
        with pytest.raises(symshape.UntraceableModel, match="tensor's values"):
            symshape.analyze(RandomBranch(on), (1, "H", "W"))


class MadeOnTheDevice(nn.Module):
    """XCiT's position encoding: tensors made on ``self.weight.device`` and ``x.device``."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(4))

    def forward(self, x):
        grid = torch.arange(x.shape[-1], device=self.weight.device).to(torch.float32)
        return x + grid + torch.zeros(x.shape[-2], 1, device=x.device)


def test_a_tensor_made_on_a_traced_device_stays_on_the_device_torch_runs_on():
    """``x.device`` stays a traced value (only its flags and ``.type`` are plain values): the
    proof replays the graph on the meta device, where a device written into the graph as the
    CPU would fail every step after it (XCiT was refused that way)."""
    model = MadeOnTheDevice()
    an = symshape.analyze(model, (2, "H", "W"))
    assert_agrees(model, (2, "H", "W"), grid(["H", "W"], [1, 3]))
    assert an.verify(sizes=[{"H": 3, "W": 4}], device="meta").ok


class _SidesToExplain(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(3, 4, 2, stride=2)

    def forward(self, x):
        if x.size(-1) > 64:
            raise ValueError(f"at most 64 samples, got {x.size(-1)}")
        if x.size(-1) % 2 == 1:
            x = F.pad(x, (0, 1))
        return self.conv(x)


def test_explain_lists_what_each_side_of_a_branch_does():
    """Issue 16 point 4: per side, its conditions, its output and its steps, or its own message."""
    a = symshape.analyze(_SidesToExplain(), (3, "L"))
    text = a.explain()
    start = text.index("  for")
    side = text[start:text.index("\n\n", start)]
    assert side.splitlines() == [
        "  for L > 64: raises ValueError: at most 64 samples, got L",
        "  for L ≤ 64 and L mod 2 = 1: (4, floor((L + 1)/2))",
        "    pad  F.pad  (3, L) → (3, L + 1)",
        "    conv  nn.Conv1d  (3, L + 1) → (4, floor((L + 1)/2))",
        "  for L ≤ 64 and L mod 2 ≠ 1: (4, floor(L/2))",
        "    conv  nn.Conv1d  (3, L) → (4, floor(L/2))",
    ]
    # each side's story is torch's: the lengths it names are the ones torch computes
    for n in (1, 7, 8, 63, 64):
        out = _SidesToExplain()(torch.zeros(1, 3, n)).shape[-1]
        assert out == (n + 1) // 2 == a.at(L=n).output_shape[-1]
    md = a.explain(format="md")
    assert "\n  - pad  F.pad  $(3, L) \\to (3, L + 1)$\n" in md and "- for $L > 64$: raises ValueError" in md
    assert "raises ValueError: at most 64 samples" in a.explain(format="latex")


class _PerChannel(nn.Module):
    """Loops over ``range(x.size(1))`` (the channels: a fixed count) and over a shape's entries."""

    def forward(self, x):
        outs = [x[:, i:i + 1] * (i + 1) for i in range(x.size(1))]
        n = 1
        for s in x.shape[2:]:
            n = n * s
        return torch.cat(outs, dim=1).reshape(x.size(0), -1)[:, : n * x.size(1)]


class _PerPosition(nn.Module):
    """Loops over ``range(x.size(-1))``: as many iterations as the input is long."""

    def forward(self, x):
        return torch.stack([x[..., i] for i in range(x.size(-1))], dim=-1)


def test_loops_over_fixed_counts_are_exact_and_a_loop_over_a_size_is_refused_by_name():
    assert_agrees(_PerChannel(), (3, "H", "W"), grid(("H", "W"), [1, 2, 5]))
    try:
        a = symshape.analyze(_PerPosition(), (2, "L"))
    except symshape.UntraceableModel as e:  # refused, naming the line: never one length's answer for all
        assert "range(x.size(-1))" in str(e) and "cannot be interpreted as an integer" in str(e)
    else:  # or answered exactly
        assert_agrees(_PerPosition(), (2, "L"), [{"L": n} for n in (1, 2, 7)])
        assert str(a.output_shape) == "(N, 2, L)"


class _FoldedWhenLong(nn.Module):
    """A block that branches on the length: long inputs go through a view that needs the
    length divisible by 4 (a requirement on that side), short ones straight on; a Linear on
    every side."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):  # (N, L, 4)
        n, length, c = x.shape
        if length > 4:
            y = self.fc(x).reshape(n, length // 4, 4 * c)
            return y.view(n, length, c)
        return self.fc(x)


class _TwoEqualBlocks(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.Sequential(_FoldedWhenLong(), _FoldedWhenLong())

    def forward(self, x):
        return self.blocks(x)


def test_equal_branching_blocks_are_traced_once_and_named_each_by_its_own_step(monkeypatch):
    """Two blocks with one fingerprint and the same input share one trace by sides; each
    block's requirements, steps and Linear are still its own (named in the model, the
    Linear the block's own module), and the analysis agrees with torch at every length."""
    from symshape import engine

    traced = []
    original = engine.Propagator._traced_by_sides
    monkeypatch.setattr(engine.Propagator, "_traced_by_sides",
                        lambda self, ctx, *rest: traced.append(ctx.step) or original(self, ctx, *rest))
    model = _TwoEqualBlocks()
    a = symshape.analyze(model, ("L", 4))
    assert traced == ["blocks.0"]
    reasons = [r.reason for s in a.steps for r in s.requirements]
    assert any(r.startswith("blocks.0.reshape") for r in reasons), reasons
    assert any(r.startswith("blocks.1.reshape") for r in reasons), reasons
    assert set(a.fixed) >= {"blocks.0.fc", "blocks.1.fc"}
    steps = {s.name: s for s in a.steps}
    assert steps["blocks.1.fc"].module is model.blocks[1].fc and steps["blocks.0.fc"].module is model.blocks[0].fc
    with pytest.raises(symshape.InvalidInputSize, match=r"blocks\.0\.reshape"):
        a.at(L=6)
    assert a.check().ok
    assert_agrees(model, ("L", 4), [{"L": n} for n in range(1, 26)])


class AtLeastSeven(nn.Module):
    """VGG's pre-logits: a map smaller than 7 x 7 is pooled up to ``max(7, size)``, which asks
    ``h > 7`` again on the side where ``h < 7`` already holds."""

    def forward(self, x):
        if x.shape[-2] < 7 or x.shape[-1] < 7:
            x = F.adaptive_avg_pool2d(x, (max(7, x.shape[-2]), max(7, x.shape[-1])))
        return x


def test_a_side_asks_no_question_its_earlier_answers_settle():
    """Every side shown holds at some size (none where both ``h < 7`` and ``h > 7``), and the
    answer is torch's at every size."""
    model = nn.Sequential(nn.Conv2d(1, 2, 3), AtLeastSeven())
    analysis = symshape.analyze(model, (1, "H", "W"))
    sides = next(s.sides for s in analysis.steps if s.sides)
    H, W = (symshape.dims.size_symbol(n) for n in "HW")
    for conditions, *_ in sides:
        assert any(all(bool(c.subs({H: h, W: w})) for c in conditions)
                   for h in range(3, 20) for w in range(3, 20)), conditions
    assert len(sides) == 5
    assert_agrees(model, (1, "H", "W"), grid(["H", "W"], [1, 3, 5, 8, 9, 10, 12]))


class NormWhereLong(nn.Module):
    """Instance norm only where the sequence is longer than 1 (``if L > 1``): on that side torch's
    check ``L != 1`` is no check."""

    def forward(self, x):
        if x.shape[-1] > 1:
            return F.instance_norm(x)
        return x


def test_a_check_that_the_sides_answer_proves_different_is_none_there():
    """A ``!=`` check (instance norm's more than 1 spatial element) that the side's facts imply
    is dropped as ``==`` and ``>=`` checks are (Relation.proven_by, one table for the rules and
    for the merge of the sides); every size is valid, as torch finds."""
    model = NormWhereLong()
    analysis = symshape.analyze(model, (2, "L"))
    assert not [r for s in analysis.steps for r in s.requirements if "spatial element" in r.reason]
    assert str(analysis.valid_sizes()) == "any L"
    assert_agrees(model, (2, "L"), grid(["L"], [1, 2, 3, 9]))


class SquarePositions(nn.Module):
    """transformers' Dinov2 (``interpolate_pos_encoding``): the position grid as it is where the
    patches are as many as its positions and the image is square, else resized to the patches;
    added to them (a broadcast, a check on one side only)."""

    def __init__(self):
        super().__init__()
        self.patch = nn.Conv2d(3, 4, 2, stride=2)
        self.register_buffer("pos", torch.zeros(1, 4, 4, 4))

    def forward(self, x):
        h, w = x.shape[-2:]
        e = self.patch(x)
        if e.shape[-2] * e.shape[-1] == 16 and h == w:
            p = self.pos
        else:
            p = F.interpolate(self.pos, size=(h // 2, w // 2), mode="bicubic", align_corners=False)
        return (e + p).flatten(1)


def test_a_branch_on_a_square_image_is_solved_where_torch_runs():
    """``valid_sizes()`` crashed (``'Tie' object has no attribute 'is_subset'``): the side where
    ``h == w`` ties W to H, and the check on it (``e + p`` broadcasts) was solved as if on a box."""
    model = SquarePositions()
    a = symshape.analyze(model, (3, "H", "W"))
    assert members(a.valid_sizes(), ["H", "W"], 20) == scan(model, (3, "H", "W"), ["H", "W"], 20)
    assert assert_agrees(model, (3, "H", "W"), grid(["H", "W"], [1, 2, 7, 8, 9])) == 16


class SameConditionTwice(nn.Module):
    """SAM asks ``floor(H/16) == 64`` and later ``2*floor(H/16) - 1 == 127``: one condition
    written two ways. Where the first is False the second is too: no side has one and not the
    other (each side traced is a whole trace of the model: SAM-H had 7 sides, 3 impossible)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 2)

    def forward(self, x):  # (N, L)
        n = x.shape[-1] // 4
        if n == 8:
            x = x[..., :8]
        if 2 * n - 1 == 15:
            return self.fc(x)
        return x[..., :2] * 2


def test_a_condition_written_another_way_is_the_same_branch(monkeypatch):
    from symshape import engine

    sides = []
    original = engine.Propagator._traced_by_sides

    def counted(self, ctx, *rest):
        out = original(self, ctx, *rest)
        sides.append(len(out[2]))
        return out

    monkeypatch.setattr(engine.Propagator, "_traced_by_sides", counted)
    model = SameConditionTwice()
    a = symshape.analyze(model, ("L",))
    assert sides == [2]  # n == 8 (both True), n != 8 (both False)
    assert a.at(L=33).output_shape == (1, 2) and a.at(L=30).output_shape == (1, 2)
    assert members(a.valid_sizes(), ["L"], 40) == scan(model, ("L",), ["L"], 40)
    assert_agrees(model, ("L",), [{"L": n} for n in range(1, 41)])


class PatchPositions(nn.Module):
    """diffusers' PatchEmbed: a position table of its own 4x4 grid, or one computed for another
    grid (``if self.height != h or self.width != w``); then DiT's ``int(tokens ** 0.5)``."""

    def __init__(self):
        super().__init__()
        self.height = self.width = 4
        self.proj = nn.Conv2d(8, 8, 2, 2)
        self.pos = nn.Parameter(torch.zeros(1, 16, 8))

    def forward(self, x):
        h, w = x.shape[-2] // 2, x.shape[-1] // 2
        t = self.proj(x).flatten(2).transpose(1, 2)
        pos = torch.zeros(1, h * w, 8) if self.height != h or self.width != w else self.pos
        return t + pos


class Unpatchify(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = PatchPositions()

    def forward(self, x):
        t = self.embed(x)
        n = int(t.shape[1] ** 0.5)
        return t.reshape(shape=(t.shape[0], n, -1, 8))


def test_sides_that_agree_where_the_facts_pin_two_sizes_are_one_size():
    # the table's 16 rows where h == 4 and w == 4 are the h*w of the other sides: one size, whose
    # root the model takes (it was a Piecewise, which math.sqrt of a size refused)
    a = symshape.analyze(Unpatchify(), (8, "H", "W"))
    assert str(a.steps[0].output[1]) == "floor(H/2)*floor(W/2)"
    sizes = [{"H": h, "W": w} for h, w in ((8, 8), (9, 8), (8, 10), (6, 6), (16, 4), (2, 2), (18, 2),
                                            (10, 2), (14, 2), (10, 4))]  # (5, 7, 10 tokens: no square's multiple)
    assert assert_agrees(Unpatchify(), (8, "H", "W"), sizes) == 7
