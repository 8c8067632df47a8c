"""Inverse-solving benchmarks: solve() against brute-force scans, valid_sizes() on a U-Net."""

from __future__ import annotations

import statistics
import time

import torch

import symshape
from symshape.compiled import compile_exprs
from symshape.dims import size_symbol
from symshape.quasi import quasi

from nets import ten_layer_2d, unet5

FLAT = 64 * 2 * 3 * 4 * 5 * 6 * 7  # 322560 = 2^10 * 3^2 * 5 * 7: 132 divisors


def _timed(fn, repeat: int, before=None):
    """Median wall time of ``fn()`` over ``repeat`` runs (``before()`` runs untimed first)."""
    times, out = [], None
    for _ in range(repeat):
        if before is not None:
            before()
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def _scan_exprs(a):
    """Everything a concrete check needs: each requirement's expressions, then in_features."""
    exprs, checks = [], []
    for _, r in a.requirements:
        checks.append((r, len(exprs), len(r.exprs())))
        exprs += r.exprs()
    return exprs, checks


def vectorized_scan(a, flat: int, side: int):
    """Brute force: symshape's compiled formula and checks over every (H, W) in 1..side, as
    torch integer tensors (the fastest scan we could write)."""
    H, W = size_symbol("H"), size_symbol("W")
    exprs, checks = _scan_exprs(a)
    expr = a.in_features["11"]
    fn = compile_exprs([size_symbol("N"), H, W], [*exprs, expr])
    hs = torch.arange(1, side + 1, dtype=torch.int64)[:, None]
    ws = torch.arange(1, side + 1, dtype=torch.int64)[None, :]
    vals = fn(1, hs, ws)
    ok = torch.ones(side, side, dtype=torch.bool)
    for r, i, n in checks:
        lhs, rhs = vals[i], vals[i + 1]
        assert r.relation == ">=" and r.unless is None, r
        ok &= torch.as_tensor(lhs >= rhs).expand(side, side)
    hits = (ok & (torch.as_tensor(vals[-1]).expand(side, side) == flat)).nonzero() + 1
    return {(int(h), int(w)) for h, w in hits}


def python_scan(a, flat: int, side: int):
    """Brute force as a user would write it: the compiled evaluator at every (H, W)."""
    H, W = size_symbol("H"), size_symbol("W")
    exprs, checks = _scan_exprs(a)
    fn = compile_exprs([size_symbol("N"), H, W], [*exprs, a.in_features["11"]])
    found = set()
    for h in range(1, side + 1):
        for w in range(1, side + 1):
            v = fn(1, h, w)
            if v[-1] == flat and all(r.accepts(v[i:i + n]) for r, i, n in checks):
                found.add((h, w))
    return found


def solve_vs_scan(side: int = 4096, repeat: int = 7, python: bool = True) -> list[dict]:
    net = ten_layer_2d()
    a = symshape.analyze(net, (3, "H", "W"))
    divisors = sum(1 for d in range(1, FLAT + 1) if FLAT % d == 0)
    t_solve, got = _timed(lambda: a.solve(FLAT), repeat, quasi.cache_clear)
    mine = {(r["H"], r["W"]) for r in got.enumerate(side)}
    t_vec, found = _timed(lambda: vectorized_scan(a, FLAT, side), 3)
    assert mine == found, "solver and scan disagree"
    name = (f"solve(flat={FLAT}) on a 10-layer 2-D net: {divisors} divisors, "
            f"{len(mine)} sizes in 1..{side}^2")
    rows = [{"benchmark": name, "symshape": t_solve, "anchor": t_vec,
             "anchor_name": f"vectorized torch scan of the compiled formula, 1..{side}^2"}]
    if python:
        t_py, found_py = _timed(lambda: python_scan(a, FLAT, side), 1)
        assert mine == found_py, "solver and Python scan disagree"
        rows.append({"benchmark": name, "symshape": t_solve, "anchor": t_py,
                     "anchor_name": f"Python scan of the compiled formula, 1..{side}^2"})
    return rows


def unet_valid_sizes(repeat: int = 7) -> list[dict]:
    net = unet5()
    a = symshape.analyze(net, (1, "H", "W"))
    t, got = _timed(a.valid_sizes, repeat, quasi.cache_clear)
    assert str(got) == "H ≥ 32, H ≡ 0 (mod 32) and W ≥ 32, W ≡ 0 (mod 32)", str(got)
    return [{"benchmark": f"valid_sizes() of a 5-level U-Net ({len(a.steps)} steps, {len(a.requirements)} checks): {got}",
             "symshape": t, "anchor": None, "anchor_name": "target: under 100 ms"}]


def _stride_chain(k: int) -> torch.nn.Module:
    convs = [torch.nn.Conv2d(1, 1, 3, stride=2, padding=1) for _ in range(k)]
    return torch.nn.Sequential(*convs, torch.nn.Flatten(), torch.nn.LazyLinear(2))


def _meta_scan(net, sides) -> dict[int, int]:
    """in_features at H = W = s for each s, one meta-device forward each (the brute force)."""
    body = net[:-1].to("meta")
    out = {}
    with torch.no_grad():
        for s in sides:
            out[s] = body(torch.empty(1, 1, s, s, device="meta")).shape[-1]
    return out


def solve_vs_depth(depths=(5, 10, 15, 20), scanned_up_to: int = 10, repeat: int = 5) -> list[dict]:
    """k stride-2 convs (in_features ``floor((H + 2^k - 1)/2^k) * floor((W + 2^k - 1)/2^k)``):
    solve(4), solve(4, square=True), valid_sizes() and exact_sizes() against k; the anchor is a
    scan of meta-device forwards over H = W in 1..2^(k+1) (the sizes that can give 4), measured
    up to ``scanned_up_to`` layers and extrapolated from a 200-forward sample beyond."""
    from symshape.quasi import Unsolvable

    rows = []
    for k in depths:
        net = _stride_chain(k)
        a = symshape.analyze(net, (1, "H", "W"))
        times = {}
        for label, fn in (("solve", lambda: a.solve(4)), ("square", lambda: a.solve(4, square=True)),
                          ("valid", a.valid_sizes), ("exact", a.exact_sizes)):
            try:
                times[label], got = _timed(fn, repeat, quasi.cache_clear)
                if label == "square":  # exactly H = W in [2^k + 1, 2^(k+1)]
                    assert len(got.boxes) == 1 and got.min() == {"H": (1 << k) + 1, "W": (1 << k) + 1}, str(got)
                    edges = [(1 << k) + 1, 1 << (k + 1)]
                    assert all(got.contains(H=s, W=s) for s in edges), str(got)
                    assert not any(got.contains(H=s, W=s) for s in (1 << k, (1 << (k + 1)) + 1)), str(got)
            except Unsolvable as e:
                times[label] = f"Unsolvable ({str(e)[:60]}…)"
        top = 1 << (k + 1)
        if k <= scanned_up_to:
            t = time.perf_counter()
            seen = _meta_scan(net, range(1, top + 1))
            scan, how = time.perf_counter() - t, "measured"
            assert {s for s, v in seen.items() if v == 4} == set(range((1 << k) + 1, top + 1))
        else:
            sample = range(top - 199, top + 1)
            t = time.perf_counter()
            _meta_scan(net, sample)
            scan, how = (time.perf_counter() - t) / len(sample) * top, "extrapolated from 200 forwards"
        rows.append({"k": k, **times, "scan": scan, "scan_how": how, "sides": top})
    return rows
