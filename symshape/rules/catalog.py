"""The table of supported operations, generated from the registry (docs/rules.md).

    python -m symshape.rules.catalog > docs/rules.md
"""

from __future__ import annotations

import inspect

from . import registered

__all__ = ["catalog_markdown"]

_KIND_TITLES = {"module": "Modules", "function": "Functions", "method": "Tensor methods"}


def _formula(fn) -> str:
    doc = inspect.getdoc(fn) or ""
    first = doc.strip().split("\n\n")[0].replace("\n", " ")
    return first.replace("|", "\\|")


def catalog_markdown() -> str:
    lines = [
        "# Supported operations",
        "",
        "Generated from symshape's rule registry by `python -m symshape.rules.catalog`; a test fails",
        "when this page and the registry differ, and every rule listed here is cross-checked against",
        "real torch forward passes (tests/test_rules.py). Any other op raises",
        "`symshape.UnsupportedOperation` naming it.",
    ]
    for kind, title in _KIND_TITLES.items():
        rules = [r for r in registered() if r.kind == kind and (r.fn.__module__ or "").startswith("symshape.rules")]
        by_rule: dict[str, list] = {}
        for r in rules:
            by_rule.setdefault(r.fn.__qualname__, []).append(r)
        lines += ["", f"## {title}", "", "| operations | rule | shape |", "| --- | --- | --- |"]
        for group in by_rule.values():
            names = ", ".join(f"`{r.target_name}`" for r in sorted(group, key=lambda r: r.target_name))
            lines.append(f"| {names} | `{group[0].name}` | {_formula(group[0].fn)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(catalog_markdown(), end="")
