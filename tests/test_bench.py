"""The benchmarks still run and still agree with their brute-force anchors (no timing asserted)."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))

import bench_solve  # noqa: E402


def test_solve_benchmark_agrees_with_scans_on_a_small_grid():
    rows = bench_solve.solve_vs_scan(side=300, repeat=1, python=True)
    assert len(rows) == 2 and all(r["symshape"] > 0 and r["anchor"] > 0 for r in rows)


def test_unet_benchmark_runs():
    (row,) = bench_solve.unet_valid_sizes(repeat=1)
    assert "H ≡ 0 (mod 32)" in row["benchmark"]
