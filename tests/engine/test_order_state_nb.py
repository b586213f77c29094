"""engine/order_state_nb.py: the one implementation of an order's state rules, against
the OMS and the venue merge (engine/oms.py, engine/venue_merge.py) on random report
sequences, as plain Python and compiled into an @njit kernel (as the compiled loop runs it)."""

import random
import sys
from decimal import Decimal
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from engine import order_state_nb as O
from engine.oms import LEGAL_TRANSITIONS, OrderManager
from engine.types import OrderEventKind, OrderStatus, OrderType, TimeInForce
from engine.types.venue_reports import BookedFill, Command, CommandResult, Outcome

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_engine_venue_merge import BTC, _fill, _session, _state  # noqa: E402  (its scripted venue)

S = OrderStatus
# the transition table as written before it became integers (session 8's engine/oms.py)
_BEFORE = {
    S.PENDING: {S.SUBMITTED, S.REJECTED},
    S.SUBMITTED: {S.ACKNOWLEDGED, S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.REJECTED, S.EXPIRED},
    S.ACKNOWLEDGED: {S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.EXPIRED},
    S.PARTIALLY_FILLED: {S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.EXPIRED},
    S.FILLED: set(), S.CANCELLED: set(), S.REJECTED: set(), S.EXPIRED: set(),
}


@njit(cache=True)
def _report_nb(rows, position, row, kind, lots, leaves):
    return O.report_row(rows, position, row, kind, lots, leaves)


@njit(cache=True)
def _merge_nb(current, reported, query):
    return O.merge_status(current, reported, query)


def test_the_integer_table_is_the_transition_table():
    for current in S:
        assert O.is_terminal(current) == (not _BEFORE[current] and current != S.PENDING) == (
            current in (S.FILLED, S.CANCELLED, S.REJECTED, S.EXPIRED))
        assert LEGAL_TRANSITIONS[current] == frozenset(_BEFORE[current])
        for new in S:
            assert O.is_legal(int(current), int(new)) == (new in _BEFORE[current])


def test_merge_status_by_hand():
    # a cancel after the ack ends the order; a second, different end is a conflict (stale)
    assert O.merge_status(O.ACKNOWLEDGED, O.CANCELLED, False) == O.MERGE_END
    assert O.merge_status(O.CANCELLED, O.EXPIRED, False) == O.MERGE_STALE
    assert O.merge_status(O.CANCELLED, O.CANCELLED, False) == O.MERGE_NONE
    # a reject after the ack is not legal: stale, the order stays acknowledged
    assert O.merge_status(O.ACKNOWLEDGED, O.REJECTED, False) == O.MERGE_STALE
    # an ack confirms a submitted order; a late ack after a fill is stale, unless a lookup answers
    assert O.merge_status(O.SUBMITTED, O.ACKNOWLEDGED, False) == O.MERGE_CONFIRM
    assert O.merge_status(O.PARTIALLY_FILLED, O.ACKNOWLEDGED, False) == O.MERGE_STALE
    assert O.merge_status(O.PARTIALLY_FILLED, O.ACKNOWLEDGED, True) == O.MERGE_NONE
    for current in S:
        for reported in S:
            for query in (False, True):
                assert _merge_nb(int(current), int(reported), query) == O.merge_status(
                    int(current), int(reported), query)


def test_fills_by_hand():
    rows = np.zeros((2, O.OR_NF), dtype=np.int64)
    pos = np.zeros(1, dtype=np.int64)
    O.open_row(rows, 0, O.SUBMITTED, 0, -1, 100, 10, 0)
    assert O.book_fill_row(rows, pos, 0, 4, -1) is False  # 4 of 10: partially filled, short 4 lots
    assert (rows[0, O.OR_STATUS], rows[0, O.OR_FILLED], pos[0]) == (O.PARTIALLY_FILLED, 4, -4)
    assert O.book_fill_row(rows, pos, 0, 2, 0) is True  # the venue says nothing remains (IOC rest)
    assert (rows[0, O.OR_STATUS], rows[0, O.OR_FILLED], pos[0]) == (O.FILLED, 6, -6)
    assert O.leaves_of(int(rows[0, O.OR_STATUS]), 10, 6) == 0
    # a fill after the cancel is booked (filled, position), the status stays CANCELLED
    O.open_row(rows, 1, O.SUBMITTED, 0, 1, 100, 10, 0)
    assert O.report_row(rows, pos, 1, int(OrderEventKind.CANCELLED), 0, 10) == O.CANCELLED
    assert O.report_row(rows, pos, 1, int(OrderEventKind.FILL), 3, 7) == O.CANCELLED
    assert (rows[1, O.OR_FILLED], pos[0]) == (3, -3)


# -- the property: the OMS's merge and the rows agree on any report sequence -------------------
_KIND = {S.CANCELLED: int(OrderEventKind.CANCELLED), S.EXPIRED: int(OrderEventKind.EXPIRED),
         S.REJECTED: int(OrderEventKind.REJECTED)}


def _records(data, qty):
    """One order's reports: a submit confirmation, acks, fills (with copies), states and
    ends in any order (late fills after a cancel, acks after fills, a second end)."""
    n = data.draw(st.integers(0, 12), label="n")
    records = []
    for _ in range(n):
        what = data.draw(st.sampled_from(["cmd", "ack", "fill", "fill", "dup", "end", "state"]), label="what")
        if what == "cmd":
            records.append(("cmd",))
        elif what == "ack":
            records.append(("state", S.ACKNOWLEDGED))
        elif what == "state":
            records.append(("state", data.draw(st.sampled_from([S.PARTIALLY_FILLED, S.FILLED]), label="st")))
        elif what == "end":
            records.append(("state", data.draw(st.sampled_from([S.CANCELLED, S.EXPIRED, S.REJECTED]), label="e")))
        elif what == "dup" and any(r[0] == "fill" for r in records):
            records.append(data.draw(st.sampled_from([r for r in records if r[0] == "fill"]), label="dup"))
        else:
            records.append(("fill", f"t{len(records)}", data.draw(st.integers(1, qty // 2), label="lots")))
    return records


def _play_rows(records, qty, call):
    rows = np.zeros((1, O.OR_NF), dtype=np.int64)
    pos = np.zeros(1, dtype=np.int64)
    O.open_row(rows, 0, O.SUBMITTED, 0, 1, 100, qty, 0)
    trades = set()
    for rec in records:
        if rec[0] == "fill":
            if rec[1] in trades:  # the caller books a trade id once (OrderManager.trades)
                continue
            trades.add(rec[1])
            call(rows, pos, 0, int(OrderEventKind.FILL), rec[2], -1)
        elif rec[0] == "cmd" or rec[1] not in _KIND:  # the order exists at the venue
            call(rows, pos, 0, int(OrderEventKind.ACK), 0, -1)
        else:
            call(rows, pos, 0, _KIND[rec[1]], 0, -1)
    return int(rows[0, O.OR_STATUS]), int(rows[0, O.OR_FILLED]), int(pos[0])


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_the_rows_follow_the_oms_on_any_report_sequence(tmp_path_factory, data):
    qty = 100_000
    records = _records(data, qty)
    rng = random.Random(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    rng.shuffle(records)
    session, _, _ = _session(tmp_path_factory.mktemp("rows"))
    cid = session.ctx.submit(BTC.id, "buy", BTC.lots_to_qty(qty), "10000")
    for rec in records:
        if rec[0] == "cmd":
            session.on_command_result(CommandResult(cid, Command.SUBMIT, Outcome.CONFIRMED, 2_000, "v1"))
        elif rec[0] == "state":
            session.on_venue_state(_state(cid, rec[1], 0, qty=qty, reason="user_cancel"))
        else:
            session.on_venue_fill(_fill(cid, rec[1], rec[2], fee="0.01"))
    order = session.oms.by_client[cid]
    expected = (int(order.status), order.filled, BTC.qty_to_lots(session.ledger.position(BTC.id)))
    assert _play_rows(records, qty, O.report_row) == expected
    assert _play_rows(records, qty, _report_nb) == expected


@settings(max_examples=80, deadline=None)
@given(fills=st.lists(st.tuples(st.integers(1, 6), st.sampled_from([None, 0, 1, 5])), max_size=6),
       cancel_at=st.integers(0, 6))
def test_book_fill_row_is_the_oms_book_fill(fills, cancel_at):
    """OrderManager.book_fill (with the venue's leaves, or none) and book_fill_row, a cancel
    in between (the fills after it booked, the status kept)."""
    oms = OrderManager()
    order = oms.create(instrument=BTC, instrument_index=0, side=-1, type=OrderType.LIMIT, tif=TimeInForce.GTC,
                       price=100, qty=12)
    oms.set_status(order, S.SUBMITTED, 1)
    rows = np.zeros((1, O.OR_NF), dtype=np.int64)
    pos = np.zeros(1, dtype=np.int64)
    O.open_row(rows, 0, O.SUBMITTED, 0, -1, 100, 12, 0)
    for k, (lots, leaves) in enumerate(fills):
        if k == cancel_at and order.is_open:
            oms.set_status(order, S.CANCELLED, 2)
            O.report_row(rows, pos, 0, int(OrderEventKind.CANCELLED), 0, -1)
        fill = BookedFill(order.client_id, None, f"t{k}", 100, lots, Decimal(1), Decimal(lots), Decimal(0), "USDT",
                          Decimal(0), "maker", 3, 3, "sim")
        done = oms.book_fill(order, fill, leaves)
        assert O.book_fill_row(rows, pos, 0, lots, -1 if leaves is None else leaves) == done
        assert _report_nb(rows.copy(), pos.copy(), 0, int(OrderEventKind.FILL), 0, -1) == rows[0, O.OR_STATUS]
        assert (int(order.status), order.filled, -order.filled) == (rows[0, O.OR_STATUS], rows[0, O.OR_FILLED],
                                                                    pos[0])


def test_the_compiled_replay_refuses_an_oms_that_disagrees_with_the_loops_rows():
    """engine.bulk.agree_with_rows (the bulk pass and the per-event replay, each response
    row): the OMS's order must show the status the loop's row logged."""
    import pytest

    from engine.bulk import agree_with_rows
    from engine.errors import InternalError

    oms = OrderManager()
    order = oms.create(instrument=BTC, instrument_index=0, side=1, type=OrderType.LIMIT, tif=TimeInForce.GTC,
                       price=100, qty=12)
    oms.set_status(order, S.SUBMITTED, 1)
    agree_with_rows(oms, order.order_no, O.SUBMITTED, 7)
    with pytest.raises(InternalError, match="order 1 after log row 7 is SUBMITTED in the OMS, CANCELLED in the loop"):
        agree_with_rows(oms, order.order_no, O.CANCELLED, 7)
    with pytest.raises(InternalError, match="order 2 after log row 8 is unknown in the OMS"):
        agree_with_rows(oms, 2, O.SUBMITTED, 8)
