"""A model's derivation for a documentation page, from options as a docs tool passes them (the
Sphinx directive ``symshape.sphinx`` and the MkDocs plugin ``symshape.mkdocs`` share this).

Options (all text, none evaluated as code): ``input`` (``3,H,W``; several inputs separated by
``;``), ``at`` (``H=32,W=32``), ``layer`` (stop at this fixed layer and summarize only it),
``summary-only``, ``full`` and ``format`` (``markdown``, ``latex`` or ``text``). The model is
loaded as the command line loads it (``file.py:Name``, relative to ``base``), in eval mode.
"""

from __future__ import annotations

import os
from typing import Mapping

from .analysis import analyze
from .errors import InvalidArgument
from .load import input_spec, load_model

__all__ = ["OPTIONS", "derivation", "parse_sizes"]

#: the options a page may give, each with whether it takes a value
OPTIONS = {"input": True, "at": True, "layer": True, "summary-only": False, "full": False, "format": True}


def parse_sizes(text: str) -> dict[str, int]:
    """``"H=32,W=32"`` -> ``{"H": 32, "W": 32}``."""
    out: dict[str, int] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, eq, value = part.partition("=")
        if not eq or not name.strip().isidentifier() or not value.strip().isdigit():
            raise InvalidArgument(f"at: expected sizes such as H=32,W=32, got {text!r}")
        out[name.strip()] = int(value.strip())
    return out


def derivation(spec: str, options: Mapping[str, str | None], base: str = ".") -> str:
    """The derivation of the model ``spec`` as ``options`` ask, in their ``format``."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise InvalidArgument(f"unknown option(s) {', '.join(unknown)}; symshape takes: {', '.join(OPTIONS)}")
    if not options.get("input"):
        raise InvalidArgument("the input option is required, e.g. input: 3,H,W")
    fmt = options.get("format") or "markdown"
    where, colon, name = spec.rpartition(":")
    if colon and where.endswith(".py") and not os.path.isabs(where):
        spec = f"{os.path.join(base, where)}:{name}"
    model = load_model(spec)
    model.eval()  # the inference question, as on the command line
    try:
        shapes = input_spec([t.strip() for t in options["input"].split(";")])
    except ValueError as e:
        raise InvalidArgument(str(e).replace("--input", "input")) from None
    analysis = analyze(model, shapes)
    sizes = parse_sizes(options.get("at") or "")
    return str(analysis.explain(fmt, "full" in options, layer=options.get("layer") or None,
                                summary_only="summary-only" in options, **sizes))
