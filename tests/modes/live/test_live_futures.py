"""Testnet mode on Binance USDⓈ-M through unmodified ccxt.pro `binanceusdm`, against the
futures emulator over 127.0.0.1: examples/perp_long.py unchanged, the venue's leverage and
margin mode set from the venue table, positions reconciled, the venue's funding booked and
the venue's liquidation arriving as a fill, all with hand-computed money.

The market (tests/venues/emulator/futures_helpers.perp_market, a stepped clock the test
moves): bid 50,000.0 / ask 50,000.1, mark 50,000.0; funding 0.0001 at t = 100 s; mark
45,000.0 from t = 200 s. Taker fee 5 bps.
"""

from __future__ import annotations

import json
import threading
import time
from decimal import Decimal

import pyarrow.parquet as pq
import pytest
from emu_helpers import control
from futures_helpers import DATED, PERP, SECOND, T0, futures_emulator, step_to
from live_helpers import ROOT, wait_until

from modes.live import run_live
from modes.live.replay import replay_session


def _config(emu, instrument: str = PERP, qty: str = "1", balances: dict | None = None):
    from engine.config import resolve

    venue = instrument.split(":")[0]
    table = {"url": emu.url, "account": "alice", "api_key_env": "TP_TEST_KEY", "secret_env": "TP_TEST_SECRET",
             "balances": balances or {"USDT": "10000"}, "leverage": 10, "margin_mode": "isolated",
             "taker_fee_bps": 5, "maker_fee_bps": 2}
    return resolve({"run": {"strategy": "examples/perp_long.py:PerpLong", "data": "synthetic:1:1m",
                            "instruments": [instrument], "params": {"qty": qty}},
                    "venues": {venue: table}}, {}, base_dir=str(ROOT))


def _start(config, mode: str, out, duration_s: float, **kw) -> tuple[threading.Thread, dict]:
    """run_live on a thread (the test moves the emulator's clock meanwhile); the result
    dict gets "run" (the run directory) or "error" (whatever it raised)."""
    result: dict = {}

    def session():
        try:
            result["run"] = run_live(config, mode, out, duration_s=duration_s, health=False, write_html=False, **kw)
        except BaseException as exc:  # reported by the test
            result["error"] = exc

    thread = threading.Thread(target=session)
    thread.start()
    return thread, result


def _session(tmp_path, emu, config, held_lots: int, *, stream_lost: bool = False):
    """Run the testnet session on a thread while the test moves the emulator's clock:
    the buy, funding at 100 s, the crash at 200 s (the venue liquidates)."""
    out = tmp_path / "run"
    step_to(emu, 1)
    thread, result = _start(config, "testnet", out, 12, reconcile_s=0.5)
    try:
        def lots() -> int:
            return emu.call(lambda s: s.exchange.position_lots(s.exchange.accounts[0], 0))

        wait_until("the strategy's buy", lambda: lots() == held_lots or "error" in result)
        assert emu.call(lambda s: s.exchange.ledgers["alice"].derivatives.leverage(s.exchange.instruments[0])) == 10
        time.sleep(2.0)  # reconciliations (every 0.5 s: the futures weights allow ~35 a minute) see the position
        step_to(emu, 101)  # funding
        time.sleep(2.0)  # a reconciliation reads it
        if stream_lost:
            control(emu, "faults", {"kind": "user_drop", "events": 10})
        step_to(emu, 201)  # the mark falls: the venue liquidates
        wait_until("the liquidation", lambda: lots() == 0)
    finally:
        thread.join(60)
    assert "error" not in result, result.get("error")
    return result["run"]


@pytest.mark.parametrize("stream_lost", [False, True], ids=["stream", "stream-lost"])
def test_perp_long_on_the_futures_emulator_funding_and_a_venue_liquidation(tmp_path, alice_env, stream_lost):
    """1 BTC bought at 50,000.1 (fee 25.00005) with 10x isolated: the venue's funding at
    0.0001 and mark 50,000 costs 5.0 (booked from the venue's income); the mark at 45,000
    liquidates at the bankruptcy price 45,005.1 (= 50,000.1 - (5,000.01 - 5), rounded up):
    realized -4,995.0. The ledger's USDT: 10,000 - 25.00005 - 5 - 4,995 = 4,974.99995,
    equal to the venue's wallet; position 0 on both sides. With `stream_lost` the user
    stream drops the liquidation's events: the next reconciliation finds the venue's
    liquidation order (fetch_my_liquidations) and books it before comparing positions."""
    with futures_emulator(tmp_path / "emu", margin_mode="cross") as emu:
        run = _session(tmp_path, emu, _config(emu), 1000, stream_lost=stream_lost)
    summary = json.loads((run / "summary.json").read_text())["run"]
    assert summary["positions"][PERP] == "0"
    assert Decimal(summary["balances"]["binanceusdm:USDT"]) == Decimal("4974.99995")
    fills = pq.read_table(run / "fills.parquet").to_pylist()
    assert [(Decimal(f["price"]), Decimal(f["qty"]), Decimal(f["fee"])) for f in fills] == [
        (Decimal("50000.1"), Decimal(1), Decimal("25.00005")), (Decimal("45005.1"), Decimal(1), Decimal(0))]
    assert fills[1]["client_id"] == "liquidation-1"
    audit = [json.loads(line) for line in (run / "audit.jsonl").read_text().splitlines()]
    funding = [a for a in audit if a["type"] == "funding"]
    assert [(Decimal(a["amount"]), a["income_id"] != "", a["source"]) for a in funding] == [(-5, True, "venue")]
    booked = [a for a in audit if a["type"] == "response" and a.get("event") == "venue_liquidation"]
    assert [a["filled"] for a in booked] == [1000]  # booked once, whichever path came first
    streamed = [r for line in (run / "session.jsonl").read_text().splitlines()
                for r in json.loads(line).get("r", ()) if r["t"] == "liquidation"]
    if stream_lost:  # nothing on the stream: the reconciliation's query booked it
        assert streamed == [] and booked[0]["source"] == "query"
    else:  # the user stream brought it (a reconciliation in the same step may book it first)
        assert [(r["filled"], r["price"]) for r in streamed] == [(1000, 450051)]
    reconciles = [a for a in audit if a["type"] == "reconcile" and "positions" in a]
    assert reconciles and all(a["ok"] for a in reconciles)
    assert any(a["positions"] == {PERP: "1"} for a in reconciles)  # the venue's position seen, equal
    assert reconciles[-1]["positions"] == {}  # flat after the liquidation, on both sides
    replay = replay_session(run, tmp_path / "replay")
    assert replay.difference is None, replay.difference


def test_perp_long_on_coinm_books_inverse_money_in_the_coin(tmp_path, alice_env):
    """COIN-M (binancecoinm, /dapi): 10 BTCUSD contracts bought at 50,000.0 with 10x
    isolated on 1 BTC: fee 0.00001 BTC, funding -0.000002 BTC, liquidated at 45,458.7
    (bankruptcy price, rounded up): realized -0.00199799 BTC; the ledger's BTC ends at
    1 - 0.00001 - 0.000002 - 0.00199799 = 0.99799001, the venue's wallet
    (tests/venues/emulator/test_emulator_futures.py computes the same figures)."""
    from futures_helpers import COINM, perp_market

    source = perp_market(bid=499_999, ask=500_000)
    with futures_emulator(tmp_path / "emu", balance="1", instrument=COINM, source=source) as emu:
        run = _session(tmp_path, emu, _config(emu, COINM, "10", {"BTC": "1"}), 10)
    summary = json.loads((run / "summary.json").read_text())["run"]
    assert summary["positions"][COINM] == "0"
    assert Decimal(summary["balances"]["binancecoinm:BTC"]) == Decimal("0.99799001")
    fills = pq.read_table(run / "fills.parquet").to_pylist()
    # the fee as charged in BTC, and in the fee column valued in USD at the fill's price
    assert [(Decimal(f["price"]), Decimal(f["qty"]), Decimal(f["fee_charged"]), f["fee_charged_asset"],
             Decimal(f["fee"]), f["fee_asset"]) for f in fills] == [
        (Decimal("50000.0"), Decimal(10), Decimal("0.00001"), "BTC", Decimal("0.5"), "USD"),
        (Decimal("45458.7"), Decimal(10), Decimal(0), "BTC", Decimal(0), "USD")]
    assert Decimal(summary["pnl"]["fees"]) == Decimal("0.5")  # 0.00001 BTC x 50,000.0
    # realized -0.00199799 BTC on the liquidation fill at 45,458.7: -90.827... USD
    assert Decimal(summary["pnl"]["realized"]) == Decimal("-0.00199799") * Decimal("45458.7")
    assert Decimal(summary["pnl"]["by_asset"]["BTC"]["realized"]) == Decimal("-0.00199799")
    audit = [json.loads(line) for line in (run / "audit.jsonl").read_text().splitlines()]
    assert [Decimal(a["amount"]) for a in audit if a["type"] == "funding"] == [Decimal("-0.000002")]
    assert all(a["ok"] for a in audit if a["type"] == "reconcile")


def test_paper_perp_session_settles_funding_and_liquidates_as_the_backtest(tmp_path):
    """Paper mode on a perpetual: the futures emulator's mark-price stream (markPriceUpdate
    with `r` and `T`, over real ccxt.pro on 127.0.0.1) becomes MARK_PRICE and FUNDING_RATE
    rows; the simulated venue settles the funding and liquidates, no venue account involved.
    Same market and money as the testnet case: 1 BTC bought at 50,000.1 (taker fee
    25.00005) with 10x isolated (isolated margin 5,000.01); the emulator announces r =
    0.0001 due at T = 100 s, and the first message after T reveals the settlement: 1 x
    50,000.0 x 0.0001 = 5 USDT paid (isolated margin 4,995.01); the mark at 45,000
    liquidates at the bankruptcy price 50,000.1 - 4,995.01 = 45,005.09, rounded up to the
    tick in the trader's favour: 45,005.1, realized -4,995.0. USDT: 10,000 - 25.00005 - 5 -
    4,995 = 4,974.99995. A backtest of the session's recorded market books the same, and the
    recording replays identically."""
    from engine.config import resolve
    from modes.backtest import run_backtest

    out = tmp_path / "run"
    with futures_emulator(tmp_path / "emu") as emu:
        config = _config(emu)
        step_to(emu, 1)
        # the funding time as the emulator shows it (its clock shows market time shifted), ns
        settled_ns = emu.call(lambda s: s._ms(T0 + 100 * SECOND)) * 1_000_000
        thread, result = _start(config, "paper", out, 8)
        try:
            wait_until("the mark-price subscription", lambda: "error" in result or emu.call(
                lambda s: any(c.wants(0, "markPrice") for c in s.market_ws)), timeout_s=60)
            step_to(emu, 2)  # a mark message: r = 0.0001 due at T = 100 s
            time.sleep(2.5)  # the strategy's timer (every second) buys on the simulated venue
            step_to(emu, 101)  # the emulator settled at 100 s; its next message reveals it
            time.sleep(1.5)
            step_to(emu, 201)  # the mark falls to 45,000
        finally:
            thread.join(60)
    assert "error" not in result, result.get("error")
    run = result["run"]
    summary = json.loads((run / "summary.json").read_text())["run"]
    assert summary["mode"] == "paper"
    assert summary["positions"][PERP] == "0"
    assert Decimal(summary["balances"]["binanceusdm:USDT"]) == Decimal("4974.99995")
    fills = pq.read_table(run / "fills.parquet").to_pylist()
    assert [(f["client_id"].split("-")[0] if f["client_id"].startswith("liq") else "strategy",
             Decimal(f["price"]), Decimal(f["qty"]), Decimal(f["fee"])) for f in fills] == [
        ("strategy", Decimal("50000.1"), Decimal(1), Decimal("25.00005")),
        ("liquidation", Decimal("45005.1"), Decimal(1), Decimal(0))]
    funding = pq.read_table(run / "funding.parquet").to_pylist()
    assert [(f["exch_ts"], Decimal(f["rate"]), Decimal(f["mark"]), Decimal(f["amount"])) for f in funding] == [
        (settled_ns, Decimal("0.0001"), Decimal("50000.0"), Decimal(-5))]
    liqs = pq.read_table(run / "liquidations.parquet").to_pylist()
    assert [(q["side"], q["price"], q["reason"]) for q in liqs] == [("sell", "45005.1", "liquidation")]
    assert summary["derivatives"][PERP]["funding"] == "-5"
    # the recorded rows hold the marks and the settlement (what a backtest of them reads)
    from engine.types import EventKind
    from modes.live.recording import read_rows

    rows = read_rows(run)
    settlements = rows[rows["kind"] == EventKind.FUNDING_RATE]
    assert [(int(r["exch_ts"]), int(r["side"]), int(r["price"]), int(r["qty"])) for r in settlements] == [
        (settled_ns, 1, 100_000_000, 500_000)]
    replay = replay_session(run, tmp_path / "replay")
    assert replay.difference is None, replay.difference
    # a backtest of the emulator's own market (its rows in a DuckDB store), same strategy and
    # venue table: the same fee, funding and liquidation
    from futures_helpers import perp_market

    from engine.types import load_instruments
    from replay.schema import StoredInstrument
    from replay.stores import open_store

    spec = f"duckdb:{tmp_path / 'perp.duckdb'}"
    market = perp_market()[0]
    with open_store(spec, create=True) as store, store.begin_import(
            {PERP: StoredInstrument.of(load_instruments()[PERP])}, expected_rows=len(market)) as tx:
        tx.append(PERP, market)
    bt = resolve({"run": {"strategy": "examples/perp_long.py:PerpLong", "data": spec,
                          "instruments": [PERP], "params": {"qty": "1"}},
                  "venues": {"binanceusdm": {"balances": {"USDT": "10000"}, "leverage": 10,
                                             "margin_mode": "isolated", "taker_fee_bps": 5, "maker_fee_bps": 2}}},
                 {}, base_dir=str(ROOT))
    bt_summary = json.loads((run_backtest(bt, tmp_path / "bt", write_html=False) / "summary.json").read_text())["run"]
    assert bt_summary["balances"] == summary["balances"]
    assert {k: v for k, v in bt_summary["derivatives"][PERP].items() if k != "mark"} == \
        {k: v for k, v in summary["derivatives"][PERP].items() if k != "mark"}


def _buy_before_the_session(emu, qty: float = 1.0) -> None:
    """alice buys at market through ccxt before any session runs (a position left by hand
    or by an earlier session)."""
    import asyncio

    import ccxt.pro as ccxtpro

    async def buy():
        ex = ccxtpro.binanceusdm(emu.ccxt_config(0, timeout=5000))
        try:
            await ex.load_markets()
            await ex.create_order("BTC/USDT:USDT", "market", "buy", qty)
        finally:
            await ex.close()

    asyncio.run(asyncio.wait_for(buy(), 30))


def test_a_position_held_at_start_is_adopted_and_reconciles(tmp_path, alice_env):
    """1 BTC bought at 50,000.1 before the session (emulator account: isolated, 20x:
    isolated wallet 50,000.1 / 20 = 2,500.005; fee 25.00005). The testnet session (10x
    isolated, open_positions = "adopt" by default) adopts it at the start reconciliation:
    position 1 at entry 50,000.1 with isolated margin 2,500.005 (audited
    `position_adopted`), then examples/perp_long.py buys 1 more (fee 25.00005): both sides
    hold 2, every reconciliation agrees, the wallet is 10,000 - 2 x 25.00005 = 9,949.9999
    on both sides, and the recording replays identically."""
    out = tmp_path / "run"
    with futures_emulator(tmp_path / "emu") as emu:
        step_to(emu, 1)
        _buy_before_the_session(emu)
        config = _config(emu)
        thread, result = _start(config, "testnet", out, 6, reconcile_s=0.5)
        try:
            wait_until("the strategy's buy", lambda: "error" in result or emu.call(
                lambda s: s.exchange.position_lots(s.exchange.accounts[0], 0)) == 2000, timeout_s=60)
        finally:
            thread.join(60)
        venue_wallet = emu.call(lambda s: s.exchange.ledgers["alice"].balances[("binanceusdm", "USDT")])
    assert "error" not in result, result.get("error")
    run = result["run"]
    summary = json.loads((run / "summary.json").read_text())["run"]
    assert Decimal(summary["positions"][PERP]) == 2
    assert Decimal(summary["balances"]["binanceusdm:USDT"]) == venue_wallet == Decimal("9949.9999")
    audit = [json.loads(line) for line in (run / "audit.jsonl").read_text().splitlines()]
    adopted = [a for a in audit if a.get("action") == "position_adopted"]
    assert [(a["instrument"], Decimal(a["qty"]), Decimal(a["entry_price"]), Decimal(a["isolated_margin"]))
            for a in adopted] == [(PERP, 1, Decimal("50000.1"), Decimal("2500.005"))]
    reconciles = [a for a in audit if a["type"] == "reconcile" and "positions" in a]
    assert reconciles and all(a["ok"] for a in reconciles)
    assert reconciles[0]["at"] == "start" and {k: Decimal(v) for k, v in reconciles[0]["positions"].items()} == {PERP: 1}
    assert any({k: Decimal(v) for k, v in a["positions"].items()} == {PERP: 2} for a in reconciles)
    replay = replay_session(run, tmp_path / "replay")
    assert replay.difference is None, replay.difference


def test_a_position_held_at_start_is_refused_when_the_venue_table_says_so(tmp_path, alice_env):
    """open_positions = "refuse": the session stops at its start reconciliation with a
    one-line error naming the contract and the key, before any order (the venue still
    holds the 1 BTC and nothing else was sent)."""
    from modes.live.derivatives import OpenPositionRefused

    with futures_emulator(tmp_path / "emu") as emu:
        step_to(emu, 1)
        _buy_before_the_session(emu)
        config = _config(emu)
        config.venues["binanceusdm"]["open_positions"] = "refuse"
        with pytest.raises(OpenPositionRefused, match=r"BTC/USDT:USDT: 1 contracts at 50000.1 held .*open_positions = .refuse."):
            run_live(config, "testnet", tmp_path / "run", duration_s=6, health=False, write_html=False,
                     reconcile_s=0.5)
        assert emu.call(lambda s: s.exchange.position_lots(s.exchange.accounts[0], 0)) == 1000
        assert emu.call(lambda s: len(s.exchange.orders)) == 1


def test_an_order_the_venue_refuses_for_margin_is_told_on_the_console(tmp_path, alice_env, capsys):
    """10 BTC at 50,000.1 with 10x on a 10,000 USDT wallet needs 50,000.1 of initial margin:
    the venue refuses it (-2019, insufficient_margin). The session says so on the console
    as it happens (one line: the order, the reason, its meaning) and the command's end lines
    count it; before, the session ended with "fills 0" and nothing else."""
    from modes.cli import _headline

    with futures_emulator(tmp_path / "emu") as emu:
        step_to(emu, 1)
        run = run_live(_config(emu, qty="10"), "testnet", tmp_path / "run", duration_s=5, health=False,
                       write_html=False)
        assert emu.call(lambda s: s.exchange.position_lots(s.exchange.accounts[0], 0)) == 0
    orders = pq.read_table(run / "orders.parquet").to_pylist()
    assert [(o["status"], o["reason"]) for o in orders] == [("rejected", "insufficient_margin")]
    meaning = "the contract order's initial margin exceeds the available margin (Binance -2019)"
    told = [line for line in capsys.readouterr().err.splitlines() if "refused" in line]
    assert told == [f"tickparity: warning: order {orders[0]['client_id']} ({PERP}) refused: insufficient_margin: "
                    f"{meaning} (later insufficient_margin refusals are counted at the end)"]
    risk = json.loads((run / "summary.json").read_text())["run"]["risk"]  # run.risk, as a backtest's
    assert (risk["state"], risk["refusals"]) == ("active", {})  # a venue refusal is not a risk refusal
    line = f"orders refused: 1 (insufficient_margin 1: {meaning}) - reasons in orders.parquet and docs/errors.md"
    assert _headline(run).splitlines()[-1] == line
    from modes.cli import main

    assert main(["report", str(run)]) == 0  # `tickparity report RUN` ends the same way
    assert capsys.readouterr().out.splitlines()[-1] == line


def _delivered_session(tmp_path, instrument: str, qty: str, balances: dict, held_lots: int):
    """examples/perp_long.py in testnet mode on a quarterly (futures_helpers.dated_market):
    the strategy buys 40 minutes before the delivery; the test moves the emulator's clock
    past the delivery; the session runs on until its reconciliations have seen the venue
    flat. Returns (run directory, the venue's wallet after delivery, the emulator's
    delivery_settlement journal rows)."""
    from futures_helpers import EXPIRY, dated_market, step_to_ns

    from venues.emulator import read_journal

    with futures_emulator(tmp_path / "emu", instrument=instrument, source=dated_market(),
                          balance=next(iter(balances.values()))) as emu:
        step_to_ns(emu, EXPIRY - 2399 * SECOND)
        config = _config(emu, instrument, qty, balances)
        thread, result = _start(config, "testnet", tmp_path / "run", 10, reconcile_s=0.5)
        try:
            wait_until("the strategy's buy", lambda: "error" in result or emu.call(
                lambda s: s.exchange.position_lots(s.exchange.accounts[0], 0)) == held_lots, timeout_s=60)
            time.sleep(2.0)  # reconciliations see the position on both sides
            step_to_ns(emu, EXPIRY + SECOND)  # the venue delivers at EXPIRY
        finally:
            thread.join(60)
        settle = emu.call(lambda s: s.exchange.instruments[0].settle)
        venue = emu.call(lambda s: s.exchange.instruments[0].venue)
        wallet = emu.call(lambda s: s.exchange.ledgers["alice"].balances[(venue, settle)])
        lots_after = emu.call(lambda s: s.exchange.position_lots(s.exchange.accounts[0], 0))
    assert "error" not in result, result.get("error")
    assert lots_after == 0
    journal = [r for r in read_journal(tmp_path / "emu" / "journal.jsonl") if r["event"] == "delivery_settlement"]
    return result["run"], wallet, journal


def _backtest_of_the_dated_market(tmp_path, instrument: str, qty: str, balances: dict) -> dict:
    """The same strategy and venue table over the emulator's own market rows."""
    from futures_helpers import dated_market, dated_store

    from engine.config import resolve
    from modes.backtest import run_backtest

    spec = dated_store(tmp_path / "dated.duckdb", instrument, dated_market()[0])
    venue = instrument.split(":")[0]
    bt = resolve({"run": {"strategy": "examples/perp_long.py:PerpLong", "data": spec,
                          "instruments": [instrument], "params": {"qty": qty}},
                  "venues": {venue: {"balances": balances, "leverage": 10, "margin_mode": "isolated",
                                     "taker_fee_bps": 5, "maker_fee_bps": 2}}},
                 {}, base_dir=str(ROOT))
    out = run_backtest(bt, tmp_path / "bt", write_html=False)
    return {"summary": json.loads((out / "summary.json").read_text())["run"],
            "fills": pq.read_table(out / "fills.parquet").to_pylist()}


def _delivery_checks(run, instrument: str, venue_amount: Decimal) -> list[dict]:
    """What every delivered session shows: the delivery booked once from the venue's
    settlement, audited, no reconciliation failing (the last one flat on both sides), and
    the recording replaying identically. Returns the fills."""
    audit = [json.loads(line) for line in (run / "audit.jsonl").read_text().splitlines()]
    booked = [a for a in audit if a["type"] == "response" and a.get("event") == "venue_delivery"]
    assert [(a["instrument"], Decimal(a["amount"]), Decimal(a["price"])) for a in booked] == [
        (instrument, venue_amount, Decimal("50050.0"))]
    assert [a["client_id"] for a in audit if a["type"] == "response" and a.get("event") == "delivery"] == ["delivery-1"]
    reconciles = [a for a in audit if a["type"] == "reconcile" and "positions" in a]
    assert reconciles and all(a["ok"] for a in reconciles), [a for a in reconciles if not a["ok"]]
    assert any(a["positions"] for a in reconciles)  # the position was seen, equal on both sides
    assert reconciles[-1]["positions"] == {}  # delivered: flat on both sides
    replay = replay_session(run, run.parent / "replay")
    assert replay.difference is None, replay.difference
    return pq.read_table(run / "fills.parquet").to_pylist()


def test_a_dated_future_held_through_delivery_books_the_venue_settlement(tmp_path, alice_env):
    """BTCUSDT_251226 (USDⓈ-M quarterly), 10x isolated on 10,000 USDT: 1 BTC bought at
    50,000.1 (fee 50,000.1 x 5 bps = 25.00005). The venue delivers at the mean of the mark
    over the last 30 minutes, (900 x 50,000.0 + 900 x 50,100.0) / 1,800 = 50,050.0: the
    long's settlement is 1 x (50,050.0 - 50,000.1) = 49.9 USDT (its DELIVERED_SETTELMENT
    income). The session learns it at its next reconciliation (the income and the venue's
    delivery price, GET /futures/data/delivery-price), books it as the backtest books a
    delivery (a `delivery-1` fill at 50,050.0, no fee, liquidity "delivery"), and every
    reconciliation agrees: USDT 10,000 - 25.00005 + 49.9 = 10,024.89995 in the ledger, the
    emulator's wallet and a backtest of the same market."""
    run, wallet, journal = _delivered_session(tmp_path, DATED, "1", {"USDT": "10000"}, 1000)
    assert [(r["side"], Decimal(r["price"]), Decimal(r["realized_pnl"])) for r in journal] == [
        ("SELL", Decimal("50050.0"), Decimal("49.9"))]
    summary = json.loads((run / "summary.json").read_text())["run"]
    assert summary["positions"][DATED] == "0"
    assert Decimal(summary["balances"]["binanceusdm:USDT"]) == wallet == Decimal("10024.89995")
    fills = _delivery_checks(run, DATED, Decimal("49.9"))
    assert [(f["client_id"] if f["client_id"].startswith("delivery") else "strategy", Decimal(f["price"]),
             Decimal(f["qty"]), Decimal(f["fee"]), f["liquidity"]) for f in fills] == [
        ("strategy", Decimal("50000.1"), Decimal(1), Decimal("25.00005"), "taker"),
        ("delivery-1", Decimal("50050.0"), Decimal(1), Decimal(0), "delivery")]
    bt = _backtest_of_the_dated_market(tmp_path, DATED, "1", {"USDT": "10000"})
    assert bt["summary"]["balances"] == summary["balances"]
    assert [(f["client_id"], f["price"], f["qty"], f["fee"], f["liquidity"]) for f in bt["fills"]][-1] == (
        "delivery-1", "50050.0", "1.000", "0", "delivery")


def test_a_coinm_quarterly_held_through_delivery_settles_in_the_coin(tmp_path, alice_env):
    """BTCUSD_251226 (COIN-M quarterly, 1 contract = 100 USD), 10x isolated on 1 BTC: 10
    contracts bought at 50,000.1 (fee 10 x 100 / 50,000.1 x 5 bps = 0.0000099998 ->
    0.00001 BTC at 1e-8). Delivered at 50,050.0 (as the linear case): inverse PnL =
    contracts x contract size x (1/entry - 1/delivery) = 10 x 100 x (1/50,000.1 - 1/50,050.0)
    = 1,000 x 49.9 / (50,000.1 x 50,050.0) = 0.0000199398... -> 0.00001994 BTC. BTC: 1 -
    0.00001 + 0.00001994 = 1.00000994 in the ledger, the emulator's wallet (its
    DELIVERED_SETTELMENT income) and a backtest of the same market."""
    from futures_helpers import COINM_DATED

    run, wallet, journal = _delivered_session(tmp_path, COINM_DATED, "10", {"BTC": "1"}, 10)
    assert [(r["side"], Decimal(r["price"]), Decimal(r["realized_pnl"])) for r in journal] == [
        ("SELL", Decimal("50050.0"), Decimal("0.00001994"))]
    summary = json.loads((run / "summary.json").read_text())["run"]
    assert summary["positions"][COINM_DATED] == "0"
    assert Decimal(summary["balances"]["binancecoinm:BTC"]) == wallet == Decimal("1.00000994")
    fills = _delivery_checks(run, COINM_DATED, Decimal("0.00001994"))
    # the fee as charged (BTC) and valued at the fill's price (USD, the report's fee column)
    assert [(Decimal(f["price"]), Decimal(f["qty"]), Decimal(f["fee_charged"]), Decimal(f["fee"]), f["liquidity"])
            for f in fills] == [
        (Decimal("50000.1"), Decimal(10), Decimal("0.00001"), Decimal("0.500001"), "taker"),
        (Decimal("50050.0"), Decimal(10), Decimal(0), Decimal(0), "delivery")]
    bt = _backtest_of_the_dated_market(tmp_path, COINM_DATED, "10", {"BTC": "1"})
    assert bt["summary"]["balances"] == summary["balances"]
    assert Decimal(bt["summary"]["pnl"]["by_asset"]["BTC"]["realized"]) == Decimal("0.00001994")


def test_paper_coinm_equity_starts_at_the_coin_wallet_valued_at_the_mid(tmp_path):
    """Paper mode on COIN-M (binancecoinm, 1 BTC wallet): the wallet is in the coin, so the
    session takes no equity sample before the book gives it a price; the first sample is
    1 BTC x the mid (49,999.9 + 50,000.0) / 2 = 49,999.95, never 0 (an unvalued wallet
    would show the whole deposit as a revaluation)."""
    from futures_helpers import COINM, perp_market

    source = perp_market(bid=499_999, ask=500_000)
    out = tmp_path / "run"
    with futures_emulator(tmp_path / "emu", balance="1", instrument=COINM, source=source) as emu:
        config = _config(emu, COINM, "10", {"BTC": "1"})
        step_to(emu, 1)
        thread, result = _start(config, "paper", out, 5)
        try:
            step_to(emu, 2)
            time.sleep(2.5)
            step_to(emu, 3)
        finally:
            thread.join(60)
    assert "error" not in result, result.get("error")
    equity = pq.read_table(result["run"] / "equity.parquet").to_pylist()
    assert equity and Decimal(str(equity[0]["equity"])) == Decimal("49999.95")
    summary = json.loads((result["run"] / "summary.json").read_text())["run"]
    assert Decimal(summary["pnl"]["equity_start"]) == Decimal("49999.95")

