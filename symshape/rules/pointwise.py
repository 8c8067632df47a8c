"""Shape-preserving layers: ``out = in``.

Activations, dropout, normalization, Identity and their functional and method forms keep the
shape; several still refuse some inputs, and those checks are rules too:

* BatchNorm{1,2,3}d: rank 2|3, 4, 5; channels == num_features (with running stats or affine);
  with batch statistics (training) not exactly one value per channel: ``N * prod(spatial) != 1``.
* InstanceNorm{1,2,3}d: channels == num_features (when affine); with input statistics not exactly
  one spatial element.
* GroupNorm: more than one value per group (``floor(N*C/G) * prod(spatial) != 1``, in any mode),
  ``C % num_groups == 0`` and ``C == num_channels`` (affine).
* LayerNorm / RMSNorm: the last dims equal ``normalized_shape``.
* PReLU(num_parameters > 1): channels == num_parameters.
* Dropout (every kind, module and function): a rate in [0, 1]. Dropout1d: a 2D or 3D input. Softmax2d / LocalResponseNorm: at least 3D. Softmax(dim): dim in range.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..modules import is_lazy
from ..dims import floor_div, product
from ..tensor import SymTensor
from .common import as_bool, as_int, check_rank, tensor_arg
from .layout import indexes
from .registry import Context, function_rule, method_rule, module_rule
from .strides import contiguous_source

# the CPU kernels' output memory format by input rank (symshape.tensor.kernel_layout), measured:
# batch norm keeps a contiguous input contiguous and follows another (1D: contiguous); group norm
# follows it (1D: contiguous); instance norm is always contiguous
_BN = {3: "contiguous", 4: "unless_contiguous", 5: "unless_contiguous"}
_GN = {3: "contiguous", 4: "suggest", 5: "suggest"}
_IN = {3: "contiguous", 4: "contiguous", 5: "contiguous"}

_PLAIN_MODULES = (
    nn.Identity, nn.Threshold, nn.ReLU, nn.RReLU, nn.Hardtanh, nn.ReLU6, nn.Sigmoid,
    nn.Hardsigmoid, nn.Tanh, nn.SiLU, nn.Mish, nn.Hardswish, nn.ELU, nn.CELU, nn.SELU, nn.GELU,
    nn.Hardshrink, nn.LeakyReLU, nn.LogSigmoid, nn.Softplus, nn.Softshrink, nn.Softsign,
    nn.Tanhshrink,
)

_PLAIN_FUNCTIONS = (
    F.relu, F.relu_, torch.relu, torch.relu_, F.relu6, F.elu, F.elu_, F.selu, F.celu, F.gelu,
    F.silu, F.mish, F.hardswish, F.hardsigmoid, F.hardtanh, F.hardtanh_, F.leaky_relu,
    F.leaky_relu_, F.rrelu, F.threshold, F.hardshrink, F.softshrink, F.tanhshrink, F.softsign,
    F.softplus, F.logsigmoid, torch.sigmoid, torch.tanh, torch.abs,
    torch.neg, torch.clamp, torch.square,
)

_PLAIN_METHODS = (
    "relu", "relu_", "sigmoid", "sigmoid_", "tanh", "tanh_", "abs", "neg", "clamp",
    "clamp_", "clone", "detach", "float", "double", "half", "to", "square", "long", "int", "bool",
    "type_as",
)


@module_rule(*_PLAIN_MODULES, layout="elementwise")
def same_shape(ctx: Context, module: nn.Module, x, *args, **kwargs) -> SymTensor:
    """``out = in``."""
    return tensor_arg(x, "input", ctx)


@function_rule(*_PLAIN_FUNCTIONS, layout="elementwise")
def same_shape_function(ctx: Context, input, *args, **kwargs) -> SymTensor:
    """``out = in``."""
    return tensor_arg(input, "input", ctx)


@method_rule(*_PLAIN_METHODS, layout="elementwise")
def same_shape_method(ctx: Context, self, *args, **kwargs) -> SymTensor:
    """``out = in``."""
    return tensor_arg(self, "self", ctx)


@function_rule(operator.neg, layout="elementwise")
def negative(ctx: Context, input) -> SymTensor:
    """``-x``: ``out = in``; torch refuses it on a bool tensor."""
    x = tensor_arg(input, "input", ctx)
    if x.dtype == torch.bool:
        ctx.refuse("Negation, the `-` operator, on a bool tensor is not supported")
    return x


def _integral(x: SymTensor) -> bool:
    """Whether ``x`` is known to hold bools or integers (a dtype of None is an untracked float)."""
    return x.dtype is not None and not (x.dtype.is_floating_point or x.dtype.is_complex)


#: elementwise ops whose result is floating point whatever the input (a grid's sin and cos)
FLOATING_FUNCTIONS = (torch.rsqrt, torch.sqrt, torch.exp, torch.log, torch.sin, torch.cos)
FLOATING_METHODS = ("rsqrt", "sqrt", "exp", "log", "sin", "cos")


@function_rule(*FLOATING_FUNCTIONS, layout="elementwise")
@method_rule(*FLOATING_METHODS, layout="elementwise")
def floating(ctx: Context, input, *args, **kwargs) -> SymTensor:
    """``out = in``, floating point: of a bool or integer input, in torch's default dtype."""
    x = tensor_arg(input, "input", ctx)
    if _integral(x):
        return x.with_dtype(torch.get_default_dtype())
    return x


@method_rule("contiguous", layout=True)
def contiguous(ctx: Context, self, *args, **kwargs) -> SymTensor:
    """``out = in``, contiguous in memory."""
    # the tensor itself where torch sees it contiguous, odd size-1 strides and all; else a copy,
    # whose size-1 strides are loose where a size that may be 1 makes torch see it contiguous
    # (no guard: whatever x's layout at a size, torch's result is contiguous there, so a view of
    # it never fails; only its size-1 strides may be x's)
    x = tensor_arg(self, "self", ctx)
    if x.contiguous:
        return replace(x.with_shape(x.shape), loose=True, guard=()) if x.guard else x.with_shape(x.shape)
    out = x.with_shape(x.shape, contiguous=True)
    if any(not n.is_Integer for n in x.shape):  # a size that may be 1 may make it contiguous there
        out = contiguous_source(x, replace(out, loose=True))
    return out


def _check_dim(ctx: Context, x: SymTensor, dim, what: str) -> None:
    if dim is None:
        return
    try:
        x.dim(as_int(dim, "dim", ctx))
    except IndexError as e:
        ctx.refuse(f"{what}: {e}")


@module_rule(nn.Softmax, nn.LogSoftmax, nn.Softmin, layout=True)
def softmax(ctx: Context, module: nn.Module, x) -> SymTensor:
    """``out = in``; ``dim`` must exist."""
    x = tensor_arg(x, "input", ctx)
    _check_dim(ctx, x, module.dim, type(module).__name__)
    return x.with_shape(x.shape, contiguous=True)  # torch's softmax allocates it contiguous


@function_rule(F.softmax, F.log_softmax, F.softmin, torch.softmax, torch.log_softmax, layout=True)
@method_rule("softmax", "log_softmax", layout=True)
def softmax_function(ctx: Context, input, dim=None, *args, **kwargs) -> SymTensor:
    """``out = in``; ``dim`` must exist."""
    x = tensor_arg(input, "input", ctx)
    _check_dim(ctx, x, dim, "softmax")
    return x.with_shape(x.shape, contiguous=True)  # torch's softmax allocates it contiguous


@function_rule(F.normalize, layout="elementwise")
def normalize(ctx: Context, input, p=2.0, dim=1, eps=1e-12, out=None) -> SymTensor:
    """``out = in``: divided by its ``p``-norm along ``dim`` (which must exist), expanded back;
    laid out as that division is (TensorIterator's rule, the input first)."""
    x = tensor_arg(input, "input", ctx)
    if out is not None:
        ctx.unsupported("normalize with out=")
    if not isinstance(p, (int, float)):
        ctx.unsupported(f"normalize with p={p!r}")
    _check_dim(ctx, x, dim, "normalize")
    return x.with_shape(x.shape)


@function_rule(torch.cumsum, torch.cumprod, layout=True)
@method_rule("cumsum", "cumprod", layout=True)
def cumulative(ctx: Context, input, dim=None, *, dtype=None, out=None) -> SymTensor:
    """``out = in``, summed or multiplied along ``dim``, which must exist. The output is
    contiguous (torch allocates it so, whatever the input's strides), and of ``dtype``, else
    int64 for a bool or integer input."""
    x = tensor_arg(input, "input", ctx)
    if out is not None:
        ctx.unsupported(f"{ctx.op} with out=")
    if dim is None:
        ctx.refuse(f"{ctx.op}() missing required argument 'dim'")
    _check_dim(ctx, x, dim, ctx.op)
    if dtype is None and _integral(x):
        dtype = torch.int64
    return SymTensor(x.shape, dtype=dtype if dtype is not None else x.dtype)


@function_rule(F.one_hot, layout=True)
def one_hot(ctx: Context, tensor, num_classes=-1) -> SymTensor:
    """``out = (*in, num_classes)``, int64 and contiguous (torch allocates it so). The input must
    be int64. Each class value must lie in ``[0, num_classes)``: checked where symshape knows
    something of them (``one_hot(torch.arange(T), 8)``: ``T <= 8``; the indices a sort returns,
    below their dim's size: past ``num_classes``, whether one reaches it is data); class labels
    are data, not checked (as an Embedding's token ids). ``num_classes=-1`` (the largest value
    plus one) is refused by name; ``num_classes`` 0 or below -1 raises at every size."""
    x = tensor_arg(tensor, "input", ctx)
    if x.dtype is not None and x.dtype != torch.int64:
        ctx.refuse("one_hot is only applicable to index tensor of type LongTensor.")
    n = as_int(num_classes, "num_classes", ctx)
    if n == -1:
        ctx.unsupported("num_classes=-1: the number of classes is the input's largest value plus one, "
                        "data rather than a size")
    if n <= 0:
        ctx.refuse(f"one_hot with num_classes={n}: torch raises at every size (no class value fits)")
    indexes(ctx, x, n, "one_hot", "Class values must be smaller than num_classes (a value {i}, {lhs} classes)")
    return SymTensor((*x.shape, n), dtype=torch.int64)


#: the ops whose rule gives its result's dtype itself, which symshape.engine keeps (elsewhere a
#: comparison's is bool, a cast's its dtype, any other's its first tensor argument's): a cumulative
#: sum of bools and one_hot are int64, an embedding its weight's (not its indices'), a grid's sin
#: floating point
DTYPE_BY_RULE = frozenset({torch.cumsum, torch.cumprod, "cumsum", "cumprod", F.one_hot, F.embedding, *FLOATING_FUNCTIONS,
                           *FLOATING_METHODS})


@module_rule(nn.Softmax2d)
def softmax2d(ctx: Context, module: nn.Module, x) -> SymTensor:
    """``out = in`` for a 3D or 4D input."""
    x = tensor_arg(x, "input", ctx)
    check_rank(ctx, x, (3, 4), "Softmax2d")
    return x


def _rate(ctx: Context, p) -> None:
    """torch's dropouts raise, whatever the input, for a rate outside [0, 1] (``F.dropout``'s
    first check; ``nn.Dropout`` checks it when made, and its forward when called)."""
    if isinstance(p, (int, float)) and not isinstance(p, bool) and not 0 <= p <= 1:
        ctx.refuse(f"dropout probability has to be between 0 and 1, but got {p}")


@module_rule(nn.Dropout, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout, layout="elementwise")
def dropout(ctx: Context, module: nn.Module, x, *args, **kwargs) -> SymTensor:
    """``out = in``; a rate ``p`` outside [0, 1] raises at every size."""
    _rate(ctx, getattr(module, "p", None))
    return tensor_arg(x, "input", ctx)


@function_rule(F.dropout, F.dropout2d, F.dropout3d, F.alpha_dropout, F.feature_alpha_dropout, layout="elementwise")
def dropout_function(ctx: Context, input, p=0.5, *args, **kwargs) -> SymTensor:
    """``out = in``; a rate ``p`` outside [0, 1] raises at every size."""
    _rate(ctx, p)
    return tensor_arg(input, "input", ctx)


def _dropout1d(ctx: Context, x, p) -> SymTensor:
    _rate(ctx, p)
    x = tensor_arg(x, "input", ctx)
    check_rank(ctx, x, (2, 3), "dropout1d")
    return x


@module_rule(nn.Identity, layout=True)
def identity(ctx: Context, module: nn.Module, x, *args, **kwargs) -> SymTensor:
    """``out = in``: the same tensor, its layout included."""
    return tensor_arg(x, "input", ctx)


@module_rule(nn.Dropout1d)
def dropout1d(ctx: Context, module: nn.Module, x) -> SymTensor:
    """``out = in`` for a 2D or 3D input (channel-wise dropout over one spatial dim); a rate
    ``p`` outside [0, 1] raises at every size."""
    return _dropout1d(ctx, x, getattr(module, "p", None))


@function_rule(F.dropout1d)
def dropout1d_function(ctx: Context, input, p=0.5, *args, **kwargs) -> SymTensor:
    """``out = in`` for a 2D or 3D input; a rate ``p`` outside [0, 1] raises at every size."""
    return _dropout1d(ctx, input, p)


def _glu(ctx: Context, x, dim) -> SymTensor:
    x = tensor_arg(x, "input", ctx)
    try:
        i = x.dim(as_int(dim, "dim", ctx))
    except IndexError as e:
        ctx.refuse(f"GLU: {e}")
    n = x.shape[i]
    if n.is_Integer and n % 2:  # odd at every size: no output shape to go on with (a size of 1/2)
        ctx.refuse(f"GLU halves dim {i}, which must be even, gets {n}")
    ctx.divisible(n, 2, f"GLU halves dim {i}, which must be even, gets {{lhs}}")
    # floor(n/2): n/2 where n is even, as required, and no fraction inside a later floor (a
    # stride-2 convolution after it: floor((n/2 + 1)/2), which no rule could read)
    return SymTensor((*x.shape[:i], floor_div(x.shape[i], 2), *x.shape[i + 1 :]))


@module_rule(nn.GLU)
def glu(ctx: Context, module: nn.GLU, x) -> SymTensor:
    """``out[dim] = floor(in[dim] / 2)``; ``in[dim]`` must be even."""
    return _glu(ctx, x, module.dim)


@function_rule(F.glu)
def glu_function(ctx: Context, input, dim=-1) -> SymTensor:
    """``out[dim] = floor(in[dim] / 2)``; ``in[dim]`` must be even."""
    return _glu(ctx, input, dim)


@module_rule(nn.PReLU)
def prelu(ctx: Context, module: nn.PReLU, x) -> SymTensor:
    """``out = in``; with ``num_parameters > 1`` the channel dim must equal it."""
    x = tensor_arg(x, "input", ctx)
    if module.num_parameters > 1:
        if x.ndim < 2:
            ctx.refuse(f"PReLU with {module.num_parameters} parameters needs a channel dim, gets {x}")
        ctx.fixes(x.shape[1], module.num_parameters, "num_parameters",
                  "PReLU has {rhs} parameters, the input has {lhs} channels", dim=1)
    return x


@module_rule(nn.BatchNorm1d, nn.LazyBatchNorm1d, ranks=(2, 3), memory_format=_BN)
@module_rule(nn.BatchNorm2d, nn.LazyBatchNorm2d, ranks=(4,), memory_format=_BN)
@module_rule(nn.BatchNorm3d, nn.LazyBatchNorm3d, ranks=(5,), memory_format=_BN)
def batch_norm(ctx: Context, module: nn.Module, x, *, ranks) -> SymTensor:
    """``out = in``; channels == num_features; in training, more than 1 value per channel."""
    x = tensor_arg(x, "input", ctx)
    check_rank(ctx, x, ranks, type(module).__name__)
    if not is_lazy(module) and (module.running_mean is not None or module.weight is not None):
        ctx.fixes(x.shape[1], module.num_features, "num_features",
                  "num_features is {rhs}, the input has {lhs} channels", dim=1)
    uses_batch_stats = module.training or (module.running_mean is None and module.running_var is None)
    if uses_batch_stats:
        # torch's check is exactly "not 1" (an empty batch passes it)
        ctx.require(
            product([x.shape[0], *x.shape[2:]]), "!=", 1,
            "in training mode batch norm needs more than 1 value per channel, gets {lhs} "
            "(call model.eval() for inference)",
        )
    return x


def _per_channel(ctx: Context, x: SymTensor, tensors: dict, channels) -> None:
    """Each given per-channel tensor (running stats, weight, bias) has one value per channel."""
    for name, t in tensors.items():
        if isinstance(t, SymTensor):
            ctx.equal(channels, product(t.shape), f"{name} has {{rhs}} values, the input has {{lhs}} channels",
                      kind="declared")


@function_rule(F.batch_norm, memory_format=_BN)
def batch_norm_function(ctx: Context, input, running_mean, running_var, weight=None, bias=None,
                        training=False, momentum=0.1, eps=1e-5) -> SymTensor:
    """``out = in``; per-channel tensors match the channels; in training, more than 1 value per channel."""
    x = tensor_arg(input, "input", ctx)
    if x.ndim < 2:
        ctx.refuse(f"batch_norm expects at least a 2D input, gets {x.ndim}D {x}")
    _per_channel(ctx, x, {"running_mean": running_mean, "running_var": running_var, "weight": weight,
                          "bias": bias}, x.shape[1])
    if as_bool(training, "training", ctx):
        ctx.require(product([x.shape[0], *x.shape[2:]]), "!=", 1,
                    "Expected more than 1 value per channel when training, gets {lhs}")
    elif running_mean is None or running_var is None:
        ctx.never("batch_norm in evaluation mode needs running_mean and running_var")
    return x


@function_rule(F.group_norm, memory_format=_GN)
def group_norm_function(ctx: Context, input, num_groups, weight=None, bias=None, eps=1e-5) -> SymTensor:
    """``out = in``; more than 1 value per group, ``C % num_groups == 0``, per-channel tensors match."""
    x = tensor_arg(input, "input", ctx)
    if x.ndim < 2:
        ctx.refuse(f"group_norm expects at least a 2D input, gets {x.ndim}D {x}")
    groups = as_int(num_groups, "num_groups", ctx)
    if groups < 1:
        ctx.never(f"num_groups must be positive, gets {groups}")
        return x
    ctx.require(product([floor_div(x.shape[0] * x.shape[1], groups), *x.shape[2:]]), "!=", 1,
                "Expected more than 1 value per channel when training, gets {lhs}")
    ctx.divisible(x.shape[1], groups, "Expected number of channels in input to be divisible by num_groups, "
                                      "gets {lhs} channels and num_groups={rhs}")
    _per_channel(ctx, x, {"weight": weight, "bias": bias}, x.shape[1])
    return x


@function_rule(F.instance_norm, memory_format=_IN)
def instance_norm_function(ctx: Context, input, running_mean=None, running_var=None, weight=None, bias=None,
                           use_input_stats=True, momentum=0.1, eps=1e-5) -> SymTensor:
    """``out = in``; with input statistics more than 1 spatial element; per-channel tensors match."""
    x = tensor_arg(input, "input", ctx)
    if x.ndim < 3:
        ctx.refuse(f"instance_norm expects at least a 3D input, gets {x.ndim}D {x}")
    _per_channel(ctx, x, {"running_mean": running_mean, "running_var": running_var, "weight": weight,
                          "bias": bias}, x.shape[1])
    if as_bool(use_input_stats, "use_input_stats", ctx):
        ctx.require(product(x.shape[2:]), "!=", 1,
                    "Expected more than 1 spatial element when training, gets {lhs}")
    return x


@module_rule(nn.InstanceNorm1d, nn.LazyInstanceNorm1d, ranks=(2, 3), memory_format=_IN)
@module_rule(nn.InstanceNorm2d, nn.LazyInstanceNorm2d, ranks=(3, 4), memory_format=_IN)
@module_rule(nn.InstanceNorm3d, nn.LazyInstanceNorm3d, ranks=(4, 5), memory_format=_IN)
def instance_norm(ctx: Context, module: nn.Module, x, *, ranks) -> SymTensor:
    """``out = in``; channels == num_features (affine); with input statistics > 1 spatial element."""
    x = tensor_arg(x, "input", ctx)
    check_rank(ctx, x, ranks, type(module).__name__)
    batched = x.ndim == ranks[-1]
    channel = x.shape[1] if batched else x.shape[0]
    if not is_lazy(module) and (module.affine or module.track_running_stats):
        ctx.fixes(channel, module.num_features, "num_features",
                  "num_features is {rhs}, the input has {lhs} channels", dim=1 if batched else 0)
    if module.training or not module.track_running_stats:
        spatial = x.shape[2:] if batched else x.shape[1:]
        ctx.require(product(spatial), "!=", 1,
                    "instance norm with input statistics needs more than 1 spatial element, gets {lhs}")
    return x


@module_rule(nn.GroupNorm, memory_format=_GN)
def group_norm(ctx: Context, module: nn.GroupNorm, x) -> SymTensor:
    """``out = in``; more than 1 value per group, ``C % num_groups == 0``, ``C == num_channels`` (affine)."""
    x = tensor_arg(x, "input", ctx)
    if x.ndim < 2:
        ctx.refuse(f"GroupNorm needs at least a 2D input, gets {x}")
    groups = as_int(module.num_groups, "num_groups", ctx)
    per_group = floor_div(x.shape[0] * x.shape[1], groups)
    ctx.require(
        product([per_group, *x.shape[2:]]), "!=", 1,
        "group norm needs more than 1 value per group, gets {lhs}",
    )
    ctx.divisible(x.shape[1], groups,
                  "channels must be divisible by num_groups={rhs}, gets {lhs}")
    if module.affine:
        ctx.fixes(x.shape[1], module.num_channels, "num_channels",
                  "num_channels is {rhs}, the input has {lhs} channels", dim=1)
    return x


def layer_norm_shape(ctx: Context, x: SymTensor, normalized_shape, layer: str) -> SymTensor:
    """``out = in``; the last ``len(normalized_shape)`` dims must equal ``normalized_shape``."""
    if isinstance(normalized_shape, (list, tuple, torch.Size)):
        shape = tuple(as_int(s, "normalized_shape", ctx) for s in normalized_shape)
    else:
        shape = (as_int(normalized_shape, "normalized_shape", ctx),)
    if x.ndim < len(shape):
        ctx.refuse(f"{layer}{shape} needs at least {len(shape)} dims, gets {x}")
    for j in reversed(range(len(shape))):  # the last first: the layer's own fixed size
        i = x.ndim - len(shape) + j
        ctx.fixes(x.shape[i], shape[j], "normalized_shape" + (f"[{j}]" if len(shape) > 1 else ""),
                  f"normalized_shape needs size {{rhs}} at dim {i}, gets {{lhs}}", always=j == len(shape) - 1, dim=i)
    return x


@functools.cache
def _rms_norm_contiguous() -> bool:
    """Whether this torch's rms_norm allocates its output contiguous (a fused kernel, torch 2.13
    and 14) or lays it out as its input (the elementwise ops of older torch): asked of torch
    once, on a transposed 3 x 2 tensor."""
    return F.rms_norm(torch.zeros(2, 3).t(), (2,)).is_contiguous()


@module_rule(nn.LayerNorm, nn.RMSNorm, layout=True)
def layer_norm(ctx: Context, module: nn.Module, x) -> SymTensor:
    """``out = in``; the last ``len(normalized_shape)`` dims must equal ``normalized_shape``."""
    out = layer_norm_shape(ctx, tensor_arg(x, "input", ctx), module.normalized_shape, type(module).__name__)
    # torch's layer_norm allocates a contiguous output; rms_norm too, or as its input in older torch
    contiguous = isinstance(module, nn.LayerNorm) or _rms_norm_contiguous()
    return out.with_shape(out.shape, contiguous=True if contiguous else None)


@function_rule(F.layer_norm, layout=True)
def layer_norm_function(ctx: Context, input, normalized_shape, weight=None, bias=None, eps=1e-5) -> SymTensor:
    """``out = in``; the last ``len(normalized_shape)`` dims must equal ``normalized_shape``."""
    out = layer_norm_shape(ctx, tensor_arg(input, "input", ctx), normalized_shape, "layer_norm")
    return out.with_shape(out.shape, contiguous=True)  # torch allocates it contiguous


@function_rule(F.rms_norm, layout=True)
def rms_norm_function(ctx: Context, input, normalized_shape, weight=None, eps=None) -> SymTensor:
    """``out = in``; the last ``len(normalized_shape)`` dims must equal ``normalized_shape``, and
    so must ``weight``'s shape."""
    x = tensor_arg(input, "input", ctx)
    out = layer_norm_shape(ctx, x, normalized_shape, "rms_norm")
    if isinstance(weight, SymTensor) and tuple(weight.shape) != tuple(x.shape[x.ndim - weight.ndim:]):
        ctx.unsupported(f"rms_norm with a weight of shape {weight} for an input {x}")
    return out.with_shape(out.shape, contiguous=True if _rms_norm_contiguous() else None)


@module_rule(nn.LocalResponseNorm)
def local_response_norm(ctx: Context, module: nn.Module, x) -> SymTensor:
    """``out = in`` for an input with at least 3 dims."""
    x = tensor_arg(x, "input", ctx)
    if x.ndim < 3:
        ctx.refuse(f"LocalResponseNorm needs at least a 3D input, gets {x.ndim}D {x}")
    return x


@function_rule(F.local_response_norm)
def local_response_norm_function(ctx: Context, input, size, alpha=1e-4, beta=0.75, k=1.0) -> SymTensor:
    """``out = in`` for an input with at least 3 dims (its meta path sizes a float average)."""
    return local_response_norm(ctx, None, input)
