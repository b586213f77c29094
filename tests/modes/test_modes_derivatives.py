"""Perpetuals in a backtest, end to end (hand-made data through a real DuckDB store).

The data: BTC/USDT:USDT on binanceusdm, a one-level book 49,999.9 / 50,000.0, marks, one
funding settlement at 08:00 UTC (rate 0.0001 at mark 50,000) and a crash of book and mark
at 08:00:10 (mark 45,100). The strategy buys 1 BTC at market at 10x isolated.

Hand-computed: fill at 50,000.0, taker fee 5 bps = 25 USDT; isolated margin 5,000; funding
paid 1 x 50,000 x 0.0001 = 5 USDT, taken from the isolated margin (4,995); liquidation
price (4,995 - 50,000) / (0.004 - 1) = 45,185.7..., so the 45,100 mark liquidates at the
bankruptcy price 50,000 - 4,995 = 45,005.0: realized -4,995. Wallet: 10,000 - 25 - 5 -
4,995 = 4,975 USDT.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from engine.config import RunConfig
from engine.types import EVENT_DTYPE, EventKind, load_instruments
from modes.backtest import run_backtest

PERP = "binanceusdm:BTC/USDT:USDT"
T0 = 1_704_095_990_000_000_000  # 2024-01-01T07:59:50Z, 10 s before a funding time
S = 1_000_000_000
STRATEGY = str(Path(__file__).resolve().parents[2] / "examples" / "perp_long.py") + ":PerpLong"


def _rows(inst) -> np.ndarray:
    rows = []

    def add(t, kind, side=0, price="0", qty="0"):
        rows.append((T0 + t, T0 + t, 0, kind, side, inst.price_to_ticks(price), inst.qty_to_lots(qty), 0))

    def book(t, bid, ask):
        add(t, EventKind.SNAPSHOT_BEGIN)
        add(t, EventKind.BOOK_DELTA, 1, bid, "10")
        add(t, EventKind.BOOK_DELTA, -1, ask, "10")
        add(t, EventKind.SNAPSHOT_END)

    book(0, "49999.9", "50000.0")
    add(0, EventKind.MARK_PRICE, 0, "50000")
    add(5 * S, EventKind.MARK_PRICE, 0, "50000")
    # funding at 08:00:00: rate 0.0001 = 10^8 units of 1e-12 (side +1); mark in qty as ticks
    rows.append((T0 + 10 * S, T0 + 10 * S, 0, EventKind.FUNDING_RATE, 1, 100_000_000,
                 inst.price_to_ticks("50000"), 0))
    book(20 * S, "44999.9", "45000.0")
    add(20 * S, EventKind.MARK_PRICE, 0, "45100")
    add(30 * S, EventKind.TRADE, -1, "45000.0", "0.001")
    out = np.array(rows, dtype=EVENT_DTYPE)
    return out


@pytest.fixture(scope="module")
def perp_store(tmp_path_factory):
    from replay.schema import StoredInstrument
    from replay.stores import open_store

    inst = load_instruments()[PERP]
    rows = _rows(inst)
    spec = f"duckdb:{tmp_path_factory.mktemp('perp') / 'perp.duckdb'}"
    with open_store(spec, create=True) as store, store.begin_import({PERP: StoredInstrument.of(inst)},
                                                                      expected_rows=len(rows)) as tx:
        tx.append(PERP, rows)
    return spec


def _venue(**extra):
    return {"binanceusdm": {"balances": {"USDT": "10000"}, "leverage": 10, "margin_mode": "isolated",
                            "maker_fee_bps": "2", "taker_fee_bps": "5", **extra}}


def test_funding_then_liquidation_in_a_crash(perp_store, tmp_path):
    out = run_backtest(RunConfig(strategy=STRATEGY, data=perp_store, venues=_venue()), tmp_path / "run")
    summary = json.loads((out / "summary.json").read_text())["run"]
    fills = pq.read_table(out / "fills.parquet").to_pylist()
    assert [(f["client_id"], f["side"], f["price"], f["qty"], f["fee"]) for f in fills] == [
        ("tp-1", "buy", "50000.0", "1.000", "25.0000"),
        ("liquidation-1", "sell", "45005.0", "1.000", "0"),
    ]
    orders = {o["client_id"]: o for o in pq.read_table(out / "orders.parquet").to_pylist()}
    assert orders["liquidation-1"]["reason"] == "liquidation"
    deriv = summary["derivatives"][PERP]
    assert Decimal(deriv["funding"]) == Decimal("-5") and deriv["funding_payments"] == 1
    assert deriv["liquidations"] == 1 and Decimal(deriv["position"]) == 0
    assert Decimal(deriv["realized"]) == Decimal("-4995")
    assert Decimal(summary["balances"]["binanceusdm:USDT"]) == Decimal("4975")
    by_asset = summary["pnl"]["by_asset"]  # each asset's own figures beside the quote-unit totals
    assert list(by_asset) == ["USDT"] and Decimal(by_asset["USDT"]["realized"]) == Decimal("-4995")
    assert Decimal(by_asset["USDT"]["fees"]) == Decimal("25") == Decimal(summary["pnl"]["fees"])
    liqs = pq.read_table(out / "liquidations.parquet").to_pylist()
    assert [(x["price"], x["mark"], x["reason"]) for x in liqs] == [("45005.0", "45100.0", "liquidation")]
    funding = pq.read_table(out / "funding.parquet").to_pylist()
    assert [(Decimal(x["rate"]), Decimal(x["amount"])) for x in funding] == [(Decimal("0.0001"), Decimal(-5))]
    margin = pq.read_table(out / "margin.parquet").to_pylist()
    held = [m for m in margin if m["position"] != "0.000"]
    # while held at mark 50,000: liquidation price 45,185.7.. (after funding) or 45,180.7.. (before)
    assert held and all(45180 < m["liquidation_price"] < 45186 for m in held)
    assert all(m["liquidation_distance_bps"] > 0 for m in held)
    audit = [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines()]
    assert any(r.get("type") == "funding" and r.get("amount") for r in audit)
    _reconciles(out)
    # the report's contract section: funding and fees per contract, the margin plot, the marker
    html = (out / "report.html").read_text()
    section = html[html.index('id="derivatives"'):html.index('id="config"')]
    assert "<svg" in section and "45005.0" in section and "liquidation" in section
    assert "-4995" in section and "25.0000" in section and ">-5" in section
    # the report's net PnL counts the funding paid: realized -4,995 - fees 25 + funding -5 =
    # -5,025 = the equity change (10,000 -> 4,975); no revaluation (nothing held at the start)
    pnl = json.loads((out / "summary.json").read_text())["pnl"]
    assert (Decimal(pnl["funding"]), Decimal(pnl["net"]), Decimal(pnl["equity_change"])) == (-5, -5025, -5025)
    assert Decimal(pnl["inventory_revaluation"]) == 0 and Decimal(pnl["equity_start"]) == 10000
    assert "+ Funding received (contracts)" in html


def test_margin_refusal_in_a_backtest(perp_store, tmp_path):
    # 2.01 BTC x 50,000 / 10 = 10,050 initial margin on a 10,000 wallet
    out = run_backtest(RunConfig(strategy=STRATEGY, data=perp_store, venues=_venue(),
                                 params={"qty": Decimal("2.01")}), tmp_path / "run", write_html=False)
    orders = pq.read_table(out / "orders.parquet").to_pylist()
    assert [(o["status"], o["reason"]) for o in orders] == [("rejected", "insufficient_margin")]
    out = run_backtest(RunConfig(strategy=STRATEGY, data=perp_store, venues=_venue(),
                                 params={"qty": Decimal("2")}, risk={"max_leverage": 5}), tmp_path / "run2",
                       write_html=False)
    orders = pq.read_table(out / "orders.parquet").to_pylist()
    assert orders[0]["reason"] == "max_leverage"  # 100,000 notional on 10,000: 10x > 5x


def test_library_scenario_liquidates_a_leveraged_perp_in_a_flash_crash(tmp_path, request):
    """scenarios/library/perp-long-crash-2021-05-19.toml on examples/perp_long.toml (20x
    isolated long on synthetic marks): the crash liquidates it at the bankruptcy price."""
    from modes.cli import main

    root = request.config.rootpath
    code = main(["stress", "--strategies", str(root / "examples" / "perp_long.toml"), "--scenarios",
                 str(root / "scenarios" / "library" / "perp-long-crash-2021-05-19.toml"), "--jobs", "1",
                 "--no-report", "--out", str(tmp_path)])
    assert code == 3  # an invariant broke: no_liquidation
    cell = tmp_path / "cells" / "perp_long" / "perp-long-crash-2021-05-19"
    results = {r["name"]: r["status"] for r in json.loads((cell / "stress.json").read_text())["invariants"]}
    assert results["no_liquidation"] == "fail" and results["ledger_reconciles"] == "pass"
    (liq,) = pq.read_table(cell / "liquidations.parquet").to_pylist()
    fills = pq.read_table(cell / "fills.parquet").to_pylist()
    entry = [f for f in fills if f["client_id"] != "liquidation-1"]
    qty = sum(Decimal(f["qty"]) for f in entry)
    cost = sum(Decimal(f["price"]) * Decimal(f["qty"]) for f in entry)
    assert liq["qty"] == f"{qty}"
    # isolated 20x: margin = cost / 20; bankruptcy = (cost - margin) / qty = 0.95 cost / qty,
    # rounded up to the 0.1 tick (in the long's favour)
    bankrupt = (Decimal("0.95") * cost / qty / Decimal("0.1")).to_integral_value(rounding="ROUND_CEILING") / 10
    assert Decimal(liq["price"]) == bankrupt
    # Binance's LP (tier 1: 0.4 %, cum 0): (margin - cost) / (qty x (0.004 - 1)); the mark was at or below it
    lp = (cost / 20 - cost) / (qty * (Decimal("0.004") - 1))
    assert Decimal(liq["mark"]) <= lp < Decimal(entry[0]["price"])
    summary = json.loads((cell / "summary.json").read_text())["run"]
    assert Decimal(summary["derivatives"][PERP]["position"]) == 0


def test_shipped_coinm_capture_imports_and_backtests(tmp_path, capsys, request):
    """The real COIN-M capture (no mark prices, no funding) imports onto the shipped
    binancecoinm:BTC/USD:BTC (inverse, 100 USD contracts) and backtests: the mark is the
    mid (warned), fees and PnL are in BTC."""
    from modes.cli import main

    capture = request.config.rootpath / "tests" / "data" / "binance-ws" / "cm_btcusd_perp_20240808.gz"
    spec = f"duckdb:{tmp_path / 'cm.duckdb'}"
    assert main(["data", "import", "--format", "binance-ws", str(capture), "--to", spec, "--correct-skew"]) == 0
    out = tmp_path / "run"
    assert main(["backtest", "--strategy", STRATEGY, "--data", spec, "--param", "qty=10", "--out", str(out),
                 "--no-report"]) == 0
    err = capsys.readouterr().err
    assert "binancecoinm:BTC/USD:BTC: no mark prices in the data: the mark is the mid" in err
    summary = json.loads((out / "summary.json").read_text())["run"]
    assert summary["instruments"] == ["binancecoinm:BTC/USD:BTC"]
    deriv = summary["derivatives"]["binancecoinm:BTC/USD:BTC"]
    assert deriv["asset"] == "BTC" and Decimal(deriv["position"]) == 10
    assert deriv["realized"] == "0"  # plain text, never "0E-8" (the report's Contracts table shows it)
    fills = pq.read_table(out / "fills.parquet").to_pylist()
    # taker 5 bps of 10 x 100 USD / price, charged in BTC at 1e-8
    fee = sum(Decimal(f["fee_charged"]) for f in fills)
    want = sum(Decimal(f["qty"]) * 100 / Decimal(f["price"]) * Decimal("0.0005") for f in fills)
    assert abs(fee - want) <= Decimal("1e-8") * len(fills) and fee == Decimal(deriv["fees"])
    assert Decimal(summary["balances"]["binancecoinm:BTC"]) == Decimal("10") - fee
    margin = pq.read_table(out / "margin.parquet").to_pylist()
    assert margin and all(m["asset"] == "BTC" for m in margin)
    # the fee column is in the quote, the coin amount valued at the fill's price (~5 bps of
    # 1,000 USD = 0.5 USD): the report's fee figures read it
    assert {(f["fee_asset"], f["fee_charged_asset"]) for f in fills} == {("USD", "BTC")}
    assert all(Decimal(f["fee"]) == Decimal(f["fee_charged"]) * Decimal(f["price"]) for f in fills)
    fee_usd = sum(Decimal(f["fee"]) for f in fills)
    assert Decimal(summary["pnl"]["fees"]) == fee_usd and abs(fee_usd - Decimal("0.5")) < Decimal("0.0001")
    _reconciles(out)  # an open inverse position, fees in BTC
    # the report sees 10 contracts of 100 USD as 1,000 USD of notional (not 10 x the price)
    from reports.rundir import load_run

    run = load_run(out)
    assert abs(float((run.fills.price * run.fills.qty).sum()) - 1000.0) < 1e-6
    # the report's net PnL is in USD: the BTC fees count at their fill's price, never as
    # 0.00000809 "USD"; what the 10 BTC deposit did is the revaluation: 10 x the mark's move,
    # less the paid fee's move after it left the wallet
    assert main(["report", str(out)]) == 0
    pnl, run_pnl = json.loads((out / "summary.json").read_text())["pnl"], summary["pnl"]
    assert Decimal(pnl["net"]) == (Decimal(run_pnl["realized"]) + Decimal(run_pnl["unrealized"])
                                   - Decimal(run_pnl["fees"]))
    mark = Decimal(deriv["mark"])
    fee_move = sum(Decimal(f["fee_charged"]) * (mark - Decimal(f["price"])) for f in fills)
    assert Decimal(pnl["inventory_revaluation"]) == 10 * (mark - Decimal(pnl["equity_start"]) / 10) - fee_move


def _reconciles(run_dir):
    """The stress invariant rebuilds the settle balances from the fills and funding."""
    from scenarios.invariants import LedgerReconciles, RunRecords

    result = LedgerReconciles().check(RunRecords(run_dir))
    assert result.status == "pass", result.violations


def test_compiled_strategies_refuse_contracts(tmp_path, capsys, request):
    from modes.cli import main

    strategy = str(request.config.rootpath / "examples" / "compiled_market_maker.py") + ":CompiledTouchQuoter"
    code = main(["backtest", "--strategy", strategy, "--data", "synthetic:1:10s", "--instrument", PERP,
                 "--out", str(tmp_path / "run"), "--no-report"])
    assert code == 2
    assert "compiled strategies do not support contracts" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_contract_rows_of_a_spot_instrument_are_refused(tmp_path):
    from engine.errors import DataError
    from replay.schema import StoredInstrument
    from replay.stores import open_store

    spot = load_instruments()["binance:BTC/USDT"]
    rows = np.zeros(2, dtype=EVENT_DTYPE)
    rows["exch_ts"] = rows["local_ts"] = [T0, T0 + S]
    rows["kind"] = [EventKind.TRADE, EventKind.MARK_PRICE]
    rows["side"], rows["price"], rows["qty"] = [1, 0], [5_000_000, 5_000_000], [100, 0]
    spec = f"duckdb:{tmp_path / 's.duckdb'}"
    with open_store(spec, create=True) as store, store.begin_import(
            {spot.id: StoredInstrument.of(spot)}, expected_rows=2) as tx:
        tx.append(spot.id, rows)
    with pytest.raises(DataError, match="MARK_PRICE rows but the instrument is spot"):
        run_backtest(RunConfig(strategy=STRATEGY, data=spec), tmp_path / "run", write_html=False)


def test_basis_carry_example_receives_funding_on_the_short(tmp_path, request):
    """examples/basis_carry.toml: spot long + perpetual short over the 08:00 funding; the
    short receives |position| x mark x rate, exactly, in USDT."""
    from modes.cli import main

    out = tmp_path / "carry"
    assert main(["backtest", "--config", str(request.config.rootpath / "examples" / "basis_carry.toml"),
                 "--out", str(out), "--no-report"]) == 0
    summary = json.loads((out / "summary.json").read_text())["run"]
    assert summary["positions"] == {"binance:BTC/USDT": "0.50000", PERP: "-0.500"}
    (pay,) = pq.read_table(out / "funding.parquet").to_pylist()
    assert pay["exch_ts"] == 1_704_096_000_000_000_000  # 2024-01-01T08:00:00Z
    rate, mark = Decimal(pay["rate"]), Decimal(pay["mark"])
    assert rate > 0 and Decimal(pay["amount"]) == Decimal("0.5") * mark * rate
    assert Decimal(summary["derivatives"][PERP]["funding"]) == Decimal(pay["amount"])
    _reconciles(out)


DATED = "binanceusdm:BTC/USDT:USDT-251226"
EXPIRY = 1_766_736_000_000_000_000  # 2025-12-26 08:00 UTC


def _store(tmp_path, inst_id: str, rows: list[tuple]) -> str:
    from replay.schema import StoredInstrument
    from replay.stores import open_store

    inst = load_instruments()[inst_id]
    data = np.array(rows, dtype=EVENT_DTYPE)
    spec = f"duckdb:{tmp_path / 'store.duckdb'}"
    with open_store(spec, create=True) as store, store.begin_import({inst_id: StoredInstrument.of(inst)},
                                                                      expected_rows=len(data)) as tx:
        tx.append(inst_id, data)
    return spec


def _market(inst_id: str, t0: int, marks: list[tuple[int, str]], end_s: int) -> list[tuple]:
    """A one-level book 49,999.9 / 50,000.0 at t0, MARK_PRICE rows at (seconds, price), a
    trade at end_s (the data's end)."""
    inst = load_instruments()[inst_id]
    rows = []

    def add(t, kind, side=0, price="0", qty="0"):
        rows.append((t0 + t, t0 + t, 0, kind, side, inst.price_to_ticks(price), inst.qty_to_lots(qty), 0))

    add(0, EventKind.SNAPSHOT_BEGIN)
    add(0, EventKind.BOOK_DELTA, 1, "49999.9", "10")
    add(0, EventKind.BOOK_DELTA, -1, "50000.0", "10")
    add(0, EventKind.SNAPSHOT_END)
    for s, price in marks:
        add(s * S, EventKind.MARK_PRICE, 0, price)
    add(end_s * S, EventKind.TRADE, -1, "49999.9", "0.001")
    return sorted(rows, key=lambda r: r[0])


def _report(out) -> dict:
    from reports import write_report

    write_report(out)
    return json.loads((out / "summary.json").read_text())


def test_equity_starts_at_the_deposit_when_the_first_mark_comes_after_the_first_fill(tmp_path):
    """The first mark comes at 5 s; examples/perp_long.py buys 1 BTC at its first timer (1 s)
    at 50,000.0 (fee 25 USDT). Nothing is held at the start and the wallet is in the quote,
    so the equity starts at the 10,000 USDT deposit (a contract run used to wait for the
    first mark and start after the first fee: 9,975, with a spurious revaluation of 25).
    End: mark 50,000, unrealized 0: equity 9,975; net PnL -25 = the equity change, no
    inventory revaluation."""
    spec = _store(tmp_path, PERP, _market(PERP, T0, [(5, "50000"), (10, "50000")], 30))
    out = run_backtest(RunConfig(strategy=STRATEGY, data=spec, venues=_venue()), tmp_path / "run", write_html=False)
    fills = pq.read_table(out / "fills.parquet").to_pylist()
    assert [(f["price"], f["fee"]) for f in fills] == [("50000.0", "25.0000")]
    assert fills[0]["ts"] < T0 + 5 * S  # the fill came before the first mark
    summary = _report(out)
    assert (summary["run"]["pnl"]["equity_start"], summary["run"]["pnl"]["equity_end"]) == ("10000", "9975.0000")
    pnl = summary["pnl"]
    assert (Decimal(pnl["equity_start"]), Decimal(pnl["net"]), Decimal(pnl["equity_change"])) == (10000, -25, -25)
    assert Decimal(pnl["inventory_revaluation"]) == 0
    equity = pq.read_table(out / "equity.parquet").to_pylist()
    assert (equity[0]["ts"], Decimal(equity[0]["equity"])) == (T0, 10000)


def test_a_delivery_is_counted_as_a_delivery_not_a_liquidation_nor_a_trade(tmp_path):
    """BTCUSDT_251226 over its last minute: marks 50,000 from expiry - 60 s and 50,100 from
    expiry - 30 s, so the delivery price (mean of the mark at each second of the window,
    seconds before the first mark left out) is (30 x 50,000 + 30 x 50,100) / 60 = 50,050.0.
    1 BTC bought at 50,000.0 (fee 25); delivered at 50,050.0: realized 50, USDT 10,000 - 25
    + 50 = 10,025. The delivery is a `delivery-1` fill with liquidity "delivery": the report
    counts 1 fill (notional 50,000, taker 1), 1 delivery, 0 liquidations."""
    t0 = EXPIRY - 60 * S
    marks = [(s, "50000" if s < 30 else "50100") for s in range(0, 60)]
    spec = _store(tmp_path, DATED, _market(DATED, t0, marks, 90))
    out = run_backtest(RunConfig(strategy=STRATEGY, data=spec, instruments=[DATED], venues=_venue()),
                       tmp_path / "run", write_html=False)
    fills = pq.read_table(out / "fills.parquet").to_pylist()
    assert [(f["client_id"], f["side"], f["price"], f["fee"], f["liquidity"]) for f in fills] == [
        ("tp-1", "buy", "50000.0", "25.0000", "taker"), ("delivery-1", "sell", "50050.0", "0", "delivery")]
    summary = _report(out)
    run = summary["run"]
    assert Decimal(run["balances"]["binanceusdm:USDT"]) == Decimal("10025")
    deriv = run["derivatives"][DATED]
    assert (deriv["liquidations"], deriv["deliveries"], Decimal(deriv["realized"])) == (0, 1, 50)
    head = summary["headline"]
    assert (head["fills"], head["deliveries"], head["orders"], head["notional"]) == (1, 1, 1, 50000.0)
    assert head["maker_share"] == 0.0 and summary["fills"]["count"] == 1
    audit = [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines()]
    assert [a["event"] for a in audit if a["type"] == "response" and a.get("client_id") == "delivery-1"] == ["delivery"]
    from modes.report_cmd import headline_text

    assert "fill ratio 100.0 %  deliveries 1\n" in headline_text(head)
    html = (out / "report.html").read_text()
    assert "1 deliveries (not trades)" in html
    # a contract's inventory is in contracts, not base units (an inverse BTCUSD contract is 100 USD)
    assert "a perpetual's or future's in contracts, as its orders" in html.replace("&#39;", "'")
    assert _no_liquidation(out) == "pass"  # a delivery is no liquidation for the stress invariant


BUY_EVERY_20S = '''
from decimal import Decimal
from engine import Strategy


class BuyEvery20s(Strategy):
    """A 0.1 BTC market buy every 20 s."""

    def on_start(self, ctx):
        ctx.schedule(every_ns=20_000_000_000)

    def on_timer(self, ctx, ts):
        if ctx.book(ctx.instruments[0]).mid is not None:
            ctx.submit(ctx.instruments[0], "buy", Decimal("0.1"), type="market")
'''


def test_a_delivered_future_takes_no_more_orders(tmp_path):
    """BTCUSDT_251226 from expiry - 50 s to expiry + 50 s, a 0.1 BTC buy every 20 s from
    the start (at -30, -10, +10 and +30 s). The two buys before expiry fill at
    50,000.0; the delivery (mark 50,000 over the window) closes 0.2 BTC at 50,000.0;
    every later order is refused `market_closed`: the contract is delivered, no longer
    traded (it used to fill, leaving a position in a delivered contract that was never
    delivered). USDT: 10,000 - 2 x 2.5 fees = 9,995, position 0."""
    strategy = tmp_path / "buyer.py"
    strategy.write_text(BUY_EVERY_20S)
    t0 = EXPIRY - 50 * S
    spec = _store(tmp_path, DATED, _market(DATED, t0, [(s, "50000") for s in range(0, 100, 5)], 100))
    out = run_backtest(RunConfig(strategy=f"{strategy}:BuyEvery20s", data=spec, instruments=[DATED], venues=_venue()),
                       tmp_path / "run", write_html=False)
    fills = pq.read_table(out / "fills.parquet").to_pylist()
    assert [(f["client_id"], f["side"], f["price"], f["qty"]) for f in fills] == [
        ("tp-1", "buy", "50000.0", "0.100"), ("tp-2", "buy", "50000.0", "0.100"),
        ("delivery-1", "sell", "50000.0", "0.200")]
    orders = pq.read_table(out / "orders.parquet").to_pylist()
    late = [(o["status"], o["reason"]) for o in orders if o["created_ts"] >= EXPIRY and o["client_id"].startswith("tp-")]
    assert late == [("rejected", "market_closed")] * 2
    run = json.loads((out / "summary.json").read_text())["run"]
    assert Decimal(run["balances"]["binanceusdm:USDT"]) == Decimal("9995")
    assert Decimal(run["derivatives"][DATED]["position"]) == 0


def _no_liquidation(run_dir) -> str:
    from scenarios.invariants import NoLiquidation, RunRecords

    return NoLiquidation().check(RunRecords(run_dir)).status


AMENDER = '''
from decimal import Decimal
from engine import Strategy


class Amender(Strategy):
    """A resting limit buy of 1 BTC at 49,000.0, then amends: to 3 BTC (refused: margin),
    then to 2 BTC (accepted)."""

    def on_start(self, ctx):
        self.inst = ctx.instruments[0]
        self.step = 0
        ctx.schedule(every_ns=1_000_000_000)

    def on_timer(self, ctx, ts):
        if ctx.book(self.inst).mid is None:
            return
        if self.step == 0:
            self.cid = ctx.submit(self.inst, "buy", Decimal("1"), price=Decimal("49000.0"))
        elif self.step == 1:
            ctx.amend(self.cid, qty=Decimal("3"))
        elif self.step == 2:
            ctx.amend(self.cid, qty=Decimal("2"))
        self.step += 1

    def on_order(self, ctx, update):
        if update.event in ("amended", "amend_rejected"):
            ctx.record("amend_answer", event=str(update.event), reason=update.reason, qty=str(update.qty))
'''


def test_an_amend_that_adds_exposure_is_margin_checked(perp_store, tmp_path):
    """10x isolated on 10,000 USDT: a resting buy of 1 BTC at 49,000.0 needs 4,900 of
    initial margin; amended to 3 BTC it would need 14,700 > 10,000: refused
    (`insufficient_margin`, Binance -2019), the order keeps its 1 BTC; amended to 2 BTC it
    needs 9,800: accepted."""
    path = tmp_path / "amender.py"
    path.write_text(AMENDER)
    out = run_backtest(RunConfig(strategy=f"{path}:Amender", data=perp_store, venues=_venue()), tmp_path / "run",
                       write_html=False)
    audit = [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines()]
    answers = [(a["event"], a["reason"], a["qty"]) for a in audit if a.get("action") == "amend_answer"]
    assert answers == [("amend_rejected", "insufficient_margin", "1.000"), ("amended", None, "2.000")]


_SIZES = '''
from decimal import Decimal
from engine import Strategy

class Sizes(Strategy):
    def __init__(self, qtys: str = "1"):
        self.qtys, self.sent = [Decimal(q) for q in qtys.split(",")], False
    def on_start(self, ctx):
        self.inst = ctx.instruments[0]
        ctx.schedule(every_ns=1_000_000_000)
    def on_timer(self, ctx, ts):
        book = ctx.book(self.inst)
        if not self.sent and book.mid is not None:
            for q in self.qtys:
                ctx.submit(self.inst, "buy", q, book.best_bid, tif="IOC")
            self.sent = True
'''


@pytest.mark.parametrize("inst, venue, balances, qtys", [
    ("binance:BTC/USDT", "binance", 'USDT = "100000"', "0.016,0.017"),
    ("binanceusdm:BTC/USDT:USDT", "binanceusdm", 'USDT = "100000"', "0.016,0.017"),
    ("binancecoinm:BTC/USD:BTC", "binancecoinm", 'BTC = "10"', "10,11"),
])
def test_max_order_notional_in_a_backtest_per_kind(tmp_path, capsys, inst, venue, balances, qtys):
    """[risk] max_order_notional = 1000 through the CLI on spot, USDⓈ-M and COIN-M: spot and
    linear value qty x price (~60,000: 0.016 BTC ~ 960 passes, 0.017 ~ 1,020 is refused);
    COIN-M values contracts x 100 USD whatever the price (10 = 1,000 passes, 11 = 1,100 is
    refused). The report's line explains the refusal in the same terms."""
    from modes.cli import main

    (tmp_path / "sizes.py").write_text(_SIZES)
    (tmp_path / "run.toml").write_text(
        f'[run]\nstrategy = "sizes.py:Sizes"\ndata = "synthetic:7:5s"\ninstruments = ["{inst}"]\nseed = 7\n'
        f'[run.params]\nqtys = "{qtys}"\n[venues.{venue}]\nbalances = {{ {balances} }}\n'
        "[risk]\nmax_order_notional = 1000\n")
    out = tmp_path / "run"
    assert main(["backtest", "--config", str(tmp_path / "run.toml"), "--out", str(out), "--no-report"]) == 0
    rows = pq.read_table(out / "orders.parquet").to_pylist()
    small, large = (Decimal(q) for q in qtys.split(","))
    assert [(Decimal(r["qty"]), r["status"] == "rejected", r["reason"]) for r in rows][1] == (
        large, True, "max_order_notional")
    assert Decimal(rows[0]["qty"]) == small and rows[0]["status"] != "rejected"
    assert "COIN-M: contracts x contract size) above [risk] max_order_notional" in capsys.readouterr().out


def test_max_position_on_coinm_counts_contracts(tmp_path):
    """[risk] max_position is in the order's qty unit: contracts on COIN-M (docs/risk.md
    "Units"). 10.5 on binancecoinm:BTC/USD:BTC: a buy of 10 contracts passes, 11 is
    refused max_position (flat start; the IOCs at the bid do not fill here either way, and
    open orders are not counted)."""
    from modes.cli import main

    (tmp_path / "sizes.py").write_text(_SIZES)
    (tmp_path / "run.toml").write_text(
        '[run]\nstrategy = "sizes.py:Sizes"\ndata = "synthetic:7:5s"\ninstruments = ["binancecoinm:BTC/USD:BTC"]\n'
        'seed = 7\n[run.params]\nqtys = "10,11"\n[venues.binancecoinm]\nbalances = { BTC = "10" }\n'
        "[risk]\nmax_position = 10.5\n")
    assert main(["backtest", "--config", str(tmp_path / "run.toml"), "--out", str(tmp_path / "run"), "--no-report"]) == 0
    rows = pq.read_table(tmp_path / "run" / "orders.parquet").to_pylist()
    assert [(Decimal(r["qty"]), r["reason"] == "max_position") for r in rows] == [(10, False), (11, True)]
