"""`ctx`: everything a strategy may do, identical in every mode.

Why one object: strategies, execution algorithms and the router all act through `ctx`,
so none of them can reach around risk, the OMS or the audit log, and none can tell a
simulated venue from a real one.
"""

from __future__ import annotations

import hashlib
import logging
import random
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from engine.errors import InstrumentError, OrderError, StrategyError
from engine.fees import locked_amounts
from engine.types import Instrument
from engine.types.instrument import to_decimal
from engine.views import BookView, OrderView

if TYPE_CHECKING:
    from engine.execution.host import Component
    from engine.session import TradingSession

_SIDES = {"buy": 1, "sell": -1}
#: `ctx.log` levels (the names of `tickparity --log-level`)
LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
_LOG = logging.getLogger("tickparity.strategy")


def _amount(value: Decimal | str, field: str) -> Decimal:
    """An order's qty/price argument as an exact Decimal; OrderError naming it otherwise."""
    try:
        return to_decimal(value, field)
    except InstrumentError as exc:  # to_decimal serves instrument files too; here it is an argument
        raise OrderError(str(exc)) from None


class Context:
    """The strategy's handle on the engine (see README, "Strategy API")."""

    def __init__(self, session: TradingSession) -> None:
        self._session = session

    # -- time and market ---------------------------------------------------------------------
    @property
    def now(self) -> int:
        """Local time in ns since the epoch (latency-delayed, never the venue's)."""
        return self._session.clock.now()

    def instrument(self, instrument: str) -> Instrument:
        """The Instrument spec (tick/lot sizes, rounding helpers)."""
        return self._session.instrument(instrument)

    @property
    def instruments(self) -> list[str]:
        """Ids of the run's instruments, in config order."""
        return list(self._session.instruments)

    def book(self, instrument: str) -> BookView:
        """The local book of an instrument as of `now`."""
        return self._session.book(instrument)

    def subscribe(self, instrument: str, book: bool = True, trades: bool = True) -> None:
        """Ask for on_book / on_trade callbacks for this instrument."""
        self._session.subscribe(instrument, book=book, trades=trades)

    def schedule(self, every_ns: int | None = None, at_ns: int | None = None) -> int:
        """Call on_timer at `at_ns`, and/or every `every_ns` after; returns a timer id."""
        return self._session.schedule(every_ns=every_ns, at_ns=at_ns)

    def unschedule(self, timer_id: int) -> None:
        """Stop a timer created by `schedule`."""
        self._session.unschedule(timer_id)

    # -- orders --------------------------------------------------------------------------
    def submit(
        self,
        instrument: str,
        side: str,
        qty: Decimal | str,
        price: Decimal | str | None = None,
        *,
        type: str = "limit",  # noqa: A002 - the documented API name
        tif: str | None = None,
        post_only: bool = False,
        reduce_only: bool = False,
        client_id: str | None = None,
        expire_ns: int | None = None,
        parent_id: str | None = None,
    ) -> str:
        """Send an order through risk and the OMS; returns its client id.

        `tif` defaults to GTC for a limit order and IOC for a market order (the venue
        cancels what a market order does not fill at once; 'FOK' is the other choice).
        Refusals (risk, duplicate id, venue minimums, the venue's answer) arrive as a
        REJECTED update in on_order with a reason from `engine.types.orders.REASONS`; a
        malformed request (side, type, tif, qty <= 0, a missing or extra price) raises
        OrderError, a price or quantity off the tick/lot grid OffGridError.
        """
        if side not in _SIDES:
            raise OrderError(f"side={side!r}: expected 'buy' or 'sell'")
        return self._session.submit(
            instrument=instrument,
            side=_SIDES[side],
            qty=_amount(qty, "qty"),
            price=None if price is None else _amount(price, "price"),
            order_type=type,
            tif=tif,
            post_only=post_only,
            reduce_only=reduce_only,
            client_id=client_id,
            expire_ns=expire_ns,
            parent_id=parent_id,
        )

    def open_parent(self, instrument: str, side: str, qty: Decimal | str, parent_id: str | None = None) -> str:
        """Declare a parent order (an algo's whole quantity); children name it in submit(parent_id=...).

        Nothing is sent: the parent records the decision time, the arrival prices and the
        target, and fills as its children fill; the report measures shortfall against it.
        """
        if side not in _SIDES:
            raise OrderError(f"side={side!r}: expected 'buy' or 'sell'")
        return self._session.open_parent(instrument, _SIDES[side], _amount(qty, "qty"), parent_id)

    def close_parent(self, parent_id: str, reason: str = "closed") -> bool:
        """Finish a parent: filled if its children filled the target, else cancelled with reason."""
        return self._session.close_parent(parent_id, reason)

    def cancel(self, client_id: str) -> bool:
        """Request a cancel; False if the order is unknown or already finished."""
        return self._session.cancel(client_id)

    def amend(
        self, client_id: str, qty: Decimal | str | None = None, price: Decimal | str | None = None
    ) -> bool:
        """Change total quantity and/or price; False if the order is not open."""
        return self._session.amend(
            client_id,
            qty=None if qty is None else _amount(qty, "qty"),
            price=None if price is None else _amount(price, "price"),
        )

    def order(self, client_id: str) -> OrderView | None:
        """A read-only snapshot of an order in Decimals (status, price, filled_qty, ...), or None."""
        return self._session.order_view(client_id)

    def open_orders(self, instrument: str | None = None) -> list[str]:
        """Client ids of orders not yet in a final state, oldest first."""
        return [o.client_id for o in self._session.oms.open_orders(instrument)]

    # -- components: execution algorithms and the router (engine/execution, docs/execution.md)
    def execute(self, component: Component) -> Component:
        """Start an execution algorithm or routed order (e.g. ``ctx.execute(TWAP(...))``).

        The component opens its parent order, schedules its own timers and receives its
        children's updates; returns it (its `.id` is the parent id, `.done`, `.filled`).
        Raises ConfigError when its id is already running.
        """
        return self._session.execute(component)

    def component(self, component_id: str) -> Component | None:
        """A component started by `execute`, by id, or None."""
        return self._session.host.components.get(component_id)

    def schedule_for(self, component: Component, every_ns: int | None = None, at_ns: int | None = None) -> int:
        """`schedule` whose on_timer goes to `component` instead of the strategy."""
        return self._session.schedule(every_ns=every_ns, at_ns=at_ns, owner=component)

    def watch(self, component: Component, instrument: str, *, book: bool = True, trades: bool = True) -> None:
        """Deliver an instrument's book and/or trade callbacks to `component` (not the strategy)."""
        self._session.watch(component, instrument, book=book, trades=trades)

    def fees(self, instrument: str) -> tuple[Decimal, Decimal]:
        """(maker, taker) fee rates in bps for an instrument (its own, else its venue's; negative = rebate)."""
        inst = self._session.instrument(instrument)
        venue = self._session.venues[inst.venue]
        maker = inst.maker_fee_bps if inst.maker_fee_bps is not None else Decimal(str(venue.maker_fee_bps))
        taker = inst.taker_fee_bps if inst.taker_fee_bps is not None else Decimal(str(venue.taker_fee_bps))
        return maker, taker

    def venue_health(self, venue: str) -> str:
        """'up', 'degraded', 'rate_limited' or 'down' (see engine.execution.host.VenueHealth)."""
        return self._session.host.health.state(venue)

    def set_venue_health(self, venue: str, state: str, reason: str = "") -> None:
        """Report a venue's health (a live driver, a scenario or a strategy judging a feed stale);
        a change is audited and every running component hears it (the router re-routes)."""
        self._session.set_venue_health(venue, state, reason)

    def record(self, action: str, **fields: object) -> None:
        """Write a structured decision record into the audit log (type 'decision', values kept
        as JSON); execution algorithms record their schedules and the router its splits here."""
        self._session.audit.write(self._session.clock.now(), "decision", action=action, **fields)

    def rng(self, name: str) -> random.Random:
        """A random generator seeded from the run's seed and `name`: the same run draws the
        same numbers in every mode, and two components with different names never share a stream."""
        digest = hashlib.blake2b(f"{self._session.seed}:{name}".encode(), digest_size=8).digest()
        return random.Random(int.from_bytes(digest, "little"))

    # -- account -------------------------------------------------------------------------
    def position(self, instrument: str) -> Decimal:
        """Signed base quantity held in an instrument (long > 0)."""
        self._session.instrument(instrument)
        return self._session.ledger.position(instrument)

    def avg_price(self, instrument: str) -> Decimal | None:
        """Average entry price of the open position, or None when flat."""
        self._session.instrument(instrument)
        return self._session.ledger.positions[instrument].avg_price

    def balance(self, venue: str, asset: str, part: str = "total") -> Decimal:
        """Balance of an asset on a venue (exact): part "total" (default), "free" or "locked".

        "locked" is what the venue holds for our open orders as the acks received tell
        (a buy: notional at its limit price plus its largest fee; a sell: its base
        quantity; engine.fees.locked_amounts); 0 on a venue that does not enforce
        balances. "free" = total - locked: what a new order may lock.
        """
        total = self._session.ledger.balance(venue, asset)
        if part == "total":
            return total
        if part not in ("free", "locked"):
            raise StrategyError(f"ctx.balance(part={part!r}): expected 'total', 'free' or 'locked'")
        locked = Decimal(0)
        v = self._session.venues.get(venue)
        if v is not None and getattr(v, "enforce_balances", False):
            orders = [o for o in self._session.oms.open_orders(None) if o.instrument.venue == venue]
            locked = locked_amounts(orders, v.maker_fee_bps, v.taker_fee_bps,
                                    getattr(v, "fee_asset", "quote")).get(asset, Decimal(0))
        return locked if part == "locked" else total - locked

    def log(self, message: str, *, level: str = "info", **fields: object) -> None:
        """Write a strategy note into the audit log (structured, timestamped) and to the
        console logger ``tickparity.strategy`` at `level` ('debug', 'info', 'warning' or
        'error'), stamped with the local time: `tickparity backtest --log-level info` shows
        info and above (default: warning). Raises StrategyError for another level."""
        number = LOG_LEVELS.get(level)
        if number is None:
            raise StrategyError(f"ctx.log(level={level!r}): expected one of {', '.join(LOG_LEVELS)}")
        self._session.audit_note(message, fields)
        if _LOG.isEnabledFor(number):
            now = self._session.clock.now()
            stamp = datetime.fromtimestamp(now // 1_000_000_000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
            extra = "".join(f" {k}={v}" for k, v in fields.items())
            _LOG.log(number, "%s.%06dZ %s%s", stamp, now % 1_000_000_000 // 1000, message, extra)
