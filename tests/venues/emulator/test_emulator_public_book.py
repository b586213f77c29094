"""The emulator's public book (venues/emulator/book.py): `apply` reads its rows' columns
once (bench/README.md "Parity", session 10); the rules are the per-row ones, written out
here as the oracle and compared on random feeds (L2 deltas, snapshots, clears, trades and
L3 adds / modifies / cancels / fills, with own orders in the book)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.types import EVENT_DTYPE, EventKind
from venues.emulator.book import PublicBook

K = EventKind


def oracle_apply(book: PublicBook, rows: np.ndarray) -> list:
    """The rules row by row, through the book's own level setters."""
    trades = []
    for row in rows:
        kind, side, price, qty = int(row["kind"]), int(row["side"]), int(row["price"]), int(row["qty"])
        if kind == K.BOOK_DELTA:
            book._set(side, price, qty)
        elif kind == K.TRADE:
            trades.append(row)
        elif kind == K.SNAPSHOT_BEGIN:
            book._clear(side)
        elif kind == K.CLEAR:
            book._clear(0)
            book.l3.clear()
        elif kind == K.L3_ADD:
            book.l3[int(row["order_id"])] = (side, price, qty)
            book._add(side, price, qty)
        elif kind in (K.L3_MODIFY, K.L3_CANCEL, K.L3_FILL):
            oid = int(row["order_id"])
            old = book.l3.pop(oid, None)
            if old is not None:
                book._add(old[0], old[1], -old[2])
            if kind == K.L3_MODIFY:
                book.l3[oid] = (side, price, qty)
                book._add(side, price, qty)
            elif kind == K.L3_FILL and old is not None and old[2] > qty:
                book.l3[oid] = (old[0], old[1], old[2] - qty)
                book._add(old[0], old[1], old[2] - qty)
    return trades


KINDS = [K.BOOK_DELTA, K.BOOK_DELTA, K.BOOK_DELTA, K.TRADE, K.SNAPSHOT_BEGIN, K.CLEAR,
         K.L3_ADD, K.L3_ADD, K.L3_MODIFY, K.L3_CANCEL, K.L3_FILL]
row_st = st.tuples(st.sampled_from(KINDS), st.sampled_from([1, -1]), st.integers(95, 105),
                   st.integers(0, 5), st.integers(1, 6))


def _rows(spec: list[tuple]) -> np.ndarray:
    rows = np.zeros(len(spec), dtype=EVENT_DTYPE)
    for j, (kind, side, price, qty, oid) in enumerate(spec):
        rows[j] = (j, j, 0, int(kind), side, price, qty, oid)
    return rows


def _state(book: PublicBook) -> tuple:
    return (book.bids, book.asks, book.feed_bids, book.feed_asks, book.l3, book.update_id, book.first_id,
            book.dirty_bids, book.dirty_asks)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(row_st, max_size=25), max_size=4), st.lists(st.tuples(st.sampled_from([1, -1]),
       st.integers(95, 105), st.integers(1, 3)), max_size=3))
def test_apply_follows_the_per_row_rules(chunks, own):
    fast, slow = PublicBook(), PublicBook()
    for side, price, lots in own:  # resting orders of the accounts, published with the feed
        fast.add_own(side, price, lots)
        slow.add_own(side, price, lots)
    for spec in chunks:
        rows = _rows(spec)
        got, want = fast.apply(rows), oracle_apply(slow, rows)
        assert [r.tolist() for r in got] == [r.tolist() for r in want]
        assert _state(fast) == _state(slow)
        assert fast.take_diff() == slow.take_diff()


def test_apply_by_hand():
    """Two bid levels set, one trade met, an L3 order added then partly filled."""
    book = PublicBook()
    rows = _rows([(K.BOOK_DELTA, 1, 100, 3, 0), (K.BOOK_DELTA, 1, 99, 2, 0), (K.TRADE, -1, 100, 1, 0),
                  (K.L3_ADD, -1, 102, 5, 7), (K.L3_FILL, -1, 102, 2, 7)])
    trades = book.apply(rows)
    assert [int(t["price"]) for t in trades] == [100]
    assert book.bids == {100: 3, 99: 2}
    assert book.asks == {102: 3}  # 5 lots added, 2 filled: 3 rest
    assert book.l3 == {7: (-1, 102, 3)}
    # one update id per level change: 100, 99, 102 (add); the fill takes the order's 5 lots
    # out (102 -> 0) and puts its 3 left back (102 -> 3): two more
    assert book.update_id == 5
    assert book.take_diff() == (1, 5, [(100, 3), (99, 2)], [(102, 3)])


def test_an_emulator_process_keeps_its_startup_objects_out_of_full_collections():
    """freeze_startup_objects (the CLI's and EmulatorProcess's child call it once serving):
    what exists then is frozen, and a full collection afterwards walks only what came later."""
    import subprocess
    import sys

    code = ("import gc; from venues.emulator.server import freeze_startup_objects; "
            "before = gc.get_freeze_count(); freeze_startup_objects(); "
            "print(before, gc.get_freeze_count(), gc.isenabled())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=__file__.rsplit("/tests/", 1)[0]).stdout.split()
    assert out[0] == "0" and int(out[1]) > 10_000 and out[2] == "True"
