"""chunk() pieces whose number depends on the size (``x.chunk(3)`` of 4 rows is 2 pieces, of 1
row 1): iterated, counted, indexed from the end and unpacked exactly as torch returns them, or
refused by name -- never the missing pieces as empty tensors."""

import pytest
import torch
import torch.nn as nn

import symshape
from oracle import assert_agrees, grid


class Unpacked(nn.Module):
    def forward(self, x):
        a, b, c = x.chunk(3, dim=2)
        return a.sum(-1) + b.sum(-1) + c.sum(-1)


class Iterated(nn.Module):
    def forward(self, x):
        return torch.stack([p.sum(-1) for p in x.chunk(3, dim=2)], 1)


class Counted(nn.Module):
    def forward(self, x):
        return len(x.chunk(3, dim=2)) * x


class Last(nn.Module):
    def __init__(self, k: int, j: int):
        super().__init__()
        self.k, self.j = k, j

    def forward(self, x):
        return x.chunk(self.k, dim=2)[-self.j] + 1


class Listed(nn.Module):
    def forward(self, x):
        return torch.cat(list(x.chunk(4, dim=2))[1:], 2)


@pytest.mark.parametrize("model", [Unpacked(), Iterated(), Counted(), Last(3, 1), Last(4, 2), Last(5, 3), Listed()],
                         ids=lambda m: type(m).__name__ + (f"{m.k}-{m.j}" if isinstance(m, Last) else ""))
def test_pieces_are_the_ones_torch_returns(model):
    assert assert_agrees(model, (1, "L"), grid(["L"], range(1, 40))) > 0


class Reversed(nn.Module):
    def forward(self, x):
        return torch.cat(x.chunk(3, dim=2)[::-1], 2)


class Stacked(nn.Module):
    def forward(self, x):
        return torch.stack(x.chunk(3, dim=2), 0)


@pytest.mark.parametrize("model,op", [(Reversed(), "getitem"), (Stacked(), "torch.stack")])
def test_what_needs_the_count_inside_one_op_is_refused_by_name(model, op):
    with pytest.raises(symshape.UnsupportedOperation, match=op) as e:
        symshape.analyze(model, (1, "L"))
    assert "depends on the" in str(e.value)


class Returned(nn.Module):
    """The forward returns chunk()'s tuple itself: as many shapes as torch returns pieces."""

    def forward(self, x):
        return x.chunk(5, dim=2)


def test_a_returned_chunk_tuple_has_the_pieces_torch_returns():
    a = symshape.analyze(Returned(), (2, "L"))
    for n in range(1, 30):
        want = tuple(tuple(p.shape) for p in Returned()(torch.zeros(1, 2, n)))
        assert a.at(L=n).output_shape == want, n
    assert a.verify(sizes=[{"L": n} for n in range(1, 12)]).ok


class TensorSplit(nn.Module):
    def __init__(self, *args):
        super().__init__()
        self.args = args

    def forward(self, x):
        return x.tensor_split(*self.args)


@pytest.mark.parametrize("args", [(3, 1), (3, -1), ((2, 4), -1)])
def test_tensor_split_of_symbolic_sizes_agrees_with_torch(args):
    """torch's meta kernel answers (no hand rule); its strides come back as plain ints in places,
    which crashed the merging of its sides (an AttributeError) before."""
    a = symshape.analyze(TensorSplit(*args), ("A", "B", "C"), batch=None)
    for sizes in ({"A": 5, "B": 5, "C": 5}, {"A": 1, "B": 4, "C": 7}, {"A": 6, "B": 2, "C": 3}, {"A": 9, "B": 9, "C": 1}):
        want = tuple(tuple(p.shape) for p in TensorSplit(*args)(torch.zeros(*sizes.values())))
        assert a.at(**sizes).output_shape == want, sizes
