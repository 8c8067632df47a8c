"""The package's layering, enforced by import-linter (contracts in pyproject.toml).

Dependencies point one way (rules -> trace/engine -> evaluation -> the modules that answer
questions -> analysis -> cli), and no module of a package imports another that imports it back,
counting imports inside functions.
"""

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_import_contracts_are_kept():
    exe = shutil.which("lint-imports", path=os.path.dirname(sys.executable)) or shutil.which("lint-imports")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("CI installs the test extra, which includes import-linter")
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    run = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 kept, 0 broken" in run.stdout, run.stdout


def test_no_function_is_longer_than_80_lines():
    import ast
    import pathlib

    long = []
    for path in sorted(pathlib.Path(ROOT, "symshape").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > 80:
                    long.append(f"{path.name}:{node.lineno} {node.name} ({length} lines)")
    assert not long, long
