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

collect_ignore = []


def pytest_addoption(parser):
    parser.addoption("--regen-golden", action="store_true", help="rewrite tests/golden/ from the current output")


@pytest.fixture
def examples_dir():
    return EXAMPLES


def pytest_terminal_summary(terminalreporter):
    tally = sys.modules.get("test_random_models")
    if tally is not None and tally.TALLY["models"]:
        t = tally.TALLY
        terminalreporter.write_line(
            f"symshape random models: {t['models']} models analyzed and {t['refused_models']} refused at "
            f"analysis, {t['sizes']} sizes checked against torch "
            f"({t['accepted']} accepted, {t['refused']} refused), {t['disagreements']} disagreements; "
            f"Analysis.verify: {t['verify_checks']} checks in the analyzed mode, all agreeing"
        )
    independent = sys.modules.get("test_independent_fuzz")
    if independent is not None and independent.TALLY["models"]:
        t = independent.TALLY
        terminalreporter.write_line(
            f"symshape independent fuzz: {t['models']} models from torchvision's blocks analyzed and "
            f"{t['refused_models']} refused at analysis, {t['sizes']} sizes checked step by step "
            f"({t['accepted']} accepted), {t['disagreements']} disagreements")
    oracle = sys.modules.get("oracle")
    if oracle is not None and oracle.BACKEND_DEPENDENT["count"]:
        terminalreporter.write_line(
            f"symshape: {oracle.BACKEND_DEPENDENT['count']} sizes where torch's backend skipped a check "
            "symshape applies (empty transposed-convolution outputs, attention's value length; see "
            "docs/how-it-works.md)"
        )
