"""Compiled strategies: an `@njit` `on_timer` against a numba-side `ctx`, same vocabulary.

Why: a Python callback per wake-up costs more than the numba venue spends on thousands of
feed rows, so a fast market maker cannot be written in Python (issue 3, "Speed"). A
compiled strategy keeps its decision in one `@njit(cache=True)` function over a small
context of int64 arrays (ticks and lots, exactly as the engine) and writes its requests
into an action buffer. Two drivers run that same function:

- the backtest fast path (`modes.backtest_compiled`, `venues.sim.compiled_nb`): the whole
  replay loop stays in numba; the recorded requests and venue responses are then fed
  through the normal `TradingSession` (OMS, risk, exact ledger, audit, run directory);
- `as_strategy(Cls, **params)`: a plain `Strategy` that builds the context from `ctx`,
  calls the same function and executes the actions through `ctx.submit`/`ctx.cancel`, so
  the strategy runs unchanged in paper, testnet and live modes (and in a normal backtest).

See README "Compiled strategies" for how to write one and for the parity guarantee.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numba import njit

from engine.errors import OrderError, StrategyError, code_location, user_code_error
from engine.strategy import Strategy, strategy_files
from engine.types import Instrument, TimeInForce

# --- sides, time in force (plain int64: numba compares them as constants) --------------
BUY = np.int64(1)
SELL = np.int64(-1)
GTC = np.int64(int(TimeInForce.GTC))
IOC = np.int64(int(TimeInForce.IOC))
FOK = np.int64(int(TimeInForce.FOK))
GTX = np.int64(int(TimeInForce.GTX))
COMPILED_TIFS = (int(GTC), int(IOC), int(FOK), int(GTX))

# --- context layout: ctx = (scalars, book, position, open orders, actions) --------------
CX_NOW = np.int64(0)  # local time, ns
CX_TS = np.int64(1)  # the timer's scheduled time
CX_NOPEN = np.int64(2)
CX_NACT = np.int64(3)
CX_NINST = np.int64(4)
CX_DROPPED = np.int64(5)  # actions refused because the buffer was full
CX_NF = np.int64(6)

# book[i] = (bid_px, bid_qty, ask_px, ask_qty), qty 0 = empty side
BK_BID = np.int64(0)
BK_BID_QTY = np.int64(1)
BK_ASK = np.int64(2)
BK_ASK_QTY = np.int64(3)

# open orders, oldest first
OO_NO = np.int64(0)
OO_INST = np.int64(1)
OO_SIDE = np.int64(2)
OO_PRICE = np.int64(3)
OO_QTY = np.int64(4)
OO_LEAVES = np.int64(5)
OO_CANCELLING = np.int64(6)  # 1 once a cancel was sent
OO_TIF = np.int64(7)
OO_NF = np.int64(8)

# actions
ACT_SUBMIT = np.int64(1)
ACT_CANCEL = np.int64(2)
A_KIND = np.int64(0)
A_INST = np.int64(1)
A_SIDE = np.int64(2)
A_QTY = np.int64(3)
A_PRICE = np.int64(4)
A_TIF = np.int64(5)
A_ORDER_NO = np.int64(6)  # cancel: the order number
A_NF = np.int64(7)

MAX_ACTIONS = 64
MAX_OPEN = 256


def new_context(n_instruments: int, max_open: int = MAX_OPEN, max_actions: int = MAX_ACTIONS) -> tuple:
    """A fresh context tuple (the arrays the njit helpers below read and write)."""
    scalars = np.zeros(CX_NF, dtype=np.int64)
    scalars[CX_NINST] = n_instruments
    return (scalars, np.zeros((n_instruments, 4), dtype=np.int64), np.zeros(n_instruments, dtype=np.int64),
            np.zeros((max_open, OO_NF), dtype=np.int64), np.zeros((max_actions, A_NF), dtype=np.int64))


# --- the numba-side ctx vocabulary ------------------------------------------------------
@njit(cache=True, inline="always")
def now(ctx):
    """Local time in ns (ctx.now)."""
    return ctx[0][CX_NOW]


@njit(cache=True, inline="always")
def best_bid(ctx, instrument):
    """Local best bid in ticks; check best_bid_qty > 0 first (0 = empty side)."""
    return ctx[1][instrument, BK_BID]


@njit(cache=True, inline="always")
def best_bid_qty(ctx, instrument):
    return ctx[1][instrument, BK_BID_QTY]


@njit(cache=True, inline="always")
def best_ask(ctx, instrument):
    return ctx[1][instrument, BK_ASK]


@njit(cache=True, inline="always")
def best_ask_qty(ctx, instrument):
    return ctx[1][instrument, BK_ASK_QTY]


@njit(cache=True, inline="always")
def position(ctx, instrument):
    """Signed position in lots (long > 0)."""
    return ctx[2][instrument]


@njit(cache=True, inline="always")
def open_count(ctx):
    """Number of orders not yet final (all instruments), indexed 0..n-1 oldest first."""
    return ctx[0][CX_NOPEN]


@njit(cache=True, inline="always")
def order_no(ctx, k):
    return ctx[3][k, OO_NO]


@njit(cache=True, inline="always")
def order_instrument(ctx, k):
    return ctx[3][k, OO_INST]


@njit(cache=True, inline="always")
def order_side(ctx, k):
    return ctx[3][k, OO_SIDE]


@njit(cache=True, inline="always")
def order_price(ctx, k):
    return ctx[3][k, OO_PRICE]


@njit(cache=True, inline="always")
def order_qty(ctx, k):
    return ctx[3][k, OO_QTY]


@njit(cache=True, inline="always")
def order_leaves(ctx, k):
    return ctx[3][k, OO_LEAVES]


@njit(cache=True, inline="always")
def order_cancelling(ctx, k):
    """True once a cancel of open order k was sent (it may still fill before it lands)."""
    return ctx[3][k, OO_CANCELLING] != 0


@njit(cache=True)
def submit(ctx, instrument, side, qty, price, tif, post_only):
    """Queue a limit order (lots, ticks); returns False if the action buffer is full.

    `post_only` turns any tif into GTX, as `ctx.submit(..., post_only=True)` does.
    """
    scalars = ctx[0]
    acts = ctx[4]
    n = scalars[CX_NACT]
    if n >= acts.shape[0]:
        scalars[CX_DROPPED] += 1
        return False
    acts[n, A_KIND] = ACT_SUBMIT
    acts[n, A_INST] = instrument
    acts[n, A_SIDE] = side
    acts[n, A_QTY] = qty
    acts[n, A_PRICE] = price
    acts[n, A_TIF] = GTX if post_only else tif
    acts[n, A_ORDER_NO] = 0
    scalars[CX_NACT] = n + 1
    return True


@njit(cache=True)
def cancel(ctx, number):
    """Queue a cancel of an open order (by order number); False if it is not open, a cancel
    is already on its way, or the action buffer is full."""
    scalars = ctx[0]
    oo = ctx[3]
    k = -1
    for j in range(scalars[CX_NOPEN]):
        if oo[j, OO_NO] == number:
            k = j
            break
    if k < 0 or oo[k, OO_CANCELLING] != 0:
        return False
    acts = ctx[4]
    n = scalars[CX_NACT]
    if n >= acts.shape[0]:
        scalars[CX_DROPPED] += 1
        return False
    acts[n, A_KIND] = ACT_CANCEL
    acts[n, A_INST] = 0
    acts[n, A_SIDE] = 0
    acts[n, A_QTY] = 0
    acts[n, A_PRICE] = 0
    acts[n, A_TIF] = 0
    acts[n, A_ORDER_NO] = number
    scalars[CX_NACT] = n + 1
    oo[k, OO_CANCELLING] = 1
    return True


# --- the strategy class -----------------------------------------------------------------
class CompiledStrategy:
    """Base class of a compiled strategy (see README "Compiled strategies").

    Subclasses set `timer_nb` to an `@njit(cache=True)` function `(ctx, params, state)`,
    take their parameters as constructor keywords (from `[run.params]`), set `every_ns`
    (the timer period) and may override `setup` to turn parameters into the int64
    `params` array (ticks/lots, using the instruments' specs) and `state_size`.
    """

    timer_nb: Any = None
    every_ns: int = 100_000_000
    state_size: int = 0
    fast_path: bool = True  # False: a backtest runs it through the plain Python path instead
    # False: the fast path books the loop's log one order event at a time through the
    # session (the reference the bulk pass of engine/bulk.py is tested against)
    bulk_books: bool = True

    def setup(self, instruments: Sequence[Instrument]) -> np.ndarray:
        """int64 parameters handed to `timer_nb`; default: none."""
        return np.zeros(0, dtype=np.int64)

    def new_state(self) -> np.ndarray:
        """float64 state kept between calls (zeros at the start)."""
        return np.zeros(int(self.state_size), dtype=np.float64)


def timer_function(strategy: CompiledStrategy) -> Any:
    fn = getattr(type(strategy), "timer_nb", None)
    if fn is None or not hasattr(fn, "py_func"):
        raise StrategyError(f"{type(strategy).__name__}.timer_nb must be an @njit function (ctx, params, state)")
    every = strategy.every_ns
    if not isinstance(every, int) or every <= 0:
        raise StrategyError(f"{type(strategy).__name__}.every_ns = {every!r}: expected a positive int (ns)")
    return fn


def is_compiled(cls: type) -> bool:
    return isinstance(cls, type) and issubclass(cls, CompiledStrategy)


# --- paper / live / plain backtest: the same function behind a normal Strategy ------------
_TIF_NAMES = {int(t): t.name for t in TimeInForce}


class CompiledAdapter(Strategy):
    """A `Strategy` that runs a `CompiledStrategy`'s `timer_nb` through the public `ctx`."""

    def __init__(self, compiled: CompiledStrategy) -> None:
        self.compiled = compiled
        self._fn = timer_function(compiled)
        self.submits = 0
        self.cancels = 0
        self.replay: Any = None  # set by the backtest fast path: actions come from its log

    def on_start(self, ctx) -> None:
        self.prepare([ctx.instrument(i) for i in ctx.instruments])
        ctx.schedule(every_ns=self.compiled.every_ns)

    def prepare(self, specs: Sequence[Instrument]) -> None:
        """Parameters, state and an empty context for these instruments (in run order)."""
        self._specs = list(specs)
        self._ids = [spec.id for spec in self._specs]
        self._index = {inst_id: i for i, inst_id in enumerate(self._ids)}
        self._params = np.ascontiguousarray(self.compiled.setup(self._specs), dtype=np.int64)
        self._state = self.compiled.new_state()
        self._ctx = new_context(len(self._ids))

    def on_timer(self, ctx, ts: int) -> None:
        if self.replay is not None:
            self.replay.on_timer(ctx, ts)
            return
        scalars, book, pos, oo, _ = self._ctx
        scalars[CX_NOW] = ctx.now
        scalars[CX_TS] = ts
        scalars[CX_NACT] = 0
        for i, (inst_id, spec) in enumerate(zip(self._ids, self._specs, strict=True)):
            view = ctx.book(inst_id)
            bid, ask = view.best_bid, view.best_ask
            book[i, BK_BID] = spec.price_to_ticks(bid) if bid is not None else 0
            book[i, BK_BID_QTY] = spec.qty_to_lots(view.best_bid_qty) if bid is not None else 0
            book[i, BK_ASK] = spec.price_to_ticks(ask) if ask is not None else 0
            book[i, BK_ASK_QTY] = spec.qty_to_lots(view.best_ask_qty) if ask is not None else 0
            pos[i] = spec.qty_to_lots(ctx.position(inst_id))
        clients: dict[int, str] = {}
        n = 0
        oms = ctx._session.oms  # the engine's own records: the numba side needs order numbers and ticks
        for client_id in ctx.open_orders():
            order = oms.by_client[client_id]
            if n >= oo.shape[0]:
                raise StrategyError(f"compiled strategy: more than {oo.shape[0]} open orders")
            oo[n, OO_NO] = order.order_no
            oo[n, OO_INST] = self._index[order.instrument.id]
            oo[n, OO_SIDE] = order.side
            oo[n, OO_PRICE] = order.price
            oo[n, OO_QTY] = order.qty
            oo[n, OO_LEAVES] = order.leaves
            oo[n, OO_CANCELLING] = 0 if order.cancel_req_ts is None else 1
            oo[n, OO_TIF] = int(order.tif)
            clients[order.order_no] = client_id
            n += 1
        scalars[CX_NOPEN] = n
        try:
            self._fn(self._ctx, self._params, self._state)
        except Exception as exc:  # the user's @njit code: numba leaves no Python frame to point at
            raise user_code_error(f"{type(self.compiled).__name__}.timer_nb", exc, strategy_files(self),
                                  code_location(self._fn)) from exc
        execute_actions(ctx, self._ctx, self._ids, self._specs, clients, self)


def execute_actions(ctx, cctx: tuple, ids: list[str], specs: list[Instrument], clients: dict[int, str],
                    counter: Any = None) -> list[str | bool]:
    """Send a context's action buffer through `ctx` in order; returns each call's result."""
    scalars, acts = cctx[0], cctx[4]
    out: list[str | bool] = []
    for a in range(int(scalars[CX_NACT])):
        row = acts[a]
        if row[A_KIND] == ACT_SUBMIT:
            i = int(row[A_INST])
            spec = specs[i]
            tif = int(row[A_TIF])
            if tif not in COMPILED_TIFS:
                raise OrderError(f"compiled strategy: tif code {tif} is not one of GTC/IOC/FOK/GTX")
            out.append(ctx.submit(ids[i], "buy" if row[A_SIDE] > 0 else "sell",
                                  spec.lots_to_qty(int(row[A_QTY])), spec.ticks_to_price(int(row[A_PRICE])),
                                  tif=_TIF_NAMES[tif]))
            if counter is not None:
                counter.submits += 1
        else:
            out.append(ctx.cancel(clients[int(row[A_ORDER_NO])]))
            if counter is not None:
                counter.cancels += 1
    scalars[CX_NACT] = 0
    return out


def as_strategy(cls: type, **params: Any) -> CompiledAdapter:
    """A normal `Strategy` running `cls(**params)`'s compiled callback (paper/live/backtest)."""
    if not is_compiled(cls):
        raise StrategyError(f"{cls!r} is not a CompiledStrategy subclass")
    return CompiledAdapter(cls(**params))
