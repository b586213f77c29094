"""The contingent-order manager: stops, trailing stops, take-profits, icebergs, OCO, OTO and
brackets, emulated by the engine so they behave the same on every venue and in every mode.

Why emulated: venues disagree on which of these they support and on their rules (Binance
spot has OCO but no bracket; trailing stops exist on some venues only, with different
references), and a backtest must show what the live run will do. The engine holds each
order, watches its reference price on the local (latency-delayed) market data, and
releases a plain limit or market order through the normal submit path (the OMS and the
risk checks) when it triggers -- the model of NautilusTrader's OrderEmulator.

The rules (ties, gaps, partial fills, parents that end) are in docs/contingent-orders.md;
each is pinned by a hand-computed test in tests/engine/contingent/.

Speed: an instrument's armed triggers are folded into one row of thresholds (`watch`,
engine/contingent/watch.py) that the numba replay loop checks per row; Python runs only
when a threshold is touched (or a trailing stop's watermark moves).
"""

from __future__ import annotations

from dataclasses import asdict, fields, replace
from decimal import ROUND_CEILING, Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from engine.contingent.orders import (
    FINAL_STATES,
    LIMIT_KINDS,
    STOP_KINDS,
    Group,
    Kind,
    Leg,
    OrderSpec,
    State,
)
from engine.contingent.triggers import (
    GE,
    SCALE,
    TRIGGER_TYPES,
    stop_direction,
    take_profit_direction,
    touched,
    trail,
    trailing_trigger,
)
from engine.contingent.watch import (
    NEVER_HI,
    NEVER_LO,
    TW_ASK_HI,
    TW_ASK_LO,
    TW_BID_HI,
    TW_BID_LO,
    TW_LAST,
    TW_SUM_HI,
    TW_SUM_LO,
    TW_TRADE_HI,
    TW_TRADE_LO,
    book_touch_nb,
    clear_row,
    new_watch,
    trade_touch_nb,
)
from engine.errors import InstrumentError, InternalError, OrderError
from engine.oms import CLIENT_ID_MAX, RELEASE_DIGITS, fit_client_id
from engine.types import OrderStatus
from engine.types.instrument import decimal_str as _s
from engine.types.instrument import to_decimal
from engine.views import Event, OrderUpdate, Status

if TYPE_CHECKING:
    from engine.oms import Order
    from engine.session import TradingSession
    from engine.types.venue_reports import VenueFill, VenueOrderState

_SIDES = {"buy": 1, "sell": -1}
_OTHER_SIDE = {"buy": "sell", "sell": "buy"}
_MARKET_KINDS = frozenset({Kind.MARKET, Kind.STOP_MARKET, Kind.TAKE_PROFIT, Kind.TRAILING_STOP})
_PLAIN = frozenset({Kind.LIMIT, Kind.MARKET})  # their one venue order carries the leg's own id
_NEEDS_TRIGGER = frozenset({Kind.STOP_MARKET, Kind.STOP_LIMIT, Kind.TAKE_PROFIT, Kind.TAKE_PROFIT_LIMIT})
_TIFS = ("GTC", "IOC", "FOK")
_STATUS = {State.PENDING: Status.PENDING, State.ARMED: Status.ACKNOWLEDGED, State.WORKING: Status.ACKNOWLEDGED,
           State.FILLED: Status.FILLED, State.CANCELLED: Status.CANCELLED, State.REJECTED: Status.REJECTED,
           State.EXPIRED: Status.EXPIRED}
_END_STATE = {OrderStatus.CANCELLED: State.CANCELLED, OrderStatus.REJECTED: State.REJECTED,
              OrderStatus.EXPIRED: State.EXPIRED}
_SCHEMA_VERSION = 1
_FEE_STEP = Decimal("1e-8")  # a fee split by `infer`: Binance's commission precision


def _amount(value: Any, field: str) -> Decimal:
    try:
        return to_decimal(value, field)
    except InstrumentError as exc:
        raise OrderError(str(exc)) from None


class ContingentManager:
    """Holds every emulated order of a session (see module docstring).

    The session calls `on_book`, `on_trade` (market data, whether or not the strategy
    subscribed) and `on_order` (each venue response about an order a leg released);
    `ctx` calls `submit`, `submit_oco`, `submit_oto`, `submit_bracket`, `cancel`,
    `amend` and `view`. Updates for the strategy go to the session's pending queue, which
    the session flushes after the current callback.
    """

    def __init__(self, session: TradingSession) -> None:
        self._s = session
        self.watch = new_watch(len(session.instruments))
        self.legs: dict[str, Leg] = {}
        self.groups: dict[str, Group] = {}
        self.by_order: dict[str, str] = {}  # venue client id -> leg id
        self._armed: list[dict[str, None]] = [{} for _ in session.instruments]  # arming order
        self._seq = 0
        self._next_id = 1
        self._cancelling = False  # the manager itself is cancelling a venue order (session.cancel hook)
        self._venue_of = [session.venues[session.instruments[i].venue] for i in session._ids]  # per index
        #: bumped whenever `state()` would change (a live driver saves the state when it moved)
        self.changes = 0
        self._live_filled: dict[str, int] = {}  # restored: venue client id -> lots it had filled
        self._live_base: dict[str, int] = {}  # restored: of those, lots venue orders it replaced filled
        #: venue client id of a leg's order -> trade ids booked for it (saved for working legs:
        #: a restart's lookup of an order that ended while no session ran books the others);
        #: with `keep_order_trades` (a testnet/live session, modes/live/resume.py) the
        #: session's plain orders' too, while they are open
        self._trades: dict[str, list[str]] = {}
        self.keep_order_trades = False
        #: restored: the previous session's plain orders open when it saved (client id ->
        #: what it knew of them), None for a saved state from before they were kept
        self._orders: dict[str, dict[str, Any]] | None = {}
        #: restored orders whose venue fills up to a venue time are in the balances the
        #: session started from (client id -> that time: the order's last update at the
        #: start's read; engine/venue_merge.py books such fills into positions only)
        self._prebooked_until: dict[str, int] = {}
        #: restored orders the saved state counts fills of but names no trade ids for (a
        #: contingent.json written before they were saved): client id -> lots of the venue's
        #: trades still to be taken as the ones the previous session booked (`infer`)
        self.inferred: dict[str, int] = {}

    # -- ids ----------------------------------------------------------------------------
    def owns(self, client_id: str) -> bool:
        """True for a leg or group id `ctx.cancel` must route here (not while we cancel ourselves)."""
        return not self._cancelling and (client_id in self.legs or client_id in self.groups)

    def _taken(self, client_id: str) -> bool:
        return client_id in self.legs or client_id in self.groups or self._s.oms.is_duplicate(client_id)

    def _new_id(self, wanted: str | None) -> str:
        if wanted is not None:
            if not isinstance(wanted, str) or not wanted:
                raise OrderError(f"client_id={wanted!r}: expected a non-empty string")
            if self._taken(wanted):
                raise OrderError(f"client id {wanted!r} is already used by an order of this run")
            return wanted
        # `<session prefix>-c<n>` (`tpmx3eck6e-c1`, its legs `tpmx3eck6e-c1.tp`, released
        # orders `...-c1.sl.1`): the legs and the orders they release go to the venue under
        # these ids, so they carry the session's prefix like every other id of ours (unique
        # across sessions on the account, recognised by the reconciler and a warm restart);
        # a bare `ct-<n>` restarted at 1 every session and reused ids on the account.
        # Backtests keep `tp-c<n>`, deterministic as their plain `tp-<n>` ids.
        prefix = self._s.oms.prefix
        while self._taken(f"{prefix}-c{self._next_id}"):
            self._next_id += 1
        self._next_id += 1
        return fit_client_id(f"{prefix}-c{self._next_id - 1}")

    def _named(self, leg_id: str, group: str | None) -> str | None:
        """The id the strategy named that a leg's id was made from (its own, or its group's),
        None when the engine made it (`<prefix>-c<n>`...): who is told when an id made from
        it would be too long (engine.oms.fit_client_id)."""
        own = f"{self._s.oms.prefix}-c"
        if group is not None and not group.startswith(own):
            return group
        return None if leg_id.startswith(own) else leg_id

    # -- creation -----------------------------------------------------------------------
    def _leg(self, spec: OrderSpec, leg_id: str, group: str | None, role: str) -> Leg:
        """Validate `spec` into a Leg (OrderError / OffGridError naming the field)."""
        try:
            kind = Kind(spec.type)
        except ValueError:
            raise OrderError(f"type={spec.type!r}: expected one of {[k.value for k in Kind]}") from None
        if spec.side not in _SIDES:
            raise OrderError(f"side={spec.side!r}: expected 'buy' or 'sell'")
        inst = self._s.instrument(spec.instrument)
        qty = _amount(spec.qty, "qty")
        if qty <= 0:
            raise OrderError(f"{leg_id}: qty={qty}: must be > 0")
        if spec.trigger_type not in TRIGGER_TYPES:
            raise OrderError(f"{leg_id}: trigger_type={spec.trigger_type!r}: expected one of {list(TRIGGER_TYPES)}")
        scale = SCALE[spec.trigger_type]
        price = None
        if kind in LIMIT_KINDS:
            if spec.price is None:
                raise OrderError(f"{leg_id}: a {kind.value} order needs a price")
            price = inst.price_to_ticks(_amount(spec.price, "price"))
            if price <= 0:
                raise OrderError(f"{leg_id}: price must be > 0")
        elif spec.price is not None:
            raise OrderError(f"{leg_id}: a {kind.value} order takes no price (it releases a market order)")
        trigger = None
        if kind in _NEEDS_TRIGGER:
            if spec.trigger_price is None:
                raise OrderError(f"{leg_id}: a {kind.value} order needs trigger_price")
            # a mid is watched as bid + ask: a half-tick trigger is exact there
            trigger = inst.price_to_ticks(_amount(spec.trigger_price, "trigger_price") * scale)
        elif spec.trigger_price is not None:
            raise OrderError(f"{leg_id}: trigger_price is for stop and take-profit orders, not {kind.value}")
        trailing_amount = trailing_bps = None
        given = [n for n in ("trailing_amount", "trailing_bps", "trailing_percent") if getattr(spec, n) is not None]
        if kind == Kind.TRAILING_STOP:
            if len(given) != 1:
                raise OrderError(f"{leg_id}: a trailing_stop needs exactly one of trailing_amount, trailing_bps, "
                                 f"trailing_percent (got {given or 'none'})")
            value = _amount(getattr(spec, given[0]), given[0])
            if value <= 0:
                raise OrderError(f"{leg_id}: {given[0]}={value}: must be > 0")
            if given[0] == "trailing_amount":
                trailing_amount = inst.price_to_ticks(value * scale)
            else:
                trailing_bps = value * 100 if given[0] == "trailing_percent" else value
        elif given:
            raise OrderError(f"{leg_id}: {given[0]} is for trailing_stop orders, not {kind.value}")
        activation = None
        if spec.trailing_trigger_price is not None:
            if kind != Kind.TRAILING_STOP:
                raise OrderError(f"{leg_id}: trailing_trigger_price is for trailing_stop orders, not {kind.value}")
            activation = inst.price_to_ticks(_amount(spec.trailing_trigger_price, "trailing_trigger_price") * scale)
        display = None
        if kind == Kind.ICEBERG:
            if spec.display_qty is None:
                raise OrderError(f"{leg_id}: an iceberg needs display_qty")
            display = inst.qty_to_lots(_amount(spec.display_qty, "display_qty"))
            if not 0 < display <= inst.qty_to_lots(qty):
                raise OrderError(f"{leg_id}: display_qty must be > 0 and <= qty")
        elif spec.display_qty is not None:
            raise OrderError(f"{leg_id}: display_qty is for iceberg orders, not {kind.value}")
        if spec.tif is not None and spec.tif not in _TIFS:
            raise OrderError(f"{leg_id}: tif={spec.tif!r}: expected one of {list(_TIFS)} (or leave it out)")
        if kind in _MARKET_KINDS and spec.tif not in (None, "IOC", "FOK"):
            raise OrderError(f"{leg_id}: a {kind.value} order releases a market order: tif must be IOC or FOK")
        if spec.post_only and kind in _MARKET_KINDS:
            raise OrderError(f"{leg_id}: post_only needs a limit price")
        if kind not in _PLAIN and len(leg_id) > CLIENT_ID_MAX - 1 - RELEASE_DIGITS:
            # it sends its orders as `<leg id>.<k>` (engine.oms: k below 10**RELEASE_DIGITS):
            # refused now, not at a release in the middle of the session
            why = (f"{leg_id}: a {kind.value} order sends its orders as '<id>.<k>' (k up to {RELEASE_DIGITS} "
                   f"digits), so its id has at most {CLIENT_ID_MAX - 1 - RELEASE_DIGITS} characters "
                   f"(Binance takes {CLIENT_ID_MAX}); this one has {len(leg_id)}")
            if self._named(leg_id, group) is not None:
                raise OrderError(why)
            raise InternalError(why)
        return Leg(id=leg_id, kind=kind, instrument=inst, index=self._s.index[inst.id], side=_SIDES[spec.side],
                   qty=inst.qty_to_lots(qty), price=price, trigger=trigger, trigger_type=spec.trigger_type,
                   trailing_amount=trailing_amount, trailing_bps=trailing_bps, activation=activation,
                   activated=activation is None, display=display, tif=spec.tif,
                   post_only=spec.post_only, reduce_only=spec.reduce_only, group=group, role=role,
                   created_ts=self._s.clock.now())

    def _register(self, leg: Leg) -> None:
        self.legs[leg.id] = leg
        if leg.kind not in _PLAIN:  # a plain leg's id goes to the OMS with its venue order
            self._s.oms.recent.add(leg.id)
        self._s.audit.write(self._s.clock.now(), "decision", action="contingent", id=leg.id,
                            type=leg.kind.value, group=leg.group, role=leg.role, instrument=leg.instrument.id,
                            side="buy" if leg.side > 0 else "sell",
                            qty=str(leg.instrument.lots_to_qty(leg.qty)),
                            trigger_price=None if leg.trigger is None else str(self._price(leg, leg.trigger)),
                            trigger_type=leg.trigger_type)

    def submit(self, spec: OrderSpec) -> str:
        """One emulated order (stop, stop-limit, trailing stop, take-profit, iceberg); its id."""
        leg = self._leg(spec, self._new_id(spec.client_id), None, "order")
        if leg.kind in _PLAIN:
            raise OrderError(f"type={leg.kind.value!r}: plain orders go through ctx.submit")
        self._register(leg)
        self._activate(leg)
        return leg.id

    def _group(self, kind: str, group_id: str | None, specs: list[tuple[OrderSpec, str, str]],
               trigger_on: str = "first_fill") -> tuple[Group, list[Leg]]:
        gid = self._new_id(group_id)
        legs: list[Leg] = []
        ids: set[str] = set()
        for spec, suffix, role in specs:
            lid = spec.client_id or fit_client_id(f"{gid}.{suffix}", group_id)
            if lid in ids or self._taken(lid):
                raise OrderError(f"client id {lid!r} is already used by an order of this run")
            ids.add(lid)
            legs.append(self._leg(spec, lid, gid, role))
        group = Group(id=gid, kind=kind, legs=[leg.id for leg in legs], trigger_on=trigger_on,
                      created_ts=self._s.clock.now())
        self.groups[gid] = group
        self._s.oms.recent.add(gid)
        self._s.audit.write(self._s.clock.now(), "decision", action="contingent_group", id=gid, kind=kind,
                            legs=group.legs, trigger_on=trigger_on if kind == "oto" else None)
        for leg in legs:
            self._register(leg)
        return group, legs

    def submit_oco(self, first: OrderSpec, second: OrderSpec, group_id: str | None) -> str:
        """Two legs, both working at once; the first to trigger or fill cancels the other."""
        group, legs = self._group("oco", group_id, [(first, "1", "leg"), (second, "2", "leg")])
        for leg in legs:
            if not leg.is_done:
                self._activate(leg)
        return group.id

    def submit_oto(self, parent: OrderSpec, children: list[OrderSpec], trigger_on: str, group_id: str | None) -> str:
        """A parent and children released when the parent first fills / fully fills."""
        if trigger_on not in ("first_fill", "full_fill"):
            raise OrderError(f"trigger_on={trigger_on!r}: expected 'first_fill' or 'full_fill'")
        if not children:
            raise OrderError("an OTO needs at least one child order")
        specs = [(parent, "parent", "parent")] + [(c, str(k), "child") for k, c in enumerate(children, 1)]
        group, legs = self._group("oto", group_id, specs, trigger_on)
        self._activate(legs[0])
        return group.id

    def submit_bracket(self, entry: OrderSpec, stop_loss: OrderSpec, take_profit: OrderSpec,
                       group_id: str | None) -> str:
        """Entry + stop-loss + take-profit; exits follow the quantity the entry filled."""
        # checked before anything is registered: a refused bracket leaves no trace
        if {stop_loss.side, take_profit.side} != {_OTHER_SIDE.get(entry.side)}:
            raise OrderError("bracket: the exits must be on the other side of the entry")
        if stop_loss.type not in STOP_KINDS:
            raise OrderError("bracket: stop_loss must be a stop_market, stop_limit or trailing_stop")
        if take_profit.type not in (Kind.LIMIT, Kind.TAKE_PROFIT, Kind.TAKE_PROFIT_LIMIT):
            raise OrderError("bracket: take_profit must be a limit, take_profit or take_profit_limit")
        if entry.type not in (Kind.LIMIT, Kind.MARKET):
            raise OrderError("bracket: the entry must be a limit or market order")
        group, legs = self._group("bracket", group_id, [(entry, "entry", "entry"), (stop_loss, "sl", "stop_loss"),
                                                        (take_profit, "tp", "take_profit")])
        self._activate(legs[0])
        return group.id

    # -- activation, triggers -----------------------------------------------------------
    def _activate(self, leg: Leg, qty: int | None = None) -> None:
        """Make a leg live: arm a trigger order, release any other (the venue order goes out)."""
        if leg.is_done:
            return
        if qty is not None:
            leg.qty = qty
        if not leg.is_trigger:
            self._release(leg)
            return
        self._seq += 1
        leg.seq = self._seq
        leg.state = State.ARMED
        leg.armed_ts = self._s.clock.now()
        self._armed[leg.index][leg.id] = None
        self._hold(leg)
        self._emit(leg, Event.ACKNOWLEDGED)
        ref = self._reference_now(leg)
        if ref is not None and self._evaluate(leg, ref):
            self._trigger(leg, ref)  # touched when armed: it fires at once
        else:
            self._tighten(leg)  # arming only adds a threshold: O(1), not a recompute of the row

    def _direction(self, leg: Leg) -> int:
        return stop_direction(leg.side) if leg.kind in STOP_KINDS else take_profit_direction(leg.side)

    def _evaluate(self, leg: Leg, ref: int) -> bool:
        """Move a trailing stop's watermark, then test the trigger."""
        if leg.kind == Kind.TRAILING_STOP:
            if not leg.activated:  # waiting for its trailing_trigger_price: a sell's above, a buy's below
                if not touched(take_profit_direction(leg.side), ref, leg.activation):
                    return False
                leg.activated = True
                self._s.audit.write(self._s.clock.now(), "decision", action="trailing_activated", id=leg.id,
                                    reference=_s(self._price(leg, ref)))
            mark = trail(leg.side, leg.watermark, ref)
            if mark != leg.watermark or leg.trigger is None:
                self.changes += 1
                leg.watermark = mark
                leg.trigger = trailing_trigger(leg.side, mark, leg.trailing_amount, leg.trailing_bps)
        assert leg.trigger is not None
        return touched(self._direction(leg), ref, leg.trigger)

    def _reference_now(self, leg: Leg) -> int | None:
        if leg.trigger_type == "last":
            last = int(self.watch[leg.index, TW_LAST])
            return None if last < 0 else last
        return self._book_reference(leg, self._top(leg.index))

    def _top(self, index: int) -> tuple[int, int, int, int]:
        return self._venue_of[index].top_of_book(index)

    @staticmethod
    def _book_reference(leg: Leg, top: tuple[int, int, int, int]) -> int | None:
        bid, bid_qty, ask, ask_qty = top
        if leg.trigger_type == "mid":
            return bid + ask if bid_qty > 0 and ask_qty > 0 else None
        if leg.side > 0:  # bid_ask: a buy trades against the ask, a sell against the bid
            return ask if ask_qty > 0 else None
        return bid if bid_qty > 0 else None

    def on_book(self, index: int) -> None:
        """The local book of instrument `index` changed: test its book-referenced triggers.

        The watch row decides first (the replay loop's own test), so a strategy that
        subscribes to every book change pays one compare per event, not one per armed order."""
        if self._armed[index]:
            top = self._top(index)
            if book_touch_nb(self.watch, index, *top):
                self._scan(index, None, top)

    def on_trade(self, index: int, price: int) -> None:
        """A local trade (ticks): the last price of `index`; test its last-referenced triggers."""
        if trade_touch_nb(self.watch, index, price) and self._armed[index]:
            self._scan(index, price, None)

    def _scan(self, index: int, trade: int | None, top: tuple[int, int, int, int] | None) -> None:
        """One market event: every armed order it touches triggers, stops before take-profits
        (the tie rule), each group in arming order; trailing watermarks move first."""
        hits = []
        for leg_id in self._armed[index]:
            leg = self.legs[leg_id]
            if trade is not None:
                if leg.trigger_type != "last":
                    continue
                ref: int | None = trade
            else:
                if leg.trigger_type == "last":
                    continue
                ref = self._book_reference(leg, top)  # type: ignore[arg-type]
            if ref is not None and self._evaluate(leg, ref):
                hits.append((0 if leg.kind in STOP_KINDS else 1, leg.seq, leg, ref))
        hits.sort(key=lambda h: (h[0], h[1]))
        for _, _, leg, ref in hits:
            if leg.state == State.ARMED:  # a sibling's trigger may have cancelled it
                self._trigger(leg, ref)
        self._refresh(index)

    def _hold(self, leg: Leg) -> None:
        """An armed order counts as exposure for the risk limits ([risk] exposure keys,
        docs/risk.md) until it triggers (its released order is then held as any order) or
        ends: what it could add, conservatively."""
        lots = leg.qty - leg.filled if leg.state == State.ARMED else 0
        self._s.risk.hold(f"contingent:{leg.id}", leg.index, leg.side, max(0, lots))

    def _trigger(self, leg: Leg, ref: int) -> None:
        self._armed[leg.index].pop(leg.id, None)
        leg.state = State.WORKING
        self._hold(leg)  # released: the venue order it sends is held from here on
        leg.triggered_ts = self._s.clock.now()
        leg.trigger_reference = ref
        self._s.audit.write(leg.triggered_ts, "decision", action="trigger", id=leg.id,
                            reference=str(self._price(leg, ref)), trigger_type=leg.trigger_type)
        self._emit(leg, Event.TRIGGERED)
        self._group_triggered(leg)
        self._release(leg)

    # -- venue orders -------------------------------------------------------------------
    def _release(self, leg: Leg, lots: int | None = None) -> None:
        """Send the leg's next venue order (its whole remainder; an iceberg's next slice)."""
        inst = leg.instrument
        remaining = leg.qty - self._ordered(leg) if lots is None else lots
        if leg.kind == Kind.ICEBERG:
            remaining = min(leg.display or remaining, leg.qty - leg.filled)
        if remaining <= 0:
            return
        leg.state = State.WORKING
        self.changes += 1
        client_id = leg.id if leg.kind in _PLAIN else f"{leg.id}.{len(leg.orders) + 1}"
        if len(client_id) > CLIENT_ID_MAX:  # never a truncated id: refused, naming whose it is
            fit_client_id(client_id, self._named(leg.id, leg.group))
        leg.orders.append(client_id)
        leg.live = client_id
        self.by_order[client_id] = leg.id
        market = leg.kind in _MARKET_KINDS
        self._s.submit(instrument=inst.id, side=leg.side, qty=inst.lots_to_qty(remaining),
                       price=None if market else inst.ticks_to_price(leg.price), order_type="market" if market else "limit",
                       tif=leg.tif, post_only=leg.post_only, reduce_only=leg.reduce_only, client_id=client_id,
                       expire_ns=None, parent_id=None)
        order = self._s.oms.by_client.get(client_id)
        if order is None or order.status == OrderStatus.REJECTED:  # refused before sending (risk, minimums)
            self._order_ended(leg, client_id, State.REJECTED, None if order is None else order.reason)

    def _ordered(self, leg: Leg) -> int:
        """Lots the leg's venue orders were sent for, less what ended unfilled."""
        total = 0
        for client_id in leg.orders:
            order = self._s.oms.by_client.get(client_id)
            if order is not None:
                total += order.qty if order.is_open else order.filled
        return total

    def on_order(self, order: Order, update: OrderUpdate) -> None:
        """A venue report that changed `order` (after the session applied it and told the
        strategy; engine/venue_merge.py calls this for every source of reports)."""
        leg_id = self.by_order.get(order.client_id)
        if leg_id is None:
            return
        leg = self.legs[leg_id]
        if update.event == Event.FILL:
            inst = order.instrument
            lots = inst.qty_to_lots(update.last_fill_qty)
            if update.fee_charged and update.fee_asset == inst.base and order.side > 0:
                # the venue kept part of what it delivered (Binance spot: a buy pays its fee
                # in the base asset): a bracket's exits can only sell what arrived
                group = self.groups.get(leg.group) if leg.group else None
                if group is not None and group.kind == "bracket" and leg.role == "entry":
                    group.fee_lots += int((update.fee_charged / inst.lot_size).to_integral_value(rounding=ROUND_CEILING))
            self._on_fill(leg, order, lots, update.last_fill_price or Decimal(0), update.fee)
        elif order.status in _END_STATE:
            self._order_ended(leg, order.client_id, _END_STATE[order.status], order.reason)

    def _on_fill(self, leg: Leg, order: Order, lots: int, price: Decimal, fee: Decimal) -> None:
        self.changes += 1
        qty = leg.instrument.lots_to_qty(lots)
        leg.filled += lots
        leg.notional += price * qty
        leg.fees += fee
        if leg.filled >= leg.qty and not leg.is_done:
            self._finish(leg, State.FILLED, None, event=Event.FILL, fill=(price, qty, fee))
        else:
            self._emit(leg, Event.FILL, fill=(price, qty, fee))
            if (leg.kind == Kind.ICEBERG and order.status == OrderStatus.FILLED and not leg.cancelling
                    and not leg.is_done):
                self._release(leg)  # the next slice: a new order, at the back of the queue
        self._group_fill(leg, lots)

    def _order_ended(self, leg: Leg, client_id: str, state: State, reason: str | None) -> None:
        """A venue order of the leg ended unfilled or part-filled (cancelled, rejected, expired)."""
        if client_id != leg.live:
            return
        leg.live = None
        if leg.is_done:
            return
        if leg.cancelling:
            self._finish(leg, State.CANCELLED, leg.reason, propagate=leg.propagate_cancel)
            return
        self._finish(leg, state, reason, propagate=True)

    # -- cancel, amend ------------------------------------------------------------------
    def cancel(self, client_id: str) -> bool:
        """ctx.cancel of a group (every live leg; the rest of the rules do not run) or of a
        leg (as if the venue had cancelled it: the group's rules run). False if nothing was live."""
        group = self.groups.get(client_id)
        if group is not None:
            live = [self.legs[i] for i in group.legs if not self.legs[i].is_done]
            for leg in live:
                self._cancel_leg(leg, "user_cancel", propagate=False)
            return bool(live)
        leg = self.legs[client_id]
        if leg.is_done:
            return False
        self._cancel_leg(leg, "user_cancel", propagate=True)
        return True

    def _cancel_leg(self, leg: Leg, reason: str, *, propagate: bool) -> None:
        if leg.is_done:
            return
        if leg.state in (State.PENDING, State.ARMED):
            self._finish(leg, State.CANCELLED, reason, propagate=propagate)
            return
        if leg.cancelling:
            return
        if leg.live is None:
            self._finish(leg, State.CANCELLED, reason, propagate=propagate)
            return
        leg.cancelling = True
        leg.reason = reason
        leg.propagate_cancel = propagate
        self._cancelling = True
        try:
            sent = self._s.cancel(leg.live)
        finally:
            self._cancelling = False
        if not sent:  # the venue order already ended; its events have been applied
            leg.live = None
            if not leg.is_done:
                self._finish(leg, State.CANCELLED, reason, propagate=propagate)

    def amend(self, client_id: str, *, trigger_price: Decimal | None, price: Decimal | None,
              qty: Decimal | None) -> bool:
        """Move an armed order's trigger / limit price or change its quantity (ctx.amend_contingent).

        Only an order not yet released (pending or armed) changes here; False otherwise.
        A new trigger that the market already touches fires at once, as when armed.
        """
        leg = self.legs.get(client_id)
        if leg is None:
            raise OrderError(f"amend_contingent: unknown contingent order {client_id!r}")
        if leg.state not in (State.PENDING, State.ARMED):
            return False
        inst = leg.instrument
        if trigger_price is not None:
            if leg.kind not in _NEEDS_TRIGGER:
                raise OrderError(f"amend_contingent {client_id}: a {leg.kind.value} has no trigger_price")
            leg.trigger = inst.price_to_ticks(trigger_price * SCALE[leg.trigger_type])
        if price is not None:
            if leg.kind not in LIMIT_KINDS:
                raise OrderError(f"amend_contingent {client_id}: a {leg.kind.value} has no limit price")
            leg.price = inst.price_to_ticks(price)
        if qty is not None:
            if leg.group is not None and self.groups[leg.group].kind == "bracket" and leg.role != "entry":
                raise OrderError(f"amend_contingent {client_id}: a bracket exit's qty follows its entry's fills")
            lots = inst.qty_to_lots(qty)
            if lots <= 0:
                raise OrderError(f"amend_contingent {client_id}: qty must be > 0")
            leg.qty = lots
        self._s.audit.write(self._s.clock.now(), "decision", action="amend_contingent", id=client_id,
                            trigger_price=None if trigger_price is None else str(trigger_price),
                            price=None if price is None else str(price), qty=None if qty is None else str(qty))
        self._emit(leg, Event.AMENDED)
        if leg.state == State.ARMED:
            ref = self._reference_now(leg)
            if ref is not None and self._evaluate(leg, ref):
                self._trigger(leg, ref)
            self._refresh(leg.index)
        return True

    def _resize(self, leg: Leg, qty: int) -> None:
        """A bracket exit follows the position: `qty` = lots it will have ordered in all."""
        if leg.is_done or qty == leg.qty:
            return
        if qty <= leg.filled:
            self._cancel_leg(leg, "bracket_closed", propagate=False)
            return
        leg.qty = qty
        if leg.state == State.ARMED:
            self._hold(leg)
        self._emit(leg, Event.AMENDED)
        if leg.state != State.WORKING or leg.cancelling:
            return
        if leg.kind in _MARKET_KINDS:  # a triggered stop: its market order cannot grow, send the rest
            if qty > self._ordered(leg):
                self._release(leg, qty - self._ordered(leg))
        elif leg.live is not None:
            order = self._s.oms.by_client[leg.live]
            # one venue order holds the leg: its total = its own fills + what the leg still needs
            total = order.filled + (qty - leg.filled)
            self._s.amend(leg.live, qty=leg.instrument.lots_to_qty(total), price=None)

    def _finish(self, leg: Leg, state: State, reason: str | None, *, propagate: bool = False,
                event: Event | None = None, fill: tuple[Decimal, Decimal, Decimal] | None = None) -> None:
        if leg.id in self._armed[leg.index]:
            del self._armed[leg.index][leg.id]
            self._s.risk.hold(f"contingent:{leg.id}", leg.index, leg.side, 0)
            self._refresh(leg.index)
        leg.state = state
        leg.reason = reason
        leg.done_ts = self._s.clock.now()
        leg.cancelling = False
        self._emit(leg, event or {State.FILLED: Event.FILL, State.CANCELLED: Event.CANCELLED,
                                  State.REJECTED: Event.REJECTED, State.EXPIRED: Event.EXPIRED}[state], fill=fill)
        if propagate:
            self._group_ended(leg)

    # -- group rules (docs/contingent-orders.md) ----------------------------------------
    def _siblings(self, leg: Leg) -> tuple[Group | None, list[Leg]]:
        if leg.group is None:
            return None, []
        group = self.groups[leg.group]
        return group, [self.legs[i] for i in group.legs if i != leg.id]

    def _role(self, group: Group, role: str) -> Leg:
        return next(self.legs[i] for i in group.legs if self.legs[i].role == role)

    def _oco_cancel(self, others: list[Leg]) -> None:
        """The OCO rule: the other legs go (reason `oco`)."""
        for other in others:
            self._cancel_leg(other, "oco", propagate=False)

    def _group_triggered(self, leg: Leg) -> None:
        group, others = self._siblings(leg)
        if group is None:
            return
        if group.kind == "oco":
            self._oco_cancel(others)
        elif group.kind == "bracket" and leg.role in ("stop_loss", "take_profit"):
            self._close_bracket(group)
            if leg.role == "stop_loss":
                self._cancel_leg(self._role(group, "take_profit"), "bracket_stop", propagate=False)

    def _close_bracket(self, group: Group) -> None:
        """An exit started: the entry's remainder is cancelled (its fills still count)."""
        group.closing = True
        entry = self._role(group, "entry")
        if not entry.is_done and not entry.cancelling:
            self._cancel_leg(entry, "bracket_closing", propagate=False)

    def _group_fill(self, leg: Leg, lots: int) -> None:
        group, others = self._siblings(leg)
        if group is None:
            return
        if group.kind == "oco":
            if leg.filled == lots:  # its first fill
                self._oco_cancel(others)
        elif group.kind == "oto":
            if leg.role == "parent" and (group.trigger_on == "first_fill" or leg.state == State.FILLED):
                for child in others:
                    if child.state == State.PENDING:
                        self._activate(child)
        elif group.kind == "bracket":
            if leg.role == "entry":
                group.position += lots
            else:
                group.position -= lots
                if leg.role == "take_profit":
                    self._close_bracket(group)
            sellable = max(0, group.position - group.fee_lots)  # what the exits may close
            for exit_leg in (self._role(group, "stop_loss"), self._role(group, "take_profit")):
                if exit_leg.is_done or exit_leg is leg:
                    continue
                if exit_leg.state == State.PENDING:
                    if sellable > 0 and not group.closing:
                        self._activate(exit_leg, sellable)
                else:
                    self._resize(exit_leg, exit_leg.filled + sellable)

    def _group_ended(self, leg: Leg) -> None:
        """A leg ended (cancelled, rejected, expired) other than by a group rule."""
        group, others = self._siblings(leg)
        if group is None:
            return
        if group.kind == "oco":
            self._oco_cancel(others)
        elif group.kind == "oto" and leg.role == "parent":
            for child in others:
                if child.state != State.PENDING:
                    continue
                if leg.filled > 0:
                    self._activate(child)  # a part-filled parent is done: its children go
                else:
                    self._cancel_leg(child, f"parent_{leg.state.value}", propagate=False)
        elif group.kind == "bracket" and leg.role == "entry" and leg.filled == 0:
            for other in others:
                self._cancel_leg(other, f"entry_{leg.state.value}", propagate=False)

    # -- thresholds for the replay loop -------------------------------------------------
    def _refresh(self, index: int) -> None:
        """Recompute instrument `index`'s watch row from its armed orders."""
        clear_row(self.watch, index)
        for leg_id in self._armed[index]:
            self._tighten(self.legs[leg_id])

    def _tighten(self, leg: Leg) -> None:
        """Fold one armed order's conditions into its instrument's watch row."""
        watch = self.watch
        index = leg.index
        if leg.trigger_type == "last":
            hi, lo = TW_TRADE_HI, TW_TRADE_LO
        elif leg.trigger_type == "mid":
            hi, lo = TW_SUM_HI, TW_SUM_LO
        elif leg.side > 0:
            hi, lo = TW_ASK_HI, TW_ASK_LO
        else:
            hi, lo = TW_BID_HI, TW_BID_LO
        if not leg.activated:  # a trailing stop waiting for its activation price
            if take_profit_direction(leg.side) == GE:
                watch[index, hi] = min(int(watch[index, hi]), leg.activation)
            else:
                watch[index, lo] = max(int(watch[index, lo]), leg.activation)
            return
        if leg.trigger is None:  # a trailing stop waiting for its first reference: any wakes
            watch[index, hi] = 0
            return
        if self._direction(leg) == GE:
            watch[index, hi] = min(int(watch[index, hi]), leg.trigger)
        else:
            watch[index, lo] = max(int(watch[index, lo]), leg.trigger)
        if leg.kind == Kind.TRAILING_STOP and leg.watermark is not None:
            if leg.side < 0:  # a new high moves a sell's trigger up
                watch[index, hi] = min(int(watch[index, hi]), leg.watermark + 1)
            else:
                watch[index, lo] = max(int(watch[index, lo]), leg.watermark - 1)

    # -- views, updates -----------------------------------------------------------------
    def _price(self, leg: Leg, value: int) -> Decimal:
        """A reference-unit value as a price (a mid may be half a tick)."""
        return leg.instrument.ticks_to_price(value) / SCALE[leg.trigger_type]

    def _emit(self, leg: Leg, event: Event, fill: tuple[Decimal, Decimal, Decimal] | None = None) -> None:
        self.changes += 1
        if leg.kind in _PLAIN:  # its venue order's own updates are the leg's
            return
        inst = leg.instrument
        status = _STATUS[leg.state]
        if leg.state == State.WORKING and leg.filled:
            status = Status.PARTIALLY_FILLED
        self._s._pending.append(OrderUpdate(
            client_id=leg.id, instrument=inst.id, side="buy" if leg.side > 0 else "sell", status=status,
            event=event, filled_qty=inst.lots_to_qty(leg.filled),
            leaves_qty=Decimal(0) if leg.is_done else inst.lots_to_qty(leg.qty - leg.filled),
            last_fill_price=fill[0] if fill else None, last_fill_qty=fill[1] if fill else Decimal(0),
            fee=fill[2] if fill else Decimal(0), liquidity=None, reason=leg.reason, ts=self._s.clock.now(),
            price=None if leg.price is None else inst.ticks_to_price(leg.price), qty=inst.lots_to_qty(leg.qty),
            parent_id=leg.group))

    def row(self, leg: Leg) -> dict[str, Any]:
        """One leg as a row of the run directory's contingent table (docs/run_dir.md)."""
        inst = leg.instrument
        group = self.groups.get(leg.group) if leg.group else None
        return {
            "id": leg.id, "group_id": leg.group, "contingency": group.kind if group else None, "role": leg.role,
            "type": leg.kind.value, "instrument": inst.id, "side": "buy" if leg.side > 0 else "sell",
            "qty": _s(inst.lots_to_qty(leg.qty)),
            "price": None if leg.price is None else _s(inst.ticks_to_price(leg.price)),
            "trigger_price": None if leg.trigger is None else _s(self._price(leg, leg.trigger)),
            "trigger_type": leg.trigger_type if leg.is_trigger else None,
            "trailing_amount": None if leg.trailing_amount is None else _s(self._price(leg, leg.trailing_amount)),
            "trailing_bps": None if leg.trailing_bps is None else _s(leg.trailing_bps),
            "trailing_trigger_price": None if leg.activation is None else _s(self._price(leg, leg.activation)),
            "display_qty": None if leg.display is None else _s(inst.lots_to_qty(leg.display)),
            "state": leg.state.value, "filled_qty": _s(inst.lots_to_qty(leg.filled)),
            "avg_fill_price": _s(leg.notional / inst.lots_to_qty(leg.filled)) if leg.filled else None,
            "fees": _s(leg.fees), "reason": leg.reason, "orders": ",".join(leg.orders) or None,
            "created_ts": leg.created_ts, "armed_ts": leg.armed_ts, "triggered_ts": leg.triggered_ts,
            "trigger_reference": None if leg.trigger_reference is None else _s(self._price(leg, leg.trigger_reference)),
            "done_ts": leg.done_ts,
        }

    def view(self, client_id: str) -> dict[str, Any] | None:
        """`ctx.contingent(id)`: a leg's row (as the contingent table has it), or a group's
        {id, contingency, legs, position}; None if unknown."""
        leg = self.legs.get(client_id)
        if leg is not None:
            return self.row(leg)
        group = self.groups.get(client_id)
        if group is None:
            return None
        first = self.legs[group.legs[0]]
        return {"id": group.id, "contingency": group.kind, "legs": list(group.legs),
                "trigger_on": group.trigger_on if group.kind == "oto" else None,
                "position": str(first.instrument.lots_to_qty(group.position)) if group.kind == "bracket" else None,
                "closing": group.closing if group.kind == "bracket" else None,
                "done": all(self.legs[i].is_done for i in group.legs)}

    @property
    def armed_count(self) -> int:
        return sum(len(a) for a in self._armed)

    def watching(self, index: int) -> bool:
        """Instrument `index` has armed orders: a live driver must hand its market events to
        the session (`on_book` / `on_trade`) even when the strategy did not subscribe."""
        return bool(self._armed[index])

    def live_ids(self, instrument: str | None = None) -> list[str]:
        """Ids of emulated orders not yet final (pending, armed or working), oldest first."""
        return [leg.id for leg in self.legs.values()
                if not leg.is_done and leg.kind not in _PLAIN and (instrument is None or leg.instrument.id == instrument)]

    # -- state for a restart (live modes) -----------------------------------------------
    def state(self) -> dict[str, Any]:
        """Everything needed to resume after a restart, as JSON-safe values (ints, strings).

        A live driver saves it with its session record and calls `restore` in the new
        process before reconciliation; venue orders the legs released are the OMS's to
        recover (they are listed by client id in `by_order`).
        """
        legs = [_leg_json(leg) for leg in self.legs.values()]
        groups = [asdict(g) for g in self.groups.values()]
        oms = self._s.oms
        by_client = oms.by_client
        # what each working leg's venue order had filled (lots), so a restart can tell the
        # fills it missed while no session ran from those the leg already counts
        live_filled = {leg.live: by_client[leg.live].filled if leg.live in by_client else self._live_filled[leg.live]
                       for leg in self.legs.values()
                       if leg.live is not None and (leg.live in by_client or leg.live in self._live_filled)}
        # the session's plain orders still open (not a leg's): what they are and had filled,
        # so a restart books exactly the fills they got while no session ran
        orders = {}
        for order in oms.open_orders():
            cid = order.client_id
            if cid in self.by_order:
                continue
            orders[cid] = {"instrument": order.instrument.id, "side": order.side, "type": order.type.name,
                           "price": order.price, "qty": order.qty, "reduce_only": order.reduce_only,
                           "acked": order.status != OrderStatus.SUBMITTED}
            live_filled[cid] = order.filled
        for cid in list(self._trades):  # kept for open orders only (see `traded`)
            if cid not in self.by_order and cid not in orders:
                del self._trades[cid]
        # and what of it the venue orders its amends replaced filled (Binance cancel-replace:
        # the venue's current order counts its fills from 0), so a restart adds it back
        live_base = {cid: sum(by_client[cid].replaced.values()) if cid in by_client else self._live_base[cid]
                     for cid in live_filled
                     if (cid in by_client and by_client[cid].replaced) or self._live_base.get(cid)}
        out = {"version": _SCHEMA_VERSION, "seq": self._seq, "next_id": self._next_id, "legs": legs,
               "groups": groups, "last_trade": {self._s._ids[i]: int(self.watch[i, TW_LAST])
                                                for i in range(self.watch.shape[0])},
               "live_filled": live_filled, "orders": orders}
        if live_base:
            out["live_base"] = live_base
        # the trade ids those fills had: a restart books the venue's other trades only
        live_trades = {cid: list(self._trades[cid]) for cid in live_filled if self._trades.get(cid)}
        if live_trades:
            out["live_trades"] = live_trades
        return out

    def restore(self, state: dict[str, Any]) -> None:
        """Load what `state` saved into this (empty) manager; re-arms armed orders."""
        if state.get("version") != _SCHEMA_VERSION:
            raise OrderError(f"contingent state version {state.get('version')!r}: expected {_SCHEMA_VERSION}")
        if self.legs or self.groups:
            raise OrderError("contingent state can only be restored into a session without contingent orders")
        for g in state["groups"]:
            self.groups[g["id"]] = Group(**dict(g, legs=list(g["legs"])))
            self._s.oms.recent.add(g["id"])
        for d in state["legs"]:
            leg = _leg_from_json(d, self._s.instrument(d["instrument"]), self._s.index[d["instrument"]])
            self.legs[leg.id] = leg
            if leg.kind not in _PLAIN:
                self._s.oms.recent.add(leg.id)
            for client_id in leg.orders:
                self.by_order[client_id] = leg.id
        for leg in sorted(self.legs.values(), key=lambda x: x.seq):
            if leg.state == State.ARMED:
                self._armed[leg.index][leg.id] = None
                self._hold(leg)
        self._seq = state["seq"]
        self._next_id = state["next_id"]
        for inst_id, last in state["last_trade"].items():
            if inst_id in self._s.index:
                self.watch[self._s.index[inst_id], TW_LAST] = max(int(last), int(self.watch[self._s.index[inst_id], TW_LAST]))
        for index in range(self.watch.shape[0]):
            self._refresh(index)
        self._live_filled = {str(k): int(v) for k, v in state.get("live_filled", {}).items()}
        self._live_base = {str(k): int(v) for k, v in state.get("live_base", {}).items()}
        saved = state.get("orders")
        self._orders = None if saved is None else {
            str(cid): dict(o) for cid, o in saved.items() if o.get("instrument") in self._s.index}
        saved_trades = state.get("live_trades", {})
        for cid, trade_ids in saved_trades.items():
            inst = self.saved_instrument(cid)
            if inst is None:
                continue
            self._trades[cid] = [str(t) for t in trade_ids]
            for trade_id in self._trades[cid]:  # booked by the previous session: never again
                self._s.oms.trades.add((inst, trade_id))
        # a state saved before trade ids were: which of an order's venue trades the previous
        # session booked is unknown, only how much; the earliest trades up to that much are
        # taken as booked (`infer`), the rest booked as fills it missed
        self.inferred = {cid: known for cid, known in self._live_filled.items()
                         if known > 0 and cid not in saved_trades and self._resumes(cid)}
        self.changes += 1

    def saved_instrument(self, client_id: str) -> str | None:
        """The instrument id of a venue order the restored state knows (a leg's, or a plain
        order the previous session had open), else None."""
        leg = self.legs.get(self.by_order.get(client_id, ""))
        if leg is not None:
            return leg.instrument.id
        order = (self._orders or {}).get(client_id)
        return None if order is None else order["instrument"]

    # -- a warm restart's reconciliation (engine/reconcile.py) ---------------------------
    def is_child(self, client_id: str) -> bool:
        """True for a venue order one of our legs released (ours, whatever its prefix)."""
        return client_id in self.by_order

    def adopt_filled(self, client_id: str, venue_filled: int) -> int:
        """The filled lots a venue order found open at a warm restart is adopted with
        (`engine.reconcile.adopt`): for a restored leg's working order or a plain order the
        previous session had open, what that session booked of it (the saved count, less
        what the venue orders its amends replaced filled: `live_base`), so the fills it got
        while no session ran are booked when the order is looked up (`adopted`); for any
        other order of ours, the venue's count (its fills are in the balances the session
        starts from and in no position it restored)."""
        if not self._resumes(client_id):
            return venue_filled
        known = self._live_filled.get(client_id, 0) - self._live_base.get(client_id, 0)
        return max(0, min(venue_filled, known))

    def _resumes(self, client_id: str) -> bool:
        """True for a venue order whose earlier fills the restored state counts: a working
        leg's saved order, or a plain order the previous session had open."""
        leg_id = self.by_order.get(client_id)
        if leg_id is not None:
            leg = self.legs[leg_id]
            return leg.live == client_id and not leg.is_done and client_id in self._live_filled
        return self._orders is not None and client_id in self._orders

    def adopted(self, order: Order, venue: VenueOrderState) -> bool:
        """A venue order of ours was found open at a warm restart and adopted into the OMS
        (`engine.reconcile.adopt`, filled as `adopt_filled` says). For a restored leg's
        order or a plain order the previous session had open: fills it got while no session
        ran (the venue's filled count beyond what the saved state knew) are booked by
        looking the order up (its trades, by trade id, at their prices and fees, into the
        position and PnL only: the balances the session started from hold them; the leg and
        its group then advance as if the fills were seen live). True when it is to be
        looked up."""
        cid = order.client_id
        if not self._resumes(cid):
            return False
        base = self._live_base.get(cid, 0)
        if base:
            # the order was amended by cancel-replace before the restart: the venue's order
            # counts only its own fills; the replaced venue orders filled `base` more
            # (saved), so the client order's filled and quantity are the chain's, and later
            # reports of the venue order continue from it (engine/venue_merge.py)
            order.replaced["restored"] = base
            order.filled += base
            order.qty += base
            if order.filled and order.status == OrderStatus.ACKNOWLEDGED:
                self._s.oms.set_status(order, OrderStatus.PARTIALLY_FILLED, self._s.clock.now())
        order.venue_filled = base + venue.filled
        if order.venue_filled <= order.filled:
            return False
        self._s.oms.prebooked.add(cid)
        self._prebooked_until[cid] = venue.exch_ts  # later fills are the session's own
        inst = order.instrument
        self._s.audit.write(self._s.clock.now(), "decision", action="resume_lookup", client_id=cid,
                            booked=_s(inst.lots_to_qty(order.filled)), venue=_s(inst.lots_to_qty(order.venue_filled)),
                            why="filled further while no session ran")
        return True

    def infer(self, order: Order, fill: VenueFill) -> VenueFill | None:
        """A venue fill of a restored order whose saved state has no trade ids (`inferred`):
        a lookup's trades (source "query", oldest first) are taken as the ones the previous
        session booked until they add up to what it had filled; the rest, and every fill of
        the stream (the session's own), are booked. Returns the fill to book (its part
        beyond what is taken as booked, the fee in proportion), or None. Audited
        `inferred_booked`."""
        cid = order.client_id
        inst = order.instrument
        if fill.source != "query" or (inst.id, fill.trade_id) in self._s.oms.trades:
            return fill  # the stream's; or booked already (a duplicate, audited as such)
        left = self.inferred.get(cid, 0)
        if left <= 0:
            self.inferred.pop(cid, None)
            return fill
        taken = min(left, fill.qty)
        self.inferred[cid] = left - taken
        if not self.inferred[cid]:
            del self.inferred[cid]
        self._s.audit.write(self._s.clock.now(), "inferred_booked", client_id=cid, trade_id=fill.trade_id,
                            qty=_s(inst.lots_to_qty(taken).normalize()), of=_s(inst.lots_to_qty(fill.qty).normalize()),
                            why="saved state without trade ids: taken as booked by the previous session")
        # saved with the order's trade ids from now on: a later resume knows it was booked
        self._trades.setdefault(cid, []).append(fill.trade_id)
        if taken == fill.qty:
            self._s.oms.trades.add((inst.id, fill.trade_id))
            return None
        rest = fill.qty - taken
        fee = (fill.fee * rest / fill.qty).quantize(_FEE_STEP) if fill.fee else fill.fee
        return replace(fill, qty=rest, fee=fee)

    def prebooked(self, client_id: str, exch_ts: int) -> bool:
        """A fill (venue time `exch_ts`) of a restored order in `OrderManager.prebooked` is
        already in the balances the session started from: every fill of an order that
        ended while no session ran; of an adopted open order, those up to its last update
        at the start's read (`adopted`)."""
        until = self._prebooked_until.get(client_id)
        return until is None or exch_ts <= until

    def traded(self, order: Order, trade_id: str) -> None:
        """A live fill of `order` was booked (engine/venue_merge.py): a leg's order keeps
        its trade ids, which `state()` saves for a working leg; with `keep_order_trades` a
        plain order's too (saved while it is open), and the state changed (its positions)."""
        if order.client_id in self.by_order:
            self._trades.setdefault(order.client_id, []).append(trade_id)
        elif self.keep_order_trades:
            self._trades.setdefault(order.client_id, []).append(trade_id)
            self.changes += 1

    def restore_order(self, leg_id: str | None, client_id: str) -> Order:
        """A restored working leg whose venue order `client_id` is no longer open at the
        venue (it filled or was cancelled while no session ran): the OMS takes the order
        back as the saved state knew it (acknowledged, its filled lots), to be looked up by
        client id (engine/reconcile.py). The answer merges as any venue report: the fills the
        previous session did not book (by trade id) count for the leg and its group as if
        seen live (a take-profit's fill ends the bracket, an entry's arms its exits), and
        the ledger's position takes them; its balances already do (`OrderManager.prebooked`)."""
        from engine.types import OrderType, TimeInForce

        known = self._live_filled.get(client_id, 0)
        base = self._live_base.get(client_id, 0)
        now = self._s.clock.now()
        oms = self._s.oms
        acked = True
        if leg_id is not None:
            leg = self.legs[leg_id]
            inst, index, side, reduce_only = leg.instrument, leg.index, leg.side, leg.reduce_only
            market = leg.price is None
            price, qty = (0 if market else leg.price), max(known + leg.qty - leg.filled, known, 1)
        else:  # a plain order the previous session had open (`state()` "orders")
            saved = self._orders[client_id]
            inst = self._s.instrument(saved["instrument"])
            index, side, reduce_only = self._s.index[inst.id], int(saved["side"]), bool(saved["reduce_only"])
            market = saved["type"] == OrderType.MARKET.name
            price, qty, acked = int(saved["price"]), max(int(saved["qty"]), known, 1), bool(saved["acked"])
        order = oms.create(client_id=client_id, instrument=inst, instrument_index=index, side=side,
                           type=OrderType.MARKET if market else OrderType.LIMIT, tif=TimeInForce.GTC,
                           price=price, qty=qty, reduce_only=reduce_only, created_ts=now, trigger_ts=now)
        oms.set_status(order, OrderStatus.SUBMITTED, now)
        if acked:  # an order never acknowledged stays submitted: "not found" is then a reject
            oms.set_status(order, OrderStatus.ACKNOWLEDGED, now)
            order.ack_ts = now
        if known:
            order.filled = order.venue_filled = known
            oms.set_status(order, OrderStatus.PARTIALLY_FILLED, now)
        if base:  # what venue orders its amends replaced filled (see `adopted`)
            order.replaced["restored"] = base
        oms.prebooked.add(client_id)
        if leg_id is not None:
            self._s.audit.write(now, "decision", action="contingent_lookup", id=leg_id, client_id=client_id,
                                filled=_s(inst.lots_to_qty(known)), why="working leg not open at the venue")
        else:
            self._s.audit.write(now, "decision", action="resume_lookup", client_id=client_id,
                                booked=_s(inst.lots_to_qty(known)), why="open in the previous session, not open "
                                "at the venue")
        return order

    def orphans(self) -> list[tuple[str | None, str]]:
        """(leg id, venue client id) of working legs whose venue order the OMS does not
        hold, and (None, client id) of the previous session's plain open orders it does not
        hold: after a restart, orders that ended while no session ran (the start
        reconciliation looks them up: `restore_order`, docs/contingent-orders.md "Restart")."""
        by_client = self._s.oms.by_client
        out: list[tuple[str | None, str]] = [
            (leg.id, leg.live) for leg in self.legs.values()
            if leg.state == State.WORKING and leg.live is not None and leg.live not in by_client]
        out += [(None, cid) for cid in (self._orders or {}) if cid not in by_client]
        return out


_DECIMAL_FIELDS = ("trailing_bps", "notional", "fees")


def _leg_json(leg: Leg) -> dict[str, Any]:
    """A leg's fields as JSON-safe values (enums by value, Decimals as text, the instrument by id)."""
    out: dict[str, Any] = {}
    for f in fields(Leg):
        value = getattr(leg, f.name)
        if f.name == "instrument":
            value = value.id
        elif isinstance(value, StrEnum):
            value = value.value
        elif isinstance(value, Decimal):
            value = str(value)
        elif isinstance(value, list):
            value = list(value)
        out[f.name] = value
    return out


def _leg_from_json(data: dict[str, Any], instrument: Any, index: int) -> Leg:
    """The inverse of `_leg_json`."""
    values = dict(data, instrument=instrument, index=index, kind=Kind(data["kind"]), state=State(data["state"]),
                  orders=list(data["orders"]))
    for name in _DECIMAL_FIELDS:
        if values[name] is not None:
            values[name] = Decimal(values[name])
    return Leg(**values)


__all__ = ["ContingentManager", "FINAL_STATES", "NEVER_HI", "NEVER_LO"]
