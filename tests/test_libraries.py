"""segmentation_models_pytorch and MONAI, and transformers', diffusers', ultralytics' and the
model zoos' models where those are installed (pytest -m libraries): bench/libraries.py at two
sizes (and the size a zoo's model is made for).

Needs both libraries (and einops, for MONAI's transformers) in the zoo venv (DEVELOPERS.md): run
before landing a change to tracing or rules. Each configuration runs in a child process, built
under ``torch.device("meta")``, analyzed and compared with torch's meta forward at two sizes;
``valid_sizes()``, ``evaluate()`` and ``formula()`` must not crash, and ``valid_sizes()`` must hold
exactly the sizes among the two that torch accepts. Skipped where either library is absent (the
default test run).
"""

import os
import sys

import pytest

pytestmark = pytest.mark.libraries
pytest.importorskip("segmentation_models_pytorch", reason="needs segmentation_models_pytorch (see DEVELOPERS.md)")
pytest.importorskip("monai", reason="needs MONAI (see DEVELOPERS.md)")
pytest.importorskip("einops", reason="MONAI's transformers need einops (see DEVELOPERS.md)")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))

import libraries  # noqa: E402

#: configurations refused by name (docs/coverage-libraries.md says why): every other one analyzes
#: and agrees with torch, and must stay so
NOT_YET: set[str] = set()
# (MONAI's SwinUNETR-3d was, until its window counts stopped branching; transformers' Hiera, until
# a view that only splits where its element count holds was one at any strides; ViTMAE, until
# gather read the bound of argsort's indices; pretrainedmodels' NASNet-A Large, until a slice
# one row and column short of its map, `floor((H + 5)/16)` of `floor((H + 21)/16)`, was row-major)


@pytest.mark.parametrize("name", list(libraries.CONFIGS))
def test_library_model(name):
    row = libraries.child(name, timeout=300, quick=True)
    # never a wrong answer, never a crash: a disagreement with torch, an exception after analysis
    # or a dead child (MONAI's HighResNet once took the process down) fails whatever the model
    assert row["status"] not in ("mismatch", "valid sizes disagree", "crash after analysis", "child crashed"), row
    if name not in NOT_YET:
        assert row["status"] == "ok", row
    if row["status"] == "refused":  # the error names the op or construct
        assert row.get("why") and row.get("detail"), row
