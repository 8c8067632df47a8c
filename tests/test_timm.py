"""timm, one model per family (pytest -m timm): the quick subset of bench/sweep.py.

Needs timm, which needs torchvision: run in the zoo venv (DEVELOPERS.md), before landing a change
to tracing or rules. Each model runs in a child process (bench/sweep.py ``--one --quick``),
built under ``torch.device("meta")``, analyzed with input ``(3, H, W)`` and compared with
torch's meta forward at 224x224 and 97x131; ``valid_sizes()``, ``evaluate()`` and ``formula()``
must not crash, and ``valid_sizes()`` must hold exactly the sizes among these that torch accepts.
Skipped where timm is absent (the default test run).
"""

import os
import sys

import pytest

pytestmark = pytest.mark.timm
pytest.importorskip("timm", reason="the timm sweep needs timm (see DEVELOPERS.md)")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))

import sweep  # noqa: E402

#: the smallest model (by parameters) of each of timm 1.0.31's 98 families, as
#: ``python bench/sweep.py timm --per-family`` picks them
MODELS = [
    "beit_base_patch16_224", "cait_xxs24_224", "coat_tiny", "convit_tiny", "convmixer_768_32",
    "cpubone_nano", "crossvit_tiny_240", "cs3darknet_focus_s", "csatv2", "cspnext_tiny",
    "davit_tiny", "deepseek_vit_412m", "deit_tiny_patch16_224", "densenet121", "dla46x_c",
    "dpn48b", "edgenext_xx_small", "efficientformer_l1", "efficientformerv2_s0", "efficientvim_m1",
    "efficientvit_b0", "efficientvit_m0", "ese_vovnet19b_slim_dw", "fasternet_t0", "fastvit_t8",
    "focalnet_tiny_srf", "gcvit_xxtiny", "gemma4_vit_167m", "ghostnet_050", "gmlp_ti16_224",
    "halonet_h1", "hardcorenas_b", "hgnetv2_b0", "hiera_tiny_224", "hrnet_w18_small", "iformer_t",
    "inception_next_atto", "inception_resnet_v2", "inception_v3", "inception_v4", "lcnetv2_small",
    "legacy_seresnet18", "legacy_xception", "levit_128s", "lowformer_b0", "mobilenetv3_small_050",
    "mobilenetv5_base", "mobilevit_xxs", "mvitv2_tiny", "naflexvit_base_patch16_parfac_gap",
    "nasnetalarge", "nest_tiny", "nextvit_small", "pit_ti_224", "pnasnet5large",
    "poolformerv2_s12", "pvt_v2_b0", "qwen3_vit_88m", "rdnet_tiny", "regnetx_002",
    "repghostnet_050", "repvit_m1", "res2next50", "resnest14d", "resnetv2_18", "rexnet_100",
    "sam2_hiera_tiny", "samvit_base_patch16_224", "selecsls42", "sequencer2d_s", "shvit_s1",
    "skresnet18", "starnet_s050", "swiftformer_xs", "swin_tiny_patch4_window7_224",
    "swinv2_cr_tiny_224", "swinv2_tiny_window8_256", "test_byobnet", "test_coatnet",
    "test_convnext", "test_efficientnet", "test_mambaout", "test_nfnet", "test_resnet", "test_vit",
    "test_vit_relpos", "tiny_vit_5m_224", "tnt_s_legacy_patch16_224", "tresnet_m",
    "twins_svt_small", "vgg11", "visformer_tiny", "vit_tiny_patch16_dinov3_qkvb",
    "vit_tiny_r_s16_p8_224", "vitamin_small_224", "volo_d1_224", "xception41p",
    "xcit_nano_12_p8_224",
]

#: larger models of a family that a change once lost while the family's smallest still passed
#: (found by ``bench/timm_speed.py all``): a list argument the call appends to (DLA, VoVNet),
#: window partitions at stride 32 (MaxViT-RMLP at 384)
LARGER = ["dla169", "ese_vovnet57b", "maxvit_rmlp_base_rw_384"]

#: the families that do not analyze yet (docs/coverage.md says why); every other model analyzes
#: and agrees with torch, and must stay so. (MViTv2, which indexes its relative-position tables
#: with ``(arange(q) * max(k / q, 1.0) - ...).long()`` in float32, was refused by name until
#: symshape followed that arithmetic exactly: tests/test_rel_pos.py.)
NOT_YET: set = set()
KNOWN_OK = set(MODELS + LARGER) - NOT_YET


@pytest.mark.parametrize("name", MODELS + LARGER)
def test_timm_family(name):
    row = sweep._child(name, export=False, timeout=120, quick=True)
    # never a wrong answer, never a crash: a disagreement with torch, an exception after
    # analysis or a dead child fails whatever the model
    assert row["status"] not in ("mismatch", "valid sizes disagree", "crash after analysis", "child crashed"), row
    if name in KNOWN_OK:
        assert row["status"] == "ok", row
    if row["status"] == "refused":  # the error names the op or construct
        assert row.get("why") and row.get("detail"), row


def test_a_wrong_valid_sizes_is_a_finding(monkeypatch):
    """The sweep reads ``valid_sizes()`` at each size it checks: a set that holds a size the
    analysis (and torch) refuses makes the row a finding, not "ok"."""
    import symshape
    from symshape.sizes import IntSet, SizeSet

    row = sweep.one("vit_tiny_patch16_224", export=False, sizes=[(224, 224), (160, 160)])
    assert row["status"] == "ok", row  # H = 224 and W = 224: right at both
    every = SizeSet(("H", "W"), [{"H": IntSet.all(), "W": IntSet.all()}])
    monkeypatch.setattr(symshape.Analysis, "valid_sizes", lambda self, *args, **kwargs: every)
    row = sweep.one("vit_tiny_patch16_224", export=False, sizes=[(224, 224), (160, 160)])
    assert row["status"] == "valid sizes disagree" and "160x160" in row["detail"], row


def test_the_speed_run_reads_valid_sizes_against_the_analysis():
    """bench/timm_speed.py ``--valid-sizes`` lists the sizes of its grid where the answer and the
    analysis differ: none for ViT's own answer, 224 x 224 alone left out of a wrong one."""
    import torch
    import timm
    import timm_speed

    import symshape
    from symshape.sizes import IntSet, SizeSet

    with torch.device("meta"):
        model = timm.create_model("vit_tiny_patch16_224", pretrained=False).eval()
    analysis = symshape.analyze(model, (3, "H", "W"))
    assert timm_speed.valid_wrong(analysis, analysis.valid_sizes()) == []
    every = SizeSet(("H", "W"), [{"H": IntSet.all(), "W": IntSet.all()}])
    wrong = timm_speed.valid_wrong(analysis, every)
    assert [224, 224] not in wrong and len(wrong) == len(timm_speed.GRID) - 1


def test_gcvit_valid_sizes_agree_with_torch():
    """GC ViT's attention reshape checks ``64·N·a·b·c·d == 3136·N·a·c`` (window counts ``a``, ``c``
    on both sides): the solver cancels the shared factors (docs/solving.md), and its valid sizes
    are those torch's meta forward runs at, on a band around 224 and on squares."""
    import warnings

    import torch
    import timm

    import symshape

    with torch.device("meta"):
        model = timm.create_model("gcvit_xxtiny", pretrained=False).eval()
    valid = symshape.analyze(model, (3, "H", "W")).valid_sizes()

    def runs(h, w):
        try:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model(torch.empty(1, 3, h, w, device="meta"))
            return True
        except Exception:
            return False

    points = [(h, 224) for h in range(196, 252, 3)] + [(224, w) for w in range(197, 252, 3)] + \
        [(s, s) for s in (1, 8, 29, 112, 220, 221, 222, 223, 224, 225, 448)]
    accepted = [p for p in points if runs(*p)]
    assert accepted and len(accepted) < len(points)  # both answers occur on this band
    assert [p for p in points if valid.contains(H=p[0], W=p[1])] == accepted
