"""The strategy base class: plain Python callbacks, identical in every mode.

Why synchronous callbacks: a strategy that never awaits and never reads a wall clock
behaves the same whether a replayed feed or an asyncio loop drives it, which is what
lets a test prove backtest/live parity.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
