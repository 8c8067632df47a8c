"""Hostile but fair inputs to symshape's API and CLI (issue 22 point 8), shared by the test suite
(tests/test_hostile_fuzz.py, a few hundred cases) and bench/hostile.py (thousands, with figures).

Each case calls the public API or the command line with arguments drawn from hypothesis
strategies, and classifies the outcome:

* ``answer``: a result, checked against torch where it claims something about a size
  (``at()``/``formula()`` values, ``valid_sizes().contains`` at small sizes);
* ``clean``: a documented error (``SymshapeError``; CLI exit 1 or 2 with one line on stderr);
* ``crash``: anything else (a raw ``TypeError``, a traceback);
* ``wrong``: an answer torch contradicts.

Hangs are bounded by the caller (hypothesis deadlines, the bench's timeout).
"""

from __future__ import annotations

import contextlib
import io
import keyword
import os

import torch
import torch.nn as nn
from hypothesis import strategies as st

import symshape
from symshape.cli import main

#: small models the cases analyze: a conv stack with a Linear, one with a guard, a 1-D net
MODELS = {
    "mnist": (lambda: nn.Sequential(nn.Conv2d(1, 4, 5), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 12 * 12, 3)),
              (1, "H", "W")),
    "lazy": (lambda: nn.Sequential(nn.Conv2d(1, 4, 3, stride=2), nn.Flatten(), nn.LazyLinear(3)), (1, "H", "W")),
    "audio": (lambda: nn.Sequential(nn.Conv1d(2, 4, 4, stride=2), nn.AdaptiveAvgPool1d(3), nn.Flatten(),
                                    nn.Linear(12, 2)), (2, "L")),
}

_WEIRD_NAMES = ["H", "W", "L", "N", "self", "format", "type", "int", "lambda", "class", "_x", "1H", "H W", "",
                "h\u00e9", "None", "x" * 300]
_WEIRD_VALUES = [0, 1, 2, 3, 7, 28, 64, -1, -(2 ** 63), 2 ** 62, 2 ** 64, 10 ** 30, 1.5, 28.0, float("nan"),
                 float("inf"), True, False, None, "28", "H", "__import__('os')", b"28", (28,), [28], {"H": 28}]

weird_value = st.sampled_from(_WEIRD_VALUES) | st.integers(-5, 2 ** 70) | st.floats(allow_nan=True)
weird_name = st.sampled_from(_WEIRD_NAMES) | st.text(max_size=6)
size_dict = st.dictionaries(weird_name, weird_value, max_size=4)


#: what the last crashes were (for the failing test's message)
LAST: list[str] = []


def _torch_runs(model: nn.Module, shape: tuple) -> bool:
    try:
        with torch.no_grad():
            model(torch.zeros(shape))
        return True
    except Exception:  # noqa: BLE001 - torch's refusal is the observation
        return False


def _small(sizes: dict) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 48 for v in sizes.values())


def api_case(data) -> str:
    """One API case drawn from ``data`` (a hypothesis ``data`` object); the outcome's class."""
    key = data.draw(st.sampled_from(sorted(MODELS)))
    make, shape = MODELS[key]
    if data.draw(st.integers(0, 4)) == 0:  # one case in five: a hostile input shape
        shape = tuple(data.draw(st.lists(weird_name | weird_value, min_size=0, max_size=4)))
    try:
        analysis = symshape.analyze(make(), shape)
    except symshape.SymshapeError:
        return "clean"
    except Exception as e:  # noqa: BLE001
        LAST.append(f"analyze({shape!r}): {type(e).__name__}: {e}")
        return "crash"
    call = data.draw(st.sampled_from(["at", "evaluate", "formula", "grid", "valid_sizes", "solve", "contains",
                                      "verify", "explain", "check"]))
    plausible = st.fixed_dictionaries({n: st.integers(1, 48) for n in analysis.size_names})
    kwargs = data.draw(st.one_of(plausible, plausible, size_dict))
    try:
        if call in ("at", "evaluate"):
            ev = getattr(analysis, call)(**kwargs)
            if _small(kwargs) and set(kwargs) == set(analysis.size_names):
                if _torch_runs(make(), (1, *_concrete(analysis, kwargs))) != (ev.first_problem() is None):
                    LAST.append(f"WRONG {call}({kwargs!r}) on {key} {shape!r}")
                    return "wrong"
        elif call == "formula":
            f = analysis.formula()
            value = f(**kwargs)
            if _small(kwargs):
                ev = analysis.evaluate(**kwargs)
                if ev.in_features[f.layer] != value:
                    LAST.append(f"WRONG formula({kwargs!r}) on {key} {shape!r}")
                    return "wrong"
        elif call == "grid":
            analysis.formula().grid(**{k: data.draw(st.sampled_from([[v], v, range(1, 4), [v, 3]]))
                                       for k, v in kwargs.items()})
        elif call == "valid_sizes":
            batch = data.draw(weird_value)
            valid = analysis.valid_sizes(batch=batch)
            sizes = data.draw(st.fixed_dictionaries({n: st.integers(1, 40) for n in analysis.size_names}))
            if isinstance(batch, int) and 1 <= batch <= 4:  # else only "answers or refuses cleanly"
                if valid.contains(**sizes) != _torch_runs(make(), (batch, *_concrete(analysis, sizes))):
                    LAST.append(f"WRONG valid_sizes(batch={batch}).contains({sizes}) on {key} {shape!r}")
                    return "wrong"
        elif call == "solve":
            analysis.solve(data.draw(weird_value), batch=data.draw(weird_value))
        elif call == "contains":
            analysis.valid_sizes().contains(**kwargs)
        elif call == "verify":
            analysis.verify(samples=data.draw(st.sampled_from([0, 1, -1, 2.5, "3", True])) if not kwargs else 1,
                            sizes=[kwargs] if kwargs else None, device=data.draw(st.sampled_from(["meta", "cpu", "gpu"])))
        elif call == "explain":
            kwargs.pop("format", None)  # (given twice is the caller's TypeError, before symshape runs)
            analysis.explain(data.draw(st.sampled_from(["text", "md", "latex", "html", 3])), **kwargs)
        else:
            analysis.check(**kwargs)
    except symshape.SymshapeError:
        return "clean"
    except Exception as e:  # noqa: BLE001
        LAST.append(f"{call}({kwargs!r}) on {key} {shape!r}: {type(e).__name__}: {e}")
        return "crash"
    return "answer"


def _concrete(analysis, sizes: dict) -> list[int]:
    return [int(d) if d.is_Integer else sizes[str(d)] for d in analysis.input_shape]


# (no --fix: it writes to the model's file; tests/test_check.py covers it on copies)
_FLAGS = ["--input", "--kwargs", "--flat", "--max", "--layer", "--square", "--samples", "--seed",
          "--device", "--format", "--json", "--nope", "-h"]
_ARGS = ["1,H,W", "1,28,28", "2,L", "3,H", ",,", "1,-3,4", "N,H", "1,H,H", "0", "-1", "1e9", "99999999999999999999",
         "'{}'", "{}", '{"in_features": "__import__(\'os\')"}', "[1]", "text", "latex", "meta", "cpu", "fc", "",
         "\u00e9", "torch.nn:Conv2d", "missing.py:Net", "torch.nn:Nope", "os:system"]


_EX = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


_PLAUSIBLE = {
    "formula": [[], ["--json"]],
    "solve": [["--flat", "320"], ["--flat", "320", "--max", "30"], ["--flat", "7", "--square"], ["--flat", "0"],
              ["--flat", "3136", "--json"], ["--flat", "320", "--layer", "fc2"]],
    "sizes": [[], ["--max", "20"], ["--json"]],
    "explain": [[], ["--format", "md"], ["--format", "latex"], ["--json"]],
    "check": [[], ["--json"]],
    "verify": [["--samples", "2"], ["--samples", "2", "--device", "meta"], ["--samples", "1", "--json"]],
    "explain --full": [["--full"], ["--full", "--format", "latex"]],
    "fit": [["--size", "500x375"], ["--size", "H=31,W=29", "--json"], ["--size", "0x5"], ["--size", "7"],
            ["--size", "H=9"], ["--size", "1e3x3"]],
}


def cli_argv(data) -> list[str]:
    """Mostly plausible command lines (a real model, a real shape, the command's own flags), with
    hostile tokens mixed in."""
    command = data.draw(st.sampled_from(sorted(_PLAUSIBLE) + ["nope"]))
    model = data.draw(st.sampled_from([f"{_EX}/seed000_mnist.py:Net", f"{_EX}/seed001_cnnclf.py:CNNclf",
                                       f"{_EX}/unet.py:UNet", f"{_EX}/seed003_cs231n.py:simple_model",
                                       "missing.py:Net", "os:system", "torch.nn:Nope"]))
    shape = data.draw(st.one_of(*[st.sampled_from(["1,H,W", "1,28,28", "1,32,32", "3,H,W", "1,100,100", "1,H,H",
                                                   "1,L"])] * 3, st.sampled_from(_ARGS)))
    flags = data.draw(st.sampled_from(_PLAUSIBLE.get(command, [[]])))
    noise = data.draw(st.one_of(st.just([]), st.just([]),
                                st.lists(st.sampled_from(_FLAGS) | st.sampled_from(_ARGS), max_size=2)))
    return [command.split()[0], model, "--input", shape, *flags, *noise]


def cli_case(argv: list[str]) -> str:
    """Run the CLI in-process on ``argv``; the outcome's class."""
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    except SystemExit as e:  # argparse's own usage errors: exit 2 with its usage text
        return "clean" if e.code in (0, 2) else "crash"
    except Exception as e:  # noqa: BLE001
        LAST.append(f"symshape {' '.join(argv)}: {type(e).__name__}: {e}")
        return "crash"
    if code == 0:
        return "answer"
    if code in (1, 2):
        lines = err.getvalue().strip().splitlines()
        # one line, ``symshape <command>: error: …``; a refusal goes on with indented lines (the
        # source line, why) and what you can do -- never a traceback
        if code == 1 or lines and lines[0].startswith(f"symshape {argv[0]}: error: ") and all(
                line.startswith("  ") or line == "what you can do:" for line in lines[1:]) \
                and "Traceback" not in err.getvalue():
            return "clean"
        LAST.append(f"symshape {' '.join(argv)}: exit {code} with {len(lines)} lines on stderr")
    return "crash"


assert not any(keyword.iskeyword(n) for n in ("H", "W", "L"))
