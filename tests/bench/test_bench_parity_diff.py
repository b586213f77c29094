"""bench_parity's first difference between a backtest's and a session's order requests
(bench/bench_parity.py first_difference): the line it prints, hand-written tables."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from bench.bench_parity import first_difference

MS = 1_000_000


def _order(no: int, side: str, price: str, status: str, filled: str, created: int, done: int | None) -> dict:
    return {"client_id": f"tp-{no}", "type": "limit", "side": side, "price": price, "qty": "0.01000",
            "status": status, "filled_qty": filled, "created_ts": created, "ack_ts": created + 10 * MS,
            "first_fill_ts": None if filled == "0" else created + 20 * MS, "done_ts": done}


def _run(path, orders: list[dict]):
    path.mkdir()
    pq.write_table(pa.Table.from_pylist(orders), path / "orders.parquet")
    return path


def test_the_first_request_or_outcome_that_differs(tmp_path):
    """Both runs start at their own time (backtest 0, session 1000 ms). Order 2 is the same
    request in both but refused in the session and filled in the backtest: an outcome
    difference, times after each start. A differing price is a request difference. An
    order the backtest ends with open and the session's shutdown cancelled is no difference."""
    t = 1000 * MS
    bt = _run(tmp_path / "bt", [_order(1, "buy", "100.00", "cancelled", "0", 500 * MS, 600 * MS),
                                _order(2, "sell", "100.10", "filled", "0.01000", 1000 * MS, 1020 * MS),
                                _order(3, "buy", "99.90", "acknowledged", "0", 1500 * MS, None)])
    tn = _run(tmp_path / "tn", [_order(1, "buy", "100.00", "cancelled", "0", t + 500 * MS, t + 600 * MS),
                                _order(2, "sell", "100.10", "rejected", "0", t + 1000 * MS, t + 1010 * MS),
                                _order(3, "buy", "99.90", "cancelled", "0", t + 1500 * MS, t + 1600 * MS)])
    assert first_difference(bt, tn, 0, t).splitlines() == [
        "first difference (outcome):",
        "  backtest: #2 sell 0.01000 @ 100.10 filled filled 0.01000; made 1000.00 ms, acked 1010.00, "
        "first fill 1020.00, done 1020.00",
        "  testnet : #2 sell 0.01000 @ 100.10 rejected filled 0; made 1000.00 ms, acked 1010.00, "
        "first fill -, done 1010.00"]
    same = _run(tmp_path / "same", [_order(1, "buy", "100.00", "cancelled", "0", 500 * MS, 600 * MS),
                                    _order(2, "sell", "100.10", "rejected", "0", 1000 * MS, 1010 * MS),
                                    _order(3, "buy", "99.90", "acknowledged", "0", 1500 * MS, None)])
    assert first_difference(same, tn, 0, t) is None
    moved = _run(tmp_path / "moved", [_order(1, "buy", "100.00", "cancelled", "0", 500 * MS, 600 * MS),
                                      _order(2, "sell", "100.20", "rejected", "0", 1000 * MS, 1010 * MS)])
    assert first_difference(moved, tn, 0, t).splitlines()[:2] == [
        "first difference (request, replace):",
        "  backtest: #2 sell 0.01000 @ 100.20 rejected filled 0; made 1000.00 ms, acked 1010.00, "
        "first fill -, done 1010.00"]
