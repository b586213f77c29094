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
import types
import typing
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from engine.config import did_you_mean
from engine.errors import (
    ConfigError,
    StrategyError,
    display_path,
    file_problem,
    user_code_error,
    user_location,
)


def load_class(spec: str, base_dir: str | Path = ".") -> type:
    """Resolve 'path/to/file.py:Class' (relative to cwd, then base_dir) or 'pkg.mod:Class'."""
    target, sep, name = spec.rpartition(":")
    if not sep or not target or not name.isidentifier():
        raise StrategyError(f"strategy {spec!r}: expected 'FILE.py:Class' or 'package.module:Class'")
    if target.endswith(".py"):
        candidates = [Path(target), Path(base_dir) / target]
        file = next((c for c in candidates if c.is_file()), None)
        if file is None:
            problem = next((p for c in candidates if (p := file_problem(c)) != "not found"), "not found")
            raise StrategyError(f"strategy file {problem}: {target}")
        module_name = "tickparity_user_" + hashlib.sha1(str(file.resolve()).encode()).hexdigest()[:12]
        module_spec = importlib.util.spec_from_file_location(module_name, file)
        if module_spec is None or module_spec.loader is None:
            raise StrategyError(f"cannot import {file}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module
        # the strategy's own helper modules beside it import as they would for `python file.py`
        folder = str(file.resolve().parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
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


def effective_params(cls: type, params: Mapping[str, Any],
                     where: Callable[[str], str] = lambda key: f"[run.params] {key}") -> dict[str, Any]:
    """The keyword arguments `cls` will be built with: `params` checked against the
    constructor's signature, converted to its annotated types, and its defaults filled in.

    Conversion follows the annotation (or, without one, the default's type): Decimal from
    the number's text (never through a binary float), int, float, bool, str. Unannotated
    parameters take the value as parsed. `where(key)` names a key's origin for messages
    ('--param qty' or 'run.toml: [run.params] qty'). Raises ConfigError naming the key:
    a parameter the constructor does not take (with the difflib close matches and the
    valid names), a value that does not convert, or a required parameter left unset.
    """
    signature = inspect.signature(cls)
    named = {name: p for name, p in signature.parameters.items()
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    takes_any = any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values())
    hints = _hints(cls)
    values: dict[str, Any] = {}
    for key, value in params.items():
        if key not in named and not takes_any:
            valid = ", ".join(named) or "none"
            raise ConfigError(f"{where(key)}: {cls.__name__}() takes no parameter {key!r}"
                              f"{did_you_mean(key, named)} (its parameters: {valid})")
        param = named.get(key)
        default = param.default if param is not None else inspect.Parameter.empty
        values[key] = _convert(value, hints.get(key), default, where(key))
    missing = [n for n, p in named.items() if p.default is p.empty and n not in values]
    if missing:
        raise ConfigError(f"{cls.__name__}() needs parameter(s) {', '.join(missing)}: set them in "
                          f"[run.params] or with --param {missing[0]}=VALUE")
    effective = {n: values.get(n, p.default) for n, p in named.items()}
    effective.update((k, v) for k, v in values.items() if k not in named)
    return effective


def instantiate(cls: type, params: Mapping[str, Any],
                where: Callable[[str], str] = lambda key: f"[run.params] {key}") -> Any:
    """Build the strategy with its effective params (see `effective_params`).

    An exception raised by the constructor itself is the user's: StrategyError naming
    ``__init__`` and the file:line in the class's source file (a rejected parameter value
    is the user's input, not our bug).
    """
    effective = effective_params(cls, params, where)
    try:
        return cls(**effective)
    except StrategyError:
        raise
    except Exception as exc:
        files = [f for k in cls.__mro__ if (f := _source_file(k))]
        raise user_code_error(f"{cls.__name__}.__init__", exc, files) from exc


def _hints(cls: type) -> dict[str, Any]:
    """The constructor's resolved annotations ({} when they cannot be resolved)."""
    try:
        return typing.get_type_hints(cls.__init__)
    except Exception:  # an annotation naming something not importable: fall back to defaults
        return {}


def _target(hint: Any, default: Any) -> type | None:
    """The one type a value converts to: the annotation without None, else the default's type."""
    if hint is not None:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if typing.get_origin(hint) in (typing.Union, types.UnionType):
            hint = args[0] if len(args) == 1 else None
        return hint if hint in (Decimal, int, float, bool, str) else None
    if isinstance(default, (Decimal, bool, str)):
        return type(default)
    return None


def _convert(value: Any, hint: Any, default: Any, where: str) -> Any:
    target = _target(hint, default)
    if target is None or value is None:  # None: only a default or a Python API caller's choice
        return value
    where = f"{where} = {value if isinstance(value, Decimal) else repr(value)}"
    if isinstance(value, bool) or target is bool:
        if isinstance(value, bool) and target is bool:
            return value
        raise ConfigError(f"{where}: expected {_NAMES[target]}")
    if target is str:
        if isinstance(value, (str, int, Decimal)):
            return str(value)
        raise ConfigError(f"{where}: expected a string")
    if isinstance(value, float):  # only from the Python API: take its shortest repr
        value = Decimal(repr(value))
    try:
        number = Decimal(value) if isinstance(value, (int, Decimal)) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ConfigError(f"{where}: expected {_NAMES[target]}") from None
    if not number.is_finite():
        raise ConfigError(f"{where}: expected a finite number")
    if target is int:
        if number != number.to_integral_value():
            raise ConfigError(f"{where}: expected {_NAMES[int]}")
        return int(number)
    return float(number) if target is float else number


_NAMES = {Decimal: "a decimal number like 0.01", int: "an integer", float: "a number",
          bool: "true or false", str: "a string"}
def load_strategy(spec: str, params: Mapping[str, Any], base_dir: str | Path = ".",
                  where: Callable[[str], str] = lambda key: f"[run.params] {key}") -> Any:
    """Load, check and build a strategy: `load_class` + `check_strategy_class` + `instantiate`.

    Raises StrategyError when the class is not a `Strategy`/`CompiledStrategy`, when a
    callback is `async` (it would never run), or when the constructor fails.
    """
    from engine.strategy import check_strategy_class

    cls = load_class(spec, base_dir)
    check_strategy_class(cls, spec)
    return instantiate(cls, params, where)


def _source_file(cls: type) -> str | None:
    try:
        return inspect.getfile(cls)
    except (TypeError, OSError):
        return None
