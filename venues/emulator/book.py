"""The public L2 book the emulator publishes (REST depth, `@depth` diffs, `@bookTicker`).

Why a separate book from `venues.sim`'s: the sim keeps the feed book for matching (with
liquidity our orders consumed); a venue publishes its book with Binance's update ids, so
that a client can sync a REST snapshot with the diff stream (U/u). This book is the feed
as the market clock reaches each row's local_ts (what a backtest strategy sees) plus the
resting orders of the emulator's accounts, as a real venue shows other participants'
orders in its depth: a level's quantity is the feed's plus the accounts' (`add_own`).
Prices are int ticks, quantities int lots; each change of a level's total takes one
update id.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.types import EventKind

_DELTA = int(EventKind.BOOK_DELTA)
_SB = int(EventKind.SNAPSHOT_BEGIN)
_TRADE = int(EventKind.TRADE)
_CLEAR = int(EventKind.CLEAR)
_L3_ADD = int(EventKind.L3_ADD)
_L3_MODIFY = int(EventKind.L3_MODIFY)
_L3_CANCEL = int(EventKind.L3_CANCEL)
_L3_FILL = int(EventKind.L3_FILL)


@dataclass
class PublicBook:
    """One instrument's published book; `update_id` counts level changes since start."""

    bids: dict[int, int] = field(default_factory=dict)  # published: feed + accounts' orders
    asks: dict[int, int] = field(default_factory=dict)
    feed_bids: dict[int, int] = field(default_factory=dict)  # the feed's levels alone
    feed_asks: dict[int, int] = field(default_factory=dict)
    own_bids: dict[int, int] = field(default_factory=dict)  # lots of resting account orders
    own_asks: dict[int, int] = field(default_factory=dict)
    update_id: int = 0
    # diff window: first update id in it and the levels touched, per side
    first_id: int = 0
    dirty_bids: set[int] = field(default_factory=set)
    dirty_asks: set[int] = field(default_factory=set)
    l3: dict[int, tuple[int, int, int]] = field(default_factory=dict)  # order id -> side, px, qty

    def _set(self, side: int, price: int, qty: int) -> None:
        """The feed sets a level to `qty` lots; the published level adds the own orders."""
        feed = self.feed_bids if side > 0 else self.feed_asks
        if qty > 0:
            feed[price] = qty
        else:
            feed.pop(price, None)
        self._publish_level(side, price)

    def add_own(self, side: int, price: int, delta: int) -> None:
        """Resting account orders at (side, price) changed by `delta` lots."""
        own = self.own_bids if side > 0 else self.own_asks
        q = own.get(price, 0) + delta
        if q > 0:
            own[price] = q
        else:
            own.pop(price, None)
        self._publish_level(side, price)

    def _publish_level(self, side: int, price: int) -> None:
        if side > 0:
            qty = self.feed_bids.get(price, 0) + self.own_bids.get(price, 0)
        else:
            qty = self.feed_asks.get(price, 0) + self.own_asks.get(price, 0)
        levels = self.bids if side > 0 else self.asks
        old = levels.get(price, 0)
        if qty == old:
            return
        if qty > 0:
            levels[price] = qty
        else:
            levels.pop(price, None)
        self.update_id += 1
        if not self.dirty_bids and not self.dirty_asks:
            self.first_id = self.update_id
        (self.dirty_bids if side > 0 else self.dirty_asks).add(price)

    def _add(self, side: int, price: int, delta: int) -> None:
        feed = self.feed_bids if side > 0 else self.feed_asks
        self._set(side, price, max(0, feed.get(price, 0) + delta))

    def _clear(self, side: int) -> None:
        for s in ((1, -1) if side == 0 else (side,)):
            for price in list(self.feed_bids if s > 0 else self.feed_asks):
                self._set(s, price, 0)

    def apply(self, rows: np.ndarray) -> list[np.ndarray]:
        """Apply book rows in order; returns the TRADE rows met (for the trade stream).

        The columns are read into Python lists once: a structured row's field read costs
        ~0.3 us, four per row, and this runs inside the emulator's event loop, where every
        millisecond spent here is one an order request waits before the venue reads it
        (bench/README.md "Parity", session 10)."""
        trades = []
        kinds = rows["kind"].tolist()
        sides = rows["side"].tolist()
        prices = rows["price"].tolist()
        qtys = rows["qty"].tolist()
        oids = None
        for j, kind in enumerate(kinds):
            if kind == _DELTA:
                self._set(sides[j], prices[j], qtys[j])
            elif kind == _TRADE:
                trades.append(rows[j])
            elif kind == _SB:
                self._clear(sides[j])
            elif kind == _CLEAR:
                self._clear(0)
                self.l3.clear()
            elif kind == _L3_ADD or kind == _L3_MODIFY or kind == _L3_CANCEL or kind == _L3_FILL:
                if oids is None:
                    oids = rows["order_id"].tolist()
                oid, side, price, qty = oids[j], sides[j], prices[j], qtys[j]
                if kind == _L3_ADD:
                    self.l3[oid] = (side, price, qty)
                    self._add(side, price, qty)
                    continue
                old = self.l3.pop(oid, None)
                if old is not None:
                    self._add(old[0], old[1], -old[2])
                if kind == _L3_MODIFY:
                    self.l3[oid] = (side, price, qty)
                    self._add(side, price, qty)
                elif kind == _L3_FILL and old is not None and old[2] > qty:
                    self.l3[oid] = (old[0], old[1], old[2] - qty)
                    self._add(old[0], old[1], old[2] - qty)
        return trades

    def take_diff(self) -> tuple[int, int, list[tuple[int, int]], list[tuple[int, int]]] | None:
        """(U, u, bids, asks) of the changes since the last call, None if nothing changed.
        Levels carry their quantity now (0 = removed), best first."""
        if not self.dirty_bids and not self.dirty_asks:
            return None
        bids = [(p, self.bids.get(p, 0)) for p in sorted(self.dirty_bids, reverse=True)]
        asks = [(p, self.asks.get(p, 0)) for p in sorted(self.dirty_asks)]
        self.dirty_bids.clear()
        self.dirty_asks.clear()
        return self.first_id, self.update_id, bids, asks

    def top(self) -> tuple[int, int, int, int]:
        """(bid, bid_qty, ask, ask_qty); qty 0 = empty side."""
        bid = max(self.bids) if self.bids else 0
        ask = min(self.asks) if self.asks else 0
        return bid, self.bids.get(bid, 0), ask, self.asks.get(ask, 0)

    def levels(self, limit: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Best-first (bids, asks), up to `limit` levels each."""
        bids = sorted(self.bids.items(), reverse=True)[:limit]
        asks = sorted(self.asks.items())[:limit]
        return bids, asks
