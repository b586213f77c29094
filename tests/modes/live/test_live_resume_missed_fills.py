"""Orders of ours that filled further while no session ran are booked once, at their real
trades, when a `--resume` session takes them over (issue 11; docs/contingent-orders.md
"Restart", docs/live.md "Warm restart").

A testnet session (`tickparity testnet` in a subprocess, real ccxt against the stepped
emulator) rests orders and is killed (SIGKILL) after some of them part-filled; more fills
come at the venue while no session runs; a `--resume` session adopts what is still open
and looks up what is not. Each fill the venue made (the emulator's journal: its ground
truth) is booked exactly once across the two sessions, at its trade's price, fee and fee
asset; the resumed session's position is the journal's net; every reconciliation is clean
(the balances the session started from held those fills already: they move the position
only); the replay of the resumed session is identical.

- plain orders (`RestTwo`): a buy part-filled before the kill and further while down (still
  open: adopted, looked up), a sell part-filled before the kill and filled while down (no
  longer open: looked up); the trades the first session booked are saved in
  contingent.json and not booked again;
- a contingent leg (`BracketOnce`): the bracket's resting take-profit part-fills while
  down; adopted and looked up, its fill counts for the leg (the stop-loss resized to the
  rest of the position) at the trade's price, not the order's limit.
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from decimal import Decimal

import pyarrow.parquet as pq
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
from venues.emulator import read_journal

STRATEGIES = str(ROOT / "tests" / "modes" / "live" / "amend_strategies.py")
# seconds after HOLD_S: the buy (0.01 at 59990) fills 0.004 and the sell (0.005 at 60010)
# 0.002 while the first session runs; once it is dead, the buy 0.003 more, the sell the rest
PLAIN = [(2, EventKind.TRADE, -1, 5_999_000, 400), (3, EventKind.TRADE, 1, 6_001_000, 200),
         (40, EventKind.TRADE, -1, 5_999_000, 300), (41, EventKind.TRADE, 1, 6_001_000, 300)]
# the bracket's entry (buy 0.01 at 59990) fills while the first session runs (the take-profit,
# sell 0.00999 at 61000, goes out); once it is dead a buy print fills the take-profit 0.005
LEG = [(2, EventKind.TRADE, -1, 5_999_000, 1_000), (40, EventKind.TRADE, 1, 6_100_000, 500)]


def _audit(run):
    path = run / "audit.jsonl"
    if not path.is_file():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.endswith("}")]


def _saved(run):
    path = run / "contingent.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _ledger_is_the_journal(emu, run1, run2) -> None:
    """Every venue fill of the session's orders booked once across both runs, as the venue
    made it; the resumed session's position is the journal's net; its fills table lists
    each of its fills once; every reconciliation clean; the replay identical."""
    prefix = json.loads((run1 / "session.jsonl").read_text().splitlines()[0])["id_prefix"]
    journal = [e for e in read_journal(emu.settings.out_dir / "journal.jsonl")
               if e["event"] == "fill" and e["account"] == "alice" and e["client_order_id"].startswith(prefix)]
    venue = {str(e["trade_id"]): (e["client_order_id"], Decimal(e["price"]), Decimal(e["qty"]),
                                  Decimal(e["commission"]), e["commission_asset"]) for e in journal}
    booked = [f for run in (run1, run2) for f in _audit(run) if f.get("type") == "fill"]
    counts = Counter(f["trade_id"] for f in booked)
    assert all(n == 1 for n in counts.values()), counts  # never twice, in either session
    ours = {f["trade_id"]: (f["client_id"], Decimal(f["price"]), Decimal(f["qty"]), Decimal(f["fee"]), f["fee_asset"])
            for f in booked}
    assert ours == venue, (ours, venue)  # none lost, none invented, each at its trade
    net = sum((q if e["side"] == "BUY" else -q) for e in journal for q in [Decimal(e["qty"])])
    positions = json.loads((run2 / "summary.json").read_text())["run"]["positions"]
    assert Decimal(positions["binance:BTC/USDT"]) == net, (positions, net)
    table = pq.read_table(run2 / "fills.parquet").to_pylist()
    assert sorted(r["trade_id"] for r in table) == sorted(f["trade_id"] for f in _audit(run2) if f.get("type") == "fill")
    checks = [r for r in _audit(run2) if r["type"] == "reconcile"]
    assert checks and all(r["ok"] for r in checks), [r for r in checks if not r["ok"]]
    assert replay_session(run2, run2.parent / "replay").difference is None


def test_plain_orders_that_filled_while_down_are_booked_once_at_their_trades(tmp_path, alice_env):
    with stepped_emulator(tmp_path, [market(PLAIN, 120)]) as (emu, stepper):
        _plain(emu, stepper, tmp_path)


def _plain(emu, stepper, tmp_path) -> None:
    ex = sync_client(emu, "alice")
    ex.load_markets()
    run1, run2 = tmp_path / "run1", tmp_path / "run2"
    first = start_testnet(emu, STRATEGIES + ":RestTwo", tmp_path, run1)
    try:
        def resting():
            saved = _saved(run1)
            return saved and len(saved["state"]["orders"]) == 2 and all(o["acked"] for o in saved["state"]["orders"].values())
        wait_until("the first session to rest its two orders", resting, 90)
        stepper.play.set()

        def part_filled():
            state = _saved(run1)["state"]
            return sorted(state["live_filled"].values()) == [200, 400] and len(state.get("live_trades", {})) == 2
        wait_until("both orders' first fills saved", part_filled, 60)
    finally:
        first.send_signal(signal.SIGKILL)  # a crash: nothing cancelled
        first.wait(10)
    saved = _saved(run1)
    state = saved["state"]
    buy = next(cid for cid, o in state["orders"].items() if o["side"] == 1)
    sell = next(cid for cid, o in state["orders"].items() if o["side"] == -1)
    assert state["live_filled"] == {buy: 400, sell: 200}
    assert Decimal(saved["positions"]["binance:BTC/USDT"][0]) == 400 - 200  # lots
    wait_until("the sell to fill and the buy to fill further at the venue", lambda: ex.fetch_order(
        None, "BTC/USDT", {"origClientOrderId": sell})["status"] == "closed" and ex.fetch_order(
        None, "BTC/USDT", {"origClientOrderId": buy})["filled"] == 0.007, 90)

    resume_testnet(emu, STRATEGIES + ":RestTwo", run1, run2)
    audit2 = _audit(run2)
    checks = [r for r in audit2 if r["type"] == "reconcile"]
    assert checks[0]["at"] == "start" and checks[0]["adopted"] == [buy], checks[0]
    assert checks[0]["lookups"] == [buy, sell], checks[0]
    looked = {r["client_id"]: r for r in audit2 if r.get("action") == "resume_lookup"}
    assert Decimal(looked[buy]["booked"]) == Decimal("0.004") and Decimal(looked[buy]["venue"]) == Decimal("0.007")
    assert Decimal(looked[sell]["booked"]) == Decimal("0.002")
    # only what each missed is booked; the first session's trades are duplicates
    fills = [r for r in audit2 if r.get("type") == "fill"]
    assert sorted((f["client_id"], Decimal(f["qty"])) for f in fills) == sorted(
        [(buy, Decimal("0.003")), (sell, Decimal("0.003"))]), fills
    dups = {r["trade_id"] for r in audit2 if r.get("type") == "duplicate_fill"}
    before = {t for ids in state["live_trades"].values() for t in ids}
    assert before <= dups and not before & {f["trade_id"] for f in fills}, (before, dups)
    (resumed,) = [r for r in audit2 if r.get("action") == "resumed"]
    assert sorted(resumed["ids"].split(",")) == sorted([buy, sell])
    assert not [r for r in audit2 if r.get("action") == "submit" and "instrument" in r]  # nothing sent again
    _ledger_is_the_journal(emu, run1, run2)


def test_a_take_profit_that_part_filled_while_down_is_booked_at_its_trade(tmp_path, alice_env):
    with stepped_emulator(tmp_path, [market(LEG, 120)]) as (emu, stepper):
        _leg(emu, stepper, tmp_path)


def _leg(emu, stepper, tmp_path) -> None:
    ex = sync_client(emu, "alice")
    ex.load_markets()
    run1, run2 = tmp_path / "run1", tmp_path / "run2"
    first = start_testnet(emu, STRATEGIES + ":BracketOnce", tmp_path, run1)
    try:
        def resting_entry():
            saved = _saved(run1)
            legs = {leg["role"]: leg for leg in saved["state"]["legs"]} if saved else {}
            return legs.get("entry", {}).get("state") == "working"
        wait_until("the first session to rest its entry", resting_entry, 90)
        stepper.play.set()

        def tp_resting():
            state = _saved(run1)["state"]
            legs = {leg["role"]: leg for leg in state["legs"]}
            tp = legs["take_profit"]
            return (legs["entry"]["state"] == "filled" and tp["state"] == "working"
                    and ex.fetch_order(None, "BTC/USDT", {"origClientOrderId": tp["id"]})["status"] == "open")
        wait_until("the entry filled and the take-profit resting", tp_resting, 60)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    state = _saved(run1)["state"]
    legs = {leg["role"]: leg for leg in state["legs"]}
    tp = legs["take_profit"]
    assert tp["filled"] == 0 and legs["stop_loss"]["state"] == "armed"
    wait_until("the take-profit to part-fill at the venue", lambda: ex.fetch_order(
        None, "BTC/USDT", {"origClientOrderId": tp["id"]})["filled"] == 0.005, 90)

    resume_testnet(emu, STRATEGIES + ":BracketOnce", run1, run2)
    audit2 = _audit(run2)
    checks = [r for r in audit2 if r["type"] == "reconcile"]
    assert checks[0]["adopted"] == [tp["id"]] and checks[0]["lookups"] == [tp["id"]], checks[0]
    fills = [r for r in audit2 if r.get("type") == "fill"]
    assert [(f["client_id"], Decimal(f["qty"]), Decimal(f["price"])) for f in fills] == [
        (tp["id"], Decimal("0.005"), Decimal("61000"))], fills
    assert Decimal(fills[0]["fee"]) > 0 and fills[0]["fee_asset"] == "USDT"  # the trade's fee, not 0
    end = {leg["role"]: leg for leg in _saved(run2)["state"]["legs"]}
    assert end["take_profit"]["filled"] == 500
    assert Decimal(end["take_profit"]["notional"]) == Decimal("61000") * Decimal("0.005")
    # the stop-loss follows the position the take-profit left
    group = _saved(run2)["state"]["groups"][0]
    assert end["stop_loss"]["qty"] == group["position"] - group["fee_lots"] == 1_000 - group["fee_lots"] - 500, end
    _ledger_is_the_journal(emu, run1, run2)
