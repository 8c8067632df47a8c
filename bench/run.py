"""Run symshape's benchmarks, print the tables and write docs/performance.md.

    python bench/run.py            # everything (about 2 minutes, plus 10 s for a 16.7M-size Python scan)
    python bench/run.py --quick    # skip the pure-Python brute-force scan
    python bench/run.py --no-write # print only

Every symshape answer is checked against real torch (or the anchor's own answer) in the same
run: a benchmark raises instead of reporting a number that is wrong.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys

import sympy
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)

import bench_core  # noqa: E402
import bench_solve  # noqa: E402
import symshape  # noqa: E402


def fmt(seconds) -> str:
    if seconds is None:
        return "-"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds * 1e6:.2f} µs" if seconds < 1e-5 else f"{seconds * 1e6:.1f} µs"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, torch {torch.__version__}, "
            f"sympy {sympy.__version__}, symshape {symshape.__version__}")


def ratio_table(rows: list[dict], target: float | None = None, header: bool = True) -> str:
    lines = ["| benchmark | symshape | anchor | anchor time | ratio |", "| --- | --- | --- | --- | --- |"]
    lines = lines if header else []
    for r in rows:
        ratio = r.get("ratio", "-")
        if r["anchor"] and "ratio" not in r:
            x = r["anchor"] / r["symshape"]
            ratio = f"{x:,.0f}× faster" if x >= 10 else f"{x:.1f}× faster"
            if target is not None:
                ratio += "" if x >= target else f" (target {target:.0f}×: **missed**)"
        lines.append(f"| {r['benchmark']} | {fmt(r['symshape'])} | {r['anchor_name']} | {fmt(r['anchor'])} | {ratio} |")
    return "\n".join(lines)


def depth_table(rows: list[dict]) -> str:
    def cell(v):
        return fmt(v) if isinstance(v, float) else str(v)

    lines = ["| convs | `solve(4)` | `solve(4, square=True)` | `valid_sizes()` | `exact_sizes()` | meta-forward scan |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['k']} | {cell(r['solve'])} | {cell(r['square'])} | {cell(r['valid'])} | {cell(r['exact'])} | "
                     f"{fmt(r['scan'])} ({r['sides']:,} forwards, {r['scan_how']}) |")
    return "\n".join(lines)


def exactness_table(rows: list[dict], upto: int) -> str:
    lines = ["| net | sizes torch runs | torch.export's program refuses | torch.export's formula wrong | "
             "symshape wrong | torch.export's formula | symshape's formula |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        sym = r["sym_rejects"] + r["sym_accepts"] + r["sym_wrong"]
        lines.append(f"| {r['net']} | {r['valid']} of {upto} | {r['exp_rejects']} | {r['exp_formula_wrong']} | "
                     f"**{sym}** | `{r['formula_export']}` | `{r['formula_symshape']}` |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="skip the pure-Python brute-force scan")
    parser.add_argument("--no-write", action="store_true", help="print only; do not write docs/performance.md")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    def step(title):
        print(f"... {title}", file=sys.stderr, flush=True)

    step("analyze() against torch.export")
    analyze_rows = bench_core.analyze_vs_export()
    step("one value against a meta-device forward; a million sizes")
    value_rows = bench_core.value_vs_meta()
    grid_rows = bench_core.grid_million()
    step("the inverse problem")
    solve_rows = bench_solve.solve_vs_scan(python=not args.quick) + bench_solve.unet_valid_sizes()
    step("the solver against depth")
    depth_rows = bench_solve.solve_vs_depth()
    step("exactness beside torch.export")
    upto = 256
    exact_rows = bench_core.exactness(upto)
    step("the proof: one meta-device forward per analyze()")
    proof_rows = bench_core.proof_cost()
    step("cold start")
    cold = bench_core.cold_start()
    step("memory")
    rss = bench_core.peak_rss()

    resnet = next(r for r in analyze_rows if "ResNet" in r["benchmark"])
    sections = [
        ("1. `analyze()` against `torch.export`",
         "Target: at least 10× faster on every seed net and on a ResNet-50-size net, which should "
         f"take under 300 ms (it takes {fmt(resnet['symshape'])}). symshape analyzes the whole model "
         "with its sympy caches cleared before each run; torch.export gets the model up to the flat "
         "size (its Linear layers made pass-through, since it stops at the seeds' wrong ones), warm.",
         ratio_table(analyze_rows, 10)),
        ("2. One in_features value against a meta-device forward",
         "Target: at least 100× faster than one meta-device forward (of the model up to the flat "
         "size), and every H, W in 1..1024 in under 1 s. `Analysis.formula()` compiles the formula "
         "and every check torch makes on the way into one Python function; `Formula.grid` runs the "
         "same code on int64 tensors. The grid's answers are checked against real forwards at "
         "random sizes in the same run.",
         ratio_table(value_rows, 100) + "\n" + ratio_table(grid_rows, header=False)),
        ("3. The inverse problem",
         "Targets: `solve()` for a flat size with ≥ 100 divisors on a 10-layer 2-D net under 50 ms; "
         "`valid_sizes()` of a 5-level U-Net under 100 ms. The solver's answer equals the scans' "
         "answers.", ratio_table(solve_rows)),
        ("3b. The solver against depth",
         "Target: `solve`, `valid_sizes` and `exact_sizes` on 20 stride-2 layers in under 50 ms, square "
         "included, with no period limit. k stride-2 convolutions give in_features "
         "`floor((H + 2^k - 1)/2^k) * floor((W + 2^k - 1)/2^k)`, which repeats only every 2^k sizes. "
         "A monotone condition on one size is solved in closed form (an affine floor) or by bisection "
         "(any nondecreasing composition of floors, sums, products and powers); each layer's "
         "no-rounding condition, on the residue class the earlier layers left, is one linear "
         "congruence (the Chinese remainder theorem). Times with the solver's caches cleared; the "
         "anchor is the brute force, one meta-device forward per square size H = W in 1..2^(k+1) "
         "(the sizes that can give in_features 4), checked against the solver where measured.",
         depth_table(depth_rows)),
        ("4. Exactness beside speed",
         f"Square inputs H = W = 1..{upto}. For each size the truth is a real CPU forward of the model "
         "up to the flat size. *torch.export's program refuses*: sizes torch runs at which the "
         "exported program raises (its guards were inferred from one example size). *torch.export's "
         "formula wrong*: sizes torch runs at which the program's symbolic in_features differs from "
         "the real one. *symshape wrong*: sizes refused that torch runs, accepted that torch "
         "refuses, or with a wrong value (`Analysis.formula`); the benchmark fails unless it is 0.",
         exactness_table(exact_rows, upto)),
        ("5. Cold start",
         "Target: `symshape formula` on a seed example, end to end, adds at most 0.5 s to "
         "`python -c \"import torch\"` (medians of 10 runs each, alternating; symshape's bytecode "
         "compiled, as `pip install` does). The interpreter's shutdown after importing torch takes "
         "about 0.3 s (module teardown, garbage collection); the command skips it once its output "
         "is flushed (`os._exit`, see `symshape.cli.run`), so the second row, with the ordinary "
         "shutdown, shows what symshape's own work costs: mostly importing sympy.",
         ratio_table([{**c, "ratio": f"adds {fmt(c['added'])}"
                       + ("" if c["added"] <= 0.5 or "ordinary" in c["benchmark"] else " (target 0.5 s: **missed**)")}
                      for c in cold])),
        ("6. The trace proves itself",
         "`analyze()` runs one forward of a meta-device copy of the model at a size the analysis "
         "accepts and compares every step (`Analysis.proof` says where); `prove=False` skips it. "
         "What that costs, medians with sympy caches cleared:",
         "\n".join(["| net | analyze(prove=False) | analyze() | the proof adds |", "| --- | --- | --- | --- |"]
                   + [f"| {r['benchmark']} | {fmt(r['plain'])} | {fmt(r['proved'])} | "
                      f"{fmt(r['proved'] - r['plain'])} ({(r['proved'] / r['plain'] - 1) * 100:.0f}%) |"
                      for r in proof_rows])),
        ("Memory",
         f"A process that imports torch and symshape, builds the ResNet-50-size net ({rss['steps']} "
         f"steps, 25.6M parameters) and analyzes it: RSS {rss['before_mib']:.0f} MiB before "
         f"`analyze()`, {rss['after_mib']:.0f} MiB after; the process's peak RSS "
         f"{rss['peak_mib']:.0f} MiB. Python allocations during `analyze()` peak at "
         f"{rss['traced_mib']:.1f} MiB (tracemalloc).", ""),
    ]
    def worst(rows):
        return min(r["anchor"] / r["symshape"] for r in rows)

    solve_t = solve_rows[0]["symshape"]
    deepest = max(depth_rows, key=lambda r: r["k"])
    deep = [deepest[k] for k in ("solve", "square", "valid", "exact")]
    deep_t = max(deep) if all(isinstance(v, float) for v in deep) else None
    unet_t = solve_rows[-1]["symshape"]
    sym_wrong = sum(r["sym_rejects"] + r["sym_accepts"] + r["sym_wrong"] for r in exact_rows)
    checks = [
        ("`analyze()` at least 10× faster than torch.export on each net", f"slowest ratio {worst(analyze_rows):.0f}×",
         worst(analyze_rows) >= 10),
        ("ResNet-50-size net analyzed in under 300 ms", fmt(resnet["symshape"]), resnet["symshape"] < 0.3),
        ("one in_features value at least 100× faster than a meta-device forward",
         f"slowest ratio {worst(value_rows):.0f}×", worst(value_rows) >= 100),
        ("every H, W in 1..1024 in under 1 s", fmt(grid_rows[0]["symshape"]), grid_rows[0]["symshape"] < 1),
        ("`solve()` with ≥ 100 divisors under 50 ms", fmt(solve_t), solve_t < 0.05),
        ("U-Net `valid_sizes()` under 100 ms", fmt(unet_t), unet_t < 0.1),
        ("`solve`, `valid_sizes`, `exact_sizes` on 20 stride-2 layers under 50 ms, square included",
         fmt(deep_t) if deep_t is not None else "Unsolvable", deep_t is not None and deep_t < 0.05),
        (f"sizes in 1..{upto} where symshape is wrong: 0", str(sym_wrong), sym_wrong == 0),
        ("cold start adds at most 0.5 s", f"{fmt(cold[0]['added'])} ({fmt(cold[1]['added'])} with the ordinary shutdown)",
         cold[0]["added"] <= 0.5),
    ]
    summary = "\n".join(["| target | measured | met |", "| --- | --- | --- |"]
                         + [f"| {t} | {m} | {'yes' if ok else '**no**'} |" for t, m, ok in checks])
    sections.insert(0, ("Targets", "", summary))
    body = "\n\n".join(f"## {title}\n\n{text}\n\n{table}".replace("\n\n\n", "\n\n").rstrip()
                         for title, text, table in sections)
    print(body)
    if not args.no_write:
        stamp = datetime.date.today().isoformat()
        page = (f"# Performance\n\nMeasured by `python bench/run.py` on {stamp}: {machine()}.\n"
                "Times are medians of repeated runs in one process unless a section says otherwise; "
                "every symshape answer is checked against real torch or the anchor's own answer in "
                "the same run.\n\n" + body + "\n")
        with open(os.path.join(ROOT, "docs", "performance.md"), "w", encoding="utf-8") as f:
            f.write(page)
        print("\nwritten: docs/performance.md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
