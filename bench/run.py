"""Run symshape's benchmarks, print a table and write docs/performance.md.

    python bench/run.py            # everything (a few minutes: it includes a 16.7M-size Python scan)
    python bench/run.py --quick    # skip the pure-Python brute-force scan
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

import bench_solve  # noqa: E402
import symshape  # noqa: E402


def fmt(seconds) -> str:
    if seconds is None:
        return "-"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1000:.1f} ms" if seconds >= 1e-3 else f"{seconds * 1e6:.1f} µs"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, torch {torch.__version__}, "
            f"sympy {sympy.__version__}, symshape {symshape.__version__}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="skip the pure-Python brute-force scan")
    parser.add_argument("--no-write", action="store_true", help="print only; do not write docs/performance.md")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    rows += bench_solve.solve_vs_scan(python=not args.quick)
    rows += bench_solve.unet_valid_sizes()
    header = "| benchmark | symshape | anchor | anchor time | ratio |\n| --- | --- | --- | --- | --- |"
    lines = []
    for r in rows:
        ratio = f"{r['anchor'] / r['symshape']:.0f}× faster" if r["anchor"] else "-"
        lines.append(f"| {r['benchmark']} | {fmt(r['symshape'])} | {r['anchor_name']} | {fmt(r['anchor'])} | {ratio} |")
    table = "\n".join([header, *lines])
    print(table)
    if not args.no_write:
        stamp = datetime.date.today().isoformat()
        page = f"""# Performance

Measured by `python bench/run.py` on {stamp}: {machine()}.
Times are medians of repeated runs in one process (solver caches cleared before each run);
every symshape answer is checked against the anchor's own answer in the same run.

{table}
"""
        with open(os.path.join(ROOT, "docs", "performance.md"), "w", encoding="utf-8") as f:
            f.write(page)
        print(f"\nwritten: docs/performance.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
