"""Real-model coverage: analyze every timm model (or one per family), compare with torch, side by
side with torch.export; writes docs/coverage.md.

Runs in the venv with timm and torchvision (see DEVELOPERS.md):

    python bench/sweep.py timm --per-family          # the smallest model of each family
    python bench/sweep.py timm                       # all of them (slow: hours on 2 cores)
    python bench/sweep.py timm --models resnet18,vit_tiny_patch16_224 --no-write

Each model runs in a child process (a crash, a hang past --timeout or a memory blow-up costs
that model only). Models are built under ``torch.device("meta")``, in eval mode; symshape
analyzes ``(3, H, W)``; ``verify(device="meta")`` then compares every step with torch's meta
forward at the sizes below (including sizes torch refuses), and ``valid_sizes()``, ``at()`` and
``formula()`` must not crash; ``valid_sizes()`` must hold exactly the sizes the analysis (so torch)
accepts among them. torch.export runs with ``Dim.AUTO`` on H and W at 224x224, in a
child of its own with the same timeout (neither tool's time counts against the other).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

SIZES = [(224, 224), (192, 256), (160, 160), (97, 131), (64, 64), (33, 47)]


def _families() -> dict[str, list[str]]:
    import timm
    from timm.models import _registry

    out: dict[str, list[str]] = {}
    for name in timm.list_models():
        out.setdefault(_registry._model_to_module.get(name, "?"), []).append(name)
    return out


def _build(name: str):
    import timm
    import torch

    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return timm.create_model(name, pretrained=False).eval()


def _params(name: str) -> int:
    try:
        return sum(p.numel() for p in _build(name).parameters())
    except Exception:
        return 1 << 62


def _error_class(e: BaseException) -> str:
    import symshape

    if isinstance(e, symshape.UnsupportedOperation):
        return f"op {e.op}"
    if isinstance(e, symshape.UntraceableModel):
        return "tracing"
    return type(e).__name__


#: the quick subset's sizes (``--quick``; tests/test_timm.py): one torch accepts at most models,
#: and an odd one many refuse
QUICK_SIZES = [(224, 224), (97, 131)]


def one(name: str, export: bool, sizes=None, symshape_too: bool = True) -> dict:
    """Everything about one model, as a JSON-able dict (checked at ``sizes``, SIZES by default);
    ``symshape_too=False``: torch.export only."""
    sizes = SIZES if sizes is None else sizes
    import torch

    import symshape

    row: dict = {"model": name}
    model = _build(name)
    if not symshape_too:
        return _export(row, model) if export else row
    t = time.perf_counter()
    try:
        a = symshape.analyze(model, (3, "H", "W"))
        row["analyze_s"] = round(time.perf_counter() - t, 3)
    except Exception as e:  # noqa: BLE001 - every failure is a row of the table
        row.update(status="refused", why=_error_class(e), detail=str(e).splitlines()[0][:300],
                   analyze_s=round(time.perf_counter() - t, 3))
    else:
        try:
            report = a.verify(sizes=[{"H": h, "W": w} for h, w in sizes], device="meta")
            try:
                valid = a.valid_sizes()
            except symshape.SymshapeError as e:  # documented: the solver says what it cannot solve
                valid = f"not solved ({type(e).__name__}: {str(e).splitlines()[0][:150]})"
            wrong = valid_sizes_wrong(a, valid, [{"H": h, "W": w} for h, w in sizes])
            if a.in_features:
                a.formula()
            row["status"] = "ok" if report.ok else "mismatch"
            if wrong and report.ok:
                row.update(status="valid sizes disagree", detail=wrong_detail(wrong))
            row["checked"] = report.checked
            row["torch_runs"] = sum(1 for r in report.results if r[1])
            if not report.ok:
                row["detail"] = str(report.mismatches[0])[:300]
            row["valid"] = valid.summary()[:200] if hasattr(valid, "summary") else str(valid)[:200]
            if report.ok and isinstance(valid, str):
                row["detail"] = f"valid sizes {valid}"
        except Exception as e:  # noqa: BLE001 - a crash after analysis is a finding
            row.update(status="crash after analysis", why=type(e).__name__, detail=str(e).splitlines()[0][:300])
    return _export(row, model) if export else row


def valid_sizes_wrong(analysis, valid, points: list[dict]) -> list[dict]:
    """The ``points`` where ``valid`` (``valid_sizes()``'s set, or the text of why it could not be
    solved: then none) says otherwise than the analysis, which ``verify()`` compares with torch
    (every point is evaluated: ``evaluate()`` must not crash)."""
    accepted = [(p, analysis.evaluate(**p).first_problem() is None) for p in points]
    return [] if isinstance(valid, str) else [p for p, runs in accepted if valid.contains(**p) != runs]


def wrong_detail(wrong: list[dict]) -> str:
    """:func:`valid_sizes_wrong`'s points as a row's detail."""
    return f"valid_sizes() is wrong at {', '.join('x'.join(map(str, p.values())) for p in wrong)}"


def _export(row: dict, model) -> dict:
    """torch.export with Dim.AUTO on H and W at 224x224: "ok" or the exception's class, and its time."""
    import torch
    from torch.export import Dim

    x = torch.empty(1, 3, 224, 224, device="meta")
    t = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.export.export(model, (x,), dynamic_shapes=(({2: Dim.AUTO, 3: Dim.AUTO}),))
        row["export"] = "ok"
    except Exception as e:  # noqa: BLE001
        row["export"] = type(e).__name__
    row["export_s"] = round(time.perf_counter() - t, 3)
    return row


def _child(name: str, export: bool, timeout: float, quick: bool = False) -> dict:
    """``one(name)`` in a child process (a hang or a crash costs that model only); torch.export
    runs in a second child with a timeout of its own, so neither tool's time counts for the other."""
    row = _run_child([sys.executable, __file__, "--one", name, "--no-export"] + (["--quick"] if quick else []),
                     name, timeout)
    if export:
        theirs = _run_child([sys.executable, __file__, "--one", name, "--export-only"], name, timeout)
        row["export"] = theirs.get("export") or theirs.get("status", "?")
        if "export_s" in theirs:
            row["export_s"] = theirs["export_s"]
    return row


def _run_child(cmd: list[str], name: str, timeout: float) -> dict:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"model": name, "status": "timeout", "why": f"over {timeout:.0f} s"}
    for line in reversed(out.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
    return {"model": name, "status": "child crashed", "why": tail[:200]}


def _write(rows: list[dict], per_family: dict[str, str], path: str, elapsed: float) -> None:
    import torch

    try:
        import timm
        tv = timm.__version__
    except Exception:
        tv = "?"
    ok = sum(r.get("status") == "ok" for r in rows)
    exported = sum(r.get("export") == "ok" for r in rows)
    speed = [r["export_s"] / r["analyze_s"] for r in rows if r.get("status") == "ok" and r.get("export") == "ok"
             and r.get("analyze_s")]
    lines = [
        "# Coverage: timm",
        "",
        f"Measured by `python bench/sweep.py timm{' --per-family' if per_family else ''}` on "
        f"{datetime.date.today()} with torch {torch.__version__}, timm {tv} ({elapsed / 60:.0f} min on this "
        "machine). Each model is built under `torch.device(\"meta\")` in eval mode and analyzed with input "
        "`(3, H, W)`; `verify(device=\"meta\")` compares every step with torch at "
        + ", ".join(f"{h}×{w}" for h, w in SIZES)
        + " (sizes torch refuses included), and `valid_sizes()`, `evaluate()` and `formula()` must not crash "
        "(raise anything but symshape's documented errors: a solver's `Unsolvable` is shown in the why "
        "column); `valid_sizes()` must hold exactly the sizes among these that torch accepts. "
        "torch.export runs with `Dim.AUTO` on H and W at 224×224, in a child of its own with the same "
        "timeout.",
        "",
        f"**symshape analyzes and agrees with torch: {ok} / {len(rows)}; torch.export exports: "
        + (f"{exported} / {len(rows)}**" if any("export" in r for r in rows) else "not run (--no-export)**")
        + (f"; where both do, symshape is {sorted(speed)[len(speed) // 2]:.1f}× faster (median)." if speed else "."),
        "",
        "| family | model | symshape | why / first mismatch | analyze s | torch.export | export s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        fam = per_family.get(r["model"], "")
        why = (r.get("why", "") + (": " if r.get("why") and r.get("detail") else "") + r.get("detail", ""))
        why = why.replace("|", "\\|").replace("\n", " ")[:160]
        lines.append(f"| {fam} | {r['model']} | {r.get('status', '?')} | {why} | {r.get('analyze_s', '')} | "
                     f"{r.get('export', '')} | {r.get('export_s', '')} |")
    classes: dict[str, int] = {}
    for r in rows:
        if r.get("status") != "ok":
            key = f"{r.get('status')}: {r.get('why', '')}"
            classes[key] = classes.get(key, 0) + 1
    lines += ["", "## Why the others stop", "", "| class | models |", "|---|---|"]
    lines += [f"| {k.replace('|', '/')} | {v} |" for k, v in sorted(classes.items(), key=lambda kv: -kv[1])] \
        or ["| (none: every model analyzes and agrees with torch) | 0 |"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def _done_rows(path: str) -> dict[str, dict]:
    """The rows an earlier run with ``--rows path`` wrote, by model (none if the file is new)."""
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.startswith("{")]
    return {r["model"]: r for r in rows}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("suite", nargs="?", default="timm", choices=["timm"])
    p.add_argument("--per-family", action="store_true", help="the smallest model (by parameters) of each family")
    p.add_argument("--models", help="comma-separated model names")
    p.add_argument("--one", help=argparse.SUPPRESS)
    p.add_argument("--no-export", action="store_true", help="skip torch.export")
    p.add_argument("--export-only", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--quick", action="store_true", help="check two sizes instead of six")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per model (default 300)")
    p.add_argument("--no-write", action="store_true", help="print rows, do not write docs/coverage.md")
    p.add_argument("--out", default=os.path.join(ROOT, "docs", "coverage.md"))
    p.add_argument("--rows", metavar="FILE.jsonl",
                   help="append each model's row to FILE as it is done, and skip models already in it "
                        "(a run of all 1,371 models can stop and go on)")
    args = p.parse_args(argv)
    if args.one:
        print(json.dumps(one(args.one, not args.no_export, QUICK_SIZES if args.quick else None,
                             symshape_too=not args.export_only)))
        return 0
    start = time.perf_counter()
    families = _families()
    family_of = {m: f for f, ms in families.items() for m in ms}
    if args.models:
        names = args.models.split(",")
    elif args.per_family:
        names = [min(ms, key=_params) for _, ms in sorted(families.items())]
    else:
        names = sorted(family_of)
    done = _done_rows(args.rows) if args.rows else {}
    rows = []
    for i, name in enumerate(names, 1):
        if name in done:
            rows.append(done[name])
            continue
        row = _child(name, not args.no_export, args.timeout, args.quick)
        rows.append(row)
        if args.rows:
            with open(args.rows, "a") as f:
                f.write(json.dumps(row) + "\n")
        print(f"[{i}/{len(names)}] {name}: {row.get('status')} {row.get('why', '')} "
              f"{row.get('analyze_s', '')}s export={row.get('export', '')}", flush=True)
    if not args.no_write:
        _write(rows, family_of, args.out, time.perf_counter() - start)
    ok = sum(r.get("status") == "ok" for r in rows)
    print(f"symshape: {ok} / {len(rows)} analyze and agree with torch")
    return 0


if __name__ == "__main__":
    sys.exit(main())
