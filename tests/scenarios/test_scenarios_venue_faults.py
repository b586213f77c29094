"""Venue faults in the simulated venue, through scenario files: each venue invariant holds
for the example market maker (it watches `ctx.venue_health`) and is broken on purpose by the
same strategy blind to venue health (data/heedless.py); the venue's answers (reason codes,
Binance codes and HTTP statuses in the audit log, times) are pinned by hand.

Times: the synthetic data starts at 2024-01-01T00:00:00Z (T0); the market maker's timer fires
every 100 ms from T0 + 100 ms; entry and response latencies are 1 ms each (data/mm.toml).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import load_config_file, resolve
from modes.backtest import run_backtest
from scenarios import RunRecords, load_scenario

DATA = Path(__file__).parent / "data"
T0 = 1_704_067_200_000_000_000
S = 1_000_000_000
MS = 1_000_000


def run(scenario: str, strategy: str, out: Path) -> tuple[RunRecords, dict]:
    sc = load_scenario(DATA / scenario)
    config = sc.run_config(resolve(load_config_file(DATA / strategy), {}, base_dir=str(DATA)))
    run_dir = run_backtest(config, out, write_html=False, feed_transform=sc.feed_transform(),
                           venue_faults=sc.venue_faults())
    records = RunRecords(run_dir)
    return records, {r.name: r for r in (inv.check(records) for inv in sc.build_invariants())}


def faults(records: RunRecords) -> list[dict]:
    return [r for r in records.audit if r["type"] == "fault"]


@pytest.fixture(scope="module")
def maintenance(tmp_path_factory):
    out = tmp_path_factory.mktemp("maintenance")
    return run("venue-maintenance.toml", "mm.toml", out / "mm"), run("venue-maintenance.toml", "heedless.toml",
                                                                       out / "heedless")


def test_maintenance_cancel_only_then_halt(maintenance):
    (mm, results), (heedless, broken) = maintenance
    assert results["no_order_while_down"].status == "pass"
    assert {r.status for r in results.values()} == {"pass"}
    # the blind strategy keeps quoting: its first new order after the window opens is the violation
    inv = broken["no_order_while_down"]
    assert inv.status == "fail" and inv.violations[0].ts == T0 + 15 * S
    assert "while it is down (maintenance)" in inv.violations[0].message
    health = [(r["ts"], r["state"], r["reason"]) for r in heedless.audit if r.get("action") == "venue_health"]
    assert health == [(T0 + 15 * S, "down", "maintenance"), (T0 + 35 * S, "up", "maintenance over")]
    refused = [f for f in faults(heedless) if f["reason"] == "market_closed"]
    assert {(f["code"], f["msg"], f["http_status"]) for f in refused} == {(-2010, "Market is closed.", 400)}
    # cancel-only: new orders refused, cancels go through; halt: cancels refused as well
    assert {f["kind"] for f in refused if f["ts"] < T0 + 25 * S} == {"maintenance (cancel-only)"}
    assert {f["command"] for f in refused if f["ts"] < T0 + 25 * S} == {"submit"}
    assert {f["kind"] for f in refused if f["ts"] >= T0 + 25 * S} == {"maintenance (halt)"}
    assert all(T0 + 15 * S <= f["ts"] < T0 + 35 * S for f in refused)
    rejected = [o for o in heedless.orders if o["reason"] == "market_closed"]
    assert rejected and all(o["status"] == "rejected" and o["done_ts"] == o["created_ts"] + 1 * MS
                            for o in rejected)
    cancelled_in_window = [o for o in heedless.orders if o["status"] == "cancelled"
                           and o["cancel_req_ts"] is not None and T0 + 15 * S <= o["cancel_req_ts"] < T0 + 25 * S]
    assert cancelled_in_window  # cancel-only accepts cancels
    # the halt is a gap in the data: no trade of the venue between 25 s and 35 s
    assert not [f for f in heedless.fills if T0 + 25 * S < f["ts"] < T0 + 35 * S]


def test_rate_limit_storm_and_the_ban(tmp_path):
    mm, results = run("venue-rate-limit.toml", "mm.toml", tmp_path / "mm")
    assert results["no_ban"].status == "pass" and results["no_orphan_orders"].status == "pass"
    first = faults(mm)[0]
    # the first order request at or after 20 s meets the used-up window: 429 -1003, retry after the
    # minute resets (60 s - 20 s)
    assert (first["ts"], first["http_status"], first["code"], first["retry_after_s"]) == (T0 + 20 * S, 429, -1003, 40)
    states = [(r["ts"], r["state"]) for r in mm.audit if r.get("action") == "venue_health"]
    assert states == [(T0 + 20 * S + 1 * MS, "rate_limited")]  # up again at 60 s, after the data ends
    # the market maker sends nothing while rate limited
    assert not [r for r in mm.audit if r["type"] == "request" and T0 + 20 * S + MS <= r["ts"] < T0 + 60 * S]

    heedless, broken = run("venue-rate-limit.toml", "heedless.toml", tmp_path / "heedless")
    inv = broken["no_ban"]
    assert inv.status == "fail"
    # the 429s of 20.0 s came before the client could know; at 20.1 s and 20.2 s it sends on,
    # two requests each: more than ban_after (3) of them count, so the fourth (20.2 s, still a
    # 429) starts a ban of 2 minutes and every request from 20.3 s on is a 418 (the emulator's
    # rule: tests/venues/sim/test_sim_ban_after.py)
    assert [f["http_status"] for f in faults(heedless) if f["ts"] <= T0 + 20 * S + 200 * MS][-4:] == [429] * 4
    assert inv.violations[0].ts == T0 + 20 * S + 300 * MS
    bans = [f for f in faults(heedless) if f["http_status"] == 418]
    assert bans[0]["ts"] == T0 + 20 * S + 300 * MS and bans[0]["reason"] == "ip_banned"
    assert ("down", "ip banned (418)") in [(r["state"], r["reason"]) for r in heedless.audit
                                           if r.get("action") == "venue_health"]
    assert all(o["reason"] == "ip_banned" for o in heedless.orders
               if o["created_ts"] > T0 + 20 * S + 300 * MS and o["status"] == "rejected")


def test_disconnect_cancels_within(tmp_path):
    mm, results = run("venue-disconnect.toml", "mm.toml", tmp_path / "mm")
    assert results["cancel_on_disconnect_within"].status == "pass"
    heedless, broken = run("venue-disconnect.toml", "heedless.toml", tmp_path / "heedless")
    inv = broken["cancel_on_disconnect_within"]
    assert inv.status == "fail" and inv.violations[0].ts == T0 + 20 * S + 150 * MS
    # the user stream's events of the disconnect arrive at the reconnect, none inside it
    for records in (mm, heedless):
        answers = [r for r in records.audit if r["type"] in ("response", "fill") and T0 + 20 * S < r["ts"] < T0 + 30 * S]
        assert answers == []


def test_rejects_with_real_codes_and_a_latency_spike(tmp_path):
    records, results = run("venue-rejects.toml", "mm.toml", tmp_path / "mm")
    assert {r.status for r in results.values()} == {"pass"}
    refused = faults(records)
    assert [(f["code"], f["reason"], f["command"]) for f in refused] == [(-2010, "insufficient_balance", "submit")] * 3
    assert refused[0]["msg"] == "Account has insufficient balance for requested action."
    assert refused[0]["ts"] == T0 + 10 * S
    by_id = {o["client_id"]: o for o in records.orders}
    for f in refused:  # refused before the core saw them: rejected one response latency later
        o = by_id[f["client_id"]]
        assert (o["status"], o["reason"], o["done_ts"]) == ("rejected", "insufficient_balance", f["ts"] + MS)
    # the spike adds 200 ms to each leg (venues.sim spikes: entry by send time, response by venue
    # time) for orders sent in [20 s, 25 s): ack = send + (1 + 200) + (1 + 200) ms
    acks = {o["created_ts"]: o["ack_ts"] - o["created_ts"] for o in records.orders if o["ack_ts"] is not None
            and o["status"] != "rejected"}
    assert {d for t, d in acks.items() if T0 + 20 * S <= t < T0 + 25 * S - 300 * MS} == {402 * MS}
    assert {d for t, d in acks.items() if t < T0 + 10 * S} == {2 * MS}


def test_outage_and_lost_replies_are_ambiguous_and_resolved_by_lookup(tmp_path):
    mm, results = run("venue-outage.toml", "mm.toml", tmp_path / "mm")
    assert {r.status for r in results.values()} == {"pass"}
    heedless, broken = run("venue-outage.toml", "heedless.toml", tmp_path / "heedless")
    assert broken["no_order_while_down"].violations[0].ts == T0 + 15 * S
    for records in (mm, heedless):
        outage = [f for f in faults(records) if f["kind"] == "outage"]
        assert outage and {f["answer"] for f in outage} == {"ambiguous"}
        ambiguous = {r["client_id"]: r["ts"] for r in records.audit
                     if r["type"] == "response" and r.get("outcome") == "ambiguous"}
        # a request into the outage times out after ccxt's 10 s; a lost reply comes back at once
        for f in faults(records):
            assert ambiguous[f["client_id"]] == f["ts"] + (10 * S if f["kind"] == "outage" else MS)
        # every ambiguous command is looked up (never resent)
        lookups = {r["client_id"] for r in records.audit if r["type"] == "request" and r.get("action") == "lookup"}
        assert lookups == set(ambiguous)
    # the venue never received the orders sent into the outage: the lookup (answered once the
    # venue is back, at 30 s + 1 ms) rejects them not_received; the lost replies' orders exist
    by_id = {o["client_id"]: o for o in heedless.orders}
    into_outage = [f["client_id"] for f in faults(heedless) if f["kind"] == "outage" and f["command"] == "submit"]
    assert into_outage and all((by_id[c]["status"], by_id[c]["reason"], by_id[c]["done_ts"])
                               == ("rejected", "not_received", T0 + 30 * S + MS) for c in into_outage)
    lost = [f["client_id"] for f in faults(mm) if f["kind"] == "response_lost"]
    by_id = {o["client_id"]: o for o in mm.orders}
    assert len(lost) == 2 and all(by_id[c]["status"] != "rejected" and by_id[c]["ack_ts"] is not None for c in lost)


def test_partial_fill_drought_cuts_every_passive_fill_inside_its_window(tmp_path):
    # the market maker quotes 0.01 BTC (1,000 lots of 0.00001): inside [10 s, 40 s) no fill
    # can exceed floor(1,000 x 0.0225) = 22 lots = 0.00022 BTC; outside, fills are larger
    from decimal import Decimal

    mm, results = run("venue-fill-drought.toml", "mm.toml", tmp_path / "mm")
    assert {r.status for r in results.values()} == {"pass"}
    inside = [f for f in mm.fills if T0 + 10 * S <= f["ts"] < T0 + 40 * S]
    outside = [f for f in mm.fills if not T0 + 10 * S <= f["ts"] < T0 + 40 * S]
    assert inside and max(Decimal(f["qty"]) for f in inside) <= Decimal("0.00022")
    assert max(Decimal(f["qty"]) for f in outside) > Decimal("0.00022")
    assert all(f["liquidity"] == "maker" for f in inside)
