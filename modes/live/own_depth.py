"""The market's book without our own resting orders: what a strategy sees in every mode.

A venue's public depth holds every resting order, ours included: Binance's `@depth` diffs
(and the emulator's, docs/emulator.md "Resting orders are in the public depth") add our
quote to its level the moment it rests and take it out when it fills or is cancelled. A
backtest's book is the dataset's, which never holds the strategy's orders (the simulated
venue matches them against it: docs/simulated-venue.md "Own orders are invisible to the
replayed feed"). A strategy that prices off the touch would see two different markets:
live, its own sell at 59978.20 under the market's 59978.25 became the best ask, the mid
moved by 0.025 and its next bid was 0.03 lower than in the backtest (README "Parity").

The engine gives the strategy the book of the others in every mode (docs/live.md "Your
own orders and the book"): the backtest's book already is; a testnet/live session (and its
replay) takes from each level the part of it that is ours, exactly as the venue published
it. Exactly, because the venue stamps both sides: a depth message carries the venue time
`E` it was published at, and each report about our order the venue time `T` of the change
(acknowledged: it rests from T; a fill: what is left of it from T; cancelled / filled /
expired: gone from T). Our order is in the book a message of time E describes when its
change at T came before it: T <= E (Binance's event time is the end of the window its
diff covers; a change stamped in E's own millisecond is counted in, the emulator's
windows end on a millisecond boundary of the market clock). So the part of a level that
is ours is known from the two venue times, whatever order the messages arrived in; a
report not received yet (an ack slower than the depth diff that shows the order) is
subtracted from its receipt on, as the strategy could not know of it before.

Which depth time the book shows: the venue time of the latest book row pushed into the
local book (SNAPSHOT/BOOK_DELTA/CLEAR rows: `rows`) with a receipt time at or before the
session's now (the local book applies rows at their receipt times). A REST snapshot has no
venue time and is stamped with our clock (modes.live.feed), close to the venue's on
Binance; an order whose change falls between the two is counted by that stamp.

Why not the other way round (the backtest adding our orders to its book): the strategy
would then see itself as the touch and chase its own quote, and every backtest's result
would change; subtracting needs only what the session records (its venue reports and the
market rows, both replayed by `tickparity replay`), and the local book code stays the
backtest's.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from engine.types import EventKind, OrderStatus, OrderType, TimeInForce
from engine.types.venue_reports import VenueFill, VenueOrderState

_BOOK_KINDS = np.array([EventKind.SNAPSHOT_BEGIN, EventKind.SNAPSHOT_END, EventKind.BOOK_DELTA, EventKind.CLEAR],
                       dtype=np.int64)
_ENDS = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED})


class _Own:
    """What the venue told us of one resting order, by venue time (see module doc)."""

    __slots__ = ("inst", "side", "states", "fills", "end")

    def __init__(self, inst: int, side: int) -> None:
        self.inst = inst
        self.side = side
        self.states: list[tuple[int, int, int, int]] = []  # (exch_ts, price ticks, qty lots, filled lots)
        self.fills: dict[str, tuple[int, int]] = {}  # trade id -> (exch_ts, lots)
        self.end: int | None = None  # venue time it left the book (filled, cancelled, expired)

    def shown(self, at: int) -> tuple[int, int]:
        """(price, lots) of it in a depth message of venue time `at`; lots 0 when not there."""
        if self.end is not None and self.end <= at:
            return 0, 0
        seen = [s for s in self.states if s[0] <= at]
        if not seen:
            return 0, 0
        last = max(seen, key=lambda s: s[0])  # a later state carries an amended price / qty
        filled = max(max(s[3] for s in seen), sum(q for t, q in self.fills.values() if t <= at))
        return last[1], max(last[2] - filled, 0)


class OwnOrdersHidden:
    """The local book of a testnet/live session (and its replay) less our resting orders
    as the venue published them (module doc). Stands in for the push-mode SimCore where the
    venue reads its book: `local_bbo`, `local_levels` and `push` as SimCore's.

    `core`: the session's push-mode SimCore; `now()`: the session's clock (ns); `order(cid)`:
    the session's Order of a client id, or None (its side, instrument index, type and tif).
    Feed it every market row pushed (`rows`) and every venue report applied (`report`).
    """

    def __init__(self, core: Any, now: Callable[[], int], order: Callable[[str], Any] | None = None) -> None:
        self.core = core
        self.now = now
        self.order = order or (lambda cid: None)
        self._own: dict[str, _Own] = {}
        self._depth_times: dict[int, deque[tuple[int, int]]] = {}  # inst -> (receipt, venue time) pending
        self._depth_ts: dict[int, int] = {}  # inst -> venue time of the depth the local book shows
        self._version = 0  # bumped by every report kept: the cache below holds for one version
        self._cache: dict[tuple[int, int], tuple[int, int, dict[int, int]]] = {}  # (inst, side) -> ...

    # -- inputs -----------------------------------------------------------------------
    def rows(self, rows: np.ndarray) -> None:
        """Market rows pushed into the local book (receipt order): the venue times of its
        depth messages, by instrument."""
        book = rows[np.isin(rows["kind"], _BOOK_KINDS)]
        for inst, local, exch in zip(book["instrument"].tolist(), book["local_ts"].tolist(),
                                     book["exch_ts"].tolist(), strict=True):
            q = self._depth_times.setdefault(inst, deque())
            if exch > (q[-1][1] if q else self._depth_ts.get(inst, exch - 1)):
                q.append((local, exch))

    def report(self, report: Any) -> None:
        """A venue report about one of our orders (states and fills with a venue time)."""
        if not isinstance(report, VenueOrderState | VenueFill) or report.exch_ts <= 0:
            return
        own = self._own.get(report.client_id)
        if own is None:
            order = self.order(report.client_id)
            if order is None or order.type == OrderType.MARKET or order.tif in (TimeInForce.IOC, TimeInForce.FOK):
                return  # not ours, or never rests
            own = self._own[report.client_id] = _Own(int(order.instrument_index), int(order.side))
        ts = int(report.exch_ts)
        self._version += 1
        if isinstance(report, VenueFill):
            own.fills[report.trade_id] = (ts, int(report.qty))
            return
        if report.status == OrderStatus.REJECTED:
            return  # never rested
        own.states.append((ts, int(report.price), int(report.qty), int(report.filled)))
        if report.status in _ENDS:
            own.end = ts if own.end is None else min(own.end, ts)

    # -- the book ---------------------------------------------------------------------
    def depth_ts(self, inst: int) -> int | None:
        """Venue time of the depth the local book of `inst` shows now (None: no depth yet)."""
        q = self._depth_times.get(inst)
        now = self.now()
        while q and q[0][0] <= now:
            self._depth_ts[inst] = q.popleft()[1]
        return self._depth_ts.get(inst)

    def ours(self, inst: int, side: int) -> dict[int, int]:
        """{price ticks: lots} of our orders on one side of `inst` in the book shown now."""
        at = self.depth_ts(inst)
        out: dict[int, int] = {}
        if at is None or not self._own:
            return out
        cached = self._cache.get((inst, side))
        if cached is not None and cached[0] == at and cached[1] == self._version:
            return cached[2]  # a strategy reads the book several times per decision
        for cid, own in list(self._own.items()):
            if own.end is not None and own.end <= at and own.inst == inst:
                del self._own[cid]  # out of the book for good: the depth shown only moves on
                continue
            if own.inst != inst or own.side != side:
                continue
            price, lots = own.shown(at)
            if lots > 0:
                out[price] = out.get(price, 0) + lots
        self._cache[(inst, side)] = (at, self._version, out)
        return out

    def local_levels(self, instrument: int, side: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Best-first (prices, lots) of up to n levels, our resting orders taken out."""
        mine = self.ours(instrument, side)
        if not mine:
            return self.core.local_levels(instrument, side, n)
        prices, qtys = self.core.local_levels(instrument, side, int(n) + len(mine))
        qtys = qtys - np.array([mine.get(int(p), 0) for p in prices], dtype=qtys.dtype)
        keep = qtys > 0
        return prices[keep][:n], qtys[keep][:n]

    def local_bbo(self, instrument: int) -> tuple[int, int, int, int]:
        """(bid_px, bid_qty, ask_px, ask_qty) with our resting orders taken out; qty 0 = empty."""
        bbo = self.core.local_bbo(instrument)
        if not self._own:
            return bbo
        out = list(bbo)
        for side, at in ((1, 0), (-1, 2)):
            if self.ours(instrument, side):
                p, q = self.local_levels(instrument, side, 1)
                out[at], out[at + 1] = (int(p[0]), int(q[0])) if len(p) else (0, 0)
        return out[0], out[1], out[2], out[3]

    def push(self, rows: np.ndarray) -> None:
        self.core.push(rows)

    def __getattr__(self, name: str) -> Any:  # the rest of SimCore (drains, views) as is
        return getattr(self.core, name)
