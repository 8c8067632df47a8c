import json
import os
import sys
import warnings

import pytest
from hypothesis import HealthCheck, settings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
sys.path.insert(0, EXAMPLES)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

warnings.filterwarnings("ignore", category=UserWarning)

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.register_profile(
    "ci", parent=settings.get_profile("default"), derandomize=True, print_blob=True
)
settings.load_profile("ci" if os.environ.get("CI") else "default")

if os.environ.get("PYTEST_XDIST_WORKER"):
    # one thread per worker: with pytest -n auto the workers share the cores, and torch's own
    # intra-op threads beside them only oversubscribe
    import torch

    torch.set_num_threads(1)

collect_ignore = []


def pytest_addoption(parser):
    parser.addoption("--regen-golden", action="store_true", help="rewrite tests/golden/ from the current output")


@pytest.fixture
def examples_dir():
    return EXAMPLES


def _tallies() -> dict:
    """This process's fuzz tallies (the test modules count as they run)."""
    out = {}
    for key, module in (("random", "test_random_models"), ("independent", "test_independent_fuzz")):
        m = sys.modules.get(module)
        if m is not None and m.TALLY["models"]:
            out[key] = dict(m.TALLY)
    oracle = sys.modules.get("oracle")
    if oracle is not None and oracle.BACKEND_DEPENDENT["count"]:
        out["backend"] = {"count": oracle.BACKEND_DEPENDENT["count"]}
    return out


#: the tallies of pytest-xdist's workers, summed as each finishes (the controller runs no tests)
_FROM_WORKERS: dict = {}


def pytest_sessionfinish(session):
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: hand the tallies to the controller
        workeroutput["symshape_tallies"] = json.dumps(_tallies())


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    for key, tally in json.loads(getattr(node, "workeroutput", {}).get("symshape_tallies", "{}")).items():
        mine = _FROM_WORKERS.setdefault(key, {})
        for k, v in tally.items():
            mine[k] = mine.get(k, 0) + v


def pytest_terminal_summary(terminalreporter):
    tallies = _FROM_WORKERS or _tallies()
    t = tallies.get("random")
    if t:
        terminalreporter.write_line(
            f"symshape random models: {t['models']} models analyzed and {t['refused_models']} refused at "
            f"analysis, {t['sizes']} sizes checked against torch "
            f"({t['accepted']} accepted, {t['refused']} refused), {t['disagreements']} disagreements; "
            f"Analysis.verify: {t['verify_checks']} checks in the analyzed mode, all agreeing"
        )
    t = tallies.get("independent")
    if t:
        terminalreporter.write_line(
            f"symshape independent fuzz: {t['models']} models from torchvision's blocks analyzed and "
            f"{t['refused_models']} refused at analysis, {t['sizes']} sizes checked step by step "
            f"({t['accepted']} accepted), {t['disagreements']} disagreements")
    t = tallies.get("backend")
    if t:
        terminalreporter.write_line(
            f"symshape: {t['count']} sizes where torch's backend skipped a check "
            "symshape applies (empty transposed-convolution outputs, attention's value length; see "
            "docs/how-it-works.md)"
        )
