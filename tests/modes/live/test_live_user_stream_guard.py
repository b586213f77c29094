"""The user-stream guard in a testnet session (`tickparity testnet` = run_live) against the
emulator over real ccxt.pro.

A dead stream: the user stream goes silent (the emulator's `user_silent` fault: no event,
no error, the socket left open and its pings answered), the session's resting order fills
at the venue meanwhile. Without a guard the session never hears of the fill until the
periodic reconciliation (30 s); with it the silent stream is probed, the venue shows the
order gone, the stream is re-subscribed, and the reconciliation that follows books the
fill. Said once on the console.

A quiet, healthy stream: an order rests and nothing happens to it, so the stream has
nothing to say for many guard times. The probe finds the venue agreeing with what the
session heard: no warning, no re-subscription, no reconciliation for it (issue #11: it
re-subscribed and warned once per guard time)."""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager

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


@contextmanager
def _in_thread(run, emu):
    """Run the session (`run()`) in a thread while the body injects faults; then wait for
    it and clear the emulator's faults. Yields {"error": exc} if the session raised."""
    result: dict = {}

    def session():
        try:
            run()
        except BaseException as exc:  # reported by the test's assertion
            result["error"] = exc

    thread = threading.Thread(target=session)
    thread.start()
    try:
        yield result
    finally:
        thread.join(60)
        control(emu, "faults", {"clear": True})


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
    with _in_thread(lambda: run_live(config, "testnet", out, duration_s=10, health=False, write_html=False,
                                     user_stream_guard_s=1.5), still_emu) as result:
        def resting():
            return [e for e in get_json(still_emu, "/emulator/journal")
                    if e["event"] == "order_new" and e.get("account") == "alice"]
        (placed,) = wait_until("the session's order at the venue", resting, 30)
        time.sleep(0.5)  # its executionReport reached the session: the stream is alive
        control(still_emu, "faults", {"kind": "user_silent"})
        bob = ccxt.binance(still_emu.ccxt_config("bob", timeout=3000))
        taker = bob.create_order("BTC/USDT", "limit", "buy", 0.004, 60010.0, {"timeInForce": "IOC"})
        assert taker["filled"] == 0.004  # the session's order filled at the venue, unheard
    assert "error" not in result, result.get("error")
    err = capfd.readouterr().err
    warnings = [line for line in err.splitlines() if "user stream silent" in line]
    assert len(warnings) == 1, err  # once per silence
    assert "[venues.binance]" in warnings[0] and "re-subscribed" in warnings[0]
    assert f"order {placed['client_order_id']} no longer open" in warnings[0]  # the evidence
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


def test_a_quiet_healthy_stream_is_not_taken_for_dead(still_emu, alice_env, tmp_path, capfd):
    """The order rests for 6 s (four 1.2 s guard times) and nothing happens to it: the
    stream is probed (the venue's open orders agree: the order rests, unfilled) and left
    alone: no warning, no user-stream reconciliation, no new user-data subscription at the
    emulator; the order is still open at the end (the shutdown cancels it)."""
    from modes.live.driver import LiveDriver

    (tmp_path / "rest_one.py").write_text(STRATEGY)
    config = session_config(still_emu, strategy=f"{tmp_path / 'rest_one.py'}:RestOne", base_dir=tmp_path)
    out = tmp_path / "run"
    driver = LiveDriver(config, "testnet", out, duration_s=6, health=False, write_html=False,
                        user_stream_guard_s=1.2)
    driver.run()
    err = capfd.readouterr().err
    assert "user stream silent" not in err, err
    venue = driver.ccxt_venues["binance"]
    assert venue.user_resubscribes == 0
    assert venue.user_probes >= 2 and venue.user_quiet_ok == venue.user_probes  # asked, and agreed
    steps = [json.loads(line) for line in (out / "session.jsonl").read_text().splitlines()]
    assert not any(s.get("at") == "user-stream" for s in steps)
    orders = pq.read_table(out / "orders.parquet").to_pylist()
    assert [o["status"] for o in orders] == ["cancelled"]  # rested the whole session, cancelled at its end


REQUOTER = '''
from decimal import Decimal
from engine import Strategy


class Requoter(Strategy):
    """Cancels its sell and quotes a new one every 300 ms, as a market maker refreshing
    its quotes: no order of it rests unchanged for a guard time."""

    def on_start(self, ctx):
        self.live = None
        ctx.schedule(every_ns=300_000_000)

    def on_timer(self, ctx, ts):
        if self.live is not None:
            ctx.cancel(self.live)
        self.live = ctx.submit("binance:BTC/USDT", "sell", Decimal("0.004"), Decimal("60005.00"))
'''


def test_a_silent_stream_under_an_active_strategy_is_taken_for_dead(still_emu, alice_env, tmp_path, capfd):
    """A strategy that cancels and re-quotes every 300 ms leaves no order resting unchanged
    for the probe to ask about, and its cancels' replies explain everything: the evidence
    of the dead stream is the reports it owes. After `user_silent`, each submit and cancel
    the venue confirms by REST gets no executionReport; a guard time (1.5 s) of silence
    later, with confirmations untold for more than the 1 s grace, the stream is
    re-subscribed (one warning naming what it owed), the session reconciles, and the
    re-subscribed stream reports the orders again (a new user-data subscription at the
    emulator; issue #11: before, it was never re-subscribed)."""
    from modes.live.driver import LiveDriver

    (tmp_path / "requoter.py").write_text(REQUOTER)
    config = session_config(still_emu, strategy=f"{tmp_path / 'requoter.py'}:Requoter", base_dir=tmp_path)
    out = tmp_path / "run"
    driver = LiveDriver(config, "testnet", out, duration_s=8, health=False, write_html=False,
                        user_stream_guard_s=1.5)

    def placed():  # the module's emulator journal holds the earlier tests' orders too
        return [e for e in get_json(still_emu, "/emulator/journal")
                if e["event"] == "order_new" and e.get("account") == "alice"]

    before = len(placed())
    with _in_thread(driver.run, still_emu) as result:
        def quoting():  # two quotes of this session placed: its subscription is open and alive
            mine = placed()[before:]
            return mine if len(mine) >= 2 else None
        wait_until("the session quoting at the venue", quoting, 30)
        time.sleep(0.2)
        control(still_emu, "faults", {"kind": "user_silent"})
    assert "error" not in result, result.get("error")
    err = capfd.readouterr().err
    warnings = [line for line in err.splitlines() if "user stream silent" in line]
    assert len(warnings) == 1, err
    assert "were never reported on the stream" in warnings[0] and "re-subscribed" in warnings[0]
    # within a guard time (and the grace) of the silence, not a guard time later (issue #11)
    silent_s = float(warnings[0].split("user stream silent for ")[1].split(" s")[0])
    assert silent_s < 2 * 1.5, warnings[0]
    venue = driver.ccxt_venues["binance"]
    assert venue.user_resubscribes == 1
    steps = [json.loads(line) for line in (out / "session.jsonl").read_text().splitlines()]
    assert any(s.get("c") == "reconcile" and s.get("at") == "user-stream" for s in steps)
    # the re-subscribed stream speaks again: orders submitted after the re-subscription are
    # acknowledged by stream reports (audit `source` = stream), not only by REST replies
    audit = [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines()]
    resub = next(i for i, r in enumerate(audit) if r["type"] == "reconcile" and r["at"] == "user-stream")
    assert any(r["type"] == "venue_reply" and r.get("report", {}).get("source") == "stream" for r in audit[resub:]), \
        "no stream report after the re-subscription"
    from modes.live.replay import replay_session

    replayed = replay_session(out)
    assert replayed.identical, replayed.difference.text()
