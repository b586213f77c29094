"""The emulated exchange: a dataset pushed into `venues.sim` by a market clock, plus accounts.

Why this shape: the emulator must match orders exactly as a backtest does, so matching is
`SimCore` with the backtest's `[venues.X]` configs; what the emulator adds is what a venue
has and a backtest does not: accounts with locked balances, order ids, client ids, the
public book with update ids, and a record of everything (the journal). This module is the
protocol-free core (ints, Decimals, records); `venues.emulator.binance` speaks Binance.

Market time: a request that reaches the emulator at wall time w is submitted to the sim at
local time `clock.now()`; the sim adds the configured entry latency, matches at exchange
time, and its response becomes visible when the market clock passes the response's
local_ts (exchange time + response latency). So the configured latency model applies in
market time, on top of the real loopback time of the socket.
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import numpy as np

from engine.errors import ConfigError
from engine.feed import apply_feed_latency
from engine.types import (
    EVENT_DTYPE,
    EventKind,
    Instrument,
    Liquidity,
    OrderEventKind,
    OrderType,
    RejectReason,
    TimeInForce,
)
from engine.types.instrument import decimal_str
from venues.emulator.accounts import Account
from venues.emulator.book import PublicBook
from venues.emulator.clock import MarketClock
from venues.emulator.journal import Journal
from venues.sim import SimCore, SimVenueConfig, WakeKind

_BPS = Decimal(10000)
_COMMISSION_STEP = Decimal("0.00000001")  # Binance reports commissions with 8 decimals
# memory bounds of the REST history (docs/emulator.md "Memory"): about 1.4 KB per order
KEEP_CLOSED_ORDERS = 50_000
KEEP_TRADES = 50_000
_HALF_TTL_NS = 60_000_000_000  # an account fill waits this long (market) for its other half

# Binance STP mode -> venues.sim STP mode (venues/sim/codes.py STP_NAMES)
STP_MODES = {
    "NONE": "none",
    "EXPIRE_TAKER": "cancel-new",
    "EXPIRE_MAKER": "cancel-resting",
    "EXPIRE_BOTH": "cancel-both",
    "DECREMENT": "decrement-both",
}
STP_OF_SIM = {v: k for k, v in STP_MODES.items()}
# Binance spot's MAX_NUM_ORDERS filter value (exchangeInfo of every spot symbol; see
# ../shared/data/binance-rest/): open orders per account and symbol
#: `<symbol>@depth@100ms`: one diff per 100 ms of the market clock (Binance's update speed)
DEPTH_INTERVAL_NS = 100_000_000
MAX_NUM_ORDERS = 200


class BinanceError(Exception):
    """A refusal as Binance words it: HTTP status, error code, message."""

    def __init__(self, code: int, msg: str, status: int = 400,
                 headers: Mapping[str, str] | None = None, data: Any = None) -> None:
        super().__init__(f"{code} {msg}")
        self.code = code
        self.msg = msg
        self.status = status
        self.headers = dict(headers or {})
        self.data = data  # cancelReplace's partial results ("data" in the error body)

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "msg": self.msg}
        if self.data is not None:
            out["data"] = self.data
        return out


def insufficient_balance() -> BinanceError:
    return BinanceError(-2010, "Account has insufficient balance for requested action.")


@dataclass
class EmuOrder:
    """One order as the venue holds it; prices in ticks, quantities in lots."""

    order_id: int
    account: Account
    inst: int
    symbol: str
    client_id: str
    side: int
    type: str  # LIMIT | LIMIT_MAKER | MARKET
    tif: str  # GTC | IOC | FOK ("GTC" for MARKET / LIMIT_MAKER, not shown)
    price: int
    qty: int
    quote_qty: Decimal | None
    stp: str  # Binance STP mode name
    time_ms: int
    executed: int = 0
    cum_quote: Decimal = Decimal(0)
    status: str = "PENDING_NEW"
    update_ms: int = 0
    working_ms: int = 0
    # the same three as market ns (0: not yet): a spot client that asked for microseconds
    # sees them to the µs (BinanceServer._t); the *_ms fields are the futures API's and
    # the journal's (Binance documents microseconds for the spot API only)
    time_ns: int = 0
    update_ns: int = 0
    working_ns: int = 0
    lock_asset: str = ""
    lock_left: Decimal = Decimal(0)
    fills: list[dict[str, Any]] = field(default_factory=list)
    cancel_client_id: str = ""  # the cancel request's own client id (executionReport c)
    reject: BinanceError | None = None
    shown: int = 0  # lots of it in the public depth now (resting, acknowledged)
    reduce_only: bool = False  # futures: may only reduce the position

    @property
    def is_open(self) -> bool:
        return self.status in ("PENDING_NEW", "NEW", "PARTIALLY_FILLED")


@dataclass
class Pending:
    """A REST call waiting for the venue's answer (new order, cancel).

    `reply` is the order as the venue answered the request: a copy taken when the matching
    engine processed it (Exchange._note_reply), never the live order, which later fills
    keep changing while the reply waits for its response latency, the HTTP write, a fault's
    hold. Binance's REST reply (newOrderRespType ACK / RESULT / FULL, the cancel's reply)
    is the order's state at the engine's acceptance: a new order's immediate fills only;
    later fills reach the client on the user stream and later queries
    (developers.binance.com/docs/binance-spot-api-docs/rest-api/trading-endpoints, "New
    order (TRADE)", "Response FULL"; a LIMIT_MAKER is never answered FILLED)."""

    kind: str  # "new" | "cancel"
    order: EmuOrder
    done: bool = False
    error: BinanceError | None = None
    waiter: Any = None  # set by the server (an asyncio.Future)
    reply: EmuOrder | None = None  # the order as answered (see above); set with the venue's answer
    reply_ts: int = -1  # exchange time of the processing the reply shows (-1: not yet)
    reply_local: int = -1  # ... and the local time its first response reached (the ACK's receipt)
    frozen: bool = False  # a later record of the order came: the reply no longer follows it

    def answer(self) -> EmuOrder:
        """The order as the venue answered this request (the live order if no copy was
        taken, e.g. an answer that closed it: nothing changes a closed order)."""
        return self.reply if self.reply is not None else self.order


@dataclass
class UserEvent:
    """One user-data event for an account: an order update or a balance snapshot."""

    account: Account
    kind: str  # "order" | "balance"
    order: EmuOrder | None
    payload: dict[str, Any]


class Exchange:
    """Accounts + orders + public books over a push-mode `SimCore` (see module doc)."""

    def __init__(
        self,
        instruments: Sequence[Instrument],
        venue_configs: Mapping[str, SimVenueConfig],
        source: Iterable[np.ndarray],
        accounts: Sequence[Account],
        clock_factory: Callable[[int], MarketClock],
        *,
        seed: int = 0,
        journal: Journal | None = None,
        loop: bool = False,
        lookahead_ns: int = 1_000_000_000,
        max_num_orders: int = MAX_NUM_ORDERS,
        keep_closed_orders: int = KEEP_CLOSED_ORDERS,
        keep_trades: int = KEEP_TRADES,
    ) -> None:
        if not accounts:
            raise ConfigError("emulator: no accounts")
        self.instruments = list(instruments)
        # the accounts hold the balances (free/locked per account, Binance's -2010); the
        # simulated venue only matches, so its own single-account balance check is off
        # (its SimCore only matches: depth conflation is the venue's publishing, _publish, not a
        # local book's, so depth_conflation_ms of a shared venue table is off here)
        self.venue_configs = {name: replace(cfg, enforce_balances=False, depth_conflation_ns=0)
                              for name, cfg in venue_configs.items()}
        self.symbols = [i.venue_symbol or (i.base + i.quote) for i in self.instruments]
        self.symbol_index = {s.upper(): k for k, s in enumerate(self.symbols)}
        self.accounts = list(accounts)
        self.by_key = {a.api_key: a for a in self.accounts}
        # each account is its own owner in venues.sim: accounts trade with each other, and
        # self-trade prevention applies within one account only
        self.owner = {a.name: k for k, a in enumerate(self.accounts)}
        self.journal = journal or Journal(None)
        self.loop = loop
        self.max_num_orders = int(max_num_orders)
        self.lookahead_ns = int(lookahead_ns)
        self._source = source
        self._feed_ns = np.array([int(self.venue_configs[i.venue].feed_ns) for i in self.instruments],
                                 dtype=np.int64)
        self._offset = 0
        self._pass_first: int | None = None
        self._pass_last: int | None = None
        self._head: np.ndarray | None = None
        self._rows = self._open_pass()
        first = self._peek_first()
        if first is None:
            raise ConfigError("emulator: the dataset holds no rows for the selected instruments")
        self.clock = clock_factory(first)
        self.core = SimCore(self.instruments, self.venue_configs, None, seed)
        self.books = [PublicBook() for _ in self.instruments]
        self._pub: deque[np.ndarray] = deque()
        # `<symbol>@depth@100ms`: the public books' changes, cut into windows of the market
        # clock (see _publish); (window end, instrument, diff) until the server sends them
        self.depth_updates: list[tuple[int, int, tuple]] = []
        self.depth_due: int | None = None  # end of the open window (something changed in it)
        self._exhausted = False
        self.ended = False  # the dataset ended (without --loop): trading halted
        self.orders: dict[int, EmuOrder] = {}
        self.open_by_client: dict[tuple[str, int, str], EmuOrder] = {}
        # what REST can still look up (GET order, myTrades): the last `keep_closed_orders`
        # closed orders and `keep_trades` trades per account; the journal keeps everything
        self.keep_closed_orders = int(keep_closed_orders)
        self._closed: deque[int] = deque()
        self.trades: dict[str, deque[dict[str, Any]]] = {
            a.name: deque(maxlen=int(keep_trades)) for a in self.accounts}
        self._next_order_id = 1
        self._next_trade_id = 1
        self._pending_new: dict[int, Pending] = {}
        self._pending_cancel: dict[int, Pending] = {}
        self.completed: list[Pending] = []
        self.user_events: list[UserEvent] = []
        # public trades to publish on `<symbol>@trade`: (instrument, TRADE rows, first trade
        # id); the dataset's trades and the trades between two accounts, one id space with
        # the accounts' fills (as Binance's trade ids)
        self.market_trades: list[tuple[int, np.ndarray, int]] = []
        # halves of trades between two accounts (maker fill of one, taker fill of another)
        # seen without their other half yet, by (instrument, exch_ts, price, qty)
        self._halves: dict[tuple[int, int, int, int], list[tuple[int, str, bool, int]]] = {}
        self._halves_age: deque[tuple[int, tuple[int, int, int, int], int]] = deque()
        self.halted_reason = ""
        self.cancel_only = False
        self._no_wake = np.zeros(len(self.instruments), dtype=np.bool_)
        self._touched_accounts: set[str] = set()
        self._depth_dirty: set[int] = set()  # orders whose share of the public depth may change
        t = self.clock.now()
        self._stepped = t  # market time matched and published up to (advance)
        for a in self.accounts:
            a.update_ms = self.clock.shown_ms(t)
            a.update_ns = t
            self.journal.write("account", t, a.update_ms, account=a.name,
                               balances=dict(a.free))

    # ------------------------------------------------------------------ feed --------
    def _open_pass(self):
        return iter(apply_feed_latency(iter(self._source), self._feed_ns))

    def _peek_first(self) -> int | None:
        for chunk in self._rows:
            if len(chunk):
                self._head = chunk
                return int(chunk["local_ts"][0])
        return None

    def _next_chunk(self) -> np.ndarray | None:
        head = self._head
        if head is not None:
            self._head = None
            chunk = head
        else:
            chunk = None
            for c in self._rows:
                if len(c):
                    chunk = c
                    break
            if chunk is None and self.loop and self._pass_first is not None:
                # --loop: the dataset starts again, shifted to follow its own end
                self._offset += self._pass_last - self._pass_first + 1_000_000
                self._pass_first = None
                self._rows = self._open_pass()
                for c in self._rows:
                    if len(c):
                        chunk = c
                        break
                self.journal.write("loop", self.core.now, self.clock.shown_ms(self.core.now),
                                   offset_ns=self._offset)
            if chunk is None:
                return None
        if self._pass_first is None:
            self._pass_first = int(chunk["local_ts"][0])
        self._pass_last = int(chunk["local_ts"][-1])
        if self._offset:
            chunk = chunk.copy()
            chunk["local_ts"] += self._offset
            chunk["exch_ts"] += self._offset
        return chunk

    def _push_more(self) -> bool:
        if self._exhausted:
            return False
        chunk = self._next_chunk()
        if chunk is None:
            self._exhausted = True
            self.core.end_feed()
            return False
        self.core.push(chunk)
        self._pub.append(chunk)
        return True

    # ------------------------------------------------------------------ the clock ---
    def advance(self, market_ns: int | None = None) -> None:
        """Run the venue up to market time `market_ns` (default: the clock's now).

        Pushes the dataset ahead of the clock, lets the sim match, turns its responses into
        order/balance changes, user events and completed REST calls (`completed`), then
        publishes the book rows the clock passed.

        A step that passes the end of a depth window (every DEPTH_INTERVAL_NS of the market
        clock) stops there first, so a change of our own resting orders (an
        acknowledgement, a fill, a cancel) falls into the window of its own time, as the
        dataset's rows do. Without it, a fill at 23,972 ms in a step from 23,970 to 23,990
        reached the depth diff of the window ending at 24,075 instead of 23,975: a session
        saw its filled order still resting in the book for 100 ms, and a strategy reading
        the book without its own orders (modes/live/own_depth.py, which takes the fill's
        venue time as the moment the order left the book) priced off a level that was no
        longer there (bench/README.md "Parity", session 10, run 6).
        """
        m = self.clock.now() if market_ns is None else int(market_ns)
        g = DEPTH_INTERVAL_NS
        end = (self._stepped // g + 1) * g  # the first window end after the last step
        while end < m:
            self._step(end)
            end += g
        self._step(m)
        for p in list(self._pending_new.values()):
            if p.order.status != "PENDING_NEW" or p.order.reject is not None:
                self._finish(p, self._pending_new)
        if self._touched_accounts:
            for name in sorted(self._touched_accounts):
                acct = next(a for a in self.accounts if a.name == name)
                self._emit_balance(acct, m)
            self._touched_accounts.clear()

    def _step(self, m: int) -> None:
        """advance's matching and publishing up to market time m (advance says why in steps)."""
        self._stepped = max(self._stepped, m)
        while self.core.pushed_until <= m + self.lookahead_ns and self._push_more():
            pass
        while True:
            w = self.core.run_until(m, self._no_wake, self._no_wake)
            if w.kind == WakeKind.ORDER:
                self._on_record(w.record)
            elif w.kind == WakeKind.STARVED:
                self._push_more()
            else:
                if w.kind == WakeKind.END and not self.ended and self._exhausted:
                    self._end_of_data(m)
                break
        # the sim records every top-of-book change and market trade for a backtest's
        # output until drained; the emulator publishes its own book, so it drops them here
        # (undrained, they grew by doubling: the soak's 4-5 MB/min, docs/emulator.md)
        self.core.drain_bbo()
        self.core.drain_trades()
        self._publish(m)
        self._show_own()
        # own orders' changes of this step: the window their time falls in (m's own when m
        # ends one: it is published now, with them), then the windows that ended by m go out
        self._open_depth(-(-m // DEPTH_INTERVAL_NS) * DEPTH_INTERVAL_NS)
        self._close_depth(m + 1)

    def waiting(self) -> bool:
        """True while a REST call waits for the venue's answer."""
        return bool(self._pending_new or self._pending_cancel)

    def next_depth_ts(self) -> int | None:
        """Market time the open depth window ends (None: nothing changed since the last)."""
        return self.depth_due

    def next_publish_ts(self) -> int | None:
        """local_ts of the next feed row not yet published (None: nothing pushed ahead)."""
        return int(self._pub[0]["local_ts"][0]) if self._pub else None

    def _end_of_data(self, m: int) -> None:
        self.ended = True
        self.halted_reason = "the dataset ended"
        self.journal.write("halt", m, self.clock.shown_ms(m), reason=self.halted_reason)

    def _close_depth(self, before: int) -> None:
        """Publish the open depth window if it ended before market time `before`."""
        if self.depth_due is not None and self.depth_due < before:
            for k, book in enumerate(self.books):
                diff = book.take_diff()
                if diff is not None:
                    self.depth_updates.append((self.depth_due, k, diff))
            self.depth_due = None

    def _open_depth(self, end: int) -> None:
        """A public book changed: the open window (or a new one ending at `end`) carries it."""
        if self.depth_due is None and any(b.dirty_bids or b.dirty_asks for b in self.books):
            self.depth_due = end

    def take_depth_updates(self) -> list[tuple[int, int, tuple]]:
        """The depth diffs of the windows closed so far: (window end in market ns, instrument,
        (U, u, bids, asks)), oldest first."""
        out, self.depth_updates = self.depth_updates, []
        return out

    def _publish(self, m: int) -> None:
        """Apply the feed rows the clock passed to the public books, and cut their changes
        into `@depth@100ms` windows on the market clock (DEPTH_INTERVAL_NS).

        Why the market clock and not the wall clock: Binance sends one diff per 100 ms of
        its own time; cut on the market clock, the windows fall on the same instants in
        every run (whatever the pump's wake-ups), and a backtest of the dataset with
        `depth_conflation_ms = 100` cuts the same windows (a row at time t is published at
        ceil(t / 100 ms) * 100 ms, venues/sim/core_nb.publish_ts_nb), which parity needs.
        """
        g = DEPTH_INTERVAL_NS
        while self._pub:
            chunk = self._pub[0]
            first = int(chunk["local_ts"][0])
            if first > m:
                break
            self._close_depth(first)
            end = -(-first // g) * g  # the window this row belongs to ends here
            cut = int(np.searchsorted(chunk["local_ts"], min(m, end), side="right"))
            part = chunk[:cut]
            if cut == len(chunk):
                self._pub.popleft()
            else:
                self._pub[0] = chunk[cut:]
            insts = part["instrument"]
            for i in np.unique(insts):
                rows = part[insts == i]
                trades = self.books[int(i)].apply(rows)
                if trades:
                    self.market_trades.append((int(i), np.array(trades, dtype=EVENT_DTYPE),
                                               self._next_trade_id))
                    self._next_trade_id += len(trades)
            self._open_depth(end)

    def _show_own(self) -> None:
        """Put the accounts' resting orders in the public depth, as a venue shows them.

        An order counts from its acknowledgement (its NEW reaching the market clock) with
        what is left of it, until it fills or ends; an IOC, FOK or market order never rests
        and never shows. Applied after the feed rows of the same clock step, net per order,
        so a change that undoes itself within one step takes no update id.
        """
        for oid in sorted(self._depth_dirty):
            o = self.orders.get(oid)
            if o is None:  # closed and already out of the kept history
                continue
            rests = o.status in ("NEW", "PARTIALLY_FILLED") and o.type != "MARKET" and o.tif == "GTC"
            want = o.qty - o.executed if rests else 0
            if want != o.shown:
                self.books[o.inst].add_own(o.side, o.price, want - o.shown)
                o.shown = want
        self._depth_dirty.clear()

    # ------------------------------------------------------------------ requests ----
    def new_order(self, account: Account, inst: int, side: int, typ: str, tif: str, price: int,
                  qty: int, quote_qty: Decimal | None, client_id: str, stp: str | None) -> Pending:
        """Check balances and duplicates, lock funds, hand the order to the sim.

        Raises BinanceError -2010 (insufficient balance, duplicate client id among open
        orders, market closed), -1013 "Filter failure: MAX_NUM_ORDERS" when the account
        already has `max_num_orders` open orders on the symbol. `qty` in lots (0 with quote_qty for quote-sized market
        orders: the quantity is found by walking the venue's book, as Binance does).
        """
        m = self.clock.now()
        self._check_trading(cancel=False)
        key = (account.name, inst, client_id)
        if key in self.open_by_client:
            raise BinanceError(-2010, "Duplicate order sent.")
        if self.open_count(account, inst) >= self.max_num_orders:
            # Binance filters doc, MAX_NUM_ORDERS: "the maximum number of orders an account
            # is allowed to have open on a symbol" (every order counts, even an IOC that
            # will never rest, until the venue answers it)
            raise BinanceError(-1013, "Filter failure: MAX_NUM_ORDERS")
        spec = self.instruments[inst]
        if typ == "MARKET" and quote_qty is not None:
            qty = self._qty_for_quote(inst, side, quote_qty, account)
            if qty <= 0:
                raise BinanceError(-2010, "Order book liquidity is less than LOT_SIZE filter minimum quantity.")
        asset, need = self._funds_for(account, inst, side, typ, price, qty, quote_qty)
        stp_mode = stp or STP_OF_SIM[self.venue_configs[spec.venue].stp]
        shown = self.clock.shown_ms(m)
        order = EmuOrder(order_id=self._next_order_id, account=account, inst=inst,
                         symbol=self.symbols[inst], client_id=client_id, side=side, type=typ,
                         tif=tif, price=price if typ != "MARKET" else 0, qty=qty,
                         quote_qty=quote_qty, stp=stp_mode, time_ms=shown, update_ms=shown, time_ns=m, update_ns=m,
                         lock_asset=asset, lock_left=need)
        self._next_order_id += 1
        if need:
            account.lock(asset, need)
        self._touched_accounts.add(account.name)  # outboundAccountPosition: funds locked
        self.orders[order.order_id] = order
        self.open_by_client[key] = order
        otype = OrderType.MARKET if typ == "MARKET" else OrderType.LIMIT
        otif = {"GTC": TimeInForce.GTC, "IOC": TimeInForce.IOC, "FOK": TimeInForce.FOK}[tif]
        self.core.submit(order.order_id, inst, side, otype, otif, order.price, qty,
                         typ == "LIMIT_MAKER", 0, m, stp=STP_MODES[stp_mode],
                         owner=self.owner[account.name])
        self.journal.write("order_new", m, shown, account=account.name, order_id=order.order_id,
                           client_order_id=client_id, symbol=order.symbol,
                           side="BUY" if side > 0 else "SELL", type=typ, time_in_force=tif,
                           price=spec.ticks_to_price(order.price), qty=spec.lots_to_qty(qty),
                           quote_qty=quote_qty, locked=need, lock_asset=asset)
        pending = Pending("new", order)
        self._pending_new[order.order_id] = pending
        return pending

    def _funds_for(self, account: Account, inst: int, side: int, typ: str, price: int, qty: int,
                   quote_qty: Decimal | None) -> tuple[str, Decimal]:
        """What a new order locks: (asset, amount); raises -2010 when the account is short.
        Spot: a buy locks price x qty of quote (a market buy its cost on the book), a sell
        its base quantity. The futures exchange checks margin here instead (no lock)."""
        spec = self.instruments[inst]
        if side > 0:
            asset = spec.quote
            if typ != "MARKET":
                need = spec.ticks_to_price(price) * spec.lots_to_qty(qty)
            elif quote_qty is not None:
                need = quote_qty
            else:
                need = self._cost_estimate(inst, qty, account)
        else:
            asset = spec.base
            need = spec.lots_to_qty(qty)
        if account.available(asset) < need:
            raise insufficient_balance()
        return asset, need

    def cancel_order(self, order: EmuOrder, cancel_client_id: str = "") -> Pending:
        """Send a cancel to the sim; the answer comes as the sim's CANCELLED or
        CANCEL_REJECTED response (-2011 when the order filled first)."""
        m = self.clock.now()
        self._check_trading(cancel=True)
        if not order.is_open or order.order_id in self._pending_cancel:
            raise BinanceError(-2011, "Unknown order sent.")
        order.cancel_client_id = cancel_client_id
        self.core.cancel(order.order_id, m)
        pending = Pending("cancel", order)
        self._pending_cancel[order.order_id] = pending
        self.journal.write("cancel_request", m, self.clock.shown_ms(m), account=order.account.name,
                           order_id=order.order_id)
        return pending

    def _check_trading(self, cancel: bool) -> None:
        if self.ended or self.halted_reason:
            raise BinanceError(-2010, "Market is closed.")
        if self.cancel_only and not cancel:
            raise BinanceError(-2010, "Market is closed.")

    def find_order(self, account: Account, inst: int, order_id: int | None,
                   client_id: str | None) -> EmuOrder | None:
        """By orderId, else by client id (the open one first, then the latest)."""
        if order_id is not None:
            o = self.orders.get(order_id)
            return o if o is not None and o.account is account and o.inst == inst else None
        if client_id is not None:
            o = self.open_by_client.get((account.name, inst, client_id))
            if o is not None:
                return o
            for o in reversed(list(self.orders.values())):
                if o.account is account and o.inst == inst and o.client_id == client_id:
                    return o
        return None

    def open_count(self, account: Account, inst: int) -> int:
        """Open orders of `account` on instrument `inst` (the MAX_NUM_ORDERS count)."""
        name = account.name
        return sum(1 for a, k, _ in self.open_by_client if a == name and k == inst)

    def open_orders(self, account: Account, inst: int | None) -> list[EmuOrder]:
        return [o for o in self.open_by_client.values()
                if o.account is account and (inst is None or o.inst == inst)]

    def _walk(self, inst: int, side: int, account: Account) -> tuple[np.ndarray, np.ndarray]:
        """The opposite side of the venue's (exchange-side) book, best first, with the
        resting orders of the other accounts (which `account`'s order would trade with)."""
        prices, qtys = self.core.exchange_levels(inst, -side, 1000)
        extra: dict[int, int] = {}
        for o in self.open_by_client.values():
            if o.inst == inst and o.side == -side and o.shown and o.account is not account:
                extra[o.price] = extra.get(o.price, 0) + o.shown
        if not extra:
            return prices, qtys
        for p, q in zip(prices.tolist(), qtys.tolist(), strict=True):
            extra[p] = extra.get(p, 0) + q
        order = sorted(extra, reverse=side < 0)  # a buy walks asks up, a sell bids down
        return (np.array(order, dtype=np.int64),
                np.array([extra[p] for p in order], dtype=np.int64))

    def _cost_estimate(self, inst: int, qty: int, account: Account) -> Decimal:
        """Quote needed to buy `qty` lots at market on the current asks (a market buy's lock)."""
        spec = self.instruments[inst]
        prices, qtys = self._walk(inst, 1, account)
        left = qty
        ticks_lots = 0
        last = 0
        for p, q in zip(prices.tolist(), qtys.tolist(), strict=True):
            x = min(q, left)
            ticks_lots += p * x
            left -= x
            last = p
            if left == 0:
                break
        if left and last:
            ticks_lots += last * left
        return spec.tick_size * spec.lot_size * ticks_lots

    def _qty_for_quote(self, inst: int, side: int, quote_qty: Decimal, account: Account) -> int:
        """Lots a market order of `quote_qty` quote buys/sells walking the book."""
        spec = self.instruments[inst]
        unit = spec.tick_size * spec.lot_size
        budget = quote_qty
        lots = 0
        prices, qtys = self._walk(inst, side, account)
        for p, q in zip(prices.tolist(), qtys.tolist(), strict=True):
            level_cost = unit * p * q
            if level_cost <= budget:
                lots += q
                budget -= level_cost
                continue
            lots += int(budget / (unit * p))
            break
        return lots

    # ------------------------------------------------------------------ responses ---
    def _on_record(self, rec) -> None:
        order = self.orders.get(int(rec["order_no"]))
        if order is None:
            return
        kind = int(rec["kind"])
        t = int(rec["exch_ts"])
        placing = self._pending_new.get(order.order_id) if self._pending_new else None
        if placing is not None and placing.reply_ts >= 0 and not placing.frozen and not self._same_answer(
                placing, rec, kind, t):
            placing.frozen = True  # a later event of a resting order: not in the POST's reply
        ms = self.clock.shown_ms(t)
        order.update_ms = ms
        order.update_ns = t
        self._depth_dirty.add(order.order_id)
        if kind == OrderEventKind.ACK:
            order.status = "NEW"
            order.working_ms = ms
            order.working_ns = t
            self._order_event(order, "NEW", t)
        elif kind == OrderEventKind.FILL:
            self._on_fill(order, rec, t, ms)
        elif kind == OrderEventKind.REJECTED:
            reason = int(rec["reason"])
            if reason in (RejectReason.FOK_NOT_FILLABLE, RejectReason.NO_LIQUIDITY):
                order.status = "NEW"
                order.working_ms = ms
                order.working_ns = t
                self._order_event(order, "NEW", t)
                self._close(order, "EXPIRED", t, "EXPIRED")
            else:
                if reason == RejectReason.POST_ONLY_WOULD_CROSS:
                    order.reject = BinanceError(-2010, "Order would immediately match and take.")
                elif reason == RejectReason.DUPLICATE_CLIENT_ID:
                    order.reject = BinanceError(-2010, "Duplicate order sent.")
                else:
                    order.reject = BinanceError(-2010, f"Order rejected ({RejectReason(reason).name}).")
                self._close(order, "REJECTED", t, None)
        elif kind == OrderEventKind.CANCELLED:
            reason = int(rec["reason"])
            if reason == RejectReason.USER_CANCEL:
                self._close(order, "CANCELED", t, "CANCELED")
            elif reason == RejectReason.SELF_TRADE:
                self._close(order, "EXPIRED_IN_MATCH", t, "TRADE_PREVENTION")
            else:
                self._close(order, "EXPIRED", t, "EXPIRED")
        elif kind == OrderEventKind.EXPIRED:
            self._close(order, "EXPIRED", t, "EXPIRED")
        elif kind == OrderEventKind.AMENDED:
            self._on_amended(order, int(rec["qty"]), t)
        elif kind == OrderEventKind.CANCEL_REJECTED:
            p = self._pending_cancel.pop(order.order_id, None)
            if p is not None:
                p.error = BinanceError(-2011, "Unknown order sent.")
                p.done = True
                self.completed.append(p)
        if placing is not None and not placing.frozen and (order.status != "PENDING_NEW" or order.reject is not None):
            if placing.reply_ts < 0:
                placing.reply_ts = t
                placing.reply_local = int(rec["local_ts"])
            placing.reply = self._copy_order(order)
        p = self._pending_cancel.get(order.order_id)
        if p is not None and not order.is_open:
            if order.status != "CANCELED":
                p.error = BinanceError(-2011, "Unknown order sent.")
            p.reply = self._copy_order(order)
            self._finish(p, self._pending_cancel)

    @staticmethod
    def _same_answer(p: Pending, rec, kind: int, t: int) -> bool:
        """Whether a record of an order being placed belongs to the venue's answer to the
        POST: the records the matching engine produced while accepting it (venues.sim
        matching_nb.submit_nb: the ACK, then at the same exchange time the taker fills, an
        IOC / FOK / market remainder's expiry, an STP end), received with the ACK. Not in
        it: anything at a later exchange time, a maker fill (the order rested and someone
        traded against it, even in the same nanosecond) or a user cancel, nor a record a
        random response latency delivers after the ACK (a backtest's session sees that
        one later too)."""
        if t != p.reply_ts or int(rec["local_ts"]) > p.reply_local:
            return False
        if kind == OrderEventKind.FILL:
            return int(rec["liquidity"]) != Liquidity.MAKER
        if kind == OrderEventKind.CANCELLED:
            return int(rec["reason"]) != RejectReason.USER_CANCEL
        return True

    @staticmethod
    def _copy_order(order: EmuOrder) -> EmuOrder:
        """A frozen copy of an order for a REST reply (its own fills list)."""
        out = copy.copy(order)
        out.fills = list(order.fills)
        return out

    def _finish(self, p: Pending, table: dict[int, Pending]) -> None:
        table.pop(p.order.order_id, None)
        p.done = True
        if p.order.reject is not None and p.kind == "new":
            p.error = p.order.reject
        self.completed.append(p)

    def _rates(self, order: EmuOrder) -> tuple[Decimal, Decimal]:
        spec = self.instruments[order.inst]
        cfg = self.venue_configs[spec.venue]
        maker = spec.maker_fee_bps if spec.maker_fee_bps is not None else cfg.maker_fee_bps
        taker = spec.taker_fee_bps if spec.taker_fee_bps is not None else cfg.taker_fee_bps
        return Decimal(maker), Decimal(taker)

    def _on_fill(self, order: EmuOrder, rec, t: int, ms: int) -> None:
        spec = self.instruments[order.inst]
        px = int(rec["price"])
        x = int(rec["qty"])
        price = spec.ticks_to_price(px)
        qty = spec.lots_to_qty(x)
        cost = price * qty
        maker = int(rec["liquidity"]) == 1
        rate = self._rates(order)[0 if maker else 1]
        acct = order.account
        commission, commission_asset, extra = self._settle_fill(order, px, x, price, qty, cost, rate)
        order.executed += x
        order.cum_quote += cost
        order.status = "FILLED" if order.executed >= order.qty else "PARTIALLY_FILLED"
        trade_id = self._trade_id(order, t, px, x, maker)
        fill = {"trade_id": trade_id, "price": price, "qty": qty, "quote_qty": cost,
                "commission": commission, "commission_asset": commission_asset,
                "time": ms, "is_maker": maker, "ts": t, **extra}
        order.fills.append(fill)
        self.trades[acct.name].append({"order": order, **fill})
        acct.update_ms = ms
        acct.update_ns = t
        self._touched_accounts.add(acct.name)
        self.journal.write("fill", t, ms, account=acct.name, order_id=order.order_id,
                           client_order_id=order.client_id, symbol=order.symbol,
                           side="BUY" if order.side > 0 else "SELL", trade_id=trade_id,
                           price=price, qty=qty, quote_qty=cost, commission=commission,
                           commission_asset=commission_asset,
                           liquidity="maker" if maker else "taker",
                           executed=spec.lots_to_qty(order.executed), status=order.status)
        self._order_event(order, "TRADE", t, fill)
        if order.status == "FILLED":
            self._release(order, t)
            self.open_by_client.pop((acct.name, order.inst, order.client_id), None)
            self._closed_history(order)

    def _settle_fill(self, order: EmuOrder, px: int, x: int, price: Decimal, qty: Decimal, cost: Decimal,
                     rate: Decimal) -> tuple[Decimal, str, dict[str, Any]]:
        """Move a fill's money: (commission, its asset, extra fill fields). Spot: the locked
        funds pay for what was received; the commission is taken from the asset received
        (buyer in base, seller in quote), half-even to 8 decimals."""
        spec = self.instruments[order.inst]
        acct = order.account
        if order.side > 0:
            use = spec.ticks_to_price(order.price) * qty if order.type != "MARKET" else cost
            use = min(use, order.lock_left)
            order.lock_left -= use
            acct.move(spec.quote, use - cost, -use)
            commission = (qty * rate / _BPS).quantize(_COMMISSION_STEP, ROUND_HALF_EVEN)
            acct.move(spec.base, qty - commission, Decimal(0))
            return commission, spec.base, {}
        use = min(qty, order.lock_left)
        order.lock_left -= use
        acct.move(spec.base, use - qty, -use)
        commission = (cost * rate / _BPS).quantize(_COMMISSION_STEP, ROUND_HALF_EVEN)
        acct.move(spec.quote, cost - commission, Decimal(0))
        return commission, spec.quote, {}

    def _trade_id(self, order: EmuOrder, t: int, px: int, x: int, maker: bool) -> int:
        """The trade id of a fill; a trade between two accounts is one public trade.

        venues.sim fills a taker of one owner against another owner's resting order as a
        maker fill and a taker fill at the same exchange time, price and quantity
        (venues/sim/matching_nb.py cross_level_nb). Both halves get one trade id (as in
        Binance's myTrades and executionReport `t`), and when the second half arrives the
        trade goes to the public `@trade` stream (`m`: the buyer was the maker); the
        resting order's lots leave the public depth in the same clock step (_show_own).
        A fill against the dataset's liquidity has no other half: the dataset's own trades
        are the market's public trades. Halves unmatched after 60 s of market time (fills
        by the dataset's trades) are forgotten, so the table stays small.
        """
        key = (order.inst, t, px, x)
        waiting = self._halves.get(key)
        if waiting:
            for n, (side, account, was_maker, tid) in enumerate(waiting):
                if side == -order.side and account != order.account.name and was_maker != maker:
                    del waiting[n]
                    if not waiting:
                        del self._halves[key]
                    row = np.zeros(1, dtype=EVENT_DTYPE)
                    row["exch_ts"] = t
                    row["local_ts"] = t
                    row["instrument"] = order.inst
                    row["kind"] = EventKind.TRADE
                    row["side"] = order.side if not maker else -order.side  # the taker's side
                    row["price"] = px
                    row["qty"] = x
                    self.market_trades.append((order.inst, row, tid))
                    return tid
        tid = self._next_trade_id
        self._next_trade_id += 1
        self._halves.setdefault(key, []).append((order.side, order.account.name, maker, tid))
        self._halves_age.append((t, key, tid))
        while self._halves_age and self._halves_age[0][0] < t - _HALF_TTL_NS:
            _, old, old_tid = self._halves_age.popleft()
            left = self._halves.get(old)
            if left:
                left[:] = [h for h in left if h[3] != old_tid]
                if not left:
                    del self._halves[old]
        return tid

    def _on_amended(self, order: EmuOrder, qty: int, t: int) -> None:
        """STP decrement shrank the order: release the funds of the lots it lost."""
        spec = self.instruments[order.inst]
        lost = order.qty - qty
        order.qty = qty
        if lost > 0 and order.type != "MARKET":
            per = spec.ticks_to_price(order.price) if order.side > 0 else Decimal(1)
            amount = min(order.lock_left, per * spec.lots_to_qty(lost))
            if amount:
                order.lock_left -= amount
                order.account.move(order.lock_asset, amount, -amount)
                self._touched_accounts.add(order.account.name)
        if order.executed >= order.qty:
            self._close(order, "EXPIRED_IN_MATCH", t, "TRADE_PREVENTION")

    def _closed_history(self, order: EmuOrder) -> None:
        """Keep the last `keep_closed_orders` closed orders for GET order; an older one is
        forgotten (-2013 "Order does not exist.", as Binance answers for archived orders),
        which bounds the emulator's memory on a long run (docs/emulator.md "Memory")."""
        self._closed.append(order.order_id)
        while len(self._closed) > self.keep_closed_orders:
            self.orders.pop(self._closed.popleft(), None)

    def _release(self, order: EmuOrder, t: int) -> None:
        if order.lock_left:
            order.account.move(order.lock_asset, order.lock_left, -order.lock_left)
            order.lock_left = Decimal(0)
            self._touched_accounts.add(order.account.name)

    def _close(self, order: EmuOrder, status: str, t: int, exec_type: str | None) -> None:
        if not order.is_open:
            return
        order.status = status
        self._release(order, t)
        self.open_by_client.pop((order.account.name, order.inst, order.client_id), None)
        self._closed_history(order)
        ms = self.clock.shown_ms(t)
        self.journal.write("order_status", t, ms, account=order.account.name,
                           order_id=order.order_id, status=status,
                           executed=self.instruments[order.inst].lots_to_qty(order.executed))
        if exec_type is not None:
            self._order_event(order, exec_type, t)

    def _order_event(self, order: EmuOrder, exec_type: str, t: int,
                     fill: dict[str, Any] | None = None) -> None:
        self.user_events.append(UserEvent(order.account, "order", order,
                                          {"exec_type": exec_type, "ts": t, "fill": fill,
                                           "status": order.status,
                                           "executed": order.executed,
                                           "cum_quote": order.cum_quote}))

    def _emit_balance(self, account: Account, t: int) -> None:
        self.journal.write("balance", t, self.clock.shown_ms(t), account=account.name,
                           free=dict(account.free), locked=dict(account.locked))
        self.user_events.append(UserEvent(account, "balance", None, {"ts": t}))

    def take_completed(self) -> list[Pending]:
        out, self.completed = self.completed, []
        return out

    def take_user_events(self) -> list[UserEvent]:
        out, self.user_events = self.user_events, []
        return out

    def take_market_trades(self) -> list[tuple[int, np.ndarray, int]]:
        """Public trades since the last call: (instrument, TRADE rows, first trade id)."""
        out, self.market_trades = self.market_trades, []
        return out

    # ------------------------------------------------------------------ views -------
    def snapshot(self) -> dict[str, Any]:
        """The inspection view: books, accounts, open orders, clock (JSON-ready)."""
        books = {}
        for k, spec in enumerate(self.instruments):
            bids, asks = self.books[k].levels(20)
            books[self.symbols[k]] = {
                "lastUpdateId": self.books[k].update_id,
                "bids": [[decimal_str(spec.ticks_to_price(p)), decimal_str(spec.lots_to_qty(q))]
                         for p, q in bids],
                "asks": [[decimal_str(spec.ticks_to_price(p)), decimal_str(spec.lots_to_qty(q))]
                         for p, q in asks],
            }
        accounts = {}
        for a in self.accounts:
            accounts[a.name] = {
                "free": {k: decimal_str(v) for k, v in a.free.items()},
                "locked": {k: decimal_str(v) for k, v in a.locked.items()},
                "open_orders": [o.order_id for o in self.open_orders(a, None)],
                "trades": len(self.trades[a.name]),
            }
        now = self.clock.now()
        return {"market_ns": now, "time": self.clock.shown_ms(now), "shift_ns": self.clock.shift_ns,
                "ended": self.ended,
                "halted": self.halted_reason, "cancel_only": self.cancel_only,
                "books": books, "accounts": accounts, "journal_entries": self.journal.count}
