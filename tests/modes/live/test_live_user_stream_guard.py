"""The user-stream guard in a testnet session (`tickparity testnet` = run_live) against the
emulator over real ccxt.pro: the user stream goes silent (the emulator's `user_silent`
fault: no event, no error, the socket left open), the session's resting order fills at the
venue meanwhile. Without a guard the session never hears of the fill until the periodic
reconciliation (30 s); with it the watch is given up after the guard's time, the stream
re-subscribed, and the reconciliation that follows books the fill. Said once on the console."""

from __future__ import annotations

import json
import threading
import time

import pyarrow.parquet as pq
import pytest
from emu_helpers import control, get_json, make_emulator, still_market
from live_helpers import session_config, wait_until

STRATEGY = '''
from decimal import Decimal
from engine import Strategy


class RestOne(Strategy):
    """One sell resting inside the spread of a market that never moves."""

    def on_start(self, ctx):
        ctx.submit("binance:BTC/USDT", "sell", Decimal("0.004"), Decimal("60005.00"))
'''


@pytest.fixture(scope="module")
def still_emu(tmp_path_factory):
    """Real time, bid 60000.00 / ask 60010.00 for 10 minutes, no trades of its own."""
    with make_emulator(tmp_path_factory.mktemp("still-live"), stepped=False, speed=1.0,
                       ids=("binance:BTC/USDT",), source=still_market()) as emu:
        yield emu


def test_a_silent_user_stream_is_re_subscribed_and_the_missed_fill_reconciled(still_emu, alice_env, tmp_path, capfd):
    import ccxt

    from modes.live import run_live

    (tmp_path / "rest_one.py").write_text(STRATEGY)
    config = session_config(still_emu, strategy=f"{tmp_path / 'rest_one.py'}:RestOne", base_dir=tmp_path)
    out = tmp_path / "run"
    result: dict = {}

    def session():
        try:
            result["dir"] = run_live(config, "testnet", out, duration_s=10, health=False, write_html=False,
                                     user_stream_guard_s=1.5)
        except BaseException as exc:  # reported by the assertion below
            result["error"] = exc

    thread = threading.Thread(target=session)
    thread.start()
    try:
        def resting():
            return [e for e in get_json(still_emu, "/emulator/journal")
                    if e["event"] == "order_new" and e.get("account") == "alice"]
        (placed,) = wait_until("the session's order at the venue", resting, 30)
        time.sleep(0.5)  # its executionReport reached the session: the stream is alive
        control(still_emu, "faults", {"kind": "user_silent"})
        bob = ccxt.binance(still_emu.ccxt_config("bob", timeout=3000))
        taker = bob.create_order("BTC/USDT", "limit", "buy", 0.004, 60010.0, {"timeInForce": "IOC"})
        assert taker["filled"] == 0.004  # the session's order filled at the venue, unheard
    finally:
        thread.join(60)
        control(still_emu, "faults", {"clear": True})
    assert "error" not in result, result.get("error")
    err = capfd.readouterr().err
    warnings = [line for line in err.splitlines() if "user stream silent" in line]
    assert len(warnings) == 1, err  # once per silence
    assert "[venues.binance]" in warnings[0] and "re-subscribed" in warnings[0]
    steps = [json.loads(line) for line in (out / "session.jsonl").read_text().splitlines()]
    assert any(s.get("c") == "reconcile" and s.get("at") == "user-stream" for s in steps)
    # the fill was booked by the guard's reconciliation, before the session stopped: nothing
    # was left open for the shutdown to cancel (no cancel_all step, whose -2011 would have
    # found the fill too, late)
    assert not any(s.get("c") == "cancel_all" for s in steps)
    orders = pq.read_table(out / "orders.parquet").to_pylist()
    assert [(o["client_id"], o["status"]) for o in orders] == [(placed["client_order_id"], "filled")]
    assert len(pq.read_table(out / "fills.parquet")) == 1
    from modes.live.replay import replay_session

    replayed = replay_session(out)
    assert replayed.identical, replayed.difference.text()  # the guard's reconciliation is a recorded step
