"""Derivations for docs: every layer's arithmetic, symbolically or at a size, as text, Markdown or LaTeX.

At a size, each windowed layer shows torch's formula with its own parameters, the exact value
before rounding (a fraction and a decimal), the rounding torch applies and what it means: which
rows no window covers, how many padded rows the windows use, which nearby sizes need no
rounding, and -- with ceil_mode -- whether torch keeps or drops the last window.
"""

from __future__ import annotations

import math
import re
import string
import textwrap
from dataclasses import dataclass, field, replace
from fractions import Fraction

import sympy

from .compiled import compile_exprs
from .derivations import Adaptive, Padded, Scaled, Transposed, Window
from .dims import FloorDiv, as_expr, batch_symbol, size_symbol
from .errors import InvalidArgument
from .quasi import Unsolvable
from .solve import exact_sizes
from .tensor import RepeatedShape, shape_str

__all__ = ["Explanation", "explain", "for_mathjax", "step_table"]

FORMATS = {"text": "text", "txt": "text", "markdown": "markdown", "md": "markdown", "latex": "latex", "tex": "latex"}
WIDTH = 100


class Explanation(str):
    """A derivation as a string, in one format; renders itself in Jupyter as Markdown with math
    (and as its own lines, not an escaped string, where plain text is shown)."""

    analysis = None
    sizes: dict = {}
    full = False

    def _repr_markdown_(self) -> str:
        return explain(self.analysis, "markdown", self.full, **self.sizes)

    def _repr_latex_(self) -> str:
        return "$$" + for_mathjax(explain(self.analysis, "latex", self.full, **self.sizes)) + "$$"

    def _repr_pretty_(self, p, cycle) -> None:  # IPython's plain-text display
        p.text(str(self))


def for_mathjax(latex: str) -> str:
    """LaTeX for MathJax rather than pdflatex: an escaped underscore in text (``kernel\\_size``)
    is written plainly, which MathJax's text mode shows as it is."""
    return re.sub(r"\\(text|texttt|textbf)\{((?:[^{}]|\{[^{}]*\})*)\}",
                  lambda m: "\\" + m.group(1) + "{" + m.group(2).replace("\\_", "_") + "}", latex)


def step_table(analysis) -> str:
    """The steps as a compact Markdown table with typeset shapes (an Analysis in Jupyter)."""
    head = f"{_md(_title(analysis, None)).removeprefix('Derivation: ')}, {analysis.mode} mode"
    rows = [head, "", "| step | op | output |", "| --- | --- | --- |"]
    rows += [f"| `{s.name}` | `{s.op}` | ${_shape_m(s.output).latex if isinstance(s.output, tuple) and s.output else ''}$ |"
             for s in analysis.steps]
    if analysis.in_features:
        rows += ["", "| fixed layer | size that reaches it |", "| --- | --- |"]
        rows += [f"| `{k}` | ${_latex(v)}$ |" for k, v in analysis.in_features.items()]
    return "\n".join(rows) + "\n"


# -- a format-neutral description ----------------------------------------------------------------


@dataclass(frozen=True)
class Math:
    """A formula, a shape or a condition in a derivation: as plain text and as LaTeX. A note is a
    str, or a tuple of str (prose) and Math parts, so every format typesets its math."""

    text: str
    latex: str


def _latex(e) -> str:
    """A size expression in LaTeX: floors as brackets, products with a dot, ``x mod q``."""
    return sympy.latex(_mod_form(as_expr(e, rational=True)), mul_symbol="dot")


def _mod_form(e: sympy.Expr) -> sympy.Expr:
    """``x - q*floor(x/q)`` written as ``Mod(x, q)`` (printed ``x \\bmod q``)."""
    for f in e.atoms(FloorDiv):
        a, q = f.args
        rest = sympy.expand(e - (a - q * f))
        if q.is_Integer and not rest.has(f) and e.has(f):
            e = rest + sympy.Mod(a, q, evaluate=False)
    return e


def _expr_m(e) -> Math:
    return Math(str(e), _latex(e) if isinstance(e, sympy.Basic) else str(e))


def _shape_m(shape) -> Math:
    """A shape, or a tuple of shapes (an op returning several tensors)."""
    if shape and all(isinstance(s, tuple) for s in shape):
        parts = [_shape_m(s) for s in shape]
        return Math("(" + ", ".join(p.text for p in parts) + ")", "(" + ", ".join(p.latex for p in parts) + ")")
    return Math(shape_str(shape), "(" + ", ".join(_expr_m(d).latex for d in shape) + ")")


def _repeated_m(shape: RepeatedShape, strip: bool) -> Math:
    """``c × (...)``: unbind's or split's tensors whose number depends on the size (the last
    piece of a split shown where it differs)."""
    item, last = (shape.item[1:], shape.last[1:]) if strip else (shape.item, shape.last)
    m, count = _shape_m(item), _expr_m(shape.count)
    text, latex = f"{count.text} × {m.text}", rf"{count.latex} \times {m.latex}"
    if last != item:
        tail = _shape_m(last)
        text, latex = f"{text}, the last {tail.text}", rf"{latex}, \text{{the last }} {tail.latex}"
    return Math(text, latex)


def _cond_m(cond) -> Math:
    """A case's condition: ``H mod 2 = 0``, typeset ``H \\bmod 2 = 0``."""
    typeset = type(cond)(_mod_form(cond.lhs), _mod_form(cond.rhs), evaluate=False) if isinstance(
        cond, sympy.Rel) else cond
    return Math(_condition_text(cond), sympy.latex(typeset, mul_symbol="dot"))


def _joined(items, sep: str) -> tuple:
    """Math parts with ``sep`` (prose) between them."""
    out: list = []
    for i, item in enumerate(items):
        out += [sep, item] if i else [item]
    return tuple(out)


def _parts(note) -> tuple:
    return (note,) if isinstance(note, str) else tuple(note)


def _plain(note) -> str:
    return "".join(p if isinstance(p, str) else p.text for p in _parts(note))


def _md(note) -> str:
    return "".join(_md_code(p) if isinstance(p, str) else f"${p.latex}$" for p in _parts(note))


def _tex(note) -> str:
    return "".join((rf"\text{{{_tex_text(p)}}}" if p else "") if isinstance(p, str) else p.latex
                   for p in _parts(note))


@dataclass
class Line:
    """One dim's arithmetic: a formula and its value (math), and notes (prose)."""

    dim: str
    formula: tuple  # (text, latex)
    value: tuple = ("", "")  # (text, latex)
    notes: list[str] = field(default_factory=list)
    #: the dim's size changes here (False: the layer leaves it as it is, with no rounding)
    changes: bool = True


@dataclass
class Block:
    name: str
    op: str
    shapes: Math  # input → output
    lines: list[Line] = field(default_factory=list)
    notes: list = field(default_factory=list)  # str or tuples of prose and Math (see Math)
    #: the step's output shape differs from its input's
    resizes: bool = True
    #: the op's short name (``nn.Conv2d``), for the compact derivation
    short: str = ""


def _tex_text(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&"), ("#", r"\#"),
                 ("$", r"\$"), ("{", r"\{"), ("}", r"\}"), ("~", r"\textasciitilde{}"), ("^", r"\^{}"),
                 ("→", r"$\to$"), ("≥", r"$\geq$"), ("≡", r"$\equiv$"), ("∈", r"$\in$"), ("·", r"$\cdot$"),
                 ("×", r"$\times$"), ("−", "-"), ("…", r"\ldots{}")):
        s = s.replace(a, b)
    return s


def _num(v) -> tuple[str, str]:
    """An exact value: ``27/2 = 13.5`` (text) / ``\\frac{27}{2} = 13.5`` (LaTeX)."""
    f = Fraction(v)
    if f.denominator == 1:
        return str(f.numerator), str(f.numerator)
    dec = f"{float(f):.4g}"
    exact = Fraction(dec) == f
    dots_t, dots_l = ("", "") if exact else ("…", r"\ldots")
    return (f"{f.numerator}/{f.denominator} = {dec}{dots_t}",
            rf"\frac{{{f.numerator}}}{{{f.denominator}}} = {dec}{dots_l}")


def _sym(e) -> tuple[str, str]:
    e = as_expr(e, rational=True)
    return str(e), sympy.latex(e)


def _window_formula(w: Window, size) -> tuple[str, str]:
    """torch's formula with this layer's parameters; ``size`` is a number or an expression."""
    st, sl = (str(size), str(size)) if not isinstance(size, sympy.Basic) else _sym(size)
    pl, pr = w.pad
    pad_t = f"2·{pl}" if pl == pr else f"{pl} + {pr}"
    pad_l = rf"2 \cdot {pl}" if pl == pr else f"{pl} + {pr}"
    text = f"({st} + {pad_t} − {w.dilation}·({w.kernel} − 1) − 1)/{w.stride} + 1"
    latex = rf"\frac{{{sl} + {pad_l} - {w.dilation} \cdot ({w.kernel} - 1) - 1}}{{{w.stride}}} + 1"
    return text, latex


def _plural(n: int, unit: str) -> str:
    return f"{n} {unit if n != 1 else unit.rstrip('s')}"


def _last(n: int, unit: str) -> str:
    """``the last row`` / ``the last 2 rows``."""
    return f"the last {unit.rstrip('s')}" if n == 1 else f"the last {n} {unit}"


def _window_concrete(w: Window, size: int, out: int) -> Line:
    ft, fl = _window_formula(w, size)
    pl, pr = w.pad
    num = size + pl + pr - w.span
    exact = Fraction(num, w.stride) + 1
    vt, vl = _num(exact)
    notes: list[str] = []
    unit = w.dim
    if exact.denominator == 1:
        value = (f"{vt}", vl)
        if w.stride > 1:
            where = f"the {size + pl + pr} padded {unit}" if pl or pr else f"the {_plural(size, unit)}"
            notes.append(f"exact: the last {w.span}-wide window ends on the last of {where}")
    else:
        r = num % w.stride
        if not w.ceil_mode:
            value = (f"{vt} → {out}", rf"{vl} \to {out}")
            uncovered = max(0, r - pr)
            if uncovered:
                notes.append(f"floor: {_last(uncovered, unit)} of the {size} "
                             f"{'is' if uncovered == 1 else 'are'} never covered by a {w.span}-wide window "
                             f"at stride {w.stride}")
            else:
                notes.append(f"floor: only padding goes unused ({_plural(r, unit)} at the end)")
        else:
            first = math.ceil(Fraction(num, w.stride)) + 1
            value = (f"{vt} → {out}", rf"{vl} \to {out}")
            if out < first:
                notes.append(f"ceil_mode rounds up to {first}, but window {first} would start at padded "
                             f"{unit.rstrip('s')} {(first - 1) * w.stride}, where the input and its left "
                             f"padding ({size + pl} {unit}) have already ended, so torch drops it")
            else:
                over = (out - 1) * w.stride + w.span - (size + pl + pr)
                notes.append(f"ceil_mode rounds up: the last window starts inside the input and reaches "
                             f"{_plural(over, unit)} past the padded end")
        low, high = size - r, size + (w.stride - r)
        nearest = " or ".join(str(v) for v in (low, high) if v >= 1)
        notes.append(f"{nearest} {unit} would need no rounding here")
    if w.stride > w.span:
        notes.append(f"with stride {w.stride} > the {w.span}-wide window, "
                     f"{_plural(w.stride - w.span, unit)} between windows {'is' if w.stride - w.span == 1 else 'are'} "
                     f"never read")
    if pl or pr:
        last_end = (out - 1) * w.stride + w.span  # in padded coordinates, exclusive
        used_right = max(0, min(pr, last_end - (pl + size)))
        parts = []
        if pl:
            parts.append(f"{_plural(pl, unit)} at the start (used by the first window)")
        if pr:
            used = "all used" if used_right == pr else "unused" if used_right == 0 else f"{used_right} used"
            parts.append(f"{_plural(pr, unit)} at the end ({used})")
        notes.append("padding: " + "; ".join(parts))
    return Line(unit, (ft, fl), value, notes)


def _window_symbolic(w: Window) -> Line:
    ft, fl = _window_formula(w, w.size)
    rounding = "ceil" if w.ceil_mode else "floor"
    ft = f"{rounding}({ft[:ft.rindex(' + 1')]}) + 1" if w.stride > 1 else ft
    if w.stride > 1:
        core = fl[: fl.rindex(" + 1")]
        fl = (rf"\left\lceil {core} \right\rceil + 1" if w.ceil_mode else rf"\left\lfloor {core} \right\rfloor + 1")
    ot, ol = _sym(w.out)
    notes = ["ceil_mode: torch drops a last window that would start in the right padding"] if w.ceil_mode else []
    return Line(w.dim, (ft, fl), (ot, ol), notes)


def _adaptive(a: Adaptive, size) -> Line:
    if isinstance(size, int):
        lengths = [math.ceil(Fraction((i + 1) * size, a.out)) - math.floor(Fraction(i * size, a.out))
                   for i in range(a.out)]
        lo, hi = min(lengths), max(lengths)
        note = (f"{a.out} windows of {lo} {a.dim}" if lo == hi else
                f"{a.out} windows of {lo} to {hi} {a.dim}: {size} is not a multiple of {a.out}")
        return Line(a.dim, (f"adaptive: {size} → {a.out}", rf"\text{{adaptive: }} {size} \to {a.out}"),
                    notes=[note])
    st, sl = _sym(size)
    return Line(a.dim, (f"adaptive: {st} → {a.out}", rf"\text{{adaptive: }} {sl} \to {a.out}"))


def _transposed(t: Transposed, size) -> Line:
    st, sl = (str(size), str(size)) if isinstance(size, int) else _sym(size)
    text = f"({st} − 1)·{t.stride} − 2·{t.padding} + {t.dilation}·({t.kernel} − 1) + {t.output_padding} + 1"
    latex = (rf"({sl} - 1) \cdot {t.stride} - 2 \cdot {t.padding} + {t.dilation} \cdot ({t.kernel} - 1)"
             rf" + {t.output_padding} + 1")
    return Line(t.dim, (text, latex))


def _padded(p: Padded, size) -> Line:
    st, sl = (str(size), str(size)) if isinstance(size, int) else _sym(size)
    (lt, ll), (rt, rl) = ((str(a), str(a)) if isinstance(a, int) else _sym(a) for a in (p.left, p.right))
    lt, ll = (f"({lt})", rf"\left({ll}\right)") if not isinstance(p.left, int) else (lt, ll)
    rt, rl = (f"({rt})", rf"\left({rl}\right)") if not isinstance(p.right, int) else (rt, rl)
    return Line(p.dim, (f"{st} + {lt} + {rt} ({p.mode})", rf"{sl} + {ll} + {rl}"))


def _scaled(d: Scaled, size, out, concrete: bool) -> Line:
    """``floor(double(in) * scale)``: at a size, the double product and, where rounding it first
    changes the floor, the exact product beside it (180 × 0.35 is 62.99999999999999, not 63)."""
    if not concrete:
        st, sl = _sym(size)
        notes = [] if d.rounding is None or d.rounding.divisor else [
            f"torch rounds the product to a double before the floor ({d.scale!r} is no short binary fraction)"]
        return Line(d.dim, (f"floor({st} × {d.scale!r})", rf"\left\lfloor {sl} \cdot {d.scale!r} \right\rfloor"),
                    _sym(out), notes)
    product = float(size) * d.scale
    value = (f"{product!r} → {out}", rf"{product!r} \to {out}") if product != out else (str(out), str(out))
    notes = []
    exact = Fraction(size) * Fraction(repr(d.scale))  # the product of the decimal the user wrote
    if math.floor(exact) != math.floor(product):
        written = str(exact.numerator) if exact.denominator == 1 else repr(float(exact))
        notes.append(f"{size} × {d.scale!r} is {written} written out, but torch multiplies in double "
                     f"precision, where it is {product!r}: the size is {math.floor(product)}, not {math.floor(exact)}")
    return Line(d.dim, (f"{size} × {d.scale!r}", rf"{size} \cdot {d.scale!r}"), value, notes)


def _op_label(step) -> str:
    if step.module is not None and step.kind == "module":
        text = repr(step.module)
        return text if "\n" not in text and len(text) <= 90 else step.op
    return step.op


def _blocks(analysis, sizes: dict | None):
    ev = analysis.evaluate(**sizes) if sizes is not None else None
    if ev is not None:
        exprs = [d.size for s in analysis.steps for d in s.derivations]
        exprs += [d.out for s in analysis.steps for d in s.derivations]
        # padding amounts computed from sizes: their values at these sizes
        exprs += [a for s in analysis.steps for d in s.derivations if isinstance(d, Padded) for a in (d.left, d.right)]
        names = [batch_symbol(), *(size_symbol(n) for n in analysis.size_names)]
        vals = compile_exprs(names, exprs)(1, *(sizes[n] for n in analysis.size_names))
        flat = iter(vals)
        sized = [[next(flat) for _ in s.derivations] for s in analysis.steps]
        outs = [[next(flat) for _ in s.derivations] for s in analysis.steps]
        amounts = [[(next(flat), next(flat)) if isinstance(d, Padded) else None for d in s.derivations]
                   for s in analysis.steps]
    blocks = []
    # shapes are shown per sample, the batch dim left out; but in the case N == 1 of a squeeze of
    # dim N (Analysis.cases) some shapes have no batch dim left: there they are shown whole
    strip = not any(isinstance(c, sympy.Eq) and c.lhs == analysis.batch for c in analysis.where)
    for i, step in enumerate(analysis.steps):
        if ev is not None and i >= len(ev.steps):
            break
        symbolic = (*step.inputs[:1], step.output)
        ends = (*ev.steps[i].inputs[:1], ev.steps[i].output) if ev is not None else symbolic
        shown = [_repeated_m(x, strip and _batched(s.item)) if isinstance(x, RepeatedShape)
                 else _shape_m(x[1:] if strip and _batched(s) else x)
                 for x, s in zip(ends, symbolic)
                 if isinstance(x, RepeatedShape) or isinstance(x, tuple) and x and not isinstance(x[0], tuple)]
        shapes = Math(" → ".join(m.text for m in shown), r" \to ".join(m.latex for m in shown))
        block = Block(step.name, _op_label(step), shapes, resizes=_resizes(step), short=step.op)
        if ev is None:
            block.notes += _case_notes(step)
        for j, d in enumerate(step.derivations):
            concrete = ev is not None
            size, out = (sized[i][j], outs[i][j]) if concrete else (d.size, d.out)
            if concrete and isinstance(d, Padded):
                d = replace(d, left=int(amounts[i][j][0]), right=int(amounts[i][j][1]))
            line = _LINES[type(d)](d, size, out, concrete)
            line.changes = size != out or any(n.startswith(("floor", "ceil")) for n in line.notes)
            block.lines.append(line)
        for key, fixed in analysis.fixed.items():
            if fixed.layer != step.name:
                continue
            got = ev.in_features.get(key) if ev is not None else analysis.in_features[key]
            if got is None:
                continue
            if fixed.declared is None:
                block.notes.append((f"{fixed.parameter} = ", _expr_m(got), " (lazy: set at the first call)"))
            elif ev is not None:
                mark = "matches" if got == fixed.declared else "does NOT match"
                block.notes.append(f"{fixed.parameter} = {got}, which {mark} the declared {fixed.declared}")
            else:
                block.notes.append((f"{fixed.parameter} = ", _expr_m(got), f" (declared {fixed.declared})"))
        _dedupe(block)
        blocks.append(block)
    failure = None
    if ev is not None and ev.first_problem() is not None:
        failure = str(ev.first_problem())
    return blocks, ev, failure


#: the most cases a derivation lists for one step
MAX_CASES = 8


def _cases(shape, conds=()) -> list[tuple[tuple, tuple]]:
    """A shape with ``Piecewise`` sizes as (conditions, plain shape) cases, outermost first."""
    pw = next((p for d in shape for p in d.atoms(sympy.Piecewise)), None)
    if pw is None:
        return [(conds, shape)]
    out, earlier = [], []
    for value, cond in pw.args:
        here = tuple(dict.fromkeys((*conds, *earlier, *(() if cond is sympy.true else (cond,)))))
        if any(sympy.Not(c) in here for c in here):
            earlier.append(sympy.Not(cond))
            continue  # a contradiction: no size is in this case
        out += _cases(tuple(d.xreplace({pw: value}) for d in shape), here)
        earlier.append(sympy.Not(cond))
        if len(out) > MAX_CASES:
            break
    return out


def _case_notes(step) -> list[str]:
    """A step whose output size depends on a condition (a Python branch, a broadcast by a size
    of 1): one note per case; and each check the model's own code or torch's kernel makes on
    this step's sides, with its message."""
    notes = []
    shape = step.output if isinstance(step.output, tuple) and step.output and not isinstance(
        step.output[0], tuple) else None
    if step.sides:  # traced side by side: what each side of the module's own branches does
        return _side_notes(step)
    if shape is not None and any(d.has(sympy.Piecewise) for d in shape):
        cases = _cases(tuple(as_expr(d) for d in shape))
        if len(cases) <= MAX_CASES:
            for conds, plain in cases:
                when = _joined([_cond_m(c) for c in conds], " and ") or ("otherwise",)
                notes.append(("for ", *when, ": ", _shape_m(plain[1:] if _batched(plain) else plain)))
        else:
            notes.append(f"more than {MAX_CASES} cases, decided by the sizes")
    if step.rule in ("meta", "cases"):  # the checks on this step's sides: each message once
        first = {}  # each message once, its sizes written as formulas (the check's own, not a case's)
        for r in step.requirements:
            while r.unless is not None and r.unless.reason == r.reason:
                r = r.unless
            first.setdefault(r.reason, r)
        reasons = list(first)
        for reason in reasons[:MAX_CASES]:
            notes.append(("raises where its check fails: ", *_message_parts(first[reason])))
        if len(reasons) > MAX_CASES:
            notes.append(f"... and {len(reasons) - MAX_CASES} more checks (Analysis.requirements lists them)")
    return notes


def _message_parts(r) -> tuple:
    """A requirement's message with its two sizes (``{lhs}``, ``{rhs}``) as math."""
    out: list = []
    for literal, name, _, _ in string.Formatter().parse(r.reason):
        out.append(literal)
        if name in ("lhs", "rhs"):
            out.append(_expr_m(r.lhs if name == "lhs" else r.rhs))
        elif name is not None:  # not a message symshape wrote: as it reads
            return (r.message(r.lhs, r.rhs),)
    return tuple(p for p in out if p != "")


def _side_notes(step) -> list:
    """For a module traced by the sides of its Python branches: per side, its conditions, then
    the steps that side runs (``pad: (1, L) → (1, L + 1)``), or the message where it raises."""
    notes = []
    prefix = "" if step.name == "(model)" else f"{step.name}."
    for conds, steps, error, output in step.sides[:MAX_CASES]:
        when = _joined([_cond_m(c) for c in conds], " and ") or ("every size",)
        if steps is None:
            notes.append(("for ", *when, f": raises {error}"))
            continue
        notes.append(("for ", *when, ": ", _sample_shape(output)))
        shown = [s for s in steps if s.output != () and not (len(s.inputs) == 1 and s.inputs[0] == s.output
                                                              and not s.derivations)]
        for s in shown:
            ins = [_sample_shape(i) for i in s.inputs]
            out = _sample_shape(s.output)
            notes.append((f"  {prefix}{s.name}  {s.op}  ", Math(
                ", ".join(m.text for m in ins) + " → " + out.text, ", ".join(m.latex for m in ins) + r" \to " + out.latex)))
    if len(step.sides) > MAX_CASES:
        notes.append(f"... and {len(step.sides) - MAX_CASES} more sides")
    return notes


def _sample_shape(shape) -> Math:
    """One sample's shape (the batch dim left out), or a tuple of them."""
    if isinstance(shape, tuple) and shape and isinstance(shape[0], tuple):
        parts = [_sample_shape(s) for s in shape]
        return Math("(" + ", ".join(p.text for p in parts) + ")", "(" + ", ".join(p.latex for p in parts) + ")")
    if isinstance(shape, tuple) and shape:
        return _shape_m(shape[1:] if _batched(shape) else shape)
    return Math(str(shape), rf"\text{{{_tex_text(str(shape))}}}")


def _batched(shape) -> bool:
    """Whether a step's (symbolic) shape starts with the batch dim, which a sample's shape leaves
    out: a dim of ``N`` (``N``, or ``N`` times the windows of a window partition). A tensor made
    for the sizes alone (``torch.arange(T)``, a slice of a buffer) has none: shown whole."""
    return isinstance(shape, tuple) and bool(shape) and isinstance(shape[0], sympy.Basic) \
        and batch_symbol() in shape[0].free_symbols


def _condition_text(cond) -> str:
    """A case's condition as a reader writes it: ``x - q*floor(x/q)`` is ``x mod q``."""
    text = {sympy.Eq: "{} = {}", sympy.Ne: "{} ≠ {}", sympy.Gt: "{} > {}", sympy.Ge: "{} ≥ {}",
            sympy.Lt: "{} < {}", sympy.Le: "{} ≤ {}"}.get(type(cond), "{}")
    parts = (cond.lhs, cond.rhs) if isinstance(cond, sympy.Rel) else (cond,)
    out = text.format(*parts)
    return re.sub(r"(\w+) - (\d+)\*floor\(\1/\2\)", r"\1 mod \2", out)


def _window_line(d: Window, size, out, concrete: bool) -> Line:
    return _window_concrete(d, size, out) if concrete else _window_symbolic(d)


def _adaptive_line(d: Adaptive, size, out, concrete: bool) -> Line:
    return _adaptive(d, size)


def _with_value(describe):
    """A line from ``describe(d, size)``, with the output size as its value."""
    def line(d, size, out, concrete: bool) -> Line:
        made = describe(d, size)
        made.value = (str(out), str(out)) if concrete else _sym(out)
        return made
    return line


#: derivation class -> the function writing its line (``size``/``out``: numbers when concrete)
_LINES = {Window: _window_line, Adaptive: _adaptive_line, Transposed: _with_value(_transposed),
          Padded: _with_value(_padded), Scaled: _scaled}


def _dedupe(block: Block) -> None:
    """``columns: same as rows`` when a dim has the very same arithmetic as an earlier one."""

    def neutral(text: str, dim: str) -> str:
        return text.replace(dim, "<dim>").replace(dim.rstrip("s"), "<dim>")

    seen: dict = {}
    for k, line in enumerate(block.lines):
        key = (line.formula, line.value, tuple(neutral(n, line.dim) for n in line.notes))
        if key in seen:
            block.lines[k] = Line(line.dim, (f"same as {seen[key]}", rf"\text{{same as {seen[key]}}}"),
                                  changes=line.changes)
        else:
            seen[key] = line.dim


def _summary(analysis, ev, layer: str | None = None) -> list[tuple[str, tuple]]:
    """(label, note) rows: each Linear's formula (and value), other sizes, no-rounding condition;
    of the fixed layer ``layer`` only, where given."""

    rows = []
    for name, expr in analysis.in_features.items():
        if layer is not None and name != layer:
            continue
        fixed = analysis.fixed.get(name)
        label = f"{fixed.parameter if fixed is not None else 'in_features'} of {fixed.layer if fixed is not None else name}"
        if ev is not None and name in ev.in_features:
            value = ev.in_features[name]
            rows.append((label, (Math(f"{expr} = {value}", f"{_latex(expr)} = {value}"),) if expr.free_symbols
                         else (Math(str(value), str(value)),)))
            if analysis.size_names and expr.free_symbols:
                try:
                    same = analysis.solve(ev.in_features[name], layer=name)
                    rows.append((f"sizes giving {ev.in_features[name]}", (Math(same.summary(), same.latex()),)))
                except Unsolvable:
                    pass
        else:
            rows.append((label, (_expr_m(expr),)))
    if analysis.size_names:
        try:
            exact = exact_sizes(analysis, ignore_declared=True)
            rows.append(("no layer rounds at", (Math(exact.summary(), exact.latex()),)))
        except Unsolvable:
            pass
    return rows


# -- renderers -----------------------------------------------------------------------------------


def _title(analysis, sizes) -> tuple:
    """The derivation's title as a note: the model, its input shapes (math) and the sizes."""
    model = type(analysis.model).__name__
    out: list = [f"Derivation: {model} on input{'' if analysis.inputs.single else 's'} "]
    for i, (label, shape) in enumerate(analysis.inputs.shapes):
        named = "" if analysis.inputs.single else f"{label} "
        out += [(", " if i else "") + named, _shape_m(shape)]
    if not analysis.batched:
        out.append(" (unbatched)")
    if sizes:
        at = ", ".join(f"{k}={v}" for k, v in sizes.items())
        out += [" at ", Math(at, ", ".join(f"{k} = {v}" for k, v in sizes.items()))]
    return tuple(p for p in out if p != "")


def _render_text(analysis, sizes, blocks, failure, summary) -> str:
    out = [_plain(_title(analysis, sizes)), ""]
    wrap = textwrap.TextWrapper(width=WIDTH, initial_indent=" " * 14, subsequent_indent=" " * 14)
    for b in blocks:
        head = f"{b.name}  {b.op}"
        shapes = b.shapes.text
        parts = shapes.split(" → ")
        if len(parts) == 2 and parts[0] == parts[1] and not b.lines and not b.notes:
            shapes = "shape unchanged"
        out.append(head if len(head) + len(shapes) + 4 > WIDTH else f"{head}    {shapes}")
        if len(head) + len(shapes) + 4 > WIDTH:
            out.append(f"    {shapes}")
        for line in b.lines:
            value = f" = {line.value[0]}" if line.value[0] else ""
            first = f"  {line.dim + ':':<11} {line.formula[0]}{value}"
            out += textwrap.wrap(first, WIDTH, subsequent_indent=" " * 14)
            for note in line.notes:
                out += wrap.wrap(note)
        for note in b.notes:
            out += textwrap.wrap(_plain(note), WIDTH, initial_indent="  ", subsequent_indent="    ")
    if failure:
        out += ["", *textwrap.wrap(failure, WIDTH)]
    if summary:
        out.append("")
        width = max(len(label) for label, _ in summary) + 2
        for label, note in summary:
            out += textwrap.wrap(f"{label + ':':<{width}} {_plain(note)}", WIDTH, subsequent_indent=" " * (width + 1))
    return "\n".join(out) + "\n"


def _render_markdown(analysis, sizes, blocks, failure, summary) -> str:
    out = [f"### {_md(_title(analysis, sizes))}", ""]
    for b in blocks:
        out.append(f"**`{b.name}`** `{b.op}`: ${b.shapes.latex}$")
        out.append("")
        if b.lines:
            out += ["| dim | torch's arithmetic | value |", "| --- | --- | --- |"]
            for line in b.lines:
                value = f"${line.value[1]}$" if line.value[1] else ""
                formula = line.formula[0] if line.formula[0].startswith("same as") else f"${line.formula[1]}$"
                out.append(f"| {line.dim} | {formula} | {value} |")
            out.append("")
            for line in b.lines:
                for note in line.notes:
                    out.append(f"- {line.dim}: {note}")
        for note in b.notes:  # an indented note (a step on one side of a branch) is a nested item
            first = _parts(note)[0] if isinstance(_parts(note)[0], str) else ""
            indent = "  " * ((len(first) - len(first.lstrip(" "))) // 2)
            out.append(f"{indent}- {_md(_strip_first(note))}")
        if out[-1] != "":
            out.append("")
    if failure:
        out += [f"**{failure}**", ""]
    if summary:
        out += ["| summary | |", "| --- | --- |"]
        out += [f"| {label} | {_md(note)} |" for label, note in summary]
        out.append("")
    return "\n".join(out)


def _strip_first(note) -> tuple:
    """The note without its leading indent."""
    parts = _parts(note)
    return ((parts[0].lstrip(" "),) if isinstance(parts[0], str) else (parts[0],)) + parts[1:]


def _md_code(text: str) -> str:
    return text.replace("|", "\\|").replace("*", "\\*")


def _render_latex(analysis, sizes, blocks, failure, summary) -> str:
    rows = [rf"&{_tex(_title(analysis, sizes))}"]
    for b in blocks:
        rows.append(rf"&\textbf{{{_tex_text(b.name)}}}\ \texttt{{{_tex_text(b.op)}}}\text{{: }} {b.shapes.latex}")
        for line in b.lines:
            value = f" = {line.value[1]}" if line.value[1] else ""
            rows.append(rf"&\quad \text{{{_tex_text(line.dim)}: }} {line.formula[1]}{value}")
            rows += [rf"&\qquad \text{{{_tex_text(n)}}}" for n in line.notes]
        rows += [rf"&\quad {_tex(n)}" for n in b.notes]
    if failure:
        rows.append(rf"&\text{{{_tex_text(failure)}}}")
    rows += [rf"&\text{{{_tex_text(label)}: }} {_tex(note)}" for label, note in summary]
    body = " \\\\\n".join(rows)
    return "% symshape derivation; needs \\usepackage{amsmath}\n\\begin{align*}\n" + body + "\n\\end{align*}\n"


_RENDER = {"text": _render_text, "markdown": _render_markdown, "latex": _render_latex}


# -- a derivation that fits on a screen ------------------------------------------------------------


def _unit(model, name: str) -> str:
    """The repeated block a step belongs to: its outermost ancestor that is an indexed child
    with children of its own (``layer1.0`` of ``layer1.0.conv1``), or the step itself."""
    parts = name.split(".")
    for k in range(1, len(parts) - 1):
        if parts[k].isdigit():
            prefix = ".".join(parts[:k + 1])
            try:
                module = model.get_submodule(prefix)
            except AttributeError:
                return name
            if next(module.children(), None) is not None:
                return prefix
    return name


def _compact(analysis, blocks: list[Block]) -> tuple[list[Block], int]:
    """Only the steps that change a size or round, with only the dims that change; repeated
    blocks that leave every size as it is collapsed into one line with their count
    (``layer1.1–2: 2 × Bottleneck, sizes unchanged``). Returns the blocks and how many steps
    that keep every size were left out."""
    units: list[tuple[str, list[Block]]] = []
    for b in blocks:
        key = _unit(analysis.model, b.name)
        if units and units[-1][0] == key and key != b.name:
            units[-1][1].append(b)
        else:
            units.append((key, [b]))
    out: list[Block] = []
    hidden = 0
    run: list[str] = []  # consecutive unchanged repeats of one class under one parent

    def flush():
        if run:
            first, last = run[0], run[-1].rsplit(".", 1)[1]
            cls = type(analysis.model.get_submodule(first)).__name__
            name = first if len(run) == 1 else f"{first}–{last}"
            out.append(Block(name, f"{len(run)} × {cls}", Math("sizes unchanged", r"\text{sizes unchanged}"),
                             resizes=False))
            run.clear()
    for key, members in units:
        kept = [b for b in members if _matters(b)]
        if key != members[0].name and not kept:  # a repeated block that leaves every size as it is
            same = run and run[0].rsplit(".", 1)[0] == key.rsplit(".", 1)[0] and type(
                analysis.model.get_submodule(run[0])) is type(analysis.model.get_submodule(key))
            if not same:
                flush()
            run.append(key)
            continue
        flush()
        hidden += len(members) - len(kept)
        out += [replace(b, lines=[ln for ln in b.lines if ln.changes]) for b in kept]
    flush()
    return out, hidden


#: the lines of a screen: a derivation longer than this is written tersely (see _terse)
SCREEN = 40


def _terse(b: Block) -> Block:
    """A step of a derivation too long for a screen: its short op name, one line for dims with
    the same arithmetic (``rows, columns``), and of their notes only the rounding's."""
    lines: list[Line] = []
    for ln in b.lines:
        if not ln.changes:
            continue
        if ln.formula[0].startswith("same as ") and lines and lines[-1].dim == ln.formula[0].removeprefix("same as "):
            lines[-1] = replace(lines[-1], dim=f"{lines[-1].dim}, {ln.dim}")
            continue
        lines.append(replace(ln, notes=[n for n in ln.notes if n.startswith(("floor", "ceil"))]))
    return replace(b, op=b.short or b.op, lines=lines)


def _resizes(step) -> bool:
    """Whether a step changes a size that depends on the input (a channel count that is the
    same at every size does not count), or the rank."""
    ins = step.inputs[0] if step.inputs else None
    out = step.output
    if not (isinstance(ins, tuple) and isinstance(out, tuple)) or any(isinstance(d, tuple) for d in (*ins, *out)):
        return True  # several tensors: shown
    if len(ins) != len(out):
        return True
    return any(a != b and (_sized(a) or _sized(b)) for a, b in zip(ins, out))


def _sized(d) -> bool:
    return isinstance(d, sympy.Basic) and bool(d.free_symbols - {batch_symbol()})


def _matters(b: Block) -> bool:
    """A step worth showing: it changes a size, rounds, or says something (a fixed layer, cases)."""
    return b.resizes or bool(b.notes) or any(ln.changes for ln in b.lines)


def explain(analysis, /, format: str = "text", full: bool = False, layer: str | None = None,
            summary_only: bool = False, **sizes: int) -> Explanation:
    """The derivation of every layer's size: symbolic, or at ``sizes``; text, Markdown or LaTeX.
    By default only the steps that change a size or round, repeated blocks that keep every size
    collapsed; ``full=True``: every step and every dim. ``layer``: the steps up to that fixed
    layer, and the summary of it alone; ``summary_only``: the summary without the steps."""
    fmt = FORMATS.get(format)
    if fmt is None:
        raise InvalidArgument(f"format must be one of text, markdown (md), latex; got {format!r}")
    if not isinstance(full, bool) or not isinstance(summary_only, bool):
        raise InvalidArgument(f"full and summary_only are True or False, got {full!r}, {summary_only!r}")
    if layer is not None:
        analysis.linear(layer)  # UnknownName, listing the fixed layers, for a layer it does not have
    concrete = sizes or (not analysis.size_names)
    blocks, ev, failure = _blocks(analysis, dict(sizes) if concrete else None)
    if layer is not None:
        step = analysis.fixed[layer].layer if layer in analysis.fixed else layer
        last = max((i for i, b in enumerate(blocks) if b.name == step), default=len(blocks) - 1)
        blocks = blocks[:last + 1]
    hidden = 0
    if not full:
        blocks, hidden = _compact(analysis, blocks)
    summary = _summary(analysis, ev, layer) if ev is None or ev.failure is None else []
    if summary_only:
        blocks, hidden = [], 0
    if hidden:
        summary.append(("not shown", (f"{hidden} step{'s that keep' if hidden != 1 else ' that keeps'} every "
                                      "size (full=True, --full: every step)",)))
    at = sizes if concrete else None
    if not full and _render_text(analysis, at, blocks, failure, summary).count("\n") > SCREEN:
        blocks = [_terse(b) for b in blocks]
    out = Explanation(_RENDER[fmt](analysis, at, blocks, failure, summary))
    out.analysis, out.sizes, out.full = analysis, dict(sizes), full
    return out
