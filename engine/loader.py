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
from pathlib import Path
from typing import Any

from engine.errors import StrategyError


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
        except Exception as exc:
            raise StrategyError(f"{file}: failed to import: {type(exc).__name__}: {exc}") from exc
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise StrategyError(f"cannot import module {target!r}: {exc}") from None
    cls = getattr(module, name, None)
    if cls is None or not inspect.isclass(cls):
        raise StrategyError(f"{target} has no class {name!r}")
    return cls


def instantiate(cls: type, params: dict[str, Any]) -> Any:
    """Build the strategy with keyword params, naming any parameter that does not fit."""
    try:
        inspect.signature(cls).bind(**params)
    except TypeError as exc:
        raise StrategyError(f"{cls.__name__}: parameters {sorted(params)} do not fit: {exc}") from None
    return cls(**params)
