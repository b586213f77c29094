"""Merging what venues report about our orders: one path for every mode.

Why one path: a live venue reports each order several times and in any order (the REST
reply to the command, the user-stream executionReport, a later query), and the simulated
venue reports it once, in order, as numeric `ORDER_EVENT_DTYPE` rows. The session converts
the simulated rows into the same typed records (`engine.types.venue_reports`) and every
record goes through the merge below, so backtests exercise the code live trading runs.

Merge rules (per client id; docs/orders-live.md states them for users):

- A fill is booked once per (instrument, trade id), whenever it comes: before the order's
  acknowledgement, after the order was seen cancelled (the cancel reply overtook the fill's
  executionReport), or twice (stream and my-trades query): the second is audited and
  dropped. Fills are booked only from `VenueFill` records; a state's cumulative `filled`
  beyond the fills booked marks the order as owed fills and the OMS looks the order up.
- Statuses never regress: SUBMITTED -> ACKNOWLEDGED -> PARTIALLY_FILLED -> a terminal status.
  A state older than what the order shows (a late ACK after FILLED, a second CANCELLED) is
  audited as `stale` and changes nothing. The first terminal status the venue reports wins;
  a contradicting one is audited as `conflict`. PARTIALLY_FILLED and FILLED come from the
  fills booked (a FILLED state only records how much the venue filled), so an order's
  status always agrees with the fills the ledger holds.
- Price and quantity change only by our amends: an amend is confirmed by its command
  result, or by a venue state that shows the amended price and quantity.
- Command outcomes: confirmed, rejected (the venue's evidence kept on the order and in the
  audit log), ambiguous. An ambiguous command is resolved by `request_order_state` (never a
  resend): a found order is adopted as the venue shows it; a submit the venue does not know
  is rejected `not_received`; a cancel or amend the answer shows was not applied is
  refused `not_received` (the strategy may send it again).

Fees: a `VenueFill` carries the fee in the asset the venue charged (`fee_asset`); the ledger
books it in that asset, and order updates, orders/fills tables and PnL report it valued in
the instrument's quote asset at the fill price (`Ledger.fee_in_quote`).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from engine import audit_records as R
from engine.errors import InternalError
from engine.fees import bps, fill_fee
from engine.frozen import frozen_builder
from engine.oms import Order
from engine.order_state_nb import MERGE_CONFIRM, MERGE_END, MERGE_STALE, merge_status
from engine.types import Liquidity, OrderEventKind, OrderStatus, OrderType
from engine.types.instrument import decimal_str
from engine.types.orders import ORDER_EVENT_DTYPE, TERMINAL_STATUSES, ReasonCode, venue_reason
from engine.types.venue_reports import (
    BookedFill,
    Command,
    CommandResult,
    Outcome,
    VenueFill,
    VenueOrderState,
)
from engine.views import Event, OrderUpdate

_LIQUIDITY = {Liquidity.MAKER: "maker", Liquidity.TAKER: "taker"}
# the fill record (engine.audit_records.FILL) through its compiled encoder (one per fill:
# bench/PROFILE.md 1c)
_FILL_RECORD = R.FILL.compiled
_ENGINE_FILL_RECORD = R.ENGINE_FILL.compiled
_STATE_RESPONSE = R.STATE_RESPONSE.compiled
_TERMINAL_EVENTS = {OrderStatus.CANCELLED: Event.CANCELLED, OrderStatus.EXPIRED: Event.EXPIRED,
                    OrderStatus.REJECTED: Event.REJECTED}
_ROW_STATUS = {int(OrderEventKind.ACK): OrderStatus.ACKNOWLEDGED,
               int(OrderEventKind.CANCELLED): OrderStatus.CANCELLED,
               int(OrderEventKind.EXPIRED): OrderStatus.EXPIRED}
_FILL = int(OrderEventKind.FILL)
_REJECTED = int(OrderEventKind.REJECTED)
_AMENDED = int(OrderEventKind.AMENDED)
_CANCEL_REJECTED = int(OrderEventKind.CANCEL_REJECTED)
_STATE = int(OrderEventKind.STATE)
_BALANCES_MARKER = -2  # venues.sim.codes.Q_BALANCES: a STATE row answering request_balances
_END_STATUS = {int(OrderEventKind.CANCELLED): OrderStatus.CANCELLED,
               int(OrderEventKind.EXPIRED): OrderStatus.EXPIRED,
               int(OrderEventKind.REJECTED): OrderStatus.REJECTED}
_NOT_RECEIVED = ReasonCode.NOT_RECEIVED.value
_USER_CANCEL = ReasonCode.USER_CANCEL.value
_UNKNOWN_ORDER = ReasonCode.UNKNOWN_ORDER.value
_CANCEL, _AMEND, _SUBMIT = Command.CANCEL.value, Command.AMEND.value, Command.SUBMIT.value
# positions in a row's `item()` tuple (ORDER_EVENT_DTYPE's field order)
(_EXCH_TS, _NO, _INSTRUMENT, _KIND, _LIQ_CODE, _REASON, _PRICE, _QTY, _FILLED, _LEAVES,
 _ORDER_PRICE) = (ORDER_EVENT_DTYPE.names.index(name) for name in (
     "exch_ts", "order_no", "instrument", "kind", "liquidity", "reason", "price", "qty", "filled", "leaves",
     "order_price"))
_LIQ = {int(liq): liq for liq in Liquidity}  # the enum member of a row's liquidity code
_CANCELLED_STATUS = OrderStatus.CANCELLED
_ACK_STATUS = OrderStatus.ACKNOWLEDGED
# sources of a live venue's reports: a cancel-replace's CANCELED of the old venue order id
# comes through them (a simulated venue amends in place and reports through "sim")
_LIVE_SOURCES = frozenset(("stream", "rest"))
_LIMIT = OrderType.LIMIT  # a member read once (as engine/session.py does: `order.type is _LIMIT`)
# the booked fill, built without the frozen dataclass's __init__ (engine/frozen.py); the
# compiled path (engine/bulk.py) and the liquidations (engine/session.py) build it too
new_booked_fill = frozen_builder(BookedFill)
_FEE_CACHE = 4096  # fills' fees remembered per instrument before the cache starts over (`_sim_fill`)


class VenueMerge:
    """The venue entry points of `TradingSession` (a mixin: it uses the session's OMS,
    ledger, audit log, clock and strategy delivery). See the module docstring."""

    # -- the simulated venue's numeric rows ------------------------------------------------
    def on_order_event(self, rec: Any) -> None:
        """Apply one simulated-venue row (fields of ORDER_EVENT_DTYPE): converted to the
        typed records of every other venue and merged like them."""
        values = rec.item()  # the row's fields as ints, converted once (not one numpy read each)
        order_no = values[_NO]
        if order_no == _BALANCES_MARKER:  # the answer to request_balances
            venue = self.venues[self._by_index(values[_INSTRUMENT]).venue]
            self.on_balances(venue.name, venue.balances())
            return
        order = self.oms.by_no.get(order_no)
        if order is None:  # the venue answers only orders the OMS sent
            raise InternalError(f"venue reported unknown order number {order_no}")
        now = self.clock.now()
        self._trigger_ts = now
        kind = values[_KIND]
        exch_ts = values[_EXCH_TS]
        update = None
        if kind == _FILL:
            update = self._sim_fill(order, values, now, "sim", values[_LEAVES])
        elif kind in _ROW_STATUS:
            # merged from the row's fields: no `VenueOrderState` per simulated row
            filled = values[_FILLED]
            update = self._merge_status(order, now, "sim", str(order_no), True, _ROW_STATUS[kind],
                                        values[_ORDER_PRICE], filled + values[_LEAVES], filled,
                                        venue_reason(values[_REASON]), exch_ts)
        elif kind == _STATE:
            self._sim_query_answer(order, rec, now)
        else:
            code = values[_REASON]
            reason = venue_reason(code)
            if kind == _REJECTED:
                command, outcome = Command.SUBMIT, Outcome.REJECTED
            elif kind == _AMENDED:
                command, outcome = Command.AMEND, Outcome.CONFIRMED
            elif kind == _CANCEL_REJECTED:  # answers the oldest request in flight (they arrive in order)
                requests = self._in_flight.get(order.order_no)
                command = Command.AMEND if requests and requests[0][0] == _AMEND else Command.CANCEL
                outcome = Outcome.REJECTED
            else:
                raise InternalError(f"venue reported unknown event kind {kind} for {order.client_id}")
            evidence = {"venue": order.instrument.venue, "code": code, "exch_ts": exch_ts} if reason else {}
            result = CommandResult(order.client_id, command, outcome, now, str(order_no), reason, evidence)
            amended = (values[_ORDER_PRICE], values[_FILLED] + values[_LEAVES]) if kind == _AMENDED else None
            update = self._merge_command(order, result, now, exch_ts, amended)
        if update is not None:
            self._venue_update(order, update, now)
        if self._pending:  # `_flush`'s loop, entered only when a local update waits (rare here)
            self._flush()

    def _sim_fill(self, order: Order, values: tuple, now: int, source: str, leaves: int | None):
        """Book a simulated FILL row (its `item()` tuple) as the venue's fill report would
        be booked, without the intermediate `VenueFill`: trade id `<order_no>.<filled>`
        (cumulative lots after it: unique per order), fee in the venue's fee asset
        (engine/fees.py `fill_fee`). Returns the strategy's update or None."""
        inst = order.instrument
        price, lots, code = values[_PRICE], values[_QTY], values[_LIQ_CODE]
        venue = self.venues[inst.venue]
        grid = self._grids[inst.id]
        # the fee, its asset, its value in quote and the liquidity's name depend only on the
        # fill's ticks, lots, liquidity and side under the venue's rates and fee-asset rule:
        # remembered per instrument (a quoting strategy fills a few sizes at a few prices;
        # `fill_fee` + `fee_in_quote` cost ~1.7 us a fill, bench/PROFILE.md 1i), forgotten when
        # the venue's rates or rule are other objects than the ones remembered
        maker, taker, rule = venue.maker_fee_bps, venue.taker_fee_bps, getattr(venue, "fee_asset", "quote")
        fees = grid.fees
        rates = grid.fee_rates
        if rates is None or rates[0] is not maker or rates[1] is not taker or rates[2] is not rule:
            fees.clear()
            grid.fee_rates = (maker, taker, rule)
        key = (price, lots, code, order.side)
        entry = fees.get(key)
        if entry is None:
            liq = _LIQ[code] if code in _LIQ else Liquidity(code)
            fee, asset = fill_fee(inst, order.side, price, lots, liq, bps(maker), bps(taker), rule)
            # valued in quote here only when no mark is involved (the fee in base or quote);
            # a third asset's value follows its book: `_book_fill` values it per fill
            fee_quote = self.ledger.fee_in_quote(inst, price, fee, asset) if asset in (inst.base, inst.quote) else None
            if len(fees) >= _FEE_CACHE:
                fees.clear()
            entry = fees[key] = (fee, asset, fee_quote, _LIQUIDITY.get(liq, "taker"))
        fee, asset, fee_quote, liquidity = entry
        order_no = order.order_no
        return self._book_fill(order, str(order_no), f"{order_no}.{values[_FILLED]}", price, lots, fee, asset,
                               liquidity, values[_EXCH_TS], source, now, leaves, fee_quote)

    def _sim_query_answer(self, order: Order, rec: Any, now: int) -> None:
        """The simulated venue's answer to a lookup (a STATE row, produced at the query's
        exchange time): the order's fills from the venue's history (my trades), then its
        state: open (the row's price, qty, filled), ended (its last report) or not found."""
        venue = self.venues[order.instrument.venue]
        fills, end = venue.order_history(order.order_no)
        exch_ts = int(rec["exch_ts"])
        for row in fills:
            values = row.item()
            update = self._sim_fill(order, values, now, "query", values[_LEAVES])
            if update is not None:
                self._venue_update(order, update, now)
        cid, vid = order.client_id, str(order.order_no)
        if int(rec["reason"]) == 0:  # open at the venue
            filled = int(rec["filled"])
            status = OrderStatus.PARTIALLY_FILLED if filled else OrderStatus.ACKNOWLEDGED
            state = VenueOrderState(cid, vid, status, int(rec["order_price"]), int(rec["qty"]), filled,
                                    exch_ts, now, None, "query")
        elif end is not None:
            end_kind = int(end["kind"])
            status = OrderStatus.FILLED if end_kind == _FILL else _END_STATUS[end_kind]
            filled = int(end["filled"])
            state = VenueOrderState(cid, vid, status, int(end["order_price"]), filled + int(end["leaves"]),
                                    filled, exch_ts, now, venue_reason(int(end["reason"])), "query")
        else:
            state = VenueOrderState(cid, vid, OrderStatus.REJECTED, order.price, order.qty, 0, exch_ts, now,
                                    ReasonCode.UNKNOWN_ORDER.value, "query", found=False)
        update = self._merge_state(order, state, now)
        if update is not None:
            self._venue_update(order, update, now)

    # -- typed records (live venues; the simulated venue's rows come through here too) -----
    def on_command_result(self, result: CommandResult) -> None:
        """A venue's answer to one of our commands (or its absence: AMBIGUOUS)."""
        order = self._order_of(result.client_id, "command_result")
        if order is None:
            return
        now = self.clock.now()
        self._trigger_ts = now
        update = self._merge_command(order, result, now, None, None)
        if update is not None:
            self._venue_update(order, update, now)
        self._flush()

    def on_venue_state(self, state: VenueOrderState, _flush: bool = True) -> None:
        """The venue's view of one order (a reply, an executionReport or a query answer)."""
        order = self._order_of(state.client_id, "venue_state")
        if order is None:
            return
        now = self.clock.now()
        self._trigger_ts = now
        update = self._merge_state(order, state, now)
        if update is not None:
            self._venue_update(order, update, now)
        if _flush:
            self._flush()

    def on_venue_fill(self, fill: VenueFill, _flush: bool = True) -> None:
        """One fill as the venue reports it; booked once per (instrument, trade id)."""
        order = self._order_of(fill.client_id, "venue_fill")
        if order is None:
            return
        if self.contingent.inferred and order.client_id in self.contingent.inferred:
            fill = self.contingent.infer(order, fill)  # a resumed order saved without trade ids
            if fill is None:
                return
        now = self.clock.now()
        self._trigger_ts = now
        update = self._merge_fill(order, fill, now, None)
        if update is not None:
            self.contingent.traded(order, fill.trade_id)  # a leg's trade ids survive a restart
            self._venue_update(order, update, now)
        if _flush:
            self._flush()

    def on_balances(self, venue: str, balances: Mapping[str, tuple[Decimal, Decimal]]) -> None:
        """The venue's balances {asset: (free, locked)}: kept as `venue_balances[venue]`,
        audited with every asset where free + locked differs from the ledger's balance."""
        if venue not in self.venues:
            raise InternalError(f"balances reported for unknown venue {venue!r}")
        now = self.clock.now()
        reported = {asset: (Decimal(free), Decimal(locked)) for asset, (free, locked) in balances.items()}
        self.venue_balances[venue] = reported
        differ = self.ledger.balance_differences(venue, reported)
        self.audit.write(now, "balances", venue=venue,
                         balances={a: [decimal_str(f), decimal_str(lk)] for a, (f, lk) in sorted(reported.items())},
                         differences={a: [decimal_str(ours), decimal_str(theirs)]
                                      for a, (ours, theirs) in differ.items()})

    # -- the merge ---------------------------------------------------------------------------
    def _venue_update(self, order: Order, update: OrderUpdate, now: int) -> None:
        """A venue report changed `order`: risk first (held exposure, reject and slippage
        triggers), then the strategy and its components, then the contingent orders that
        watch the order (a bracket's exits follow its entry's fills)."""
        self.guard.after_event(order, update, now)
        self._deliver(update)
        contingent = self.contingent
        if contingent.by_order:  # `on_order` looks the order's leg up there: none, nothing to do
            contingent.on_order(order, update)

    def _order_of(self, client_id: str, what: str) -> Order | None:
        order = self.oms.by_client.get(client_id)
        if order is None:  # not ours, or from before this session: reconciliation's business
            self.audit.write(self.clock.now(), "unknown_order", record=what, client_id=client_id)
        return order

    def _merge_command(self, order: Order, result: CommandResult, now: int, exch_ts: int | None,
                       amended: tuple[int, int] | None):
        """Apply one command outcome; returns the strategy's update or None."""
        command = result.command.value
        if result.venue_order_id and order.venue_order_id is None:
            order.venue_order_id = result.venue_order_id
        shape, values = R.command_response(order.client_id, command, result.outcome.value, result.reason, exch_ts,
                                           result.evidence)
        self.audit.write_shaped(shape.compiled, now, *values)  # no Decimal fields: `shape.fields`' bytes
        if result.outcome == Outcome.AMBIGUOUS:
            order.ambiguous.add(command)
            self.guard.record_ambiguous(order.client_id)  # [risk] disable_after_ambiguous
            self._lookup(order, now, f"ambiguous {command}")
            return None
        order.ambiguous.discard(command)
        rejected = result.outcome == Outcome.REJECTED
        if command == _SUBMIT:
            if order.ack_ts is None:
                order.ack_ts = now
            if not rejected:
                return self._confirm(order, now)
            if order.status != OrderStatus.SUBMITTED:  # the venue confirmed it before
                self.audit.write(now, "conflict", client_id=order.client_id, record="submit rejected",
                                 status=order.status.name)
                return None
            order.evidence = dict(result.evidence) or None
            self.oms.set_status(order, OrderStatus.REJECTED, now, result.reason)
            return self._closed(order, now, Event.REJECTED)
        request = self._pop_request(order, command)
        if command == _AMEND and rejected and order.is_open and result.evidence \
                and result.evidence.get("cancel_result") == "SUCCESS":
            # a cancel-replace that cancelled the order and whose replacement the venue
            # refused (Binance -2021): the order is gone, ended with the replacement's
            # refusal reason (a held CANCELED of it said the same, without a reason)
            order.held_end = None
            order.evidence = dict(result.evidence)
            self.oms.set_status(order, OrderStatus.CANCELLED, now, result.reason)
            self._response(order, now, Event.CANCELLED, result.reason, exch_ts or 0, "rest")
            return self._closed(order, now, Event.CANCELLED)
        if command == _AMEND and (order.held_end is not None or not rejected):
            update = self._amend_outcome(order, result, now, rejected)
            if update is not None:
                return update
        if rejected:
            event = Event.AMEND_REJECTED if command == _AMEND else Event.CANCEL_REJECTED
            if result.evidence:
                order.evidence = dict(result.evidence)
            if result.reason == _UNKNOWN_ORDER and order.is_open:
                # "unknown order" (Binance -2011) is not the order's fate: it may have filled
                # (its fill report still on the way), ended, or not have reached the venue yet
                # (a cancel that overtook its create); the venue's answer by client id says which
                self._lookup(order, now, f"{command} refused: unknown order")
            return self._update(order, now, event, reason=result.reason)
        if order.ack_ts is None:
            order.ack_ts = now
        if command == _CANCEL:
            if not order.is_open:
                return None
            self.oms.set_status(order, OrderStatus.CANCELLED, now, result.reason or _USER_CANCEL)
            return self._closed(order, now, Event.CANCELLED)
        price, qty = amended if amended is not None else (request[1], request[2]) if request else (None, None)
        if price is None or not order.is_open:
            return None
        order.price, order.qty = price, qty
        return self._update(order, now, Event.AMENDED)

    def _merge_state(self, order: Order, state: VenueOrderState, now: int):
        """Apply one venue state; returns the strategy's update or None."""
        return self._merge_status(order, now, state.source, state.venue_order_id, state.found, state.status,
                                  state.price, state.qty, state.filled, state.reason, state.exch_ts)

    def _merge_status(self, order: Order, now: int, source: str, venue_order_id: str | None, found: bool,
                      status: OrderStatus, price: int, qty: int, filled: int, reason: str | None, exch_ts: int):
        """`_merge_state` of a state given by its fields (`VenueOrderState`'s; a simulated
        venue's row comes here without building one)."""
        query = source == "query"
        if query:
            order.lookup_pending = False
        current = order.venue_order_id
        replacement = False
        if current is None:
            if venue_order_id:
                order.venue_order_id = current = venue_order_id
        elif venue_order_id and venue_order_id != current:
            if venue_order_id in order.replaced:  # a report of a venue order an amend replaced
                return self._replaced_report(order, venue_order_id, status, filled, source, exch_ts, now)
            if found and status not in _TERMINAL_EVENTS and self._amend_in_flight(order):
                # the cancel-replace's new venue order, before its command's reply: the
                # amend is applied (the venue shows the replacement), the old id retired
                self._retire(order, venue_order_id, now, source)
                replacement = True
        if (status is _CANCELLED_STATUS and source in _LIVE_SOURCES and venue_order_id == order.venue_order_id
                and order.is_open and self._amend_in_flight(order)):
            # a live venue's cancel-replace reports the old venue order CANCELED before (or
            # after) its reply; while the amend is in flight that may be its cancel part:
            # held until the amend's outcome (or the replacement's report) says which
            order.held_end = (venue_order_id, status, price, qty, filled, reason, exch_ts, source)
            self.audit.write(now, "held", client_id=order.client_id, record=status.name,
                             venue_order_id=venue_order_id, source=source, exch_ts=exch_ts)
            return None
        base = 0
        if order.replaced:  # the current venue order counts from 0: the chain's lots before it
            base = sum(order.replaced.values())
            filled += base
            qty += base
        if not found:
            return self._not_found(order, source, exch_ts, now)
        if filled > order.venue_filled:
            order.venue_filled = filled
        update = None
        verdict = merge_status(order.status, status, query)  # the rule the compiled loop runs too
        if status in _TERMINAL_EVENTS:
            if verdict == MERGE_END:
                if order.ack_ts is None:
                    order.ack_ts = now
                if reason is None and status is _CANCELLED_STATUS and self.cancel_in_flight(order):
                    # the venue's report of our cancel overtook its reply (the reply sets
                    # `user_cancel`): the same reason whichever arrives first
                    reason = _USER_CANCEL
                order.ambiguous.clear()
                self.oms.set_status(order, status, now, reason)
                self._response(order, now, _TERMINAL_EVENTS[status], reason, exch_ts, source)
                update = self._closed(order, now, _TERMINAL_EVENTS[status])
            elif verdict == MERGE_STALE:  # a second, different end, or a reject after the ack
                self._stale(order, now, status, source, exch_ts)
        else:  # ACKNOWLEDGED, PARTIALLY_FILLED or FILLED: the order exists at the venue
            order.ambiguous.discard(_SUBMIT)
            if order.ack_ts is None:
                order.ack_ts = now
            if verdict == MERGE_CONFIRM:
                self._response(order, now, Event.ACKNOWLEDGED, reason, exch_ts, source)
                update = self._confirm(order, now)
            elif verdict == MERGE_STALE and not (base and status is _ACK_STATUS and filled == base):
                # older than what the order shows (not a replacement's own NEW after the
                # chain's fills: that one is new, its order is part-filled by the old ids)
                self._stale(order, now, status, source, exch_ts)
            if order.is_open and (replacement or self._amend_seen(order, price, qty)):
                # a replacement shows the amend applied whatever its size: the venue sized it
                # on the fills known when the request left (a fill racing the amend adds to it)
                self._pop_request(order, _AMEND, None if replacement else (price, qty))
                order.price, order.qty = price, qty
                order.ambiguous.discard(_AMEND)
                update = self._update(order, now, Event.AMENDED)
            elif query and order.is_open and order.ambiguous & {_CANCEL, _AMEND}:
                # the answer shows the order as it was: the cancel/amend never arrived
                command = _CANCEL if _CANCEL in order.ambiguous else _AMEND
                order.ambiguous.discard(command)
                self._pop_request(order, command)
                update = self._update(order, now, Event.CANCEL_REJECTED if command == _CANCEL
                                      else Event.AMEND_REJECTED, reason=_NOT_RECEIVED)
            elif base and order.is_open and qty != order.qty and venue_order_id == order.venue_order_id \
                    and not self._amend_in_flight(order):
                # the replacement was sized on the fills known when the amend left: the old
                # venue order filled more meanwhile, so the order's total is the chain's
                # fills plus the replacement's size, not the quantity asked
                self.audit.write(now, "replaced_size", client_id=order.client_id, qty=qty, was=order.qty,
                                 source=source)
                order.qty = qty
        if order.venue_filled > order.filled:  # `order.owed` > 0, without the property's call (every state)
            if query:  # the venue's own answer lists fewer fills than it counts
                self.audit.write(now, "fills_owed", client_id=order.client_id, owed=order.owed)
            else:
                self._lookup(order, now, "fills owed")
        return update

    def _merge_fill(self, order: Order, fill: VenueFill, now: int, leaves: int | None):
        """Book one reported fill unless its trade id was booked before; returns the update or None."""
        return self._book_fill(order, fill.venue_order_id, fill.trade_id, fill.price, fill.qty, fill.fee,
                               fill.fee_asset, _LIQUIDITY.get(fill.liquidity, "taker"), fill.exch_ts, fill.source,
                               now, leaves)

    def _book_fill(self, order: Order, venue_order_id: str | None, trade_id: str, price: int, lots: int,
                   fee: Decimal, fee_asset: str, liquidity: str, exch_ts: int, source: str, now: int,
                   leaves: int | None, fee_quote: Decimal | None = None):
        """Book one fill once per (instrument, trade id): the `BookedFill` is built here,
        once, and handed to its listeners in order: the OMS (order and status), the ledger,
        the parent order (`_hand_fill`), the audit log, the recorder, then risk and the
        strategy through the returned `OrderUpdate` (None for a duplicate, which is audited
        and dropped). `fee_quote`: the fee valued in quote when the caller knows it
        (`_sim_fill`'s remembered fees), else `Ledger.fee_in_quote` values it here."""
        inst = order.instrument
        key = (inst.id, trade_id)
        trades = self.oms.trades
        if key in trades:
            self.audit.write(now, "duplicate_fill", client_id=order.client_id, trade_id=trade_id, source=source)
            return None
        trades.add(key)
        if venue_order_id and order.venue_order_id is None:
            order.venue_order_id = venue_order_id
        grid = self._grids[inst.id]
        fill_price = grid.prices.get(price)
        if fill_price is None:
            fill_price = grid.price(price)
        fill_qty = grid.qtys.get(lots)
        if fill_qty is None:
            fill_qty = grid.qty(lots)
        if fee_quote is None:
            fee_quote = self.ledger.fee_in_quote(inst, price, fee, fee_asset, self._fee_mark(inst, fee_asset))
        fill = new_booked_fill(client_id=order.client_id, venue_order_id=venue_order_id or order.venue_order_id,
                           trade_id=trade_id, price_ticks=price, lots=lots, price=fill_price, qty=fill_qty, fee=fee,
                           fee_asset=fee_asset, fee_quote=fee_quote, liquidity=liquidity, exch_ts=exch_ts, ts=now,
                           source=source)
        self._hand_fill(order, fill, leaves)
        self._audit_fill(fill, grid)
        self._record_fill(order, fill)
        return self._fill_update(order, fill)

    # -- a booked fill's listeners: every path that books a fill (this merge, the compiled
    # path's bulk pass engine/bulk.py, the session's liquidations and deliveries) hands its
    # one `BookedFill` to these -----------------------------------------------------------
    def _hand_fill(self, order: Order, fill: BookedFill, leaves: int | None) -> bool:
        """The fill's state listeners, in order: the OMS (the order's fills, then its status;
        `leaves` the venue's, None when it gave none), the ledger, the session's fill count,
        the parent order. True when the fill closed the order."""
        done = self.oms.book_fill(order, fill, leaves)
        if done:
            self._in_flight.pop(order.order_no, None)  # the fill closed it
        prebooked = self.oms.prebooked
        if prebooked and order.client_id in prebooked and self.contingent.prebooked(order.client_id, fill.exch_ts):
            self._book_prebooked(order, fill)
        else:
            self.ledger.book_fill(order.instrument, order.side, fill)
        self.fill_count += 1
        if order.parent_id:
            parent = self.oms.parents.get(order.parent_id)
            if parent is not None:
                parent.book_fill(fill)
        return done

    def _book_prebooked(self, order: Order, fill: BookedFill) -> None:
        """A fill a restored order got while no session ran (engine/contingent/manager.py
        `restore_order`, `adopted`): the position and PnL take it, the balances do not (the
        start seeded them from the venue's, which hold it already)."""
        inst = order.instrument
        balances = self.ledger.balances
        keys = {(inst.venue, inst.base), (inst.venue, inst.quote), (inst.venue, fill.fee_asset or inst.quote)}
        kept = {k: balances.get(k) for k in keys}
        self.ledger.book_fill(inst, order.side, fill)
        for key, value in kept.items():
            if value is None:
                balances.pop(key, None)
            else:
                balances[key] = value

    def _audit_fill(self, fill: BookedFill, grid: Any) -> None:
        """The audit log's `fill` record (engine.audit_records.FILL through its compiled
        encoder; the price and quantity texts remembered per grid step), or ENGINE_FILL
        for a fill without a venue trade id (a liquidation or delivery the engine books)."""
        if fill.trade_id is None:
            self.audit.write_shaped(_ENGINE_FILL_RECORD, fill.ts, fill.client_id, fill.exch_ts,
                                    grid.price_text(fill.price_ticks), grid.qty_text(fill.lots),
                                    decimal_str(fill.fee), fill.liquidity)
            return
        self.audit.write_shaped(_FILL_RECORD, fill.ts, fill.client_id, fill.exch_ts, grid.price_text(fill.price_ticks),
                                grid.qty_text(fill.lots), grid.fee_text(fill.fee), fill.fee_asset, fill.liquidity,
                                fill.trade_id)

    def _record_fill(self, order: Order, fill: BookedFill) -> None:
        """The recorder's fills row (fee valued in quote, and as charged in its asset). A
        recorder that takes the row's amounts as text (`RunWriter.fill_texts`: `fill` with
        each amount's `decimal_str`) gets the grid's remembered texts: the price and quantity
        per grid step, the fees per Decimal object (four `decimal_str` a fill otherwise)."""
        recorder = self.recorder
        fill_texts = getattr(recorder, "fill_texts", None)
        if fill_texts is None:
            recorder.fill(order, fill.ts, fill.exch_ts, fill.price, fill.qty, fill.fee_quote, fill.liquidity,
                          fill.fee, fill.fee_asset, fill.trade_id)
            return
        grid = self._grids[order.instrument.id]
        fill_texts(order, fill.ts, fill.exch_ts, grid.price_text(fill.price_ticks), grid.qty_text(fill.lots),
                   grid.fee_text(fill.fee_quote), fill.liquidity, grid.fee_text(fill.fee), fill.fee_asset,
                   fill.trade_id)

    def _fill_update(self, order: Order, fill: BookedFill) -> OrderUpdate:
        """The strategy's `OrderUpdate` of the fill (risk reads it too)."""
        return self._update(order, fill.ts, Event.FILL, fill.price, fill.qty, fill.fee_quote, fill.liquidity,
                            fee_charged=fill.fee, fee_asset=fill.fee_asset)

    # -- helpers -----------------------------------------------------------------------------
    def _confirm(self, order: Order, now: int):
        if order.status != OrderStatus.SUBMITTED:
            return None
        self.oms.set_status(order, OrderStatus.ACKNOWLEDGED, now)
        return self._update(order, now, Event.ACKNOWLEDGED)

    def _closed(self, order: Order, now: int, event: Event):
        self._in_flight.pop(order.order_no, None)
        order.held_end = None
        return self._update(order, now, event)

    # -- cancel-replace amends (Binance spot: the amend is a new venue order under the same
    # client id; the old one is reported CANCELED, by the REST reply and the stream in either
    # order). The client order stays one order: its venue order ids form a chain, the
    # replaced ones kept with what they filled (`Order.replaced`), so their CANCELED never
    # closes it and the replacement's counts continue the chain's -----------------------------
    def cancel_in_flight(self, order: Order) -> bool:
        """True while a cancel of this order was sent and not yet answered (a refused
        cancel is answered: the order may be cancelled again). Read by the session's one
        pending cancel per order, the risk guard, the live driver's shutdown and the
        merge's `user_cancel` reason."""
        return any(request[0] == _CANCEL for request in self._in_flight.get(order.order_no, ()))

    def _amend_in_flight(self, order: Order) -> bool:
        """True while an amend of `order` was sent and not answered (or answered ambiguous)."""
        requests = self._in_flight.get(order.order_no)
        return bool(requests) and any(r[0] == _AMEND for r in requests)

    def _retire(self, order: Order, new_venue_order_id: str, now: int, source: str) -> None:
        """The venue replaced `order`'s venue order by `new_venue_order_id` (cancel-replace):
        the old id is kept with the lots it filled: its held CANCELED's count when one came,
        else the fills booked beyond the chain's earlier parts (a later report of the old id
        raises it, `_replaced_report`)."""
        old = order.venue_order_id
        base = sum(order.replaced.values())
        own = max(order.filled, order.venue_filled) - base
        held = order.held_end
        if held is not None and held[0] == old:
            own = max(own, held[4])
        order.held_end = None
        if old is not None:
            order.replaced[old] = max(own, 0)
        order.venue_order_id = new_venue_order_id
        self.audit.write(now, "replaced", client_id=order.client_id, venue_order_id=old,
                         by=new_venue_order_id, filled=max(own, 0), source=source)

    def _replaced_report(self, order: Order, venue_order_id: str, status: OrderStatus, filled: int, source: str,
                         exch_ts: int, now: int):
        """A report of a venue order an amend replaced (its CANCELED, a late ACK): it does not
        change the client order's status. A larger filled count than the one kept (the old
        order filled while the amend was on its way) adds to the order's total: the
        replacement was sized on the fills known when the amend left."""
        kept = order.replaced[venue_order_id]
        self.audit.write(now, "replaced_report", client_id=order.client_id, venue_order_id=venue_order_id,
                         record=status.name, filled=filled, source=source, exch_ts=exch_ts)
        if filled > kept:
            order.replaced[venue_order_id] = filled
            if order.is_open:
                order.qty += filled - kept
            chain = sum(order.replaced.values())
            if chain > order.venue_filled:
                order.venue_filled = chain
            if order.venue_filled > order.filled and source != "query":
                self._lookup(order, now, "fills owed")
        return None

    def _amend_outcome(self, order: Order, result: CommandResult, now: int, rejected: bool):
        """An amend's answer when the venue may have replaced the order: a confirmation with
        a new venue order id retires the old one (a CANCELED of it held meanwhile was the
        replace's cancel part); a refusal, or a confirmation keeping the id, releases a held
        CANCELED as the order's end (the cancel was not the amend's: the order is gone).
        Returns the strategy's update when the held end closed the order, else None (the
        caller goes on with the amend's own update)."""
        new_id = result.venue_order_id
        if not rejected and new_id and order.venue_order_id and new_id != order.venue_order_id \
                and new_id not in order.replaced:
            self._retire(order, new_id, now, "reply")
            return None
        held = order.held_end
        if held is None or not order.is_open or self._amend_in_flight(order):
            return None
        order.held_end = None
        vid, status, price, qty, filled, reason, exch_ts, source = held
        return self._merge_status(order, now, source, vid, True, status, price, qty, filled, reason, exch_ts)

    def _amend_seen(self, order: Order, price: int, qty: int) -> bool:
        """True when a state showing (price, qty) shows an amend of ours in flight as applied."""
        if order.type is not _LIMIT or (price == order.price and qty == order.qty):
            return False
        return any(r[0] == _AMEND and (r[1], r[2]) == (price, qty)
                   for r in self._in_flight.get(order.order_no, ()))

    def _pop_request(self, order: Order, command: str, values: tuple[int, int] | None = None):
        """Remove the oldest in-flight request of this kind (with these price/qty, if given)."""
        requests = self._in_flight.get(order.order_no)
        if not requests:
            return None
        for i, request in enumerate(requests):
            if request[0] == command and (values is None or (request[1], request[2]) == values):
                del requests[i]
                return request
        return None

    def _not_found(self, order: Order, source: str, exch_ts: int, now: int):
        """A lookup by client id found no such order at the venue."""
        self.audit.write(now, "lookup", client_id=order.client_id, found=False, source=source,
                         status=order.status.name)
        if order.client_id in self.oms.prebooked and order.is_open and order.status != OrderStatus.SUBMITTED:
            # a restored order the venue does not know: the reconciliation reports it
            # (engine/reconcile.py), nothing is assumed (one the previous session never saw
            # acknowledged is a submit the venue never got, below)
            order.evidence = {"lookup": "not found", "source": source, "exch_ts": exch_ts}
            return None
        if order.status == OrderStatus.SUBMITTED and not order.filled:
            # a submit the venue never got (its reply was lost, or it never arrived)
            order.ambiguous.clear()
            order.evidence = {"lookup": "not found", "source": source, "exch_ts": exch_ts}
            if order.ack_ts is None:
                order.ack_ts = now
            self.oms.set_status(order, OrderStatus.REJECTED, now, _NOT_RECEIVED)
            return self._closed(order, now, Event.REJECTED)
        return None

    def _lookup(self, order: Order, now: int, why: str) -> None:
        """Ask the venue for the order by client id, once at a time (never resend it)."""
        if order.lookup_pending:
            return
        venue = self.venues[order.instrument.venue]
        request = getattr(venue, "request_order_state", None)
        self.audit.write(now, "request", action="lookup", client_id=order.client_id, why=why,
                         queryable=request is not None)
        if request is not None:
            order.lookup_pending = True
            request(order, now)

    def _response(self, order: Order, now: int, event: Event, reason: str | None, exch_ts: int,
                  source: str) -> None:
        # audit.write(now, "response", client_id=..., event=..., reason=..., exch_ts=..., source=...)
        # through its compiled shape (every ack and cancel: bench/PROFILE.md 1d)
        self.audit.write_shaped(_STATE_RESPONSE, now, order.client_id, event.value, reason, exch_ts, source)

    def _stale(self, order: Order, now: int, status: OrderStatus, source: str, exch_ts: int) -> None:
        kind = "conflict" if status in TERMINAL_STATUSES else "stale"
        self.audit.write(now, kind, client_id=order.client_id, record=status.name,
                         status=order.status.name, source=source, exch_ts=exch_ts)

    def _fee_mark(self, inst, asset: str) -> Decimal | None:
        """Mid of ASSET/QUOTE on the fill's venue, to value a fee in a third asset (BNB)."""
        if asset in (inst.base, inst.quote):
            return None
        for other in self.instruments.values():
            if other.venue == inst.venue and other.base == asset and other.quote == inst.quote:
                return self._books[other.id].mid
        return None
