"""Load the objective named on the command line: ``path/to/file.py:function`` or
``module:function``."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from adamtune.errors import TargetError

_SHAPE = "path/to/file.py:function or module:function"


def load_target(target: str) -> Callable[..., Any]:
    """The callable ``target`` names; a clear ``TargetError`` for every way it can be wrong."""
    location, sep, name = target.rpartition(":")
    if not sep or not location or not name.isidentifier():
        raise TargetError(f"TARGET: expected {_SHAPE}, got {target!r}")
    module = _load_file(location) if location.endswith(".py") else _load_module(location)
    objective = getattr(module, name, None)
    if objective is None:
        functions = sorted(
            n for n, v in vars(module).items() if inspect.isfunction(v) and not n.startswith("_")
        )
        listed = ", ".join(functions) or "none"
        raise TargetError(f"{location} has no function {name!r} (functions there: {listed})")
    if not callable(objective):
        raise TargetError(f"{target}: expected a function, got {type(objective).__name__}")
    return objective  # type: ignore[no-any-return]


def _load_file(location: str) -> ModuleType:
    path = Path(location)
    if not path.is_file():
        raise TargetError(f"TARGET: no file {location}")
    module_name = f"adamtune_target_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise TargetError(f"TARGET: cannot load {location} as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    sys.path.insert(0, str(path.parent.resolve()))  # so the file can import its neighbours
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        raise TargetError(f"{location} raised while importing: {type(error).__name__}: {error}") from None
    return module


def _load_module(location: str) -> ModuleType:
    if "" not in sys.path:
        sys.path.insert(0, "")
    try:
        return importlib.import_module(location)
    except ModuleNotFoundError as error:
        if error.name and location.startswith(error.name):
            raise TargetError(f"TARGET: no module named {location!r}") from None
        raise TargetError(f"{location} raised while importing: {error}") from None
    except Exception as error:
        raise TargetError(f"{location} raised while importing: {type(error).__name__}: {error}") from None
