"""The backtest fast path of a `CompiledStrategy`: numba loop first, then the session.

Why two phases: the numba loop (`venues.sim.compiled_nb.run_compiled_nb`) runs the venue
and the strategy's `timer_nb` without Python, logging every decision (timer, submit,
cancel, with the local top of book) and every venue response. Each stretch of that log —
up to the next equity sample, or a full log buffer — is then replayed, in order, through
the normal `TradingSession`: `fire_timers` makes the `CompiledAdapter` re-issue the logged
submits/cancels through `ctx.submit`/`ctx.cancel` (so OMS, risk, audit and order ids are
the ordinary ones), and each response goes through `on_order_event` (exact ledger, fills,
equity). The venue objects answer `top_of_book` from the logged snapshot during the
replay and send nothing (the numba loop already did). Risk is not decided twice: the
numba loop ran the one implementation of the pre-trade checks (`engine.risk_nb`, which
`RiskEngine` runs on the plain path) on the session's own limits, rate window and state,
and the replay takes its logged verdict (`RiskGuard.pre_submit` is handed it).

The session sees exactly the calls `modes.backtest._drive` would make for the adapter,
so orders.parquet, fills.parquet, equity and audit match the plain Python path (test:
tests/engine/test_engine_compiled.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.bulk import BulkBooks, BulkLog, agree_with_rows
from engine.bulk import unsupported as bulk_unsupported
from engine.compiled import CompiledAdapter
from engine.errors import (
    ConfigError,
    InternalError,
    OrderError,
    StrategyError,
    TickparityError,
    code_location,
    user_code_error,
)
from engine.order_state_nb import OR_NF
from engine.progress import progress
from engine.risk import COMPILED_KEYS, RiskConfig
from engine.risk_nb import REASON_OF, RISK_OK, risk_limits
from engine.types import OrderEventKind
from engine.types.orders import ORDER_EVENT_DTYPE

INT64_MAX = np.iinfo(np.int64).max
LOG_ROWS = 1 << 16
COLLECT_ROWS = 256  # responses run_nb collects between two returns to the loop
ORDER_ROWS = 1 << 14  # the loop's order rows at the start (doubled when full: CS_NEED_ROWS)
_FILL = int(OrderEventKind.FILL)
_RESP_FIELDS = ("exch_ts", "local_ts", "order_no", "instrument", "kind", "liquidity", "reason", "price",
                "qty", "filled", "leaves", "order_price")


def _bulk_columns() -> dict[str, int]:
    """engine.bulk.BulkLog's columns: where each is in a log row (venues.sim.compiled_nb LG_*)."""
    from venues.sim import compiled_nb as K

    return {"kind": K.LG_KIND, "ts": K.LG_TS, "order_no": K.LG_ORDER_NO, "inst": K.LG_INST, "side": K.LG_SIDE,
            "qty": K.LG_QTY, "price": K.LG_PRICE, "tif": K.LG_TIF, "risk": K.LG_RISK, "exch_ts": K.LG_R_EXCH_TS,
            "r_order_no": K.LG_R_ORDER_NO, "r_kind": K.LG_R_KIND, "liq": K.LG_R_LIQ, "reason": K.LG_R_REASON, "r_price": K.LG_R_PRICE,
            "r_qty": K.LG_R_QTY, "filled": K.LG_R_FILLED, "leaves": K.LG_R_LEAVES,
            "order_price": K.LG_R_ORDER_PRICE, "status": K.LG_R_STATUS}


def uses_fast_path(strategy: Any) -> bool:
    return isinstance(strategy, CompiledAdapter) and bool(getattr(strategy.compiled, "fast_path", False))


def check_compiled_risk(config: RiskConfig) -> None:
    """ConfigError naming the first [risk] key the numba checks (engine.risk_nb) do not
    apply: the fast path decides each submit inside numba, so a limit it lacks would be
    skipped silently. The plain Python path (fast_path = False) applies every key."""
    for key in config.keys_set():
        if key not in COMPILED_KEYS:
            raise ConfigError(f"[risk] {key}: the compiled fast path applies only {', '.join(COMPILED_KEYS)}; "
                              "remove the key or set fast_path = False on the strategy class "
                              "(it then runs through ctx with every limit)")


class ReplayVenue:
    """A `SimulatedVenue` during the replay: sends nothing, shows the logged top of book."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.name = inner.name
        self.config = inner.config
        self.maker_fee_bps = inner.maker_fee_bps
        self.taker_fee_bps = inner.taker_fee_bps
        self.fee_asset = inner.fee_asset
        self.snapshot: np.ndarray | None = None  # 4 ints per instrument, or None = live book
        self.expect: list[int] = []  # order numbers the log says were sent

    def submit(self, order, ts: int) -> None:
        if not self.expect or self.expect.pop(0) != order.order_no:
            raise InternalError(f"compiled fast path: order {order.client_id} was sent by the session "
                                "but not by the numba loop; please report this")

    def cancel(self, order, ts: int) -> None:
        pass

    def amend(self, order, price: int, qty: int, ts: int) -> None:
        raise ConfigError("compiled strategies cannot amend")

    def top_of_book(self, instrument_index: int) -> tuple[int, int, int, int]:
        snap = self.snapshot
        if snap is None:
            return self._inner.top_of_book(instrument_index)
        j = 4 * instrument_index
        return int(snap[j]), int(snap[j + 1]), int(snap[j + 2]), int(snap[j + 3])

    def levels(self, instrument_index: int, side: int, n: int):
        return self._inner.levels(instrument_index, side, n)


class _Replayer:
    """Feeds the logged submits/cancels of one timer to the adapter's `ctx`."""

    def __init__(self, adapter: CompiledAdapter, venues: list[ReplayVenue]) -> None:
        self.adapter = adapter
        self.venues = venues
        self.log: np.ndarray = np.zeros((0, 0), dtype=np.int64)
        self.cursor = 0
        self.end = 0

    def on_timer(self, ctx, ts: int) -> None:
        from venues.sim.compiled_nb import (
            LG_INST,
            LG_KIND,
            LG_ORDER_NO,
            LG_PRICE,
            LG_QTY,
            LG_RISK,
            LG_SIDE,
            LG_TIF,
            LOG_CANCEL,
            LOG_SUBMIT,
        )

        adapter = self.adapter
        ids, specs = adapter._ids, adapter._specs
        log = self.log
        i = self.cursor
        while i < self.end and int(log[i, LG_KIND]) in (LOG_SUBMIT, LOG_CANCEL):
            row = log[i]
            inst = int(row[LG_INST])
            number = int(row[LG_ORDER_NO])
            if int(row[LG_KIND]) == LOG_SUBMIT:
                code = int(row[LG_RISK])
                venue = self._venue_of(inst)
                if code == RISK_OK:
                    venue.expect.append(number)
                spec = specs[inst]
                guard = ctx._session.guard
                guard.decided(REASON_OF[code])  # the numba loop's verdict (engine.risk_nb)
                try:
                    client_id = ctx.submit(ids[inst], "buy" if int(row[LG_SIDE]) > 0 else "sell",
                                           spec.lots_to_qty(int(row[LG_QTY])),
                                           spec.ticks_to_price(int(row[LG_PRICE])), tif=_tif_name(int(row[LG_TIF])))
                finally:
                    guard.undecided()
                order = ctx._session.oms.by_client.get(client_id)
                if order is None or order.order_no != number:
                    raise InternalError(f"compiled fast path: order number {number} expected, "
                                          f"the OMS gave {None if order is None else order.order_no}")
                if venue.expect:  # the session refused what numba sent (its margin check: contracts)
                    venue.expect.clear()
                    raise InternalError(f"compiled fast path: the numba loop sent {client_id}, the session "
                                        f"refused it ({order.reason!r}); please report this")
                adapter.submits += 1
            else:
                order = ctx._session.oms.by_no.get(number)
                if order is None or not ctx.cancel(order.client_id):
                    raise InternalError(f"compiled fast path: logged cancel of order {number} "
                                          "that the OMS does not hold open")
                adapter.cancels += 1
            i += 1
        self.cursor = i

    def _venue_of(self, inst: int) -> ReplayVenue:
        return self.venues[inst]


def _tif_name(code: int) -> str:
    from engine.types import TimeInForce

    return TimeInForce(code).name


class CompiledLoop:
    """The numba loop of one compiled strategy over one `SimCore`, with Python services.

    `run(on_log, on_sample)` loops until the feed ends or `end_ts`: `on_log(LG, LB, n)` gets
    each stretch of the decision/response log (rows LG[:n], top-of-book snapshots LB[:n]),
    `on_sample(now)` is called at each sample time and returns the next one.
    """

    def __init__(self, core, adapter: CompiledAdapter, instruments: list, risk, *, start_ts: int,
                 end_ts: int, first_timer: int | None, next_order_no: int, now: int,
                 log_rows: int = LOG_ROWS) -> None:
        from venues.sim import compiled_nb as K

        check_compiled_risk(risk.config)
        self.K = K
        self.core = core
        self.adapter = adapter
        X = np.zeros(K.X_NF, dtype=np.int64)
        X[K.X_NEXT_TIMER] = INT64_MAX if first_timer is None else first_timer
        X[K.X_EVERY] = adapter.compiled.every_ns
        X[K.X_NEXT_SAMPLE] = start_ts
        X[K.X_END] = end_ts
        X[K.X_NEXT_NO] = next_order_no
        X[K.X_NOW] = now
        X[K.X_RISK_STATE] = risk.state_code()
        X[K.X_ORD_BASE] = next_order_no
        self.X = X
        # one row per order the loop numbers: its state moved by the OMS's own rules
        # (engine.order_state_nb), grown on CS_NEED_ROWS
        self.ORD = np.zeros((ORDER_ROWS, OR_NF), dtype=np.int64)
        # the session's own limits and order-rate window: numba advances the window, and
        # `run` hands it back to the RiskEngine (one state, one rule: engine.risk_nb)
        self.risk = risk
        self.limits = risk_limits(risk.config, instruments)
        self.ring = np.array(risk._ring, dtype=np.int64)
        self.LG = np.zeros((log_rows, K.LG_NF), dtype=np.int64)
        self.LB = np.zeros((log_rows, 4 * len(instruments)), dtype=np.int64)
        self.wake = np.zeros(len(instruments), dtype=np.bool_)
        self.col_n = np.zeros(1, dtype=np.int64)
        self.col_out = np.zeros(COLLECT_ROWS, dtype=ORDER_EVENT_DTYPE)
        self.col_bbo = np.zeros((COLLECT_ROWS, 4 * len(instruments)), dtype=np.int64)

    @property
    def now(self) -> int:
        return int(self.X[self.K.X_NOW])

    def run(self, on_log, on_sample) -> None:
        try:
            self._run(on_log, on_sample)
        finally:
            self.risk.load_rate_window(self.ring)

    def _run(self, on_log, on_sample) -> None:
        K, core, X, adapter = self.K, self.core, self.X, self.adapter
        while True:
            try:
                st = int(K.call_compiled(*core._args(), self.wake, self.wake, core._out, core._run_exch,
                                         adapter._fn, adapter._ctx, adapter._params, adapter._state, X,
                                         self.limits, self.ring, self.LG,
                                         self.LB, self.col_n, self.col_out, self.col_bbo, self.ORD))
            except (TickparityError, InternalError):
                raise
            except Exception as exc:  # raised by the user's timer_nb (numba leaves no Python frame)
                from engine.strategy import strategy_files

                name = f"{type(adapter.compiled).__name__}.timer_nb"
                raise user_code_error(name, exc, strategy_files(adapter), code_location(adapter._fn)) from exc
            if st in (K.CS_SAMPLE, K.CS_LOG_FULL, K.CS_NEED_REQ, K.CS_END, K.CS_STOP):
                n = int(X[K.X_NLOG])
                on_log(self.LG, self.LB, n)
                rows = self.LG[:n]
                sent = rows[(rows[:, K.LG_KIND] == K.LOG_SUBMIT) & (rows[:, K.LG_RISK] == RISK_OK)]
                core._order_inst.update(zip(sent[:, K.LG_ORDER_NO].tolist(), sent[:, K.LG_INST].tolist(),
                                            strict=True))
                X[K.X_NLOG] = 0
            if st in (K.CS_END, K.CS_STOP):
                return
            if st == K.CS_SAMPLE:
                X[K.X_NEXT_SAMPLE] = on_sample(self.now)
                X[K.X_RESUME] = 1
            elif st == K.CS_NEED_REQ:
                from venues.sim.core import _grow2

                core._R = _grow2(core._R)
                core._args_cache = None
            elif st == K.CS_NEED_ROWS:
                self.ORD = np.concatenate([self.ORD, np.zeros_like(self.ORD)])
            elif st == K.CS_OPEN_FULL:
                raise StrategyError(f"compiled strategy: more than {adapter._ctx[3].shape[0]} open orders")
            elif st == K.CS_BAD_ACTION:
                a = adapter._ctx[4][int(X[K.X_BAD]) - 1]
                who = f"{type(adapter.compiled).__name__}.timer_nb ({code_location(adapter._fn)})"
                raise OrderError(f"{who} submitted an invalid order (instrument, side, qty, "
                                 f"price, tif) = {tuple(int(x) for x in a[1:6])}: instrument must be in "
                                 f"range, side 1/-1, qty and price > 0, tif GTC/IOC/FOK/GTX")
            elif st != K.CS_LOG_FULL:
                core._serve(st)


def drive_compiled(session, core, clock, writer, start_ts: int, end_ts: int, sample_ns: int,
                   total: int | None) -> int:
    """`modes.backtest._drive` for a compiled strategy (see module docstring)."""
    from venues.sim import compiled_nb as K

    adapter: CompiledAdapter = session.strategy
    if adapter.replay is not None:
        raise ConfigError("a CompiledAdapter runs one backtest at a time")
    if session.wake_book.any() or session.wake_trade.any():
        raise StrategyError("compiled strategies take timers only (no book/trade subscriptions)")
    ids = list(session.instruments)
    inner = session.venues
    replay_venues = {name: ReplayVenue(v) for name, v in inner.items()}
    per_inst = [replay_venues[session.instruments[i].venue] for i in ids]
    replayer = _Replayer(adapter, per_inst)
    loop = CompiledLoop(core, adapter, [session.instruments[i] for i in ids], session.risk,
                        start_ts=start_ts, end_ts=end_ts, first_timer=session.next_timer_ts(),
                        next_order_no=session.oms._next_no, now=clock.now())
    state = {"next_sample": start_ts, "reported": 0}
    why_not = "CompiledStrategy.bulk_books is False" if not getattr(adapter.compiled, "bulk_books", True) \
        else bulk_unsupported(session)
    books = BulkBooks(session, per_inst, adapter) if why_not is None else None
    where = _bulk_columns()
    adapter.bookkeeping = "bulk" if why_not is None else f"per event: {why_not}"

    def respond(LG: np.ndarray, i: int) -> None:
        """Response row i through the session (the per-event path), then the equity sample."""
        clock.advance_to(max(int(LG[i, K.LG_TS]), clock.now()))
        rec = np.zeros(1, dtype=ORDER_EVENT_DTYPE)[0]
        for c, name in enumerate(_RESP_FIELDS):
            rec[name] = LG[i, K.LG_R_EXCH_TS + c]
        session.on_order_event(rec)
        if int(rec["kind"]) == _FILL:
            session.sample_equity()

    def bulk(LG: np.ndarray, LB: np.ndarray, n: int) -> None:
        rows = LG[:n]
        columns = {name: rows[:, col].tolist() for name, col in where.items()}
        books.book(BulkLog(columns, LB[:n].tolist(), n), lambda i: respond(LG, i))

    def replay(LG: np.ndarray, LB: np.ndarray, n: int) -> None:
        kinds = LG[:n, K.LG_KIND]
        resp_rows = np.flatnonzero(kinds == K.LOG_RESP)
        recs = np.zeros(len(resp_rows), dtype=ORDER_EVENT_DTYPE)
        for c, name in enumerate(_RESP_FIELDS):
            recs[name] = LG[resp_rows, K.LG_R_EXCH_TS + c]
        r = 0
        replayer.log = LG
        replayer.end = n
        i = 0
        while i < n:
            kind = int(kinds[i])
            snap = LB[i]
            for v in per_inst:
                v.snapshot = snap
            if kind == K.LOG_TIMER:
                clock.advance_to(max(int(LG[i, K.LG_ORDER_NO]), clock.now()))
                replayer.cursor = i + 1
                session.fire_timers(clock.now())
                i = replayer.cursor
            elif kind == K.LOG_RESP:
                clock.advance_to(max(int(LG[i, K.LG_TS]), clock.now()))
                rec = recs[r]
                r += 1
                session.on_order_event(rec)
                status = int(LG[i, K.LG_R_STATUS])
                if status >= 0:
                    agree_with_rows(session.oms, int(rec["order_no"]), status, i)
                if int(rec["kind"]) == _FILL:
                    session.sample_equity()
                i += 1
            else:
                raise InternalError(f"compiled fast path: log row {i} of kind {kind} out of place")
        for v in per_inst:
            v.snapshot = None

    session.venues = replay_venues
    session._books = {i: type(b)(b.instrument, b._index, replay_venues[b.instrument.venue])
                      for i, b in session._books.items()}
    adapter.replay = replayer
    try:
        with progress("replaying", total=total, unit="events") as bar:
            def sample(now: int) -> int:
                clock.advance_to(max(now, clock.now()))
                if books is not None:  # the same sample, from the ledger's state (engine/bulk.py)
                    books.equity.sample()
                else:
                    session.sample_equity()
                state["next_sample"] += sample_ns
                writer.add_bbo(core.drain_bbo())
                writer.add_trades(core.drain_trades())
                processed = core.events_processed
                bar.advance(processed - state["reported"])
                state["reported"] = processed
                return state["next_sample"]

            loop.run(replay if books is None else bulk, sample)
            if loop.now >= end_ts:
                clock.advance_to(max(loop.now, clock.now()))
            bar.advance(core.events_processed - state["reported"])
    finally:
        adapter.replay = None
        session.venues = inner
        session._books = {i: type(b)(b.instrument, b._index, inner[b.instrument.venue])
                          for i, b in session._books.items()}
    return int(core.events_processed)


def run_on_core(core, strategy, *, start_ts: int, sample_ns: int = 1_000_000_000, risk_config=None,
                risk=None) -> dict:
    """The numba loop alone over a `SimCore` (no session, ledger or audit): the benchmark's
    measure of the compiled path. Tapes are drained every `sample_ns`; returns counts
    taken from the decision/response log. `risk`: a `RiskEngine` whose limits, state and
    order-rate window the loop uses (and advances), else a new one of `risk_config`."""
    from engine.risk import RiskConfig, RiskEngine
    from engine.types import OrderEventKind as E
    from venues.sim import compiled_nb as K

    adapter = strategy if isinstance(strategy, CompiledAdapter) else CompiledAdapter(strategy)
    adapter.prepare(list(core.instruments))
    if risk is None:
        risk = RiskEngine(risk_config or RiskConfig())
    loop = CompiledLoop(core, adapter, list(core.instruments), risk, start_ts=start_ts,
                        end_ts=INT64_MAX, first_timer=start_ts + adapter.compiled.every_ns, next_order_no=1,
                        now=start_ts)
    counts = {"submits": 0, "cancels": 0, "risk rejects": 0, "post-only rejects": 0, "orders filled": 0,
              "partly filled, cancelled": 0, "fill events": 0, "filled lots": 0}

    def tally(LG: np.ndarray, LB: np.ndarray, n: int) -> None:
        rows = LG[:n]
        kind = rows[:, K.LG_KIND]
        submits = kind == K.LOG_SUBMIT
        counts["submits"] += int(submits.sum())
        counts["risk rejects"] += int((submits & (rows[:, K.LG_RISK] != RISK_OK)).sum())
        counts["cancels"] += int((kind == K.LOG_CANCEL).sum())
        resp = rows[kind == K.LOG_RESP]
        fills = resp[resp[:, K.LG_R_KIND] == int(E.FILL)]
        counts["fill events"] += len(fills)
        counts["filled lots"] += int(fills[:, K.LG_R_QTY].sum())
        counts["orders filled"] += int((fills[:, K.LG_R_LEAVES] == 0).sum())
        counts["post-only rejects"] += int((resp[:, K.LG_R_KIND] == int(E.REJECTED)).sum())
        cancelled = resp[resp[:, K.LG_R_KIND] == int(E.CANCELLED)]
        counts["partly filled, cancelled"] += int((cancelled[:, K.LG_R_FILLED] > 0).sum())

    def sample(now: int) -> int:
        core.drain_bbo()
        core.drain_trades()
        return now + sample_ns

    loop.run(tally, sample)
    return counts
