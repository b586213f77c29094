"""A bracket's entry that fills while no session runs (the mirror of
test_live_bracket_amend.py's take-profit; docs/contingent-orders.md "Restart").

A testnet session (`tickparity testnet` in a subprocess, real ccxt against the emulator) rests
a bracket's entry (limit buy 0.01 at 59990) and is killed (SIGKILL) while it works; a trade
print then fills the entry at the venue. A `--resume` session finds the working entry's venue
order no longer open: it looks it up by client id (not a difference), books its fill once
into the position, and runs the bracket as if it had seen the fill live: the stop-loss armed
and the take-profit sent, sized to what the entry delivered (less the base fee the venue
kept; the session's end cancels it, as any session's). Every reconciliation is clean; the
replay re-runs it identically.
"""

from __future__ import annotations

import json
import signal
from decimal import Decimal

from contingent_market import (
    market,
    resume_testnet,
    start_testnet,
    stepped_emulator,
)
from emu_helpers import sync_client
from live_helpers import ROOT, wait_until

from engine.types import EventKind
from modes.live.replay import replay_session

STRATEGY = str(ROOT / "tests" / "modes" / "live" / "amend_strategies.py") + ":BracketOnce"
# seconds after HOLD_S (played only once the first session is dead): a sell prints through
# the entry (buy 0.01 at 59990.00) and fills it whole
EVENTS = [(2, EventKind.TRADE, -1, 5_999_000, 1_000)]


def _audit(run):
    path = run / "audit.jsonl"
    if not path.is_file():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.endswith("}")]


def _open_at_venue(ex, client_id) -> bool:
    import ccxt

    try:
        return ex.fetch_order(None, "BTC/USDT", {"origClientOrderId": client_id})["status"] == "open"
    except ccxt.OrderNotFound:
        return False


def _state(run):
    path = run / "contingent.json"
    return json.loads(path.read_text())["state"] if path.is_file() else None


def test_an_entry_filled_while_down_arms_the_bracket_on_resume(tmp_path, alice_env):
    with stepped_emulator(tmp_path, [market(EVENTS, 120)]) as (emu, stepper):
        _scenario(emu, stepper, tmp_path)


def _scenario(emu, stepper, tmp_path) -> None:
    ex = sync_client(emu, "alice")
    ex.load_markets()
    run1, run2 = tmp_path / "run1", tmp_path / "run2"
    first = start_testnet(emu, STRATEGY, tmp_path, run1)
    try:
        def resting_entry():  # saved working, and at the venue (a kill before it left would lose it)
            state = _state(run1)
            entry = {leg["role"]: leg for leg in state["legs"]}.get("entry", {}) if state else {}
            return entry.get("state") == "working" and _open_at_venue(ex, entry["id"])
        wait_until("the first session to rest its entry", resting_entry, 90)
    finally:
        first.send_signal(signal.SIGKILL)  # a crash while the entry works: nothing cancelled
        first.wait(10)
    legs = {leg["role"]: leg for leg in _state(run1)["legs"]}
    entry, sl, tp = legs["entry"], legs["stop_loss"], legs["take_profit"]
    assert entry["state"] == "working" and sl["state"] == tp["state"] == "pending", legs

    stepper.play.set()  # the entry fills at the venue while no session runs
    wait_until("the entry to fill at the venue", lambda: ex.fetch_order(
        None, "BTC/USDT", {"origClientOrderId": entry["id"]})["status"] == "closed", 90)

    resume_testnet(emu, STRATEGY, run1, run2)
    audit2 = _audit(run2)
    (restored,) = [r for r in audit2 if r.get("action") == "contingent_restored"]
    assert restored["working"] == {entry["id"]: entry["id"]} and restored["armed"] == []
    (looked,) = [r for r in audit2 if r.get("action") == "contingent_lookup"]
    assert looked["client_id"] == entry["id"]
    checks = [r for r in audit2 if r["type"] == "reconcile"]
    assert checks[0]["at"] == "start" and checks[0]["lookups"] == [entry["id"]], checks[0]
    assert all(r["ok"] for r in checks), [r for r in checks if not r["ok"]]
    # the entry's venue fill booked once, into the position
    fills = [r for r in audit2 if r.get("type") == "fill" and r.get("client_id") == entry["id"]]
    assert sum(Decimal(f["qty"]) for f in fills) == Decimal("0.01"), fills
    assert len({f["trade_id"] for f in fills}) == len(fills)
    positions = json.loads((run2 / "summary.json").read_text())["run"]["positions"]
    assert Decimal(positions["binance:BTC/USDT"]) == Decimal("0.01"), positions
    # the bracket goes on as if the fill had been seen live: stop armed, take-profit sent
    state = _state(run2)
    end = {leg["role"]: leg for leg in state["legs"]}
    assert end["entry"]["state"] == "filled" and end["stop_loss"]["state"] == "armed", end
    sellable = 1_000 - state["groups"][0]["fee_lots"]
    assert end["stop_loss"]["qty"] == end["take_profit"]["qty"] == sellable, end
    submits = [r for r in audit2 if r.get("action") == "submit" and "instrument" in r]  # the decisions
    assert [(s["client_id"], s["qty"]) for s in submits] == [(end["take_profit"]["id"], "0.00999")], submits
    acked = [r for r in audit2 if r.get("action") == "update" and r["client_id"] == end["take_profit"]["id"]]
    assert acked and acked[0]["event"] == "acknowledged", acked  # rested (the session's end cancels it)
    assert replay_session(run2, tmp_path / "replay").difference is None


# the entry fills 0.004 while the first session runs (the take-profit goes out for it),
# then 0.006 once it is dead
PARTLY = [(2, EventKind.TRADE, -1, 5_999_000, 400), (40, EventKind.TRADE, -1, 5_999_000, 600)]


def test_an_entry_part_filled_before_the_kill_books_only_the_fills_it_missed(tmp_path, alice_env):
    with stepped_emulator(tmp_path, [market(PARTLY, 120)]) as (emu, stepper):
        _partly(emu, stepper, tmp_path)


def test_a_contingent_json_without_trade_ids_books_only_the_fills_beyond_what_it_counts(tmp_path, alice_env, capfd):
    """The same, from a contingent.json written before trade ids were saved (`live_trades`
    stripped): which of the entry's venue trades the first session booked is unknown, only
    that it had filled 0.004; the lookup's earliest trades up to that are taken as booked
    (audited `inferred_booked`, said on the console) and only the 0.006 beyond is booked."""
    with stepped_emulator(tmp_path, [market(PARTLY, 120)]) as (emu, stepper):
        _partly(emu, stepper, tmp_path, strip_trade_ids=True)
    err = capfd.readouterr().err
    assert "contingent.json has no trade ids for" in err and "(filled 0.004)" in err, err


def _partly(emu, stepper, tmp_path, strip_trade_ids: bool = False) -> None:
    ex = sync_client(emu, "alice")
    ex.load_markets()
    run1, run2 = tmp_path / "run1", tmp_path / "run2"
    first = start_testnet(emu, STRATEGY, tmp_path, run1)
    try:
        def resting_entry():  # saved working, and at the venue (a kill before it left would lose it)
            state = _state(run1)
            entry = {leg["role"]: leg for leg in state["legs"]}.get("entry", {}) if state else {}
            return entry.get("state") == "working" and _open_at_venue(ex, entry["id"])
        wait_until("the first session to rest its entry", resting_entry, 90)
        stepper.play.set()

        def part_filled():
            state = _state(run1)
            legs = {leg["role"]: leg for leg in state["legs"]}
            return (legs["entry"]["filled"] == 400 and legs["take_profit"]["state"] == "working"
                    and state.get("live_trades", {}).get(legs["entry"]["id"])
                    and _open_at_venue(ex, legs["take_profit"]["id"]))
        wait_until("the entry's first fill and the take-profit saved", part_filled, 60)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    saved = _state(run1)
    legs = {leg["role"]: leg for leg in saved["legs"]}
    entry, tp = legs["entry"], legs["take_profit"]
    assert entry["state"] == "working" and entry["filled"] == 400, legs
    (first_trade,) = saved["live_trades"][entry["id"]]
    if strip_trade_ids:  # a contingent.json from before trade ids were saved
        path = run1 / "contingent.json"
        whole = json.loads(path.read_text())
        del whole["state"]["live_trades"]
        path.write_text(json.dumps(whole))
    wait_until("the rest of the entry to fill at the venue", lambda: ex.fetch_order(
        None, "BTC/USDT", {"origClientOrderId": entry["id"]})["status"] == "closed", 90)

    resume_testnet(emu, STRATEGY, run1, run2)
    audit2 = _audit(run2)
    checks = [r for r in audit2 if r["type"] == "reconcile"]
    assert checks[0]["adopted"] == [tp["id"]] and checks[0]["lookups"] == [entry["id"]], checks[0]
    assert all(r["ok"] for r in checks), [r for r in checks if not r["ok"]]
    # only the fill it missed is booked: the previous session's trade id is a duplicate
    fills = [r for r in audit2 if r.get("type") == "fill" and r.get("client_id") == entry["id"]]
    assert [Decimal(f["qty"]) for f in fills] == [Decimal("0.006")] and fills[0]["trade_id"] != first_trade, fills
    if strip_trade_ids:  # the first trade is taken as the one booked: nothing said it was
        (restored,) = [r for r in audit2 if r.get("action") == "contingent_restored"]
        assert restored["inferred"] == {entry["id"]: "0.004"}, restored
        inferred = [r for r in audit2 if r.get("type") == "inferred_booked"]
        assert [(r["client_id"], r["trade_id"], r["qty"], r["of"]) for r in inferred] == [
            (entry["id"], first_trade, "0.004", "0.004")], inferred
    else:
        assert [r["trade_id"] for r in audit2 if r.get("type") == "duplicate_fill"
                and r["client_id"] == entry["id"]] == [first_trade]
    positions = json.loads((run2 / "summary.json").read_text())["run"]["positions"]
    assert Decimal(positions["binance:BTC/USDT"]) == Decimal("0.01"), positions
    state = _state(run2)
    end = {leg["role"]: leg for leg in state["legs"]}
    assert end["entry"]["state"] == "filled" and end["entry"]["filled"] == 1_000, end
    assert end["stop_loss"]["state"] == "armed"
    sellable = 1_000 - state["groups"][0]["fee_lots"]
    assert end["stop_loss"]["qty"] == end["take_profit"]["qty"] == sellable, end
    # the adopted take-profit is resized to the whole position (an amend at the venue)
    assert [r for r in audit2 if r.get("action") == "amend" and r.get("client_id") == tp["id"]]
    assert replay_session(run2, tmp_path / "replay").difference is None
