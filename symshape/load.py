"""Load a model from ``path/to/file.py:Name`` or ``package.module:Name`` (used by the CLI)."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from typing import Any

import torch.nn as nn

from .dims import BATCH, positive_int
from .errors import SymshapeError

__all__ = ["ModelLoadError", "load_model", "parse_input"]


class ModelLoadError(SymshapeError):
    """The model spec does not lead to an nn.Module (missing file, unknown name, failing constructor)."""


def _import_file(path: str):
    if not os.path.isfile(path):
        raise ModelLoadError(f"no such file: {path}")
    name = "_symshape_model_" + os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ModelLoadError(f"cannot import {path} (is it a Python file?)")
    module = importlib.util.module_from_spec(spec)
    folder = os.path.dirname(os.path.abspath(path))
    sys.path.insert(0, folder)  # so the file can import its neighbours
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        raise ModelLoadError(f"importing {path} failed: {type(e).__name__}: {e}") from e
    finally:
        if sys.path and sys.path[0] == folder:
            sys.path.pop(0)
    return module


def _candidates(module) -> list[str]:
    out = []
    for name, obj in vars(module).items():
        if name.startswith("_"):
            continue
        if isinstance(obj, nn.Module) or (inspect.isclass(obj) and issubclass(obj, nn.Module)
                                          and obj.__module__ == module.__name__):
            out.append(name)
    return out


def load_model(spec: str, kwargs: dict[str, Any] | None = None) -> nn.Module:
    """``file.py:Name`` or ``pkg.module:Name``; Name is an nn.Module class, a factory or an instance.

    A class or factory is called with ``kwargs``; an instance is used as it is.
    """
    if ":" not in spec:
        raise ModelLoadError(f"model {spec!r} must look like path/to/file.py:Name or package.module:Name")
    where, _, name = spec.rpartition(":")
    if not where or not name:
        raise ModelLoadError(f"model {spec!r} must look like path/to/file.py:Name or package.module:Name")
    if where.endswith(".py") or os.sep in where or "/" in where:
        module = _import_file(where)
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as e:
            raise ModelLoadError(f"cannot import {where}: {e}") from e
    obj: Any = module
    for part in name.split("."):
        if not hasattr(obj, part):
            found = ", ".join(_candidates(module)) or "no nn.Module"
            raise ModelLoadError(f"{where} has no {name!r}; it defines: {found}")
        obj = getattr(obj, part)
    if isinstance(obj, nn.Module):
        if kwargs:
            raise ModelLoadError(f"{name} is a model instance; --kwargs applies to a class or factory")
        return obj
    if not callable(obj):
        raise ModelLoadError(f"{name} is a {type(obj).__name__}, not an nn.Module, class or factory")
    try:
        model = obj(**(kwargs or {}))
    except Exception as e:
        hint = "" if kwargs else " (pass constructor arguments with --kwargs '{\"name\": value}')"
        raise ModelLoadError(f"{name}(**{kwargs or {}}) failed: {type(e).__name__}: {e}{hint}") from e
    if not isinstance(model, nn.Module):
        raise ModelLoadError(f"{name}() returned a {type(model).__name__}, not an nn.Module")
    return model


def parse_input(text: str) -> tuple:
    """``"1,H,W"`` -> ``(1, "H", "W")``; sizes are positive ints or names such as H, W, L."""
    body = text.strip().strip("()[]")
    parts = [p.strip() for p in body.split(",")] if body else []
    if not parts or any(not p for p in parts):
        raise ValueError(f"--input {text!r}: expected comma-separated sizes such as 1,H,W or 3,224,224")
    out: list = []
    for p in parts:
        if p.isdigit():
            out.append(positive_int(int(p), f"--input {text!r}: size"))
        elif p.isidentifier():
            if p == BATCH:
                raise ValueError(f"--input {text!r}: N is the batch dim, which symshape adds; give one sample's shape")
            out.append(p)
        else:
            raise ValueError(f"--input {text!r}: {p!r} is neither a positive int nor a size name")
    return tuple(out)
