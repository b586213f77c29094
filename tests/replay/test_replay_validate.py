"""Property tests (hypothesis) for the validation pieces and the exact number parser."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import DataError
from engine.types import EVENT_DTYPE, EventKind, load_instruments
from replay import merge_streams
from replay.book import BookScanner
from replay.numparse import NEGATIVE, OFF_GRID, OK, parse_units
from replay.validate import Mode, Report, Rows, check_merged, check_part, decide

INST = load_instruments()["binance:BTC/USDT"]
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _rows(ev: np.ndarray) -> Rows:
    n = len(ev)
    return Rows(INST, ev, np.zeros(n, np.uint16), np.arange(1, n + 1, dtype=np.int64), ["f.csv"])


def _trades(local, exch=None, ids=None) -> np.ndarray:
    ev = np.zeros(len(local), EVENT_DTYPE)
    ev["local_ts"] = local
    ev["exch_ts"] = local if exch is None else exch
    ev["kind"] = EventKind.TRADE
    ev["side"] = 1
    ev["price"] = 100
    ev["qty"] = 1
    ev["order_id"] = np.arange(1, len(local) + 1) if ids is None else ids
    return ev


@FAST
@given(
    st.decimals(min_value=Decimal("-1e9"), max_value=Decimal("1e9"), places=8, allow_nan=False),
    st.sampled_from(["0.01", "0.1", "1", "0.00001", "0.5", "0.25", "5"]),
)
def test_parse_units_matches_decimal(value, step_text):
    step = Decimal(step_text)
    text = format(value, "f")
    units, status = parse_units([text], step)
    if value < 0 and value != 0:
        assert status[0] == NEGATIVE
        return
    exact = value / step
    if exact == exact.to_integral_value():
        assert status[0] == OK and units[0] == int(exact), text
    else:
        assert status[0] == OFF_GRID, text


@FAST
@given(st.lists(st.integers(0, 50), min_size=1, max_size=60))
def test_unsorted_counted_and_fixed(ts):
    local = np.array(ts, dtype=np.int64)
    run_max = np.maximum.accumulate(local)
    expected = int((local < run_max).sum())
    for mode in (Mode.STRICT, Mode.REPAIR, Mode.SKIP):
        report = Report()
        out = check_part(_rows(_trades(local)), report, mode, correct_skew=False)
        assert report.count("unsorted_ts") == expected
        if mode is Mode.REPAIR:
            assert (np.diff(out.events["local_ts"]) >= 0).all()
            assert sorted(out.events["order_id"].tolist()) == list(
                range(1, len(ts) + 1)
            )  # nothing lost
        if mode is Mode.SKIP:
            assert (np.diff(out.events["local_ts"]) >= 0).all()
            assert len(out.events) == len(ts) - expected
        if expected:
            assert report.problems["unsorted_ts"].examples[0].startswith("f.csv:")


@FAST
@given(st.lists(st.integers(-5_000, 5_000), min_size=1, max_size=50), st.integers(0, 10**6))
def test_skew_measured_and_corrected(latencies, base):
    exch = base + np.arange(len(latencies), dtype=np.int64) * 10_000
    local = exch + np.array(latencies, dtype=np.int64)
    local = np.maximum.accumulate(local)  # receive order is sorted
    report = Report()
    out = check_part(_rows(_trades(local, exch)), report, Mode.STRICT, correct_skew=True)
    early = int((local < exch).sum())
    assert report.count("local_before_exch") == early
    delta = out.events["local_ts"] - out.events["exch_ts"]
    if early:
        assert delta.min() == 0 and report.problems["local_before_exch"].severity == "warning"
    else:
        assert np.array_equal(out.events["local_ts"], local)
    assert (np.diff(out.events["local_ts"]) >= 0).all()


@FAST
@given(st.lists(st.tuples(st.integers(1, 8), st.integers(0, 2)), min_size=1, max_size=40))
def test_repeated_trade_ids_verbatim_vs_conflicting(trades):
    """(id, price variant) pairs: a repeat of an earlier (id, price) is verbatim
    (`duplicate_trade_id`), the id with a price not seen before for it is conflicting
    (`conflicting_trade_id`)."""
    ids = np.array([t for t, _v in trades], dtype=np.uint64)
    local = np.arange(len(trades), dtype=np.int64)
    ev = _trades(local, exch=np.zeros(len(trades), np.int64), ids=ids)
    ev["price"] = [100 + v for _t, v in trades]
    seen: dict[int, set[int]] = {}
    verbatim = conflicting = 0
    expect = {Mode.REPAIR: [], Mode.SKIP: []}
    for i, (tid, v) in enumerate(trades):
        if tid not in seen:
            expect[Mode.REPAIR].append(i)
            expect[Mode.SKIP].append(i)
        elif v in seen[tid]:
            verbatim += 1
        else:
            conflicting += 1
            expect[Mode.REPAIR].append(i)
        seen.setdefault(tid, set()).add(v)
    for mode in (Mode.STRICT, Mode.REPAIR, Mode.SKIP):
        report = Report()
        out = check_merged(_rows(ev), report, mode)
        assert report.count("duplicate_trade_id") == verbatim
        assert report.count("conflicting_trade_id") == conflicting
        if mode is Mode.STRICT:
            assert len(out.events) == len(ev)
            assert ("conflicting_trade_id" in report.errors) == (conflicting > 0)
        else:
            assert out.events["local_ts"].tolist() == expect[mode]
        if mode is Mode.REPAIR and conflicting:
            assert report.problems["conflicting_trade_id"].severity == "warning"


def test_repeated_trade_ids_refusal_names_both_kinds():
    ev = _trades(np.arange(4, dtype=np.int64), exch=np.zeros(4, np.int64),
                 ids=np.array([7, 7, 8, 8], dtype=np.uint64))
    ev["qty"][3] = 2  # id 8 again with another size: both are real volume
    report = Report()
    check_merged(_rows(ev), report, Mode.STRICT)
    with pytest.raises(DataError) as err:
        decide(report, Mode.STRICT, "import")
    assert ("conflicting_trade_id 1 (first at f.csv:4), duplicate_trade_id 1 (first at f.csv:2)"
            in str(err.value))
    assert report.problems["conflicting_trade_id"].examples == [
        "f.csv:4: trade id 8: 1.00 x 0.00002 side 1 exch_ts 0 differs from f.csv:3: "
        "1.00 x 0.00001 side 1 exch_ts 0"
    ]


book_ops = st.lists(
    st.tuples(st.sampled_from([1, -1]), st.integers(90, 110), st.integers(0, 3)),
    min_size=1,
    max_size=80,
)


@FAST
@given(book_ops)
def test_book_scanner_matches_reference(ops):
    ev = np.zeros(len(ops), EVENT_DTYPE)
    ev["kind"] = EventKind.BOOK_DELTA
    ev["local_ts"] = np.arange(len(ops))
    ev["exch_ts"] = ev["local_ts"]
    for i, (side, price, qty) in enumerate(ops):
        ev[i]["side"], ev[i]["price"], ev[i]["qty"] = side, price, qty
    _ends, top, crossed = BookScanner().scan(ev)
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    for i, (side, price, qty) in enumerate(ops):
        book = bids if side > 0 else asks
        if qty:
            book[price] = qty
        else:
            book.pop(price, None)
        bb = max(bids) if bids else -1
        ba = min(asks) if asks else -1
        assert top[i, 0] == bb and top[i, 2] == ba
        assert top[i, 1] == (bids[bb] if bids else -1)
        assert crossed[i] == (bool(bids) and bool(asks) and bb >= ba)
    # repair removes the stale side until nothing is crossed (the deltas follow an
    # empty snapshot: rows no snapshot precedes would be dropped as `before_snapshot`)
    marks = np.zeros(2, EVENT_DTYPE)
    marks["kind"] = [EventKind.SNAPSHOT_BEGIN, EventKind.SNAPSHOT_END]
    ev = np.concatenate([marks, ev])
    report = Report()
    out = check_merged(_rows(ev), report, Mode.REPAIR)
    _e, _t, crossed_after = BookScanner().scan(out.events)
    assert not crossed_after.any()
    assert report.count("crossed_book") == int(crossed.sum())


@FAST
@given(
    st.lists(st.lists(st.integers(0, 30), max_size=30), min_size=1, max_size=4),
    st.integers(1, 7),
    st.integers(1, 9),
)
def test_merge_streams_order_and_bounds(streams, piece, chunk_rows):
    def gen(values):
        arr = np.zeros(len(values), EVENT_DTYPE)
        arr["local_ts"] = sorted(values)
        arr["order_id"] = np.arange(len(values))
        for lo in range(0, len(values), piece):
            yield arr[lo : lo + piece]

    chunks = list(merge_streams([gen(v) for v in streams], chunk_rows))
    assert all(0 < len(c) <= chunk_rows for c in chunks)
    out = np.concatenate(chunks) if chunks else np.zeros(0, EVENT_DTYPE)
    keys = list(
        zip(
            out["local_ts"].tolist(),
            out["instrument"].tolist(),
            out["order_id"].tolist(),
            strict=True,
        )
    )
    expected = sorted((t, i, j) for i, v in enumerate(streams) for j, t in enumerate(sorted(v)))
    assert keys == expected


def test_a_row_received_before_its_venue_time_says_by_how_much_in_positive_terms():
    exch = np.array([10_000_000, 20_000_000], dtype=np.int64)
    local = np.array([8_750_000, 20_000_000], dtype=np.int64)  # the first 1.25 ms before its venue time
    report = Report()
    check_part(_rows(_trades(local, exch)), report, Mode.STRICT, correct_skew=False)
    assert report.problems["local_before_exch"].examples[0].endswith(
        "local_ts 1,250,000 ns (1.250 ms) before exch_ts")
