"""symshape: symbolic shapes for PyTorch models.

``analyze(model, input_shape)`` traces a model and gives every layer's output size, and each
Linear's ``in_features``, as an exact formula of the input size; the resulting ``Analysis``
evaluates it at concrete sizes (``at``) and solves it backwards (``valid_sizes``, ``solve``,
``exact_sizes``).
"""

import importlib
import warnings

# torch warns at import when NumPy is absent; symshape never uses NumPy, so that one message is
# noise on a fresh machine's first `symshape formula`.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy", category=UserWarning)

__version__ = "0.1.0"

#: the public names and the modules that define them, imported on first use (PEP 562): importing
#: symshape, or running ``symshape --help``, does not import torch
_EXPORTS = {
    **dict.fromkeys(("Analysis", "Evaluation", "analyze", "in_features"), "analysis"),
    **dict.fromkeys(("BoundExceeded", "ForwardRaises", "InvalidArgument", "InvalidInputSize", "NotASize",
                     "SymshapeError", "TraceMismatch", "UnknownName", "UnsupportedArgument", "UnsupportedOperation",
                     "UnsupportedWhereMetaDiffers", "UntraceableModel"), "errors"),
    **dict.fromkeys(("function_rule", "method_rule", "module_rule"), "rules"),
    **dict.fromkeys(("IntSet", "SizeSet", "Tie"), "sizes"),
    "Input": "inputs",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    else:  # a submodule (symshape.tensor ...), as after ``import symshape.tensor``
        try:
            value = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError:
            raise AttributeError(f"module 'symshape' has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *_EXPORTS})


__all__ = [
    "Analysis",
    "BoundExceeded",
    "Evaluation",
    "ForwardRaises",
    "Input",
    "IntSet",
    "InvalidArgument",
    "InvalidInputSize",
    "SizeSet",
    "SymshapeError",
    "Tie",
    "TraceMismatch",
    "NotASize",
    "UnsupportedArgument",
    "UnsupportedOperation",
    "UnknownName",
    "UnsupportedWhereMetaDiffers",
    "UntraceableModel",
    "analyze",
    "function_rule",
    "in_features",
    "method_rule",
    "module_rule",
    "__version__",
]
