"""Load a model from ``path/to/file.py:Name`` or ``package.module:Name`` (used by the CLI)."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import io
import os
import sys
from typing import Any

import torch.nn as nn

from .dims import BATCH, positive_int
from .errors import SymshapeError
from .inputs import DTYPES, Input
from .rules.registry import LOADED_MODULE_PREFIX

__all__ = ["ModelLoadError", "input_spec", "load_model", "parse_input", "parse_inputs", "spec_object"]


class ModelLoadError(SymshapeError):
    """The model spec does not lead to an nn.Module (missing file, unknown name, failing constructor)."""


def _import_file(path: str):
    if not os.path.isfile(path):
        raise ModelLoadError(f"no such file: {path}")
    name = LOADED_MODULE_PREFIX + os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ModelLoadError(f"cannot import {path} (is it a Python file?)")
    module = importlib.util.module_from_spec(spec)
    folder = os.path.dirname(os.path.abspath(path))
    sys.path.insert(0, folder)  # so the file can import its neighbours
    # registered while it runs, as an import would (dataclasses with `from __future__ import
    # annotations` look their module up there); the file sees a clean argv of its own, and a
    # script that exits on import reports that, instead of ending symshape's process
    previous = sys.modules.get(name)
    sys.modules[name] = module
    try:
        with _user_code(f"importing {path}", path):
            spec.loader.exec_module(module)
    except Exception as e:
        _forget(name, previous)
        if isinstance(e, ModelLoadError):
            raise
        raise ModelLoadError(f"importing {path} failed: {type(e).__name__}: {e}") from e
    finally:
        if sys.path and sys.path[0] == folder:
            sys.path.pop(0)
    return module


def _refuse_exit(code=0):
    raise SystemExit(code)


@contextlib.contextmanager
def _user_code(what: str, program: str):
    """Run a model file's code with a clean ``sys.argv`` of its own (a training script's argparse
    must not read symshape's arguments), and turn ``sys.exit()``/``os._exit()`` there into a
    ModelLoadError instead of the end of symshape's process."""
    argv, exit_, stderr = sys.argv, os._exit, sys.stderr
    said = io.StringIO()  # what the code writes to stderr: passed on, or quoted if it exits
    sys.argv, os._exit, sys.stderr = [program], _refuse_exit, said
    exited = False
    try:
        yield
    except SystemExit as e:
        exited = True
        sys.stderr = stderr
        last = said.getvalue().strip().splitlines()[-1:] or [""]
        raise ModelLoadError(f"{what} exited (sys.exit({e.code!r}), os._exit or argparse"
                             + (f": {last[0].strip()[:200]}" if last[0] else "")
                             + "): a script rather than a module? Guard its main code with "
                             "`if __name__ == '__main__':`") from None
    finally:
        sys.argv, os._exit, sys.stderr = argv, exit_, stderr
        if not exited:
            stderr.write(said.getvalue())


def _forget(name: str, previous) -> None:
    if previous is None:
        sys.modules.pop(name, None)
    else:
        sys.modules[name] = previous


def _candidates(module) -> str:
    """What a spec may name in ``module``: its nn.Module classes and instances, and the functions
    it defines (factories such as ``resnet18``)."""
    models, functions = [], []
    for name, obj in vars(module).items():
        if name.startswith("_"):
            continue
        if isinstance(obj, nn.Module) or (inspect.isclass(obj) and issubclass(obj, nn.Module)
                                          and obj.__module__ == module.__name__):
            models.append(name)
        elif inspect.isfunction(obj) and obj.__module__ == module.__name__:
            functions.append(name)
    parts = ([f"{', '.join(models)} (models and model classes)"] if models else []) + (
        [f"{', '.join(functions)} (functions, e.g. factories)"] if functions else [])
    return "; ".join(parts) or "no nn.Module and no function"


def load_model(spec: str, kwargs: dict[str, Any] | None = None) -> nn.Module:
    """``file.py:Name`` or ``pkg.module:Name``; Name is an nn.Module class, a factory or an instance.

    A class or factory is called with ``kwargs``; an instance is used as it is. A name may go on
    into the model it builds: ``file.py:Model.main`` is the submodule ``main`` of ``Model()``.
    """
    if ":" not in spec:
        raise ModelLoadError(f"model {spec!r} must look like path/to/file.py:Name or package.module:Name")
    where, _, name = spec.rpartition(":")
    if not where or not name:
        raise ModelLoadError(f"model {spec!r} must look like path/to/file.py:Name or package.module:Name")
    if where.endswith(".py") or os.sep in where or "/" in where:
        module = _import_file(where)
    else:
        # from the current folder, as ``python -m`` imports (the console script's sys.path[0] is
        # its own bin folder)
        here = os.getcwd()
        added = here not in sys.path
        if added:
            sys.path.insert(0, here)
        try:
            with _user_code(f"importing {where}", where):
                module = importlib.import_module(where)
        except ImportError as e:
            raise ModelLoadError(f"cannot import {where}: {e}") from e
        finally:
            if added and here in sys.path:
                sys.path.remove(here)
    obj: Any = module
    parts, sub = name.split("."), ""
    for i, part in enumerate(parts):
        if not hasattr(obj, part):
            if i > 0 and callable(obj) and not isinstance(obj, nn.Module):
                # Model.main: the submodule ``main`` of the model the class or factory builds
                name, sub = ".".join(parts[:i]), ".".join(parts[i:])
                break
            raise ModelLoadError(f"{where} has no {name!r}; it defines: {_candidates(module)}")
        obj = getattr(obj, part)
    _SPEC_OBJECTS[spec] = obj
    if isinstance(obj, nn.Module):
        if kwargs:
            raise ModelLoadError(f"{name} is a model instance; --kwargs applies to a class or factory")
        return obj
    model = _build(obj, name, where, kwargs)
    if not sub:
        return model
    try:
        return model.get_submodule(sub)
    except AttributeError:
        children = ", ".join(n for n, _ in model.named_children()) or "none"
        raise ModelLoadError(f"the {type(model).__name__} that {name}() builds has no submodule {sub!r}; "
                             f"its children: {children}") from None


def _build(obj: Any, name: str, where: str, kwargs: dict[str, Any] | None) -> nn.Module:
    """``obj(**kwargs)``, an nn.Module, or a ModelLoadError saying why not."""
    if not callable(obj):
        raise ModelLoadError(f"{name} is a {type(obj).__name__}, not an nn.Module, class or factory")
    try:
        with _user_code(f"{name}(**{kwargs or {}})", where):
            model = obj(**(kwargs or {}))
    except ModelLoadError:
        raise
    except Exception as e:
        hint = "" if kwargs else " (pass constructor arguments with --kwargs '{\"name\": value}')"
        raise ModelLoadError(f"{name}(**{kwargs or {}}) failed: {type(e).__name__}: {e}{hint}") from e
    if not isinstance(model, nn.Module):
        raise ModelLoadError(f"{name}() returned a {type(model).__name__}, not an nn.Module")
    return model


#: what each model spec loaded so far names (a class, a factory or an instance), for --fix
_SPEC_OBJECTS: dict[str, Any] = {}


def spec_object(spec: str) -> Any:
    """The class, factory or instance ``spec`` named when :func:`load_model` loaded it (None
    if it has not)."""
    return _SPEC_OBJECTS.get(spec)


def parse_input(text: str) -> tuple | Input:
    """``"1,H,W"`` -> ``(1, "H", "W")``; sizes are positive ints or names such as H, W, L. A dtype
    after a colon makes an input of token ids or a mask: ``"T:int64"`` -> ``Input(("T",),
    torch.int64)`` (the names of symshape.inputs.DTYPES)."""
    sizes, colon, dtype = text.partition(":")
    if colon:
        if dtype.strip() not in DTYPES:
            raise ValueError(f"--input {text!r}: {dtype.strip()!r} is not a dtype an input takes: one of "
                             f"{', '.join(DTYPES)} (token ids, a mask; a floating input takes the model's dtype)")
        return Input(_sizes(sizes, text), DTYPES[dtype.strip()])
    return _sizes(text, text)


def _sizes(text: str, given: str) -> tuple:
    body = text.strip().strip("()[]")
    parts = [p.strip() for p in body.split(",")] if body else []
    if not parts or any(not p for p in parts):
        raise ValueError(f"--input {given!r}: expected comma-separated sizes such as 1,H,W or 3,224,224")
    out: list = []
    for p in parts:
        if p.isdigit():
            out.append(positive_int(int(p), f"--input {given!r}: size"))
        elif p.isidentifier():
            if p == BATCH:
                raise ValueError(f"--input {given!r}: N is the batch dim, which symshape adds; give one sample's shape")
            out.append(p)
        else:
            raise ValueError(f"--input {given!r}: {p!r} is neither a positive int nor a size name")
    return tuple(out)


def parse_inputs(texts) -> tuple[list[tuple], dict[str, tuple]]:
    """``--input`` given once per input of the call: ``["3,H,W", "mask=1,H,W"]`` ->
    ``([(3, "H", "W")], {"mask": (1, "H", "W")})``; positional inputs first, then keyword ones
    (``name=shape``, a parameter name of the forward)."""
    if isinstance(texts, str):
        texts = [texts]
    positional: list[tuple] = []
    keyword: dict[str, tuple] = {}
    for text in texts:
        name, eq, rest = text.partition("=")
        if eq and name.strip().isidentifier():
            name = name.strip()
            if name in keyword:
                raise ValueError(f"--input {name}= is given twice")
            keyword[name] = parse_input(rest)
        elif eq:
            raise ValueError(f"--input {text!r}: expected name=sizes such as mask=1,H,W, with a forward "
                             "parameter's name before '='")
        elif keyword:
            raise ValueError(f"--input {text!r}: positional inputs come before keyword ones (name=sizes)")
        else:
            positional.append(parse_input(text))
    return positional, keyword


def input_spec(texts) -> Any:
    """What ``analyze`` takes for ``--input`` given once per input (see :func:`parse_inputs`):
    one shape, a tuple of shapes (positional inputs), a dict (keyword inputs), or both."""
    positional, keyword = parse_inputs(texts)
    if len(positional) == 1 and not keyword:
        return positional[0]
    if not keyword:
        return tuple(positional)
    return (tuple(positional), keyword) if positional else keyword
