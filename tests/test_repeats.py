"""Equal module calls computed once: a call of a module with the same fingerprint, the same
arguments and the same facts as one traced before (the blocks of a ViT) is one node of the graph
and takes that call's steps, renamed; the proof compares its output with torch's. Checked against
the analysis computed without it, and against torch."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import symshape
from oracle import assert_agrees, grid
from symshape import engine, verify
from symshape.errors import TraceMismatch
from symshape.trace import REPEAT, REPEAT_CHECK


class Block(nn.Module):
    """Functions, methods and layers on a (N, C, H, W) input, shape kept."""

    traced = 0

    def __init__(self, c: int = 4):
        super().__init__()
        self.norm = nn.LayerNorm(c)
        self.fc = nn.Linear(c, c)

    def forward(self, x):
        if isinstance(x, torch.fx.Proxy):  # (traced: not torch's own forward of the model)
            type(self).traced += 1
        n, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2)
        t = t + self.fc(self.norm(t))
        return t.transpose(1, 2).reshape(n, c, h, w)


class Stack(nn.Module):
    def __init__(self, blocks: int = 4, branch: bool = False):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, stride=2)
        self.blocks = nn.Sequential(*(Block() for _ in range(blocks)))
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.head = nn.Linear(16, 3)
        self.branch = branch

    def forward(self, x):
        if self.branch and x.shape[-1] % 2 == 1:  # the model itself branches: traced once per side
            x = F.pad(x, (0, 1))
        x = self.blocks(self.stem(x))
        return self.head(self.pool(x).flatten(1))


def _plain(steps):
    """Each step as computed; a function's by its module (fx numbers its nodes across the graph:
    ``blocks.1.flatten_1`` traced anew, ``blocks.1.flatten`` as the copy of ``blocks.0.flatten``)."""
    return [(s.name if s.kind == "module" else s.name.rpartition(".")[0], s.op, s.inputs, s.output, s.rule,
             s.requirements, s.roundings) for s in steps]


def test_equal_blocks_are_traced_once_and_named_each_for_itself():
    model = Stack().eval()
    before = Block.traced
    a = symshape.analyze(model, (1, "H", "W"), prove=False)
    assert Block.traced - before == 1  # blocks.1 to blocks.3 repeat blocks.0
    copies = [s for s in a.steps if s.copy_of]
    assert {s.name.split(".")[1] for s in copies} == {"1", "2", "3"}
    fc3 = next(s for s in a.steps if s.name == "blocks.3.fc")
    assert fc3.copy_of == "blocks.0.fc" and fc3.module is model.blocks[3].fc
    assert a.fixed["blocks.3.fc"].layer == "blocks.3.fc"
    assert [n.target for n in a.graph.nodes if REPEAT in n.meta] == ["blocks.1", "blocks.2", "blocks.3"]


@pytest.mark.parametrize("branch", [False, True])
def test_the_copies_are_the_steps_traced_anew(monkeypatch, branch):
    copied = symshape.analyze(Stack(branch=branch).eval(), (1, "H", "W"))
    assert any(s.copy_of for s in copied.steps) or branch  # (on the sides, in the branching step)
    monkeypatch.setattr(engine.Propagator, "repeat_key", lambda *a: None)
    fresh = symshape.analyze(Stack(branch=branch).eval(), (1, "H", "W"))
    assert _plain(copied.steps) == _plain(fresh.steps)
    assert copied.in_features == fresh.in_features
    assert str(copied.valid_sizes()) == str(fresh.valid_sizes())
    assert_agrees(Stack(branch=branch).eval(), (1, "H", "W"), grid(["H", "W"], [3, 4, 5, 8, 9]))


class Checked(nn.Module):
    """Equal blocks with a check between them (a conv of kernel 5 beside the path: the map at
    least 5 x 5, a fact the first block was traced without)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, stride=2)
        self.a, self.b = Block(), Block()
        self.probe = nn.Conv2d(4, 4, 5)

    def forward(self, x):
        x = self.a(self.stem(x))
        x = x + self.probe(x).mean((2, 3), keepdim=True)
        return self.b(x)


def test_a_call_after_more_checks_repeats_one_traced_under_fewer(monkeypatch):
    """``b`` runs where the probe's check holds too: ``a``'s steps, computed without that fact,
    are exact there (the facts only let a rule drop a case or a check they imply), so ``b``
    repeats them; the same answers as tracing ``b`` anew, and torch's."""
    before = Block.traced
    symshape.analyze(Checked().eval(), (1, "H", "W"), prove=False)
    assert Block.traced - before == 1
    a = symshape.analyze(Checked().eval(), (1, "H", "W"))  # (its proof runs the blocks)
    assert {s.name.split(".")[0] for s in a.steps if s.copy_of} == {"b"}
    monkeypatch.setattr(engine.Propagator, "_under_fewer_facts", lambda *a: [])
    fresh = symshape.analyze(Checked().eval(), (1, "H", "W"))
    assert not any(s.copy_of for s in fresh.steps)
    assert _plain(a.steps) == _plain(fresh.steps)
    assert str(a.valid_sizes()) == str(fresh.valid_sizes())
    assert_agrees(Checked().eval(), (1, "H", "W"), grid(["H", "W"], [3, 5, 9, 10, 11, 12, 13, 20]))


def test_a_call_with_other_arguments_is_traced():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = Block(), Block()
            self.down = nn.MaxPool2d(2)

        def forward(self, x):
            return self.b(self.down(self.a(x)))  # b gets another shape: traced on its own

    before = Block.traced
    a = symshape.analyze(Twice().eval(), (4, "H", "W"), prove=False)
    assert Block.traced - before == 2 and not any(s.copy_of for s in a.steps)


def test_the_proof_compares_a_repeating_calls_output():
    a = symshape.analyze(Stack().eval(), (1, "H", "W"), prove=False)
    assert verify.prove(a) == "H=224, W=256"
    node = next(n for n in a.graph.nodes if REPEAT in n.meta)
    steps, shape = node.meta[REPEAT_CHECK]
    node.meta[REPEAT_CHECK] = (steps, (*shape[:-1], shape[-1] + 1))  # what the copy says, made wrong
    with pytest.raises(TraceMismatch, match="blocks.1"):
        verify.prove(a)
    with torch.no_grad():
        assert tuple(Stack().eval()(torch.zeros(1, 1, 9, 9)).shape) == a.at(H=9, W=9).output_shape


#: how many _Sly modules the forward has called so far: state outside the modules, so their
#: fingerprints do not show it
_CALLS = {"n": 0}


class _Sly(nn.Module):
    def forward(self, x):
        _CALLS["n"] += 1
        return x[:, : 6 - 2 * _CALLS["n"]] * 2  # the first call keeps 4 channels, the second 2


class _TwoSly(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = _Sly(), _Sly()

    def forward(self, x):
        _CALLS["n"] = 0
        return torch.cat([self.a(x), self.b(x)], 1)


def test_a_copy_torch_contradicts_never_reaches_the_user():
    """Two modules equal by fingerprint that compute differently (what they read is outside them):
    the second call's copy is wrong, the proof finds it, and the analysis starts again with that
    module run whole (here its count of calls then needs the model's own forward: the model runs
    whole, under torch's meta kernels)."""
    a = symshape.analyze(_TwoSly().eval(), (6, "L"))
    assert a.output_shape == (symshape.dims.batch_symbol(), 6, symshape.dims.size_symbol("L"))
    assert not any(s.copy_of for s in a.steps)
    assert_agrees(_TwoSly().eval(), (6, "L"), [{"L": n} for n in (1, 2, 5)])


class _Crop(nn.Module):
    def __init__(self, k: int):
        super().__init__()
        self.k = k

    def forward(self, x):
        return x[..., : self.k] + 1


def test_a_module_of_the_same_class_with_other_attributes_is_traced():
    """Same class, same arguments, another attribute (another fingerprint): not a repeat."""
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c = _Crop(2), _Crop(3), _Crop(2)

        def forward(self, x):
            return torch.cat([self.a(x), self.b(x), self.c(x)], -1)

    a = symshape.analyze(Two().eval(), (2, "L"))
    assert a.at(L=5).output_shape == (1, 2, 7) and a.at(L=1).output_shape == (1, 2, 3)
    assert {s.name.split(".")[0] for s in a.steps if s.copy_of} == {"c"}  # c repeats a, b does not
    assert_agrees(Two().eval(), (2, "L"), [{"L": n} for n in (1, 2, 3, 5)])


class Tree(nn.Module):
    """DLA's tree: a call appends what it computed to the list its caller gave it, and the
    caller's root concatenates the list afterwards (the two leaves are equal calls: the same
    class, and lists holding the same values)."""

    def __init__(self, c: int = 4):
        super().__init__()
        self.pre = nn.Conv2d(c, c, 3, padding=1)  # (the checks of the leaves' convolutions, made before them)
        self.leaf1, self.leaf2 = Leaf(c), Leaf(c)
        self.root = nn.Conv2d(5 * c, c, 1)

    def forward(self, x):
        x = self.pre(x)
        first, second = [x], [x]
        x1 = self.leaf1(x, first)
        x2 = self.leaf2(x, second)
        return self.root(torch.cat([x1 + x2, first[-1], second[-1]], 1))


class Leaf(nn.Module):
    traced = 0

    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x, children: list):
        type(self).traced += 1
        y = self.conv(x)
        children.append(torch.cat([y, y], 1))
        return y


def test_a_call_that_changes_a_list_it_was_given_is_traced_each_time():
    """One node for the second call would leave the caller's second list without what the call
    appended (the root's concatenation 16 channels, not 20): both calls are traced, and torch
    agrees."""
    model = nn.Sequential(nn.Conv2d(1, 4, 3), Tree()).eval()
    Leaf.traced = 0
    symshape.analyze(model, (1, "H", "W"), prove=False)
    assert Leaf.traced == 2
    analysis = symshape.analyze(model, (1, "H", "W"))
    assert not any(s.copy_of for s in analysis.steps)
    assert analysis.output_shape[1] == 4
    assert assert_agrees(model, (1, "H", "W"), grid(["H", "W"], [2, 3, 9])) == 4


class SizedBlock(nn.Module):
    """A block given its input's spatial size (MViTv2's attention takes ``feat_size``)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x, size):
        h, w = size
        return self.fc(x.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(x.shape[0], 4, h, w)


class SizedStack(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3)
        self.blocks = nn.ModuleList(SizedBlock() for _ in range(3))

    def forward(self, x):
        x = self.stem(x)
        for block in self.blocks:
            x = block(x, x.shape[-2:])
        return x


def test_a_size_given_to_a_call_is_not_taken_for_a_list_it_could_change():
    """``x.shape[-2:]`` passed to a block is a traced value that answers isinstance as a tuple:
    the check for lists a call changes leaves it alone (iterating it would add nodes to the
    graph, and took every such call for one that changes its arguments: no call repeated)."""
    import operator

    analysis = symshape.analyze(SizedStack().eval(), (1, "H", "W"))
    unused = [n.name for n in analysis.graph.nodes
              if n.op == "call_function" and n.target is operator.getitem and not n.users]
    assert not unused
    assert "2" in {s.name.split(".")[1] for s in analysis.steps if s.copy_of}  # (the first's checks are facts for the second)
    assert assert_agrees(SizedStack().eval(), (1, "H", "W"), grid(["H", "W"], [2, 3, 8])) == 4


class _Sized(nn.Module):
    """MViTv2's attention: takes and returns the feature map's size beside the tokens, the size
    a list of traced values, the output a tuple (with a constant in it)."""

    traced = 0

    def __init__(self, c: int = 4, stride: int = 1):
        super().__init__()
        self.fc = nn.Linear(c, c)
        self.pool = nn.MaxPool2d(stride + 1, stride, ceil_mode=True) if stride > 1 else nn.Identity()

    def forward(self, x, size):
        type(self).traced += 1
        h, w = size
        n, _, c = x.shape
        grid = self.pool(x.transpose(1, 2).reshape(n, c, h, w))
        size = [grid.shape[2], grid.shape[3]]
        return self.fc(grid.flatten(2).transpose(1, 2)), size, 3


class _SizedStack(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, stride=2)
        self.embed = nn.Linear(4, 4)
        self.blocks = nn.ModuleList([_Sized(), _Sized(), _Sized(stride=2), _Sized(), _Sized()])
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        x = self.stem(x)
        size = [x.shape[2], x.shape[3]]
        x = self.embed(x.flatten(2).transpose(1, 2))  # (as each block's output: the same layout)
        for block in self.blocks:
            out = block(x, size)
            assert isinstance(out, tuple) and len(out) == 3 and isinstance(out[1], list) and out[2] == 3
            x, size, _ = out
        return self.head(x.mean(1) * size[0] * size[1])


def test_a_call_that_returns_a_tensor_and_its_size_repeats():
    """A call whose output is tuples and lists of tensors, sizes and constants repeats, and
    Python gets it in the form the module returned it (a tuple, a list, the constant)."""
    before = _Sized.traced
    a = symshape.analyze(_SizedStack().eval(), (1, "H", "W"), prove=False)
    assert _Sized.traced - before == 3  # blocks.1 repeats blocks.0, blocks.4 blocks.3
    assert [n.target for n in a.graph.nodes if REPEAT in n.meta] == ["blocks.1", "blocks.4"]
    assert verify.prove(a)
    assert_agrees(_SizedStack().eval(), (1, "H", "W"), grid(["H", "W"], [3, 4, 5, 8, 9, 12]))


def test_a_repeated_tuple_is_what_tracing_it_anew_gives(monkeypatch):
    copied = symshape.analyze(_SizedStack().eval(), (1, "H", "W"))
    monkeypatch.setattr(engine.Propagator, "repeat_key", lambda *a: None)
    fresh = symshape.analyze(_SizedStack().eval(), (1, "H", "W"))
    assert str(copied.formula()) == str(fresh.formula())
    assert str(copied.valid_sizes()) == str(fresh.valid_sizes())
    assert copied.output_shape == fresh.output_shape


def test_the_proof_compares_each_item_of_a_repeated_tuple():
    a = symshape.analyze(_SizedStack().eval(), (1, "H", "W"), prove=False)
    node = next(n for n in a.graph.nodes if REPEAT in n.meta)
    steps, (shape, size, three) = node.meta[REPEAT_CHECK]
    node.meta[REPEAT_CHECK] = (steps, (shape, (size[0], size[1] + 1), three))  # the size made wrong
    with pytest.raises(TraceMismatch, match="blocks.1"):
        verify.prove(a)


class _Passes(nn.Module):
    """Returns the list it was given: the caller's own list, which a new one would not be."""

    def forward(self, x, sizes):
        return x * 2, sizes


class _Appends(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = _Passes(), _Passes()

    def forward(self, x):
        sizes = [x.shape[-1]]
        _, first = self.a(x, sizes)
        y, second = self.b(x, sizes)  # equal arguments: would repeat a's call
        second.append(x.shape[-1])  # ``sizes`` holds 2 now
        return y[..., : len(sizes)]


def test_a_list_the_call_was_given_is_not_repeated():
    a = symshape.analyze(_Appends().eval(), (2, "L"), prove=False)  # (the proof would find a wrong copy)
    assert not any(REPEAT in n.meta for n in a.graph.nodes)
    assert a.at(L=7).output_shape[-1] == 2  # len(sizes) is 2
    assert_agrees(_Appends().eval(), (2, "L"), [{"L": n} for n in (2, 3, 7)])


class _Keeps(nn.Module):
    """Returns a list it holds: the module's own list, which a new one would not be."""

    def __init__(self):
        super().__init__()
        self.seen: list = []

    def forward(self, x):
        return x * 2, self.seen


class _AppendsToKept(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = _Keeps(), _Keeps()

    def forward(self, x):
        self.a(x)
        y, seen = self.b(x)  # equal arguments and fingerprints: would repeat a's call
        seen.append(x.shape[-1])
        out = y[..., : len(self.b.seen) + 1]
        seen.clear()
        return out


def test_a_list_the_module_holds_is_not_repeated():
    a = symshape.analyze(_AppendsToKept().eval(), (2, "L"), prove=False)
    assert not any(REPEAT in n.meta for n in a.graph.nodes)
    assert a.at(L=7).output_shape[-1] == 2
    assert_agrees(_AppendsToKept().eval(), (2, "L"), [{"L": n} for n in (2, 3, 7)])


class Rows(nn.Module):
    """Reshapes its input into ``self.rows`` rows: a size its caller sets before each call."""

    def __init__(self):
        super().__init__()
        self.rows = 2

    def forward(self, x):
        return x.reshape(x.shape[0], self.rows, -1)


class SetsRowsBetweenCalls(nn.Module):
    """Calls one module twice with the same input, setting its attribute to a traced size before
    each call (the reference Swin backbone sets ``blk.H, blk.W = H, W`` before each block);
    ``shared`` calls a module of the same class set alike too."""

    def __init__(self, shared: bool = False):
        super().__init__()
        self.first = Rows()
        self.second = self.first if shared else Rows()

    def forward(self, x):
        self.first.rows = x.shape[2]
        a = self.first(x)
        self.second.rows = x.shape[3]
        b = self.second(x)
        self.first.rows = x.shape[2]
        c = self.first(x)
        return a, b, c


@pytest.mark.parametrize("shared", [True, False])
def test_a_module_whose_attribute_its_caller_changed_is_traced_again(shared):
    """A call of the same module (or one of the same class) whose attribute the caller set to
    another size since is not the earlier call: it was repeated, and the second output was the
    first's, ``(N, H, 3*W)`` where torch gives ``(N, W, 3*H)`` (the proof at ``H == W`` could not
    tell). A later call with the attribute as it was at the first repeats it again."""
    model = SetsRowsBetweenCalls(shared)
    assert assert_agrees(model, (3, "H", "W"), grid(["H", "W"], [1, 2, 5, 6])) == 16
    a, b, c = symshape.analyze(model, (3, "H", "W")).output_shape
    assert str(b) == "(N, W, 3*H)" and a == c == (symshape.dims.size_symbol("N"), *a[1:]) and str(a) == "(N, H, 3*W)"
    assert model.first.rows == 2 and model.second.rows == 2  # the model as it was


def test_the_proof_runs_at_sizes_apart_and_finds_what_equal_sizes_hide(monkeypatch):
    """The proof's forward takes the size names apart (``H=224, W=256``) where the analysis
    accepts that: a trace that swapped two sizes agrees with torch wherever they are equal, as
    the proof at ``H == W`` let the wrong repeat above through. With repeats made as they were
    (a module's attributes not looked at), the proof now finds the copy wrong, and the analysis,
    started again with the module run whole (which cannot be run whole: its attribute holds a
    traced size), refuses: no answer rather than a wrong one. Without the repeat, the proof is
    at sizes apart too."""

    def equal_call_as_before(self, module, key):
        for i, (other, *_) in enumerate(self._repeats.get(key, ())):
            if other is module or self._fingerprint(other) == self._fingerprint(module):
                return key, i
        return None

    model = SetsRowsBetweenCalls(shared=True)
    assert symshape.analyze(model, (3, "H", "W")).proof == "H=224, W=256"
    monkeypatch.setattr(engine.Propagator, "_equal_call", equal_call_as_before)
    with pytest.raises(symshape.SymshapeError) as refused:
        symshape.analyze(model, (3, "H", "W"))
    chain, e = [], refused.value
    while e is not None:
        chain.append(e)
        e = e.__cause__ or e.__context__
    mismatch = next(e for e in chain if isinstance(e, TraceMismatch))
    assert "at H=224, W=256" in str(mismatch) and "first" in str(mismatch)


class _Cached(nn.Module):
    """Writes a buffer of its own during its call, sized by its input (ConViT's attention keeps
    its relative indices so): each such module, when called, finds the buffer as it was built."""

    def __init__(self):
        super().__init__()
        self.register_buffer("index", torch.zeros(1, 1))
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        if self.index.shape[1] != x.shape[1]:
            self.index = torch.zeros(1, x.shape[1])
        return self.fc(x) + self.index[..., None]


def test_modules_that_write_their_own_buffer_during_the_call_still_repeat():
    """The second of two equal modules is the first's repeat: the first call changed the first
    module's buffer, but as each call found its module (the buffer as built) they are equal.
    Without looking at the first module as its call found it, nothing repeated (ConViT tiny
    0.09 s -> 0.16 s). Every step against the analysis traced without repeats, and torch."""
    model = nn.Sequential(_Cached(), _Cached())
    a = symshape.analyze(model, (6, 4))
    assert any(s.copy_of for s in a.steps)
    assert a.output_shape == (symshape.dims.batch_symbol(), 6, 4)
    assert_agrees(model, (6, 4), [{}])


class _DropBlock(Block):
    """A block with its own dropout rate, as the blocks of a stage with stochastic depth have."""

    def __init__(self, p: float):
        super().__init__()
        self.drop = nn.Dropout(p)

    def forward(self, x):
        return self.drop(super().forward(x))


@pytest.mark.parametrize("training", [False, True])
def test_blocks_that_differ_only_in_their_dropout_rate_are_traced_once(training):
    """torch's dropout runs the same op whatever its rate (in [0, 1]): the rate is no part of a
    block's fingerprint, and four blocks of rates 0 … 0.3 are one block traced once, in eval
    mode and in training mode alike (timm's DropPath, whose forward returns its input in eval
    mode whatever its rate, likewise: docs/how-it-works.md)."""
    model = Stack()
    model.blocks = nn.Sequential(*(_DropBlock(p) for p in (0.0, 0.1, 0.2, 0.3)))
    model.train(training)
    _DropBlock.traced = 0
    a = symshape.analyze(model, (1, "H", "W"), prove=False)
    assert _DropBlock.traced == 1  # the three others take its steps
    assert {s.name.split(".")[1] for s in a.steps if s.copy_of} == {"1", "2", "3"}
    assert a.verify(sizes=[{"H": 9, "W": 12}], device="meta").ok
    assert assert_agrees(model.eval(), (1, "H", "W"), grid(("H", "W"), [2, 9, 12])) == 4  # not at 2


def test_a_dropout_rate_torch_refuses_keeps_its_block_apart():
    """A rate outside [0, 1] makes ``F.dropout`` raise: such a block is not taken for another."""
    model = Stack(blocks=0)
    model.blocks = nn.Sequential(_DropBlock(0.1), _DropBlock(0.1))
    model.blocks[1].drop.p = 1.5  # (nn.Dropout checks its rate when made; F.dropout, when called)
    _DropBlock.traced = 0
    with pytest.raises(symshape.SymshapeError, match="dropout probability"):
        symshape.analyze(model.eval(), (1, "H", "W"), prove=False)
    assert _DropBlock.traced == 2


class _Scaled(nn.Module):
    """NFNet's block: a residual branch scaled by a number of its own (``beta``, a different
    one in every block of a stage)."""

    def __init__(self, beta: float):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.beta = beta

    def forward(self, x):
        return x + self.conv(x) * self.beta


def test_a_stage_of_blocks_with_fingerprints_of_their_own_is_linear_work(monkeypatch):
    """Each of 40 blocks is called with the same arguments, and none is another's repeat (each
    has its own ``beta``): a block is compared with the calls before it by the fingerprint each
    call found, and that is computed once per call, not again for every later block
    (dm_nfnet_f6, 84 such blocks: 0.66 s of tracing -> 0.43 s). Counted as looks at a
    module's attributes: linear in the blocks (about 4 each), where it had been quadratic
    (2,382 for these 40)."""
    looks = []
    key = symshape.modules._Attributes._key
    monkeypatch.setattr(symshape.modules._Attributes, "_key", lambda self: looks.append(1) or key(self))
    model = nn.Sequential(*(_Scaled(1 + i / 10) for i in range(40)))
    a = symshape.analyze(model, (4, "H", "W"))
    assert not any(s.copy_of for s in a.steps)  # (the scale is read: no block is another's)
    assert len(looks) < 8 * 40
    assert assert_agrees(model, (4, "H", "W"), grid(("H", "W"), [1, 5])) == 4


class _Conv(nn.Module):
    """ultralytics' Conv: every block calls the one activation module of its class."""

    default_act = nn.SiLU()

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, stride, 1)
        self.act = self.default_act

    def forward(self, x):
        return self.act(self.conv(x))


class _Rep(nn.Module):
    """ultralytics' RepConv inside a bottleneck: an activation of its own class, shared too."""

    default_act = nn.ReLU()

    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, 1, 1)
        self.act = self.default_act

    def forward(self, x):
        return self.act(self.conv(x))


class _Bottleneck(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.rep, self.cv = _Rep(c), _Conv(c, c)

    def forward(self, x):
        return x + self.cv(self.rep(x))


class _Detector(nn.Module):
    """A backbone of shared-activation blocks, and two heads, the second deep-copied from the
    first (YOLOv10's one-to-one head): its blocks call the copy's activation."""

    def __init__(self):
        import copy

        super().__init__()
        self.stem = _Conv(1, 4, 2)
        self.m = nn.Sequential(*(_Bottleneck(4) for _ in range(3)))
        self.head = nn.Sequential(_Conv(4, 4), _Conv(4, 4))
        self.head2 = copy.deepcopy(self.head)

    def forward(self, x):
        x = self.m(self.stem(x))
        return self.head(x).flatten(1), self.head2(x).flatten(1)


def test_a_repeated_call_names_each_shared_layer_as_fx_does():
    model = _Detector().eval()
    assert model.head2[0].act is not _Conv.default_act  # (the copy's own)
    a = symshape.analyze(model, (1, "H", "W"))  # the proof compares each layer's calls
    names = {id(m): n for n, m in model.named_modules()}
    for step in a.steps:
        if step.kind == "module":
            assert step.name == names[id(step.module)], step
    acts = [s.name for s in a.steps if s.name.endswith(".act")]
    assert acts.count("stem.act") == 1 + 3 + 2 and acts.count("head2.0.act") == 2  # (the shared SiLU, its copy)
    assert acts.count("m.0.rep.act") == 3
    report = a.verify(sizes=grid(["H", "W"], [1, 2, 5, 8, 9]))
    assert report.ok and report.checked > 0 and any(ran for _, ran, _, _ in report.results)
