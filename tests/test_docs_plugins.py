"""The derivation in other people's docs (issue 18 points 2 and 3): a Sphinx directive and a
MkDocs plugin build a page from a model file, and refuse a model they cannot render."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEED003 = os.path.join(ROOT, "examples", "seed003_cs231n.py")


def _project(tmp_path):
    """A docs project with a copy of the seed model beside its config."""
    (tmp_path / "models").mkdir()
    shutil.copy(SEED003, tmp_path / "models" / "seed003.py")
    return tmp_path


def _sphinx(src, out) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-q", "-E", str(src), str(out)],
                          capture_output=True, text=True, timeout=300)


def test_sphinx_directive_builds_a_page_from_a_model(tmp_path):
    pytest.importorskip("sphinx")
    src = _project(tmp_path)
    (src / "conf.py").write_text('extensions = ["symshape.sphinx"]\n')
    (src / "index.rst").write_text(textwrap.dedent("""\
        Derivation
        ==========

        .. symshape:: models/seed003.py:simple_model
           :input: 3,H,W
           :at: H=32,W=32

        .. symshape:: models/seed003.py:simple_model
           :input: 3,H,W
           :format: text
           :summary-only:
        """))
    run = _sphinx(src, tmp_path / "out")
    assert run.returncode == 0, run.stderr
    html = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert r"\frac{27}{2} = 13.5 \to 13" in html  # the math, for MathJax
    assert r"\left\lfloor \frac{H - 5}{2} \right\rfloor" in html
    assert "32*floor((H - 5)/2)*floor((W - 5)/2)" in html  # the text block's summary
    assert "rows:" not in html.split("32*floor")[1]  # summary only: no steps


def test_sphinx_directive_refuses_with_the_reason(tmp_path):
    pytest.importorskip("sphinx")
    src = _project(tmp_path)
    (src / "conf.py").write_text('extensions = ["symshape.sphinx"]\n')
    (src / "index.rst").write_text("T\n=\n\n.. symshape:: models/seed003.py:nothing\n   :input: 3,H,W\n")
    run = _sphinx(src, tmp_path / "out")
    assert "symshape:" in run.stderr and "has no 'nothing'" in run.stderr


def _mkdocs(project):
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    config = load_config(str(project / "mkdocs.yml"), strict=True)
    build(config)


MKDOCS_YML = textwrap.dedent("""\
    site_name: t
    plugins:
      - symshape
    markdown_extensions:
      - tables
      - pymdownx.arithmatex:
          generic: true
    """)


def test_mkdocs_plugin_expands_a_block_into_the_derivation(tmp_path):
    pytest.importorskip("mkdocs")
    project = _project(tmp_path)
    (project / "mkdocs.yml").write_text(MKDOCS_YML)
    (project / "docs").mkdir()
    (project / "docs" / "index.md").write_text(textwrap.dedent("""\
        # Derivation

        ```symshape
        model: models/seed003.py:simple_model
        input: 3,H,W
        at: H=32,W=32
        ```
        """))
    _mkdocs(project)
    html = (project / "site" / "index.html").read_text(encoding="utf-8")
    assert r"\frac{27}{2} = 13.5 \to 13" in html and "Conv2d(3, 32, kernel_size=(7, 7), stride=(2, 2))" in html
    assert "```symshape" not in html and "model: models" not in html


def test_mkdocs_plugin_fails_the_build_with_the_page_and_reason(tmp_path):
    pytest.importorskip("mkdocs")
    import logging

    from mkdocs.exceptions import Abort

    class Keep(logging.Handler):
        def __init__(self):
            super().__init__()
            self.text = ""

        def emit(self, record):
            self.text += record.getMessage() + "\n"

    project = _project(tmp_path)
    (project / "mkdocs.yml").write_text(MKDOCS_YML)
    (project / "docs").mkdir()
    (project / "docs" / "index.md").write_text("```symshape\nmodel: models/seed003.py:simple_model\n```\n")
    kept = Keep()
    logging.getLogger("mkdocs").addHandler(kept)
    try:
        with pytest.raises(Abort):
            _mkdocs(project)
    finally:
        logging.getLogger("mkdocs").removeHandler(kept)
    assert "index.md: symshape block: the input option is required" in kept.text


def test_the_plugin_is_registered_as_an_entry_point():
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="mkdocs.plugins") if e.name == "symshape"]
    assert ep.value == "symshape.mkdocs:SymshapePlugin"


def test_mkdocs_plugin_writes_the_math_as_mathml(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("latex2mathml")
    project = _project(tmp_path)
    (project / "mkdocs.yml").write_text(MKDOCS_YML.replace("  - symshape\n", "  - symshape:\n      mathml: true\n"))
    (project / "docs").mkdir()
    (project / "docs" / "index.md").write_text(
        "# D\n\nInline $\\left\\lfloor \\frac{H - 5}{2} \\right\\rfloor$.\n\n"
        "```symshape\nmodel: models/seed003.py:simple_model\ninput: 3,H,W\n```\n")
    _mkdocs(project)
    html = (project / "site" / "index.html").read_text(encoding="utf-8")
    assert html.count("<math") > 10 and "<mfrac>" in html and "&#x0230A;" in html  # ⌊ as MathML
    assert "arithmatex" not in html and "\\lfloor" not in html


def test_embed_takes_keyword_inputs_as_the_command_line_does():
    """``input: x=3,H,W; mask=1,H,W`` (keyword inputs only) is the call model(x=..., mask=...)."""
    from symshape.embed import derivation

    import test_multi_input  # noqa: F401 - its ImageMask, as a model file below
    text = derivation(f"{test_multi_input.__file__}:ImageMask", {"input": "x=3,H,W; mask=1,H,W", "format": "text"})
    assert "inputs x (3, H, W), mask (1, H, W)" in text and "8*floor((H - 1)/2)*floor((W - 1)/2)" in text
