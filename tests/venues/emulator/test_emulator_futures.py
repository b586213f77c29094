"""The emulator's Binance USDⓈ-M futures (`/fapi`) against unmodified ccxt.pro `binanceusdm`
over 127.0.0.1: markets, leverage, a market order, positions, funding, the mark-price
stream, the user stream and the venue's liquidation, with hand-computed money.

The market (futures_helpers.perp_market): bid 50,000.0 / ask 50,000.1, mark 50,000.0,
funding 0.0001 at t = 100 s, mark 45,000.0 from t = 200 s. Taker fee 5 bps.
"""

from __future__ import annotations

import asyncio
import sys
from decimal import Decimal
from pathlib import Path

import ccxt
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from futures_helpers import SYMBOL, futures_emulator, step_to  # noqa: E402

from venues.emulator import read_journal  # noqa: E402


async def _client(emu):
    import ccxt.pro as ccxtpro

    ex = ccxtpro.binanceusdm(emu.ccxt_config(0, timeout=5000))
    await ex.load_markets()
    return ex


def _info_d(row: dict, key: str) -> Decimal:
    return Decimal(str(row["info"][key]))


def test_a_leveraged_long_pays_funding_and_is_liquidated_by_the_venue(tmp_path):
    """1 BTC bought at 50,000.1 with 10x isolated leverage on a 10,000 USDT wallet:
    fee 50,000.1 x 5 bps = 25.00005; isolated margin 5,000.01; liquidation price
    (Binance USDⓈ-M, tier 1: MMR 0.4 %, cum 0) = (5,000.01 - 50,000.1) / (0.004 - 1)
    = 45,180.813... (45,180.8 shown at the tick). Funding at 0.0001 and mark 50,000:
    the long pays 5.0 (isolated margin 4,995.01). The mark at 45,000 is below the
    liquidation price: the venue closes at the bankruptcy price 50,000.1 - 4,995.01 =
    45,005.09, rounded up for a long to 45,005.1: realized -4,995.0, no fee. Wallet:
    10,000 - 25.00005 - 5 - 4,995 = 4,974.99995."""
    with futures_emulator(tmp_path / "emu") as emu:
        step_to(emu, 1)

        async def run():
            ex = await _client(emu)
            try:
                market = ex.market(SYMBOL)
                assert (market["type"], market["linear"], market["settle"]) == ("swap", True, "USDT")
                assert (await ex.set_leverage(10, SYMBOL))["leverage"] == 10
                # 3 BTC at 10x: 15,000 > 10,000 (-2019; on a local URL ccxt's generic class)
                with pytest.raises(ccxt.ExchangeError, match="-2019"):
                    await ex.create_order(SYMBOL, "market", "buy", 3)
                order = await ex.create_order(SYMBOL, "market", "buy", 1)
                assert order["status"] == "closed" and order["average"] == 50000.1
                trades = await ex.fetch_my_trades(SYMBOL)
                assert [Decimal(str(t["fee"]["cost"])) for t in trades] == [Decimal("25.00005")]
                (pos,) = await ex.fetch_positions([SYMBOL])
                assert (pos["side"], pos["contracts"], pos["entryPrice"]) == ("long", 1.0, 50000.1)
                assert (pos["marginMode"], pos["leverage"]) == ("isolated", 10.0)
                assert _info_d(pos, "liquidationPrice") == Decimal("45180.8")
                assert _info_d(pos, "isolatedWallet") == Decimal("5000.01")
                bal = await ex.fetch_balance()
                wallet = Decimal(bal["info"]["assets"][0]["walletBalance"])
                assert wallet == Decimal("9974.99995")

                watch = asyncio.ensure_future(ex.watch_orders())
                mark = asyncio.ensure_future(ex.watch_mark_price(SYMBOL))
                await asyncio.sleep(0.3)
                step_to(emu, 101)  # the funding settlement at t = 100 s
                tick = await asyncio.wait_for(mark, 5)
                assert tick["markPrice"] == 50000.0
                funding = await ex.fetch_funding_history(SYMBOL)
                assert [Decimal(str(f["amount"])) for f in funding] == [Decimal("-5")]
                (pos,) = await ex.fetch_positions([SYMBOL])
                assert _info_d(pos, "isolatedWallet") == Decimal("4995.01")

                step_to(emu, 201)  # mark 45,000 at t = 200.5 s: liquidation
                orders = await asyncio.wait_for(watch, 5)
                liq = [o for o in orders if str(o["clientOrderId"]).startswith("autoclose-")]
                if not liq:  # the NEW and the fill may come in two messages
                    orders = await asyncio.wait_for(ex.watch_orders(), 5)
                    liq = [o for o in orders if str(o["clientOrderId"]).startswith("autoclose-")]
                assert liq[-1]["type"] == "liquidation" and liq[-1]["side"] == "sell"
                trades = await ex.fetch_my_trades(SYMBOL)
                last = trades[-1]["info"]
                assert (Decimal(last["price"]), Decimal(last["qty"]), Decimal(last["realizedPnl"]),
                        Decimal(last["commission"])) == (Decimal("45005.1"), Decimal(1), Decimal("-4995"), 0)
                assert await ex.fetch_positions([SYMBOL]) == []  # v3: flat symbols are not listed
                bal = await ex.fetch_balance()
                assert Decimal(bal["info"]["assets"][0]["walletBalance"]) == Decimal("4974.99995")
                assert Decimal(str(bal["USDT"]["total"])) == Decimal("4974.99995")
            finally:
                await ex.close()

        asyncio.run(asyncio.wait_for(run(), 60))
    events = [e["event"] for e in read_journal(tmp_path / "emu" / "journal.jsonl")]
    assert "funding" in events and "liquidation" in events and "leverage" in events


def test_reduce_only_and_the_notional_minimum(tmp_path):
    """reduceOnly must reduce (-2022: ccxt's class for it on a local URL); an order under
    the 100 USDT notional minimum is refused (-4164) unless it is reduce-only."""
    with futures_emulator(tmp_path / "emu") as emu:
        step_to(emu, 1)

        async def run():
            ex = await _client(emu)
            try:
                with pytest.raises(ccxt.ExchangeError):
                    await ex.create_order(SYMBOL, "limit", "sell", 0.01, 51000, {"reduceOnly": True})
                with pytest.raises(ccxt.ExchangeError) as err:
                    await ex.create_order(SYMBOL, "limit", "buy", 0.001, 49000)
                assert "-4164" in str(err.value)
                await ex.create_order(SYMBOL, "market", "buy", 0.01)
                small = await ex.create_order(SYMBOL, "limit", "sell", 0.001, 51000, {"reduceOnly": True})
                assert small["status"] == "open" and small["reduceOnly"] is True
                await ex.cancel_order(small["id"], SYMBOL)
            finally:
                await ex.close()

        asyncio.run(asyncio.wait_for(run(), 60))


def test_coinm_inverse_long_funding_and_liquidation_in_the_coin(tmp_path):
    """COIN-M (/dapi) with ccxt.pro binancecoinm: 10 BTCUSD contracts (100 USD each) bought at
    50,000.0 with 10x isolated on a 1 BTC wallet. Fee 10 x 100 / 50,000 x 5 bps = 0.00001
    BTC; isolated margin 0.02 / 10 = 0.002 BTC; liquidation price (COIN-M, tier 1 MMR 0.4 %)
    1,000 x 1.004 / (0.002 + 0.02) = 45,636.36. Funding 0.0001 at 50,000: the long pays
    0.02 x 0.0001 = 0.000002 BTC. At the mark 45,000 the venue closes at the bankruptcy
    price 1,000 / (0.001998 + 0.02) = 45,458.678.., rounded up to 45,458.7: realized
    1,000 x (1/50,000 - 1/45,458.7) = -0.00199799 BTC. Wallet: 1 - 0.00001 - 0.000002 -
    0.00199799 = 0.99799001 BTC."""
    from futures_helpers import COINM, COINM_SYMBOL, perp_market

    source = perp_market(bid=499_999, ask=500_000)
    with futures_emulator(tmp_path / "emu", balance="1", instrument=COINM, source=source) as emu:
        step_to(emu, 1)

        async def run():
            import ccxt.pro as ccxtpro

            ex = ccxtpro.binancecoinm(emu.ccxt_config(0, timeout=5000))
            try:
                await ex.load_markets()
                market = ex.market(COINM_SYMBOL)
                assert (market["inverse"], market["settle"], market["contractSize"]) == (True, "BTC", 100)
                assert (await ex.set_leverage(10, COINM_SYMBOL))["leverage"] == 10
                order = await ex.create_order(COINM_SYMBOL, "market", "buy", 10)
                assert order["status"] == "closed" and order["average"] == 50000.0
                trades = await ex.fetch_my_trades(COINM_SYMBOL)
                assert [(t["fee"]["currency"], Decimal(str(t["fee"]["cost"]))) for t in trades] == [("BTC", Decimal("0.00001"))]
                (pos,) = await ex.fetch_positions([COINM_SYMBOL])
                assert (pos["side"], pos["contracts"]) == ("long", 10.0)
                assert _info_d(pos, "liquidationPrice") == Decimal("45636.4")
                assert _info_d(pos, "isolatedWallet") == Decimal("0.002")
                watch = asyncio.ensure_future(ex.watch_orders())
                await asyncio.sleep(0.3)
                step_to(emu, 101)
                funding = await ex.fetch_funding_history(COINM_SYMBOL)
                assert [Decimal(str(f["amount"])) for f in funding] == [Decimal("-0.000002")]
                step_to(emu, 201)
                orders = await asyncio.wait_for(watch, 5)
                if not any(str(o["clientOrderId"]).startswith("autoclose-") for o in orders):
                    orders = await asyncio.wait_for(ex.watch_orders(), 5)
                assert any(o["type"] == "liquidation" for o in orders)
                last = (await ex.fetch_my_trades(COINM_SYMBOL))[-1]["info"]
                assert (Decimal(last["price"]), Decimal(last["realizedPnl"])) == (Decimal("45458.7"), Decimal("-0.00199799"))
                liqs = await ex.fetch_my_liquidations(COINM_SYMBOL)
                assert [(x["contracts"], x["price"]) for x in liqs] == [(10.0, 45458.7)]
                bal = await ex.fetch_balance()
                wallet = next(a for a in bal["info"]["assets"] if a["asset"] == "BTC")["walletBalance"]
                assert Decimal(wallet) == Decimal("0.99799001")
            finally:
                await ex.close()

        asyncio.run(asyncio.wait_for(run(), 60))


from futures_helpers import DATED, EXPIRY  # noqa: E402


def _dated_market() -> list:
    from futures_helpers import dated_market

    return dated_market()


def test_a_dated_future_is_delivered_at_the_30_minute_mark_average(tmp_path):
    """BTCUSDT_251226 is listed with its deliveryDate; 1 BTC bought at 50,000.1 (fee
    25.00005). At delivery the delivery price is the mean of the mark at each second of the
    last 30 minutes: 900 s at 50,000.0 and 900 s at 50,100.0 = 50,050.0; the long is
    settled there: realized 49.9, wallet 10,000 - 25.00005 + 49.9 = 10,024.89995; the
    position is 0, the symbol shows DELIVERED and a new order is refused (-4108). A
    backtest of the same market (examples/perp_long.py) delivers at the same price."""
    from engine.config import resolve
    from modes.backtest import run_backtest

    symbol = "BTC/USDT:USDT-251226"
    with futures_emulator(tmp_path / "emu", instrument=DATED, source=_dated_market()) as emu:
        def go(seconds_before: int):
            def move(server):
                clock = server.exchange.clock
                clock.step_to(max(clock.now(), EXPIRY - seconds_before * 1_000_000_000))
                server.step()
            emu.call(move)

        go(2399)

        async def run():
            ex = await _client(emu)
            try:
                market = ex.market(symbol)
                assert (market["type"], market["expiry"]) == ("future", EXPIRY // 1_000_000)
                info = await ex.fapiPublicGetExchangeInfo()
                (row,) = [s for s in info["symbols"] if s["symbol"] == "BTCUSDT_251226"]
                assert (row["status"], row["deliveryDate"], row["contractType"]) == (
                    "TRADING", EXPIRY // 1_000_000, "CURRENT_QUARTER")
                order = await ex.create_order(symbol, "market", "buy", 1)
                assert order["average"] == 50000.1
                # a delivery contract pays no funding: Binance shows "" and 0 (premiumIndex doc)
                premium = await ex.fapiPublicGetPremiumIndex({"symbol": "BTCUSDT_251226"})
                assert (premium["lastFundingRate"], premium["interestRate"], premium["nextFundingTime"]) == ("", "", 0)
                go(-1)  # one second after delivery
                (pos,) = await ex.fetch_positions([symbol]) or [{"contracts": 0.0}]
                assert not pos["contracts"]
                bal = await ex.fetch_balance()
                assert Decimal(bal["info"]["assets"][0]["walletBalance"]) == Decimal("10024.89995")
                income = await ex.fapiPrivateGetIncome({"incomeType": "DELIVERED_SETTELMENT"})
                assert [Decimal(i["income"]) for i in income] == [Decimal("49.9")]
                info = await ex.fapiPublicGetExchangeInfo()
                (row,) = [s for s in info["symbols"] if s["symbol"] == "BTCUSDT_251226"]
                assert row["status"] == "DELIVERED"
                with pytest.raises(ccxt.ExchangeError, match="-4108"):
                    await ex.create_order(symbol, "market", "buy", 1)
            finally:
                await ex.close()

        asyncio.run(run())
        journal = read_journal(tmp_path / "emu" / "journal.jsonl")
    settled = [r for r in journal if r["event"] == "delivery_settlement"]
    assert [(r["side"], Decimal(r["price"]), Decimal(r["realized_pnl"])) for r in settled] == [
        ("SELL", Decimal("50050.0"), Decimal("49.9"))]
    # the simulated venue delivers by the same rule
    from engine.types import load_instruments
    from replay.schema import StoredInstrument
    from replay.stores import open_store

    spec = f"duckdb:{tmp_path / 'dated.duckdb'}"
    market_rows = _dated_market()[0]
    with open_store(spec, create=True) as store, store.begin_import(
            {DATED: StoredInstrument.of(load_instruments()[DATED])}, expected_rows=len(market_rows)) as tx:
        tx.append(DATED, market_rows)
    root = Path(__file__).resolve().parents[3]
    config = resolve({"run": {"strategy": "examples/perp_long.py:PerpLong", "data": spec, "instruments": [DATED],
                              "params": {"qty": "1"}},
                      "venues": {"binanceusdm": {"balances": {"USDT": "10000"}, "leverage": 20,
                                                 "margin_mode": "isolated", "taker_fee_bps": 5, "maker_fee_bps": 2}}},
                     {}, base_dir=str(root))
    import json

    import pyarrow.parquet as pq

    out = run_backtest(config, tmp_path / "bt", write_html=False)
    fills = pq.read_table(out / "fills.parquet").to_pylist()
    assert [(f["client_id"], Decimal(f["price"])) for f in fills][-1] == ("delivery-1", Decimal("50050.0"))
    summary = json.loads((out / "summary.json").read_text())["run"]
    assert Decimal(summary["balances"]["binanceusdm:USDT"]) == Decimal("10024.89995")


def test_coinm_quarterly_delivery_settles_in_the_coin_and_shows_no_funding(tmp_path):
    """BTCUSD_251226 (COIN-M quarterly, /dapi, ccxt.pro binancecoinm): premiumIndex and the
    markPrice stream show no funding for a delivery contract, as Binance ("" for
    lastFundingRate / interestRate / `r`, 0 for nextFundingTime / `T`). 10 contracts
    bought at 50,000.1 on 1 BTC (fee 10 x 100 / 50,000.1 x 5 bps = 0.0000099998 -> 0.00001
    BTC). At delivery (the mark's 30-minute mean, 50,050.0) the inverse PnL is contracts x
    contract size x (1/entry - 1/delivery) = 1,000 x (1/50,000.1 - 1/50,050.0) =
    0.0000199400... -> 0.00001994 BTC (its DELIVERED_SETTELMENT income); the wallet is 1 -
    0.00001 + 0.00001994 = 1.00000994 BTC; GET /futures/data/delivery-price lists 50,050.0
    at the contract's delivery date. A backtest of the same market books the same."""
    import json

    import pyarrow.parquet as pq
    from futures_helpers import COINM_DATED, dated_market, dated_store, step_to_ns

    from engine.config import resolve
    from modes.backtest import run_backtest

    symbol = COINM_DATED.split(":", 1)[1]
    with futures_emulator(tmp_path / "emu", balance="1", instrument=COINM_DATED, source=dated_market()) as emu:
        step_to_ns(emu, EXPIRY - 2399 * 1_000_000_000)

        async def run():
            import ccxt.pro as ccxtpro

            ex = ccxtpro.binancecoinm(emu.ccxt_config(0, timeout=5000))
            try:
                await ex.load_markets()
                market = ex.market(symbol)
                assert (market["type"], market["inverse"], market["expiry"]) == ("future", True, EXPIRY // 1_000_000)
                (premium,) = await ex.dapiPublicGetPremiumIndex({"symbol": market["id"]})
                assert (premium["lastFundingRate"], premium["interestRate"], premium["nextFundingTime"]) == ("", "", 0)
                rate = await ex.fetch_funding_rate(symbol)
                assert (rate["fundingRate"], rate["fundingTimestamp"]) == (None, 0)  # ccxt reads Binance's ""/0 so
                mark = asyncio.ensure_future(ex.watch_mark_price(symbol))
                await asyncio.sleep(0.3)
                step_to_ns(emu, EXPIRY - 2398 * 1_000_000_000)
                tick = await asyncio.wait_for(mark, 5)
                assert (tick["info"]["r"], tick["info"]["T"]) == ("", 0)
                order = await ex.create_order(symbol, "market", "buy", 10)
                assert order["average"] == 50000.1
                step_to_ns(emu, EXPIRY + 1_000_000_000)  # one second after delivery
                assert not await ex.fetch_positions([symbol])
                income = await ex.fetch_ledger(None, None, None, {"incomeType": "DELIVERED_SETTELMENT"})
                assert [(e["type"], e["currency"], Decimal(e["info"]["income"])) for e in income] == [
                    ("settlement", "BTC", Decimal("0.00001994"))]
                assert await ex.dapiDataGetDeliveryPrice({"pair": "BTCUSD"}) == [
                    {"deliveryTime": EXPIRY // 1_000_000, "deliveryPrice": 50050.0}]
                bal = await ex.fetch_balance()
                assert Decimal(str(bal["BTC"]["total"])) == Decimal("1.00000994")
            finally:
                await ex.close()

        asyncio.run(asyncio.wait_for(run(), 60))
    spec = dated_store(tmp_path / "coinm.duckdb", COINM_DATED, dated_market()[0])
    root = Path(__file__).resolve().parents[3]
    config = resolve({"run": {"strategy": "examples/perp_long.py:PerpLong", "data": spec,
                              "instruments": [COINM_DATED], "params": {"qty": "10"}},
                      "venues": {"binancecoinm": {"balances": {"BTC": "1"}, "leverage": 20, "margin_mode": "isolated",
                                                  "taker_fee_bps": 5, "maker_fee_bps": 2}}}, {}, base_dir=str(root))
    out = run_backtest(config, tmp_path / "bt", write_html=False)
    fills = pq.read_table(out / "fills.parquet").to_pylist()
    assert [(f["client_id"], f["price"], f["qty"], f["fee"], f["liquidity"]) for f in fills][-1] == (
        "delivery-1", "50050.0", "10", "0", "delivery")
    summary = json.loads((out / "summary.json").read_text())["run"]
    assert Decimal(summary["balances"]["binancecoinm:BTC"]) == Decimal("1.00000994")
    assert (summary["derivatives"][COINM_DATED]["deliveries"], summary["derivatives"][COINM_DATED]["liquidations"]) == (1, 0)


def _fresh_minute() -> None:
    """Weight windows are wall-clock minutes: start a measured sequence well inside one."""
    import time

    if time.time() % 60 > 50:
        time.sleep(61 - time.time() % 60)


def test_futures_request_weights_and_order_counts(tmp_path):
    """/fapi weights from Binance's USDⓈ-M docs, read back from X-MBX-USED-WEIGHT-1M after
    each call through ccxt: time 1, account (v3) 5, income 30, openOrders 1 with a symbol
    and 40 without, a new order 0 on the IP (it counts on ORDERS: X-MBX-ORDER-COUNT-10S and
    -1M = 1); exchangeInfo states 2,400 / minute, 300 / 10 s and 1,200 / minute. With the
    weight limit lowered to 100 through the control API, the fourth income call (4 x 30)
    is refused: 429 -1003 with Retry-After."""
    from emu_helpers import control

    with futures_emulator(tmp_path / "emu") as emu:
        step_to(emu, 1)

        async def run():
            ex = await _client(emu)
            try:
                info = await ex.fapiPublicGetExchangeInfo()
                assert [(r["rateLimitType"], r["interval"], r["intervalNum"], r["limit"]) for r in info["rateLimits"]] == [
                    ("REQUEST_WEIGHT", "MINUTE", 1, 2400), ("ORDERS", "SECOND", 10, 300), ("ORDERS", "MINUTE", 1, 1200)]
                _fresh_minute()
                control(emu, "limits", {"reset": True})

                def used() -> int:
                    return int(ex.last_response_headers["X-MBX-USED-WEIGHT-1M"])

                steps = []
                for call, args in ((ex.fapiPublicGetTime, ()), (ex.fapiPrivateV3GetAccount, ()),
                                   (ex.fapiPrivateGetIncome, ()), (ex.fapiPrivateGetOpenOrders, ({"symbol": "BTCUSDT"},)),
                                   (ex.fapiPrivateGetOpenOrders, ())):
                    await call(*args)
                    steps.append(used())
                assert steps == [1, 6, 36, 37, 77]
                await ex.create_order(SYMBOL, "market", "buy", 0.01)
                headers = ex.last_response_headers
                assert (int(headers["X-MBX-USED-WEIGHT-1M"]), headers["X-MBX-ORDER-COUNT-10S"],
                        headers["X-MBX-ORDER-COUNT-1M"]) == (77, "1", "1")
                control(emu, "limits", {"reset": True, "weight_per_minute": 100})
                for _ in range(3):
                    await ex.fapiPrivateGetIncome()
                with pytest.raises(ccxt.BaseError, match="-1003"):
                    await ex.fapiPrivateGetIncome()
                assert int(ex.last_response_headers["Retry-After"]) > 0
            finally:
                await ex.close()

        asyncio.run(asyncio.wait_for(run(), 60))


def test_coinm_weights(tmp_path):
    """/dapi: premiumIndex weighs 10 and account 5 (Binance's COIN-M docs); exchangeInfo
    states 2,400 / minute and 1,200 orders / minute (no 10 s window)."""
    import ccxt.pro as ccxtpro
    from emu_helpers import control
    from futures_helpers import COINM, perp_market

    with futures_emulator(tmp_path / "emu", balance="1", instrument=COINM,
                          source=perp_market(bid=499_999, ask=500_000)) as emu:
        step_to(emu, 1)

        async def run():
            ex = ccxtpro.binancecoinm(emu.ccxt_config(0, timeout=5000))
            try:
                await ex.load_markets()
                info = await ex.dapiPublicGetExchangeInfo()
                assert [(r["interval"], r["limit"]) for r in info["rateLimits"]] == [("MINUTE", 2400), ("MINUTE", 1200)]
                _fresh_minute()
                control(emu, "limits", {"reset": True})
                await ex.dapiPublicGetPremiumIndex()
                assert ex.last_response_headers["X-MBX-USED-WEIGHT-1M"] == "10"
                await ex.dapiPrivateGetAccount()
                assert ex.last_response_headers["X-MBX-USED-WEIGHT-1M"] == "15"
            finally:
                await ex.close()

        asyncio.run(asyncio.wait_for(run(), 60))
