"""``Analysis.plot()``: in_features against the input size, and a map of the sizes a model takes.

Left, the first Linear's (or ``layer``'s) in_features for square inputs (every size name the same
``n``), over the sizes torch accepts, with the sizes at which no layer rounds marked and the
declared value drawn. Right, for a model with two size names (H × W), a map of every size up to
``upto``: refused, accepted, accepted with no rounding, and giving the declared in_features.
Needs matplotlib (``pip install '.[plot]'`` in a clone); nothing is shown, a Figure is returned.
"""

from __future__ import annotations

import torch

from .errors import InvalidArgument
from .solve import exact_sizes

__all__ = ["CATEGORIES", "plot", "size_map"]

#: the map's categories, in order, with their colors
CATEGORIES = (("refused", "#eeeeee"), ("accepted up to the Linear", "#9db4d6"), ("no layer rounds", "#d1495b"),
              ("gives the declared in_features", "#2e933c"))


def size_map(analysis, layer: str | None = None, upto: int = 96) -> torch.Tensor:
    """An ``upto × upto`` int tensor over H × W (index ``[h - 1, w - 1]``): 0 refused, 1 accepted,
    2 accepted with no rounding, 3 giving the declared in_features (for a model with two sizes)."""
    names = analysis.size_names
    if len(names) != 2:
        raise InvalidArgument(f"a size map is drawn over two sizes (H × W); this analysis has {len(names)}")
    formula = analysis.formula(layer)
    grid = formula.grid(**{n: range(1, upto + 1) for n in names})
    out = grid.valid.to(torch.int64)
    exact = exact_sizes(analysis, ignore_declared=True)
    for h in range(1, upto + 1):
        for w in range(1, upto + 1):
            if out[h - 1, w - 1] and exact.contains(**{names[0]: h, names[1]: w}):
                out[h - 1, w - 1] = 2
    declared = analysis.fixed[formula.layer].declared if formula.layer in analysis.fixed else None
    if declared is not None:
        out[grid.valid & (grid.values == declared)] = 3
    return out


def plot(analysis, layer: str | None = None, upto: int = 96):
    """The Figure: the in_features curve for square sizes, and beside it the size map."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
        from matplotlib.colors import ListedColormap
        from matplotlib.patches import Patch
    except ImportError:
        raise InvalidArgument("Analysis.plot() needs matplotlib: pip install '.[plot]' in a clone of symshape") from None
    if not analysis.size_names:
        raise InvalidArgument("nothing to plot: the input has no size name")
    formula = analysis.formula(layer)
    two = len(analysis.size_names) == 2
    fig, axes = plt.subplots(1, 2 if two else 1, figsize=(11 if two else 6, 4), dpi=100, squeeze=False)
    _curve(axes[0][0], analysis, formula, upto)
    if two:
        ax = axes[0][1]
        data = size_map(analysis, layer, upto).numpy()
        ax.imshow(data, origin="lower", extent=(0.5, upto + 0.5, 0.5, upto + 0.5), interpolation="nearest",
                  cmap=ListedColormap([c for _, c in CATEGORIES]), vmin=0, vmax=len(CATEGORIES) - 1)
        ax.set_xlabel(analysis.size_names[1])
        ax.set_ylabel(analysis.size_names[0])
        ax.set_title("sizes the model takes", fontsize=10)
        ax.legend(handles=[Patch(color=c, label=n) for n, c in CATEGORIES], fontsize=7, loc="upper left",
                  bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    fig.tight_layout()
    plt.close(fig)  # returned, not shown
    return fig


def _curve(ax, analysis, formula, upto: int) -> None:
    """in_features for square inputs (every size name ``n``) over the accepted ``n``."""
    names = analysis.size_names
    values, valid = [], []
    for n in range(1, upto + 1):
        g = formula.grid(**{k: n for k in names})
        values.append(int(g.values))
        valid.append(bool(g.valid))
    exact = exact_sizes(analysis, ignore_declared=True)
    ns = [n for n in range(1, upto + 1) if valid[n - 1]]
    ax.step(ns, [values[n - 1] for n in ns], where="post", color="#4a6fa5", linewidth=1.2, label="in_features")
    marked = [n for n in ns if exact.contains(**{k: n for k in names})]
    ax.scatter(marked, [values[n - 1] for n in marked], s=14, color="#d1495b", zorder=3, label="no layer rounds")
    declared = analysis.fixed[formula.layer].declared if formula.layer in analysis.fixed else None
    if declared is not None:
        ax.axhline(declared, color="#888888", linestyle="--", linewidth=0.8, label=f"declared {declared}")
    ax.set_xlabel(" = ".join(names) + " (input size)")
    ax.set_ylabel(f"in_features of {formula.layer}")
    ax.legend(fontsize=8, loc="upper left")
