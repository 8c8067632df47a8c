"""Swin windows (MONAI's SwinUNETR, the reference Swin Transformer's model file), each idiom in a
small model compared with torch.

Its patch embedding pads each dim to a multiple of the patch on one side of a branch, so the
sizes after it are defined by cases; its blocks clip the window to a size that is smaller
(``get_window_size``), pad to whole windows, count the windows of the attention mask from the
padded size (``int(np.ceil(h / window)) * window``) and divide the windows of the input by them
(``B_ // nW``); its attention gathers a fixed 49 x 49 table of biases and reshapes it by the
window (``reshape(n, n, -1)``). Each test fails on the code before the change it names.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import symshape
from oracle import assert_agrees, grid, members, scan

LENGTHS = list(range(1, 31))


class PatchEmbed(nn.Module):
    """``L`` padded to a multiple of 2 where it is odd, then a stride-2 patch: ``floor((L + 2)/2)``
    or ``floor(L/2)`` by cases, inside the modules after it."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Conv1d(2, 2, 2, stride=2)

    def forward(self, x):
        if x.shape[2] % 2 != 0:
            x = F.pad(x, (0, 2 - x.shape[2] % 2))
        return self.proj(x)


class ClippedWindow(nn.Module):
    """The window is the size itself where the size is at most 3: ``h / window`` is ``h / h``."""

    def forward(self, x):
        h = x.shape[2]
        window = h if h <= 3 else 3
        padded = int(np.ceil(h / window)) * window
        return F.pad(x, (0, padded - h))[:, :, :h]


class Embedded(nn.Module):
    def __init__(self, block: nn.Module):
        super().__init__()
        self.embed, self.block = PatchEmbed(), block

    def forward(self, x):
        return self.block(self.embed(x))


def test_a_window_clipped_to_a_size_defined_by_cases_rounds_case_by_case():
    """``math.ceil`` / ``np.ceil`` of a size defined by cases over the window: ``h / h`` is the
    exact quotient 1 (sympy kept a Piecewise times its own reciprocal, which no rounding reads:
    refused before), ``h / 3`` is rounded in each case; the slice ``[:h]`` of ``h`` padded to
    whole windows is ``h`` in each case (no ``Min`` left, no side for it)."""
    model = Embedded(ClippedWindow())
    assert assert_agrees(model, (2, "L"), grid(["L"], LENGTHS)) == len(LENGTHS)
    out = symshape.analyze(model, (2, "L")).output_shape
    assert out == symshape.analyze(PatchEmbed(), (2, "L")).output_shape
    assert "Min" not in str(out)


class WindowsOverMaskWindows(nn.Module):
    """The input's windows (``N * floor(L/3)``, counted from the unpadded size on the side where
    no pad is needed) divided by the mask's (``ceil(L/3)``, counted from the padded size)."""

    def forward(self, x):
        n, c, length = x.shape
        if (3 - length % 3) % 3 > 0:
            return x
        windows = x.reshape(n * (length // 3), c, 3)
        mask_windows = math.ceil(length / 3)
        return windows.view(windows.shape[0] // mask_windows, mask_windows, -1)


def test_windows_counted_two_ways_divide_exactly_where_the_side_makes_them_equal():
    """``B_ // nW`` where the side's facts make ``floor(L/3) == ceil(L/3)``: the quotient is the
    batch size, not ``floor(N*floor(L/3)/floor((L + 2)/3))`` -- which left valid_sizes() unsolvable
    (a floor of a quotient of sizes) and every shape after it a nest of cases."""
    model = WindowsOverMaskWindows()
    assert assert_agrees(model, (2, "L"), grid(["L"], LENGTHS)) == len(LENGTHS)
    analysis = symshape.analyze(model, (2, "L"))
    assert "floor(N" not in str(analysis.output_shape)
    assert members(analysis.valid_sizes(), ["L"], 40) == scan(model, (2, "L"), ["L"], 40)


class BiasTable(nn.Module):
    """A fixed table of 48 entries reshaped by the size (MONAI's relative position biases,
    ``table[index[:n, :n]].reshape(n, n, -1)`` where the window ``n`` may be smaller than 7)."""

    def __init__(self, entries: int = 48):
        super().__init__()
        self.register_buffer("table", torch.arange(float(entries)))

    def forward(self, x):
        return x * self.table.reshape(x.shape[2], -1).sum()


@pytest.mark.parametrize("entries", [48, 1, 97, 360])
def test_a_fixed_number_of_elements_reshaped_by_a_size_is_valid_at_its_divisors(entries):
    """``c divisible by L``: the sizes are exactly ``c``'s divisors (valid_sizes() raised
    Unsolvable, "a size-dependent divisor", before); compared with a scan of torch."""
    model = BiasTable(entries)
    valid = symshape.analyze(model, (2, "L")).valid_sizes()
    assert members(valid, ["L"], 400) == scan(model, (2, "L"), ["L"], 400)
    assert members(valid, ["L"], 400) == {(d,) for d in range(1, entries + 1) if entries % d == 0}


class ClampedWindowBias(nn.Module):
    """MONAI's SwinUNETR window attention on a small image: the window is clamped to the image
    (``get_window_size``: ``h if h <= 7 else 7``), its ``n = wh * ww`` tokens index a 49 x 49
    table, ``index[:n, :n]``, and the biases ``table[idx].reshape(n, n, -1)`` are added to
    the attention of 3 heads. Where the side's facts make ``n`` at most 49 the slice is ``n`` long
    and the heads are 3 (valid_sizes() raised Unsolvable, ``floor((H + 6)/8)**(-2)`` ...,
    before: a ``Min(49, n)`` left in the slice)."""

    def __init__(self, heads: int = 3):
        super().__init__()
        self.heads = heads
        self.register_buffer("index", torch.arange(49 * 49).reshape(49, 49) % 169)
        self.table = nn.Parameter(torch.zeros(169, heads))

    def forward(self, x):
        x = F.avg_pool2d(x, 8, ceil_mode=True)  # floor((H + 7)/8) rows: 1 to 7 where H <= 56
        h, w = x.shape[2], x.shape[3]
        wh = h if h <= 7 else 7
        ww = w if w <= 7 else 7
        n = wh * ww
        bias = self.table[self.index[:n, :n].reshape(-1)].reshape(n, n, -1)
        attn = x.new_zeros(x.shape[0], self.heads, n, n)
        return attn + bias.permute(2, 0, 1).unsqueeze(0)


def test_a_window_clamped_to_a_small_image_indexes_its_table_exactly():
    model = ClampedWindowBias()
    sizes = [1, 8, 9, 30, 56, 57, 64, 65, 100]
    assert assert_agrees(model, (2, "H", "W"), grid(["H", "W"], sizes)) == len(sizes) ** 2
    analysis = symshape.analyze(model, (2, "H", "W"))
    assert "Min" not in str(analysis.output_shape)
    valid = analysis.valid_sizes()
    assert members(valid, ["H", "W"], 70) == scan(model, (2, "H", "W"), ["H", "W"], 70)


class CheckedWindowCount(nn.Module):
    """MONAI's SwinUNETR checks that H and W are multiples of 32 (a ValueError otherwise), and
    its window attention divides the batch of windows by the window count, ``B_ // nW``, with
    ``nW = floor((H + 12)/14)*floor((W + 12)/14)`` (7 x 7 windows over the stride-2 map). Where
    the check passed the count is at least 9: the division is no branch (it was one, a side
    "raises ZeroDivisionError" where the count is 0 that no size reaches -- in 3-D such sides
    took SwinUNETR past the limit of 64 sides)."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Conv2d(3, 4, 2, stride=2)

    def forward(self, x):
        h, w = x.shape[2], x.shape[3]
        if h % 32 or w % 32:
            raise ValueError("H and W must be multiples of 32")
        x = self.proj(x)
        windows = ((x.shape[2] + 6) // 7) * ((x.shape[3] + 6) // 7)
        batch = x.shape[0] * windows
        attn = x.new_zeros(batch, 4)
        return attn.view(batch // windows, windows, 4).flatten(1)


def test_a_window_count_after_the_models_own_check_is_no_branch():
    model = CheckedWindowCount().eval()
    analysis = symshape.analyze(model, (3, "H", "W"))
    assert not any("ZeroDivisionError" in r.reason for _, r in analysis.requirements)
    assert "ZeroDivisionError" not in str(analysis.explain())
    assert str(analysis.output_shape) == "(N, 4*floor((H + 12)/14)*floor((W + 12)/14))"
    assert members(analysis.valid_sizes(), ["H", "W"], 70) == scan(model, (3, "H", "W"), ["H", "W"], 70)
    sizes = [1, 31, 32, 33, 64, 96, 160]
    assert assert_agrees(model, (3, "H", "W"), grid(["H", "W"], sizes)) == 16


# -- the reference Swin Transformer's model file (copied into many segmentation repositories) --


class ReferencePatchEmbed(nn.Module):
    """Pads ``W``, then ``H``, to a multiple of the patch only where it is not one (``extra``
    pads past it, so that no one floor joins the two sides), then a stride-4 patch, flattened."""

    def __init__(self, extra: int = 0, channels: int = 4):
        super().__init__()
        self.extra = extra
        self.proj = nn.Conv2d(3, channels, 4, stride=4)
        self.norm = nn.LayerNorm(channels)

    def forward(self, x):
        _, _, h, w = x.shape
        if w % 4 != 0:
            x = F.pad(x, (0, 4 - w % 4 + self.extra))
        if h % 4 != 0:
            x = F.pad(x, (0, 0, 0, 4 - h % 4 + self.extra))
        x = self.proj(x)
        wh, ww = x.size(2), x.size(3)
        return self.norm(x.flatten(2).transpose(1, 2)), wh, ww


def window_partition(x, ws: int):
    b, h, w, c = x.shape
    x = x.view(b, h // ws, ws, w // ws, ws, c)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, ws, ws, c)


def window_reverse(windows, ws: int, h, w):
    b = int(windows.shape[0] / (h * w / ws / ws))
    x = windows.view(b, h // ws, w // ws, ws, ws, -1)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(b, h, w, -1)


class ReferenceBlock(nn.Module):
    """A Swin block as the reference writes it: the tokens viewed as an image, padded to whole
    windows, shifted, partitioned, attended, reversed, cropped and viewed back."""

    def __init__(self, channels: int = 4, ws: int = 7, shift: int = 0):
        super().__init__()
        self.ws, self.shift = ws, shift
        self.norm = nn.LayerNorm(channels)
        self.qkv, self.proj = nn.Linear(channels, 3 * channels), nn.Linear(channels, channels)

    def forward(self, x, h, w):
        b, _, c = x.shape
        shortcut, ws = x, self.ws
        x = self.norm(x).view(b, h, w, c)
        pad_r, pad_b = (ws - w % ws) % ws, (ws - h % ws) % ws
        x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        _, hp, wp, _ = x.shape
        if self.shift > 0:
            x = torch.roll(x, shifts=(-self.shift, -self.shift), dims=(1, 2))
        windows = window_partition(x, ws).view(-1, ws * ws, c)
        q, k, v = self.qkv(windows).reshape(windows.shape[0], ws * ws, 3, c).permute(2, 0, 1, 3)
        windows = self.proj((q @ k.transpose(-2, -1)).softmax(-1) @ v).view(-1, ws, ws, c)
        x = window_reverse(windows, ws, hp, wp)
        if self.shift > 0:
            x = torch.roll(x, shifts=(self.shift, self.shift), dims=(1, 2))
        if pad_r > 0 or pad_b > 0:
            x = x[:, :h, :w, :].contiguous()
        return shortcut + x.view(b, h * w, c)


class ReferenceSwin(nn.Module):
    def __init__(self, extra: int = 0, shifts=(0, 3)):
        super().__init__()
        self.embed = ReferencePatchEmbed(extra)
        self.blocks = nn.ModuleList(ReferenceBlock(shift=s) for s in shifts)
        self.head = nn.Linear(4, 10)

    def forward(self, x):
        x, h, w = self.embed(x)
        for block in self.blocks:
            x = block(x, h, w)
        return self.head(x.mean(1))


SIDES = [dict(H=h, W=w) for h in (1, 4, 5, 27, 28, 29, 33, 57) for w in (2, 4, 7, 28, 30, 31, 64)]


def test_a_patch_embedding_that_pads_only_where_needed_is_one_ceiling():
    """``floor((H + 4)/4)`` where ``H % 4 != 0`` and ``floor(H/4)`` where not are one size,
    ``floor((H + 3)/4)``, on both sides (each equality proven); the flattened grid is one
    product. Before, every size after the embedding was a nest of cases (four sides), and a
    reference Swin block after it was refused."""
    model = ReferencePatchEmbed()
    assert assert_agrees(model, (3, "H", "W"), SIDES) == len(SIDES)
    shape = symshape.analyze(model, (3, "H", "W")).output_shape
    assert str(shape[0]) == "(N, floor((H + 3)/4)*floor((W + 3)/4), 4)"
    assert [str(s) for s in shape[1:]] == ["floor((H + 3)/4)", "floor((W + 3)/4)"]


def test_the_reference_swin_blocks_analyze_and_accept_every_size():
    """The reference Swin model file's blocks (windows padded, shifted, partitioned with ``view``
    and reversed with ``int(windows.shape[0] / (H * W / ws / ws))``) after its patch embedding:
    agree with torch, and every size is valid, as a scan of torch finds."""
    model = ReferenceSwin()
    assert assert_agrees(model, (3, "H", "W"), SIDES) == len(SIDES)
    valid = symshape.analyze(model, (3, "H", "W")).valid_sizes()
    assert members(valid, ["H", "W"], 30) == scan(model, (3, "H", "W"), ["H", "W"], 30)


def test_a_window_view_of_sizes_left_by_cases_reads_their_strides_in_any_form():
    """Where no one floor joins the embedding's sides (it pads past the multiple), the windows'
    sizes stay defined by cases: the padded tensor's strides, from torch's meta kernel in each
    case (``56*floor((W + 32)/28)*Max(1, 7*floor((H - 4)/28) + 7)``), are the standard ones
    written otherwise (its view was refused as of a non-contiguous tensor), and the batch that
    ``window_reverse`` computes, ``int()`` of a ratio whose cases fold into ``N``, is ``N`` (it
    was refused as "may be negative")."""
    model = ReferenceSwin(extra=4, shifts=(0,))
    assert assert_agrees(model, (3, "H", "W"), SIDES) == len(SIDES)


def test_the_reference_swin_backbone_analyzes_exactly_and_accepts_every_size():
    """The reference Swin backbone (tests/swin_reference.py): its layers set ``blk.H, blk.W``
    before each block, which symshape traces on its own by sides (an attribute holding the
    layer's traced size is a placeholder of the block's trace: it stopped the analysis with
    "forward takes another input"); its patch merging pads where ``H % 2 == 1 or W % 2 == 1``
    (one size on both sides: the side where neither is odd is read as both even); and the
    grid's strides after its patch embedding are one expression too (a flatten of them was a
    layout not followed, and the patch merging's view was refused). Each output is one
    expression, every size is valid as a scan of torch finds, and torch agrees."""
    from swin_reference import SwinTransformer

    model = SwinTransformer(embed_dim=8, depths=(2, 2), num_heads=(1, 2)).eval()
    analysis = symshape.analyze(model, (3, "H", "W"))
    # the model as it was (torch's own forwards below set the attributes)
    assert all(block.H is None for layer in model.layers for block in layer.blocks)
    assert [str(s) for s in analysis.output_shape] == [
        "(N, 8, floor((H + 3)/4), floor((W + 3)/4))", "(N, 16, floor((H + 7)/8), floor((W + 7)/8))"]
    assert members(analysis.valid_sizes(), ["H", "W"], 24) == scan(model, (3, "H", "W"), ["H", "W"], 24)
    assert assert_agrees(model, (3, "H", "W"), SIDES) == len(SIDES)


class EmbeddedGridFlattened(nn.Module):
    """The reference backbone's patch embedding (its output a transposed view of the normed
    tokens), flattened again and viewed: a view needs the strides."""

    def __init__(self):
        super().__init__()
        from swin_reference import PatchEmbed

        self.embed = PatchEmbed(embed_dim=8)

    def forward(self, x):
        x = self.embed(x).flatten(2)  # (N, C, L), its channels innermost
        return x.view(x.shape[0], -1)  # merges C and L: a view only where L == 1


def test_strides_that_differ_by_side_in_form_only_merge_into_one():
    """The embedding's sides (``H``, ``W`` padded or not) give the grid's strides in their own
    forms (``8*floor((W + 4)/4)`` where ``W % 4 != 0``, ``8*floor(W/4)`` elsewhere): merged as
    the sizes are, one expression (``8*floor((W + 3)/4)``), so the flatten after it is a view
    with known strides, and torch's view of that decides exactly where it runs (only where the
    grid is one patch; refused before, its strides not known). Against a scan of torch."""
    model = EmbeddedGridFlattened()
    valid = symshape.analyze(model, (3, "H", "W")).valid_sizes()
    assert members(valid, ["H", "W"], 12) == scan(model, (3, "H", "W"), ["H", "W"], 12) == {
        (h, w) for h in range(1, 5) for w in range(1, 5)}
    assert assert_agrees(model, (3, "H", "W"), SIDES) == 4  # (H, W) in (1, 4) x (2, 4)
