"""Two accounts trading with each other through the emulator (unmodified ccxt, 127.0.0.1).

Hand-computed: alice rests a sell inside the spread; bob's marketable buy fills against it
at alice's price (alice maker at 2 bps in USDT, bob taker at 10 bps in BTC, the fees of
emu_helpers' venue table); balances, trades, journal and the public depth (REST and the
ccxt.pro depth stream) are checked to the last unit. Within one account the Binance STP
mode applies instead.
"""

from __future__ import annotations

import asyncio
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

from emu_helpers import IDS, book_of, make_emulator, pro_client, step, still_market, sync_client

from venues.emulator import read_journal

D = Decimal
Q8 = D("0.00000001")


def _bal(ex, asset):
    row = next(r for r in ex.fetch_balance()["info"]["balances"] if r["asset"] == asset)
    return D(row["free"]), D(row["locked"])


def test_accounts_trade_with_each_other_and_stp_stays_within_one(emu, alice):
    bob = sync_client(emu, "bob")
    bob.load_markets()
    ob = alice.fetch_order_book("BTC/USDT", 5)
    bid, ask = D(str(ob["bids"][0][0])), D(str(ob["asks"][0][0]))
    p = ask - D("0.01")  # one tick inside the spread: the feed has nothing there
    assert p > bid
    a_usdt0, a_btc0 = _bal(alice, "USDT"), _bal(alice, "BTC")
    b_usdt0, b_btc0 = _bal(bob, "USDT"), _bal(bob, "BTC")

    rest = alice.create_order("BTC/USDT", "limit", "sell", 0.01, float(p), {"clientOrderId": "a-rest"})
    assert rest["status"] == "open"
    # (b) the resting order of another participant is in the public depth (REST here, the
    # stream in the next test); the level holds alice's 0.01 and nothing of the feed
    assert alice.fetch_order_book("BTC/USDT", 5)["asks"][0] == [float(p), 0.01]
    assert book_of(emu)[2][0] == [float(p), 0.01]

    # bob's buy at the book's ask crosses alice's better 0.01 first: 0.004 fills at p
    o = bob.create_order("BTC/USDT", "limit", "buy", 0.004, float(ask), {"timeInForce": "IOC"})
    assert o["status"] == "closed" and o["filled"] == 0.004
    assert [(D(f["price"]), D(f["qty"])) for f in o["info"]["fills"]] == [(p, D("0.004"))]
    b_fee = (D("0.004") * 10 / 10000).quantize(Q8)  # taker, in the asset received
    assert b_fee == D("0.000004")
    assert _bal(bob, "USDT") == (b_usdt0[0] - p * D("0.004"), D(0))
    assert _bal(bob, "BTC") == (b_btc0[0] + D("0.004") - b_fee, D(0))

    a_fee = (p * D("0.004") * 2 / 10000).quantize(Q8)  # maker, in USDT
    assert _bal(alice, "USDT") == (a_usdt0[0] + p * D("0.004") - a_fee, a_usdt0[1])
    assert _bal(alice, "BTC") == (a_btc0[0] - D("0.01"), a_btc0[1] + D("0.006"))
    a = alice.fetch_order(rest["id"], "BTC/USDT")
    assert a["status"] == "open" and a["filled"] == 0.004 and a["remaining"] == 0.006
    at = alice.fetch_my_trades("BTC/USDT")[-1]
    bt = bob.fetch_my_trades("BTC/USDT")[-1]
    assert (at["takerOrMaker"], at["side"], at["price"], at["amount"]) == ("maker", "sell", float(p), 0.004)
    assert (bt["takerOrMaker"], bt["side"], bt["price"], bt["amount"]) == ("taker", "buy", float(p), 0.004)
    assert D(str(at["fee"]["cost"])) == a_fee and at["fee"]["currency"] == "USDT"
    assert D(str(bt["fee"]["cost"])) == b_fee and bt["fee"]["currency"] == "BTC"
    journal = read_journal(Path(emu.settings.out_dir) / "journal.jsonl")
    fills = [(e["account"], e["order_id"], D(e["price"]), D(e["qty"]), e["liquidity"], D(e["commission"]))
             for e in journal if e["event"] == "fill" and e["order_id"] in (int(rest["id"]), int(o["id"]))]
    assert sorted(fills) == sorted([("alice", int(rest["id"]), p, D("0.004"), "maker", a_fee),
                                    ("bob", int(o["id"]), p, D("0.004"), "taker", b_fee)])
    assert alice.fetch_order_book("BTC/USDT", 5)["asks"][0] == [float(p), 0.006]

    # the same account: no trade, its STP mode. EXPIRE_TAKER ends the new order
    t = alice.create_order("BTC/USDT", "limit", "buy", 0.001, float(p),
                           {"selfTradePreventionMode": "EXPIRE_TAKER"})
    assert t["status"] == "expired" and t["filled"] == 0 and t["info"]["status"] == "EXPIRED_IN_MATCH"
    assert alice.fetch_order(rest["id"], "BTC/USDT")["remaining"] == 0.006
    # EXPIRE_MAKER ends the resting one; the buy then rests at p (nothing else there)
    m = alice.create_order("BTC/USDT", "limit", "buy", 0.001, float(p),
                           {"selfTradePreventionMode": "EXPIRE_MAKER"})
    r = alice.fetch_order(rest["id"], "BTC/USDT")
    assert r["status"] == "expired" and r["info"]["status"] == "EXPIRED_IN_MATCH" and r["filled"] == 0.004
    assert m["status"] == "open" and m["filled"] == 0
    top = alice.fetch_order_book("BTC/USDT", 5)
    assert top["bids"][0] == [float(p), 0.001] and top["asks"][0][0] == float(ask)
    assert _bal(alice, "BTC") == (a_btc0[0] - D("0.004"), a_btc0[1])  # the 0.006 unlocked
    alice.cancel_order(m["id"], "BTC/USDT")
    assert alice.fetch_order_book("BTC/USDT", 5)["bids"][0][0] == float(bid)


def test_depth_stream_carries_the_accounts_orders(emu, alice):
    """ccxt.pro's book, rebuilt from snapshot + diffs, equals the emulator's public book at
    equal update ids after alice's order rests and after it is cancelled."""
    far = D(str(alice.fetch_order_book("BTC/USDT", 5)["bids"][0][0])) - D("50")

    def own_at(book, price):
        return D(str(dict(book).get(float(price), 0)))

    async def synced(pro):
        target = (await asyncio.to_thread(book_of, emu, 0))[0]
        for _ in range(100):  # the stepped clock sends diffs only when stepped
            task = asyncio.ensure_future(pro.watch_order_book("BTC/USDT"))
            while not task.done():
                await asyncio.wait({task}, timeout=0.1)
                if not task.done():
                    await asyncio.to_thread(step, emu, 0.05)
            book = task.result()
            if book["nonce"] >= target:
                uid, bids, asks = await asyncio.to_thread(book_of, emu, 0)
                if book["nonce"] == uid:
                    return [list(x) for x in book["bids"]], bids
                target = uid
        raise AssertionError("the depth stream never caught up")

    async def run():
        async with pro_client(emu, "bob") as pro:
            mine, ours = await synced(pro)
            assert mine == ours
            before = own_at(mine, far)
            o = await asyncio.to_thread(alice.create_order, "BTC/USDT", "limit", "buy", 0.003, float(far))
            mine, ours = await synced(pro)
            assert mine == ours and own_at(mine, far) == before + D("0.003")
            await asyncio.to_thread(alice.cancel_order, o["id"], "BTC/USDT")
            mine, ours = await synced(pro)
            assert mine == ours and own_at(mine, far) == before

    asyncio.run(asyncio.wait_for(run(), 60))


def test_quote_sized_market_order_walks_the_other_accounts_orders(emu, alice):
    """quoteOrderQty is turned into a quantity on the book the order will meet, which holds
    alice's better-priced sell: the quote budget q buys floor(q / p) lots at p."""
    bob = sync_client(emu, "bob")
    bob.load_markets()
    ob = alice.fetch_order_book("BTC/USDT", 5)
    p = D(str(ob["bids"][0][0])) + D("0.01")  # the lowest ask possible, inside the spread
    assert p < D(str(ob["asks"][0][0]))
    rest = alice.create_order("BTC/USDT", "limit", "sell", 0.01, float(p))
    usdt0 = _bal(bob, "USDT")[0]
    # ccxt sends quoteOrderQty = amount x price (to its cost precision) for a market buy with a price
    o = bob.create_order("BTC/USDT", "market", "buy", 0.005, float(p))
    q = D(o["info"]["origQuoteOrderQty"])
    lots = (q / p).quantize(D("0.00001"), rounding=ROUND_DOWN)  # BTC/USDT lot 0.00001
    assert [(D(f["price"]), D(f["qty"])) for f in o["info"]["fills"]] == [(p, lots)]
    assert _bal(bob, "USDT") == (usdt0 - p * lots, D(0))
    assert D(str(alice.fetch_order(rest["id"], "BTC/USDT")["filled"])) == lots
    alice.cancel_order(rest["id"], "BTC/USDT")


def test_a_trade_between_accounts_is_public(tmp_path):
    """On a market that never moves (bid 60000.00, ask 60010.00, no trades of its own),
    bob's buy crosses alice's resting sell at 60005.00: one public trade on `<symbol>@trade`
    (price, quantity, the taker's side; its id is the trade id both accounts' myTrades
    show), and in the same clock step alice's lots leave the public depth and bookTicker."""
    with make_emulator(tmp_path / "still", source=still_market(), ids=IDS[:1]) as emu:
        step(emu, 1.0)
        alice = sync_client(emu, "alice")
        alice.load_markets()
        bob = sync_client(emu, "bob")
        bob.load_markets()
        assert alice.fetch_order_book("BTC/USDT", 5)["asks"] == [[60010.0, 1.0]]
        rest = alice.create_order("BTC/USDT", "limit", "sell", 0.01, 60005.0)

        async def run():
            async with pro_client(emu, "bob") as pro:
                trades_f = asyncio.ensure_future(pro.watch_trades("BTC/USDT"))
                ticker_f = asyncio.ensure_future(pro.watch_bids_asks(["BTC/USDT"]))
                await asyncio.sleep(0.5)  # both subscriptions acknowledged
                await asyncio.to_thread(step, emu, 0.1)
                first_tick = (await asyncio.wait_for(ticker_f, 10))["BTC/USDT"]
                ticker_f = asyncio.ensure_future(pro.watch_bids_asks(["BTC/USDT"]))
                o = await asyncio.to_thread(bob.create_order, "BTC/USDT", "limit", "buy", 0.004,
                                            60010.0, {"timeInForce": "IOC"})
                trades = await asyncio.wait_for(trades_f, 10)
                tick = (await asyncio.wait_for(ticker_f, 10))["BTC/USDT"]
                return o, first_tick, tick, list(trades)

        o, first_tick, tick, trades = asyncio.run(asyncio.wait_for(run(), 60))
        at = alice.fetch_my_trades("BTC/USDT")
        bt = bob.fetch_my_trades("BTC/USDT")
        book = alice.fetch_order_book("BTC/USDT", 5)
        ours = book_of(emu)
        alice.cancel_order(rest["id"], "BTC/USDT")
    assert o["filled"] == 0.004 and [f["price"] for f in o["info"]["fills"]] == ["60005.00000000"]
    (t,) = trades
    assert len(at) == len(bt) == 1
    assert t["id"] == at[0]["id"] == bt[0]["id"]  # one trade, one id (as Binance)
    assert (t["price"], t["amount"], t["side"]) == (60005.0, 0.004, "buy")
    assert t["info"]["m"] is False  # the buyer (bob) was the taker
    assert t["timestamp"] == at[0]["timestamp"] == bt[0]["timestamp"]
    assert (first_tick["ask"], first_tick["askVolume"]) == (60005.0, 0.01)
    assert (tick["ask"], tick["askVolume"]) == (60005.0, 0.006)
    assert book["asks"] == [[60005.0, 0.006], [60010.0, 1.0]] and ours[2][:2] == book["asks"]
