"""`CcxtVenue`: the QueryableVenue protocol over ccxt async / ccxt.pro (testnet and live).

Why a thin, non-blocking adapter: the session calls `submit`/`cancel`/`amend` synchronously
from a strategy callback; the venue answers over the network. Each call here starts an
asyncio task and returns at once; every answer — the REST reply, the user stream's
executionReports and trades, a lookup — becomes a typed record of
`engine.types.venue_reports` handed to `sink`, which the live driver applies to the session
at its next step (and records, for `tickparity replay`). Outcomes are classified here only
as far as the exception class says (ccxt's network errors are ambiguous, its exchange errors
are rejections with the venue's evidence); resolving an ambiguous outcome is the OMS's job,
through `request_order_state`, never a blind resubmit.

ccxt vocabulary (unified API, https://docs.ccxt.com): `create_order(symbol, type, side,
amount, price, params)` with `newClientOrderId`, `timeInForce` (GTC/IOC/FOK), `postOnly`;
`edit_order` is Binance spot's cancelReplace (the order loses its queue priority, as on the
venue); statuses open/closed/canceled/expired/rejected.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import numpy as np

from engine.oms import Order
from engine.types import Instrument, Liquidity, OrderStatus, OrderType, TimeInForce
from engine.types.venue_reports import Command, CommandResult, Outcome, VenueFill, VenueOrderState

NS_PER_MS = 1_000_000

_STATUS = {"canceled": OrderStatus.CANCELLED, "expired": OrderStatus.EXPIRED,
           "rejected": OrderStatus.REJECTED}

# ccxt exception class name -> the engine's reason code (engine.types.orders.ReasonCode values)
_REASONS = {"InsufficientFunds": "insufficient_balance", "OrderImmediatelyFillable": "post_only_would_take",
            "OrderNotFound": "unknown_order", "InvalidOrder": None, "BadRequest": None}


def order_status(order: dict[str, Any], filled: int) -> OrderStatus:
    """A ccxt unified order's status as the engine's (open + fills = partially filled)."""
    status = order.get("status")
    if status == "open":
        return OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.ACKNOWLEDGED
    if status == "closed":
        return OrderStatus.FILLED
    return _STATUS.get(status, OrderStatus.ACKNOWLEDGED)


def classify_error(exc: BaseException) -> tuple[Outcome, str | None, dict[str, Any]]:
    """(outcome, reason code, evidence) of a ccxt exception raised by a command.

    Network-class errors (timeouts, 5xx, lost connections, 429s) leave the venue's state
    unknown: ambiguous. Exchange-class errors are the venue's refusal: rejected, with the
    exception's class and message (which carries the venue's code) as evidence.
    """
    import ccxt

    evidence = {"error": type(exc).__name__, "message": str(exc)[:500]}
    if isinstance(exc, ccxt.NetworkError):
        return Outcome.AMBIGUOUS, None, evidence
    if isinstance(exc, ccxt.ExchangeError):
        for cls in type(exc).__mro__:
            if cls.__name__ in _REASONS:
                return Outcome.REJECTED, _REASONS[cls.__name__], evidence
        return Outcome.REJECTED, None, evidence
    return Outcome.AMBIGUOUS, None, evidence


class CcxtVenue:
    """One ccxt venue for the engine (see module doc).

    `exchange`: a ccxt.pro exchange instance (markets loaded by `start`); `instruments`: the
    run's instruments on this venue, by session index; `book`: the local book (a push-mode
    SimCore: `local_bbo`, `local_levels`); `sink(report)`: where records go; `clock()`: the
    local time stamped on records (the driver's LiveClock); `on_round_trip(send_ns,
    exch_ns, reply_ns, command)`: each measured order round trip (the latency file).
    """

    def __init__(self, name: str, exchange: Any, instruments: dict[int, Instrument], book: Any,
                 sink: Callable[[Any], None], clock: Callable[[], int], *,
                 maker_fee_bps: Decimal = Decimal(0), taker_fee_bps: Decimal = Decimal(0),
                 on_round_trip: Callable[[int, int | None, int, str], None] | None = None,
                 on_error: Callable[[str, BaseException], None] | None = None) -> None:
        self.name = name
        self.exchange = exchange
        self.instruments = dict(instruments)
        self._by_symbol = {inst.symbol: (i, inst) for i, inst in self.instruments.items()}
        self.book = book
        self.sink = sink
        self.clock = clock
        self.maker_fee_bps = maker_fee_bps
        self.taker_fee_bps = taker_fee_bps
        self.on_round_trip = on_round_trip or (lambda *a: None)
        self.on_error = on_error or (lambda what, exc: None)
        self.tasks: set[asyncio.Task] = set()
        self.venue_ids: dict[str, str] = {}  # client id -> venue order id
        self.in_flight = 0

    # -- the Venue protocol ------------------------------------------------------------
    def submit(self, order: Order, ts: int) -> None:
        self._spawn(self._submit(order))

    def cancel(self, order: Order, ts: int) -> None:
        self._spawn(self._cancel(order))

    def amend(self, order: Order, price: int, qty: int, ts: int) -> None:
        self._spawn(self._amend(order, price, qty))

    def top_of_book(self, instrument_index: int) -> tuple[int, int, int, int]:
        return self.book.local_bbo(instrument_index)

    def levels(self, instrument_index: int, side: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        return self.book.local_levels(instrument_index, side, n)

    # -- QueryableVenue ----------------------------------------------------------------
    def request_order_state(self, order: Order, ts: int) -> None:
        self._spawn(self._lookup(order.instrument, order.client_id))

    def request_open_orders(self, ts: int) -> None:
        self._spawn(self._open_orders())

    def request_balances(self, ts: int) -> None:
        self._spawn(self._balances())

    def push(self, rows: np.ndarray) -> None:  # market rows go to the local book, not here
        self.book.push(rows)

    # -- async work --------------------------------------------------------------------
    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _submit(self, order: Order) -> None:
        inst = order.instrument
        cid = order.client_id
        params: dict[str, Any] = {"newClientOrderId": cid}
        price = None
        if order.type == OrderType.MARKET:
            otype = "market"
        else:
            otype = "limit"
            price = float(inst.ticks_to_price(order.price))
            if order.tif == TimeInForce.GTX:
                params["postOnly"] = True
            elif order.tif in (TimeInForce.IOC, TimeInForce.FOK):
                params["timeInForce"] = order.tif.name
            elif order.tif == TimeInForce.GTD:
                self.sink(CommandResult(cid, Command.SUBMIT, Outcome.REJECTED, self.clock(), reason="invalid_qty",
                                        evidence={"message": "GTD is not offered by this venue's spot API"}))
                return
        amount = float(inst.lots_to_qty(order.qty))
        side = "buy" if order.side > 0 else "sell"
        sent = self.clock()
        self.in_flight += 1
        try:
            reply = await self.exchange.create_order(inst.symbol, otype, side, amount, price, params)
        except Exception as exc:  # ccxt's errors are classified; anything else is ambiguous too
            self._failed(cid, Command.SUBMIT, exc)
            return
        finally:
            self.in_flight -= 1
        now = self.clock()
        exch = reply.get("timestamp")
        self.on_round_trip(sent, None if exch is None else int(exch) * NS_PER_MS, now, "submit")
        if not reply.get("id"):  # a truncated body parses as an order without an id
            self.sink(CommandResult(cid, Command.SUBMIT, Outcome.AMBIGUOUS, now,
                                    evidence={"message": "reply without an order id", "info": _info(reply)}))
            return
        self.venue_ids[cid] = str(reply["id"])
        self.sink(CommandResult(cid, Command.SUBMIT, Outcome.CONFIRMED, now, venue_order_id=str(reply["id"]),
                                evidence={"info": _info(reply)}))
        self._order_records(inst, reply, now, "rest", cid)

    async def _cancel(self, order: Order) -> None:
        inst = order.instrument
        cid = order.client_id
        sent = self.clock()
        try:
            reply = await self.exchange.cancel_order(self.venue_ids.get(cid), inst.symbol,
                                                     {} if cid in self.venue_ids else {"origClientOrderId": cid})
        except Exception as exc:
            self._failed(cid, Command.CANCEL, exc)
            return
        now = self.clock()
        self.on_round_trip(sent, None, now, "cancel")
        self.sink(CommandResult(cid, Command.CANCEL, Outcome.CONFIRMED, now, venue_order_id=str(reply.get("id")),
                                evidence={"info": _info(reply)}))
        self._order_records(inst, reply, now, "rest", cid)

    async def _amend(self, order: Order, price: int, qty: int) -> None:
        inst = order.instrument
        cid = order.client_id
        sent = self.clock()
        try:
            reply = await self.exchange.edit_order(
                self.venue_ids.get(cid), inst.symbol, "limit", "buy" if order.side > 0 else "sell",
                float(inst.lots_to_qty(qty)), float(inst.ticks_to_price(price)),
                {"cancelReplaceMode": "STOP_ON_FAILURE", "newClientOrderId": cid,
                 "cancelOrigClientOrderId": cid})
        except Exception as exc:
            self._failed(cid, Command.AMEND, exc)
            return
        now = self.clock()
        self.on_round_trip(sent, None, now, "amend")
        if reply.get("id"):
            self.venue_ids[cid] = str(reply["id"])
        self.sink(CommandResult(cid, Command.AMEND, Outcome.CONFIRMED, now, venue_order_id=str(reply.get("id")),
                                evidence={"info": _info(reply)}))

    def _failed(self, cid: str, command: Command, exc: BaseException) -> None:
        outcome, reason, evidence = classify_error(exc)
        if outcome == Outcome.AMBIGUOUS:  # a refusal is an answer, not a venue error
            self.on_error(f"{command.value} {cid}", exc)
        self.sink(CommandResult(cid, command, outcome, self.clock(), reason=reason, evidence=evidence))

    async def _lookup(self, inst: Instrument, cid: str) -> None:
        import ccxt

        try:
            reply = await self.exchange.fetch_order(self.venue_ids.get(cid), inst.symbol,
                                                    {} if cid in self.venue_ids else {"origClientOrderId": cid})
        except ccxt.OrderNotFound:
            self.sink(VenueOrderState(cid, None, OrderStatus.REJECTED, 0, 0, 0, self.clock(), self.clock(),
                                      source="query", found=False))
            return
        except Exception as exc:
            self.on_error(f"lookup {cid}", exc)
            return
        now = self.clock()
        self.venue_ids[cid] = str(reply["id"])
        if reply.get("filled"):
            try:
                trades = await self.exchange.fetch_my_trades(inst.symbol, params={"orderId": reply["id"]})
            except Exception as exc:
                self.on_error(f"my trades {cid}", exc)
                trades = []
            for t in trades:
                self._fill_record(inst, t, cid, str(reply["id"]), now, "query")
        self.sink(self._state(inst, reply, now, "query", cid))

    async def _open_orders(self) -> None:
        try:
            orders = await self.exchange.fetch_open_orders()
        except Exception as exc:
            self.on_error("open orders", exc)
            return
        now = self.clock()
        for o in orders:
            entry = self._by_symbol.get(o.get("symbol"))
            if entry is not None:
                self.sink(self._state(entry[1], o, now, "query", str(o.get("clientOrderId"))))

    async def _balances(self) -> None:
        try:
            balance = await self.exchange.fetch_balance()
        except Exception as exc:
            self.on_error("balances", exc)
            return
        self.sink(("balances", self.name, {a: (Decimal(str(v.get("free") or 0)), Decimal(str(v.get("used") or 0)))
                                           for a, v in balance.items() if isinstance(v, dict) and "free" in v}))

    # -- user stream -------------------------------------------------------------------
    async def watch_orders(self) -> None:
        """Forever: executionReports as VenueOrderState records (and their fills)."""
        await watch_loop(self.exchange.watch_orders, self._on_orders, self.on_error, "user stream (orders)")

    async def watch_my_trades(self) -> None:
        """Forever: our trades from the user stream as VenueFill records (the client id is
        the executionReport's `c`, else the venue order id's known client id)."""
        await watch_loop(self.exchange.watch_my_trades, self._on_my_trades, self.on_error, "user stream (trades)")

    def _on_orders(self, orders: list[dict[str, Any]]) -> None:
        now = self.clock()
        for o in orders:
            entry = self._by_symbol.get(o.get("symbol"))
            if entry is not None:
                self._order_records(entry[1], o, now, "stream", str(o.get("clientOrderId")))

    def _on_my_trades(self, trades: list[dict[str, Any]]) -> None:
        now = self.clock()
        by_venue_id = {v: c for c, v in self.venue_ids.items()}
        for t in trades:
            entry = self._by_symbol.get(t.get("symbol"))
            info = t.get("info") or {}
            oid = str(t.get("order"))
            cid = (info.get("c") if isinstance(info, dict) else None) or by_venue_id.get(oid)
            if entry is not None and cid:
                self._fill_record(entry[1], t, str(cid), oid, now, "stream")

    def _order_records(self, inst: Instrument, o: dict[str, Any], now: int, source: str, cid: str) -> None:
        """The fills an order reply/report carries, then its state (fills first: the OMS
        books fills only from fill records and a state may close the order)."""
        oid = str(o.get("id"))
        for t in o.get("trades") or ():
            self._fill_record(inst, t, cid, oid, now, source)
        self.sink(self._state(inst, o, now, source, cid))

    def _fill_record(self, inst: Instrument, t: dict[str, Any], cid: str, oid: str, now: int, source: str) -> None:
        fee = t.get("fee") or {}
        if t.get("id") is None:
            return  # a fill without a trade id cannot be deduplicated: the query finds it
        self.sink(VenueFill(
            client_id=cid, venue_order_id=oid, trade_id=str(t["id"]),
            price=inst.price_to_ticks(Decimal(repr(float(t["price"])))),
            qty=inst.qty_to_lots(Decimal(repr(float(t["amount"])))),
            fee=Decimal(repr(float(fee.get("cost") or 0))), fee_asset=str(fee.get("currency") or inst.quote),
            liquidity=Liquidity.MAKER if t.get("takerOrMaker") == "maker" else Liquidity.TAKER,
            exch_ts=int(t.get("timestamp") or 0) * NS_PER_MS, local_ts=now, source=source))

    def _state(self, inst: Instrument, o: dict[str, Any], now: int, source: str, cid: str) -> VenueOrderState:
        filled = inst.qty_to_lots(Decimal(repr(float(o.get("filled") or 0))))
        price = o.get("price")
        return VenueOrderState(
            client_id=cid, venue_order_id=None if o.get("id") is None else str(o["id"]),
            status=order_status(o, filled),
            price=inst.price_to_ticks(Decimal(repr(float(price)))) if price else 0,
            qty=inst.qty_to_lots(Decimal(repr(float(o.get("amount") or 0)))), filled=filled,
            exch_ts=int(o.get("lastUpdateTimestamp") or o.get("timestamp") or 0) * NS_PER_MS,
            local_ts=now, source=source)

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def watch_loop(watch: Callable[[], Awaitable[Any]], handle: Callable[[Any], None],
                     on_error: Callable[[str, BaseException], None], what: str, pause_s: float = 0.2) -> None:
    """Forever: `handle(await watch())`. A ccxt error (socket closed, checksum gap, a
    terminated user stream) is reported through `on_error`; the next watch reconnects and
    resubscribes (ccxt.pro does both, with a fresh book snapshot) after `pause_s`."""
    import ccxt

    while True:
        try:
            got = await watch()
        except asyncio.CancelledError:
            raise
        except ccxt.BaseError as exc:
            on_error(what, exc)
            await asyncio.sleep(pause_s)
            continue
        handle(got)


def _info(reply: dict[str, Any]) -> Any:
    """The raw venue payload of a ccxt reply (kept as evidence in the audit log)."""
    return reply.get("info")
