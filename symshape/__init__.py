"""symshape: symbolic shapes for PyTorch models.

``analyze(model, input_shape)`` traces a model and gives every layer's output size, and each
Linear's ``in_features``, as an exact formula of the input size; the resulting ``Analysis``
evaluates it at concrete sizes (``at``) and solves it backwards (``valid_sizes``, ``solve``,
``exact_sizes``).
"""

import warnings

# torch warns at import when NumPy is absent; symshape never uses NumPy, so that one message is
# noise on a fresh machine's first `symshape formula`.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy", category=UserWarning)

from .analysis import Analysis, Evaluation, analyze, in_features
from .errors import (BoundExceeded, InvalidArgument, InvalidInputSize, NotASize, SymshapeError, TraceMismatch, UnknownName, UnsupportedArgument, UnsupportedOperation, UnsupportedWhereMetaDiffers, UntraceableModel)
from .rules import function_rule, method_rule, module_rule
from .sizes import IntSet, SizeSet, Tie

__version__ = "0.1.0"

__all__ = [
    "Analysis",
    "BoundExceeded",
    "Evaluation",
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
