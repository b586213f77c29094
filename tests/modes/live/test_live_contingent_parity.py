"""The same contingent cases against the emulator give the same order streams (issue 13, point 4).

One generated dataset D (a DuckDB store): a flat BTC/USDT book (bid 60000.00 / ask 60000.10,
1 BTC a side) for an hour, then trade prints 2 s apart that move the last price. The strategy
(`contingent_strategies.EveryCase`) arms every contingent type at start: stop-market,
stop-limit, trailing stop, OCO, OTO, bracket and iceberg, all on last-trade triggers at
distinct levels. D is backtested, and replayed by the emulator (stepped by the test: like
speed 1, the trades released once the testnet session has armed everything) to a
`tickparity testnet` session over real ccxt. Each case's order requests (side, type, price,
qty, in order) are computed by hand below; the backtest gives exactly those, and so does the
testnet session. Fees are zero on both sides (a fee in the base asset would resize a
bracket's exits: docs/contingent-orders.md). Per case, not interleaved: the order in which
two cases' start-time fills come back over the network is not the backtest's.
"""

from __future__ import annotations

import json
import threading
import time
from decimal import Decimal

import pyarrow.parquet as pq
from contingent_market import BTC, Stepper, market, write_store
from emu_helpers import make_emulator
from live_helpers import ALICE, ROOT

from engine.config import resolve
from engine.types import EventKind
from modes.backtest import run_backtest
from modes.live import run_live

STRATEGY = str(ROOT / "tests" / "modes" / "live" / "contingent_strategies.py") + ":EveryCase"
VENUE = {"taker_fee_bps": 0, "maker_fee_bps": 0}
BALANCES = {"USDT": "10000000", "BTC": "100"}


def _trade(at_s: int, price: str) -> tuple:
    return (at_s, EventKind.TRADE, 1, int(Decimal(price) * 100), 1_000)  # 0.01 BTC printed


# the last price: 60100 (trailing watermark), 60500 (stop-limit buy), 60900 (OCO take-profit),
# 60550 (trailing, 300 below 60900), 59650 (bracket stop-loss), 59400 (stop-market and OTO child)
TRADES = [_trade(2, "60100"), _trade(4, "60500"), _trade(6, "60900"), _trade(8, "60550"), _trade(10, "59650"),
          _trade(12, "59400")]
M, L = "market", "limit"
EXPECTED = {
    "sm": [("sell", M, None, "0.001")],  # stop-market: last <= 59500 at 59400
    "sl": [("buy", L, "60600", "0.001")],  # stop-limit: last >= 60400 at 60500, limit 60600
    "tr": [("sell", M, None, "0.001")],  # trailing 300: high 60900 -> 60600; 60550 touches
    "oco": [("sell", M, None, "0.001")],  # take-profit >= 60800 at 60900; the stop leg cancelled unsent
    "oto": [("buy", L, "60000.1", "0.001"),  # the parent crosses the spread: filled at start ...
            ("sell", L, "59400", "0.001")],  # ... arming the child stop-limit (<= 59450 at 59400)
    "br": [("buy", L, "60000.1", "0.002"),  # entry filled at start: the take-profit rests, the stop arms
           ("sell", L, "61500", "0.002"), ("sell", M, None, "0.002")],  # stop-loss <= 59700 at 59650
    "ice": [("buy", L, "60010", "0.001")] * 3,  # 0.003 shown 0.001 at a time, each slice filled at once
}


def _streams(run) -> dict[str, list[tuple]]:
    rows = [r for r in pq.read_table(run / "orders.parquet").to_pylist() if r["type"] != "parent"]
    rows.sort(key=lambda r: r["created_ts"])  # stable: the table is in order-number order
    out: dict[str, list[tuple]] = {}
    for r in rows:
        price = None if r["price"] is None else _plain(r["price"])
        out.setdefault(r["client_id"].split(".")[0], []).append((r["side"], r["type"], price, _plain(r["qty"])))
    return out


def _plain(value) -> str:
    return format(Decimal(value).normalize(), "f")


def _status(run, client_id: str) -> str:
    return next(r["status"] for r in pq.read_table(run / "orders.parquet").to_pylist() if r["client_id"] == client_id)


def test_every_contingent_case_sends_the_same_orders_on_the_backtest_and_the_emulator(tmp_path, alice_env):
    rows = market(TRADES, 20)
    data = write_store(tmp_path / "d.duckdb", rows)
    backtest = run_backtest(resolve({"run": {"strategy": STRATEGY, "data": data, "instruments": [BTC]},
                                     "venues": {"binance": VENUE | {"balances": BALANCES}}}, {}, base_dir=str(ROOT)),
                            tmp_path / "backtest", write_html=False)
    assert _streams(backtest) == EXPECTED
    assert _status(backtest, "br.tp") == "cancelled"  # the stop-loss fired: the take-profit goes

    with make_emulator(tmp_path / "emu", stepped=True, data=data, ids=(BTC,), venue=VENUE) as emu:
        stepper = Stepper(emu)
        stepper.start()
        try:
            run = tmp_path / "testnet"
            config = resolve({"run": {"strategy": STRATEGY, "data": data, "instruments": [BTC]},
                              "venues": {"binance": VENUE | {"balances": BALANCES, "url": emu.url, **ALICE}}},
                             {}, base_dir=str(ROOT))
            result: dict = {}

            def session():
                try:
                    result["out"] = run_live(config, "testnet", run, duration_s=25, health=False, write_html=False)
                except BaseException as exc:  # reported by the test thread
                    result["error"] = exc
            thread = threading.Thread(target=session)
            thread.start()
            deadline = time.monotonic() + 90
            while not _armed(run) and "error" not in result:  # every start-time order answered
                assert time.monotonic() < deadline, "the session did not arm its orders in time"
                time.sleep(0.2)
            assert "error" not in result, result.get("error")
            stepper.play.set()  # the trade prints, 2 s apart
            thread.join(120)
            assert "error" not in result, result.get("error")
        finally:
            stepper.stop.set()
            stepper.join(5)
    assert _streams(run) == EXPECTED
    assert _status(run, "br.tp") == "cancelled"
    summary = json.loads((run / "summary.json").read_text())["run"]
    assert summary["errors"] == []
    # the emulated orders' table, as a backtest's run directory has it (docs/run_dir.md)
    legs = {row["id"]: row["state"] for row in pq.read_table(run / "contingent.parquet").to_pylist()}
    assert legs["ice"] == "filled" and legs["br.tp"] == "cancelled"


def _armed(run) -> bool:
    """contingent.json shows the iceberg done, the OTO child and the bracket's stop armed."""
    path = run / "contingent.json"
    if not path.is_file():
        return False
    try:
        legs = {leg["id"]: leg["state"] for leg in json.loads(path.read_text())["state"]["legs"]}
    except (json.JSONDecodeError, KeyError):
        return False
    return legs.get("ice") == "filled" and legs.get("oto.1") == "armed" and legs.get("br.sl") == "armed"

