"""The inputs a model is called with: one shape, a tuple of shapes, or shapes by keyword.

``(1, "H", "W")`` is one input, ``((3, "H", "W"), (1, "H", "W"))`` two positional ones
(``model(x, mask)``), ``{"x": (3, "H", "W"), "mask": (1, "H", "W")}`` two keyword ones
(``model(x=..., mask=...)``). A size name means the same size in every input it appears in, so
``H`` above is the height of both the image and the mask. The batch dim ``N`` (where the call has
one) is put before every input's shape: all inputs of one call share their batch.

An input holds the model's floats unless it is given as :class:`Input` with an integer or bool
dtype: token ids (``Input(("T",), torch.long)``), an attention mask.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import sympy
import torch

from .dims import BATCH, MAX_TENSOR_ELEMENTS, batch_symbol, positive_int, size_symbol
from .errors import InvalidArgument
from .tensor import SymTensor, shape_str

__all__ = ["Input", "Inputs", "check_call", "forward_names", "parse_inputs", "parse_shape"]

#: the dtypes an input may be given (by these names on the command line): token ids and masks;
#: a floating input takes the model's own dtype
DTYPES = {"int64": torch.int64, "long": torch.int64, "int32": torch.int32, "int": torch.int32,
          "int16": torch.int16, "int8": torch.int8, "uint8": torch.uint8, "bool": torch.bool}


@dataclass(frozen=True)
class Input:
    """One input's shape, and the dtype of its entries where they are not the model's floats:
    ``Input(("T",), torch.long)`` for a language model's token ids, ``Input(("T",), torch.bool)``
    for a mask. An integer or bool dtype (``DTYPES``): shapes never depend on the dtype, but torch
    refuses a floating tensor where it takes indices (an embedding's), at every size. Samples of
    it (verify(), the proof) are zeros: a valid token id for any embedding."""

    shape: Sequence
    dtype: torch.dtype = torch.int64

    def __post_init__(self):
        if self.dtype not in DTYPES.values():
            raise InvalidArgument(f"Input {tuple(self.shape) if _is_shape(self.shape) else self.shape!r}: dtype "
                                  f"must be an integer dtype or torch.bool (token ids, a mask), got {self.dtype!r}; "
                                  "a floating input needs no Input: it takes the model's own dtype")

    def __repr__(self) -> str:  # (as a hint that quotes the call writes it: symshape.Input(...))
        return f"symshape.Input({tuple(self.shape)!r}, {self.dtype})"


_INT64_MAX = 2**63 - 1


def parse_shape(input_shape: Sequence, what: str = "input_shape") -> tuple[sympy.Expr, ...]:
    """``(1, "H", "W")`` -> ``(1, H, W)`` with positive-integer symbols; the batch dim is not included."""
    if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Sequence):
        raise InvalidArgument(f"{what} must be a tuple such as (1, 'H', 'W'), got {input_shape!r}")
    dims: list[sympy.Expr] = []
    for i, d in enumerate(input_shape):
        if isinstance(d, str):
            if d == BATCH:
                raise InvalidArgument(
                    f"{BATCH!r} is the batch dim, which symshape adds itself; {what} is one "
                    f"sample's shape, e.g. (1, 'H', 'W')"
                )
            dims.append(size_symbol(d))
        elif isinstance(d, sympy.Symbol):
            dims.append(size_symbol(d.name))
        else:
            dims.append(sympy.Integer(positive_int(d, f"{what} {tuple(input_shape)}: entries are ints or "
                                                      f"size names; entry {i}", least=0)))
    fixed = 1
    for d in dims:
        if d.is_Integer and int(d) > _INT64_MAX:  # (beside an entry 0, the product says nothing of it)
            raise InvalidArgument(f"{what} {tuple(input_shape)}: entry {int(d):,} is more than a torch size "
                                  "holds (an int64)")
        fixed *= int(d) if d.is_Integer else 1
    if fixed >= MAX_TENSOR_ELEMENTS:
        raise InvalidArgument(f"{what} {tuple(input_shape)}: {fixed:,} elements per sample, more than torch can "
                              "make a tensor of (its size in bytes must fit in int64)")
    return tuple(dims)


def _is_shape(value: Any) -> bool:
    """A shape (entries ints, size names or symbols), not a tuple of shapes."""
    if isinstance(value, Input):
        return True
    return (isinstance(value, Sequence) and not isinstance(value, (str, bytes))
            and not any(isinstance(d, (Sequence, Mapping)) and not isinstance(d, (str, bytes)) or isinstance(d, Input)
                        for d in value))


@dataclass(frozen=True)
class Inputs:
    """The shapes of a call's inputs, positional (``args``) and by keyword (``kwargs``), each
    one sample's shape without the batch dim. ``names``: a label per positional input (its
    parameter's name in ``forward`` where known)."""

    args: tuple[tuple[sympy.Expr, ...], ...]
    kwargs: dict[str, tuple[sympy.Expr, ...]] = field(default_factory=dict)
    names: tuple[str, ...] = ()
    #: the dtype of each input given one (:class:`Input`), by position (an int) or keyword;
    #: every other input holds the model's floats
    dtypes: dict = field(default_factory=dict)

    @property
    def single(self) -> bool:
        """One positional input: the call ``model(x)``."""
        return len(self.args) == 1 and not self.kwargs

    @property
    def shapes(self) -> list[tuple[str, tuple]]:
        """``(label, shape)`` of every input, positional ones first: the order of the
        placeholders of a traced call."""
        labels = self.names if len(self.names) == len(self.args) else tuple(f"input {i}" for i in range(len(self.args)))
        return list(zip(labels, self.args)) + list(self.kwargs.items())

    @property
    def first(self) -> tuple:
        """The first input's shape."""
        return self.shapes[0][1]

    @property
    def size_names(self) -> tuple[str, ...]:
        """The size names of every input, in order of first appearance."""
        return tuple(dict.fromkeys(d.name for _, s in self.shapes for d in s if isinstance(d, sympy.Symbol)))

    def map(self, make: Callable[[tuple], Any]) -> tuple[tuple, dict]:
        """``(args, kwargs)`` of the call, each input made by ``make(shape)``."""
        return tuple(make(s) for s in self.args), {k: make(s) for k, s in self.kwargs.items()}

    def typed(self, make: Callable[[tuple, Any], Any], args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        """``(args, kwargs)`` of the call, each input made by ``make(shape, dtype)`` from its
        shape in ``args``/``kwargs`` (as :meth:`concrete` gives them) and its dtype (None: the
        model's floats)."""
        return (tuple(make(s, self.dtypes.get(i)) for i, s in enumerate(args)),
                {k: make(s, self.dtypes.get(k)) for k, s in kwargs.items()})

    def symbolic(self, batched: bool) -> tuple[tuple, dict]:
        """The call's symbolic tensors (the batch dim ``N`` first when ``batched``)."""
        n = batch_symbol()
        return self.typed(lambda s, dtype: SymTensor((n, *s) if batched else s, dtype=dtype), self.args, self.kwargs)

    def concrete(self, sizes: Mapping[str, int], batched: bool) -> tuple[tuple, dict]:
        """The call's input shapes at ``sizes`` (the batch ``N``, 1 by default, first when ``batched``)."""
        def shape(s):
            dims = tuple(sizes[str(d)] if not d.is_Integer else int(d) for d in s)
            return (sizes.get(BATCH, 1), *dims) if batched else dims
        return self.map(shape)

    def spec(self) -> Any:
        """What ``analyze`` takes for this call (shapes with names as strings)."""
        def plain(s, key):
            shape = tuple(str(d) if isinstance(d, sympy.Symbol) else int(d) for d in s)
            return Input(shape, self.dtypes[key]) if key in self.dtypes else shape
        args = tuple(plain(s, i) for i, s in enumerate(self.args))
        kwargs = {k: plain(s, k) for k, s in self.kwargs.items()}
        if self.single:
            return args[0]
        if not self.args:
            return kwargs
        return args if not self.kwargs else (args, kwargs)

    def render(self, batched: bool) -> str:
        """``(N, 3, H, W)``, or ``x (N, 3, H, W), mask (N, 1, H, W)`` for several inputs."""
        n = batch_symbol()
        keys = [*range(len(self.args)), *self.kwargs]
        full = [(label, shape_str((n, *s) if batched else s) + _dtype_text(self.dtypes.get(key)))
                for (label, s), key in zip(self.shapes, keys)]
        if self.single:
            return full[0][1]
        return ", ".join(f"{label} {s}" for label, s in full)

    def __str__(self) -> str:
        return self.render(False)

    def __repr__(self) -> str:
        return f"Inputs({self})"


def _dtype_text(dtype) -> str:
    """`` int64`` after an input's shape where it is given a dtype."""
    return "" if dtype is None else " " + str(dtype).removeprefix("torch.")


def check_call(model: Any, inputs: Inputs) -> None:
    """Raise InvalidArgument, naming the forward's parameters, where ``model.forward`` cannot
    take ``inputs`` (a missing input, one too many, an unknown keyword)."""
    try:
        signature = inspect.signature(model.forward)
    except (TypeError, ValueError, AttributeError):
        return  # a forward whose signature Python cannot read: the call itself will tell
    try:
        signature.bind(*inputs.args, **inputs.kwargs)
    except TypeError as e:
        given = f"{len(inputs.shapes)} input{'s' if len(inputs.shapes) != 1 else ''} ({inputs})"
        raise InvalidArgument(
            f"{type(model).__name__}.forward{signature} cannot be called with {given}: {e}. Give one shape per "
            "input: a tuple of shapes such as ((3, 'H', 'W'), (1, 'H', 'W')) for positional inputs, a dict by "
            "parameter name for keyword ones (on the command line, --input once per input, name=1,H,W by "
            "keyword)") from None


def forward_names(model: Any, count: int) -> tuple[str, ...]:
    """The names of the first ``count`` positional parameters of ``model.forward`` (empty where
    the signature cannot be read or takes ``*args``)."""
    try:
        params = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError, AttributeError):
        return ()
    positional = [p.name for p in params
                  if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    return tuple(positional[:count]) if len(positional) >= count else ()


def parse_inputs(spec: Any, model: Any = None) -> Inputs:
    """``spec`` as :class:`Inputs`: a shape (one input), a list or tuple of shapes (positional
    inputs), a dict of shapes (keyword inputs), or ``(shapes, {name: shape})`` for both."""
    if isinstance(spec, Inputs):
        return spec
    if isinstance(spec, Mapping):
        args, kwargs = (), spec
    elif _is_shape(spec):
        args, kwargs = (spec,), {}
    elif (isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[1], Mapping)
          and isinstance(spec[0], Sequence) and not _is_shape(spec[0])):
        args, kwargs = spec
    elif isinstance(spec, Sequence) and not isinstance(spec, (str, bytes)):
        args, kwargs = spec, {}
    else:
        raise InvalidArgument(f"input_shape must be a tuple such as (1, 'H', 'W'), a tuple of such shapes (one per "
                              f"positional input) or a dict of them by keyword, got {spec!r:.80}")
    if not args and not kwargs:
        raise InvalidArgument("no input given: input_shape is an empty tuple of shapes or an empty dict")
    for k in kwargs:
        if not isinstance(k, str) or not k.isidentifier():
            raise InvalidArgument(f"input names must be the forward's parameter names, got {k!r}")
    dtypes = {key: s.dtype for key, s in (*enumerate(args), *kwargs.items()) if isinstance(s, Input)}
    parsed_args = tuple(parse_shape(_shape_of(s), f"input {i}") for i, s in enumerate(args))
    if len(parsed_args) > 1 or kwargs:
        for i, s in enumerate(args):
            if not _is_shape(s):
                raise InvalidArgument(f"input {i} must be a shape such as (1, 'H', 'W'), got {s!r:.80}")
    parsed_kwargs = {}
    for k, s in kwargs.items():
        if not _is_shape(s):
            raise InvalidArgument(f"input {k!r} must be a shape such as (1, 'H', 'W'), got {s!r:.80}")
        parsed_kwargs[k] = parse_shape(_shape_of(s), f"input {k!r}")
    several = len(parsed_args) > 1 or bool(kwargs)
    names = forward_names(model, len(parsed_args)) if model is not None and several else ()
    return Inputs(parsed_args, parsed_kwargs, names, dtypes)


def _shape_of(s) -> Any:
    return s.shape if isinstance(s, Input) else s
