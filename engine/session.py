"""The mode-independent trading session: strategy, OMS, risk, ledger and audit.

Why one class for every mode: a backtest driver (replayed feed + numba venue) and a live
driver (asyncio + ccxt) both call the same entry points — `start`, `fire_timers`,
`on_book`/`on_trade`, the venue reports (`on_order_event` for the simulated venue's rows;
`on_command_result`, `on_venue_state`, `on_venue_fill`, `on_balances` for typed records,
all merged by engine/venue_merge.py), `stop` — so the code that decides and books orders
is literally the same object in every mode.
"""

from __future__ import annotations

import functools
import heapq
from collections import deque
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from engine import audit_records as R
from engine.audit import AuditLog
from engine.clock import Clock
from engine.context import Context
from engine.contingent.manager import ContingentManager
from engine.errors import (
    ConfigError,
    InstrumentError,
    InternalError,
    OrderError,
    StrategyError,
    user_code_error,
    user_location,
)
from engine.execution.host import Component, ComponentHost
from engine.frozen import frozen_builder
from engine.ledger import Ledger
from engine.oms import Order, OrderManager, ParentOrder
from engine.risk import RiskEngine
from engine.risk_guard import PENDING_APPROVAL, RiskGuard
from engine.strategy import Strategy, check_strategy_class, strategy_files
from engine.types import Instrument, OrderStatus, OrderType, TimeInForce
from engine.types.instrument import decimal_str
from engine.types.orders import ReasonCode
from engine.venue import Venue
from engine.venue_merge import VenueMerge, new_booked_fill
from engine.views import BookView, Event, OrderUpdate, OrderView, Status, TradeView

_TYPES = {"limit": OrderType.LIMIT, "market": OrderType.MARKET}
_TIFS = {t.name: t for t in TimeInForce}
_TIF_NAMES = {t: t.name for t in TimeInForce}
_TYPE_NAMES = {code: name for name, code in _TYPES.items()}
_MARKET_TIFS = (TimeInForce.IOC, TimeInForce.FOK)
# enum members as module constants: `OrderType.LIMIT` is a class-attribute lookup through
# enum's metaclass, and `==` on an IntEnum a Python-level call (submit's hot path)
_LIMIT, _MARKET = OrderType.LIMIT, OrderType.MARKET
_GTX, _GTD = TimeInForce.GTX, TimeInForce.GTD
_SUBMITTED = OrderStatus.SUBMITTED
_STATUS_BY_CODE = tuple(Status.of(s) for s in OrderStatus)  # Status.of by the int value (no enum hash)
# the submit's two records through their compiled encoders (engine.audit_records: the one
# definition of each record shape, shared with the compiled path's bulk writer)
_SUBMIT_DECISION = R.SUBMIT_DECISION.compiled
_SUBMIT_REQUEST = R.SUBMIT_REQUEST.compiled
_CANCEL_REQUEST, _REJECT = R.CANCEL_REQUEST.compiled, R.REJECT.compiled  # no Decimal fields: values as given
_ZERO = Decimal(0)
_GRID_CACHE = 4096  # values remembered per instrument and direction before the cache starts over


class _Grid:
    """Per instrument: its index, and the grid conversions it made (Decimal -> lots/ticks,
    ticks/lots -> Decimal price/quantity). Why: a quoting strategy sends a few distinct prices and sizes
    again and again, and a conversion (division, integrality and range checks) costs ~1 us
    where a dict hit costs 0.1 us. A conversion depends on the value alone, so a cached
    one is the same int or Decimal; values off the grid raise and are never cached."""

    __slots__ = ("index", "lots", "ticks", "prices", "qtys", "price_texts", "qty_texts", "mids", "to_price",
                 "to_qty", "given", "fees", "fee_rates")

    def __init__(self, index: int, inst: Instrument) -> None:
        self.index, self.to_price, self.to_qty = index, inst.ticks_to_price, inst.lots_to_qty
        self.lots: dict[Decimal, int] = {}
        self.ticks: dict[Decimal, int] = {}
        self.prices: dict[int, Decimal] = {}
        self.qtys: dict[int, Decimal] = {}
        self.price_texts: dict[int, str] = {}  # ticks -> decimal_str of the price
        self.qty_texts: dict[int, str] = {}  # lots -> decimal_str of the quantity
        self.mids: dict[int, Decimal] = {}  # bid + ask ticks -> the mid price (BookView.mid's)
        # a strategy's own Decimal (qty, price) -> (that object, its decimal_str): see text_of
        self.given: dict[Decimal, tuple[Decimal, str]] = {}
        # a simulated fill's (ticks, lots, liquidity code, side) -> (fee, fee asset, fee in
        # quote or None, liquidity name), under the venue's `fee_rates` (engine/venue_merge.py
        # `_sim_fill`)
        self.fees: dict[tuple[int, int, int, int], tuple[Decimal, str, Decimal | None, str]] = {}
        self.fee_rates: tuple[Any, Any, Any] | None = None

    def price(self, ticks: int) -> Decimal:
        """`Instrument.ticks_to_price`, remembered."""
        return _remembered(self.prices, self.to_price, ticks)

    def qty(self, lots: int) -> Decimal:
        """`Instrument.lots_to_qty`, remembered."""
        return _remembered(self.qtys, self.to_qty, lots)

    # the two texts below are read 2-3 times per fill (the audit record, the fills row):
    # each one frame and an int-keyed table (was a shared helper keyed by (kind, units): a
    # tuple and a second frame per read, bench/PROFILE.md 1j)
    def price_text(self, ticks: int) -> str:
        """`decimal_str(price(ticks))`, remembered (the fill record's price)."""
        text = self.price_texts.get(ticks)
        if text is None:
            if len(self.price_texts) >= _GRID_CACHE:
                self.price_texts.clear()
            text = self.price_texts[ticks] = decimal_str(self.price(ticks))
        return text

    def qty_text(self, lots: int) -> str:
        """`decimal_str(qty(lots))`, remembered (the fill record's quantity)."""
        text = self.qty_texts.get(lots)
        if text is None:
            if len(self.qty_texts) >= _GRID_CACHE:
                self.qty_texts.clear()
            text = self.qty_texts[lots] = decimal_str(self.qty(lots))
        return text

    def text_of(self, value: Decimal) -> str:
        """`decimal_str(value)` of a Decimal the strategy passed (the submit's audit record),
        remembered for that very object: equal Decimals may print differently (0.5 and 0.50),
        so a remembered text is used only when the same object comes back (a quoting
        strategy's one qty, the book's remembered prices), which hashes at once (a Decimal
        keeps its hash). `value` is a checked, finite amount."""
        entry = self.given.get(value)
        if entry is not None and entry[0] is value:
            return entry[1]
        if len(self.given) >= _GRID_CACHE:
            self.given.clear()
        text = decimal_str(value)
        self.given[value] = (value, text)
        return text

    #: `decimal_str(fee)` of a fill's fee (the fill record), remembered for that very object
    #: by `text_of`'s rule: a simulated fill's fee is the remembered Decimal of `fees` (a hit);
    #: a live venue's is a new object each time (a miss, its text made once). One table with
    #: the strategy's values: a fee equal in value to a quantity only costs a miss.
    fee_text = text_of

    def mid(self, bid_ticks: int, ask_ticks: int) -> Decimal:
        """`BookView.mid` of a book at (bid, ask) ticks: the price of bid + ask ticks / 2,
        remembered by the sum (the equity sample after every fill marks at the mid)."""
        total = bid_ticks + ask_ticks
        mid = self.mids.get(total)
        if mid is None:
            if len(self.mids) >= _GRID_CACHE:
                self.mids.clear()
            mid = self.mids[total] = self.to_price(total) / 2
        return mid


def _on_grid(cache: dict[Decimal, int], convert: Callable[[Any], int], value: Any) -> int:
    """`convert(value)` (Instrument.qty_to_lots / price_to_ticks), remembered for Decimals.
    Only an exact Decimal is looked up: 100.0, True or "100" equal or hash like a Decimal
    and must still reach `convert` (which refuses floats and names the field)."""
    if type(value) is not Decimal:
        return convert(value)
    try:
        return cache[value]
    except KeyError:
        pass
    except TypeError:  # a signalling NaN does not hash: convert says what is wrong with it
        return convert(value)
    units = convert(value)
    if len(cache) >= _GRID_CACHE:
        cache.clear()
    cache[value] = units
    return units


def _remembered(table: dict[int, Decimal], convert: Callable[[int], Decimal], units: int) -> Decimal:
    """`convert(units)` (Instrument.ticks_to_price / lots_to_qty), remembered in `table`
    (see `_Grid`): an order update carries three quantities and a price, a quoting
    strategy's few prices and sizes again and again."""
    value = table.get(units)
    if value is None:
        if len(table) >= _GRID_CACHE:
            table.clear()
        value = table[units] = convert(units)
    return value


def _price_of(grid: _Grid, ticks: int) -> Decimal:
    return _remembered(grid.prices, grid.to_price, ticks)


def _qty_of(grid: _Grid, lots: int) -> Decimal:
    return _remembered(grid.qtys, grid.to_qty, lots)


_new_update = frozen_builder(OrderUpdate, positional=True)  # one per order event: fields by position
_QUIET_ON_ORDER = Strategy.on_order  # the default callback (does nothing): not called per update


class _Unread:
    """Stands for an `OrderUpdate` nobody will read (`TradingSession._update`): what risk's
    `after_event` reads of one when no slippage trigger is configured (the event; no fill
    price), and nothing else. One per event, made once (below)."""

    __slots__ = ("event",)
    last_fill_price = None

    def __init__(self, event: Event) -> None:
        self.event = event


_UNREAD = {event: _Unread(event) for event in Event}
_new_order_view = frozen_builder(OrderView)  # ctx.order: the same OrderView, its slots set directly
_NAN = float("nan")  # an equity sample's mid where a book has no two sides


class Recorder:
    """Receives what a run produced; the backtest writes it to the run directory."""

    def fill(self, order: Order, ts: int, exch_ts: int, price: Decimal, qty: Decimal,
             fee: Decimal, liquidity: str, fee_charged: Decimal | None = None,
             fee_charged_asset: str | None = None, trade_id: str | None = None) -> None:
        """One booked fill: `fee` valued in the quote asset; `fee_charged` in
        `fee_charged_asset` as the venue charged it (engine/venue_merge.py)."""

    def equity(self, ts: int, equity: Decimal, realized: Decimal, unrealized: Decimal,
               fees: Decimal, positions: list[tuple[str, Decimal, float]]) -> None: ...


class TradingSession(VenueMerge):
    """Drives one strategy against one set of venues (see module docstring)."""

    def __init__(
        self,
        *,
        strategy: Strategy,
        instruments: Mapping[str, Instrument],
        venues: Mapping[str, Venue],
        clock: Clock,
        ledger: Ledger,
        risk: RiskEngine,
        audit: AuditLog,
        recorder: Recorder | None = None,
        id_prefix: str = "tp",
        seed: int = 0,
    ) -> None:
        check_strategy_class(type(strategy))
        self.strategy = strategy
        # where the user's code lives: a callback's exception names its line there
        self._user_files = strategy_files(strategy)
        self.instruments = dict(instruments)
        self._ids = list(self.instruments)
        self.index = {inst_id: i for i, inst_id in enumerate(self._ids)}
        self.venues = dict(venues)
        for inst in self.instruments.values():
            if inst.venue not in self.venues:
                raise ConfigError(f"instrument {inst.id} trades on venue {inst.venue!r}, which is not configured")
        self.clock = clock
        self.ledger = ledger
        self.risk = risk
        self.audit = audit
        self.recorder = recorder or Recorder()
        self.oms = OrderManager(id_prefix=id_prefix)
        self.ctx = Context(self)
        n = len(self.instruments)
        self.wake_book = np.zeros(n, dtype=np.bool_)
        self.wake_trade = np.zeros(n, dtype=np.bool_)
        # what the strategy itself subscribed to; wake_* also include the components' needs
        self._strategy_book = np.zeros(n, dtype=np.bool_)
        self._strategy_trade = np.zeros(n, dtype=np.bool_)
        self.seed = int(seed)
        self.host = ComponentHost()  # execution algorithms and router started by ctx.execute
        self._timer_owner: dict[int, Component] = {}
        self._timers: list[tuple[int, int, int]] = []  # (ts, seq, timer_id)
        self._timer_every: dict[int, int | None] = {}
        self._timer_seq = 0
        self._pending: deque[OrderUpdate] = deque()
        # cancel/amend requests in flight per order number, oldest first, as
        # (command, price ticks, qty lots): a venue's CANCEL_REJECTED answers the oldest
        # (requests reach the venue in order); an amend is confirmed by its price and qty
        self._in_flight: dict[int, deque[tuple[str, int, int]]] = {}
        self.venue_balances: dict[str, dict[str, tuple[Decimal, Decimal]]] = {}  # on_balances
        self._trigger_ts = 0
        self._grids = {inst_id: _Grid(self.index[inst_id], inst)
                       for inst_id, inst in self.instruments.items()}
        self._books = {inst_id: BookView(inst, self.index[inst_id], self.venues[inst.venue],
                                         self._grids[inst_id].price, self._grids[inst_id].mid)
                       for inst_id, inst in self.instruments.items()}
        self.fill_count = 0
        self._mark_floats: dict[Decimal, float] = {}  # sample_equity: a mid -> its float (inventory rows)
        self.guard = RiskGuard(self)  # risk's side of the session: approvals, triggers, kill switch
        # emulated stops, trailing stops, OCO/OTO/brackets, icebergs (engine/contingent); a
        # driver passes `triggers` to the replay loop so armed orders wake us when touched
        self.contingent = ContingentManager(self)
        self.triggers = self.contingent.watch
        # engine.ledger.QuoteMarks: equity in a reporting currency (None: quote assets 1:1)
        self.quote_marks = None
        # live modes: engine.reconcile.Gate; closed = new submits refused (fail closed)
        self.gate: Any = None

    # -- lookups -------------------------------------------------------------------------
    def instrument(self, instrument_id: str) -> Instrument:
        inst = self.instruments.get(instrument_id)
        if inst is None:
            raise InstrumentError(
                f"unknown instrument {instrument_id!r}; this run trades {list(self.instruments)}"
            )
        return inst

    def book(self, instrument_id: str) -> BookView:
        self.instrument(instrument_id)
        return self._books[instrument_id]

    def subscribe(self, instrument_id: str, *, book: bool, trades: bool) -> None:
        i = self.index[self.instrument(instrument_id).id]
        self._strategy_book[i] = bool(book)
        self._strategy_trade[i] = bool(trades)
        self.wake_book[i] = bool(book) or self.host.wants_book(instrument_id)
        self.wake_trade[i] = bool(trades) or self.host.wants_trades(instrument_id)

    # -- components (ctx.execute) ----------------------------------------------------------
    def execute(self, component: Component) -> Component:
        if not component.id:  # deterministic default: "<name>-<n>" in start order
            component.id = f"{getattr(component, 'name', type(component).__name__.lower())}-{len(self.host.components) + 1}"
        self.host.add(component)
        self.audit.write(self.clock.now(), "decision", action="execute", id=component.id,
                         component=type(component).__name__)
        component.start(self.ctx)
        return component

    def watch(self, component: Component, instrument_id: str, *, book: bool, trades: bool) -> None:
        i = self.index[self.instrument(instrument_id).id]
        self.host.watch(component, instrument_id, book=book, trades=trades)
        self.wake_book[i] = self.wake_book[i] or bool(book)
        self.wake_trade[i] = self.wake_trade[i] or bool(trades)

    def set_venue_health(self, venue: str, state: str, reason: str) -> None:
        if venue not in self.venues:
            raise ConfigError(f"venue health: unknown venue {venue!r}; this run has {list(self.venues)}")
        now = self.clock.now()
        if self.host.health.set(venue, state, reason, now):
            self.audit.write(now, "decision", action="venue_health", venue=venue, state=state, reason=reason)
            self.host.on_venue_health(self.ctx, venue, state)

    # -- the user's code -------------------------------------------------------------------
    def _call(self, callback: str, method: Callable[..., None], *args: Any) -> None:
        """`method(ctx, *args)`: a strategy or component callback, its exceptions located."""
        try:
            method(self.ctx, *args)
        except Exception as exc:
            self._user_failed(callback, exc)

    def _user_failed(self, callback: str, exc: Exception) -> NoReturn:
        """Raise what the strategy's `callback` raising `exc` means for the user.

        When the user's code is on the stack (their ZeroDivisionError, or an OffGridError
        from their ctx.submit): one StrategyError naming the callback and their file:line,
        caused by `exc` (so --debug shows their traceback). Otherwise `exc` itself: our
        bug (internal, exit 1), or an error already located.
        """
        if isinstance(exc, InternalError) or getattr(exc, "location", None):
            raise exc
        if user_location(exc.__traceback__, self._user_files) is None:
            raise exc
        raise user_code_error(callback, exc, self._user_files) from exc

    # -- timers --------------------------------------------------------------------------
    def schedule(self, every_ns: int | None = None, at_ns: int | None = None,
                 owner: Component | None = None) -> int:
        if every_ns is None and at_ns is None:
            raise StrategyError("ctx.schedule needs every_ns and/or at_ns")
        if every_ns is not None and (not isinstance(every_ns, int) or every_ns <= 0):
            raise StrategyError(f"ctx.schedule every_ns={every_ns!r}: expected a positive int (ns)")
        now = self.clock.now()
        first = at_ns if at_ns is not None else now + every_ns  # type: ignore[operator]
        first = max(int(first), now)
        timer_id = self._timer_seq
        self._timer_seq += 1
        self._timer_every[timer_id] = every_ns
        if owner is not None:
            self._timer_owner[timer_id] = owner
        heapq.heappush(self._timers, (first, timer_id, timer_id))
        return timer_id

    def unschedule(self, timer_id: int) -> None:
        self._timer_every.pop(timer_id, None)
        self._timer_owner.pop(timer_id, None)

    def next_timer_ts(self) -> int | None:
        while self._timers and self._timers[0][2] not in self._timer_every:
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    def fire_timers(self, ts: int) -> None:
        """Run every timer due at or before ts, in (time, creation) order."""
        while (due := self.next_timer_ts()) is not None and due <= ts:
            _, _, timer_id = heapq.heappop(self._timers)
            every = self._timer_every.get(timer_id)
            owner = self._timer_owner.get(timer_id)
            if every is None:
                self._timer_every.pop(timer_id, None)
                self._timer_owner.pop(timer_id, None)
            else:
                self._timer_seq += 1
                heapq.heappush(self._timers, (due + every, self._timer_seq, timer_id))
            self._trigger_ts = due
            self._call("on_timer", (owner if owner is not None else self.strategy).on_timer, due)
            self._flush()

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        self.audit.write(self.clock.now(), R.START.type, **R.START.fields(type(self.strategy).__name__))
        self._trigger_ts = self.clock.now()
        self._call("on_start", self.strategy.on_start)
        self._flush()

    def stop(self) -> None:
        """End the session: on_stop, the components' on_stop, the stop record, the seal.

        A StrategyError of the user's code here (on_stop itself, or an on_order for an
        update it caused) does not cut the end short: every later part still runs (a
        run directory must be complete, its audit log closed, whatever the strategy did
        at its end), then the first such error is raised. The same code runs in a replay,
        so the exception is part of the recorded behaviour."""
        self._trigger_ts = self.clock.now()
        first: StrategyError | None = None
        for part in (functools.partial(self._call, "on_stop", self.strategy.on_stop), self._flush,
                     functools.partial(self._call, "on_stop", self.host.on_stop), self._flush):
            try:
                part()
            except StrategyError as exc:
                first = exc if first is None else first
        self._stop_record()
        if first is not None:
            raise first

    def _stop_record(self) -> None:
        """The stop record and the seal, once the callbacks of the end have run."""
        self.audit.write(self.clock.now(), R.STOP.type, **R.STOP.fields(len(self.oms.by_no), self.fill_count))
        self.audit.seal(self.clock.now())
        if self.guard.control is not None:
            self.guard.control.close()  # nothing reads the inbox any more

    # -- market callbacks ----------------------------------------------------------------
    def on_book(self, instrument_index: int) -> None:
        self._trigger_ts = self.clock.now()
        book = self._books[self._ids[instrument_index]]
        self.contingent.on_book(instrument_index)  # armed triggers first, subscribed or not
        self._flush()
        if self.host.components:  # none running (most strategies): nothing to dispatch
            self._call("on_book", self.host.on_book, book)
            self._flush()
        if self._strategy_book[instrument_index]:
            self._call("on_book", self.strategy.on_book, book)
            self._flush()

    def on_trade(self, instrument_index: int, side: int, price: int, qty: int, exch_ts: int) -> None:
        self._trigger_ts = self.clock.now()
        inst = self._by_index(instrument_index)
        trade = TradeView(inst.id, "buy" if side > 0 else "sell", inst.ticks_to_price(price),
                          inst.lots_to_qty(qty), self.clock.now(), exch_ts)
        self.contingent.on_trade(instrument_index, price)  # armed triggers first, subscribed or not
        self._flush()
        if self.host.components:
            self._call("on_trade", self.host.on_trade, trade)
            self._flush()
        if self._strategy_trade[instrument_index]:
            self._call("on_trade", self.strategy.on_trade, trade)
            self._flush()

    def _by_index(self, instrument_index: int) -> Instrument:
        return self.instruments[self._ids[instrument_index]]

    # -- order entry ---------------------------------------------------------------------
    def submit(self, *, instrument: str, side: int, qty: Decimal, price: Decimal | None,
               order_type: str, tif: str | None, post_only: bool, reduce_only: bool,
               client_id: str | None, expire_ns: int | None, parent_id: str | None) -> str:
        """See `Context.submit`; `tif` None = GTC for a limit order, IOC for a market order."""
        inst = self.instruments.get(instrument) or self.instrument(instrument)
        if order_type not in _TYPES:
            raise OrderError(f"type={order_type!r}: expected 'limit' or 'market'")
        if tif is None:
            tif = "IOC" if order_type == "market" else "GTC"
        if tif not in _TIFS:
            raise OrderError(f"tif={tif!r}: expected one of {list(_TIFS)}")
        otype, otif = _TYPES[order_type], _TIFS[tif]
        if otype is _LIMIT and price is None:
            raise OrderError(f"limit order on {instrument} needs a price")
        if otype is _MARKET and price is not None:
            raise OrderError("market orders take no price (use a limit IOC for a price cap)")
        if otype is _MARKET and otif not in _MARKET_TIFS:
            # the venue cancels whatever a market order does not fill at once: it is IOC
            raise OrderError(f"market order with tif={tif!r}: a market order never rests; "
                             "leave tif out (IOC) or pass 'FOK'")
        if otif is _GTD and expire_ns is None:
            raise OrderError("tif='GTD' needs expire_ns (venue time in ns)")
        if qty <= 0:
            raise OrderError(f"qty={qty}: must be > 0")
        grid = self._grids[inst.id]
        qty_lots = _on_grid(grid.lots, inst.qty_to_lots, qty)
        price_ticks = _on_grid(grid.ticks, inst.price_to_ticks, price) if price is not None else 0
        if post_only:
            otif, tif = _GTX, "GTX"
        now = self.clock.now()
        if client_id is not None and self.oms.is_duplicate(client_id):
            self._reject_duplicate(client_id, inst, side, qty, price, now)
            return client_id
        index = grid.index
        bid_px, bid_qty, ask_px, ask_qty = self.venues[inst.venue].top_of_book(index)
        # the arrival prices: the grid's remembered Decimals looked up here, `_price_of` only
        # on a miss (as `_update` does; two frames a price otherwise, every submit)
        prices = grid.prices
        best_bid = best_ask = None
        if bid_qty > 0:
            best_bid = prices.get(bid_px)
            if best_bid is None:
                best_bid = _price_of(grid, bid_px)
        if ask_qty > 0:
            best_ask = prices.get(ask_px)
            if best_ask is None:
                best_ask = _price_of(grid, ask_px)
        # OrderManager.create's parameters by position (no keyword matching: bench/PROFILE.md 1i):
        # instrument, instrument_index, side, type, tif, price, qty, client_id, post_only,
        # reduce_only, gtd_ts, parent_id, created_ts, trigger_ts, arrival_bid, arrival_ask
        order = self.oms.create(inst, index, side, otype, otif, price_ticks, qty_lots, client_id, otif is _GTX,
                                reduce_only, int(expire_ns or 0), parent_id, now, self._trigger_ts, best_bid,
                                best_ask)
        # the record `audit.write(now, "decision", action="submit", client_id=..., instrument=...,
        # side=..., type=order_type, tif=..., qty=..., price=..., reduce_only=..., parent_id=...)`
        # writes, through its compiled shape (bench/PROFILE.md 1c)
        self.audit.write_shaped(_SUBMIT_DECISION, now, order.client_id, inst.id, "buy" if side > 0 else "sell",
                                order_type, tif, grid.text_of(qty), None if price is None else grid.text_of(price),
                                reduce_only, parent_id, hold=True)  # flushed with the next record
        try:
            self._decide(order, inst, side, qty, price, reduce_only, best_bid, best_ask, now)
        except BaseException:
            self.audit.flush()  # the held decision is on disk whatever went wrong
            raise
        return order.client_id

    def _decide(self, order: Order, inst: Instrument, side: int, qty: Decimal, price: Decimal | None,
                reduce_only: bool, best_bid: Decimal | None, best_ask: Decimal | None, now: int) -> None:
        """A new PENDING order's checks (gate, venue rules, margin, risk), then sent,
        refused or held for approval: each writes its audit record (the decision's flush)."""
        reason = ReasonCode.FAIL_CLOSED if self.gate is not None and self.gate.closed else None
        if reason is None:  # live modes fail closed after a reconciliation mismatch (engine/reconcile.py)
            reason = self._venue_rules(order, qty, price, best_bid, best_ask)
        if reason is None and inst.contract:  # the venue's margin check (engine/margin.py)
            reason = self._margin_check(order, price)
        if reason is None:
            reason = self.guard.pre_submit(order, now=now, side=side, reduce_only=reduce_only)
        if reason == PENDING_APPROVAL:  # held (status pending) until approved, refused or timed out
            self._pending.append(self._new_order_update(order, now, Event.PENDING_APPROVAL))
        elif reason is not None:
            self._refuse(order, now, str(reason))
        else:
            self._send(order, now)

    def _refuse(self, order: Order, now: int, reason: str) -> None:
        """A PENDING order refused before sending: REJECTED update with `reason`."""
        self.oms.set_status(order, OrderStatus.REJECTED, now, reason)
        order.ack_ts = now
        self.audit.write_shaped(_REJECT, now, order.client_id, reason)
        self._pending.append(self._new_order_update(order, now, Event.REJECTED))

    def _send(self, order: Order, now: int) -> None:
        """A PENDING order that passed every check goes to its venue."""
        self.oms.set_status(order, _SUBMITTED, now)
        # audit.write(now, "request", action="submit", client_id=..., venue=...): written
        # (and, in live modes, handed to the OS) before the venue sees the order
        self.audit.write_shaped(_SUBMIT_REQUEST, now, order.client_id, order.instrument.venue)
        try:  # the venue first: a live venue hands the request to ccxt synchronously in here
            self.venues[order.instrument.venue].submit(order, now)
        finally:  # then risk holds its quantity as in-flight exposure (nothing in between reads it)
            self.guard.sent(order)

    def _venue_rules(self, order: Order, qty: Decimal, price: Decimal | None,
                     best_bid: Decimal | None, best_ask: Decimal | None) -> ReasonCode | None:
        """The venue's own filters (min qty / min notional), refused before sending like ccxt."""
        reference = order.price  # ticks; a market order is valued at the touch it would take
        if not reference:
            touch = best_ask if order.side > 0 else best_bid
            reference = 0 if touch is None else order.instrument.price_to_ticks(touch)
        return self.risk.venue_rules(order.instrument_index, order.qty, reference)  # engine.risk_nb

    def _reject_duplicate(self, client_id: str, inst: Instrument, side: int, qty: Decimal,
                          price: Decimal | None, now: int) -> None:
        reason = ReasonCode.DUPLICATE_CLIENT_ID.value
        self.audit.write(now, "reject", client_id=client_id, reason=reason)
        self._pending.append(OrderUpdate(
            client_id=client_id, instrument=inst.id, side="buy" if side > 0 else "sell",
            status=Status.REJECTED, event=Event.REJECTED, filled_qty=Decimal(0), leaves_qty=Decimal(0),
            last_fill_price=None, last_fill_qty=Decimal(0), fee=Decimal(0), liquidity=None,
            reason=reason, ts=now, price=price, qty=qty))

    def open_parent(self, instrument: str, side: int, qty: Decimal, parent_id: str | None) -> str:
        inst = self.instrument(instrument)
        if qty <= 0:
            raise OrderError(f"parent qty={qty}: must be > 0")
        inst.qty_to_lots(qty)
        parent_id = parent_id or f"parent-{len(self.oms.parents) + 1}"
        if self.oms.is_duplicate(parent_id):
            raise OrderError(f"parent id {parent_id!r} is already used by an order or parent")
        now = self.clock.now()
        bid_px, bid_qty, ask_px, ask_qty = self.venues[inst.venue].top_of_book(self.index[inst.id])
        self.oms.parents[parent_id] = ParentOrder(
            parent_id=parent_id, instrument=inst, side=side, qty=qty, created_ts=now,
            trigger_ts=self._trigger_ts,
            arrival_bid=inst.ticks_to_price(bid_px) if bid_qty > 0 else None,
            arrival_ask=inst.ticks_to_price(ask_px) if ask_qty > 0 else None)
        self.audit.write(now, "decision", action="open_parent", parent_id=parent_id, instrument=inst.id,
                         side="buy" if side > 0 else "sell", qty=decimal_str(qty))
        return parent_id

    def close_parent(self, parent_id: str, reason: str) -> bool:
        parent = self.oms.parents.get(parent_id)
        if parent is None or parent.done_ts is not None:
            return False
        now = self.clock.now()
        parent.status = OrderStatus.FILLED if parent.filled >= parent.qty else OrderStatus.CANCELLED
        parent.reason = None if parent.status == OrderStatus.FILLED else reason
        parent.done_ts = now
        self.audit.write(now, "decision", action="close_parent", parent_id=parent_id, reason=parent.reason)
        return True

    def cancel(self, client_id: str) -> bool:
        if self.contingent.owns(client_id):  # an emulated order or group: its rules decide
            return self.contingent.cancel(client_id)
        order = self.oms.by_client.get(client_id)
        if order is None or not order.is_open:
            return False
        now = self.clock.now()
        if order.status == OrderStatus.PENDING:  # waiting for approval: never sent, refused here
            return self.guard.refuse(client_id, "strategy", "cancelled while waiting for approval")
        if self.cancel_in_flight(order):
            # one pending cancel per order: a second one while the first waits (a 429's hold,
            # a 418 ban, the request budget) or travels would only queue another request
            # behind it, sent once the venue allows and refused there as an unknown order
            # (the first closed it), each refusal then looked up: a strategy re-cancelling on
            # every tick stacked dozens per order during a ban. It is a no-op with the
            # pending cancel's outcome (True: the cancel is on its way; the order's update
            # comes when the venue answers it), audited, in every mode alike.
            self.audit.write(now, "decision", action="cancel_coalesced", client_id=client_id)
            return True
        refused = self.guard.pre_cancel(now)
        if refused is not None:
            self._pending.append(self._new_order_update(order, now, Event.CANCEL_REJECTED, reason=str(refused)))
            return False
        order.cancel_req_ts = now
        self._in_flight.setdefault(order.order_no, deque()).append(("cancel", 0, 0))
        self.audit.write_shaped(_CANCEL_REQUEST, now, client_id)
        self.venues[order.instrument.venue].cancel(order, now)
        return True

    def amend(self, client_id: str, *, qty: Decimal | None, price: Decimal | None) -> bool:
        order = self.oms.by_client.get(client_id)
        if order is None or not order.is_open:
            return False
        if order.type == OrderType.MARKET:
            raise OrderError(f"amend {client_id}: market orders cannot be amended")
        inst = order.instrument
        new_qty = inst.qty_to_lots(qty) if qty is not None else order.qty
        new_price = inst.price_to_ticks(price) if price is not None else order.price
        now = self.clock.now()
        refused = self.guard.pre_amend(order, new_price, new_qty, now)
        if refused is None and self.gate is not None and self.gate.closed and self.gate.amends:
            refused = ReasonCode.FAIL_CLOSED  # the session is stopping: its orders are being cancelled
        if refused is None and inst.contract and (new_qty > order.qty or new_price != order.price):
            # an amend that adds or moves exposure is checked as a new order would be
            refused = self._margin_check(order, inst.ticks_to_price(new_price), max(new_qty - order.filled, 0))
        if refused is not None:
            self._pending.append(self._new_order_update(order, now, Event.AMEND_REJECTED, reason=str(refused)))
            return False
        self._in_flight.setdefault(order.order_no, deque()).append(("amend", new_price, new_qty))
        self.audit.write(now, "request", action="amend", client_id=client_id,
                         qty=decimal_str(inst.lots_to_qty(new_qty)), price=decimal_str(inst.ticks_to_price(new_price)))
        self.venues[inst.venue].amend(order, new_price, new_qty, now)
        return True

    def order_view(self, client_id: str) -> OrderView | None:
        """A read-only Decimal snapshot of an order (`ctx.order`), or None if unknown."""
        order = self.oms.by_client.get(client_id)
        if order is None:
            return None
        inst = order.instrument
        grid = self._grids[inst.id]  # remembered conversions (a quoting strategy asks per timer)
        return _new_order_view(
            client_id=order.client_id, instrument=inst.id, side=order.side_name,
            type=_TYPE_NAMES[order.type], tif=_TIF_NAMES[order.tif], status=_STATUS_BY_CODE[order.status],
            price=_price_of(grid, order.price) if order.type == _LIMIT else None,
            qty=_qty_of(grid, order.qty), filled_qty=_qty_of(grid, order.filled),
            leaves_qty=_qty_of(grid, order.leaves), avg_fill_price=order.avg_fill_price,
            fees=order.fees, reason=order.reason, post_only=order.post_only,
            reduce_only=order.reduce_only, parent_id=order.parent_id, expire_ns=order.gtd_ts or None,
            created_ts=order.created_ts, ack_ts=order.ack_ts, first_fill_ts=order.first_fill_ts,
            last_fill_ts=order.last_fill_ts, cancel_req_ts=order.cancel_req_ts, done_ts=order.done_ts)

    # -- venue responses: engine/venue_merge.py (on_order_event, on_command_result,
    # on_venue_state, on_venue_fill, on_balances) ---------------------------------------------
    def _update(self, order: Order, now: int, event: Event, fill_price: Decimal | None = None,
                fill_qty: Decimal | None = None, fee: Decimal = Decimal(0),
                liquidity: str | None = None, reason: str | None = None,
                fee_charged: Decimal | None = None, fee_asset: str | None = None) -> OrderUpdate:
        """The strategy's `OrderUpdate` of `order` now, for a caller that hands it on at once
        (`_venue_update`, `_deliver`): when nobody would read it (`_unread`), the event's
        `_Unread` stand-in instead (nothing built: one update per venue report, 0.65 us of
        lookups and the record warm, 2-3x that in the loop; bench/PROFILE.md 1j). A caller
        that keeps the update for later (`_pending`) builds it with `_new_order_update`: who
        reads it may change before it is delivered."""
        if self._unread(order):
            return _UNREAD[event]  # type: ignore[return-value]
        return self._new_order_update(order, now, event, fill_price, fill_qty, fee, liquidity, reason,
                                      fee_charged, fee_asset)

    def _unread(self, order: Order) -> bool:
        """True when an update of `order` would reach nobody: no component runs, the strategy
        keeps `Strategy.on_order` (which does nothing), the order is no contingent leg, and
        risk reads no fill price (no slippage trigger)."""
        if self.host.components or order.client_id in self.contingent.by_order:
            return False
        if getattr(self.strategy.on_order, "__func__", None) is not _QUIET_ON_ORDER:
            return False
        return self.risk.config.disable_slippage_bps is None

    def _new_order_update(self, order: Order, now: int, event: Event, fill_price: Decimal | None = None,
                          fill_qty: Decimal | None = None, fee: Decimal = Decimal(0),
                          liquidity: str | None = None, reason: str | None = None,
                          fee_charged: Decimal | None = None, fee_asset: str | None = None) -> OrderUpdate:
        """The `OrderUpdate` of `order` now (always built: see `_update`)."""
        inst = order.instrument
        grid = self._grids[inst.id]
        # the grid's remembered conversions looked up here, `_qty_of` / `_price_of` only on a
        # miss (one dict hit each instead of two calls: every order event builds an update)
        qtys, filled, leaves = grid.qtys, order.filled, order.leaves
        filled_qty = qtys.get(filled)
        if filled_qty is None:
            filled_qty = _qty_of(grid, filled)
        leaves_qty = qtys.get(leaves)
        if leaves_qty is None:
            leaves_qty = _qty_of(grid, leaves)
        qty = qtys.get(order.qty)
        if qty is None:
            qty = _qty_of(grid, order.qty)
        price = None
        if order.type is _LIMIT:
            price = grid.prices.get(order.price)
            if price is None:
                price = _price_of(grid, order.price)
        # OrderUpdate's fields in their order: client_id, instrument, side, status, event,
        # filled_qty, leaves_qty, last_fill_price, last_fill_qty, fee, liquidity, reason, ts,
        # price, qty, parent_id, fee_charged, fee_asset (test_engine_session pins the update)
        return _new_update(
            order.client_id, inst.id, order.side_name, _STATUS_BY_CODE[order.status], event, filled_qty,
            leaves_qty, fill_price, fill_qty if fill_qty is not None else _ZERO, fee, liquidity,
            order.reason if reason is None else reason, now, price, qty, order.parent_id, fee_charged, fee_asset)

    def _flush(self) -> None:
        """Deliver updates the strategy caused itself (local rejects) after its callback."""
        while self._pending:
            self._deliver(self._pending.popleft())

    def _deliver(self, update: OrderUpdate) -> None:
        """An order update goes to the component that owns its parent, then to the strategy
        (an `_Unread` stand-in to nobody: `_update` made it because nobody reads updates)."""
        if type(update) is _Unread:
            return
        if self.host.components:  # none running (most strategies): nothing to dispatch
            self._call("on_order", self.host.on_order, update)
        on_order = self.strategy.on_order
        if getattr(on_order, "__func__", None) is not _QUIET_ON_ORDER:  # Strategy's own does nothing
            self._call("on_order", on_order, update)

    # -- marks and notes -----------------------------------------------------------------
    def marks(self) -> dict[str, Decimal]:
        """{instrument: mid} of every book with both sides (`BookView.mid`, remembered per
        bid + ask in the instrument's grid: the equity sample after every fill asks)."""
        out: dict[str, Decimal] = {}
        grids = self._grids
        for inst_id, book in self._books.items():
            bid_px, bid_qty, ask_px, ask_qty = book._top()
            if bid_qty > 0 and ask_qty > 0:
                out[inst_id] = grids[inst_id].mid(bid_px, ask_px)
        return out

    def sample_equity(self) -> None:
        """One equity sample (the backtest takes one after every fill) to the recorder, and
        the PnL to the risk triggers: `Ledger.figures` at the local mids."""
        marks = self.marks()
        ledger = self.ledger
        now = self.clock.now()
        quote_marks = self.quote_marks.at(now) if self.quote_marks is not None else None
        equity, realized, unrealized, fees = ledger.figures(marks, quote_marks)
        position, floats = ledger.position, self._mark_floats
        positions = []
        for inst_id in self.instruments:
            mark = marks.get(inst_id)
            if mark is None:
                positions.append((inst_id, position(inst_id), _NAN))
                continue
            # a mid's float, remembered by value (equal Decimals have one float: 1.5 and 1.50)
            as_float = floats.get(mark)
            if as_float is None:
                if len(floats) >= _GRID_CACHE:
                    floats.clear()
                as_float = floats[mark] = float(mark)
            positions.append((inst_id, position(inst_id), as_float))
        self.recorder.equity(now, equity, realized, unrealized, fees, positions)
        guard = self.guard
        if guard.pending or guard.pnl_on:  # what on_pnl would do anything with (the PnL sum: exact Decimals)
            guard.on_pnl(now, realized - fees + unrealized)

    def audit_note(self, message: str, fields: dict[str, object]) -> None:
        self.audit.write(self.clock.now(), "note", message=message, **{k: str(v) for k, v in fields.items()})

    # -- derivatives (engine/margin.py, docs/derivatives.md) -------------------------------
    def _margin_check(self, order: Order, price: Decimal | None, lots: int | None = None) -> ReasonCode | None:
        """The contract venue's margin check and the [risk] leverage / margin-ratio limits
        for `lots` (default the order's quantity; an amend: what is left to fill after it)."""
        others = [(o.instrument, o.side, o.leaves,
                   o.instrument.ticks_to_price(o.price) if o.type == OrderType.LIMIT else None)
                  for o in self.oms.open_orders() if o is not order and o.instrument.contract]
        cfg = self.risk.config
        inst = order.instrument
        bid_px, bid_qty, ask_px, ask_qty = self.venues[inst.venue].top_of_book(self.index[inst.id])
        touch_px, touch_qty = (ask_px, ask_qty) if order.side > 0 else (bid_px, bid_qty)
        return self.ledger.derivatives.check_order(
            inst, order.side, order.qty if lots is None else lots, price, others,
            getattr(cfg, "max_leverage", None), getattr(cfg, "max_margin_ratio", None),
            touch=inst.ticks_to_price(touch_px) if touch_qty > 0 else None)

    def on_liquidation(self, liquidation: Any, exch_ts: int, fee: Decimal = Decimal(0)) -> str:
        """The venue closed a contract position (engine.margin.Liquidation): book it as a
        filled reduce-only market order `liquidation-N` (reason `liquidation`, taker, no
        fee: the lost margin is the venue's charge; a live venue's stated `fee` otherwise),
        cancel the instrument's open orders as the venue does, and tell the strategy.
        Returns the order's client id."""
        inst = liquidation.instrument
        now = self.clock.now()
        for open_order in self.oms.open_orders(inst.id):
            self.cancel(open_order.client_id)
        self._trigger_ts = now
        order = self.oms.create(
            client_id=f"{liquidation.reason}-{len(self.ledger.derivatives.liquidations) + 1}", instrument=inst,
            instrument_index=self.index[inst.id], side=liquidation.side, type=OrderType.MARKET,
            tif=TimeInForce.IOC, price=0, qty=liquidation.lots, reduce_only=True, created_ts=now,
            trigger_ts=now, arrival_bid=None, arrival_ask=None)
        self.ledger.derivatives.liquidations.append((now, liquidation))
        reason = liquidation.reason
        self.audit.write(now, "response", client_id=order.client_id, event=reason,
                         mark=decimal_str(liquidation.mark), margin_ratio=str(liquidation.margin_ratio),
                         exch_ts=int(exch_ts))
        self.oms.set_status(order, OrderStatus.SUBMITTED, now)
        self.oms.set_status(order, OrderStatus.ACKNOWLEDGED, now)
        order.ack_ts = now
        order.reason = reason  # the FILLED status's reason (the OMS keeps it)
        # the one booked fill (engine/venue_merge.py `_book_fill` builds the venue's): no
        # venue trade; the fee charged in the settle asset, valued in quote for the fills'
        # fee column; a delivery is no trade: its liquidity says "delivery" (reports count
        # it apart)
        grid = self._grids[inst.id]
        fee_asset = inst.settle or inst.quote
        fill = new_booked_fill(client_id=order.client_id, venue_order_id=None, trade_id=None,
                           price_ticks=liquidation.price_ticks, lots=liquidation.lots,
                           price=grid.price(liquidation.price_ticks), qty=grid.qty(liquidation.lots), fee=fee,
                           fee_asset=fee_asset,
                           fee_quote=self.ledger.fee_in_quote(inst, liquidation.price_ticks, fee, fee_asset),
                           liquidity="taker" if reason == "liquidation" else reason, exch_ts=int(exch_ts), ts=now,
                           source=reason)
        self._hand_fill(order, fill, 0)
        self._audit_fill(fill, grid)
        self._record_fill(order, fill)
        self._deliver(self._fill_update(order, fill))
        self._flush()
        return order.client_id

    def on_venue_liquidation(self, report: Any) -> str | None:
        """Live modes: a liquidation the venue reports (VenueLiquidation): the lots of the
        venue's order not booked yet are booked as `on_liquidation` books the simulated
        venue's (the venue's price and fee); None when nothing is new."""
        from engine.margin import Liquidation

        book = self.ledger.derivatives
        key = f"{report.instrument}:{report.venue_order_id}"
        lots = report.filled - book.venue_liquidated.get(key, 0)
        if lots <= 0:
            return None
        book.venue_liquidated[key] = report.filled
        inst = self.instrument(report.instrument)
        mark = book.mark_of(inst.id) or inst.ticks_to_price(report.price)
        self.audit.write(self.clock.now(), "response", event="venue_liquidation", instrument=inst.id,
                         venue_order_id=report.venue_order_id, filled=report.filled, source=report.source)
        return self.on_liquidation(Liquidation(inst, report.side, lots, report.price, mark, Decimal("NaN")),
                                   report.exch_ts, report.fee)

    def on_venue_funding(self, instrument_id: str, amount: Decimal, exch_ts: int, income_id: str) -> bool:
        """Live modes: a funding payment the venue booked (its FUNDING_FEE income `income_id`),
        booked once into the ledger (engine.margin.MarginBook.book_funding) and audited;
        False when it was booked already."""
        book = self.ledger.derivatives
        key = f"funding:{instrument_id}:{income_id}"
        if key in book.venue_trades:
            return False
        book.venue_trades.add(key)
        inst = self.instrument(instrument_id)
        book.book_funding(inst, amount)
        self.audit.write(self.clock.now(), "funding", instrument=inst.id, amount=decimal_str(amount),
                         asset=inst.settle, exch_ts=int(exch_ts), income_id=income_id, source="venue")
        return True

    def on_funding(self, instrument_id: str, rate: Decimal, mark: Decimal, exch_ts: int) -> Decimal:
        """A funding settlement of the venue: booked in the ledger (engine/margin.py) and the
        audit log; returns what the account received (negative = paid)."""
        inst = self.instrument(instrument_id)
        amount = self.ledger.derivatives.pay_funding(inst, rate, mark)
        if amount:
            self.audit.write(self.clock.now(), "funding", instrument=inst.id, rate=decimal_str(rate),
                             mark=decimal_str(mark), amount=decimal_str(amount), asset=inst.settle,
                             exch_ts=int(exch_ts))
        return amount


    # -- risk: the kill switch, states, approvals, the control inbox (engine.risk_guard) -----
    def kill(self, reason: str, *, flatten: bool = False, max_slippage_bps: Decimal | str | None = None,
             who: str = "strategy") -> dict[str, Any]:
        """The kill switch (`ctx.kill`, a config trigger, `tickparity kill RUN`)."""
        return self.guard.kill(reason, flatten=flatten, max_slippage_bps=max_slippage_bps, who=who)

    def attach_control(self, run_dir: str | Path) -> None:
        """Live modes: read operator commands from `run_dir`/control (engine.control) at each
        `poll_control()`, and make orders that need approval wait for an operator
        (`RiskEngine.interactive`) instead of the backtest's config decision."""
        from engine.control import ControlInbox

        self.guard.control = ControlInbox(run_dir)
        self.guard.control.listen()  # `tickparity kill RUN` can tell that a session reads it
        self.risk.interactive = True
        self.guard.control.write_pending(sorted(self.guard.pending))

    def apply_control(self, commands: list[Any]) -> None:
        """Apply operator commands already taken from the inbox (engine.control.Command):
        what `poll_control` does with the commands it reads (approvals past their deadline
        are refused first). The live driver journals the commands, then calls this, so a
        replay of the session applies the same commands at the same step."""
        guard = self.guard
        if guard.pending:
            guard.expire_approvals(self.clock.now())
        for command in commands:
            guard._apply_command(command)
        self._flush()

    def poll_control(self) -> int:
        """Apply operator commands from the attached control inbox (`engine.control`);
        expires approvals that waited too long. A live driver calls this between events."""
        return self.guard.poll_control()

    def risk_check(self, instrument: str, side: int, qty: Decimal, price: Decimal | None) -> str | None:
        """What risk would answer now for an order (a reason code or None), without
        counting it anywhere: the state, max_order_notional, max_position, price_band and
        the exposure limits. Contingent orders call it before they arm or trigger."""
        return self.guard.dry_check(instrument, side, qty, price)
