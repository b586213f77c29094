"""engine.output.rows_table: the run directory's tables built column by column must be the
tables `Table.from_pylist` built from one dict per row (issue 16: the dicts were the 10M-event
run's peak memory), down to the bytes of the Parquet file."""

from __future__ import annotations

import hashlib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.output import EQUITY_SCHEMA, FILLS_SCHEMA, ORDERS_SCHEMA, rows_table

FILL_ROWS = [
    (1, 0, "binance:BTC/USDT", "binance", "tp-1", None, "buy", "60000.00", "0.01000", "-0.0000002265", "BTC",
     "maker", "-0.0000002265", "BTC", "1.453"),
    (2, 1, "binance:BTC/USDT", "binance", "tp-2", "p-1", "sell", "60000.01", "0.00547", "0.03", "USDT", "taker",
     "0.03", "USDT", None),
]
ORDER_ROWS = [
    ("tp-1", None, "binance:BTC/USDT", "binance", "buy", "limit", "GTX", True, False, "60000.00", "0.01000",
     "0.01000", "60000", "-0.0000005", "filled", None, 10, 10, 12, 20, 21, None, 21, "59999.99", "60000.01"),
    ("p-1", None, "binance:BTC/USDT", "binance", "sell", "parent", None, False, False, None, "1", "0", None, "0",
     "cancelled", "risk", 3, None, 3, None, None, None, 40, None, None),
]


def _bytes(table: pa.Table, path) -> str:
    pq.write_table(table, path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(("schema", "rows"), [(FILLS_SCHEMA, FILL_ROWS), (ORDERS_SCHEMA, ORDER_ROWS),
                                              (EQUITY_SCHEMA, []), (ORDERS_SCHEMA, iter(ORDER_ROWS))])
def test_rows_table_is_from_pylist(tmp_path, schema, rows):
    rows = list(rows) if not isinstance(rows, list) else rows
    want = pa.Table.from_pylist([dict(zip(schema.names, r, strict=True)) for r in rows], schema=schema)
    got = rows_table(schema, iter(rows))  # a generator, as RunWriter.finish passes the orders
    assert got.equals(want)
    assert got.num_rows == len(rows)
    assert _bytes(got, tmp_path / "a.parquet") == _bytes(want, tmp_path / "b.parquet")


def test_rows_table_refuses_a_row_of_the_wrong_width():
    with pytest.raises(ValueError, match="columns"):
        rows_table(EQUITY_SCHEMA, [(1, "2", "3")])
    with pytest.raises(ValueError):
        rows_table(EQUITY_SCHEMA, [(1, "2", "3", "4", "5", "USDT"), (1, "2")])


def test_market_rows_flush_at_the_threshold_and_keep_every_row(tmp_path, monkeypatch):
    """The top-of-book tape goes to Parquet every _FLUSH_ROWS pending rows (a running
    count, not a re-sum of the pending list per add), and the file holds every row in order."""
    import numpy as np

    import engine.output as output
    from engine.output import RunWriter
    from engine.types.instrument import load_instruments
    from venues.sim.codes import BBO_DTYPE

    monkeypatch.setattr(output, "_FLUSH_ROWS", 5)
    inst = load_instruments(None)["binance:BTC/USDT"]  # tick 0.01, lot 0.00001
    writer = RunWriter(tmp_path, {inst.id: inst})
    batches = []
    for k in range(4):  # 2 + 2 rows pending, the third batch makes 6 >= 5: flushed, count back to 0
        rows = np.zeros(2, dtype=BBO_DTYPE)
        rows["ts"] = [10 * k, 10 * k + 1]
        rows["bid"], rows["bid_qty"], rows["ask"], rows["ask_qty"] = 6_000_000, 100, 6_000_001, 200
        writer.add_bbo(rows)
        batches.append(rows)
        assert writer._pending_rows["bbo"] == [2, 4, 0, 2][k]
        assert sum(len(p) for p in writer._market["bbo"][1]) == writer._pending_rows["bbo"]
    writer.finish([], [], {}, {})
    table = pq.read_table(tmp_path / "bbo.parquet")
    assert table.column("ts").to_pylist() == [0, 1, 10, 11, 20, 21, 30, 31]
    assert table.column("bid").to_pylist() == [60000.0] * 8  # 6,000,000 ticks of 0.01
    assert table.column("ask_qty").to_pylist() == [0.002] * 8  # 200 lots of 0.00001


def test_order_tuple_is_the_order_row():
    """RunWriter.finish's orders come from `_order_tuple` (text of ticks and lots cached):
    the same values as `_order_row`'s dict, for limit and market orders, filled or not,
    with and without arrival prices, on two instruments of different steps."""
    import operator
    import random
    from decimal import Decimal

    from engine.oms import OrderManager
    from engine.output import _order_row, _order_tuple, _UnitText
    from engine.types import OrderStatus, OrderType, TimeInForce, load_instruments

    specs = load_instruments(None)
    rng = random.Random(11)
    oms = OrderManager()
    values = operator.itemgetter(*ORDERS_SCHEMA.names)
    text = _UnitText()
    for n in range(300):
        inst = specs[rng.choice(["binance:BTC/USDT", "binance:ETH/BTC"])]
        market = rng.random() < 0.2
        order = oms.create(client_id=None, instrument=inst, instrument_index=0, side=rng.choice([1, -1]),
                           type=OrderType.MARKET if market else OrderType.LIMIT,
                           tif=TimeInForce.IOC if market else rng.choice(list(TimeInForce)),
                           price=0 if market else rng.randint(1, 5000) * 7, qty=rng.randint(1, 9) * 100,
                           created_ts=n, trigger_ts=n, arrival_bid=rng.choice([None, Decimal("59999.99")]),
                           arrival_ask=rng.choice([None, inst.ticks_to_price(rng.randint(1, 10**6))]))
        if rng.random() < 0.6:
            order.filled = rng.randint(1, order.qty)
            for _ in range(rng.randint(1, 3)):
                order.notional_filled += inst.ticks_to_price(rng.randint(1, 10**6)) * inst.lots_to_qty(order.filled)
            order.fees = Decimal(rng.randint(-999, 999)) / 10**rng.randint(0, 12)
            oms.set_status(order, OrderStatus.SUBMITTED, n)
            oms.set_status(order, OrderStatus.PARTIALLY_FILLED, n)
        assert _order_tuple(order, text) == values(_order_row(order))
        assert [str(v) for v in _order_tuple(order, text)] == [str(v) for v in values(_order_row(order))]


def test_tapes_dictionary_encode_the_repeating_columns_only(tmp_path):
    """bbo.parquet / trades.parquet: a dictionary for the instrument, the touch prices and
    a trade's side and price, plain encoding for timestamps and sizes (pyarrow's default
    tried a dictionary everywhere: bench/PROFILE.md 2d); the values read back unchanged."""
    import numpy as np

    from engine.output import RunWriter
    from engine.types.instrument import load_instruments
    from venues.sim.codes import BBO_DTYPE, TRADE_DTYPE

    inst = load_instruments(None)["binance:BTC/USDT"]
    writer = RunWriter(tmp_path, {inst.id: inst})
    bbo = np.zeros(3, dtype=BBO_DTYPE)
    bbo["ts"], bbo["bid"], bbo["bid_qty"], bbo["ask"], bbo["ask_qty"] = [1, 2, 3], 6_000_000, [5, 6, 7], 6_000_001, 9
    trades = np.zeros(2, dtype=TRADE_DTYPE)
    trades["ts"], trades["side"], trades["price"], trades["qty"] = [4, 5], [1, -1], 6_000_001, [3, 4]
    writer.add_bbo(bbo)
    writer.add_trades(trades)
    writer.finish([], [], {}, {})
    for name, dictionary in (("bbo", {"instrument", "bid", "ask"}), ("trades", {"instrument", "side", "price"})):
        meta = pq.ParquetFile(tmp_path / f"{name}.parquet").metadata.row_group(0)
        encoded = {meta.column(c).path_in_schema for c in range(meta.num_columns)
                   if meta.column(c).has_dictionary_page}
        assert encoded == dictionary, name
    table = pq.read_table(tmp_path / "bbo.parquet")
    assert table.column("instrument").to_pylist() == [inst.id] * 3
    assert table.column("bid_qty").to_pylist() == [0.00005, 0.00006, 0.00007]
    assert pq.read_table(tmp_path / "trades.parquet").column("side").to_pylist() == ["buy", "sell"]


@pytest.mark.parametrize("enabled", [True, False])
def test_finish_leaves_the_collector_as_it_found_it(tmp_path, monkeypatch, enabled):
    """RunWriter.finish pauses the cyclic collector while it builds its tables and turns it
    back on only if it was on."""
    import gc

    import engine.output as output
    from engine.output import RunWriter

    seen = []

    def spy(*args):  # rows_table runs inside the pause
        seen.append(gc.isenabled())
        return rows_table(*args)

    monkeypatch.setattr(output, "rows_table", spy)
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        RunWriter(tmp_path, {}).finish([], [], {}, {})
        assert seen == [False] * 4
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
