"""masked_fill's hand rule (symshape.rules.combine.masked_fill) against torch.

The mask and the tensor broadcast, the result is laid out contiguously, and the checks that do not
depend on the sizes (a bool mask, a 0-dim value tensor, a value the dtype can hold) are torch's
own, each a refusal at every size: random shapes of both (a size, a fixed size, 1, broadcast in
either direction and refused), dtypes and values, the method and the function, compared with real
forwards at every L in 1..10.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import symshape
from oracle import assert_agrees, grid, members, scan

#: a dim of the tensor or the mask: the input's size L, L // 2, a fixed size, or 1
_DIMS = st.sampled_from(["L", "L2", 3, 1])
_FINE_VALUES = [0.0, -100.0, float("-inf"), 3, True, "tensor0"]
_VALUES = st.sampled_from(_FINE_VALUES * 3 + [1e40, 2 + 1j, "tensor1"])
_DTYPES = st.sampled_from([None, None, torch.float32, torch.int64, torch.bool])
_MASKS = st.sampled_from(["bool"] * 4 + ["compare"] * 3 + [torch.float32, torch.uint8])


class Fill(nn.Module):
    """``x.masked_fill(mask, value)`` of tensors made from the input's size L (or the input
    itself, an untracked floating dtype), the mask a bool tensor, a comparison, or of another
    dtype."""

    def __init__(self, dims, mask_dims, dtype, mask, value, function):
        super().__init__()
        self.dims, self.mask_dims, self.dtype, self.mask = dims, mask_dims, dtype, mask
        self.value, self.function = value, function

    def _shape(self, dims, n):
        return [n if d == "L" else n // 2 if d == "L2" else d for d in dims]

    def forward(self, x):
        n = x.shape[-1]
        if self.dtype is None:
            t = x.new_zeros(self._shape(self.dims, n))
        else:
            t = torch.zeros(self._shape(self.dims, n), dtype=self.dtype)
        if self.mask == "compare":
            mask = torch.ones(self._shape(self.mask_dims, n)) > 0
        elif self.mask == "bool":
            mask = torch.ones(self._shape(self.mask_dims, n), dtype=torch.bool)
        else:
            mask = torch.ones(self._shape(self.mask_dims, n), dtype=self.mask)
        value = self.value
        if value == "tensor0":
            value = torch.tensor(-1.0)
        elif value == "tensor1":
            value = torch.ones(1)
        if self.function == "in place":  # (not the hand rule's: torch's meta kernel, on every side)
            out = t.clone().masked_fill_(mask, value)
        else:
            out = torch.masked_fill(t, mask, value) if self.function else t.masked_fill(mask, value)
        return out.reshape(1, -1)


@settings(max_examples=100, deadline=None)
@given(st.lists(_DIMS, min_size=1, max_size=3), st.lists(_DIMS, min_size=0, max_size=3), _DTYPES, _MASKS,
       _VALUES, st.sampled_from([True, False, False, "in place"]))
def test_masked_fill_agrees_with_torch(dims, mask_dims, dtype, mask, value, function):
    assume(any(d in ("L", "L2") for d in (*dims, *mask_dims)))  # (else fx runs it all on real tensors)
    model = Fill(dims, mask_dims, dtype, mask, value, function)
    assert_agrees(model, (1, "L"), grid(["L"], range(1, 11)))


def test_a_causal_mask_sliced_to_the_sequence_is_the_sequence_where_it_fits():
    """minGPT: ``att.masked_fill(self.bias[:, :, :T, :T] == 0, float('-inf'))`` -- the mask's
    ``Min(8, T)`` beside the attention's ``T`` broadcasts to ``T`` (the mask is 1 only where T
    is), and torch refuses T > 8; a hand rule's step, no case split."""

    class Causal(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("bias", torch.tril(torch.ones(8, 8)).view(1, 1, 8, 8))

        def forward(self, x):
            t = x.size(2)
            att = (x @ x.transpose(-2, -1)).unsqueeze(1)
            return att.masked_fill(self.bias[:, :, :t, :t] == 0, float("-inf")).flatten(1)

    model = Causal()
    analysis = symshape.analyze(model, (2, "T", 4))
    assert str(analysis.output_shape) == "(N, 2*T**2)"
    assert [s.rule for s in analysis.steps if s.name == "masked_fill"] == ["masked_fill"]
    assert members(analysis.valid_sizes(), ["T"], 20) == scan(model, (2, "T", 4), ["T"], 20)
    assert assert_agrees(model, (2, "T", 4), grid(["T"], range(1, 13))) == 8


@pytest.mark.parametrize("value, dtype, message", [
    (float("-inf"), torch.int64, "without overflow"),
    (1.0, None, None),
    ("tensor1", None, "0-dimensional value tensor"),
])
def test_a_refusal_that_does_not_depend_on_the_sizes_is_torchs_at_every_size(value, dtype, message):
    model = Fill(["L"], ["L"], dtype, "bool", value, False)
    if message is None:
        assert assert_agrees(model, (1, "L"), grid(["L"], range(1, 6))) == 5
        return
    with pytest.raises(symshape.InvalidInputSize, match=message):
        symshape.analyze(model, (1, "L"))
    assert assert_agrees(model, (1, "L"), grid(["L"], range(1, 6))) == 0
