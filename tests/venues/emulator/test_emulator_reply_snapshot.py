"""A REST reply is the order as the venue answered the request, not as it is when the
reply leaves (docs/emulator.md "Market time and latency").

The user's fault: a LIMIT_MAKER rested at 789.520, was filled at 789.532 (maker), and
its POST reply, held for the 5 ms response latency, was built when it was sent: FILLED
with `fills`, which the session booked as a taker fill 7 ms early. Binance answers a new
order with its state at the matching engine's acceptance (immediate fills only;
developers.binance.com/docs/binance-spot-api-docs/rest-api/trading-endpoints, "New order
(TRADE)"), so a LIMIT_MAKER's POST is never answered FILLED; later fills reach the client
on the user stream and later queries.

Set-up (stepped clock, so every time below is exact): entry latency 1 ms, response
latency 5 ms; a market that never moves (bid 60,000.00 / ask 60,010.00). alice posts a
LIMIT_MAKER sell of 0.01 at 60,005.00 at market time t: the venue acknowledges it at t+1
(entry latency), and that answer reaches her at t+6. At t+2 bob sends a buy IOC of 0.01 at
60,005.00: it reaches the venue at t+3 and takes alice's order whole (bob taker, alice
maker). Then the clock jumps to t+12, so alice's reply (due t+6) and her fill (t+3,
reported t+8) are delivered in the same clock step: the race of the user's run.
"""

from __future__ import annotations

import concurrent.futures
import time
from decimal import Decimal as D

from emu_helpers import IDS, get_json, make_emulator, step, still_market

VENUE = {"taker_fee_bps": 10, "maker_fee_bps": 2,
         "latency": {"entry_ns": 1_000_000, "response_ns": 5_000_000, "feed_ns": 0}}


def _wait_journal(emu, event: str, pred, timeout: float = 10.0) -> dict:
    """The first journal entry `event` matching `pred` (the request reached the venue)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for e in get_json(emu, "/emulator/journal"):
            if e["event"] == event and pred(e):
                return e
        time.sleep(0.02)
    raise AssertionError(f"no journal {event} within {timeout} s")


def _race_in_the_reply_hold(emu, pool, exchange, symbol: str, price: float, maker_params: dict,
                            taker_id: str) -> tuple[object, dict, dict, dict]:
    """alice's post-only sell of 0.01 at `price` sent at t (its reply held until t+6), bob's
    IOC buy of 0.01 at `price` sent at t+2; then the clock jumps to t+12. Returns alice's
    client, her order's journal entry (`order_new`) and both replies."""
    import ccxt

    step(emu, 1.0)
    alice = getattr(ccxt, exchange)(emu.ccxt_config("alice", timeout=10_000, enableRateLimit=False))
    bob = getattr(ccxt, exchange)(emu.ccxt_config("bob", timeout=10_000, enableRateLimit=False))
    alice.load_markets()
    bob.load_markets()
    maker_f = pool.submit(alice.create_order, symbol, "limit", "sell", 0.01, price, maker_params)
    new = _wait_journal(emu, "order_new", lambda e: e["client_order_id"] == maker_params["newClientOrderId"])
    step(emu, 0.002)  # t+2: acknowledged at t+1, the answer not yet back (due t+6)
    assert not maker_f.done()
    taker_f = pool.submit(bob.create_order, symbol, "limit", "buy", 0.01, price,
                          {"timeInForce": "IOC", "newClientOrderId": taker_id})
    _wait_journal(emu, "order_new", lambda e: e["client_order_id"] == taker_id)
    step(emu, 0.010)  # t+12: alice's answer, her fill and bob's answer in one step
    return alice, new, maker_f.result(timeout=20), taker_f.result(timeout=20)


def test_a_maker_filled_during_the_reply_hold_is_answered_new_and_the_taker_filled(tmp_path):
    import ccxt

    with make_emulator(tmp_path / "e", source=still_market(), ids=IDS[:1], venue=VENUE) as emu, \
            concurrent.futures.ThreadPoolExecutor(2) as pool:
        alice, new, maker, taker = _race_in_the_reply_hold(
            emu, pool, "binance", "BTC/USDT", 60005.0, {"postOnly": True, "newClientOrderId": "maker-1"}, "taker-1")
        assert new["type"] == "LIMIT_MAKER"
        fills = [e for e in get_json(emu, "/emulator/journal") if e["event"] == "fill"]
        later = alice.fetch_order(maker["id"], "BTC/USDT")
        a_trades = alice.fetch_my_trades("BTC/USDT")
        b_trades = ccxt.binance(emu.ccxt_config("bob", timeout=10_000)).fetch_my_trades("BTC/USDT")

    t_new = new["time"]  # client-facing ms of t (whole ms: the clock moved by whole ms)
    # alice: her order as the venue accepted it at t+1: resting, nothing filled
    info = maker["info"]
    assert info["status"] == "NEW" and info["type"] == "LIMIT_MAKER"
    assert info["executedQty"] == "0.00000000" and info["cummulativeQuoteQty"] == "0.00000000"
    assert info.get("fills", []) == []
    assert int(info["transactTime"]) == t_new + 1  # the acceptance, after the 1 ms entry latency
    assert maker["status"] == "open" and maker["filled"] == 0 and maker["trades"] == []
    # bob: a taker that crossed at placement gets FILLED with its fill (the engine's answer)
    tinfo = taker["info"]
    assert tinfo["status"] == "FILLED" and tinfo["executedQty"] == "0.01000000"
    assert [(f["price"], f["qty"], f["commission"], f["commissionAsset"]) for f in tinfo["fills"]] == [
        ("60005.00000000", "0.01000000", "0.00001000", "BTC")]  # 0.01 BTC x 10 bps, in the base received
    assert int(tinfo["transactTime"]) == t_new + 3  # sent at t+2, arrived after 1 ms
    assert taker["status"] == "closed" and taker["filled"] == 0.01
    # the fill itself: one trade at t+3, alice maker (2 bps of 600.05 USDT = 0.12001), bob taker
    (fa,) = [f for f in fills if f["account"] == "alice"]
    (fb,) = [f for f in fills if f["account"] == "bob"]
    assert (fa["liquidity"], fb["liquidity"]) == ("maker", "taker")
    assert fa["time"] == fb["time"] == t_new + 3 and fa["trade_id"] == fb["trade_id"]
    assert D(str(fa["commission"])) == D("0.12001") and fa["commission_asset"] == "USDT"
    # what reaches alice later tells the fill: the order query and myTrades (maker)
    assert later["status"] == "closed" and later["filled"] == 0.01
    (at,) = a_trades
    (bt,) = b_trades
    assert at["takerOrMaker"] == "maker" and at["fee"]["cost"] == 0.12001 and at["timestamp"] == t_new + 3
    assert bt["takerOrMaker"] == "taker" and bt["fee"]["cost"] == 0.00001


def test_futures_a_gtx_filled_during_the_reply_hold_is_answered_new(tmp_path):
    """The same race on USDⓈ-M futures through ccxt's binanceusdm (Binance's futures new
    order answers RESULT, the order at the engine's acceptance: developers.binance.com/docs/
    derivatives/usds-margined-futures/trade/rest-api/New-Order): on a perp quoted
    50,000.0 / 50,001.0, alice's post-only (GTX) sell of 0.01 at 50,000.5 is accepted at t+1
    and taken whole at t+3 by bob's IOC buy sent at t+2; her reply, due at t+6 and delivered
    with the fill, is NEW with nothing executed; bob's is FILLED at 50,000.5."""
    from emu_helpers import CheckedEmulator
    from futures_helpers import PERP, SYMBOL, perp_market

    from engine.margin import MarginSettings
    from engine.types import load_instruments
    from venues.emulator import Account, EmulatorSettings
    from venues.sim import SimVenueConfig

    inst = load_instruments()[PERP]
    settings = EmulatorSettings(
        instruments=[inst],
        venue_configs={inst.venue: SimVenueConfig.from_table(inst.venue, {
            "maker_fee_bps": 2, "taker_fee_bps": 5, "latency": VENUE["latency"]})},
        accounts=[Account("alice", "alice-key", "alice-secret", free={"USDT": D("10000")}),
                  Account("bob", "bob-key", "bob-secret", free={"USDT": D("10000")})],
        seed=3, stepped=True, out_dir=tmp_path / "f", reply_timeout_s=5.0,
        margin={inst.venue: MarginSettings(margin_mode="cross", leverage=20)})
    with CheckedEmulator(settings, perp_market(60, bid=500_000, ask=500_010)) as emu, \
            concurrent.futures.ThreadPoolExecutor(2) as pool:
        alice, new, maker, taker = _race_in_the_reply_hold(
            emu, pool, "binanceusdm", SYMBOL, 50000.5, {"timeInForce": "GTX", "newClientOrderId": "fmaker-1"},
            "ftaker-1")
        fills = [e for e in get_json(emu, "/emulator/journal") if e["event"] == "fill"]
        later = alice.fetch_order(maker["id"], SYMBOL)

    info, tinfo = maker["info"], taker["info"]
    assert (info["status"], D(info["executedQty"]), info["timeInForce"]) == ("NEW", 0, "GTX")
    assert maker["status"] == "open" and maker["filled"] == 0
    assert (tinfo["status"], D(tinfo["executedQty"]), D(tinfo["avgPrice"])) == ("FILLED", D("0.01"), D("50000.5"))
    (fa,) = [f for f in fills if f["account"] == "alice"]
    assert fa["liquidity"] == "maker" and fa["time"] == new["time"] + 3
    assert later["status"] == "closed" and later["filled"] == 0.01
