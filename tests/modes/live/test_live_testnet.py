"""Testnet and live modes against the emulator (real ccxt.pro REST + websockets on
127.0.0.1): every order the session sent exists once at the venue, its fills are the venue's
(the emulator's ground-truth journal), the recording replays identically, and live mode
needs its confirmation."""

from __future__ import annotations

import json
from collections import defaultdict
from decimal import Decimal

import pyarrow.parquet as pq
import pytest
from live_helpers import session_config, write_session_toml

from engine.types import OrderStatus
from engine.types.orders import REASONS, ReasonSource
from modes.live import run_live
from modes.live.recording import read_journal
from modes.live.replay import replay_session
from venues.ccxt.confirm import LiveNotConfirmed
from venues.emulator import read_journal as emulator_journal

PARAMS = {"refresh_ms": 200, "half_spread_bps": 0, "qty": "0.01"}


def _venue_truth(emu, prefix: str):
    """The emulator's journal for our client ids: orders created, fills per client id."""
    entries = emulator_journal(emu.settings.out_dir / "journal.jsonl")
    created = [e["client_order_id"] for e in entries if e["event"] == "order_new"
               and str(e["client_order_id"]).startswith(prefix + "-")]
    fills = defaultdict(list)
    for e in entries:
        if e["event"] == "fill" and str(e.get("client_order_id", "")).startswith(prefix + "-"):
            fills[e["client_order_id"]].append((Decimal(e["price"]), Decimal(e["qty"])))
    return created, fills


@pytest.fixture(scope="module")
def testnet_run(live_emu, tmp_path_factory):
    import os

    os.environ["TP_TEST_KEY"], os.environ["TP_TEST_SECRET"] = "alice-key", "alice-secret"
    out = tmp_path_factory.mktemp("testnet") / "run"
    return run_live(session_config(live_emu, params=PARAMS), "testnet", out, duration_s=3, health=False,
                    write_html=False)


def test_every_order_reaches_the_venue_once_and_its_fills_are_the_venues(testnet_run, live_emu):
    prefix = read_journal(testnet_run)[0]["id_prefix"]
    created, venue_fills = _venue_truth(live_emu, prefix)
    orders = pq.read_table(testnet_run / "orders.parquet").to_pylist()
    local = {code.value for code, r in REASONS.items() if r.source != ReasonSource.VENUE}
    sent = {o["client_id"] for o in orders if o["type"] != "parent" and o["reason"] not in local}
    assert created and len(created) == len(set(created))  # no order twice
    assert set(created) == sent  # every order sent reached the venue; refused ones never left
    ours = defaultdict(list)
    for f in pq.read_table(testnet_run / "fills.parquet").to_pylist():
        ours[f["client_id"]].append((Decimal(f["price"]), Decimal(f["qty"])))
    assert dict(ours) == dict(venue_fills)  # 0 lost, 0 invented, same prices and quantities
    summary = json.loads((testnet_run / "summary.json").read_text())["run"]
    assert summary["mode"] == "testnet" and summary["open_orders"] == []


def test_the_audit_log_keeps_the_venues_raw_replies(testnet_run):
    replies = [json.loads(line) for line in (testnet_run / "audit.jsonl").read_text().splitlines()
               if '"venue_reply"' in line]
    commands = [r["report"] for r in replies if r["report"]["t"] == "command"]
    assert commands
    confirmed = [c for c in commands if c["outcome"] == "confirmed" and c["command"] == "submit"]
    assert confirmed and all(c["evidence"]["info"]["clientOrderId"] == c["client_id"] for c in confirmed)


def test_the_secrets_never_reach_the_run_directory(testnet_run):
    for path in testnet_run.iterdir():
        if path.suffix in (".json", ".jsonl", ".csv", ".html"):
            text = path.read_text()
            assert "alice-secret" not in text and "alice-key" not in text, path.name


def test_replay_of_a_testnet_session_is_identical(testnet_run, tmp_path):
    result = replay_session(testnet_run, tmp_path / "replay")
    assert result.difference is None, result.difference.text()
    assert result.steps > 0


def test_a_changed_venue_reply_is_the_first_difference(testnet_run, tmp_path):
    """The first fill the venue reported is edited in the recording (1 tick more): the replay
    stops at the venue_reply record that carries it."""
    import shutil

    copy = tmp_path / "tampered"
    shutil.copytree(testnet_run, copy)
    lines = (copy / "session.jsonl").read_text().splitlines()
    for k, line in enumerate(lines):
        rec = json.loads(line)
        fills = [r for r in rec.get("r", []) if r["t"] == "fill"]
        if fills:
            fills[0]["price"] += 1
            lines[k] = json.dumps(rec)
            break
    else:
        raise AssertionError("the session had no fill (the market maker quotes at the touch for 3 s)")
    (copy / "session.jsonl").write_text("\n".join(lines) + "\n")
    diff = replay_session(copy, tmp_path / "replay").difference
    assert diff is not None and diff.callback == "on_order"
    assert diff.actual["report"]["price"] == diff.expected["report"]["price"] + 1


def test_live_mode_needs_its_confirmation(live_emu, alice_env, tmp_path, monkeypatch):
    monkeypatch.delenv("TICKPARITY_CONFIRM_LIVE", raising=False)
    with pytest.raises(LiveNotConfirmed, match="confirmation 'yes' does not name the account 'alice'"):
        run_live(session_config(live_emu, params=PARAMS), "live", tmp_path / "no", duration_s=1, health=False,
                 confirm=lambda prompt: "yes")
    assert not (tmp_path / "no").exists()


def test_the_cli_runs_a_confirmed_live_session(live_emu, alice_env, tmp_path, monkeypatch, capsys):
    """`tickparity live --config RUN.toml` with TICKPARITY_CONFIRM_LIVE=<account> (unattended)."""
    from modes.cli import main

    monkeypatch.setenv("TICKPARITY_CONFIRM_LIVE", "alice")
    toml = write_session_toml(tmp_path / "run.toml", live_emu, params="refresh_ms = 200")
    code = main(["live", "--config", str(toml), "--duration", "1.5", "--no-report", "--no-health",
                 "--out", str(tmp_path / "live")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"run directory: {tmp_path / 'live'}" in out
    assert json.loads((tmp_path / "live" / "summary.json").read_text())["run"]["mode"] == "live"


def test_refused_credentials_and_an_unreachable_url_are_one_line_user_errors(live_emu, monkeypatch, tmp_path):
    """Checked before any stream starts (ccxt's websocket-API auth handler would fail on a
    refused key with a KeyError of its own): ConfigError naming the venue table."""
    import socket

    from engine.errors import ConfigError

    monkeypatch.setenv("TP_TEST_KEY", "alice-key")
    monkeypatch.setenv("TP_TEST_SECRET", "not-alice-secret")
    with pytest.raises(ConfigError, match=r"\[venues.binance\] .*refused the API key or secret"):
        run_live(session_config(live_emu, params=PARAMS), "testnet", tmp_path / "bad-key", duration_s=1,
                 health=False, write_html=False)
    monkeypatch.setenv("TP_TEST_SECRET", "alice-secret")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = session_config(live_emu, params=PARAMS, venue={"url": f"http://127.0.0.1:{port}"})
    with pytest.raises(ConfigError, match=r"\[venues.binance\] \(url http://127.0.0.1:\d+\): cannot reach the venue"):
        run_live(config, "testnet", tmp_path / "no-venue", duration_s=1, health=False, write_html=False)


def test_the_round_trips_and_the_user_streams_report_latencies_are_recorded(testnet_run):
    """latency.csv: each command's round trip from the session's time of the request (an
    audited `request`'s ts), numbered in send order (seq); report_latency.csv: one line per
    order state the user stream delivered, exactly its venue time and receipt - venue time
    as the journal recorded the report (a backtest's `latency.report_file`)."""
    audit = [json.loads(line) for line in (testnet_run / "audit.jsonl").read_text().splitlines()]
    requests = {r["ts"] for r in audit if r["type"] == "request"}
    lines = (testnet_run / "latency.csv").read_text().splitlines()
    assert lines[0] == "ts_ns,entry_ns,response_ns,command,seq,venue,entry_min_ns,entry_max_ns,held"
    rows = [line.split(",") for line in lines[1:]]
    assert rows and all(int(ts) in requests for ts, *_ in rows)
    assert {row[5] for row in rows} == {"binance"}
    by_seq = sorted((int(seq), int(ts)) for ts, _, _, _, seq, *_ in rows)
    assert len({s for s, _ in by_seq}) == len(by_seq)  # one number per command
    assert [ts for _, ts in by_seq] == sorted(ts for _, ts in by_seq)  # seq is the send order
    stream = [(r["exch_ts"], r["local_ts"] - r["exch_ts"], OrderStatus(r["status"]).name.lower())
              for step in read_journal(testnet_run) for r in step.get("r", ())
              if r["t"] == "state" and r["source"] == "stream" and r["exch_ts"] > 0]
    lines = (testnet_run / "report_latency.csv").read_text().splitlines()
    assert lines[0] == "ts_ns,response_ns,report,venue,stamp_ns"
    recorded = [(int(ts), int(lat), report) for ts, lat, report, venue, stamp in (line.split(",") for line in lines[1:])
                if venue == "binance" and stamp == "1000"]  # the session asked for µs venue times
    assert stream and recorded == stream
    assert all(ts % 1000 == 0 and lat >= 0 for ts, lat, _ in recorded)  # the venue's µs; receipt after it
    assert any(ts % 1_000_000 for ts, _, _ in recorded)  # not whole ms


def test_venue_times_are_the_venues_own_to_the_microsecond(testnet_run, live_emu):
    """The session asked the emulator for µs venue times (venues/ccxt/timeunit.py, Binance's
    X-MBX-TIME-UNIT / timeUnit). Pinned against the emulator's ground truth, its journal's
    market ns shown as a client sees them (+ the clock's shift, floored to the µs): every
    fill the session booked carries its fill's time; every confirmed submit's recorded
    arrival (latency.csv: request time + entry) is within the µs of the venue's acceptance
    (within its millisecond before); every depth row the session recorded (rows.bin, the
    rows a backtest of the session reads from market.duckdb) carries its window's end (a
    whole 100 ms of market time) to the µs, not 1000x off and not its millisecond."""
    import numpy as np

    from engine.types import EventKind
    from modes.live.recording import read_rows
    from venues.emulator.exchange import DEPTH_INTERVAL_NS

    shift = live_emu.call(lambda server: server.exchange.clock.shift_ns)
    prefix = read_journal(testnet_run)[0]["id_prefix"]
    entries = emulator_journal(live_emu.settings.out_dir / "journal.jsonl")

    def shown_us(market_ns: int) -> int:
        return (int(market_ns) + shift) // 1000 * 1000

    truth = {(e["client_order_id"], str(e["trade_id"])): shown_us(e["ts"]) for e in entries
             if e["event"] == "fill" and str(e.get("client_order_id", "")).startswith(prefix + "-")}
    ours = {(r["client_id"], str(r["trade_id"])): r["exch_ts"] for step in read_journal(testnet_run)
            for r in step.get("r", ()) if r["t"] == "fill"}
    assert ours and all(truth[key] == ts for key, ts in ours.items())
    assert any(ts % 1_000_000 for ts in ours.values())

    accepted = {e["client_order_id"]: shown_us(e["ts"]) for e in entries
                if e["event"] == "order_new" and str(e["client_order_id"]).startswith(prefix + "-")}
    audit = [json.loads(line) for line in (testnet_run / "audit.jsonl").read_text().splitlines()]
    confirmed = {(c["report"]["client_id"]) for c in audit if c["type"] == "venue_reply"
                 and c["report"]["t"] == "command" and c["report"]["command"] == "submit"
                 and c["report"]["outcome"] == "confirmed"}
    # the requests of one time in send order (the audit's order) are latency.csv's lines of
    # that time in seq order
    requests = defaultdict(list)
    for r in audit:
        if r["type"] == "request":
            requests[r["ts"]].append(r)
    lines = defaultdict(list)
    for ts, entry, _response, command, seq, *_ in (
            line.split(",") for line in (testnet_run / "latency.csv").read_text().splitlines()[1:]):
        lines[int(ts)].append((int(seq), command, int(entry)))
    arrivals = 0
    for ts, group in lines.items():
        for request, (_seq, command, entry) in zip(requests[ts], sorted(group), strict=True):
            assert request["action"] == command
            if command == "submit" and request["client_id"] in confirmed and request["client_id"] in accepted:
                arrivals += 1
                assert 0 <= ts + entry - accepted[request["client_id"]] < 1000
    assert arrivals

    book = read_rows(testnet_run)
    book = book[(book["kind"] == EventKind.BOOK_DELTA) & (book["exch_ts"] != book["local_ts"])]
    ends = np.unique(book["exch_ts"]) - shift  # the windows' ends in market ns, less the µs floor
    assert len(ends) > 5
    assert all(0 <= -int(e) % DEPTH_INTERVAL_NS < 1000 for e in ends)
