"""Derivations: content (13.5 -> 13), golden files per format, LaTeX that compiles, the gallery."""

import os
import re
import shutil
import subprocess
import sys

import pytest
import torch
import torch.nn as nn

import seed000_mnist
import seed001_cnnclf
import seed002_pytorch_mnist
import resnet50
import seed003_cs231n
import symshape
from symshape.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join(ROOT, "tests", "golden")

SEEDS = {
    "seed000": (seed000_mnist.Net, (1, "H", "W"), {"H": 28, "W": 28}),
    "seed001": (seed001_cnnclf.CNNclf, (1, "H", "W"), {"H": 100, "W": 100}),
    "seed002": (seed002_pytorch_mnist.Net, (1, "H", "W"), {"H": 28, "W": 28}),
    "seed003": (lambda: seed003_cs231n.simple_model, (3, "H", "W"), {"H": 32, "W": 32}),
    "seed003-case2": (lambda: seed003_cs231n.case2_model, (3, "H", "W"), {"H": 32, "W": 32}),
}
#: a real network's derivation: golden files pin its compact shape
LARGE = {"resnet50": (lambda: resnet50.resnet50().eval(), (3, "H", "W"), {"H": 224, "W": 224})}
EXT = {"text": "txt", "markdown": "md", "latex": "tex"}


def test_thirteen_and_a_half_becomes_thirteen():
    a = symshape.analyze(seed003_cs231n.simple_model, (3, "H", "W"))
    text = a.explain(H=32, W=32)
    assert "rows:       (32 + 2·0 − 1·(7 − 1) − 1)/2 + 1 = 27/2 = 13.5 → 13" in text
    assert "floor: the last row of the 32 is never covered by a 7-wide window at stride 2" in text
    assert "31 or 33 rows would need no rounding here" in text
    assert "columns:    same as rows" in text
    assert "sizes giving 5408:   H ∈ {7, 8} and W ∈ {343, 344}; or H ∈ {31, 32} and W ∈ {31, 32}" in text
    assert "no layer rounds at:  H ≥ 7, H ≡ 1 (mod 2) and W ≥ 7, W ≡ 1 (mod 2)" in text


def flat(text: str) -> str:
    return " ".join(text.split())  # the text format wraps at 100 columns


def test_padding_ceil_mode_and_gaps_are_explained():
    a = symshape.analyze(nn.Sequential(nn.Conv1d(1, 2, 3, stride=2, padding=1), nn.MaxPool1d(2, 3, ceil_mode=True),
                                       nn.MaxPool1d(3, 2, padding=1, ceil_mode=True)), (1, "L"))
    text = flat(a.explain(L=30))
    assert "(30 + 2·1 − 1·(3 − 1) − 1)/2 + 1 = 31/2 = 15.5 → 15" in text
    assert "floor: only padding goes unused (1 position at the end)" in text
    assert "padding: 1 position at the start (used by the first window); 1 position at the end (unused)" in text
    assert "with stride 3 > the 2-wide window, 1 position between windows is never read" in text
    # torch's last-window rule: 16/3 rounds up to 6 windows, the 6th would start at 15 = 15 + 0
    assert ("ceil_mode rounds up to 6, but window 6 would start at padded position 15, where the input and "
            "its left padding (15 positions) have already ended, so torch drops it") in text
    b = symshape.analyze(nn.Sequential(nn.MaxPool1d(3, 2, ceil_mode=True)), (1, "L"))
    assert "ceil_mode rounds up: the last window starts inside the input and reaches 1 position past" in flat(
        b.explain(L=6))


@pytest.mark.parametrize("seed", sorted({**SEEDS, **LARGE}))
@pytest.mark.parametrize("fmt", ["text", "markdown", "latex"])
@pytest.mark.parametrize("at", [True, False], ids=["at", "symbolic"])
def test_golden(seed, fmt, at, request):
    make, shape, sizes = {**SEEDS, **LARGE}[seed]
    got = symshape.analyze(make(), shape).explain(fmt, **(sizes if at else {}))
    path = os.path.join(GOLDEN, f"{seed}{'-at' if at else ''}.{EXT[fmt]}")
    if request.config.getoption("--regen-golden"):
        with open(path, "w", encoding="utf-8") as f:
            f.write(got)
    with open(path, encoding="utf-8") as f:
        assert got == f.read(), f"{path} differs; regenerate on purpose with pytest --regen-golden"
    if fmt == "text":
        assert max(len(line) for line in got.splitlines()) <= 100
    if fmt == "markdown":
        check_markdown(got)
    if fmt == "latex":
        check_latex_structure(got)


def check_markdown(md: str) -> None:
    table: list[int] = []
    for line in md.splitlines() + [""]:
        if line.startswith("|"):
            table.append(len(re.findall(r"(?<!\\)\|", line)))
        else:
            assert len(set(table)) <= 1, f"ragged table before: {line!r}"
            table = []
        assert line.count("$") % 2 == 0, f"unbalanced math: {line!r}"
        assert line.count("`") % 2 == 0, f"unbalanced code: {line!r}"


def check_latex_structure(tex: str) -> None:
    body = tex.replace(r"\{", "").replace(r"\}", "")
    assert body.count("{") == body.count("}")
    assert tex.count(r"\begin{align*}") == tex.count(r"\end{align*}") == 1
    assert "_" not in re.sub(r"\\_", "", re.sub(r"\\text\{[^}]*\}", "", tex)).split("align*}")[1].replace("\\_", "")


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no pdflatex here (.ci/run installs texlive-latex-base)")
def test_latex_compiles(tmp_path):
    parts = []
    for make, shape, sizes in {**SEEDS, **LARGE}.values():
        a = symshape.analyze(make(), shape)
        parts += [a.explain("latex", **sizes), a.explain("latex")]
    doc = "\\documentclass{article}\n\\usepackage{amsmath}\n\\usepackage[margin=1cm,landscape,a3paper]{geometry}\n" \
          "\\begin{document}\n" + "\n".join(parts) + "\\end{document}\n"
    (tmp_path / "d.tex").write_text(doc, encoding="utf-8")
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "d.tex"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:]
    assert (tmp_path / "d.pdf").exists()


def test_explained_numbers_are_torchs():
    """Every rounded value in a derivation is the size torch's layer actually produced."""
    from symshape.explain import _blocks
    from symshape.verify import observe

    import torch

    for make, shape, sizes in SEEDS.values():
        a = symshape.analyze(make(), shape)
        blocks, ev, _ = _blocks(a, sizes)
        obs = observe(a.model, torch.rand(1, *(sizes.get(d, d) for d in shape)), a.graph)
        checked = 0
        for step, block in zip(a.steps, blocks):
            seen = obs.module_outputs.get(step.name) if step.kind == "module" else [obs.node_outputs.get(step.node)]
            if not seen or seen[0] is None:
                break  # torch refused here (seed 001's Linear(64, 20) at 100x100)
            actual = seen[0]
            spatial = actual[-len(block.lines):] if block.lines else ()
            for line, got in zip(block.lines, spatial):
                if line.value[0]:
                    assert int(line.value[0].split()[-1]) == got, (step.name, line)
                    checked += 1
        assert checked > 0


def test_jupyter_reprs_and_formats():
    a = symshape.analyze(seed003_cs231n.simple_model, (3, "H", "W"))
    # an Analysis shows its steps compactly; the derivation is explain()'s
    table = a._repr_markdown_()
    assert table.startswith("Sequential on input $(3, H, W)$, train mode") and "| `2.view` | `Tensor.view` |" in table
    assert not hasattr(a, "_repr_latex_") and len(table.splitlines()) < 15
    e = a.explain(H=32, W=32)
    assert isinstance(e, str) and e._repr_markdown_().startswith("### Derivation")
    assert "\\begin{align*}" in e._repr_latex_()
    # under MathJax a code label reads as written (pdflatex needs kernel\_size, MathJax does not)
    assert "kernel_size=(7, 7)" in e._repr_latex_() and "kernel\\_size" in a.explain("latex")
    printed = []

    class Printer:
        def text(self, t):
            printed.append(t)
    e._repr_pretty_(Printer(), False)
    assert printed == [str(e)] and "\n" in printed[0]
    assert a.explain("md") == a.explain("markdown")
    with pytest.raises(ValueError, match="format must be one of"):
        a.explain("html")


def test_explain_cli(capsys):
    spec = os.path.join(ROOT, "examples", "seed003_cs231n.py:simple_model")
    assert main(["explain", spec, "--input", "3,32,32"]) == 0
    out = capsys.readouterr().out
    assert "27/2 = 13.5 → 13" in out
    assert main(["explain", spec, "--input", "3,32,32", "--format", "latex"]) == 0
    assert "\\frac{27}{2} = 13.5 \\to 13" in capsys.readouterr().out
    assert main(["explain", spec, "--input", "3,H,W", "--format", "md"]) == 0
    assert "\\left\\lfloor \\frac{H - 5}{2} \\right\\rfloor" in capsys.readouterr().out


def test_gallery_is_up_to_date():
    sys.path.insert(0, os.path.join(ROOT, "docs"))
    import gen_gallery

    for name, text in gen_gallery.generate(with_plots=False).items():
        with open(os.path.join(ROOT, "docs", "gallery", name), encoding="utf-8") as f:
            assert f.read() == text, f"docs/gallery/{name} is stale: run python docs/gen_gallery.py"
        if name != "index.md":
            assert os.path.exists(os.path.join(ROOT, "docs", "gallery", name.replace(".md", ".png")))


@pytest.mark.skipif(shutil.which("mkdocs") is None and not os.path.exists(os.path.join(os.path.dirname(sys.executable), "mkdocs")),
                    reason="mkdocs not installed (pip install '.[docs]')")
def test_docs_site_builds(tmp_path):
    exe = shutil.which("mkdocs") or os.path.join(os.path.dirname(sys.executable), "mkdocs")
    run = subprocess.run([exe, "build", "--strict", "--site-dir", str(tmp_path / "site")], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    page = tmp_path / "site" / "gallery" / "seed003-cs231n" / "index.html"
    html = page.read_text(encoding="utf-8")
    # the gallery's derivations are written at build time by symshape's MkDocs plugin, and every
    # formula as MathML: no page loads a script, a style or a font from the network
    assert "<math" in html and "13.5" in html and "```symshape" not in html
    assert "\\frac" not in html and "\\(" not in html  # no TeX left for a script to typeset
    # the API reference is generated from the docstrings, so it cannot drift from the code
    reference = (tmp_path / "site" / "reference" / "index.html").read_text(encoding="utf-8")
    for name in ("valid_sizes", "exact_sizes", "is_finite", "Whether the set has finitely many sizes", "plot"):
        assert name in reference, name
    for page in (tmp_path / "site").rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert not re.search(r'<(script|link|img)[^>]+(src|href)="(https?:)?//', text), page


def test_a_python_branch_on_the_size_is_explained_case_by_case():
    """Issue 16.4: a forward that pads odd lengths to even shows both cases, and each case is
    what torch gives on its sizes."""
    import torch.nn.functional as F

    class OddPad(nn.Module):
        def forward(self, x):
            if x.size(-1) % 2 == 1:
                x = F.pad(x, (0, 1))
            return x

    text = symshape.analyze(OddPad(), (3, "L")).explain()
    assert "for L mod 2 = 1: (3, L + 1)" in text and "for L mod 2 ≠ 1: (3, L)" in text
    for n in range(1, 9):
        assert OddPad()(torch.zeros(1, 3, n)).shape[-1] == (n + 1 if n % 2 else n)


def test_the_models_own_message_is_in_the_derivation():
    class Guarded(nn.Module):
        def forward(self, x):
            if x.shape[-1] % 32 != 0:
                raise ValueError("the width must be a multiple of 32")
            return x

    text = symshape.analyze(Guarded(), (3, "H", "W")).explain()
    assert "ValueError: the width must be a multiple of 32" in text
    with pytest.raises(ValueError):
        Guarded()(torch.zeros(1, 3, 4, 33))


def _outside_code(text: str, fmt: str) -> str:
    """The text of a derivation outside its code: Markdown's code spans, LaTeX's \\texttt."""
    if fmt == "markdown":  # and its bold markers
        return re.sub(r"`[^`]*`", "", text).replace("**", "")
    return re.sub(r"\\texttt\{(?:[^{}]|\{[^}]*\})*\}", "", text).replace("{align*}", "")


@pytest.mark.parametrize("seed", sorted({**SEEDS, **LARGE}))
@pytest.mark.parametrize("fmt", ["markdown", "latex"])
@pytest.mark.parametrize("at", [True, False], ids=["at", "symbolic"])
def test_every_formula_shape_and_condition_is_typeset(seed, fmt, at):
    """No plain-text formula in LaTeX or Markdown: no ``floor(``, no ``*`` for a product, no
    ``∈ ≥ ≡`` written as characters; they are ``\\lfloor``, ``\\cdot``, ``\\in`` ... in math."""
    make, shape, sizes = {**SEEDS, **LARGE}[seed]
    text = str(symshape.analyze(make(), shape).explain(fmt, **(sizes if at else {})))
    prose = _outside_code(text, fmt)
    assert "floor(" not in prose and "Piecewise" not in prose
    assert "*" not in prose
    assert not set("∈≥≤≡∪→·") & set(prose)
    assert "\\cdot" in text and ("\\lfloor" in text or at)


@pytest.mark.parametrize("fmt", ["markdown", "latex"])
def test_cases_and_checks_are_typeset_too(fmt):
    import torch.nn.functional as F

    class OddPad(nn.Module):
        def forward(self, x):
            if x.size(-1) % 2 == 1:
                x = F.pad(x, (0, 1))
            return x

    text = str(symshape.analyze(OddPad(), (3, "L")).explain(fmt))
    assert "L \\bmod 2 = 1" in text and "(3, L + 1)" in text and "mod 2 = 1: (" not in text
    assert "→" not in _outside_code(text, fmt)  # the steps of a side too
    # a square input: a floor squared is typeset as a power of the bracket
    square = str(symshape.analyze(seed000_mnist.Net(), (1, "H", "H")).explain(fmt))
    assert "\\right\\rfloor^{2}" in square and "floor(" not in _outside_code(square, fmt)
    a = symshape.analyze(nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.Flatten(), nn.LazyLinear(5)), (3, "H", "W"))
    prose = _outside_code(str(a.explain(fmt)), fmt)
    assert "floor(" not in prose and "*" not in prose


_RESNET: dict = {}


def _resnet():
    if not _RESNET:
        _RESNET["a"] = symshape.analyze(resnet50.resnet50().eval(), (3, "H", "W"))
    return _RESNET["a"]


@pytest.mark.parametrize("at", [True, False], ids=["at", "symbolic"])
def test_a_resnet50_derivation_fits_on_a_screen(at):
    """Only the steps that change a size or round; the repeated bottlenecks that keep every size
    one line each with their count; the full derivation is still there with full=True."""
    a = _resnet()
    sizes = {"H": 224, "W": 224} if at else {}
    text = a.explain(**sizes)
    assert len(text.splitlines()) <= 50
    assert "layer1.0–2  3 × Bottleneck    sizes unchanged" in text
    assert "layer3.1–5  5 × Bottleneck    sizes unchanged" in text
    assert "layer2.0.conv2  nn.Conv2d" in text and "relu" not in text and "bn1" not in text
    full = a.explain(full=True, **sizes)
    assert len(full.splitlines()) > 3 * len(text.splitlines()) and "layer1.1.bn1" in full
    assert "not shown:           32 steps that keep every size" in text
    if at:
        assert "rows, columns: (224 + 2·3 − 1·(7 − 1) − 1)/2 + 1 = 225/2 = 112.5 → 112" in text


def test_the_collapsed_blocks_keep_every_size_in_torch():
    """What the compact derivation leaves out really keeps the sizes: each collapsed bottleneck's
    input and output have the same height and width in a real forward."""
    import resnet50 as r

    model = r.resnet50().eval()
    seen = {}

    def hook(name):
        def record(mod, args, out):
            seen[name] = (tuple(args[0].shape[2:]), tuple(out.shape[2:]))
        return record
    for name in ("layer1.0", "layer1.1", "layer1.2", "layer2.1", "layer3.5", "layer4.2"):
        model.get_submodule(name).register_forward_hook(hook(name))
    with torch.no_grad():
        model(torch.zeros(1, 3, 97, 131))
    assert all(i == o for i, o in seen.values()), seen
    assert seen.keys() == {"layer1.0", "layer1.1", "layer1.2", "layer2.1", "layer3.5", "layer4.2"}


@pytest.mark.zoo
@pytest.mark.parametrize("at", [True, False], ids=["at", "symbolic"])
def test_torchvisions_resnet50_derivation_is_the_golden_one(at):
    """torchvision's own ResNet-50 (in the zoo venv) derives exactly as examples/resnet50.py,
    whose compact derivation the golden files pin (it calls torch.flatten, the copy x.flatten)."""
    tv = pytest.importorskip("torchvision")
    with torch.device("meta"):
        model = tv.models.resnet50()
    text = symshape.analyze(model.eval(), (3, "H", "W")).explain(**({"H": 224, "W": 224} if at else {}))
    with open(os.path.join(GOLDEN, f"resnet50{'-at' if at else ''}.txt"), encoding="utf-8") as f:
        assert text == f.read().replace("Tensor.flatten", "torch.flatten")
    assert len(text.splitlines()) <= 50


def _chromium() -> str | None:
    return next((shutil.which(n) for n in ("chromium-headless-shell", "chromium", "chromium-browser",
                                           "google-chrome") if shutil.which(n)), None)


#: run in the page: every table, code block and display formula must fit in the content column,
#: or scroll inside its own box; the result is written into the DOM for --dump-dom
_LAYOUT_PROBE = """<script>
window.addEventListener("load", () => {
  const column = document.querySelector(".rst-content").getBoundingClientRect();
  const cut = [];
  for (const el of document.querySelectorAll(".rst-content table, .rst-content pre, math[display=block]")) {
    const box = el.getBoundingClientRect(), style = getComputedStyle(el);
    const scrolls = ["auto", "scroll"].includes(style.overflowX);
    if (box.right > column.right + 1 || (el.scrollWidth > el.clientWidth + 1 && !scrolls)) cut.push(el.tagName);
  }
  const math = document.querySelectorAll("math").length;
  document.body.setAttribute("data-probe", JSON.stringify({cut, math}));
});
</script>"""


_SITE: dict = {}


def _built_site(tmp_path_factory):
    if "dir" not in _SITE:
        from mkdocs.commands.build import build
        from mkdocs.config import load_config

        out = tmp_path_factory.mktemp("site")
        build(load_config(os.path.join(ROOT, "mkdocs.yml"), site_dir=str(out)))
        _SITE["dir"] = out
    return _SITE["dir"]


@pytest.mark.skipif(_chromium() is None, reason="no Chromium here (.ci/run installs chromium-headless-shell)")
@pytest.mark.parametrize("width", [1200, 390])
@pytest.mark.parametrize("page, formulas", [("gallery/seed003-cs231n", 20), ("api", 0), ("", 0)],
                         ids=["gallery", "api", "home"])
def test_pages_read_offline_in_chromium(tmp_path_factory, width, page, formulas):
    """Built pages opened offline in headless Chromium at a desktop and a phone width: the
    math is MathML (typeset by the browser, no TeX left in the text), and no table, code block
    or formula runs past the content column unless it scrolls in its own box."""
    import json

    site = _built_site(tmp_path_factory)
    path = site / page / "index.html"
    probed = path.with_name(f"probed-{width}.html")
    probed.write_text(path.read_text(encoding="utf-8").replace("</body>", _LAYOUT_PROBE + "</body>"), encoding="utf-8")
    run = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                          f"--window-size={width},2000", "--virtual-time-budget=3000", "--dump-dom", probed.as_uri()],
                         capture_output=True, text=True, timeout=120)
    dom = run.stdout
    probe = json.loads(re.search(r'data-probe="([^"]*)"', dom).group(1).replace("&quot;", '"'))
    assert probe["math"] >= formulas and probe["cut"] == [], probe
    text = re.sub(r"<(pre|code)\b.*?</\1>", "", dom, flags=re.S)
    text = re.sub(r"<[^>]+>", "", text)
    assert not re.search(r"\\\\(frac|left|lfloor|cdot|\(|\[)", text)  # no TeX left for a reader to see


def test_a_derivation_shows_a_tensor_made_for_the_sizes_whole():
    """A sample's shape leaves out the batch dim; a tensor that has none (GPT's positions,
    ``torch.arange(T)``, and their embedding) is shown whole, symbolically and at a size, and so
    is every shape of an unbatched call."""
    from test_gather import Positions

    analysis = symshape.analyze(Positions("module"), ("T",))
    assert "arange  torch.arange    (T)" in str(analysis.explain())
    text = str(analysis.explain(T=5))
    assert "arange  torch.arange    (5)" in text and "wpe  Embedding(8, 4)    (5) → (5, 4)" in text
    unbatched = str(symshape.analyze(nn.Conv1d(2, 3, 3), (2, "L"), batch=None).explain(L=9))
    assert "(2, 9) → (3, 7)" in unbatched
