"""Load user code by path: ``FILE.py:Class`` or ``package.module:Class``.

Why by path: users extend the engine (strategies, models) without forking it, the way
NautilusTrader loads components by import path.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
import traceback
from pathlib import Path
from typing import Any

from engine.errors import StrategyError, display_path, user_code_error, user_location


def load_class(spec: str, base_dir: str | Path = ".") -> type:
    """Resolve 'path/to/file.py:Class' (relative to cwd, then base_dir) or 'pkg.mod:Class'."""
    target, sep, name = spec.rpartition(":")
    if not sep or not target or not name.isidentifier():
        raise StrategyError(f"strategy {spec!r}: expected 'FILE.py:Class' or 'package.module:Class'")
    if target.endswith(".py"):
        candidates = [Path(target), Path(base_dir) / target]
        file = next((c for c in candidates if c.is_file()), None)
        if file is None:
            raise StrategyError(f"strategy file not found: {target}")
        module_name = "tickparity_user_" + hashlib.sha1(str(file.resolve()).encode()).hexdigest()[:12]
        module_spec = importlib.util.spec_from_file_location(module_name, file)
        if module_spec is None or module_spec.loader is None:
            raise StrategyError(f"cannot import {file}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module
        try:
            module_spec.loader.exec_module(module)
        except SyntaxError as exc:
            where = f"{display_path(exc.filename or file)}:{exc.lineno}"
            raise StrategyError(f"{where}: cannot import: SyntaxError: {exc.msg}", location=where) from exc
        except Exception as exc:
            where = user_location(exc.__traceback__, [file]) or display_path(file)
            raise StrategyError(f"{where}: cannot import: {type(exc).__name__}: {exc}", location=where) from exc
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise StrategyError(f"cannot import module {target!r}: {exc}") from None
        except Exception as exc:  # the module's own code failed while importing
            frames = list(traceback.walk_tb(exc.__traceback__))
            where = f"{display_path(frames[-1][0].f_code.co_filename)}:{frames[-1][1]}" if frames else target
            raise StrategyError(f"{where}: cannot import: {type(exc).__name__}: {exc}", location=where) from exc
    cls = getattr(module, name, None)
    if cls is None or not inspect.isclass(cls):
        raise StrategyError(f"{target} has no class {name!r}")
    return cls


def instantiate(cls: type, params: dict[str, Any]) -> Any:
    """Build the strategy with keyword params, naming any parameter that does not fit.

    An exception in the class's own constructor is the user's: StrategyError naming
    ``__init__`` and the file:line in the class's source file.
    """
    try:
        inspect.signature(cls).bind(**params)
    except TypeError as exc:
        raise StrategyError(f"{cls.__name__}: parameters {sorted(params)} do not fit: {exc}") from None
    try:
        return cls(**params)
    except StrategyError:
        raise
    except Exception as exc:
        files = [f for k in cls.__mro__ if (f := _source_file(k))]
        raise user_code_error(f"{cls.__name__}.__init__", exc, files) from exc


def load_strategy(spec: str, params: dict[str, Any], base_dir: str | Path = ".") -> Any:
    """Load, check and build a strategy: `load_class` + `check_strategy_class` + `instantiate`.

    Raises StrategyError when the class is not a `Strategy`/`CompiledStrategy`, when a
    callback is `async` (it would never run), or when the constructor fails.
    """
    from engine.strategy import check_strategy_class

    cls = load_class(spec, base_dir)
    check_strategy_class(cls, spec)
    return instantiate(cls, params)


def _source_file(cls: type) -> str | None:
    try:
        return inspect.getfile(cls)
    except (TypeError, OSError):
        return None
