"""torch's own OpInfo samples as a differential corpus (issue 17, point 5).

``torch.testing._internal.common_methods_invocations.op_db`` holds the sample inputs PyTorch's
developers wrote for each op, edge cases included. For every sample of the ops below (float32,
CPU) the sample's input becomes the symbolic input, one size symbol per dim (a dim of 0 stays a
fixed 0: an empty tensor, counted in its own column); the other tensors of the call are
constants of the model. symshape analyzes the call once, and torch runs it at the
sample's own size and at sizes around it (each dim one less, one more, three more, and 1). Each check compares torch's output shapes (or its refusal) with
``Analysis.at()`` (or its ``InvalidInputSize``).

A sample symshape refuses to analyze is a *refusal*; it is acceptable only where torch raises
at the sample's own size too. ``python tests/opinfo_corpus.py [--quick]`` prints the table of
docs/verify.md.
"""

from __future__ import annotations

import collections
import operator
import string
import sys
import warnings

import torch
import torch.nn as nn

import symshape
from symshape.errors import SymshapeError

# the ops whose output shape depends on the sizes of their input (every layer family symshape
# has a rule for, and the shape ops real models call); op_db names, variants included
OPS = (
    # convolution, pooling, resampling, padding, unfold
    "nn.functional.conv1d nn.functional.conv2d nn.functional.conv3d "
    "nn.functional.conv_transpose1d nn.functional.conv_transpose2d nn.functional.conv_transpose3d "
    "nn.functional.avg_pool1d nn.functional.avg_pool2d nn.functional.avg_pool3d "
    "nn.functional.max_pool1d nn.functional.max_pool2d nn.functional.max_pool3d "
    "nn.functional.adaptive_avg_pool1d nn.functional.adaptive_avg_pool2d nn.functional.adaptive_avg_pool3d "
    "nn.functional.adaptive_max_pool1d nn.functional.adaptive_max_pool2d nn.functional.adaptive_max_pool3d "
    "nn.functional.fractional_max_pool2d nn.functional.fractional_max_pool3d "
    "nn.functional.interpolate.area nn.functional.interpolate.bicubic nn.functional.interpolate.bilinear "
    "nn.functional.interpolate.linear nn.functional.interpolate.nearest nn.functional.interpolate.nearest-exact "
    "nn.functional.interpolate.trilinear nn.functional.upsample_bilinear nn.functional.upsample_nearest "
    "_upsample_bilinear2d_aa nn.functional.grid_sample "
    "nn.functional.pixel_shuffle nn.functional.pixel_unshuffle nn.functional.channel_shuffle "
    "nn.functional.pad.circular nn.functional.pad.constant nn.functional.pad.reflect "
    "nn.functional.pad.replicate nn.functional.pad.replicate_negative constant_pad_nd "
    "nn.functional.unfold unfold "
    # views, reshapes, splits, joins
    "view reshape view_as reshape_as flatten unflatten ravel permute transpose t mT movedim "
    "squeeze squeeze.multiple unsqueeze expand expand_as broadcast_to repeat tile flip roll rot90 "
    "chunk split split.list_args split_with_sizes tensor_split unsafe_chunk unsafe_split "
    "hsplit vsplit dsplit narrow select unbind __getitem__ "
    "cat stack hstack vstack dstack column_stack "
    # products, normalization, attention
    "matmul mm bmm baddbmm einsum nn.functional.linear "
    "nn.functional.batch_norm nn.functional.group_norm nn.functional.layer_norm "
    "nn.functional.instance_norm nn.functional.local_response_norm nn.functional.normalize "
    "nn.functional.rms_norm nn.functional.scaled_dot_product_attention"
).split()

QUICK_PER_OP = 2  # the default test run takes the first samples of each op


def op_name(op) -> str:
    return op.name + ("." + op.variant_test_name if op.variant_test_name else "")


def methodcaller(name):
    def call(x, *args, **kwargs):
        return getattr(x, name)(*args, **kwargs)
    return call


class Call(nn.Module):
    """``op(*args, **kwargs)`` with the sample's input replaced by the model's input ``x``;
    every other tensor of the call is a constant of the model."""

    def __init__(self, op, sample, where):
        super().__init__()
        self.args, self.kwargs, self.where = sample.args, sample.kwargs, where
        self.constant = sample.input
        # a Tensor method (``torch.Tensor.view``, ``__getitem__``) is called as a method, as models do
        name = getattr(op, "__name__", "")
        if getattr(torch.Tensor, name, None) is op and not hasattr(torch, name):
            self.op = operator.getitem if name == "__getitem__" else methodcaller(name)
        else:
            self.op = op

    def forward(self, x):
        if self.where is None:
            first = x
        else:  # the input is a sequence of tensors: x takes the place of element `where`
            first = list(self.constant)
            first[self.where] = x
        return self.op(first, *self.args, **self.kwargs)


def samples(ops=OPS, quick: bool = False):
    """(op name, op, sample) for every sample of ``ops`` (float32, CPU)."""
    from torch.testing._internal.common_methods_invocations import op_db

    wanted = set(ops)
    for op in op_db:
        if op_name(op) not in wanted:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            drawn = list(op.sample_inputs("cpu", torch.float32, requires_grad=False))
        for sample in drawn[:QUICK_PER_OP] if quick else drawn:
            yield op_name(op), op, sample


def _symbolic(sample):
    """(position in a sequence input or None, the tensor that becomes x) or None if no dim varies."""
    if isinstance(sample.input, torch.Tensor):
        where, tensor = None, sample.input
    elif isinstance(sample.input, (list, tuple)) and sample.input and all(
            isinstance(t, torch.Tensor) for t in sample.input):
        where, tensor = 0, sample.input[0]
    else:
        return None
    if tensor.dim() == 0 or not any(tensor.shape):
        return None
    return where, tensor


def shapes(value):
    """torch's output as nested tuples of ints (the tensors' shapes)."""
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if isinstance(value, (list, tuple)):
        return tuple(shapes(v) for v in value if v is not None)
    return None  # a Python number or None: not a shape


def predicted(value):
    if isinstance(value, tuple) and value and all(isinstance(v, tuple) or v is None for v in value):
        return tuple(predicted(v) for v in value if v is not None)
    return tuple(int(d) for d in value) if value is not None else None


def _torch(model, shape):
    x = torch.zeros(shape)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.manual_seed(0)
            return True, shapes(model(x))
    except Exception as e:  # torch refuses these sizes
        return False, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"


def sizes_around(values: dict[str, int]) -> list[dict[str, int]]:
    out = [dict(values)]
    for name, v in values.items():
        for w in (v - 1, v + 1, v + 3, 1):
            if w >= 1 and w != v:
                out.append({**values, name: w})
    return out


Outcome = collections.namedtuple(
    "Outcome", "op checks wrong refused refused_where_torch_runs crashed empty details", defaults=(0, []))


def run_sample(name, op, sample) -> Outcome:
    """Analyze one sample and compare with torch at its size and around it."""
    found = _symbolic(sample)
    if found is None:
        return Outcome(name, 0, 0, 0, 0, 0)
    where, tensor = found
    letters = iter(string.ascii_uppercase)
    # a dim of 0 stays 0 (a fixed dim of input_shape): the others are sizes
    spec = [next(letters) if d else 0 for d in tensor.shape]
    values = {s: int(d) for s, d in zip(spec, tensor.shape) if d}
    empty = int(0 in tensor.shape)
    model = Call(op.op, sample, where)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            analysis = symshape.analyze(model, tuple(spec), batch=None)
    except SymshapeError as e:
        runs, _ = _torch(model, tuple(tensor.shape))
        why = f"{type(e).__name__}: {str(e).splitlines()[0]}"
        said = "refused" if runs else "torch refuses too, refused"  # only the first is a gap
        return Outcome(name, 0, 0, 1, int(runs), 0, empty, [f"{said} {name} {tuple(tensor.shape)}: {why}"])
    except Exception as e:  # a crash is a defect
        return Outcome(name, 0, 0, 0, 0, 1, empty, [f"CRASH {name} {tuple(tensor.shape)}: {type(e).__name__}: {e}"])
    checks = wrong = crashed = 0
    details = []
    for sizes in sizes_around(values):
        shape = tuple(sizes[s] if s else 0 for s in spec)
        runs, want = _torch(model, shape)
        try:
            got = predicted(analysis.at(**sizes).output_shape)
        except symshape.InvalidInputSize as e:
            got = None
            why = str(e).splitlines()[0]
        except Exception as e:
            crashed += 1
            details.append(f"CRASH {name} at {shape}: {type(e).__name__}: {e}")
            continue
        checks += 1
        if (got is None) != (not runs) or (runs and got != want):
            wrong += 1
            details.append(f"WRONG {name} {tuple(tensor.shape)} args={_short(sample)} at {shape}: torch "
                           f"{want if runs else 'refuses (' + want + ')'}, symshape "
                           f"{got if got is not None else 'refuses (' + why + ')'}")
    return Outcome(name, checks, wrong, 0, 0, crashed, empty, details)


def _short(sample) -> str:
    def one(a):
        return f"T{tuple(a.shape)}" if isinstance(a, torch.Tensor) else repr(a)
    text = ", ".join([one(a) for a in sample.args] + [f"{k}={one(v)}" for k, v in sample.kwargs.items()])
    return text[:160]


def run(ops=OPS, quick: bool = False):
    """Every sample: a table per op (samples, checks, wrong, refused) and the details."""
    table = collections.OrderedDict()
    details = []
    for name, op, sample in samples(ops, quick):
        out = run_sample(name, op, sample)
        row = table.setdefault(name, collections.Counter())
        row["samples"] += 1
        row["checks"] += out.checks
        row["wrong"] += out.wrong
        row["refused"] += out.refused
        row["refused_where_torch_runs"] += out.refused_where_torch_runs
        row["crashed"] += out.crashed
        row["empty"] += out.empty
        details += out.details
    return table, details


def markdown(table) -> str:
    lines = ["| op | samples | with a dim of 0 | size checks | wrong | refused (torch runs) |",
             "|---|---:|---:|---:|---:|---:|"]
    total = collections.Counter()
    for name, row in sorted(table.items()):
        total.update(row)
        lines.append(f"| `{name}` | {row['samples']} | {row['empty']} | {row['checks']} | {row['wrong']} | "
                     f"{row['refused']} ({row['refused_where_torch_runs']}) |")
    lines.append(f"| **all {len(table)} ops** | **{total['samples']}** | **{total['empty']}** | "
                 f"**{total['checks']}** | **{total['wrong']}** | "
                 f"**{total['refused']} ({total['refused_where_torch_runs']})** |")
    return "\n".join(lines)


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    only = [a for a in sys.argv[1:] if not a.startswith("--")]
    table, details = run(only or OPS, quick)
    for line in details:
        print(line)
    print(markdown(table))
