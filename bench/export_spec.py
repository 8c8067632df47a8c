"""torch.export with symshape's dynamic_shapes (issue 19): the seed nets, a U-Net with skips, a
stride-32 backbone, the ceil_mode chain and, where torchvision imports, the torchvision zoo.

For each model: ``Analysis.export_spec()`` (which exports a copy of the model and narrows the
spec by what torch refuses), then an independent ``torch.export.export(model, example,
dynamic_shapes=spec.dynamic_shapes())`` run beside eager torch at sizes the spec admits.

    python bench/export_spec.py                      # the in-repo nets
    python bench/export_spec.py --zoo                # and the zoo (the zoo venv)
    python bench/export_spec.py --zoo --markdown docs/export_figures.md
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, HERE, os.path.join(ROOT, "examples")]

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

import symshape  # noqa: E402
from symshape.sizes import SizeSet  # noqa: E402


def in_repo() -> list[tuple[str, nn.Module, tuple]]:
    import resnet50
    import seed000_mnist
    import seed001_cnnclf
    import seed002_pytorch_mnist
    import seed003_cs231n
    import unet
    from nets import ceil_chain

    chain = nn.Sequential(*list(ceil_chain())[:-1]).eval()  # up to the flat size (no LazyLinear)
    return [("seed 000 Net", seed000_mnist.Net().eval(), (1, "H", "W")),
            ("seed 001 CNNclf", seed001_cnnclf.CNNclf().eval(), (1, "H", "W")),
            ("seed 002 Net", seed002_pytorch_mnist.Net().eval(), (1, "H", "W")),
            ("seed 003 simple_model", seed003_cs231n.simple_model.eval(), (3, "H", "W")),
            ("seed 003 case2_model", seed003_cs231n.case2_model.eval(), (3, "H", "W")),
            ("U-Net (examples/unet.py)", unet.UNet().eval(), (1, "H", "W")),
            ("ResNet-50 (examples/resnet50.py)", resnet50.resnet50().eval(), (3, "H", "W")),
            ("ceil_mode chain", chain, (1, "H", "W"))]


def zoo_models() -> list[tuple[str, nn.Module, tuple]]:
    import zoo
    return [(name, zoo.build(name), (3, "H", "W")) for name in zoo.MODELS]


def independent(model: nn.Module, spec, samples: int = 4) -> tuple[int, int]:
    """A fresh torch.export with the spec, its program beside eager torch at the spec's sizes."""
    ep = torch.export.export(model, *spec.example_inputs(), dynamic_shapes=spec.dynamic_shapes())
    program, agree = ep.module(), 0
    sizes = spec.members(samples)
    for s in sizes:
        args, kwargs = spec.analysis.concrete_inputs({**s, "N": spec.batch})
        gen = torch.Generator().manual_seed(0)
        x = [torch.rand(*shape, generator=gen) for shape in args]
        with torch.no_grad():
            a, b = program(*x), model(*x)
        agree += all(torch.allclose(p, q, rtol=1e-4, atol=1e-5) for p, q in
                     zip(torch.utils._pytree.tree_leaves(a), torch.utils._pytree.tree_leaves(b)))
    return agree, len(sizes)


def run(name: str, model: nn.Module, shape: tuple) -> dict:
    t = time.perf_counter()
    a = symshape.analyze(model, shape)
    valid = a.valid_sizes()
    spec = a.export_spec()
    seconds = time.perf_counter() - t
    row = {"model": name, "valid": valid.summary(), "seconds": seconds, "exports": len(spec.history),
           "first_spec_exported": spec.history[0].exported, "works": spec.checked.works,
           "refused": spec.refusals,
           "spec": ", ".join(f"{k} = {f.code()}" for k, f in spec.forms.items() if f.code() != k),
           "ranges": ", ".join(f"{r} ≥ {lo}" if hi is None else f"{r} ∈ [{lo}, {hi}]"
                               for r, (lo, hi) in spec.roots.items()),
           "unsolved": len(spec.checked.unsolved), "error": spec.checked.error}
    row["independent"] = independent(model, spec) if spec.checked.works else (0, 0)
    return row


def _refused(r: dict) -> str:
    """The valid sizes torch.export refused (the union of every finding), and how many guards."""
    found = [f for f in r["refused"] if not f.sizes.is_empty]
    unproved = len(r["refused"]) - len(found)
    parts = []
    if found:
        union = SizeSet(found[0].sizes.names, [b for f in found for b in f.sizes.boxes])
        parts.append(f"{union.summary(2)} ({len(found)} guard{'s' if len(found) > 1 else ''})")
    if unproved:
        parts.append(f"{unproved} guard{'s' if unproved > 1 else ''} torch could not prove (a residue class kept)")
    return "; ".join(parts) or "none"


def table(rows: list[dict]) -> str:
    lines = ["| model | valid sizes | the spec torch exported | torch.export calls | valid sizes torch.export "
             "refuses | a fresh export beside eager |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        spec = f"{r['spec']}; {r['ranges']}".strip("; ") if r["works"] else f"**none**: {r['error'][:100]}"
        agree, n = r["independent"]
        lines.append(f"| {r['model']} | {r['valid']} | {spec} | {r['exports']} | {_refused(r)} | "
                     f"{agree} of {n} sizes agree |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", action="store_true", help="also the torchvision zoo (needs torchvision)")
    parser.add_argument("--markdown", help="write the table to this file")
    parser.add_argument("--only", help="only models whose name contains this")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    models = in_repo() + (zoo_models() if args.zoo else [])
    rows = []
    for name, model, shape in models:
        if args.only and args.only not in name:
            continue
        try:
            r = run(name, model, shape)
        except symshape.SymshapeError as e:
            r = {"model": name, "valid": "", "seconds": 0, "exports": 0, "first_spec_exported": False,
                 "works": False, "refused": [], "spec": "", "ranges": "", "unsolved": 0,
                 "error": f"symshape: {e}", "independent": (0, 0)}
        rows.append(r)
        print(f"{name}: works={r['works']} exports={r['exports']} refused={len(r['refused'])} "
              f"agree={r['independent']} {r['seconds']:.1f}s {r['error'][:100]}", flush=True)
    works = sum(r["works"] for r in rows)
    refusing = sum(any(not f.sizes.is_empty for f in r["refused"]) for r in rows)
    summary = (f"{works} of {len(rows)} models: torch.export exports the spec symshape returns and its program "
               f"agrees with eager torch; on {refusing} of {len(rows)} torch.export refuses sizes symshape proves valid")
    print(summary)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table(rows) + "\n\n" + summary + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
