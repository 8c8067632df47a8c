"""FractionalMaxPool: fixed ``_random_samples`` checked against the input as torch checks them,
and ``output_ratio`` as Python's ``int(in * ratio)`` of a double (any ratio, not only short
binary fractions)."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import symshape
from oracle import torch_runs


@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("rows,channels,last", [(2, 3, None), (1, 3, None), (2, 4, None), (2, 3, 1)])
def test_fixed_random_samples_are_checked_as_torch_checks_them(d, rows, channels, last):
    samples = torch.rand(rows, channels, last or d)
    pool = {2: nn.FractionalMaxPool2d, 3: nn.FractionalMaxPool3d}[d](2, output_size=3, _random_samples=samples)
    shape = (3, *("D", "H", "W")[3 - d:])
    for batch in (1, 2, 3):
        try:
            valid = symshape.analyze(pool, shape).valid_sizes(batch=batch)
        except symshape.InvalidInputSize:
            valid = None
        for n in (3, 4, 5, 9):
            sizes = dict.fromkeys(("D", "H", "W")[3 - d:], n)
            x = torch.rand(batch, 3, *sizes.values())
            try:
                pool(x)
                ran = True
            except RuntimeError:
                ran = False
            assert (valid is not None and valid.contains(**sizes)) == ran, (d, rows, channels, last, batch, n)


def test_functional_random_samples_and_unbatched_input():
    class Pool(nn.Module):
        def __init__(self, rows):
            super().__init__()
            self.register_buffer("samples", torch.rand(rows, 3, 2))

        def forward(self, x):
            return F.fractional_max_pool2d(x, 2, output_size=3, _random_samples=self.samples)

    for rows in (1, 2):
        a = symshape.analyze(Pool(rows), (3, "H", "W"))
        assert a.valid_sizes(batch=2).is_empty == (rows < 2)
        assert a.verify(samples=8).ok


@pytest.mark.parametrize("ratio", [0.3, 0.35, 1 / 3, 0.6, 0.5])
def test_any_output_ratio_is_pythons_int_of_a_double_product(ratio):
    pool = nn.FractionalMaxPool2d(2, output_ratio=(ratio, ratio))
    a = symshape.analyze(pool, (1, "H", "W"))
    for h in range(1, 120):
        sizes = {"H": h, "W": h + 3}
        if torch_runs(pool, (1, "H", "W"), sizes):
            assert tuple(a.at(**sizes).output_shape[-2:]) == tuple(pool(torch.rand(1, 1, h, h + 3)).shape[-2:])
        else:
            with pytest.raises(symshape.InvalidInputSize):
                a.at(**sizes)
