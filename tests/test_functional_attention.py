"""``F.multi_head_attention_forward`` (WavLM's attention, custom encoders) by its hand rule,
against torch: packed and separate projections, other key and value widths, 2-D and 3-D
attention masks and padding masks (some of the wrong size: torch refuses those sizes), weights
averaged or not, batched and unbatched."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import symshape
from oracle import assert_agrees

SIZES = [{"L": l, "S": s} for l, s in ((1, 1), (3, 5), (4, 4), (6, 2))]


class FunctionalAttention(nn.Module):
    def __init__(self, embed=8, heads=2, kdim=8, vdim=8, separate=False, mask=None, padding=False, extra=0,
                 need_weights=True, average=True, out=8, batched=True):
        super().__init__()
        self.embed, self.heads, self.mask, self.padding, self.extra = embed, heads, mask, padding, extra
        self.batched = batched
        self.separate, self.need_weights, self.average = separate or kdim != embed or vdim != embed, need_weights, average
        self.q = nn.Parameter(torch.randn(embed, embed) / 4)
        self.k = nn.Parameter(torch.randn(embed, kdim) / 4)
        self.v = nn.Parameter(torch.randn(embed, vdim) / 4)
        self.packed = nn.Parameter(torch.randn(3 * embed, embed) / 4)
        self.bias = nn.Parameter(torch.zeros(3 * embed))
        self.out = nn.Linear(embed, out)
        self.mix = nn.Parameter(torch.randn(kdim, vdim))

    def forward(self, x, y):
        q, k = x.transpose(0, 1), y.transpose(0, 1)  # (L, N, E), (S, N, kdim)
        v = k if self.v.shape[1] == self.k.shape[1] else k @ self.mix
        if not self.batched:  # (L, E) and (S, kdim): the first sample's
            q, k, v = q[:, 0], k[:, 0], v[:, 0]
        length, batch, source = q.shape[0], q.shape[1] if self.batched else 1, k.shape[0]
        lead = (batch * self.heads,) if self.batched else (self.heads,)
        mask = None
        if self.mask == 2:
            mask = torch.zeros(length + self.extra, source)
        elif self.mask == 3:
            mask = torch.zeros(*lead, length, source + self.extra)
        rows = (batch,) if self.batched else ()
        padding = torch.zeros(*rows, source + (self.extra if self.mask is None else 0), dtype=torch.bool) \
            if self.padding else None
        extra = dict(use_separate_proj_weight=True, q_proj_weight=self.q, k_proj_weight=self.k,
                     v_proj_weight=self.v) if self.separate else {}
        out, weights = F.multi_head_attention_forward(
            q, k, v, self.embed, self.heads, torch.empty([0]) if self.separate else self.packed, self.bias,
            None, None, False, 0.0, self.out.weight, self.out.bias, training=False, key_padding_mask=padding,
            need_weights=self.need_weights, attn_mask=mask, average_attn_weights=self.average, **extra)
        return out if weights is None else (out, weights)


@settings(max_examples=12, deadline=None)
@given(st.fixed_dictionaries({
    "heads": st.sampled_from([1, 2, 4]), "kdim": st.sampled_from([8, 5]), "vdim": st.sampled_from([8, 3]),
    "separate": st.booleans(), "mask": st.sampled_from([None, 2, 3]), "padding": st.booleans(),
    "extra": st.sampled_from([0, 0, 1]), "need_weights": st.booleans(), "average": st.booleans(),
    "out": st.sampled_from([8, 6]), "batched": st.booleans()}))
def test_functional_attention_agrees_with_torch(config):
    model = FunctionalAttention(**config)
    accepted = assert_agrees(model, (("L", 8), ("S", config["kdim"])), SIZES)
    assert accepted == (0 if config["extra"] and (config["mask"] or config["padding"]) else len(SIZES))


def test_the_rule_answers_layer_by_layer_with_the_masks_sizes():
    a = symshape.analyze(FunctionalAttention(mask=3, padding=True, heads=4), (("L", 8), ("S", 8)))
    step = next(s for s in a.steps if s.op == "F.multi_head_attention_forward")
    assert step.rule == "multi_head_attention_forward"
    assert [str(d) for d in step.output[1]] == ["N", "L", "S"]
    wrong = symshape.analyze(FunctionalAttention(mask=2, extra=1), (("L", 8), ("S", 8)))
    assert wrong.valid_sizes().is_empty  # a 2-D mask one row too long: torch refuses every size
