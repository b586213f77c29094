"""The faults the live-mode helpers test against (request lost before processing, truncated
body, user stream stalled so a fill arrives after the cancel's reply), as unmodified ccxt
sees them, and the fault vocabulary as documented (docs/emulator.md, shared with the
stress scenarios' simulated venue faults)."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import ccxt
import pytest
from emu_helpers import control, get_json, pro_client, step, sync_client

from venues.emulator import FAULT_KINDS, FaultPlan
from venues.emulator.faults import REST_KINDS

DOC = Path(__file__).resolve().parents[3] / "docs" / "emulator.md"


@pytest.fixture(autouse=True)
def clean(emu):
    yield
    control(emu, "faults", {"clear": True})


def _open_ids(ex):
    return {o["id"] for o in ex.fetch_open_orders("BTC/USDT")}


def _price(ex, below=60):
    return round(ex.fetch_order_book("BTC/USDT", 5)["bids"][0][0] - below, 2)


def test_request_lost_before_processing_is_not_executed(emu, alice):
    before = _open_ids(alice)
    orders0 = emu.call(lambda s: len(s.exchange.orders))
    control(emu, "faults", {"kind": "request_lost", "endpoint": "POST /api/v3/order"})
    with pytest.raises(ccxt.NetworkError) as lost:  # sync ccxt: the connection closed unanswered
        alice.create_order("BTC/USDT", "limit", "buy", 0.001, _price(alice))
    assert not isinstance(lost.value, ccxt.RequestTimeout)
    assert _open_ids(alice) == before
    assert emu.call(lambda s: len(s.exchange.orders)) == orders0  # the venue never saw it
    # held past the client's timeout before the connection drops: RequestTimeout, still
    # nothing executed (a resubmit with the same client id is safe here, unlike response_lost)
    quick = sync_client(emu, "alice", timeout=500)
    quick.load_markets()
    control(emu, "faults", {"kind": "request_lost", "delay": 1.5})
    with pytest.raises(ccxt.RequestTimeout):
        quick.create_order("BTC/USDT", "limit", "buy", 0.001, _price(quick), {"clientOrderId": "lost-1"})
    o = alice.create_order("BTC/USDT", "limit", "buy", 0.001, _price(alice), {"clientOrderId": "lost-1"})
    assert o["status"] == "open"
    alice.cancel_order(o["id"], "BTC/USDT")
    fired = [e for e in get_json(emu, "/emulator/journal") if e["event"] == "fault"
             and e["kind"] == "request_lost"]
    assert len(fired) == 2


def test_truncated_body_after_execution(emu, alice):
    before = _open_ids(alice)
    control(emu, "faults", {"kind": "truncated_body"})
    # a complete HTTP reply whose JSON is cut: ccxt 4.5.90 raises nothing and returns an
    # order without an id (the note's measurement): the client must treat it as ambiguous
    o = alice.create_order("BTC/USDT", "limit", "buy", 0.001, _price(alice))
    assert o["id"] is None
    text = alice.last_http_response
    assert text.startswith('{"symbol": "BTCUSDT"') and not text.endswith("}")
    new = _open_ids(alice) - before
    assert len(new) == 1  # executed: the order rests on the venue
    alice.cancel_order(new.pop(), "BTC/USDT")
    # cut on the wire (Content-Length of the whole body, the connection closed after half)
    before = _open_ids(alice)
    control(emu, "faults", {"kind": "truncated_body", "transport": True})
    with pytest.raises(ccxt.NetworkError):
        alice.create_order("BTC/USDT", "limit", "buy", 0.001, _price(alice))
    new = _open_ids(alice) - before
    assert len(new) == 1
    alice.cancel_order(new.pop(), "BTC/USDT")


def test_user_stream_delay_puts_the_fill_after_the_cancel_reply(emu, alice):
    """alice rests a sell; the user stream stalls 1.5 s from the next event; bob takes
    0.004 of it and alice cancels the rest: the cancel's REST reply comes first, then the
    fill's executionReport, then the CANCELED one (the stream keeps its order)."""
    bob = sync_client(emu, "bob")
    bob.load_markets()
    step(emu, 0.5)

    async def run():
        async with pro_client(emu, "alice") as ex:
            ob = await ex.fetch_order_book("BTC/USDT", 5)
            ask = ob["asks"][0][0]
            p = round(ask - 0.01, 2)
            rest = await ex.create_order("BTC/USDT", "limit", "sell", 0.01, p)
            seen: list[tuple[float, str, float]] = []

            async def watch():
                while True:
                    for o in await ex.watch_orders("BTC/USDT"):
                        if o["id"] == rest["id"]:
                            seen.append((time.monotonic(), o["status"], o["filled"]))

            watcher = asyncio.ensure_future(watch())
            await asyncio.sleep(0.5)
            await asyncio.to_thread(control, emu, "faults",
                                    {"kind": "user_delay", "events": 1, "delay": 1.5})
            taken = await asyncio.to_thread(bob.create_order, "BTC/USDT", "limit", "buy", 0.004, ask,
                                            {"timeInForce": "IOC"})
            cancelled = await ex.cancel_order(rest["id"], "BTC/USDT")
            t_reply = time.monotonic()
            seen_at_reply = list(seen)
            for _ in range(50):
                if any(s == "canceled" for _, s, _ in seen):
                    break
                await asyncio.sleep(0.1)
            watcher.cancel()
            return taken, cancelled, t_reply, seen_at_reply, seen

    taken, cancelled, t_reply, at_reply, seen = asyncio.run(asyncio.wait_for(run(), 40))
    assert taken["filled"] == 0.004
    assert cancelled["status"] == "canceled" and cancelled["filled"] == 0.004
    assert at_reply == []  # nothing of the fill had arrived when the cancel was answered
    assert [(s, f) for _, s, f in seen] == [("open", 0.004), ("canceled", 0.004)]
    assert seen[0][0] > t_reply  # the fill's executionReport after the cancel's reply


def test_fault_vocabulary_is_the_documented_one():
    """Every kind in the code is in docs/emulator.md's table and vice versa, with its keys;
    a schedule file with each live-mode kind loads (the stress scenarios share the file)."""
    text = DOC.read_text()
    table = text[text.index("| kind | keys |"):]
    table = table[: table.index("\n\n")]
    doc_kinds = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        keys = re.sub(r"\([^)]*\)", "", cells[1])  # defaults and values in parentheses
        doc_kinds[cells[0].strip("`")] = set(re.findall(r"`(\w+)`", keys))
    assert set(doc_kinds) == set(FAULT_KINDS)
    for kind, keys in FAULT_KINDS.items():
        assert doc_kinds[kind] == keys, kind
    assert REST_KINDS < set(FAULT_KINDS)


def test_a_schedule_with_every_live_mode_kind_loads(tmp_path):
    f = tmp_path / "faults.toml"
    f.write_text("""seed = 5
[[fault]]
kind = "request_lost"
delay = "2s"
[[fault]]
kind = "response_lost"
[[fault]]
kind = "delay"
delay = "30s"
[[fault]]
kind = "http_5xx_after"
status = 503
[[fault]]
kind = "truncated_body"
transport = true
[[fault]]
kind = "rate_limit"
endpoint = "GET /api/v3/depth"
[[fault]]
kind = "ws_disconnect"
stream = "user"
after = "1m"
[[fault]]
kind = "user_delay"
events = 2
delay = "1.5s"
[[fault]]
kind = "user_reorder"
events = 4
[[fault]]
kind = "maintenance"
duration = "30s"
halt = "1m"
""")
    plan = FaultPlan.load(f)
    assert [x.kind for x in plan.faults][:5] == ["request_lost", "response_lost", "delay",
                                                 "http_5xx_after", "truncated_body"]
    assert plan.faults[0].params == {"delay": 2.0}
    assert plan.faults[7].params == {"events": 2, "delay": 1.5}
    assert plan.faults[6].after_s == 60.0
    bad = tmp_path / "bad.toml"
    bad.write_text('[[fault]]\nkind = "truncated_body"\ntransport = "yes"\n')
    with pytest.raises(Exception, match="transport"):
        FaultPlan.load(bad)


def test_a_fill_between_two_open_orders_polls_is_seen_only_by_a_lookup(emu, alice):
    """The natural race of a client that polls: alice's resting sell is listed open by one
    open-orders poll and filled (bob takes all of it) before the next, which simply omits it.
    Only a lookup (fetch_order, fetch_my_trades) tells that fill from a cancel. Reproducible:
    the market clock is stepped, so the fill falls between the two polls every time."""
    bob = sync_client(emu, "bob")
    bob.load_markets()
    step(emu, 0.5)
    ask = alice.fetch_order_book("BTC/USDT", 5)["asks"][0][0]
    price = round(ask - 0.01, 2)
    rest = alice.create_order("BTC/USDT", "limit", "sell", 0.003, price)
    assert rest["id"] in _open_ids(alice)  # poll 1: open
    taken = bob.create_order("BTC/USDT", "limit", "buy", 0.003, price, {"timeInForce": "IOC"})
    assert taken["filled"] == 0.003
    assert rest["id"] not in _open_ids(alice)  # poll 2: gone, no trace of why
    order = alice.fetch_order(rest["id"], "BTC/USDT")
    assert order["status"] == "closed" and order["filled"] == 0.003
    trades = [t for t in alice.fetch_my_trades("BTC/USDT") if t["order"] == rest["id"]]
    assert round(sum(t["amount"] for t in trades), 8) == 0.003 and {t["price"] for t in trades} == {price}
