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

from engine.contingent.orders import OrderSpec
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
        """Request a cancel; False if the order is unknown or already finished. A cancel of an
        order whose cancel is still pending is a no-op returning True (one pending cancel per
        order, audited `cancel_coalesced`; docs/orders-live.md "Typed outcomes")."""
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

    # -- contingent orders, emulated by the engine (docs/contingent-orders.md) ------------
    def submit_stop(
        self, instrument: str, side: str, qty: Decimal | str, trigger_price: Decimal | str,
        price: Decimal | str | None = None, *, trigger_type: str = "last", tif: str | None = None,
        reduce_only: bool = False, client_id: str | None = None,
    ) -> str:
        """A stop (ccxt `triggerPrice`/`stopPrice`): stop-market, or stop-limit when `price` is given.

        Held by the engine; when `trigger_type`'s reference ('last' trade, 'mid', or
        'bid_ask': the best ask for a buy, the best bid for a sell) reaches `trigger_price`
        (a buy at or above, a sell at or below) it releases a market order (IOC) or a limit
        order at `price`. Returns its id; its released orders are `<id>.1`, ... Raises
        OrderError for a malformed request, OffGridError for a price off the tick grid.
        """
        return self._contingent(instrument, side, qty, price, "stop_limit" if price is not None else "stop_market",
                                trigger_price=trigger_price, trigger_type=trigger_type, tif=tif,
                                reduce_only=reduce_only, client_id=client_id)

    def submit_take_profit(
        self, instrument: str, side: str, qty: Decimal | str, trigger_price: Decimal | str,
        price: Decimal | str | None = None, *, trigger_type: str = "last", tif: str | None = None,
        reduce_only: bool = False, client_id: str | None = None,
    ) -> str:
        """A take-profit (market-if-touched; limit-if-touched when `price` is given): fires when
        the reference reaches `trigger_price` on the favourable side (a sell at or above, a
        buy at or below). Otherwise as `submit_stop`."""
        return self._contingent(instrument, side, qty, price,
                                "take_profit_limit" if price is not None else "take_profit",
                                trigger_price=trigger_price, trigger_type=trigger_type, tif=tif,
                                reduce_only=reduce_only, client_id=client_id)

    def submit_trailing_stop(
        self, instrument: str, side: str, qty: Decimal | str, *, trailing_amount: Decimal | str | None = None,
        trailing_bps: Decimal | str | None = None, trailing_percent: Decimal | str | None = None,
        trailing_trigger_price: Decimal | str | None = None, trigger_type: str = "last",
        reduce_only: bool = False, client_id: str | None = None,
    ) -> str:
        """A trailing stop-market: a sell trails `trailing_amount` (price units), `trailing_bps` or
        `trailing_percent` (ccxt `trailingPercent`) below the highest reference seen since it
        was armed, a buy above the lowest; the trigger only ever moves in the order's favour.
        With `trailing_trigger_price` (ccxt `trailingTriggerPrice`) it starts trailing only once
        the reference reaches that price (a sell at or above it, a buy at or below)."""
        return self._contingent(instrument, side, qty, None, "trailing_stop", trailing_amount=trailing_amount,
                                trailing_bps=trailing_bps, trailing_percent=trailing_percent,
                                trailing_trigger_price=trailing_trigger_price,
                                trigger_type=trigger_type, reduce_only=reduce_only, client_id=client_id)

    def submit_iceberg(
        self, instrument: str, side: str, qty: Decimal | str, price: Decimal | str, display_qty: Decimal | str,
        *, tif: str | None = None, post_only: bool = False, client_id: str | None = None,
    ) -> str:
        """A limit order shown `display_qty` at a time: each slice is a new order (`<id>.1`,
        `<id>.2`, ...) sent when the previous one fills completely, so it joins the back
        of the queue at `price`, as a venue's refilled iceberg does."""
        return self._contingent(instrument, side, qty, price, "iceberg", display_qty=display_qty, tif=tif,
                                post_only=post_only, client_id=client_id)

    def _contingent(self, instrument: str, side: str, qty: Decimal | str, price: Decimal | str | None,
                    kind: str, **fields: object) -> str:
        return self._session.contingent.submit(OrderSpec(instrument, side, qty, price, kind, **fields))  # type: ignore[arg-type]

    def submit_oco(self, first: OrderSpec, second: OrderSpec, *, client_id: str | None = None) -> str:
        """One-cancels-the-other: two orders (`engine.contingent.OrderSpec`, any type) working at
        once; the first to trigger or to fill (even partly) cancels the other, and cancelling,
        rejecting or expiring one cancels the other too. Returns the group id; legs are
        `<id>.1` and `<id>.2` unless their specs name a client_id."""
        return self._session.contingent.submit_oco(first, second, client_id)

    def submit_oto(self, parent: OrderSpec, children: list[OrderSpec], *, trigger_on: str = "first_fill",
                   client_id: str | None = None) -> str:
        """One-triggers-other: `children` are released when `parent` first fills ('first_fill')
        or fills completely ('full_fill'); a parent that ends unfilled cancels them, one that
        ends part-filled releases them. Legs: `<id>.parent`, `<id>.1`, ..."""
        return self._session.contingent.submit_oto(parent, children, trigger_on, client_id)

    def submit_bracket(
        self, instrument: str, side: str, qty: Decimal | str, price: Decimal | str | None = None, *,
        stop_loss_price: Decimal | str, take_profit_price: Decimal | str,
        stop_loss_limit_price: Decimal | str | None = None, take_profit_type: str = "limit",
        trigger_type: str = "last", tif: str | None = None, post_only: bool = False,
        client_id: str | None = None,
    ) -> str:
        """Entry + stop-loss + take-profit (ccxt `stopLossPrice` / `takeProfitPrice`).

        The entry is a limit order at `price` (a market order without one). The exits are
        on the other side, sized to what the entry has filled and resized on each partial
        fill: a stop (stop-market at `stop_loss_price`, stop-limit when
        `stop_loss_limit_price` is given) and a take-profit at `take_profit_price`:
        `take_profit_type` 'limit' rests at the venue, 'take_profit' / 'take_profit_limit'
        is held by the engine until touched. Legs: `<id>.entry`, `<id>.sl`, `<id>.tp`.
        """
        exit_side = "sell" if side == "buy" else "buy"
        entry = OrderSpec(instrument, side, qty, price, "limit" if price is not None else "market", tif=tif,
                          post_only=post_only)
        stop = OrderSpec(instrument, exit_side, qty, stop_loss_limit_price,
                         "stop_limit" if stop_loss_limit_price is not None else "stop_market",
                         trigger_price=stop_loss_price, trigger_type=trigger_type, reduce_only=True)
        if take_profit_type == "limit":
            take = OrderSpec(instrument, exit_side, qty, take_profit_price, "limit", reduce_only=True)
        elif take_profit_type in ("take_profit", "take_profit_limit"):
            take = OrderSpec(instrument, exit_side, qty,
                             take_profit_price if take_profit_type == "take_profit_limit" else None,
                             take_profit_type, trigger_price=take_profit_price, trigger_type=trigger_type,
                             reduce_only=True)
        else:
            raise OrderError(f"take_profit_type={take_profit_type!r}: expected 'limit', 'take_profit' or "
                             "'take_profit_limit'")
        return self._session.contingent.submit_bracket(entry, stop, take, client_id)

    def amend_contingent(self, client_id: str, *, trigger_price: Decimal | str | None = None,
                         price: Decimal | str | None = None, qty: Decimal | str | None = None) -> bool:
        """Move an armed (not yet triggered) order's trigger or limit price, or change its qty;
        False once it has been released. A trigger the market already touches fires at once."""
        return self._session.contingent.amend(
            client_id, trigger_price=None if trigger_price is None else _amount(trigger_price, "trigger_price"),
            price=None if price is None else _amount(price, "price"), qty=None if qty is None else _amount(qty, "qty"))

    def contingent_orders(self, instrument: str | None = None) -> list[str]:
        """Ids of emulated stops, take-profits, trailing stops and icebergs not yet final
        (pending, armed or working), oldest first; plain legs are in `open_orders`."""
        return self._session.contingent.live_ids(instrument)

    def contingent(self, client_id: str) -> dict[str, object] | None:
        """An emulated order as a dict (the columns of the run directory's contingent table:
        state, trigger_price, filled_qty, orders released, ...), a group's summary, or None."""
        return self._session.contingent.view(client_id)

    def order(self, client_id: str) -> OrderView | None:
        """A read-only snapshot of an order in Decimals (status, price, filled_qty, ...), or None."""
        return self._session.order_view(client_id)

    def open_orders(self, instrument: str | None = None) -> list[str]:
        """Client ids of orders not yet in a final state, oldest first."""
        return self._session.oms.open_client_ids(instrument)

    # -- risk: the kill switch, states, approvals (docs/risk.md) ----------------------------
    def kill(self, reason: str, flatten: bool = False, max_slippage_bps: Decimal | str | None = None) -> None:
        """The kill switch: refuse every new order (state halted), cancel every open order,
        refuse orders waiting for approval and, with `flatten`, once the last cancel is
        acknowledged send one marketable limit IOC per position at the local mid +/-
        `max_slippage_bps` (default [risk] kill_max_slippage_bps). The time from this call to
        the last cancel acknowledged goes to the audit log, summary.json and the report.
        Leave it with `resume`. Raises StrategyError for a negative or non-numeric cap."""
        self._session.kill(str(reason), flatten=bool(flatten), max_slippage_bps=max_slippage_bps, who="strategy")

    def resume(self, why: str) -> bool:
        """Leave the reducing or halted risk state (audited as who='strategy' with `why`);
        False when already active. StrategyError when `why` is empty."""
        return self._session.guard.resume("strategy", why)

    def reduce(self, why: str) -> bool:
        """Enter the reducing risk state: only orders that reduce a position pass (audited)."""
        return self._session.guard.reduce("strategy", why)

    @property
    def risk_state(self) -> str:
        """'active', 'reducing' or 'halted' (engine.risk.RiskState)."""
        return self._session.risk.state.value

    def approve(self, client_id: str, why: str = "") -> bool:
        """Release an order waiting for approval (status pending); False if none waits."""
        return self._session.guard.approve(client_id, "strategy", why)

    def refuse(self, client_id: str, why: str = "") -> bool:
        """Refuse an order waiting for approval: REJECTED, reason approval_refused."""
        return self._session.guard.refuse(client_id, "strategy", why)

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
        """'up', 'degraded', 'rate_limited' or 'down' (see engine.execution.health)."""
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

    def margin(self, instrument: str) -> dict[str, object]:
        """A contract's margin figures: position, mark, unrealized, liquidation_price,
        bankruptcy_price, margin_ratio (0..1; the venue liquidates at 1), funding, asset,
        leverage, margin_mode (engine.margin.margin_view; docs/derivatives.md). Raises
        StrategyError for a spot instrument."""
        inst = self._session.instrument(instrument)
        if not inst.contract:
            raise StrategyError(f"ctx.margin({instrument!r}): a spot instrument has no margin")
        from engine.margin import margin_view

        return margin_view(self._session.ledger.derivatives, inst)

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
