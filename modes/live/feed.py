"""Market data from ccxt.pro as EVENT_DTYPE rows: books by diffing consecutive books, trades.

Why diff consecutive books rather than take the raw depth messages: ccxt.pro hands out a
merged order book after doing the venue's synchronisation itself (REST snapshot, buffered
diffs, update-id continuity, a fresh snapshot after a gap or a reconnect; see
notes/ccxt-binance-dialect.md). Re-implementing that per venue would duplicate ccxt's most
fragile code. Comparing the book ccxt returns with the previous one gives exactly the net
level changes since the last row we emitted (BOOK_DELTA, qty 0 = level removed), whatever
ccxt merged, resynchronised or re-snapshotted in between, and the rows stay valid for every
ccxt venue. The cost: several venue messages merged into one await become one batch of
rows stamped with the last message's time (ccxt's `timestamp`), and a level that changed
and changed back in between is not seen (its queue effect is lost; the backtest of the
recorded rows sees the same rows, so parity is unaffected).

Times: `exch_ts` is the venue's time from the message (ms -> ns), `local_ts` the engine's
clock at receipt (`LiveClock`), never earlier than the previous row's (the rows of a session
are pushed in local-time order into the simulated venue's book code).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any

import numpy as np

from engine.errors import DataError
from engine.types import EVENT_DTYPE, EventKind, Instrument

NS_PER_MS = 1_000_000


def _ticks(inst: Instrument, value: Any, what: str) -> int:
    """A ccxt float price as ticks, exactly (ccxt's floats print as the venue's decimals)."""
    try:
        return inst.price_to_ticks(Decimal(repr(float(value))))
    except Exception as exc:  # an off-grid price names the instrument and the value
        raise DataError(f"{inst.id}: {what} price {value!r} from the feed: {exc}") from None


def _lots(inst: Instrument, value: Any, what: str) -> int:
    try:
        return inst.qty_to_lots(Decimal(repr(float(value))))
    except Exception as exc:
        raise DataError(f"{inst.id}: {what} quantity {value!r} from the feed: {exc}") from None


class BookDiffer:
    """Turns successive ccxt order books of one instrument into BOOK_DELTA rows.

    The first book (and any book after `reset`, e.g. a reconnect) becomes a snapshot:
    SNAPSHOT_BEGIN (both sides), one BOOK_DELTA per level, SNAPSHOT_END. `depth` limits the
    levels compared per side (None: every level ccxt holds). `unit_ns`: ns per unit of the
    book's venue time (ccxt's `timestamp`, Binance's `E`: ms, or µs when the client asked
    for them, venues/ccxt/timeunit.py).
    """

    def __init__(self, instrument: Instrument, index: int, depth: int | None = None,
                 unit_ns: int = NS_PER_MS) -> None:
        self.instrument = instrument
        self.index = int(index)
        self.depth = depth
        self.unit_ns = int(unit_ns)
        self._bids: dict[int, int] | None = None
        self._asks: dict[int, int] = {}

    def reset(self) -> None:
        self._bids = None
        self._asks = {}

    def _side(self, levels: Iterable[Sequence[Any]], what: str) -> dict[int, int]:
        inst = self.instrument
        out: dict[int, int] = {}
        for n, level in enumerate(levels):
            if self.depth is not None and n >= self.depth:
                break
            qty = _lots(inst, level[1], what)
            if qty > 0:
                out[_ticks(inst, level[0], what)] = qty
        return out

    def rows(self, book: Any, local_ts: int) -> np.ndarray:
        """The rows that take the previous book to `book` (a ccxt OrderBook / dict)."""
        bids = self._side(book["bids"], "bid")
        asks = self._side(book["asks"], "ask")
        stamp = book.get("timestamp")
        exch_ts = int(stamp) * self.unit_ns if stamp else int(local_ts)
        out: list[tuple[int, int, int, int]] = []  # (kind, side, price, qty)
        if self._bids is None:
            out.append((EventKind.SNAPSHOT_BEGIN, 0, 0, 0))
            out += [(EventKind.BOOK_DELTA, 1, p, q) for p, q in sorted(bids.items(), reverse=True)]
            out += [(EventKind.BOOK_DELTA, -1, p, q) for p, q in sorted(asks.items())]
            out.append((EventKind.SNAPSHOT_END, 0, 0, 0))
        else:
            for side, old, new in ((1, self._bids, bids), (-1, self._asks, asks)):
                for price in sorted(old.keys() | new.keys(), reverse=side > 0):
                    q = new.get(price, 0)
                    if old.get(price, 0) != q:
                        out.append((EventKind.BOOK_DELTA, side, price, q))
        self._bids, self._asks = bids, asks
        return _rows(out, exch_ts, local_ts, self.index)


def trade_rows(instrument: Instrument, index: int, trades: Iterable[dict], local_ts: int,
               unit_ns: int = NS_PER_MS) -> np.ndarray:
    """ccxt trades (unified: timestamp in the client's venue time unit, `unit_ns` ns each:
    ms, or µs when asked for; side = the aggressor, price, amount) as TRADE rows."""
    out = []
    stamps = []
    for t in trades:
        side = 1 if t.get("side") == "buy" else -1
        out.append((EventKind.TRADE, side, _ticks(instrument, t["price"], "trade"),
                    _lots(instrument, t["amount"], "trade")))
        stamps.append(int(t["timestamp"]) * unit_ns if t.get("timestamp") else int(local_ts))
    rows = _rows(out, 0, local_ts, index)
    if len(rows):
        rows["exch_ts"] = stamps
    return rows


def _rows(items: list[tuple[int, int, int, int]], exch_ts: int, local_ts: int, index: int) -> np.ndarray:
    rows = np.zeros(len(items), dtype=EVENT_DTYPE)
    if items:
        arr = np.array(items, dtype=np.int64)
        rows["kind"] = arr[:, 0]
        rows["side"] = arr[:, 1]
        rows["price"] = arr[:, 2]
        rows["qty"] = arr[:, 3]
        rows["exch_ts"] = exch_ts
        rows["local_ts"] = local_ts
        rows["instrument"] = index
    return rows


async def watch_books(exchange: Any, instrument: Instrument, index: int,
                      emit: Callable[[np.ndarray], None], now: Callable[[], int],
                      on_error: Callable[[str, BaseException], None], depth: int | None = None) -> None:
    """Forever: await ccxt.pro's next book of `instrument`, emit its rows (see BookDiffer).

    A network error (socket closed, checksum gap) is reported through `on_error` and the
    next watch reconnects and re-snapshots (ccxt does both); the differ then diffs against
    what we emitted last, so no row is lost or duplicated across the gap.
    """
    from venues.ccxt.timeunit import unit_ns
    from venues.ccxt.venue import watch_loop

    differ = BookDiffer(instrument, index, depth, unit_ns(exchange))

    def handle(book: Any) -> None:
        rows = differ.rows(book, now())
        if len(rows):
            emit(rows)

    await watch_loop(lambda: exchange.watch_order_book(instrument.symbol), handle, on_error, f"book {instrument.id}")


async def watch_trades(exchange: Any, instrument: Instrument, index: int,
                       emit: Callable[[np.ndarray], None], now: Callable[[], int],
                       on_error: Callable[[str, BaseException], None]) -> None:
    """Forever: await ccxt.pro's new trades of `instrument` and emit them as TRADE rows;
    a trade ccxt hands out again after a reconnect is emitted once (by trade id)."""
    from venues.ccxt.timeunit import unit_ns
    from venues.ccxt.venue import watch_loop

    unit = unit_ns(exchange)
    seen: set[str] = set()
    recent: deque[str] = deque()

    def handle(trades: list[dict]) -> None:
        fresh = []
        for t in trades:
            tid = str(t.get("id"))
            if tid in seen:
                continue
            seen.add(tid)
            recent.append(tid)
            fresh.append(t)
        while len(recent) > 10_000:
            seen.discard(recent.popleft())
        rows = trade_rows(instrument, index, fresh, now(), unit)
        if len(rows):
            emit(rows)

    await watch_loop(lambda: exchange.watch_trades(instrument.symbol), handle, on_error, f"trades {instrument.id}")
