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


import bench_core  # noqa: E402
from nets import ceil_chain  # noqa: E402


def _seed(name):
    return next(n for n in bench_core.seed_nets() if n[0] == name)


def test_analyze_against_export_runs_and_agrees():
    (row,) = bench_core.analyze_vs_export([_seed("seed 003 simple_model")], repeat=1, export_repeat=1)
    assert row["symshape"] > 0 and row["anchor"] > 0


def test_proof_cost_benchmark_runs_and_names_where_it_proved():
    (row,) = bench_core.proof_cost([_seed("seed 003 simple_model")], repeat=1)
    assert row["plain"] > 0 and row["proved"] > 0
    assert "proved at H=32, W=32" in row["benchmark"]  # its fixed Linear fits only at 31 and 32


def test_value_and_grid_benchmarks_check_against_torch():
    rows = bench_core.value_vs_meta([_seed("seed 000 NetMaxPool")])
    assert rows[0]["anchor"] > 0
    (grid,) = bench_core.grid_million(side=64, repeat=1, checks=10)
    assert "4,096 sizes" in grid["benchmark"]


def test_exactness_counts_torch_export_and_symshape():
    rows = bench_core.exactness(40, [_seed("seed 000 Net"), ("ceil_mode chain", ceil_chain().eval(), (1, "H", "W"), 28)])
    net, chain = rows
    # symshape is never wrong (the benchmark itself raises otherwise); export refuses H = 16..19
    assert net["valid"] == 25 and net["exp_rejects"] == 4
    assert net["sym_rejects"] == net["sym_accepts"] == net["sym_wrong"] == 0
    assert chain["formula_symshape"] == "4*floor((H + 10)/12)*floor((W + 10)/12)"


def test_cold_start_and_memory_report():
    rows = bench_core.cold_start(runs=1)
    assert len(rows) == 2 and all(r["symshape"] > 0 and r["anchor"] > 0 for r in rows)
    rss = bench_core.peak_rss()
    assert rss["after_mib"] >= rss["before_mib"] > 0 and rss["steps"] > 100


def test_depth_benchmark_runs_and_agrees_with_its_meta_scan():
    rows = bench_solve.solve_vs_depth(depths=(4, 12), scanned_up_to=4, repeat=1)
    assert [r["k"] for r in rows] == [4, 12] and rows[0]["scan_how"] == "measured"
    assert all(isinstance(r[k], float) for r in rows for k in ("solve", "square", "valid", "exact"))


import sweep  # noqa: E402


def test_sweep_rows_file_resumes_by_model(tmp_path):
    """``--rows``: each row a JSON line; a run that stopped goes on with the models not in it."""
    path = tmp_path / "rows.jsonl"
    assert sweep._done_rows(str(path)) == {}
    path.write_text('{"model": "a", "status": "ok"}\n{"model": "b", "status": "timeout"}\npartial line\n')
    done = sweep._done_rows(str(path))
    assert set(done) == {"a", "b"} and done["b"]["status"] == "timeout"
