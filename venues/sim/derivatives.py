"""The simulated venue's contract side: mark prices, funding settlements, liquidations.

Why not numba: these events are sparse (a mark a second, a funding every 8 h) and each
one is money (exact Decimal in `engine.margin`); the per-market-event matching path is
untouched. The matching core never sees MARK_PRICE / FUNDING_RATE rows: `ContractFeed`
takes them out of the feed before the core pulls it and hands them to `ContractVenue`,
which the backtest driver asks for its next wake-up time (`bound`) and runs at it
(`advance`).

Rules (docs/derivatives.md):
- the mark of an instrument is its last MARK_PRICE row; until one arrives (and for data
  without any, like the shipped COIN-M capture) it is the mid of the venue's book, taken
  every `mark_interval_ns` (1 s, the cadence of Binance's `markPrice@1s` stream), and the
  run warns;
- a FUNDING_RATE row settles funding on the position held then, at the row's mark (or the
  mark in force); without funding rows in the data nothing is paid, and the run warns;
- after every mark update the venue checks the margin of the accounts holding that
  instrument and liquidates by `engine.margin.MarginBook.due_liquidations`: the session
  books a `liquidation-N` fill (`TradingSession.on_liquidation`).
- The venue checks margin on the positions as the session's ledger holds them, i.e. as
  of the fills' responses (one response latency after the venue's own view): a stated
  simplification that can delay a liquidation by that latency, never advance it.
- Dated futures: at `expiry_ns` the position is closed at the delivery price
  (`DeliveryPrices`: the mean of the mark sampled each second over the last 30 minutes,
  standing for Binance's index average) and reported as a fill of a `delivery-N` order
  (reason `delivery`). The futures emulator delivers by the same helper.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import numpy as np

from engine.errors import DataError
from engine.margin import MarginBook
from engine.types import EventKind, Instrument
from engine.types.instrument import decimal_str
from engine.types.market import DERIVATIVE_KINDS, FUNDING_RATE_UNIT

INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min
MARK_INTERVAL_NS = 1_000_000_000
_MARK = int(EventKind.MARK_PRICE)
_FUNDING = int(EventKind.FUNDING_RATE)


DELIVERY_WINDOW_NS = 30 * 60 * 1_000_000_000
SECOND_NS = 1_000_000_000


class DeliveryPrices:
    """Dated futures' delivery (settlement) prices.

    Binance delivers a quarterly at expiry at "the average of the price index every second
    for the last 30 minutes before delivery, 1,800 price indices" (announcement of
    2024-11-04, effective 2024-11-11; binance.com/en/support/faq/
    delivery-and-settlement-of-quarterly-futures-a3401595e1734084959c61491bc0dbe3). The
    index is not modelled, so the **mark** stands for it: the delivery price is the
    arithmetic mean of the mark in force at each whole second expiry - 1,800 s ...
    expiry - 1 s (the mark of a row counts from its exch_ts; seconds before the first
    mark are left out), rounded half-even to the tick. Without any mark in the window it
    is the mark in force at expiry. One rule for the simulated venue (`ContractVenue`) and
    the futures emulator (`venues.emulator.futures`)."""

    def __init__(self, instruments: Sequence[Instrument]) -> None:
        self._history: dict[str, deque[tuple[int, Decimal]]] = {
            i.id: deque() for i in instruments if i.contract and i.expiry_ns is not None}
        self._expiry = {i.id: int(i.expiry_ns) for i in instruments if i.id in self._history}

    def note(self, inst_id: str, ts: int, mark: Decimal) -> None:
        """A mark of `inst_id` set at `ts` (ns); only what the window needs is kept."""
        history = self._history.get(inst_id)
        if history is None:
            return
        history.append((int(ts), mark))
        start = self._expiry[inst_id] - DELIVERY_WINDOW_NS
        while len(history) >= 2 and history[1][0] <= start:
            history.popleft()

    def price_ticks(self, inst: Instrument) -> int | None:
        """The delivery price of `inst` in ticks (None: no mark at all)."""
        history = self._history.get(inst.id, deque())
        if not history:
            return None
        start = self._expiry[inst.id] - DELIVERY_WINDOW_NS
        total, n, i, current = Decimal(0), 0, 0, None
        marks = list(history)
        for k in range(DELIVERY_WINDOW_NS // SECOND_NS):
            t = start + k * SECOND_NS
            while i < len(marks) and marks[i][0] <= t:
                current = marks[i][1]
                i += 1
            if current is not None:
                total += current
                n += 1
        price = total / n if n else marks[-1][1]
        return int((price / inst.tick_size).to_integral_value(rounding=ROUND_HALF_EVEN))


class ContractRows:
    """The MARK_PRICE / FUNDING_RATE rows a `ContractVenue` has not applied yet, in feed
    order, and which instruments have had marks / funding so far. `ContractFeed` (a
    backtest's file-backed feed) and `PushedContractRows` (paper mode: rows that arrived
    live) fill it."""

    def __init__(self, instruments: Sequence[Instrument]) -> None:
        self._instruments = list(instruments)
        self._rows: deque[np.ndarray] = deque()  # contract rows, in feed order
        self.seen_marks: set[int] = set()
        self.seen_funding: set[int] = set()

    def _keep(self, rows: np.ndarray) -> None:
        for row in rows:
            inst = self._instruments[int(row["instrument"])]
            if not inst.contract:
                raise DataError(
                    f"{inst.id}: the data holds {EventKind(int(row['kind'])).name} rows but the instrument is "
                    "spot; give it type = 'swap' or 'future' in the instruments file (docs/derivatives.md)")
            (self.seen_marks if int(row["kind"]) == _MARK else self.seen_funding).add(int(row["instrument"]))
            self._rows.append(row)

    def read_until(self, ts: int) -> None:
        """Make every row with local_ts <= ts known (a pushed feed knows them already)."""

    def next_ts(self) -> int | None:
        return int(self._rows[0]["local_ts"]) if self._rows else None

    def pop_due(self, ts: int) -> list[Any]:
        out = []
        while self._rows and int(self._rows[0]["local_ts"]) <= ts:
            out.append(self._rows.popleft())
        return out


class PushedContractRows(ContractRows):
    """Paper mode's contract rows (modes.live.stepper): the live feed's marks and funding
    settlements (modes.live.derivatives.watch_marks), pushed in receipt order, so the
    simulated venue settles funding and liquidates exactly as in a backtest."""

    def push(self, rows: np.ndarray) -> None:
        self._keep(rows)


class ContractFeed(ContractRows):
    """A feed iterator that keeps MARK_PRICE / FUNDING_RATE rows aside.

    `horizon` is the local time up to which every row has been read, so a driver that
    bounds the matching core by `bound(t)` never lets it run past a contract row it has
    not seen. Reading ahead (to reach the bound) keeps the market chunks read in a
    queue, so memory stays bounded by the rows between now and the bound.
    """

    def __init__(self, chunks: Iterable[np.ndarray], instruments: Sequence[Instrument]) -> None:
        super().__init__(instruments)
        self._it: Iterator[np.ndarray] = iter(chunks)
        self._ahead: deque[np.ndarray] = deque()
        self.horizon = INT64_MIN
        self.done = False

    def __iter__(self) -> ContractFeed:
        return self

    def __next__(self) -> np.ndarray:
        while not self._ahead:
            if not self._read():
                raise StopIteration
        return self._ahead.popleft()

    def _read(self) -> bool:
        if self.done:
            return False
        chunk = next(self._it, None)
        if chunk is None:
            self.done = True
            self.horizon = INT64_MAX
            return False
        if len(chunk) == 0:
            return True
        kinds = chunk["kind"]
        mask = np.isin(kinds, DERIVATIVE_KINDS)
        self.horizon = int(chunk["local_ts"][-1])
        if mask.any():
            self._keep(chunk[mask])
            chunk = chunk[~mask]
        if len(chunk):
            self._ahead.append(chunk)
        return True

    def read_until(self, ts: int) -> None:
        """Read the feed until every row with local_ts <= ts is known."""
        while not self.done and self.horizon < ts:
            self._read()


class ContractVenue:
    """Marks, funding and liquidations of the contracts of one backtest (module doc)."""

    def __init__(self, instruments: Sequence[Instrument], core: Any, book: MarginBook,
                 feed: ContractRows, start_ts: int, mark_interval_ns: int = MARK_INTERVAL_NS) -> None:
        self.instruments = list(instruments)
        self.contracts = [i for i, inst in enumerate(self.instruments) if inst.contract]
        self.core = core
        self.book = book
        self.feed = feed
        self.mark_interval_ns = int(mark_interval_ns)
        self.next_mid_mark = int(start_ts)
        self.funding_paid: list[tuple[int, str, Decimal, Decimal, Decimal]] = []  # ts, inst, rate, mark, amount
        self.expired: set[int] = set()
        self.delivery = DeliveryPrices(self.instruments)
        self._samples: list[tuple] = []

    def _set_mark(self, inst_id: str, mark: Decimal, ts: int) -> None:
        self.book.set_mark(inst_id, mark, ts)
        self.delivery.note(inst_id, ts, mark)

    def valued(self) -> bool:
        """True when the account's equity can be valued (`Ledger.equity`): every contract
        position has a mark (or its book's mid), and every coin wallet (COIN-M: BTC) the
        mid of its contract's book. Before that the backtest takes no equity sample. A
        linear contract's wallet is in the quote and needs no price, so a run starts its
        equity at the deposit before the first mark: waiting for every mark made a
        strategy that trades at once start its equity after its first fee (equity_start
        below the deposit, and a spurious inventory revaluation)."""
        balances = self.book.ledger.balances
        quotes = {(i.venue, i.quote) for i in self.instruments}
        for i in self.contracts:
            inst = self.instruments[i]
            mid = self._mid(i)
            pos = self.book.positions.get(inst.id)
            if pos is not None and pos.lots and self.book.mark_of(inst.id, mid) is None:
                return False
            key = (inst.venue, inst.settle)
            if key not in quotes and balances.get(key) and mid is None:
                return False
        return True

    def bound(self, t: int) -> int:
        """The time the core may run to: t, or earlier when a contract event is due."""
        self.feed.read_until(t)
        nxt = self.feed.next_ts()
        out = t if nxt is None else min(t, nxt)
        if any(i not in self.feed.seen_marks for i in self.contracts):
            out = min(out, self.next_mid_mark)
        for i in self.contracts:
            expiry = self.instruments[i].expiry_ns
            if expiry is not None and i not in self.expired:
                out = min(out, expiry)
        return out

    def advance(self, now: int, session: Any) -> None:
        """Apply the contract rows due at `now`, mid marks, expiries and liquidations."""
        moved: set[str] = set()
        for row in self.feed.pop_due(now):
            inst = self.instruments[int(row["instrument"])]
            if not inst.contract:
                continue
            if int(row["kind"]) == _MARK:
                self._set_mark(inst.id, inst.ticks_to_price(int(row["price"])), int(row["exch_ts"]))
                moved.add(inst.id)
            else:
                rate = Decimal(int(row["side"]) * int(row["price"])) * FUNDING_RATE_UNIT
                mark_ticks = int(row["qty"])
                mark = inst.ticks_to_price(mark_ticks) if mark_ticks else self.book.mark_of(inst.id)
                if mark is None:
                    mark = self._mid(self.instruments.index(inst))
                if mark is None:
                    continue
                if mark_ticks:
                    self._set_mark(inst.id, mark, int(row["exch_ts"]))
                    moved.add(inst.id)
                amount = session.on_funding(inst.id, rate, mark, int(row["exch_ts"]))
                self.funding_paid.append((int(row["exch_ts"]), inst.id, rate, mark, amount))
        if now >= self.next_mid_mark:
            for i in self.contracts:
                if i in self.feed.seen_marks:
                    continue
                mid = self._mid(i)
                if mid is not None:
                    self._set_mark(self.instruments[i].id, mid, now)
                    moved.add(self.instruments[i].id)
            while self.next_mid_mark <= now:
                self.next_mid_mark += self.mark_interval_ns
        for i in self.contracts:
            inst = self.instruments[i]
            if inst.expiry_ns is not None and i not in self.expired and now >= inst.expiry_ns:
                self.expired.add(i)
                self.book.delivered.add(inst.id)  # no order on it from now on (check_order)
                self._deliver(inst, now, session)
        if moved:
            for liq in self.book.due_liquidations(self.instruments, moved):
                session.on_liquidation(liq, now)

    def _deliver(self, inst: Instrument, now: int, session: Any) -> None:
        """Dated future at expiry: close the position at the delivery price
        (`DeliveryPrices`; the mid when no mark was ever known), no fee."""
        mark = self.book.mark_of(inst.id) or self._mid(self.instruments.index(inst))
        if mark is None:
            return
        ticks = self.delivery.price_ticks(inst)
        if ticks is None:
            ticks = int((mark / inst.tick_size).to_integral_value(rounding=ROUND_HALF_EVEN))
        close = self.book.delivery(inst, ticks, mark)
        if close is not None:
            session.on_liquidation(close, now)

    def _mid(self, index: int) -> Decimal | None:
        bid, bid_qty, ask, ask_qty = self.core.exchange_bbo(index)
        if bid_qty <= 0 or ask_qty <= 0:
            return None
        inst = self.instruments[index]
        return inst.ticks_to_price(bid + ask) / 2

    # -- what the run records (margin.parquet, summary.json "derivatives") -------------
    def sample(self, now: int) -> None:
        """One row per contract with a mark: position, mark, unrealized PnL, margin
        balance, maintenance and initial margin, margin ratio and the liquidation price
        and distance (bps of the mark) of the account it belongs to."""
        accounts = self.book.accounts(self.instruments)
        for i in self.contracts:
            inst = self.instruments[i]
            mark = self.book.mark_of(inst.id)
            if mark is None:
                continue
            pos = self.book.positions.get(inst.id)
            lots = 0 if pos is None else pos.lots
            acct = next((a for a in accounts if a.instrument == inst.id), None) or next(
                (a for a in accounts if a.instrument is None and a.venue == inst.venue and a.asset == inst.settle), None)
            liq = self.book.liquidation_price(inst) if lots else None
            ratio = acct.margin_ratio if acct is not None else None
            self._samples.append((
                now, inst.id, inst.settle, str(inst.lots_to_qty(lots)), float(mark),
                float(self.book.unrealized(inst)) if lots else 0.0,
                float(acct.margin_balance) if acct else float("nan"),
                float(acct.maintenance) if acct else float("nan"),
                float(acct.initial) if acct else float("nan"),
                float(ratio) if ratio is not None and ratio.is_finite() else float("nan"),
                float(liq) if liq is not None else float("nan"),
                float((mark - liq) / mark * 10000) if liq is not None and mark > 0 else float("nan"),
                float(self.book.funding.get(inst.id, Decimal(0)))))

    def write(self, directory: Any) -> None:
        """margin.parquet (samples), funding.parquet (payments), liquidations.parquet."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        names = ["ts", "instrument", "asset", "position", "mark", "unrealized", "margin_balance",
                 "maintenance_margin", "initial_margin", "margin_ratio", "liquidation_price",
                 "liquidation_distance_bps", "funding"]
        cols = list(zip(*self._samples, strict=True)) if self._samples else [[] for _ in names]
        types = [pa.int64(), pa.string(), pa.string(), pa.string()] + [pa.float64()] * 9
        pq.write_table(pa.table([pa.array(c, t) for c, t in zip(cols, types, strict=True)], names=names),
                       f"{directory}/margin.parquet")
        rows = [(ts, inst, str(rate), str(mark), str(amount)) for ts, inst, rate, mark, amount in self.funding_paid]
        cols = list(zip(*rows, strict=True)) if rows else [[] for _ in range(5)]
        pq.write_table(pa.table([pa.array(cols[0], pa.int64())] + [pa.array(c, pa.string()) for c in cols[1:]],
                                names=["exch_ts", "instrument", "rate", "mark", "amount"]),
                       f"{directory}/funding.parquet")
        liqs = [(ts, q.instrument.id, "buy" if q.side > 0 else "sell", str(q.instrument.lots_to_qty(q.lots)),
                 str(q.instrument.ticks_to_price(q.price_ticks)), str(q.mark), str(q.margin_ratio), q.reason)
                for ts, q in self.book.liquidations]
        cols = list(zip(*liqs, strict=True)) if liqs else [[] for _ in range(8)]
        pq.write_table(pa.table([pa.array(cols[0], pa.int64())] + [pa.array(c, pa.string()) for c in cols[1:]],
                                names=["ts", "instrument", "side", "qty", "price", "mark", "margin_ratio", "reason"]),
                       f"{directory}/liquidations.parquet")

    def summary(self) -> dict[str, Any]:
        """summary.json's "derivatives": per contract, in its settle asset."""
        out: dict[str, Any] = {}
        for i in self.contracts:
            inst = self.instruments[i]
            pos = self.book.positions.get(inst.id)
            funding = self.book.funding.get(inst.id, Decimal(0))
            fees = pos.fees if pos is not None else Decimal(0)
            out[inst.id] = {
                # plain text: an inverse contract's amounts are quantized to 1e-8 (zero was "0E-8")
                "asset": inst.settle, "position": decimal_str(Decimal(pos.qty if pos is not None else 0)),
                "realized": decimal_str(pos.realized if pos is not None else Decimal(0)), "fees": decimal_str(fees),
                "funding": decimal_str(funding), "funding_payments": sum(1 for f in self.funding_paid if f[1] == inst.id),
                "mark": None if self.book.mark_of(inst.id) is None else str(self.book.mark_of(inst.id)),
                # a dated future's delivery is its own line, never a liquidation
                "liquidations": sum(1 for _, q in self.book.liquidations
                                    if q.instrument.id == inst.id and q.reason == "liquidation"),
                "deliveries": sum(1 for _, q in self.book.liquidations
                                  if q.instrument.id == inst.id and q.reason == "delivery"),
                "leverage": self.book.leverage(inst),
                "margin_mode": "isolated" if self.book.is_isolated(inst) else "cross",
            }
        return out

    def warnings(self) -> list[str]:
        """What the run assumed for lack of data (one line per instrument)."""
        out = []
        for i in self.contracts:
            inst = self.instruments[i]
            if i not in self.feed.seen_marks:
                out.append(f"{inst.id}: no mark prices in the data: the mark is the mid of the book, "
                           f"every {self.mark_interval_ns / 1e9:g} s (docs/derivatives.md)")
            if inst.type == "swap" and i not in self.feed.seen_funding:
                out.append(f"{inst.id}: no funding rates in the data: no funding was paid or received")
        return out
