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
