"""`ctx`: everything a strategy may do, identical in every mode.

Why one object: strategies, execution algorithms and the router all act through `ctx`,
so none of them can reach around risk, the OMS or the audit log, and none can tell a
simulated venue from a real one.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from engine.errors import InstrumentError, StrategyError
from engine.fees import locked_amounts
from engine.types import Instrument
from engine.types.instrument import to_decimal
from engine.views import BookView

if TYPE_CHECKING:
    from engine.oms import Order
    from engine.session import TradingSession

_SIDES = {"buy": 1, "sell": -1}


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
        tif: str = "GTC",
        post_only: bool = False,
        reduce_only: bool = False,
        client_id: str | None = None,
        expire_ns: int | None = None,
        parent_id: str | None = None,
    ) -> str:
        """Send an order through risk and the OMS; returns its client id.

        Refusals (risk, duplicate id, venue minimums) arrive as a REJECTED update in
        on_order; a price or quantity off the tick/lot grid raises OffGridError.
        """
        if side not in _SIDES:
            raise InstrumentError(f"side={side!r}: expected 'buy' or 'sell'")
        return self._session.submit(
            instrument=instrument,
            side=_SIDES[side],
            qty=to_decimal(qty, "qty"),
            price=None if price is None else to_decimal(price, "price"),
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
            raise InstrumentError(f"side={side!r}: expected 'buy' or 'sell'")
        return self._session.open_parent(instrument, _SIDES[side], to_decimal(qty, "qty"), parent_id)

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
            qty=None if qty is None else to_decimal(qty, "qty"),
            price=None if price is None else to_decimal(price, "price"),
        )

    def order(self, client_id: str) -> Order | None:
        """The OMS record of an order (status, filled, leaves...), or None."""
        return self._session.oms.by_client.get(client_id)

    def open_orders(self, instrument: str | None = None) -> list[str]:
        """Client ids of orders not yet in a final state, oldest first."""
        return [o.client_id for o in self._session.oms.open_orders(instrument)]

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
            locked = locked_amounts(orders, v.maker_fee_bps, v.taker_fee_bps).get(asset, Decimal(0))
        return locked if part == "locked" else total - locked

    def log(self, message: str, **fields: object) -> None:
        """Write a strategy note into the audit log (structured, timestamped)."""
        self._session.audit_note(message, fields)
