"""Objects of a model's own classes, and modules that are none of its submodules (issue 15:
transformers' language models with their key cache, as users call them).

A language model of transformers returns a ``DynamicCache`` (a list of layers, each holding the
keys and values of the positions so far) beside its hidden states, in a ``ModelOutput`` (a dict
whose fields are also attributes, None where not set); its attention updates the cache in place;
``LlamaForCausalLM`` reads ``outputs.last_hidden_state`` off its inner model's output; and
transformers wraps ``apply_rotary_pos_emb`` as a module of the kernels hub, installed in no model.
The classes below are those, in a few lines each. Every answer is checked against torch's
forwards.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import symshape
from oracle import assert_agrees, grid, members, scan


class Layer:
    """transformers' ``DynamicLayer``: keys and values made on the first update, then grown."""

    def __init__(self):
        self.is_initialized = False

    def update(self, k, v):
        if not self.is_initialized:
            self.keys = torch.tensor([], dtype=k.dtype, device=k.device)
            self.values = torch.tensor([], dtype=v.dtype, device=v.device)
            self.device = k.device
            self.is_initialized = True
        self.keys = torch.cat([self.keys, k], dim=-2)  # (a 1-D empty tensor: torch.cat leaves it out)
        self.values = torch.cat([self.values, v], dim=-2)
        return self.keys, self.values


class Cache:
    """transformers' ``DynamicCache``: one layer per attention block, and fields of no shape."""

    def __init__(self, n: int):
        self.layers = [Layer() for _ in range(n)]
        self.offloading = False

    def update(self, k, v, i: int):
        return self.layers[i].update(k, v)


@dataclasses.dataclass
class Output(collections.OrderedDict):
    """transformers' ``ModelOutput``: a dict of the fields that are set; each also an attribute."""

    last_hidden_state: torch.Tensor | None = None
    cache: Any = None
    hidden_states: Any = None

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is not None:
                self[f.name] = value

    def __getitem__(self, k):
        return dict(self.items())[k] if isinstance(k, str) else self.to_tuple()[k]

    def to_tuple(self):
        return tuple(self[k] for k in self.keys())


class Attention(nn.Module):
    def __init__(self, i: int, heads: int = 2, dim: int = 8):
        super().__init__()
        self.i, self.heads = i, heads
        self.qkv = nn.Linear(dim, 3 * dim)

    def forward(self, x, cache=None):  # (N, T, dim)
        n, t, d = x.shape
        q, k, v = self.qkv(x).view(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if cache is not None:
            k, v = cache.update(k, v, self.i)
        # transformers' sdpa: causal where the query has more than one position
        is_causal = q.shape[2] > 1 and getattr(self, "is_causal", True)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=is_causal)
        return out.transpose(1, 2).reshape(n, t, d)


class Decoder(nn.Module):
    """A decoder as transformers writes one: token ids in, a ModelOutput with its cache out."""

    def __init__(self, layers: int = 2, use_cache: bool = True, positions: int = 16, branch: bool = True):
        super().__init__()
        self.use_cache, self.branch = use_cache, branch
        self.embed = nn.Embedding(10, 8)
        self.pos = nn.Embedding(positions, 8)
        self.blocks = nn.ModuleList(Attention(i) for i in range(layers))

    def forward(self, ids):
        cache = Cache(len(self.blocks)) if self.use_cache else None
        h = self.embed(ids) + self.pos(torch.arange(ids.shape[1]))
        if self.branch and ids.shape[1] == 1:  # (a branch on the length: the model is traced once per side)
            h = h * 2
        for block in self.blocks:
            h = block(h, cache)
        return Output(last_hidden_state=h, cache=cache)


class CausalLM(nn.Module):
    """``LlamaForCausalLM``: the decoder's output read by attribute, a head, a new ModelOutput."""

    def __init__(self, **kwargs):
        super().__init__()
        self.model = Decoder(**kwargs)
        self.head = nn.Linear(8, 10)

    def forward(self, ids):
        outputs = self.model(ids)
        return Output(last_hidden_state=self.head(outputs.last_hidden_state), cache=outputs.cache,
                      hidden_states=outputs.hidden_states)


class IndexedLM(CausalLM):
    """GPT-2's and StarCoder's heads read their inner model's output by place and by name."""

    def forward(self, ids):
        outputs = self.model(ids)
        return Output(last_hidden_state=self.head(outputs[0]), cache=outputs["cache"])


TOKENS = symshape.Input(("T",), torch.long)


@pytest.mark.parametrize("make", [Decoder, CausalLM, lambda: CausalLM(use_cache=False), IndexedLM],
                         ids=["decoder", "causal LM", "causal LM without cache", "outputs[0]"])
def test_a_language_model_with_its_cache_agrees_with_torch(make):
    """Before, fx could not record the cache ("argument of type Cache"), nor the causal LM read
    ``outputs.last_hidden_state`` off the decoder's output (a dict to symshape), and both were
    refused; the position table bounds the length."""
    model = make().eval()
    analysis = symshape.analyze(model, TOKENS)
    assert analysis.valid_sizes().summary() == "T ∈ [1, 16]"
    assert members(analysis.valid_sizes(), ["T"], 20) == scan(model, TOKENS, ["T"], 20)
    assert assert_agrees(model, TOKENS, grid(["T"], [1, 2, 5, 16])) == 4


def test_the_caches_shapes_are_part_of_the_output():
    """The cache in the output is the shape of each of its tensors by field, through its list of
    layers (its flags, its device say nothing of shapes), as torch's own cache is compared."""
    analysis = symshape.analyze(CausalLM().eval(), TOKENS)
    n, t = analysis.batch, symshape.dims.size_symbol("T")
    layer = {"keys": (n, 2, t, 4), "values": (n, 2, t, 4)}
    assert analysis.output_shape == {"last_hidden_state": (n, t, 10), "cache": {"layers": (layer, layer)}}
    assert analysis.at(T=5).output_shape == {"last_hidden_state": (1, 5, 10),
                                             "cache": {"layers": ({"keys": (1, 2, 5, 4), "values": (1, 2, 5, 4)},) * 2}}


class Forking(Attention):
    """An attention block whose own Python branches on the length: traced side by side, as a
    call of its own, given the cache."""

    def forward(self, x, cache=None):
        if x.shape[1] % 2:
            x = x * 2
        return super().forward(x, cache)


def test_a_block_that_branches_and_updates_the_cache_makes_the_model_traced_by_sides():
    """Where only the block branches, it would be traced on its own (by sides), given the
    cache: it would update a copy, and the code after it would see the cache unchanged. The
    whole forward is traced by sides instead (transformers' Falcon and BART: the branch is in
    their sdpa attention)."""
    model = Decoder(branch=False).eval()
    model.blocks[1] = Forking(1)
    analysis = symshape.analyze(model, TOKENS)
    assert members(analysis.valid_sizes(), ["T"], 18) == scan(model, TOKENS, ["T"], 18)
    assert assert_agrees(model, TOKENS, grid(["T"], [1, 2, 3, 16])) == 4


class Flagged(Attention):
    """A block whose Python reads a buffer's value: fx cannot follow it, so it runs whole."""

    def __init__(self, i: int):
        super().__init__(i)
        self.register_buffer("flag", torch.tensor(True))

    def forward(self, x, cache=None):
        if self.flag.item():
            x = x * 1
        return super().forward(x, cache)


def test_a_cache_handed_to_a_call_run_on_its_own_is_refused_by_name():
    """A block run whole (under torch's meta kernels) given the cache it updates: refused,
    naming the object's class (no trace of the forward keeps it in one piece)."""
    model = Decoder(branch=False).eval()
    model.blocks[1] = Flagged(1)
    assert scan(model, TOKENS, ["T"], 6)  # (torch runs)
    with pytest.raises(symshape.UnsupportedOperation, match="type Cache"):
        symshape.analyze(model, TOKENS)


def test_a_block_that_branches_inside_a_model_traced_by_sides_agrees_with_torch():
    """Where the model itself branches, each of its sides is one trace of the whole forward,
    the block's branch decided on it too: the cache is updated in that trace, as in torch's."""
    model = Decoder().eval()
    model.blocks[1] = Forking(1)
    analysis = symshape.analyze(model, TOKENS)
    assert members(analysis.valid_sizes(), ["T"], 18) == scan(model, TOKENS, ["T"], 18)
    assert assert_agrees(model, TOKENS, grid(["T"], [1, 2, 3, 16])) == 4


class SelfHolding:
    def __init__(self, t):
        self.t, self.me = t, self


class ReturnsSelfHolding(nn.Module):
    def forward(self, x):
        return SelfHolding(x + 1)


def test_an_object_that_holds_itself_is_recorded_once():
    """Its fields that hold tensors: ``t``, and ``me`` (the object again, not followed twice)."""
    model = ReturnsSelfHolding()
    with pytest.raises((symshape.UnsupportedOperation, symshape.UntraceableModel), match="SelfHolding"):
        symshape.analyze(model, ("L",))


class TakesFirst(nn.Module):
    def forward(self, xs):
        return xs[0][:, 1:] * 2 if isinstance(xs, list) else xs["x"][:, 1:] * 2


class PassesItself(nn.Module):
    """A list (or a dict) that holds itself, handed to a submodule: the proof's shapes of the
    call's arguments, and the trace's record of which lists a call may change, each meet it
    once (they recursed without end: "torch gave <not called>")."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind, self.sub, self.proj = kind, TakesFirst(), nn.Linear(4, 2)

    def forward(self, x):  # (N, L, 4)
        if self.kind == "list":
            xs = [x]
            xs.append(xs)
        else:
            xs = {"x": x}
            xs["self"] = xs
        return self.proj(self.sub(xs))


@pytest.mark.parametrize("kind", ["list", "dict"])
def test_a_container_that_holds_itself_agrees_with_torch(kind):
    model = PassesItself(kind)
    assert assert_agrees(model, ("L", 4), grid(("L",), range(1, 7))) == 6  # (L = 1: an empty slice)


class Rotate(nn.Module):
    """transformers' ``apply_rotary_pos_emb`` as the kernels hub wraps it: a module of its own."""

    def forward(self, x):
        half = x.shape[-1] // 2
        return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


#: one instance for the whole process, installed in no model (as the hub's)
ROTATE = Rotate()


class Rotary(nn.Module):
    def __init__(self, branch: bool):
        super().__init__()
        self.branch = branch
        self.proj = nn.Linear(4, 4)

    def forward(self, x):  # (N, L, 4)
        x = self.proj(x)
        if self.branch and x.shape[1] > 3:  # (a branch: each side is traced)
            x = x[:, :3]
        return ROTATE(x) * x


@pytest.mark.parametrize("branch", [False, True], ids=["straight", "by sides"])
def test_a_module_installed_in_no_model_is_traced_as_the_models_code(branch):
    """fx knows no name for a module that is none of the model's submodules ("module is not
    installed as a submodule"), and the whole model ran under torch's meta kernels, its layers
    unseen; the module's forward is now traced as the model's own code: the Linear is a step
    (and, in one trace, the cat too), and every size agrees with torch."""
    model = Rotary(branch)
    analysis = symshape.analyze(model, ("L", 4))
    names = [s.name for s in analysis.steps]
    assert "proj" in names and (branch or any("cat" in n for n in names))
    assert members(analysis.valid_sizes(), ["L"], 8) == scan(model, ("L", 4), ["L"], 8)
    assert assert_agrees(model, ("L", 4), grid(["L"], [1, 3, 4, 7])) == 4


class EagerMask(nn.Module):
    """transformers' eager attention mask: a causal mask of 0 and the dtype's least float."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 8)

    def forward(self, ids):
        h = self.embed(ids)
        dtype, t = h.dtype, ids.shape[1]
        causal = torch.ones(t, t, dtype=torch.bool).tril()
        mask = torch.where(causal, torch.zeros((), dtype=dtype), torch.finfo(dtype).min)
        return torch.softmax(h @ h.transpose(1, 2) + mask, -1) @ h


def test_a_dtype_symshape_follows_is_a_plain_value():
    """``torch.finfo(h.dtype)`` takes no traced value (torch's C++ refused it: "requires a
    floating point input type"); where symshape follows the dtype, ``h.dtype`` is that dtype."""
    analysis = symshape.analyze(EagerMask(), TOKENS)
    assert "softmax" in [s.name for s in analysis.steps]  # (it ran whole under torch's meta kernels)
    assert analysis.valid_sizes().summary() == "any T"
    assert assert_agrees(EagerMask(), TOKENS, grid(["T"], [1, 2, 7])) == 3
