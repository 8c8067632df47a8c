"""The torchvision classification zoo (weights=None): analyze, verify, smallest size; writes docs/zoo.md.

Runs in a venv with torchvision (see DEVELOPERS.md):

    python bench/zoo.py            # every model, then docs/zoo.md
    python bench/zoo.py resnet18   # some
"""

from __future__ import annotations

import datetime
import os
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

import torch  # noqa: E402

import symshape  # noqa: E402

MODELS = ["resnet18", "resnet50", "vgg11_bn", "alexnet", "squeezenet1_1", "densenet121", "mobilenet_v2",
          "mobilenet_v3_small", "efficientnet_b0", "googlenet", "inception_v3", "shufflenet_v2_x0_5",
          "mnasnet0_5", "regnet_y_400mf", "convnext_tiny", "vit_b_16", "swin_t"]


def build(name: str):
    import torchvision.models as tvm

    kwargs = {"weights": None}
    if name in ("googlenet", "inception_v3"):
        kwargs.update(aux_logits=False, init_weights=False)
    return getattr(tvm, name)(**kwargs).eval()


def torch_smallest_square(model, upto: int = 300) -> int | None:
    """Brute force, the oracle: the smallest s at which the model runs on an s x s image."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for s in range(1, upto + 1):
            try:
                model(torch.rand(1, 3, s, s))
                return s
            except Exception:
                continue
    return None


def run(name: str, samples: int = 8) -> dict:
    model = build(name)
    times = []
    for _ in range(3):  # the median of 3 warm runs
        t = time.perf_counter()
        a = symshape.analyze(model, (3, "H", "W"))
        times.append(time.perf_counter() - t)
    t_analyze = sorted(times)[1]
    valid = a.valid_sizes()
    square = a.valid_sizes(square=True).min()["H"]
    report = a.verify(samples=samples)
    return {"model": name, "analyze": t_analyze, "valid": str(valid), "min_square": square,
            "torch_min_square": torch_smallest_square(model), "checks": report.checked,
            "mismatches": len(report.mismatches), "sizes": len(report.sizes), "report": report}


def main(argv=None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or MODELS
    import torchvision

    symshape.analyze(build("alexnet"), (3, "H", "W"))  # warm sympy's and fx's caches once
    rows = []
    for name in names:
        r = run(name)
        rows.append(r)
        print(f"{name:20s} analyze {r['analyze'] * 1000:7.1f} ms  min {r['min_square']:>3} (torch {r['torch_min_square']})"
              f"  verify {r['checks']} checks, {r['mismatches']} mismatches  valid: {r['valid']}", flush=True)
    if names == MODELS:
        lines = ["# The torchvision zoo", "",
                 f"Measured by `python bench/zoo.py` on {datetime.date.today().isoformat()} with torch "
                 f"{torch.__version__}, torchvision {torchvision.__version__} (CPU, `weights=None`, eval mode; "
                 "analyze: the median of 3 warm runs). "
                 "`min` is the smallest square image symshape says the model accepts "
                 "(`valid_sizes(square=True).min()`), next to the smallest a brute-force torch scan finds; "
                 "`verify` runs the real model at the smallest valid size, the sizes just below it, both "
                 "sides of every rounding edge and random sizes.", "",
                 "| model | analyze | valid sizes | min (symshape) | min (torch scan) | verify |",
                 "| --- | --- | --- | --- | --- | --- |"]
        for r in rows:
            verdict = f"{r['sizes']} sizes, {r['checks']} checks, {r['mismatches']} mismatches"
            lines.append(f"| {r['model']} | {r['analyze'] * 1000:.0f} ms | {r['valid']} | {r['min_square']} | "
                         f"{r['torch_min_square']} | {verdict} |")
        with open(os.path.join(ROOT, "docs", "zoo.md"), "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        print("written: docs/zoo.md")
    return 0 if all(r["mismatches"] == 0 and r["min_square"] == r["torch_min_square"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
