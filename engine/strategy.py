"""The strategy base class: plain Python callbacks, identical in every mode.

Why synchronous callbacks: a strategy that never awaits and never reads a wall clock
behaves the same whether a replayed feed or an asyncio loop drives it, which is what
lets a test prove backtest/live parity.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import StrategyError, code_location

if TYPE_CHECKING:
    from engine.context import Context
    from engine.views import BookView, OrderUpdate, TradeView


class Strategy:
    """Subclass and override the callbacks you need; all default to doing nothing.

    Constructor keyword arguments come from the run config's ``[run.params]`` table.
    """

    def on_start(self, ctx: Context) -> None:
        """Called once before the first market event; subscribe and schedule here."""

    def on_timer(self, ctx: Context, ts: int) -> None:
        """Called at each time scheduled with ``ctx.schedule``."""

    def on_book(self, ctx: Context, book: BookView) -> None:
        """Called after a subscribed instrument's local book changed."""

    def on_trade(self, ctx: Context, trade: TradeView) -> None:
        """Called for each market trade of a subscribed instrument."""

    def on_order(self, ctx: Context, update: OrderUpdate) -> None:
        """Called for every change of one of our orders (ack, fill, cancel, reject...)."""

    def on_stop(self, ctx: Context) -> None:
        """Called once after the last event."""


# Every callback the engine calls, in the order a run calls them first.
CALLBACKS = ("on_start", "on_timer", "on_book", "on_trade", "on_order", "on_stop")


def check_strategy_class(cls: object, spec: str | None = None) -> None:
    """Refuse, at load, a class the engine cannot drive; raises StrategyError naming why.

    A strategy must subclass `Strategy` (or `engine.compiled.CompiledStrategy`), and each
    callback must be a plain function: an `async def` (or generator) callback returns a
    coroutine the engine would never run, so the strategy would silently do nothing.
    """
    from engine.compiled import CompiledStrategy

    name = spec or getattr(cls, "__qualname__", repr(cls))
    if not isinstance(cls, type) or not issubclass(cls, (Strategy, CompiledStrategy)):
        raise StrategyError(f"{name} is not a Strategy: subclass engine.Strategy (or "
                            "engine.compiled.CompiledStrategy) and override the callbacks you need")
    for callback in CALLBACKS:
        func = inspect.getattr_static(cls, callback, None)
        func = getattr(func, "__func__", func)
        kind = ("an async def" if inspect.iscoroutinefunction(func)
                else "an async generator" if inspect.isasyncgenfunction(func)
                else "a generator" if inspect.isgeneratorfunction(func) else None)
        if kind is not None:
            where = code_location(func)
            raise StrategyError(f"{name}.{callback} ({where}) is {kind}: callbacks are plain synchronous "
                                "functions (the engine never awaits or iterates them); remove async/yield")


def strategy_files(strategy: object) -> list[str]:
    """Source files of the user's classes behind a strategy object (for error locations).

    Every class in the strategy's MRO (and, for a compiled strategy's adapter, in the
    compiled class's MRO) that is not one of the engine's own base classes, plus the other
    Python files beside each of them (the user's helper modules), so an error raised in a
    helper names the helper's line.
    """
    classes: list[type] = list(type(strategy).__mro__)
    compiled = getattr(strategy, "compiled", None)
    if compiled is not None:
        classes += list(type(compiled).__mro__)
    files: list[str] = []
    for klass in classes:
        module = getattr(klass, "__module__", "") or ""
        if module == "builtins" or module.split(".")[0] == __name__.split(".")[0]:
            continue
        try:
            files.append(inspect.getfile(klass))
        except (TypeError, OSError):
            continue
    helpers = [str(f) for file in files for f in sorted(Path(file).parent.glob("*.py")) if str(f) not in files]
    return files + helpers
