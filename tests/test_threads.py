"""analyze() and verify() from several threads at once (issue 22 point 3): torch.fx patches
``nn.Module.__call__`` and ``__getattr__`` for the whole process while it traces, so traces are
serialized and other threads' forwards pass through the patches; verify() runs the user's model
one call at a time. Every answer must equal the single-threaded one, torch must be left as it
was, and plain forwards in other threads must keep working meanwhile."""

from __future__ import annotations

import math
import threading

import torch
import torch.nn as nn
import torch.nn.functional as F

import symshape


class Guarded(nn.Module):
    """A Python branch on a size (traced by sides) and an int() of a size (the stand-ins)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        if x.shape[-1] % 2:
            x = F.pad(x, (0, 1))
        y = self.conv(x)
        g = int(math.sqrt(y.shape[-1] * y.shape[-1]))
        return y[..., :g] + torch.zeros(y.shape[0], 4, 1, 1)


def _models():
    return [
        (lambda: nn.Sequential(nn.Conv2d(1, 10, 5), nn.MaxPool2d(2), nn.Conv2d(10, 20, 5), nn.MaxPool2d(2),
                               nn.Flatten(), nn.Linear(320, 10)), (1, "H", "W")),
        (Guarded, (3, "H", "W")),
        (lambda: nn.Sequential(nn.Conv1d(2, 4, 3, stride=2), nn.AdaptiveAvgPool1d(5), nn.Flatten(),
                               nn.Linear(20, 3)), (2, "L")),
    ]


def _answer(make, shape) -> str:
    a = symshape.analyze(make(), shape)
    return f"{a.output_shape} {a.valid_sizes().summary()}"


def _run(threads):
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a thread did not finish"


def test_analyze_from_four_threads_agrees_and_leaves_torch_as_it_was():
    expected = [_answer(make, shape) for make, shape in _models()]
    call, getattr_ = nn.Module.__call__, nn.Module.__getattr__
    zeros = torch.zeros
    answers: list[tuple[int, str]] = []
    errors: list[BaseException] = []
    plain = nn.Sequential(nn.Conv2d(3, 5, 3), nn.ReLU(), nn.Flatten(), nn.Linear(5 * 6 * 6, 2))
    stop = threading.Event()
    plain_runs = [0]

    def analyze_all(k: int):
        try:
            for rep in range(2):
                for i, (make, shape) in enumerate(_models()):
                    if (i + k + rep) % 2 == 0 or k == 0:
                        answers.append((i, _answer(make, shape)))
        except BaseException as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(e)

    def forward_meanwhile():
        try:
            x = torch.rand(2, 3, 8, 8)
            while not stop.is_set():
                assert plain(x).shape == (2, 2)
                plain_runs[0] += 1
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    side = threading.Thread(target=forward_meanwhile)
    side.start()
    try:
        _run([threading.Thread(target=analyze_all, args=(k,)) for k in range(4)])
    finally:
        stop.set()
        side.join(timeout=60)
    assert not errors, errors[0]
    assert answers and all(a == expected[i] for i, a in answers)
    assert plain_runs[0] > 0
    assert nn.Module.__call__ is call and nn.Module.__getattr__ is getattr_ and torch.zeros is zeros
    assert "int" not in globals() and "float" not in globals()
    assert plain(torch.rand(1, 3, 8, 8)).shape == (1, 2)  # plain forwards still run afterwards


def test_two_verify_calls_on_one_model_agree_and_leave_it_as_it_was():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5), nn.Flatten(),
                          nn.LazyLinear(6))
    model.train()
    analysis = symshape.analyze(model, (3, "H", "W"))
    state = {k: v.clone() for k, v in model.state_dict().items() if not isinstance(v, nn.parameter.UninitializedTensorMixin)}
    hooks = [(len(m._forward_hooks), len(m._forward_pre_hooks)) for m in model.modules()]
    reports, errors = [], []

    def check():
        try:
            for _ in range(3):
                reports.append(analysis.verify(sizes=[{"H": h, "W": w} for h, w in ((5, 5), (8, 6), (2, 9))]))
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    _run([threading.Thread(target=check) for _ in range(2)])
    assert not errors, errors[0]
    assert len(reports) == 6 and all(r.ok for r in reports), [str(r) for r in reports if not r.ok]
    assert all(m.training for m in model.modules())
    assert [(len(m._forward_hooks), len(m._forward_pre_hooks)) for m in model.modules()] == hooks
    assert isinstance(model[-1], nn.LazyLinear) and model[-1].has_uninitialized_params()
    after = model.state_dict()  # the running statistics too
    assert all(torch.equal(v, after[k]) for k, v in state.items())
