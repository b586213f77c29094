"""Bulk bookkeeping of a compiled strategy's log: OMS, exact ledger, equity, audit.

Why: the compiled fast path's numba loop (venues/sim/compiled_nb.py) decides every order
and logs it with the venue's responses; replaying that log through `TradingSession` one
call per order event (ctx.submit, on_order_event: the generic merge of any venue's
reports, an `OrderUpdate` per event for a strategy that has no `on_order`, one audit
write per record) was ~73% of `tickparity backtest` (bench/PROFILE.md section 2a).
`BulkBooks.book` books a stretch of that log in one pass over plain lists: the same
`Order` objects in the session's OMS, the same `Ledger.apply_fill` (exact integers and
Decimal), the same risk engine verdicts and holds, the same run-directory rows, and the
audit records built from `engine.audit_records` (the shapes the per-event path writes)
and appended to the chain once per stretch (`engine.audit.append_records`). The log and
every output are byte-identical to the per-event replay (tests/engine/test_engine_compiled.py).

What it books itself: timers, limit submits (with the numba loop's verdict, taken by the
one implementation of the checks, `engine.risk_nb`), cancels, and the simulated venue's ACK, FILL,
CANCELLED / EXPIRED, REJECTED and CANCEL_REJECTED rows in the order states the per-event
merge takes for them. Any other row, or a row in another state (a fill reported twice, a
late or conflicting state, fills owed, an amend, a lookup answer), is handed to the
session's own entry point (`delegate`), after the records gathered so far are written:
the same objects are updated either way, so the two can alternate row by row.

`unsupported(session)` names what a whole run needs that this pass does not do (then the
driver replays it per event, and summary.json says why): contract instruments, a
reporting currency (quote marks), components or contingent orders, parent orders, a
strategy that listens to order updates, PnL triggers, a session already halted.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from engine import audit_records as R
from engine.audit import append_records
from engine.errors import InternalError
from engine.fees import bps, fill_fee
from engine.ledger import _EXACT
from engine.order_state_nb import MERGE_END, merge_status
from engine.risk_nb import REASON_OF, RISK_MIN_NOTIONAL
from engine.strategy import Strategy
from engine.types import Liquidity, OrderEventKind, OrderStatus, OrderType, TimeInForce
from engine.types.instrument import decimal_str
from engine.types.orders import venue_reason
from engine.venue_merge import new_booked_fill

# log row kinds (venues.sim.compiled_nb LOG_*; the driver passes them in `BulkLog.kind`)
TIMER, SUBMIT, CANCEL, RESP = 1, 2, 3, 4

_ACK = int(OrderEventKind.ACK)
_FILL = int(OrderEventKind.FILL)
_CANCELLED = int(OrderEventKind.CANCELLED)
_EXPIRED = int(OrderEventKind.EXPIRED)
_REJECTED = int(OrderEventKind.REJECTED)
_CANCEL_REJECTED = int(OrderEventKind.CANCEL_REJECTED)
_END = {_CANCELLED: (OrderStatus.CANCELLED, "cancelled"), _EXPIRED: (OrderStatus.EXPIRED, "expired")}
_LIQ = {int(liq): liq for liq in Liquidity}
_LIQ_NAME = {Liquidity.MAKER: "maker", Liquidity.TAKER: "taker"}
_LIQ_JSON = {name: f'"{name}"' for name in ("maker", "taker")}  # the audit record's liquidity text
_TIF_NAME = {int(t): t.name for t in TimeInForce}
_TIF = {int(t): t for t in TimeInForce}
_SUBMITTED, _ACKNOWLEDGED, _PARTIAL, _FILLED = (OrderStatus.SUBMITTED, OrderStatus.ACKNOWLEDGED,
                                               OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED)
_REJECTED_STATUS = OrderStatus.REJECTED


class _ReasonTexts(dict):
    """A venue reason code -> the JSON text of `venue_reason(code)` ("null" for 0),
    computed on first use (an unknown code raises as `venue_reason` does)."""

    def __missing__(self, code: int) -> str:
        text = self[code] = R.json_text(venue_reason(code))
        return text


_REASON_TEXT = _ReasonTexts()


def unsupported(session: Any) -> str | None:
    """Why this session's run cannot be booked in bulk (the driver replays it per event
    then), or None. Checked once, before the run."""
    if any(inst.contract for inst in session.instruments.values()):
        return "contract instruments (margin, funding, liquidations)"
    if session.quote_marks is not None:
        return "equity in a reporting currency (quote marks)"
    if session.host.components:
        return "execution components"
    if session.contingent.legs or session.contingent.groups:
        return "contingent orders"
    if session.oms.parents:
        return "parent orders"
    if type(session.strategy).on_order is not Strategy.on_order:
        return "the strategy listens to order updates"
    cfg = session.risk.config
    if cfg.max_daily_loss is not None or cfg.max_drawdown is not None:
        return "PnL triggers ([risk] max_daily_loss / max_drawdown)"
    if cfg.disable_slippage_bps is not None:
        return "the slippage trigger ([risk] disable_slippage_bps)"
    if session.risk.state.value != "active" or session.guard.pending:
        return "the risk engine is not active at the start"
    if session.gate is not None:
        return "a reconciliation gate (live modes)"
    return None


def agree_with_rows(oms: Any, order_no: int, status: int, k: int) -> None:
    """The OMS's order `order_no` after response row k of the compiled loop's log is in
    `status`, the status the loop's order row showed after it: both ran
    engine.order_state_nb's rules on the same reports, so a difference is our bug
    (InternalError), never the run's data. The bulk pass and the per-event replay check
    every response row of an order the loop numbered."""
    order = oms.by_no.get(order_no)
    if order is None or order.status != status:
        raise InternalError(
            f"compiled fast path: order {order_no} after log row {k} is "
            f"{'unknown' if order is None else order.status.name} in the OMS, "
            f"{OrderStatus(status).name} in the loop's order rows")


class BulkLog:
    """One stretch of the compiled loop's log as Python lists (one per column, converted
    once with `ndarray.tolist`): the columns named in `COLUMNS`, `snap[k]` the local top
    of book of every instrument (4 ints each: bid, bid qty, ask, ask qty) at row k.
    `status[k]`: a response row's order status after it, as the loop's order rows hold it
    (engine.order_state_nb; -1 for an order the loop did not number)."""

    COLUMNS = ("kind", "ts", "order_no", "inst", "side", "qty", "price", "tif", "risk",
               "exch_ts", "r_order_no", "r_kind", "liq", "reason", "r_price", "r_qty", "filled", "leaves", "order_price",
               "status")
    __slots__ = (*COLUMNS, "snap", "n")

    def __init__(self, columns: dict[str, list[int]], snap: list[list[int]], n: int) -> None:
        for name in self.COLUMNS:
            setattr(self, name, columns[name])
        self.snap = snap
        self.n = n


class BulkBooks:
    """Books the compiled loop's log into `session` (see the module docstring).

    `venues`: per instrument index, the replay venue whose `snapshot` the session's book
    views and risk engine read; `adapter`: the CompiledAdapter (its submit/cancel counts);
    `delegate(k)`: the per-event replay of response row k (session.on_order_event and the
    equity sample after a fill)."""

    def __init__(self, session: Any, venues: list[Any], adapter: Any) -> None:
        self.s = session
        self.venues = venues
        self.adapter = adapter
        self.records: list[tuple[str, tuple[int, ...], tuple[str, ...]]] = []
        self.delegated = 0
        self.booked = 0
        self._specs = [session.instruments[i] for i in session.instruments]
        self._venue_of = [session.venues[inst.venue] for inst in self._specs]
        self._fees: dict[tuple, tuple] = {}  # (inst, side, price, lots, liq) -> fee, asset, texts
        self._qty: dict[tuple[int, int], tuple[Any, str]] = {}  # (inst, lots) -> Decimal, text
        self._px: dict[tuple[int, int], tuple[Any, str]] = {}  # (inst, ticks) -> Decimal, text
        self._inst_text = [R.json_text(inst.id) for inst in self._specs]
        self._venue_text = [R.json_text(inst.venue) for inst in self._specs]
        self._t_decision = R.SUBMIT_DECISION.template()
        self._t_request = R.SUBMIT_REQUEST.template()
        self._t_cancel = R.CANCEL_REQUEST.template()
        self._t_reject = R.REJECT.template()
        self._t_state = R.STATE_RESPONSE.template()
        self._t_fill = R.FILL.template()
        self.equity = SpotEquity(session)
        self._fill_texts = getattr(session.recorder, "fill_texts", None)
        self._cid_texts: dict[int, str] = {}  # order number -> its client id's JSON text

    def _cid_text(self, order: Any) -> str:
        """The JSON text of an order's client id (kept from its submit; an order this pass
        did not submit gets it here)."""
        text = self._cid_texts.get(order.order_no)
        if text is None:
            text = self._cid_texts[order.order_no] = R.json_text(order.client_id)
        return text

    # -- cached values ------------------------------------------------------------------
    def _qty_of(self, i: int, lots: int) -> tuple[Any, str]:
        key = (i, lots)
        found = self._qty.get(key)
        if found is None:
            qty = self._specs[i].lots_to_qty(lots)
            found = self._qty[key] = (qty, R.json_text(qty))
        return found

    def _price_of(self, i: int, ticks: int) -> tuple[Any, str]:
        key = (i, ticks)
        found = self._px.get(key)
        if found is None:
            if len(self._px) > 1 << 16:
                self._px.clear()
            price = self._specs[i].ticks_to_price(ticks)
            found = self._px[key] = (price, R.json_text(price))
        return found

    def _fee_of(self, i: int, side: int, ticks: int, lots: int, liq: Liquidity) -> tuple:
        key = (i, side, ticks, lots, liq)
        found = self._fees.get(key)
        if found is None:
            if len(self._fees) > 1 << 16:
                self._fees.clear()
            inst = self._specs[i]
            venue = self._venue_of[i]
            fee, asset = fill_fee(inst, side, ticks, lots, liq, bps(venue.maker_fee_bps), bps(venue.taker_fee_bps),
                                  getattr(venue, "fee_asset", "quote"))
            quote = None
            if asset in (inst.base, inst.quote):  # a third asset (BNB) needs a mark: per event
                quote = self.s.ledger.fee_in_quote(inst, ticks, fee, asset, None)
            found = self._fees[key] = (fee, asset, quote, R.json_text(fee), R.json_text(asset),
                                       None if quote is None else decimal_str(quote))
        return found

    # -- the pass ------------------------------------------------------------------------
    def flush(self) -> None:
        """Write the records gathered so far to the audit chain."""
        if self.records:
            append_records(self.s.audit, self.records)
            self.records = []

    def book(self, log: BulkLog, delegate: Callable[[int], None]) -> None:
        """Book rows 0..n-1 of `log` in order; rows this pass does not book go to `delegate`."""
        s = self.s
        clock = s.clock
        venues = self.venues
        kinds, tss, snaps, statuses = log.kind, log.ts, log.snap, log.status
        k = 0
        n = log.n
        try:
            while k < n:
                kind = kinds[k]
                snap = snaps[k]
                for v in venues:
                    v.snapshot = snap
                if kind == TIMER:
                    due_now = log.order_no[k]  # timer rows: the wake's local time
                    if due_now > clock.now():
                        clock.advance_to(due_now)
                    self._fire_timer()
                    k += 1
                    while k < n and kinds[k] in (SUBMIT, CANCEL):
                        if kinds[k] == SUBMIT:
                            self._submit(log, k)
                        else:
                            self._cancel(log, k)
                        k += 1
                    continue
                if kind != RESP:
                    raise InternalError(f"compiled fast path: log row {k} of kind {kind} out of place")
                ts = tss[k]
                if ts > clock.now():
                    clock.advance_to(ts)
                if not self._response(log, k):
                    self.flush()
                    self.delegated += 1
                    delegate(k)
                if statuses[k] >= 0:
                    agree_with_rows(s.oms, log.r_order_no[k], statuses[k], k)
                k += 1
        finally:
            self.flush()
            for v in venues:
                v.snapshot = None

    def _fire_timer(self) -> None:
        """`session.fire_timers(now)` without the strategy call: the logged submits and
        cancels that follow are the call's actions."""
        adapter = self.adapter
        replay = adapter.replay
        adapter.replay = _NO_ACTIONS
        try:
            self.s.fire_timers(self.s.clock.now())
        finally:
            adapter.replay = replay

    def _submit(self, log: BulkLog, k: int) -> None:
        """`TradingSession.submit` of a logged limit order (the calls the replay's
        ctx.submit makes, without the OrderUpdate nobody listens to)."""
        s = self.s
        i, number, lots, ticks = log.inst[k], log.order_no[k], log.qty[k], log.price[k]
        side = 1 if log.side[k] > 0 else -1
        inst = self._specs[i]
        tif = _TIF[log.tif[k]]
        now = s.clock.now()
        qty, qty_text = self._qty_of(i, lots)
        price, price_text = self._price_of(i, ticks)
        bid_px, bid_qty, ask_px, ask_qty = s.venues[inst.venue].top_of_book(i)
        best_bid = self._price_of(i, bid_px)[0] if bid_qty > 0 else None
        best_ask = self._price_of(i, ask_px)[0] if ask_qty > 0 else None
        oms = s.oms
        if oms._next_no != number:
            raise InternalError(f"compiled fast path: order number {number} expected, the OMS gives {oms._next_no}")
        order = oms.create(client_id=None, instrument=inst, instrument_index=i, side=side, type=OrderType.LIMIT,
                           tif=tif, price=ticks, qty=lots, post_only=tif == TimeInForce.GTX, reduce_only=False,
                           gtd_ts=0, parent_id=None, created_ts=now, trigger_ts=s._trigger_ts,
                           arrival_bid=best_bid, arrival_ask=best_ask)
        cid = order.client_id
        cid_text = self._cid_texts[number] = R.json_text(cid)
        ts_text = str(now)
        template, order_idx = self._t_decision
        self.records.append((template, order_idx, (ts_text, cid_text, self._inst_text[i],
                                                   '"buy"' if side > 0 else '"sell"', '"limit"',
                                                   f'"{_TIF_NAME[log.tif[k]]}"', qty_text, price_text,
                                                   "false", "null")))
        # the numba loop's verdict: it ran the one implementation of the venue minimums and
        # the per-order risk limits (engine.risk_nb) on this session's limits, rate window
        # and state; refusals by risk (not the venue's minimums) are counted as pre_submit does
        code = log.risk[k]
        reason = REASON_OF[code]
        if reason is None:
            oms.set_status(order, _SUBMITTED, now)
            template, order_idx = self._t_request
            self.records.append((template, order_idx, (ts_text, cid_text, self._venue_text[i])))
            s.guard.sent(order)
        else:
            if code > RISK_MIN_NOTIONAL:
                s.risk.refused(reason)
            reason = str(reason)
            oms.set_status(order, _REJECTED_STATUS, now, reason)
            order.ack_ts = now
            template, order_idx = self._t_reject
            self.records.append((template, order_idx, (ts_text, cid_text, R.json_text(reason))))
        self.adapter.submits += 1
        self.booked += 1

    def _cancel(self, log: BulkLog, k: int) -> None:
        """`TradingSession.cancel` of a logged cancel."""
        s = self.s
        number = log.order_no[k]
        order = s.oms.by_no.get(number)
        if order is None or not order.is_open or order.status == OrderStatus.PENDING:
            raise InternalError(f"compiled fast path: logged cancel of order {number} that the OMS does not hold open")
        now = s.clock.now()
        if s.guard.pre_cancel(now) is not None:
            raise InternalError(f"compiled fast path: Python risk refused the logged cancel of {order.client_id}")
        order.cancel_req_ts = now
        s._in_flight.setdefault(number, deque()).append(("cancel", 0, 0))
        template, order_idx = self._t_cancel
        self.records.append((template, order_idx, (str(now), self._cid_text(order))))
        self.adapter.cancels += 1
        self.booked += 1

    def _response(self, log: BulkLog, k: int) -> bool:
        """Book response row k as `VenueMerge.on_order_event` would; False (nothing
        changed) when the row is not one of the cases booked here."""
        s = self.s
        order = s.oms.by_no.get(log.r_order_no[k])
        if order is None:
            return False
        s._trigger_ts = s.clock.now()
        kind = log.r_kind[k]
        status = order.status
        if kind == _FILL:
            return self._fill(log, k, order)
        if log.filled[k] > order.filled:  # fills owed: the merge looks the order up
            return False
        now = s.clock.now()
        if kind == _ACK:
            if (status != _SUBMITTED or order.ambiguous or order.lookup_pending
                    or (log.order_price[k], log.filled[k] + log.leaves[k]) != (order.price, order.qty)):
                return False
            self._first_report(order, now)
            self._state_record(order, now, "acknowledged", log, k)
            s.oms.set_status(order, _ACKNOWLEDGED, now)
            s.risk.hold(order.client_id, order.instrument_index, order.side, order.qty - order.filled)
        elif kind in _END:
            end, event = _END[kind]
            if merge_status(status, end, False) != MERGE_END or order.lookup_pending:
                return False
            if log.filled[k] > order.venue_filled:
                order.venue_filled = log.filled[k]
            if order.ack_ts is None:
                order.ack_ts = now
            if order.venue_order_id is None:
                order.venue_order_id = str(order.order_no)
            order.ambiguous.clear()
            reason = venue_reason(log.reason[k])
            s.oms.set_status(order, end, now, reason)
            self._state_record(order, now, event, log, k)
            s._in_flight.pop(order.order_no, None)
            s.risk.hold(order.client_id, order.instrument_index, order.side, 0)
        elif kind == _REJECTED:
            if status != _SUBMITTED or order.ambiguous:
                return False
            self._command_record(order, now, "submit", log, k)
            if order.ack_ts is None:
                order.ack_ts = now
            reason = venue_reason(log.reason[k])
            order.evidence = self._evidence(order, log, k) or None
            s.oms.set_status(order, _REJECTED_STATUS, now, reason)
            s._in_flight.pop(order.order_no, None)
            s.risk.hold(order.client_id, order.instrument_index, order.side, 0)
            fired = s.risk.on_venue_reject(now)
            if fired is not None:
                s.guard.apply(now, *fired)
        elif kind == _CANCEL_REJECTED:
            # the oldest request in flight is a cancel, or none is left (the order ended first:
            # the venue refuses the cancel, "already_closed")
            requests = s._in_flight.get(order.order_no)
            if (requests and requests[0][0] != "cancel") or order.ambiguous:
                return False
            self._command_record(order, now, "cancel", log, k)
            if requests:
                del requests[0]
            evidence = self._evidence(order, log, k)
            if evidence:
                order.evidence = evidence
            s.risk.hold(order.client_id, order.instrument_index, order.side, order.leaves)
        else:
            return False
        self.booked += 1
        return True

    def _first_report(self, order: Any, now: int) -> None:
        if order.venue_order_id is None:
            order.venue_order_id = str(order.order_no)
        order.ambiguous.discard("submit")
        if order.ack_ts is None:
            order.ack_ts = now

    def _state_record(self, order: Any, now: int, event: str, log: BulkLog, k: int) -> None:
        template, order_idx = self._t_state
        self.records.append((template, order_idx, (str(now), self._cid_text(order), f'"{event}"',
                                                   _REASON_TEXT[log.reason[k]], str(log.exch_ts[k]), '"sim"')))

    def _evidence(self, order: Any, log: BulkLog, k: int) -> dict[str, Any]:
        code = log.reason[k]
        return {"venue": order.instrument.venue, "code": code, "exch_ts": log.exch_ts[k]} if venue_reason(code) else {}

    def _command_record(self, order: Any, now: int, command: str, log: BulkLog, k: int) -> None:
        if order.venue_order_id is None:
            order.venue_order_id = str(order.order_no)
        reason = venue_reason(log.reason[k])
        shape, values = R.command_response(order.client_id, command, "rejected", reason, log.exch_ts[k],
                                           self._evidence(order, log, k))
        template, order_idx = shape.template()
        self.records.append((template, order_idx, (str(now), *(R.json_text(v) for v in values))))
        order.ambiguous.discard(command)

    def _fill(self, log: BulkLog, k: int, order: Any) -> bool:
        """`VenueMerge._book_fill` of a simulated FILL row (the same `BookedFill`, handed to
        the same `_hand_fill`; the audit record and fills row from remembered texts), then
        the equity sample."""
        s = self.s
        inst = order.instrument
        trade_id = f"{order.order_no}.{log.filled[k]}"
        key = (inst.id, trade_id)
        trades = s.oms.trades
        code = log.liq[k]
        liq = _LIQ.get(code)
        if key in trades or liq is None or not order.is_open:
            return False
        i = order.instrument_index
        ticks, lots = log.r_price[k], log.r_qty[k]
        fee, asset, fee_quote, fee_text, asset_text, quote_text = self._fee_of(i, order.side, ticks, lots, liq)
        if fee_quote is None:
            return False
        now = s.clock.now()
        trades.add(key)
        if order.venue_order_id is None:
            order.venue_order_id = str(order.order_no)
        fill_price, price_text = self._price_of(i, ticks)
        fill_qty, qty_text = self._qty_of(i, lots)
        exch_ts = log.exch_ts[k]
        # the one booked fill, handed to the listeners the per-event merge hands it to
        # (engine/venue_merge.py): OMS, ledger and parent order; the audit record and the
        # fills row from the texts remembered per price, quantity and fee
        fill = new_booked_fill(client_id=order.client_id, venue_order_id=order.venue_order_id, trade_id=trade_id,
                               price_ticks=ticks, lots=lots, price=fill_price, qty=fill_qty, fee=fee, fee_asset=asset,
                               fee_quote=fee_quote, liquidity=_LIQ_NAME.get(liq, "taker"), exch_ts=exch_ts, ts=now,
                               source="sim")
        s._hand_fill(order, fill, log.leaves[k])
        template, order_idx = self._t_fill
        cid_text = self._cid_texts.get(order.order_no) or self._cid_text(order)
        liquidity = fill.liquidity
        self.records.append((template, order_idx, (str(now), cid_text, str(exch_ts), price_text, qty_text, fee_text,
                                                   asset_text, _LIQ_JSON[liquidity], f'"{trade_id}"')))
        if self._fill_texts is not None:  # RunWriter: the texts are at hand (JSON strings without quotes)
            self._fill_texts(order, now, exch_ts, price_text[1:-1], qty_text[1:-1], quote_text, liquidity,
                             fee_text[1:-1], asset, trade_id)
        else:
            s._record_fill(order, fill)
        s.risk.hold(order.client_id, i, order.side, order.leaves)
        self.equity.sample()
        self.booked += 1
        return True


class SpotEquity:
    """`TradingSession.sample_equity` for the runs `BulkBooks` covers (spot instruments,
    quote assets 1:1, no PnL triggers), from the ledger's own state with the ledger's own
    Decimal operations (`Ledger.equity`, `unrealized_pnl`, `realized_pnl`, `fees`), so the
    figures are the same numbers with the same digits. What it saves is the generic work
    per sample: the book views, the marks dict, contract and reporting-currency lookups,
    and the text of realized PnL, fees and positions, which change only with a fill (kept
    until `session.fill_count` moves). tests/engine/test_engine_bulk.py checks it against
    the ledger on random fill sequences."""

    def __init__(self, session: Any) -> None:
        self.s = session
        self.ledger = session.ledger
        self._ids = list(session.instruments)
        self._specs = [session.instruments[i] for i in self._ids]
        self._venues = [inst.venue for inst in self._specs]
        self._positions = [self.ledger.positions[i] for i in self._ids]
        self._mids: dict[tuple[int, int], tuple[Decimal, float, int]] = {}
        self._layout: tuple[Any, list[tuple[tuple[str, str], list[int] | None]]] = (None, [])
        self._fills = -1
        self._cached: tuple = ()
        self._last: tuple | None = None  # (bid + ask per instrument, (equity, unrealized)) of the last sample
        self._texts = getattr(session.recorder, "equity_texts", None)

    def _mid(self, i: int) -> tuple[Decimal, float, int] | None:
        """(mid, its float, bid + ask in ticks) of instrument i's local book, or None."""
        bid, bid_qty, ask, ask_qty = self.s.venues[self._venues[i]].top_of_book(i)
        if bid_qty <= 0 or ask_qty <= 0:
            return None
        key = (i, bid + ask)
        found = self._mids.get(key)
        if found is None:
            if len(self._mids) > 1 << 16:
                self._mids.clear()
            mid = self._specs[i].ticks_to_price(bid + ask) / 2  # BookView.mid
            found = self._mids[key] = (mid, float(mid), bid + ask)
        return found

    def _keys(self) -> list[tuple[tuple[str, str], list[int] | None]]:
        """The ledger's own equity terms (`Ledger._equity_layout`: each balance key, sorted,
        None for a quote asset, else the instruments whose base it is, in instrument order),
        with instruments as this sample's indexes. Rebuilt when the ledger rebuilt its
        layout (a balance or an instrument added)."""
        layout = self.ledger._equity_layout()
        if self._layout[0] is not layout:
            index = {inst_id: k for k, inst_id in enumerate(self._ids)}
            self._layout = (layout, [(key, None if marked_by is None else
                                      [index[i] for i, _quote in marked_by if i in index])
                                     for key, _asset, marked_by in layout])
        return self._layout[1]

    def _state(self) -> tuple:
        """What a sample needs from the ledger, kept until `session.fill_count` moves (the
        ledger changes only with a fill): the quote balances summed (Decimal(0) + each, as
        `Ledger.equity` adds them: the sum of exact Decimals has the same value and exponent
        in any order), the base balances with the instruments that mark them, each open
        position's (instrument, qty, cost value), and the texts of realized PnL, fees and
        positions."""
        ledger = self.ledger
        balances = ledger.balances
        quote_total = Decimal(0)
        marked = []
        for key, marked_by in self._keys():
            if marked_by is None:
                quote_total = _EXACT.add(quote_total, balances[key])
            else:
                marked.append((balances[key], marked_by))
        positions = [(k, pos.qty, pos.cost_value()) for k, pos in enumerate(self._positions) if pos.lots != 0]
        texts = None
        if self._texts is not None:
            texts = (decimal_str(ledger.realized_pnl()), decimal_str(ledger.fees()),
                     [decimal_str(pos.qty) for pos in self._positions])
        return quote_total, marked, positions, texts

    def sample(self) -> None:
        """One equity sample at the clock's time, to the recorder (as sample_equity).

        The same Decimal operations as `Ledger.equity` / `Ledger.unrealized_pnl` (each
        position's `qty * mid - cost * unit`, each base balance times the first mid that
        marks it), with the ledger's part taken once per fill (`_state`) and the texts of
        one (fill count, mids) remembered: samples between two fills at an unchanged
        touch are the same figures."""
        s = self.s
        now = s.clock.now()
        mids = [self._mid(i) for i in range(len(self._ids))]
        fills = s.fill_count
        if self._fills != fills:
            self._fills = fills
            self._cached = self._state()
            self._last = None
        quote_total, marked, positions, texts = self._cached
        key = tuple(None if m is None else m[2] for m in mids)
        last = self._last
        if last is not None and last[0] == key:
            figures = last[1]
        else:
            unrealized = Decimal(0)
            for k, qty, cost in positions:
                mid = mids[k]
                if mid is not None:  # Position.unrealized
                    unrealized = _EXACT.add(unrealized, _EXACT.subtract(_EXACT.multiply(qty, mid[0]), cost))
            total = quote_total
            for balance, marked_by in marked:
                for k in marked_by:  # the first instrument with a mark marks the base
                    if mids[k] is not None:
                        total = _EXACT.add(total, _EXACT.multiply(balance, mids[k][0]))
                        break
            figures = (total, unrealized) if texts is None else (decimal_str(total), decimal_str(unrealized))
            self._last = (key, figures)
        total, unrealized = figures
        if texts is None:
            ledger = self.ledger
            out = [(inst_id, pos.qty, mid[1] if mid is not None else float("nan"))
                   for inst_id, pos, mid in zip(self._ids, self._positions, mids, strict=True)]
            s.recorder.equity(now, total, ledger.realized_pnl(), unrealized, ledger.fees(), out)
            return
        realized, fees, qtys = texts
        self._texts(now, total, realized, unrealized, fees,
                    [(inst_id, qty, mid[1] if mid is not None else float("nan"))
                     for inst_id, qty, mid in zip(self._ids, qtys, mids, strict=True)])


class _NoActions:
    """A CompiledAdapter's `replay` while `BulkBooks` fires its timer: the call's actions
    are the logged rows that follow, booked by `BulkBooks` itself."""

    def on_timer(self, ctx: Any, ts: int) -> None:
        return None


_NO_ACTIONS = _NoActions()
