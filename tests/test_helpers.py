"""A model's helper function that branches on a size is traced by its sides on its own, as one
call of the model's graph (symshape.helpers), instead of the model it is called from: CrossViT's
``scale_image``, a U-Net's pad to a multiple. Checked against torch's forwards, against the
analysis the model traced by sides gives, and for what stays as it was (the function's name
bound back, calls that could change their arguments traced through)."""

import threading

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import symshape
from oracle import assert_agrees, grid
from symshape import helpers


def pad_to(x, m: int):
    """A U-Net's pad of the input to a multiple of ``m``."""
    h, w = x.shape[-2:]
    if h % m or w % m:
        x = F.pad(x, (0, (m - w % m) % m, 0, (m - h % m) % m))
    return x


def _scaled(x, size: tuple):
    """CrossViT's ``scale_image``: resized only where it is not that size already (a private
    name: fx's own autowrap would leave it alone)."""
    if x.shape[-2] != size[0] or x.shape[-1] != size[1]:
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    return x


def evened(x, times: int):
    """A helper that calls itself (each call branches): ``times`` times, an odd length trimmed
    by one and the rest halved."""
    if times == 0:
        return x
    if x.shape[-1] % 2:
        x = x[..., 1:]
    return evened(x[..., ::2], times - 1)


class Body(nn.Module):
    traced = 0

    def __init__(self):
        super().__init__()
        self.convs = nn.Sequential(*(nn.Conv2d(4, 4, 3, padding=1) for _ in range(3)))

    def forward(self, x):
        type(self).traced += 1
        return self.convs(x)


class Padded(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.body = Body()
        self.pool = nn.MaxPool2d(4)

    def forward(self, x):
        return self.pool(self.body(pad_to(self.stem(x), 4)))


class TwoScales(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = Body()

    def forward(self, x):
        a = self.body(_scaled(x, (8, 8)))
        b = self.body(_scaled(x, (6, 6)))
        return a.flatten(1) + b.flatten(1).sum(1, keepdim=True)


def test_a_helper_that_branches_is_traced_by_its_sides_and_the_model_once():
    """pad_to's three sides are the helper's; the body is traced once, not once per side (where
    the model was traced by sides, four traces of the body)."""
    Body.traced = 0
    a = symshape.analyze(Padded().eval(), (3, "H", "W"), prove=False)
    assert Body.traced == 1
    assert symshape.analyze(Padded().eval(), (3, "H", "W")).proof  # (and it proves itself)
    assert [(s.name, len(s.sides)) for s in a.steps if s.sides] == [("pad_to", 3)]
    assert str(a.output_shape[2]) == "floor((H + 7)/8)"
    assert assert_agrees(Padded().eval(), (3, "H", "W"), grid(("H", "W"), range(1, 14))) == 169


def test_the_answers_are_those_of_the_model_traced_by_sides(monkeypatch):
    """The same shapes, checks and valid sizes as with the helper traced through (the model
    then traced by its sides), at every size of a grid."""
    for model, shape in ((Padded(), (3, "H", "W")), (TwoScales(), (4, "H", "W"))):
        recorded = symshape.analyze(model.eval(), shape)
        with monkeypatch.context() as m:
            m.setattr(symshape.trace, "branching_helper", lambda tb: None)
            whole = symshape.analyze(model.eval(), shape)
        assert any(s.name == "(model)" for s in whole.steps) and not any(s.name == "(model)" for s in recorded.steps)
        assert str(recorded.valid_sizes()) == str(whole.valid_sizes())
        for h in range(1, 12):
            for w in (1, 5, 6, 8, 9):
                try:
                    expected = whole.at(H=h, W=w).output_shape
                except symshape.SymshapeError as e:
                    with pytest.raises(type(e)):
                        recorded.at(H=h, W=w)
                    continue
                assert recorded.at(H=h, W=w).output_shape == expected


def test_a_private_helper_called_twice_with_other_sizes():
    """CrossViT's two branches, each resized to its own size where it is not: two calls of one
    helper, each a call of the graph with its sides."""
    Body.traced = 0
    a = symshape.analyze(TwoScales().eval(), (4, "H", "W"), prove=False)
    assert sorted(len(s.sides) for s in a.steps if s.sides) == [3, 3]
    assert Body.traced == 2  # (once per input size: 8x8 and 6x6)
    assert assert_agrees(TwoScales().eval(), (4, "H", "W"), grid(("H", "W"), [1, 5, 6, 7, 8, 9])) == 36


def test_a_helper_that_calls_itself():
    class Halving(nn.Module):
        def forward(self, x):
            return evened(x, 3) * 2

    a = symshape.analyze(Halving(), (2, "L"))
    assert [s.op.rsplit(".", 1)[-1] for s in a.steps if s.sides] == ["evened"]
    assert assert_agrees(Halving(), (2, "L"), [{"L": n} for n in range(1, 40)]) == 39  # (empty pieces run)


def fill(x, out: list):
    if x.shape[-1] > 4:
        x = x[..., :4]
    out.append(x)
    return x


def keyed(x):
    if x.shape[-1] > 4:
        return {"a": x[..., :4]}
    return {"a": x}


def pieces(x):
    if x.shape[-1] > 4:
        yield x[..., :4]
    yield x


class Generated(nn.Module):
    def forward(self, x):
        return torch.cat(list(pieces(x)), -1)


class Filled(nn.Module):
    def forward(self, x):
        seen = []
        y = fill(x, seen)
        return y + seen[0]


class Keyed(nn.Module):
    def forward(self, x):
        return keyed(x)["a"] * 2


@pytest.mark.parametrize("model,by_sides", [(Filled(), "(model)"), (Keyed(), "keyed"), (Generated(), "(model)")],
                         ids=["given-a-list", "returns-a-dict", "generator"])
def test_a_helper_recorded_as_one_call_only_where_that_is_what_runs(model, by_sides):
    """A helper given a list could change it, which one recorded call would not (it is traced
    through); one whose sides cannot answer goes back to being traced through too (a
    generator): the model is then traced by its sides, as before. A dict returned is merged key
    by key (as a ModelOutput is: symshape.meta.merge_sides), so that helper is one call. Each
    agrees with torch."""
    a = symshape.analyze(model, (2, "L"))
    assert [(s.name, len(s.sides)) for s in a.steps if s.sides] == [(by_sides, 2)]
    assert assert_agrees(model, (2, "L"), [{"L": n} for n in range(1, 9)]) == 8


def test_the_helpers_name_is_bound_back_after_the_trace_and_after_a_refusal():
    namespace = globals()
    before = namespace["pad_to"]
    symshape.analyze(Padded().eval(), (3, "H", "W"))
    assert namespace["pad_to"] is before and not helpers._bound

    class Refused(nn.Module):
        def forward(self, x):
            return pad_to(x, 4).view(-1, 7)  # torch refuses the view at every size but a few

    try:
        symshape.analyze(Refused(), (3, "H", "W"))
    except symshape.SymshapeError:
        pass
    assert namespace["pad_to"] is before and not helpers._bound


def test_another_threads_call_of_the_helper_runs_it_as_it_is(monkeypatch):
    """While a trace records pad_to, a forward in another thread calls the wrapper bound to its
    name: that call runs pad_to itself (no tracer of its thread asks for it)."""
    results = []
    started, release = threading.Event(), threading.Event()

    def other():
        started.wait(10)
        results.append(tuple(namespace["pad_to"](torch.zeros(1, 1, 5, 6), 4).shape))
        release.set()

    namespace = globals()
    original = helpers._recording

    def slow_recording(fn):
        wrapper = original(fn)

        def recorded(*args, **kwargs):
            started.set()
            release.wait(10)  # the other thread calls the wrapper meanwhile
            return wrapper(*args, **kwargs)
        return recorded

    monkeypatch.setattr(helpers, "_recording", slow_recording)
    thread = threading.Thread(target=other)
    thread.start()
    a = symshape.analyze(Padded().eval(), (3, "H", "W"))
    thread.join(10)
    assert results == [(1, 1, 8, 8)]
    assert [(s.name, len(s.sides)) for s in a.steps if s.sides] == [("pad_to", 3)]
