"""The generic rule (symshape.meta) against torch: random chains of ops without a hand rule, with
random parameters, compared with real forward passes on random sizes (refused ones included)."""

from __future__ import annotations

import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import symshape
from oracle import assert_agrees

EXAMPLES = int(os.environ.get("SYMSHAPE_META_EXAMPLES", "30"))


def _ops(draw) -> list:
    """(name, fn) pairs; each fn takes and returns a 4-D tensor (N, C, H, W)."""
    menu = []
    k = draw(st.integers(-2, 3))
    menu.append((f"pad_constant({k})", lambda x, k=k: F.pad(x, (k, max(k, 0), 0, 1))))
    p = draw(st.integers(1, 3))
    menu.append((f"pad_reflect({p})", lambda x, p=p: F.pad(x, (p, 0, p, p), mode="reflect")))
    menu.append((f"pad_replicate({p})", lambda x, p=p: F.pad(x, (0, p, 1, 0), mode="replicate")))
    s = draw(st.integers(-3, 3))
    menu.append((f"roll({s})", lambda x, s=s: torch.roll(x, s, -1)))
    r = draw(st.integers(1, 3))
    menu.append((f"repeat({r})", lambda x, r=r: x.repeat(1, 1, r, 1)))
    menu.append(("flip", lambda x: x.flip(-2)))
    n = draw(st.integers(1, 6))
    menu.append((f"matmul_fixed({n})", lambda x, n=n: x @ torch.ones(n, 3)))
    menu.append(("matmul_self", lambda x: x @ x.transpose(-1, -2)))
    menu.append(("batch_norm_train", lambda x: F.batch_norm(x, None, None, training=True)))
    menu.append(("group_norm", lambda x: F.group_norm(x, 1)))
    menu.append(("instance_norm", lambda x: F.instance_norm(x)))
    menu.append(("sdpa", lambda x: F.scaled_dot_product_attention(x, x, x)))
    d = draw(st.integers(1, 3))
    menu.append((f"diff({d})", lambda x, d=d: torch.diff(x, n=d, dim=-1)))
    menu.append(("add_fixed_col", lambda x: x + torch.zeros(1, 1, 1, 4)))
    menu.append(("unfold", lambda x: x.unfold(-1, 2, 2).flatten(-2)))
    picks = draw(st.lists(st.integers(0, len(menu) - 1), min_size=1, max_size=3))
    return [menu[i] for i in picks]


class Chain(nn.Module):
    def __init__(self, ops):
        super().__init__()
        self.ops = ops

    def forward(self, x):
        for _, op in self.ops:
            x = op(x)
        return x

    def __repr__(self) -> str:
        return "Chain(" + ", ".join(name for name, _ in self.ops) + ")"


@settings(max_examples=EXAMPLES)
@given(st.data())
def test_random_chains_of_ops_without_a_hand_rule_agree_with_torch(data):
    ops = data.draw(st.builds(lambda: None).flatmap(lambda _: st.composite(lambda draw: _ops(draw))()))
    sizes = data.draw(st.lists(st.fixed_dictionaries({"H": st.integers(1, 9), "W": st.integers(1, 9)}),
                               min_size=3, max_size=6))
    model = Chain(ops)
    try:
        assert_agrees(model, (2, "H", "W"), sizes)
    except symshape.UnsupportedOperation as e:
        # refused by name (more than MAX_LEAVES sides, a kernel that needs concrete sizes): a gap,
        # never a wrong answer; it must name torch's meta kernel as the reason
        assert "torch's meta kernel" in str(e), e
