"""Real-model speed: ``analyze()`` (with its proof) beside ``torch.export`` on one model per timm
family, both in one process, one model after the other; writes one JSON row per model.

Runs in the venv with timm (see DEVELOPERS.md):

    python bench/timm_speed.py MODELS.txt ROWS.jsonl     # MODELS.txt: comma-separated names
    python bench/timm_speed.py all ROWS.jsonl --no-export   # every timm model, analyze() alone
    python bench/timm_speed.py all ROWS.jsonl --no-export --valid-sizes   # and valid_sizes() after it

With ``--valid-sizes`` the answer is also read, untimed, at each size of :data:`GRID` against the
analysis's own ``evaluate()`` (which ``verify()`` compares with torch): ``valid_wrong`` in the row
lists the sizes where they differ (none is the only right count).

A failure is a row too (the error's class and the time to it), so a run over every model is also
the quickest check that a change lost no model the last run analyzed (about 15 minutes for all
1,371 without torch.export, one core).

A rows file that exists is gone on from (models already in it are skipped). Each tool gets 90 s
per model; torch.export runs with ``Dim.AUTO`` on H and W at 224x224 on the meta device. Before
the first row, each tool runs once on ResNet-18 (not timed): the process's first-call costs
(imports, caches torch and sympy fill once) are nobody's model. Before each timed run Python's
garbage collector runs, untimed (``timeit`` turns it off instead): a full collection of the
process, which the garbage of every model before makes 0.15 s and more late in a run over all
models, would otherwise land in whichever run's allocations happened to trigger it.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

LIMIT = 90

#: where ``--valid-sizes`` reads the answer against the analysis: every small size near a square,
#: around multiples of 16 (patch sizes, strides) up to 624, and the sizes models are made for
GRID = [(h, w) for h in range(1, 70, 3) for w in (h, h + 1, 2 * h + 5)] + [
    (16 * k + d, 16 * j + e) for k in range(1, 40, 3) for j in (k, k + 2) for d in (-1, 0, 1) for e in (0, 1)] + [
    (s, s) for s in (224, 240, 256, 288, 384, 448, 512)] + [(192, 256), (97, 131), (33, 47)]


def valid_wrong(analysis, valid) -> list:
    """The sizes of :data:`GRID` where ``valid`` (``valid_sizes()``'s set) and ``analysis`` differ
    (bench/sweep.py's reading)."""
    from sweep import valid_sizes_wrong

    return [[p["H"], p["W"]] for p in valid_sizes_wrong(analysis, valid, [{"H": h, "W": w} for h, w in GRID])]


class _Timeout(Exception):
    pass


def _alarm(*_):
    raise _Timeout()


def main(models: str, rows: str, export: bool = True, valid: bool = False) -> None:
    import timm
    import torch
    from torch.export import Dim

    import symshape

    warnings.simplefilter("ignore")
    names = timm.list_models() if models == "all" else [n for n in open(models).read().strip(",\n").split(",") if n]
    done = {json.loads(line)["model"] for line in open(rows)} if os.path.exists(rows) else set()
    signal.signal(signal.SIGALRM, _alarm)

    def run(tool: str, model) -> None:
        if tool == "symshape":
            analyses[model] = symshape.analyze(model, (3, "H", "W"))
        elif tool == "valid_sizes":  # the solver, after the analysis (its own time)
            answers[model] = analyses[model].valid_sizes()
        else:
            torch.export.export(model, (torch.empty(1, 3, 224, 224, device="meta"),),
                                dynamic_shapes=(({2: Dim.AUTO, 3: Dim.AUTO}),))

    with torch.device("meta"):
        warm = timm.create_model("resnet18", pretrained=False).eval()
    analyses: dict = {}
    answers: dict = {}
    row: dict = {}
    tools = ("symshape", "export") if export else ("symshape",)
    if valid:
        tools = tools[:1] + ("valid_sizes",) + tools[1:]
    for tool in tools:
        run(tool, warm)
    with open(rows, "a") as out:
        for name in names:
            if name in done:
                continue
            row = {"model": name}
            analyses.clear()
            answers.clear()
            with torch.device("meta"):
                model = timm.create_model(name, pretrained=False).eval()
            for tool in tools:
                gc.collect()  # not timed: no tool pays for the garbage of the runs before it
                t = time.perf_counter()
                try:
                    # again every 5 s after the first: an alarm raised where Python ignores
                    # exceptions (a weakref callback) would otherwise be lost
                    signal.setitimer(signal.ITIMER_REAL, LIMIT, 5)
                    run(tool, model)
                    row[tool] = round(time.perf_counter() - t, 3)
                except _Timeout:
                    row[tool + "_err"] = "timeout"
                except Exception as e:  # noqa: BLE001 - every failure is a row
                    if tool == "valid_sizes" and "symshape_err" in row:
                        continue  # no analysis to ask
                    row[tool + "_err"] = type(e).__name__
                    row[tool + "_s"] = round(time.perf_counter() - t, 3)
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            if model in answers:  # (untimed)
                row["valid"] = answers[model].summary()[:200]
                row["valid_wrong"] = valid_wrong(analyses[model], answers[model])
            print(json.dumps(row), file=out, flush=True)


if __name__ == "__main__":
    flags = {"--no-export", "--valid-sizes"}
    args = [a for a in sys.argv[1:] if a not in flags]
    if len(args) != 2:
        sys.exit("usage: python bench/timm_speed.py MODELS.txt|all ROWS.jsonl [--no-export] [--valid-sizes]")
    main(*args, export="--no-export" not in sys.argv[1:], valid="--valid-sizes" in sys.argv[1:])
