"""Generate docs/gallery/: the pages on the seed models, from examples/; their derivations are
blocks that symshape's MkDocs plugin (symshape.mkdocs) expands when the site is built.

    python docs/gen_gallery.py           # rewrite the gallery (Markdown; plots need matplotlib)

A test regenerates the Markdown and fails when it differs from what is committed.
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

import symshape  # noqa: E402
from symshape.compiled import compile_exprs  # noqa: E402
from symshape.dims import size_symbol  # noqa: E402
from symshape.load import load_model  # noqa: E402
from symshape.solve import exact_sizes, solve_requirements  # noqa: E402

OUT = os.path.join(HERE, "gallery")

#: (page, title, model spec, input shape, the size the thread uses, what the thread asks)
ENTRIES = [
    ("seed000-mnist", "Where does 320 come from?", "examples/seed000_mnist.py:Net", (1, "H", "W"),
     {"H": 28, "W": 28}, "The classic MNIST net: conv 5, pool 2, conv 5, pool 2, then `x.view(x.size(0), -1)`."),
    ("seed001-cnnclf", "How to compute in_features in the CNN classifier?", "examples/seed001_cnnclf.py:CNNclf",
     (1, "H", "W"), {"H": 100, "W": 100},
     "Three conv/pool blocks, one pooling with stride 3; the thread's `nn.Linear(64, 20)` is wrong at 100×100."),
    ("seed002-pytorch-mnist", "Where has 9216 come from?", "examples/seed002_pytorch_mnist.py:Net", (1, "H", "W"),
     {"H": 28, "W": 28}, "pytorch/examples' MNIST net: two convolutions, one pooling, `torch.flatten(x, 1)`."),
    ("seed003-cs231n", "Why 5408, and why 13?", "examples/seed003_cs231n.py:simple_model", (3, "H", "W"),
     {"H": 32, "W": 32}, "A 7×7 convolution at stride 2: 32 rows give 13.5 windows, and torch keeps 13."),
    ("seed003-cs231n-case2", "Where does 64·4·4 come from?", "examples/seed003_cs231n.py:case2_model",
     (3, "H", "W"), {"H": 32, "W": 32}, "Three (conv, batch norm, ReLU, max pool) blocks: 32 → 16 → 8 → 4."),
]


def square_series(analysis, upto: int):
    """(H, in_features, valid, exact) for square inputs H = W = 1..upto, with the first Linear's
    declared in_features left out (it is the number being chosen)."""
    name, expr = analysis.linear()
    names = analysis.size_names
    reqs = [(w, r) for w, r in analysis.requirements if not (w == name and r.kind == "declared")]
    valid = solve_requirements(names, reqs)
    exact = exact_sizes(analysis, ignore_declared=True)
    fn = compile_exprs([size_symbol("N"), *(size_symbol(n) for n in names)], [expr])
    rows = []
    for h in range(1, upto + 1):
        sizes = {n: h for n in names}
        if valid.contains(**sizes):
            rows.append((h, fn(1, *(h for _ in names))[0], exact.contains(**sizes)))
    return rows


def plot(analysis, upto: int, path: str, thread: int | None = None) -> bool:
    """The page's picture: Analysis.plot() (the in_features curve and the size map), with the
    thread's size marked; False where matplotlib is missing."""
    try:
        fig = analysis.plot(upto=upto)
    except symshape.InvalidArgument:
        return False
    if thread is not None:
        fig.axes[0].axvline(thread, color="#2e933c", linestyle=":", linewidth=1.0, label=f"the thread's {thread}")
        fig.axes[0].legend(fontsize=8, loc="upper left")
    import matplotlib

    matplotlib.rcParams["svg.hashsalt"] = "symshape"
    fig.savefig(path, metadata={"Software": None})
    return True


def page(entry, with_plot: bool = True) -> str:
    slug, title, spec, shape, sizes, blurb = entry
    model = load_model(os.path.join(ROOT, spec))
    a = symshape.analyze(model, shape)
    at = "×".join(str(v) for v in [shape[0], *sizes.values()])
    upto = 3 * max(sizes.values())
    rows = square_series(a, upto)
    image = f"{slug}.png"
    if with_plot:
        plot(a, upto, os.path.join(OUT, image), max(sizes.values()))
    exact = [r[0] for r in rows if r[2]]
    parts = [
        f"# {title}",
        "",
        f"{blurb} Model: `{spec}`, input `{shape}`. The derivations below are written by symshape's "
        "MkDocs plugin when the site is built; the rest of the page by `python docs/gen_gallery.py`.",
        "",
        f"![in_features against the input size, and the sizes the model takes]({image})",
        "",
        f"For square inputs up to {upto}, the model runs from H = W = {rows[0][0] if rows else '-'}; "
        f"no layer rounds at {', '.join(map(str, exact[:12])) or 'no size'}"
        f"{' …' if len(exact) > 12 else ''}.",
        "",
        f"## At {at}",
        "",
        _block(spec, shape, sizes),
        "",
        "## For every size",
        "",
        _block(spec, shape, {}),
        "",
    ]
    return "\n".join(parts)


def _block(spec: str, shape: tuple, sizes: dict) -> str:
    """The fenced block symshape's MkDocs plugin expands into the derivation (symshape.mkdocs)."""
    lines = ["```symshape", f"model: {spec}", f"input: {','.join(str(d) for d in shape)}"]
    if sizes:
        lines.append("at: " + ",".join(f"{k}={v}" for k, v in sizes.items()))
    return "\n".join(lines + ["```"])


def index() -> str:
    lines = ["# Gallery", "", "Derivations of the four seed threads' models, written by symshape from "
             "`examples/` (`python docs/gen_gallery.py`): each layer's arithmetic at the size the thread "
             "uses, then for every size, and a plot of in_features against the input size with the "
             "sizes at which no layer rounds marked.", ""]
    lines += [f"- [{title}]({slug}.md) — `{spec}`" for slug, title, spec, *_ in ENTRIES]
    return "\n".join(lines) + "\n"


def generate(with_plots: bool = True) -> dict[str, str]:
    os.makedirs(OUT, exist_ok=True)
    pages = {"index.md": index()}
    for entry in ENTRIES:
        pages[f"{entry[0]}.md"] = page(entry, with_plots)
    return pages


def main() -> int:
    for name, text in generate().items():
        with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
            f.write(text)
    print(f"wrote {len(ENTRIES) + 1} pages and plots to {os.path.relpath(OUT, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
