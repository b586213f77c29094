"""engine/bulk.py: the compiled fast path's bulk bookkeeping books the numba loop's log
exactly as the per-event session replay does (the reference, `bulk_books = False`), on
random runs: random feeds, order sizes, fee rates and fee-asset rules, latencies and risk
limits, so the fill sequences (partial fills, buys and sells, position flips, rebates,
fees in base or quote) and the ledger (integer cost basis, truncated average cost on
partial closes, Decimal balances) vary. Every output file and the summary's ledger
figures must be byte-identical."""

import hashlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.compiled import CompiledStrategy
from modes.cli import main

EXAMPLE = "examples/compiled_market_maker.py:CompiledTouchQuoter"
OUTPUTS = ("orders.parquet", "fills.parquet", "equity.parquet", "inventory.parquet", "audit.jsonl")


def _config(path, root, seed, qty, maker, taker, fee_asset, entry_ms, max_position, every_ms):
    risk = f"max_position = {max_position}\nmax_orders_per_second = 30\n" if max_position else ""
    path.write_text(f"""
[run]
strategy = "{root / EXAMPLE.split(':')[0]}:{EXAMPLE.split(':')[1]}"
data = "synthetic:{seed}:15s"
seed = {seed}
[run.params]
qty = "{qty}"
every_ms = {every_ms}
[venues.binance]
queue_model = "risk_averse"
latency = {{ entry_ns = {entry_ms * 1_000_000}, response_ns = 1000000, feed_ns = 0 }}
maker_fee_bps = {maker}
taker_fee_bps = {taker}
fee_asset = "{fee_asset}"
balances = {{ USDT = "1000000", BTC = "10" }}
[risk]
{risk}""")
    return str(path)


def _summary(run):
    data = json.loads((run / "summary.json").read_text())["run"]
    for key in ("id", "wall_seconds", "events_per_second", "compiled_bookkeeping"):
        data.pop(key)
    return data


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(1, 10_000), qty=st.sampled_from(["0.001", "0.01", "0.037", "0.5"]),
       maker=st.sampled_from(["-0.5", "0", "1.3", "2"]), taker=st.sampled_from(["4", "7.5"]),
       fee_asset=st.sampled_from(["quote", "received"]), entry_ms=st.integers(0, 30),
       max_position=st.sampled_from([None, "0.05", "1"]), every_ms=st.sampled_from([50, 100, 250]))
def test_bulk_books_equal_per_event_books(tmp_path_factory, request, seed, qty, maker, taker, fee_asset, entry_ms,
                                          max_position, every_ms):
    tmp = tmp_path_factory.mktemp("bulk")
    config = _config(tmp / "run.toml", request.config.rootpath, seed, qty, maker, taker, fee_asset, entry_ms,
                     max_position, every_ms)
    assert main(["backtest", "--config", config, "--out", str(tmp / "bulk"), "--no-report"]) == 0
    mp = pytest.MonkeyPatch()
    mp.setattr(CompiledStrategy, "bulk_books", False)
    try:
        assert main(["backtest", "--config", config, "--out", str(tmp / "per_event"), "--no-report"]) == 0
    finally:
        mp.undo()
    assert json.loads((tmp / "bulk" / "summary.json").read_text())["run"]["compiled_bookkeeping"] == "bulk"
    for name in OUTPUTS:
        a, b = (tmp / "bulk" / name).read_bytes(), (tmp / "per_event" / name).read_bytes()
        assert hashlib.sha256(a).digest() == hashlib.sha256(b).digest(), name
    assert _summary(tmp / "bulk") == _summary(tmp / "per_event")


# -- the bulk equity samples against engine/ledger.py, on random fill sequences -----------
class _Venue:
    def __init__(self):
        self.tops = {}

    def top_of_book(self, index):
        return self.tops.get(index, (0, 0, 0, 0))


class _Clock:
    def __init__(self):
        self.t = 0

    def now(self):
        return self.t


class _Rows:
    """A recorder without equity_texts: SpotEquity hands it Decimals."""

    def __init__(self):
        self.rows = []

    def equity(self, ts, equity, realized, unrealized, fees, positions):
        self.rows.append((ts, equity, realized, unrealized, fees, positions))


IDS = ("binance:BTC/USDT", "binance:ETH/USDT", "binance:ETH/BTC")
fill = st.tuples(st.integers(0, len(IDS) - 1), st.sampled_from([1, -1]), st.integers(1, 9_000_000),
                 st.integers(1, 5_000), st.sampled_from(["-0.5", "0", "1", "7.5"]), st.booleans())
top = st.one_of(st.none(), st.tuples(st.integers(1, 9_000_000), st.integers(0, 40)))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(fill, st.lists(top, min_size=3, max_size=3)), min_size=1, max_size=40))
def test_spot_equity_equals_ledger(tmp_path_factory, steps):
    """SpotEquity's samples (both recorder forms) equal what TradingSession.sample_equity
    computes with the Ledger: equity, realized, unrealized, fees, positions, mids; fills
    open, add to, partly close and flip positions, fees in quote or base (rebates too)."""
    from decimal import Decimal
    from types import SimpleNamespace

    from engine.bulk import SpotEquity
    from engine.fees import fill_fee
    from engine.ledger import Ledger
    from engine.output import RunWriter
    from engine.types import Liquidity, load_instruments
    from engine.types.instrument import decimal_str

    specs = load_instruments(None)
    instruments = {i: specs[i] for i in IDS}
    balances = {"binance": {"USDT": Decimal("100000"), "BTC": Decimal("3"), "ETH": Decimal("0")}}
    ledger = Ledger(instruments, balances)
    venue, clock = _Venue(), _Clock()
    writer = RunWriter(tmp_path_factory.mktemp("eq"), instruments)
    rows = _Rows()
    session = SimpleNamespace(ledger=ledger, instruments=instruments, venues={"binance": venue}, clock=clock,
                              recorder=writer, fill_count=0)
    texts = SpotEquity(session)
    plain = SpotEquity(SimpleNamespace(**(vars(session) | {"recorder": rows})))
    for (i, side, ticks, lots, rate, received), tops in steps:
        inst = instruments[IDS[i]]
        fee, asset = fill_fee(inst, side, ticks, lots, Liquidity.MAKER, Decimal(rate), Decimal(rate),
                              "received" if received else "quote")
        ledger.apply_fill(inst, side, ticks, lots, fee, asset)
        session.fill_count += 1
        plain.s.fill_count = session.fill_count  # its own namespace: the fill count moves there too
        clock.t += 1
        venue.tops = {k: (bid, 1, bid + spread, 1) for k, t in enumerate(tops) if t is not None
                      for bid, spread in [t]}
        texts.sample()
        plain.sample()
        marks = {IDS[k]: specs[IDS[k]].ticks_to_price(2 * t[0] + t[1]) / 2 for k, t in enumerate(tops)
                 if t is not None}
        want = (clock.t, ledger.equity(marks), ledger.realized_pnl(), ledger.unrealized_pnl(marks), ledger.fees())
        got = rows.rows[-1]
        assert got[:5] == want
        assert [str(v) for v in got[1:5]] == [str(v) for v in want[1:]]  # the same digits, not just equal
        assert [p[:2] for p in got[5]] == [(k, ledger.position(k)) for k in IDS]
        assert writer._equity[-1][:5] == (clock.t, *(decimal_str(v) for v in want[1:]))
        assert [r[2] for r in writer._inventory[-3:]] == [decimal_str(ledger.position(k)) for k in IDS]
        # a sample with no fill in between: at the same touch (remembered figures), then
        # with every touch one tick higher (the ledger's part remembered, the marks new)
        for shift in (0, 1):
            clock.t += 1
            venue.tops = {k: (bid + shift, qty, ask + shift, ask_qty) for k, (bid, qty, ask, ask_qty)
                          in venue.tops.items()}
            texts.sample()
            plain.sample()
            marks = {IDS[k]: specs[IDS[k]].ticks_to_price(bid + ask) / 2 for k, (bid, _, ask, _) in venue.tops.items()}
            want = (clock.t, ledger.equity(marks), ledger.realized_pnl(), ledger.unrealized_pnl(marks), ledger.fees())
            assert [str(v) for v in rows.rows[-1][:5]] == [str(v) for v in want]
            assert writer._equity[-1][:5] == (clock.t, *(decimal_str(v) for v in want[1:]))


@pytest.mark.parametrize(("kind", "record"), [("FILL", "duplicate_fill"), ("REJECTED", "conflict")])
def test_rows_outside_the_bulk_pass_go_through_the_session(tmp_path, request, monkeypatch, kind, record):
    """A report the venue sends twice (here: the log's first fill, or first post-only
    rejection, repeated) is not one of the cases the bulk pass books: it goes to
    session.on_order_event at its place in the log (a fill booked once and audited as
    `duplicate_fill`; a second end of an ended order audited as `conflict`), and the run
    equals the per-event booking of the same log byte for byte."""
    import numpy as np

    import engine.bulk
    import modes.backtest_compiled as mb
    from engine.types import OrderEventKind
    from venues.sim import compiled_nb as K

    code = int(OrderEventKind[kind])

    run = mb.CompiledLoop.run
    delegated = []

    def run_twice_reported(self, on_log, on_sample):
        state = {"done": False}

        def on_log2(LG, LB, n):
            rows = np.flatnonzero((LG[:n, K.LG_KIND] == K.LOG_RESP) & (LG[:n, K.LG_R_KIND] == code))
            if state["done"] or not len(rows):
                return on_log(LG, LB, n)
            k = int(rows[0])
            state["done"] = True
            return on_log(np.insert(LG[:n], k + 1, LG[k], axis=0), np.insert(LB[:n], k + 1, LB[k], axis=0), n + 1)

        return run(self, on_log2, on_sample)

    book = engine.bulk.BulkBooks.book

    def counting_book(self, log, delegate):
        book(self, log, delegate)
        delegated.append(self.delegated)

    monkeypatch.setattr(mb.CompiledLoop, "run", run_twice_reported)
    monkeypatch.setattr(engine.bulk.BulkBooks, "book", counting_book)
    config = _config(tmp_path / "run.toml", request.config.rootpath, 5, "0.01", "-0.5", "7", "quote", 30, None, 50)
    assert main(["backtest", "--config", config, "--out", str(tmp_path / "bulk"), "--no-report"]) == 0
    monkeypatch.setattr(CompiledStrategy, "bulk_books", False)
    assert main(["backtest", "--config", config, "--out", str(tmp_path / "per_event"), "--no-report"]) == 0
    assert delegated and delegated[-1] == 1
    audit = (tmp_path / "bulk" / "audit.jsonl").read_text()
    assert audit.count(f'"type":"{record}"') == 1
    for name in OUTPUTS:
        assert (tmp_path / "bulk" / name).read_bytes() == (tmp_path / "per_event" / name).read_bytes(), name
