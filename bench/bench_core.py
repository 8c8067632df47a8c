"""Core benchmarks: analyze() against torch.export, one in_features against a meta-device forward,
a million sizes through the compiled formula, exactness beside torch.export, cold start, memory.

Every symshape answer is checked against real torch in the same run (the benchmark raises when
they disagree); timings are medians of repeated runs in one process.
"""

from __future__ import annotations

import copy
import os
import random
import statistics
import subprocess
import sys
import time
import timeit
import warnings

import sympy
import torch
import torch.nn as nn

import symshape
from symshape.quasi import quasi

from nets import ResNet50, ceil_chain

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
EXAMPLES = os.path.join(ROOT, "examples")


def seed_nets() -> list[tuple[str, nn.Module, tuple, int]]:
    """(name, model, input_shape, the thread's size): the seed threads' models, fresh copies."""
    import seed000_mnist
    import seed001_cnnclf
    import seed002_pytorch_mnist
    import seed003_cs231n

    return [
        ("seed 000 Net", seed000_mnist.Net().eval(), (1, "H", "W"), 28),
        ("seed 000 NetMaxPool", seed000_mnist.NetMaxPool().eval(), (1, "H", "W"), 28),
        ("seed 001 CNNclf", seed001_cnnclf.CNNclf().eval(), (1, "H", "W"), 100),
        ("seed 002 Net", seed002_pytorch_mnist.Net().eval(), (1, "H", "W"), 28),
        ("seed 003 simple_model", copy.deepcopy(seed003_cs231n.simple_model).eval(), (3, "H", "W"), 32),
        ("seed 003 case2_model", copy.deepcopy(seed003_cs231n.case2_model).eval(), (3, "H", "W"), 32),
    ]


def _median(fn, repeat: int, before=None) -> float:
    times = []
    for _ in range(repeat):
        if before is not None:
            before()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _per_call(stmt: str, seconds: float = 0.2, **names) -> float:
    """Median per-call time of the statement ``stmt`` (with ``names`` as its globals) over
    5 batches of about ``seconds`` each."""
    timer = timeit.Timer(stmt, globals=names)
    n = max(1, int(seconds / max(timer.timeit(number=1), 1e-7)))
    return statistics.median(timer.repeat(number=n, repeat=5)) / n


def _cold_caches():
    sympy.core.cache.clear_cache()
    quasi.cache_clear()


def _input(c: int, h: int, w: int, device: str = "cpu") -> torch.Tensor:
    return torch.rand(1, c, h, w, device=device)


def _export(model, x):
    from torch.export import Dim, export

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return export(model, (x,), dynamic_shapes=({2: Dim.AUTO, 3: Dim.AUTO},))


def features(model: nn.Module) -> nn.Module:
    """A copy whose Linear layers pass their input through: its output's last dim is the first
    Linear's in_features, and a wrong declared in_features cannot stop it (the truth we check
    against). For the seed nets everything after the first Linear keeps the shape."""
    m = copy.deepcopy(model)
    for name, mod in list(m.named_modules()):
        if isinstance(mod, (nn.Linear, nn.LazyLinear)):
            parent, _, attr = name.rpartition(".")
            setattr(m.get_submodule(parent) if parent else m, attr, nn.Identity())
    return m.eval()


def _eager(model, x):
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return model(x).shape[-1]
    except Exception:
        return None


# -- 1. analyze() against torch.export ---------------------------------------------------------

def analyze_vs_export(nets=None, repeat: int = 5, export_repeat: int = 3) -> list[dict]:
    rows = []
    nets = nets if nets is not None else [*seed_nets(), ("ResNet-50-size net", ResNet50().eval(), (3, "H", "W"), 224)]
    for name, model, shape, size in nets:
        t_sym = _median(lambda: symshape.analyze(model, shape), repeat, _cold_caches)
        x = _input(shape[0], size, size)
        # export stops at a wrong Linear (two seeds have one), so it gets the model up to the
        # flat size: less work than the whole model symshape analyzes
        flat = features(model)
        _export(flat, x)  # the first export pays for torch.export's own warm-up
        t_exp = _median(lambda: _export(flat, x), export_repeat)
        # the same formula, at the thread's size, from both
        a = symshape.analyze(model, shape)
        assert a.formula()(H=size, W=size) == _eager(flat, x), name
        rows.append({"benchmark": f"analyze(), {name}: every step's formula (sympy caches cleared)",
                     "symshape": t_sym, "anchor": t_exp,
                     "anchor_name": "torch.export up to the flat size, dynamic H, W (Dim.AUTO), warm"})
    return rows


def proof_cost(nets=None, repeat: int = 5) -> list[dict]:
    """What the proof costs: analyze() with its one meta-device forward against analyze(prove=False)."""
    rows = []
    nets = nets if nets is not None else [*seed_nets(), ("ResNet-50-size net", ResNet50().eval(), (3, "H", "W"), 224)]
    for name, model, shape, _ in nets:
        t_plain = _median(lambda: symshape.analyze(model, shape, prove=False), repeat, _cold_caches)
        t_proved = _median(lambda: symshape.analyze(model, shape), repeat, _cold_caches)
        proof = symshape.analyze(model, shape).proof
        rows.append({"benchmark": f"{name}: proved at {proof}", "plain": t_plain, "proved": t_proved})
    return rows


# -- 2. one in_features against a meta-device forward; a million sizes ---------------------------

def value_vs_meta(nets=None) -> list[dict]:
    rows = []
    for name, model, shape, size in (nets if nets is not None else seed_nets()):
        f = symshape.analyze(model, shape).formula()
        meta = features(model).to("meta")  # up to the flat size, as a user would run it
        x = _input(shape[0], size, size, "meta")
        with torch.no_grad():
            t_meta = _per_call("meta(x)", meta=meta, x=x)
        t_f = _per_call("f(H=size, W=size)", f=f, size=size)
        assert f(H=size, W=size) == _eager(features(model), _input(shape[0], size, size)), name
        rows.append({"benchmark": f"in_features at {size}x{size}, {name}: `Analysis.formula()(H=, W=)`",
                     "symshape": t_f, "anchor": t_meta, "anchor_name": "one meta-device forward"})
    return rows


def grid_million(side: int = 1024, repeat: int = 5, checks: int = 40) -> list[dict]:
    name, model, shape, size = seed_nets()[0]
    f = symshape.analyze(model, shape).formula()
    t = _median(lambda: f.grid(H=range(1, side + 1), W=range(1, side + 1)), repeat)
    g = f.grid(H=range(1, side + 1), W=range(1, side + 1))
    # proof at random sizes (and the smallest corner) against the real forward
    truth = features(model)
    rng = random.Random(0)
    for h, w in [(1, 1), (16, 16), (15, 40)] + [(rng.randint(1, min(side, 120)), rng.randint(1, min(side, 120))) for _ in range(checks)]:
        got = _eager(truth, _input(shape[0], h, w))
        assert (int(g.values[h - 1, w - 1]) if g.valid[h - 1, w - 1] else None) == got, (h, w)
    meta = features(model).to("meta")
    with torch.no_grad():
        one = _per_call("meta(x)", meta=meta, x=_input(shape[0], size, size, "meta"))
    return [{"benchmark": f"in_features at every H, W in 1..{side} ({side * side:,} sizes), {name}: "
                          f"`Formula.grid`", "symshape": t, "anchor": one * side * side,
             "anchor_name": f"{side * side:,} meta-device forwards (one, times {side * side:,})"}]


# -- 4. exactness beside torch.export -----------------------------------------------------------

def _export_program(model, c: int, size: int):
    """torch.export's program for the features model and its symbolic in_features."""
    ep = _export(model, _input(c, size, size))
    out = next(n for n in ep.graph.nodes if n.op == "output").args[0][0].meta["val"]
    x = [n for n in ep.graph.nodes if n.op == "placeholder"][-1].meta["val"]
    dims = [d.node.expr if isinstance(d, torch.SymInt) else None for d in x.shape[2:]]
    last = out.shape[-1]
    expr = last.node.expr if isinstance(last, torch.SymInt) else sympy.Integer(int(last))
    return ep.module(), expr, dims


def exactness(upto: int = 256, nets=None) -> list[dict]:
    """Square sizes 1..upto: how often each tool refuses a size torch runs, accepts one torch
    refuses, or states a wrong in_features."""
    rows = []
    nets = nets if nets is not None else [*seed_nets(), ("ceil_mode chain", ceil_chain().eval(), (1, "H", "W"), 28)]
    for name, model, shape, size in nets:
        truth = features(model)
        c = shape[0]
        program, expr, dims = _export_program(truth, c, size)
        f = symshape.analyze(model, shape).formula()
        count = {"valid": 0, "exp_rejects": 0, "exp_wrong": 0, "exp_formula_wrong": 0,
                 "sym_rejects": 0, "sym_accepts": 0, "sym_wrong": 0}
        for s in range(1, upto + 1):
            x = _input(c, s, s)
            real = _eager(truth, x)
            count["valid"] += real is not None
            ran = _eager(program, x)
            value = int(expr.xreplace({d: s for d in dims if d is not None}))
            if real is not None:
                count["exp_rejects"] += ran is None
                # the program's formula as a statement about in_features, guards aside
                count["exp_formula_wrong"] += value != real
            if ran is not None:
                count["exp_wrong"] += value != ran
            ok = f.accepts(H=s, W=s)
            count["sym_rejects"] += real is not None and not ok
            count["sym_accepts"] += real is None and ok
            if ok and real is not None:
                count["sym_wrong"] += f(H=s, W=s) != real
        sym_bad = count["sym_rejects"] + count["sym_accepts"] + count["sym_wrong"]
        assert sym_bad == 0, (name, count)
        rows.append({"net": name, "formula_export": str(expr), "formula_symshape": str(f.expr), **count})
    return rows


# -- 5. cold start -------------------------------------------------------------------------------

def cold_start(runs: int = 10) -> list[dict]:
    """``symshape formula`` on a seed example, end to end, against ``python -c "import torch"``;
    and the same with the ordinary interpreter shutdown (``SYMSHAPE_SLOW_EXIT=1``), which the
    command skips. symshape's bytecode is compiled first, as ``pip install`` does."""
    py = sys.executable
    subprocess.run([py, "-m", "compileall", "-q", os.path.join(ROOT, "symshape")], check=True)
    env = dict(os.environ, PYTHONPATH=ROOT)
    cmd = [py, "-m", "symshape", "formula", os.path.join(EXAMPLES, "seed000_mnist.py") + ":Net", "--input", "1,H,W"]
    slow_env = dict(env, SYMSHAPE_SLOW_EXIT="1")
    base, ours, slow = [], [], []
    for _ in range(runs):
        for times, args, e in ((base, [py, "-c", "import torch"], env), (ours, cmd, env), (slow, cmd, slow_env)):
            t = time.perf_counter()
            out = subprocess.run(args, check=True, env=e, capture_output=True, text=True).stdout
            times.append(time.perf_counter() - t)
            assert args is not cmd or "20*floor((H - 12)/4)*floor((W - 12)/4)" in out, out
    b = statistics.median(base)
    name = "`symshape formula examples/seed000_mnist.py:Net --input 1,H,W`, end to end"
    return [{"benchmark": name, "symshape": statistics.median(t), "anchor": b,
             "anchor_name": "`python -c \"import torch\"`", "added": statistics.median(t) - b}
            for t, name in ((ours, name), (slow, name + ", with the ordinary interpreter shutdown"))]


# -- memory ----------------------------------------------------------------------------------------

_RSS = """
import sys, tracemalloc
sys.path.insert(0, {here!r}); sys.path.insert(0, {root!r})
import symshape
from nets import ResNet50

def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":"))

model = ResNet50().eval()
before = status("VmRSS")
tracemalloc.start()
a = symshape.analyze(model, (3, "H", "W"))
assert a.formula()(H=224, W=224) == 2048
traced = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
print(before, status("VmRSS"), status("VmHWM"), traced // 1024, len(a.steps))
"""


def peak_rss() -> dict:
    """Memory of a process that builds the ResNet-50-size net, then analyzes it (Linux): RSS
    before and after, the process's peak RSS, and the peak of Python allocations during
    analyze (tracemalloc), all in MiB."""
    out = subprocess.run([sys.executable, "-c", _RSS.format(here=HERE, root=ROOT)], check=True,
                         capture_output=True, text=True).stdout.split()
    before, after, peak, traced, steps = map(int, out)
    return {"before_mib": before / 1024, "after_mib": after / 1024, "peak_mib": peak / 1024,
            "traced_mib": traced / 1024, "steps": steps}
