"""Components on ctx: how execution algorithms and the router get their callbacks.

Why a host inside the session: an algorithm started with `ctx.execute(...)` needs its own
timers, the market data of its instruments and the updates of the children it sent, without
the strategy forwarding them by hand, and it must get them the same way in every mode. The
session calls the host at each entry point (timer, book, trade, order update, stop) next to
the strategy's callback, so a component is driven by exactly the events that drive the
strategy: nothing mode-specific, nothing extra.

Order of delivery: for market data and order updates the component goes first (an algorithm
reacts to its own child's fill before the strategy reads the parent's progress), then the
strategy. Order updates of a component's children reach the strategy too (`update.parent_id`
names the parent), so a strategy that hedges on fills sees them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.errors import ConfigError
from engine.execution.health import HEALTH_STATES, VenueHealth

if TYPE_CHECKING:
    from engine.context import Context
    from engine.views import BookView, OrderUpdate, TradeView

__all__ = ["HEALTH_STATES", "Component", "ComponentHost", "VenueHealth"]


class Component:
    """Base of everything `ctx.execute` starts (algorithms, routed orders).

    `id` is unique in the run (an algorithm's parent id). Callbacks mirror the strategy's;
    `on_venue_health` is called when `ctx.set_venue_health` changes a venue's state.
    """

    id: str = ""
    done: bool = False

    def start(self, ctx: Context) -> None:
        """Called once by ctx.execute: open the parent, schedule timers, subscribe."""

    def on_timer(self, ctx: Context, ts: int) -> None: ...

    def on_book(self, ctx: Context, book: BookView) -> None: ...

    def on_trade(self, ctx: Context, trade: TradeView) -> None: ...

    def on_order(self, ctx: Context, update: OrderUpdate) -> None: ...

    def on_venue_health(self, ctx: Context, venue: str, state: str) -> None: ...

    def on_stop(self, ctx: Context) -> None: ...


class ComponentHost:
    """The running components of a session and the routing of events to them."""

    def __init__(self) -> None:
        self.components: dict[str, Component] = {}  # insertion order: deterministic dispatch
        self._book: dict[str, list[Component]] = {}
        self._trade: dict[str, list[Component]] = {}
        self.health = VenueHealth()

    def add(self, component: Component) -> None:
        if not component.id:
            raise ConfigError(f"{type(component).__name__}: a component needs an id before ctx.execute")
        if component.id in self.components:
            raise ConfigError(f"ctx.execute: id {component.id!r} is already running")
        self.components[component.id] = component

    def watch(self, component: Component, instrument: str, *, book: bool, trades: bool) -> None:
        for wanted, table in ((book, self._book), (trades, self._trade)):
            listeners = table.setdefault(instrument, [])
            if wanted and component not in listeners:
                listeners.append(component)

    def wants_book(self, instrument: str) -> bool:
        return any(not c.done for c in self._book.get(instrument, ()))

    def wants_trades(self, instrument: str) -> bool:
        return any(not c.done for c in self._trade.get(instrument, ()))

    def on_book(self, ctx: Context, book: BookView) -> None:
        for component in list(self._book.get(book.instrument.id, ())):
            if not component.done:
                component.on_book(ctx, book)

    def on_trade(self, ctx: Context, trade: TradeView) -> None:
        for component in list(self._trade.get(trade.instrument, ())):
            if not component.done:
                component.on_trade(ctx, trade)

    def on_order(self, ctx: Context, update: OrderUpdate) -> None:
        if update.parent_id is None:
            return
        component = self.components.get(update.parent_id)
        if component is not None:
            component.on_order(ctx, update)

    def on_venue_health(self, ctx: Context, venue: str, state: str) -> None:
        for component in list(self.components.values()):
            if not component.done:
                component.on_venue_health(ctx, venue, state)

    def on_stop(self, ctx: Context) -> None:
        for component in list(self.components.values()):
            component.on_stop(ctx)
