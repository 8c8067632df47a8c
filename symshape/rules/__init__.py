"""Shape rules, one module per layer family, registered on import."""

from .registry import (
    Context,
    Fixed,
    Rule,
    function_rule,
    method_rule,
    module_rule,
    registered,
    rule_for_function,
    rule_for_method,
    rule_for_module,
    target_name,
)
from . import combine, conv, factory, fold, grouped, layout, linear, matmul, move, pad, pointwise, pool, resample, reshape, scatter, sequence, strides  # noqa: E402,F401

__all__ = [
    "Context",
    "Fixed",
    "Rule",
    "function_rule",
    "method_rule",
    "module_rule",
    "registered",
    "rule_for_function",
    "rule_for_method",
    "rule_for_module",
    "target_name",
]
