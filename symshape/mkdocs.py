"""MkDocs plugin: with ``plugins: [search, symshape]`` in mkdocs.yml, each fenced block

    ```symshape
    model: examples/seed003_cs231n.py:simple_model
    input: 3,H,W
    at: H=32,W=32
    ```

is replaced, at build time, by that model's derivation in Markdown with math (for the site's
MathJax through ``pymdownx.arithmatex``). ``model`` is a model spec as on the command line,
relative to the folder of mkdocs.yml (or the plugin's ``base`` option); the other keys are the
options of :mod:`symshape.embed` (``input``, ``at``, ``layer``, ``summary-only``, ``full``,
``format``); a key without a value (``full``) is a flag. A block symshape cannot render fails the
build with the page and the reason.
"""

from __future__ import annotations

import html as htmlmod
import os
import re

from mkdocs.config import config_options
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin

from .embed import derivation
from .errors import SymshapeError
from .load import ModelLoadError

__all__ = ["SymshapePlugin", "parse_block", "to_mathml"]

FENCE = re.compile(r"^```symshape[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)


def parse_block(body: str) -> dict[str, str | None]:
    """``key: value`` lines (a bare ``key`` is a flag); blank lines and ``#`` comments skipped."""
    out: dict[str, str | None] = {}
    for line in body.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, colon, value = line.partition(":")
        out[key.strip()] = value.strip() if colon else None
    return out


#: the math pymdownx.arithmatex (generic mode) leaves in a page: \( … \) inline, \[ … \] on its own
ARITHMATEX = re.compile(r'<(span|div) class="arithmatex">\s*\\([(\[])(.*?)\\[)\]]\s*</\1>', re.S)


INLINE = re.compile(r"\\\((.*?)\\\)", re.S)


def to_mathml(html: str) -> str:
    """The page with every arithmatex formula as MathML (latex2mathml), which browsers display
    natively: no script and no network needed to read the math."""
    try:
        from latex2mathml.converter import convert
    except ImportError:
        raise PluginError("the symshape plugin's mathml option needs latex2mathml (pip install latex2mathml)") from None

    def mathml(tex: str, display: str) -> str:
        tex = htmlmod.unescape(tex).strip()
        try:
            return convert(tex, display=display)
        except Exception as e:  # noqa: BLE001 - latex2mathml's own errors: name the formula
            raise PluginError(f"cannot write this formula as MathML: {tex[:120]} ({type(e).__name__}: {e})") from None

    html = ARITHMATEX.sub(lambda m: mathml(m.group(3), "block" if m.group(2) == "[" else "inline"), html)
    # what is left is math in text arithmatex did not wrap (a heading's entry in the table of
    # contents): outside code, \( … \) too
    parts = re.split(r"(<(?:pre|code)\b.*?</(?:pre|code)>)", html, flags=re.S)
    return "".join(p if i % 2 else INLINE.sub(lambda m: mathml(m.group(1), "inline"), p) for i, p in enumerate(parts))


class SymshapePlugin(BasePlugin):
    #: base: what model paths are relative to (default: the folder of mkdocs.yml); mathml: write
    #: every page's math as MathML at build time (needs latex2mathml) instead of leaving it to MathJax
    config_scheme = (("base", config_options.Type(str, default="")),
                     ("mathml", config_options.Type(bool, default=False)))

    def on_post_page(self, output, page, config):
        # the whole page, its table of contents included (a heading's math is there too)
        return to_mathml(output) if self.config["mathml"] else output

    def on_page_markdown(self, markdown, page, config, files):
        base = self.config["base"] or os.path.dirname(os.path.abspath(config.config_file_path))

        def expand(match: re.Match) -> str:
            options = parse_block(match.group(1))
            spec = options.pop("model", None)
            try:
                if not spec:
                    raise ModelLoadError("the block has no 'model: file.py:Name' line")
                return derivation(spec, {"format": "markdown", **options}, base)
            except (SymshapeError, ModelLoadError) as e:
                raise PluginError(f"{page.file.src_path}: symshape block: {e}") from None
        return FENCE.sub(expand, markdown)
