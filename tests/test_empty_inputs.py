"""A fixed dim of 0 in ``input_shape`` (an empty tensor): analyzed, and checked against torch.

torch runs most layers on a batch of 0, and refuses empty non-batch dims layer by layer; each
model below is analyzed with one fixed 0 dim and compared with torch's forward at every size of
a small grid (its output shape, or its refusal)."""

import pytest
import torch
from hypothesis import given, settings, strategies as st
import torch.nn as nn
import torch.nn.functional as F

import symshape


class Lambda(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


# (model, input_shape, batch): each input_shape has a fixed 0
MODELS = [
    (nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.ReLU(), nn.MaxPool2d(2)), (0, 3, "H", "W"), None),
    (nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten()), (0, 3, "H", "W"), None),
    (nn.Conv2d(0, 4, 3), (0, "H", "W"), "N"),  # empty channels: torch gives no output channels
    (nn.Conv1d(0, 4, 1, padding=1), (0, "L"), "N"),
    (nn.Sequential(nn.ConstantPad2d((0, 0, -3, 0), 0.0), nn.Conv2d(3, 4, 1, padding=1)), (0, 3, "H", "W"), None),
    (nn.Sequential(nn.ConstantPad2d((0, 0, -3, 0), 0.0), nn.Conv2d(3, 4, 1, padding=1)), (3, "H", "W"), "N"),
    (nn.MaxPool2d(3, stride=2, ceil_mode=True), (0, "H", "W"), None),
    (nn.AdaptiveAvgPool2d((2, 3)), (0, "H", "W"), "N"),
    (nn.FractionalMaxPool2d(2, output_size=(3, 3), _random_samples=torch.full((1, 4, 2), 0.5)), (0, 4, "H", "W"), None),
    (nn.FractionalMaxPool3d(2, output_size=(2, 2, 2), _random_samples=torch.full((1, 1, 3), 0.5)), (0, 1, "T", "H", "W"), None),
    (nn.FractionalMaxPool2d(2, output_size=(3, 3), _random_samples=torch.full((2, 1, 2), 0.5)), (2, 0, "H", "W"), None),
    (nn.Upsample(scale_factor=2), (0, 3, "H", "W"), None),
    (Lambda(lambda x: x.view(-1, x.shape[-1])), (0, "H", "W"), "N"),
    (Lambda(lambda x: x.reshape(x.shape[0], -1)), (0, "H", "W"), "N"),  # -1 beside a 0: torch refuses
    (Lambda(lambda x: F.pad(x, (1, 2)).flatten(1)), (0, "L"), "N"),
    (Lambda(lambda x: torch.cat([x, x], dim=1)[:, :, 1:]), ("C", 0, "L"), None),
    (Lambda(lambda x: x.unfold(2, 3, 2)), (2, 0, "L"), None),
    (Lambda(lambda x: x @ x.transpose(-2, -1)), (0, "H", "W"), None),
]


def _torch(model, shape):
    try:
        with torch.no_grad():
            return tuple(model(torch.zeros(shape)).shape)
    except Exception:
        return None


@pytest.mark.parametrize("model, input_shape, batch", MODELS, ids=[f"m{i}" for i in range(len(MODELS))])
def test_a_fixed_empty_dim_agrees_with_torch(model, input_shape, batch):
    model.eval()
    names = [d for d in input_shape if isinstance(d, str)]
    try:
        analysis = symshape.analyze(model, input_shape, batch=batch)
    except symshape.SymshapeError:  # refused: torch must refuse every size of the grid then
        analysis = None
    checked = runs = 0
    for v in range(1, 12):
        sizes = {n: v + i for i, n in enumerate(names)}
        if batch:
            sizes["N"] = 2
        shape = ((2,) if batch else ()) + tuple(sizes[d] if isinstance(d, str) else d for d in input_shape)
        want = _torch(model, shape)
        runs += want is not None
        if analysis is None:
            assert want is None, f"symshape refused, torch runs at {shape}: {want}"
            continue
        try:
            got = tuple(int(d) for d in analysis.at(**sizes).output_shape)
        except symshape.InvalidInputSize:
            got = None
        assert got == want, f"at {shape}: torch {want}, symshape {got}"
        checked += 1
    assert analysis is None or checked == 11


def test_empty_dims_torch_runs_are_analyzed():
    """The grid above is no vacuous check: most of these models run on empty tensors, and
    symshape answers for them."""
    answered = 0
    for model, input_shape, batch in MODELS:
        try:
            symshape.analyze(model.eval(), input_shape, batch=batch)
            answered += 1
        except symshape.SymshapeError:
            pass
    assert answered >= len(MODELS) - 2


def test_input_shape_takes_zero_but_not_negative_sizes():
    with pytest.raises(symshape.InvalidArgument, match="int >= 0, got -1"):
        symshape.analyze(nn.Flatten(), (-1, "H"))
    a = symshape.analyze(nn.Flatten(), (0, "H"))
    assert a.at(N=3, H=5).output_shape == (3, 0)


class _CatWithEmpty(nn.Module):
    """torch.cat of the input's pieces and 1-D tensors with no element (a key cache before its
    first entry, ``torch.tensor([])``), along ``dim``."""

    def __init__(self, order: tuple, dim: int):
        super().__init__()
        self.order, self.dim = order, dim

    def forward(self, x):
        parts = {"x": x, "half": x[:, :, : x.shape[2] // 2], "empty": torch.tensor([], device=x.device)}
        return torch.cat([parts[p] for p in self.order], dim=self.dim)


@settings(max_examples=40, deadline=None)
@given(order=st.lists(st.sampled_from(["x", "half", "empty"]), min_size=1, max_size=4).map(tuple),
       dim=st.integers(-4, 3))
def test_a_one_dim_tensor_with_no_element_is_left_out_of_cat_as_torch_leaves_it(order, dim):
    model = _CatWithEmpty(order, dim)
    sizes = [{"H": h, "W": w} for h in (1, 2, 5) for w in (1, 3)]
    from oracle import assert_agrees

    assert_agrees(model, (3, "H", "W"), sizes)
