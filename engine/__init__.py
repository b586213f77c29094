"""tickparity engine: kernel, strategy API, OMS, risk, ledger, audit, config, CLI.

`from engine import Strategy` is the public entry point for strategy authors. It is
resolved lazily so that `engine.types` stays importable on its own (replay and the numba
venue import only the types, without pulling in the kernel).
"""

from typing import Any

__all__ = ["Strategy"]


def __getattr__(name: str) -> Any:
    if name == "Strategy":
        from engine.strategy import Strategy

        return Strategy
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
