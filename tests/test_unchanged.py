"""Analysis never changes the user's model: parameters, buffers, flags, lazy state, hooks."""

import copy
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

import seed000_mnist
import symshape
from oracle import check_sizes


def snapshot(model: nn.Module):
    return {
        "state": {k: v.clone() for k, v in model.state_dict().items()
                  if not isinstance(v, nn.parameter.UninitializedParameter)},
        "training": [m.training for m in model.modules()],
        "lazy": [getattr(m, "has_uninitialized_params", lambda: False)() for m in model.modules()],
        "hooks": [(len(m._forward_hooks), len(m._forward_pre_hooks)) for m in model.modules()],
        "types": [type(m) for m in model.modules()],
        "grad": [p.requires_grad for p in model.parameters()],
    }


def same(a, b) -> bool:
    if a.keys() != b.keys():
        return False
    for k in a:
        if k == "state":
            if a[k].keys() != b[k].keys() or any(not torch.equal(a[k][n], b[k][n]) for n in a[k]):
                return False
        elif a[k] != b[k]:
            return False
    return True


def make_models():
    lazy = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(5))
    hooked = seed000_mnist.Net()
    hooked.conv1.register_forward_hook(lambda m, i, o: None)
    evald = seed000_mnist.NetMaxPool().eval()
    return [lazy, hooked, evald]


def test_analyze_and_evaluate_leave_the_model_alone():
    for model in make_models():
        before = snapshot(model)
        a = symshape.analyze(model, (1, "H", "W"))
        a.evaluate(H=28, W=28)
        a.at(H=28, W=28) if not a.evaluate(H=28, W=28).mismatches else None
        f = a.formula()
        f(H=28, W=28), f.grid(H=range(1, 30), W=range(1, 30))
        assert same(before, snapshot(model)), model


def test_observing_torch_leaves_lazy_modules_uninitialized():
    model = make_models()[0]
    before = snapshot(model)
    a = symshape.analyze(model, (1, "H", "W"))
    ok, bad = check_sizes(a, {"H": 12, "W": 9})
    assert ok and not bad
    assert model[3].has_uninitialized_params()
    assert same(before, snapshot(model))
    # and a second size still works on the still-lazy model
    ok, bad = check_sizes(a, {"H": 20, "W": 7})
    assert ok and not bad


def test_deepcopy_of_analysis_target_not_needed():
    model = seed000_mnist.Net()
    ref = copy.deepcopy(model)
    symshape.analyze(model, (1, 28, 28))
    for (n1, p1), (n2, p2) in zip(model.named_parameters(), ref.named_parameters()):
        assert n1 == n2 and torch.equal(p1, p2)


def test_observing_torch_restores_batch_norm_statistics():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    before = snapshot(model)
    a = symshape.analyze(model, (1, "H", "W"))
    ok, bad = check_sizes(a, {"H": 12, "W": 9})
    assert ok and not bad
    assert same(before, snapshot(model))


def test_branch_exploration_is_quiet_and_leaves_torchs_loggers_alone(capfd):
    """torch's fake-tensor logger reports each side on which a kernel raises; symshape silences
    it for its own thread only while it explores, and removes its filter afterwards."""
    import logging

    import torch.nn.functional as F
    from torch._subclasses import fake_tensor

    class Head(nn.Module):
        def forward(self, x):
            if x.size(2) > 10:
                x = F.max_pool2d(x, 2)
            return x

    logger = logging.getLogger(fake_tensor.__name__)
    before = list(logger.filters)
    a = symshape.analyze(nn.Sequential(nn.Conv2d(1, 4, 3), Head()), (1, "H", "W"))
    assert str(a.valid_sizes()) == "H ∈ [3, 12] and W ≥ 3; or H ≥ 13 and W ≥ 4"
    assert logger.filters == before
    assert "failed while attempting to run meta" not in capfd.readouterr().err


class WritesItsAttributes(nn.Module):
    """A forward that keeps state: a counter, the last features, a cache of a computed tensor
    (timm's attention-bias cache), and a Python branch on a size, so it is traced once a side."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.bias = nn.Parameter(torch.zeros(4, 1, 1))
        self.calls = 0
        self.cache = {}

    def forward(self, x):
        self.calls += 1
        y = self.conv(x)
        self.feat = y
        if "bias" not in self.cache:
            self.cache["bias"] = self.bias * 2
        if y.shape[-1] % 2:  # a side of its own for odd widths
            y = F.pad(y, (0, 1))
        return y + self.cache["bias"]


def test_a_forward_that_writes_attributes_leaves_them_as_they_were():
    """After ``self.feat = y; self.calls += 1`` and a filled cache, the model comes
    back exactly as it was; each side of the branch is traced from the same state (the cache
    filled by one side's trace would hold a value of another trace)."""
    model = WritesItsAttributes()
    before = dict(model.__dict__)
    cache = model.cache
    a = symshape.analyze(model, (1, "H", "W"))
    assert model.calls == 0 and "feat" not in model.__dict__
    assert model.cache is cache and model.cache == {}
    assert dict(model.__dict__).keys() == before.keys()
    assert all(model.__dict__[k] is v for k, v in before.items())
    assert a.verify(sizes=[{"H": h, "W": w} for h, w in ((5, 5), (5, 6), (9, 4))]).ok
    assert a.verify(sizes=[{"H": 7, "W": 7}], device="meta").ok
    assert model.calls == 0 and "feat" not in model.__dict__ and model.cache == {}  # verify() too
    for h, w in ((5, 5), (5, 6), (9, 4)):
        ok, bad = check_sizes(a, {"H": h, "W": w})
        assert ok and not bad, bad  # (torch's own forward, the oracle, does fill the cache)


_COLLECTOR_SEEN: list[bool] = []  # outside the model: analysis restores what a forward writes on it


class _SeesCollector(nn.Module):
    """Records whether Python's garbage collector is on when its forward runs."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)

    def forward(self, x):
        import gc

        _COLLECTOR_SEEN.append(gc.isenabled())
        return self.conv(x)


def test_the_collector_is_paused_while_analyzing_and_left_as_it_was():
    """analyze() pauses the cyclic garbage collector (speed) and restores it, on or off, after
    an answer and after an error alike."""
    import gc

    model = _SeesCollector()
    was = gc.isenabled()
    try:
        for state in (True, False):
            (gc.enable if state else gc.disable)()
            symshape.analyze(model, (1, "H", "W"))
            assert gc.isenabled() is state
            try:
                symshape.analyze(model, (1, 2))  # a 1D input: Conv2d refuses it
            except symshape.SymshapeError:
                pass
            assert gc.isenabled() is state
        assert _COLLECTOR_SEEN and not any(_COLLECTOR_SEEN)  # every trace and proof ran with it paused
    finally:
        (gc.enable if was else gc.disable)()


def test_attributes_kept_restores_empty_and_filled_containers_in_place():
    """Containers empty before the block are emptied again (the same objects), filled ones get
    their items back: a list, a set, a dict of the model's own, and torch's hook dicts."""
    from symshape.modules import attributes_kept

    model = nn.Sequential(nn.Conv2d(1, 2, 3))
    model.log, model.seen, model.table = [], {1, 2}, {"a": 1}
    log, seen, table, hooks = model.log, model.seen, model.table, model[0]._forward_hooks
    with attributes_kept(model):
        model.log.append(1)
        model.seen.discard(1)
        model.table["b"] = 2
        hooks[7] = print
        model[0].weight = None
        model.extra = 3
    assert model.log is log and log == []
    assert model.seen is seen and seen == {1, 2}
    assert model.table is table and table == {"a": 1}
    assert model[0]._forward_hooks is hooks and len(hooks) == 0
    assert isinstance(model[0].weight, nn.Parameter) and not hasattr(model, "extra")


def _identities(model: nn.Module) -> list:
    """Each module's attributes and the items of each container among them, by name and
    identity, in order: what attributes_kept restores."""
    out = []
    for m in model.modules():
        out.append([(k, id(v)) for k, v in vars(m).items()])
        for v in vars(m).values():
            if type(v) in (dict, OrderedDict):
                out.append([(k, id(i)) for k, i in v.items()])
            elif type(v) in (list, set):
                out.append([id(i) for i in v])
    return out


_CHANGES = ["set", "replace_list", "equal_list", "append", "pop_key", "add_key", "move_key", "reorder",
            "hook", "submodule", "equal_tensor", "discard"]


def _change(model: nn.Module, how: str, i: int) -> None:
    inner = model[0]
    if how == "set":
        model.count = i
    elif how == "replace_list":
        model.log = [i]
    elif how == "equal_list":
        model.log = list(model.log)  # equal, another object
    elif how == "append":
        model.log.append(i)
    elif how == "pop_key":
        model.table.pop("a", None)
    elif how == "add_key":
        model.table[f"k{i}"] = [i]
    elif how == "move_key":  # the same names and items in the tree, in order: one moved to the next dict
        if model.table:
            moved = model.table.popitem()
            rest = list(model.other.items())
            model.other.clear()
            model.other.update([moved, *rest])
    elif how == "reorder":
        items = list(model.table.items())[::-1]
        model.table.clear()
        model.table.update(items)
    elif how == "hook":
        inner._forward_hooks[i] = print
    elif how == "submodule":
        inner.add_module(f"m{i}", nn.ReLU())
    elif how == "equal_tensor":
        inner.bias = nn.Parameter(inner.bias.detach().clone())
    elif how == "discard":
        model.seen.discard(1)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_CHANGES), st.booleans()), max_size=6))
def test_attributes_kept_restores_each_block_to_its_own_start(changes):
    """Blocks one after another (a branch's sides), with the model changed inside each and
    between them: each block ends with every attribute and container item as it was when that
    block began (by identity, in order), whether its snapshot is taken afresh or the last
    block's serves again (within snapshots_shared, as one trace's side traces)."""
    from symshape.modules import attributes_kept, snapshots_shared

    model = nn.Sequential(nn.Linear(2, 2))
    model.log, model.seen, model.table, model.other, model.count = [0], {1, 2}, {"a": [1], "b": 2}, {"c": 3}, 0
    with snapshots_shared():
        for i, (how, inside) in enumerate(changes):
            if not inside:
                _change(model, how, i)  # between blocks: the next block starts from this
            before = _identities(model)
            with attributes_kept(model):
                if inside:
                    _change(model, how, i)
            assert _identities(model) == before, (how, inside)


def test_no_snapshot_of_a_model_outlives_its_analysis():
    """The snapshot side traces share holds every attribute of the model: it is forgotten when
    the trace ends, and a model deleted after its analysis is freed."""
    import gc
    import weakref

    from symshape import modules
    from test_proof_cost import Stacked

    model = Stacked()
    symshape.analyze(model, (2, "L"))
    assert modules._HERE.kept is None and modules._HERE.sharing == 0
    freed = weakref.ref(model.blocks[0].conv.weight)
    del model
    gc.collect()
    assert freed() is None


class Rescaling(nn.Module):
    """A forward that rescales its own weights in place, as transformers' RWKV does in eval mode
    (``weight.div_(2 ** k)``), and one through ``.data`` and through a view."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.scale = nn.Parameter(torch.ones(2, 4))

    def forward(self, x):
        with torch.no_grad():
            self.lin.weight.div_(2)
            self.scale.data.mul_(3)
            self.scale[0].add_(1)
        return self.lin(x) * self.scale[1]


def test_verify_on_the_cpu_restores_the_weights_a_forward_rescales():
    model = Rescaling()
    before = snapshot(model)
    a = symshape.analyze(model, ("T", 4))
    report = a.verify(sizes=[{"T": t} for t in (1, 2, 5)], device="cpu")
    assert report.ok and sum(1 for r in report.results if r[1]) == 3
    assert same(before, snapshot(model))
    model(torch.zeros(1, 2, 4))  # (and the forward itself still does what it does)
    assert not same(before, snapshot(model))
