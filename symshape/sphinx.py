"""Sphinx extension: with ``extensions = ["symshape.sphinx"]`` in conf.py, the directive

.. code-block:: rst

   .. symshape:: examples/seed003_cs231n.py:simple_model
      :input: 3,H,W
      :at: H=32,W=32

writes that model's derivation into the page at build time: as typeset math (``:format: math``,
the default: an amsmath ``align*`` block, rendered by Sphinx's math support) or as the plain-text
derivation (``:format: text``). The model spec is relative to the folder of conf.py. Options:
``:input:`` (required), ``:at:``, ``:layer:``, ``:summary-only:``, ``:full:`` (see
:mod:`symshape.embed`). A model symshape cannot render is a build error naming the reason.
Needs Sphinx (``pip install '.[sphinx]'`` in a clone).
"""

from __future__ import annotations

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util.docutils import SphinxDirective

from . import __version__
from .embed import derivation
from .errors import SymshapeError
from .load import ModelLoadError

__all__ = ["SymshapeDirective", "setup"]


def _format(argument: str) -> str:
    return directives.choice(argument, ("math", "text"))


class SymshapeDirective(SphinxDirective):
    """``.. symshape:: file.py:Name`` with the options of :mod:`symshape.embed`."""

    required_arguments = 1
    has_content = False
    option_spec = {"input": directives.unchanged_required, "at": directives.unchanged,
                   "layer": directives.unchanged, "summary-only": directives.flag, "full": directives.flag,
                   "format": _format}

    def run(self) -> list[nodes.Node]:
        fmt = self.options.get("format", "math")
        options = {k: v for k, v in self.options.items() if k != "format"}
        options["format"] = "latex" if fmt == "math" else "text"
        try:
            text = derivation(self.arguments[0], options, self.env.app.confdir)
        except (SymshapeError, ModelLoadError) as e:
            raise self.error(f"symshape: {e}") from None
        if fmt == "text":
            return [nodes.literal_block(text, text)]
        body = "\n".join(line for line in text.splitlines() if not line.startswith("%"))
        return [nodes.math_block(body, body, nowrap=True, docname=self.env.docname, number=None, label=None)]


def setup(app) -> dict:
    app.add_directive("symshape", SymshapeDirective)
    return {"version": __version__, "parallel_read_safe": True, "parallel_write_safe": True}
