"""Requests a venue's rate-limit hold refused in a session (latency.csv `held`,
venues/sim/latency.py held_requests): read in turn beside the other lines, refused again by
a backtest's venue with the session's reason at the session's time, and covered by the run's
venue model; a latency.csv written before the column loads and backtests as before.
Hand-written files; the session end to end is tests/modes/live/test_live_rate_limits.py."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from engine.errors import ConfigError
from modes.cli import main
from venues.sim import SimVenueConfig
from venues.sim.config import load_recorded_latency
from venues.sim.latency import held_requests, recorded_requests_in_turn, refusal_windows

ROOT = Path(__file__).resolve().parents[3]
HEADER = "ts_ns,entry_ns,response_ns,command,seq,venue,entry_min_ns,entry_max_ns,held\n"
T0 = 1_704_067_200_000_000_000  # synthetic:11's first row: the backtest's start
S = 1_000_000_000
MS = 1_000_000
#: a file as the recorder wrote it before `held` (8 columns): its venue model and the
#: fills of the market maker on it, as the code before the column computed them
OLD_FILE = ("ts_ns,entry_ns,response_ns,command,seq,venue,entry_min_ns,entry_max_ns\n"
            "1704067205000000000,2500000,3000000,submit,1,binance,,\n"
            "1704067205000000000,4000000,2000000,submit,2,binance,1000000,5000000\n"
            "1704067230000000000,9000000,4000000,cancel,3,binance,,\n"
            "1704067250000000000,1500000,1200000,submit,4,binance,,\n")
OLD_VENUE_MODEL = "33cafc98470dcaeb"
OLD_FILLS_SHA256 = "5ef717b12f2ea696"


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_held_lines_take_their_turn_and_leave_the_kernels_tables(tmp_path):
    """At 1 s: submit seq 1 refused by the session itself while a 429 held (`-local`, entry
    0, the refusal 80 us after the decision), submit seq 2 answered 429 by the venue (an
    estimated entry, no window), submit seq 3 acknowledged, a refused post-only submit seq 4
    (its window), and a cancel that met a 418. held_requests lists the three held ones with
    their turn among all requests of their kind and time (0, 1; the cancel 0); the kernel's
    in-turn entries and refusal windows count only the others (the acknowledged submit is
    turn 0 there, the refused one turn 1); the local refusal is no latency sample."""
    path = _write(tmp_path / "latency.csv", HEADER + "\n".join([
        "1000000000,0,80000,submit,1,sim,,,rate_limited-local",
        "1000000000,3000000,900000,submit,2,sim,,,rate_limited",
        "1000000000,5000000,1000000,submit,3,sim,,",
        "1000000000,6000000,2000000,submit,4,sim,1000000,7000000",
        "1000000000,4000000,1000000,cancel,5,sim,,,ip_banned",
        "2000000000,7000000,1000000,submit,6,sim,,"]) + "\n")
    assert held_requests(path, "sim").tolist() == [
        [S, 1, 0, 1, 1, 80_000], [S, 1, 1, 1, 0, 3_900_000], [S, 2, 0, 2, 0, 5_000_000]]
    assert recorded_requests_in_turn(path, "sim").tolist() == [
        [S, 1, 5 * MS], [S, 1, 6 * MS], [2 * S, 1, 7 * MS]]
    assert refusal_windows(path, "sim").tolist() == [[S, 1, MS, 7 * MS, 8 * MS]]
    assert load_recorded_latency(path, "", "sim")[:, 1].tolist() == [3 * MS, 5 * MS, 6 * MS, 4 * MS, 7 * MS]
    cfg = SimVenueConfig.from_table("sim", {"latency": {"model": "recorded", "file": path}})
    assert cfg.held_requests.tolist() == held_requests(path, "sim").tolist()


@pytest.mark.parametrize(("line", "message"), [
    ("1000,0,80,submit,1,sim,,,rate_limted-local", "held 'rate_limted-local': expected one of rate_limited, "
                                                   "rate_limited-local, ip_banned, ip_banned-local or empty"),
    ("1000,0,80,,1,sim,,,rate_limited", "held 'rate_limited' on a line without a command"),
    ("1000,10,80,submit,1,sim,5,9,ip_banned", "entry_min_ns,entry_max_ns with held 'ip_banned'"),
])
def test_a_malformed_held_column_is_refused_naming_the_line(tmp_path, line, message):
    path = _write(tmp_path / "latency.csv", HEADER + "1000,10,80,submit,2,sim,,\n" + line + "\n")
    with pytest.raises(ConfigError, match="latency.csv:3: ") as err:
        held_requests(path, "sim")
    assert message in str(err.value)


def test_the_held_requests_are_part_of_the_venue_model(tmp_path):
    """The same file with a request marked held is another venue model (its bytes, and the
    held rows themselves), so two backtests of one session with and without the session's
    holds never share a run id."""
    base = HEADER + "1000000,50000,5000,submit,1,sim,,\n"
    plain = SimVenueConfig.from_table("sim", {"latency": {"model": "recorded",
                                                          "file": _write(tmp_path / "a.csv", base + "1000000,50000,5000,submit,2,sim,,\n")}})
    held = SimVenueConfig.from_table("sim", {"latency": {"model": "recorded",
                                                         "file": _write(tmp_path / "b.csv", base + "1000000,0,5000,submit,2,sim,,,rate_limited-local\n")}})
    assert held.config_hash != plain.config_hash
    body = held.held_requests.tolist()
    assert body == [[1_000_000, 1, 1, 1, 1, 5000]]


def _market_maker(tmp_path: Path, latency: str, name: str) -> Path:
    """The example market maker (refresh 200 ms) backtested on synthetic:11 for 1 min with
    `latency` as the recorded order latency; returns the run directory."""
    _write(tmp_path / f"{name}.toml", f'''[run]
strategy = "{ROOT / 'examples' / 'market_maker.py'}:MarketMaker"
instruments = ["binance:BTC/USDT"]
data = "synthetic:11:1m"
[run.params]
half_spread_bps = "0.5"
refresh_ms = 200
[venues.binance]
balances = {{ USDT = "1000000", BTC = "10" }}
latency = {{ model = "recorded", file = "{latency}" }}
''')
    out = tmp_path / name
    assert main(["backtest", "--config", str(tmp_path / f"{name}.toml"), "--out", str(out), "--no-report"]) == 0
    return out


def test_a_latency_file_from_before_the_held_column_backtests_as_before(tmp_path):
    """A session's latency.csv of 8 columns (the recorder before `held`): the same venue
    model (config.json `venue_models`) and the same fills as the code before the column gave
    (pinned: OLD_VENUE_MODEL, OLD_FILLS_SHA256)."""
    run = _market_maker(tmp_path, _write(tmp_path / "latency.csv", OLD_FILE), "old")
    assert json.loads((run / "config.json").read_text())["venue_models"] == {"binance": OLD_VENUE_MODEL}
    fills = pq.read_table(run / "fills.parquet").to_pylist()
    assert len(fills) == 54
    assert hashlib.sha256(json.dumps(fills, default=str).encode()).hexdigest()[:16] == OLD_FILLS_SHA256


def test_a_backtest_refuses_the_held_requests_with_the_sessions_reason_and_time(tmp_path):
    """The market maker quotes both sides every 200 ms (a buy then a sell submit per timer).
    The file says the session's buy at 1 s was refused locally while a 429 held (its refusal
    90 us after the decision) and its sell met the venue's 418 (the refusal 4.2 ms after);
    the sell at 1.2 s was acknowledged with entry 7 ms. The backtest refuses the two at 1 s
    with those reasons at those times, before they reach the venue (the sell of 1.2 s is the
    first submit of its time the kernel times: its entry 7 ms); nothing else is refused.
    Run twice: the same orders."""
    lines = OLD_FILE.replace("entry_max_ns\n", "entry_max_ns,held\n") + "\n".join([
        f"{T0 + S},0,90000,submit,10,binance,,,rate_limited-local",
        f"{T0 + S},1000000,3200000,submit,11,binance,,,ip_banned",
        f"{T0 + 1200 * MS},5000000,2000000,submit,12,binance,,,rate_limited-local",
        f"{T0 + 1200 * MS},7000000,2000000,submit,13,binance,,"]) + "\n"
    latency = _write(tmp_path / "latency.csv", lines)
    runs = [_market_maker(tmp_path, latency, name) for name in ("held", "again")]
    orders = [sorted(pq.read_table(r / "orders.parquet").to_pylist(), key=lambda o: o["created_ts"]) for r in runs]
    assert orders[0] == orders[1]
    at = {(o["created_ts"] - T0, o["side"]): o for o in orders[0]}
    buy, sell = at[(S, "buy")], at[(S, "sell")]
    assert (buy["status"], buy["reason"], buy["done_ts"] - buy["created_ts"]) == ("rejected", "rate_limited", 90_000)
    assert (sell["status"], sell["reason"], sell["done_ts"] - sell["created_ts"]) == ("rejected", "ip_banned",
                                                                                      4_200_000)
    assert at[(1200 * MS, "buy")]["reason"] == "rate_limited"
    # entry 7 ms; the response held at the mean of the records around its venue time (2, 3 ms)
    assert at[(1200 * MS, "sell")]["ack_ts"] - 1200 * MS - T0 == 9_500_000
    assert all(o["reason"] is None or o["created_ts"] - T0 in (S, 1200 * MS) or o["reason"] == "user_cancel"
               for o in orders[0])  # no other refusal


def test_health_lines_are_the_sessions_venue_health_and_no_round_trip(tmp_path):
    """`health` lines (the venue health the session applied, modes/live/recording.py
    venue_health): read by recorded_health in time order, left out of the latency samples,
    the in-turn entries and the held requests; part of the venue model; a bad state is
    refused naming the line."""
    from venues.sim.latency import recorded_health

    body = HEADER + ("1000000,50000,5000,submit,1,sim,,\n"
                     "3000000,0,0,health,,sim,,,up\n"
                     "2000000,0,0,health,,sim,,,rate_limited\n"
                     "2000000,0,0,health,,okx,,,down\n")
    path = _write(tmp_path / "latency.csv", body)
    assert recorded_health(path, "sim").tolist() == [[2_000_000, 2], [3_000_000, 0]]
    assert load_recorded_latency(path, "", "sim").tolist() == [[1_000_000, 50_000, 5_000]]
    assert recorded_requests_in_turn(path, "sim").tolist() == [[1_000_000, 1, 50_000]]
    assert held_requests(path, "sim").shape == (0, 6)
    cfg = SimVenueConfig.from_table("sim", {"latency": {"model": "recorded", "file": path}})
    plain = SimVenueConfig.from_table("sim", {"latency": {"model": "recorded", "file": _write(
        tmp_path / "plain.csv", HEADER + "1000000,50000,5000,submit,1,sim,,\n")}})
    assert cfg.recorded_health.tolist() == [[2_000_000, 2], [3_000_000, 0]]
    assert cfg.config_hash != plain.config_hash
    _write(tmp_path / "bad.csv", body + "4000000,0,0,health,,sim,,,sideways\n")
    with pytest.raises(ConfigError, match=r"bad.csv:6: a health line: expected ts_ns,0,0,health,,venue,,,STATE"):
        recorded_health(str(tmp_path / "bad.csv"), "sim")


def test_a_backtest_takes_the_sessions_venue_health(tmp_path):
    """The example market maker sends nothing while its venue is not "up". The file says
    the session's venue was "rate_limited" from 1.1 s to 2.05 s (a 429's hold): the
    backtest's timers of 1.2 s to 2.0 s send nothing, those before and after quote both
    sides, as the session's did."""
    latency = _write(tmp_path / "latency.csv", OLD_FILE.replace("entry_max_ns\n", "entry_max_ns,held\n")
                     + f"{T0 + 1100 * MS},0,0,health,,binance,,,rate_limited\n"
                       f"{T0 + 2050 * MS},0,0,health,,binance,,,up\n")
    run = _market_maker(tmp_path, latency, "health")
    made = {o["created_ts"] - T0 for o in pq.read_table(run / "orders.parquet").to_pylist()}
    assert not {t for t in made if 1100 * MS <= t < 2050 * MS}
    assert {1000 * MS, 2200 * MS} <= made
    audit = [json.loads(line) for line in (run / "audit.jsonl").read_text().splitlines()]
    assert [(r["ts"] - T0, r["state"]) for r in audit if r.get("action") == "venue_health"] == [
        (1100 * MS, "rate_limited"), (2050 * MS, "up")]


def test_a_compiled_strategy_is_refused_with_held_requests_and_runs_with_health_lines(tmp_path, capsys):
    """examples/compiled_market_maker.py: its orders never cross the Python adapter that
    refuses the held requests, so a file with `held` lines is refused naming the venue (and
    nothing is written); `health` lines alone change nothing it can read (it never asks the
    venue's health): it runs."""
    def run(lines: str, name: str) -> int:
        latency = _write(tmp_path / f"{name}.csv", OLD_FILE.replace("entry_max_ns\n", "entry_max_ns,held\n") + lines)
        _write(tmp_path / f"{name}.toml", f'[run]\nstrategy = "{ROOT}/examples/compiled_market_maker.py:CompiledTouchQuoter"\n'
               'data = "synthetic:5:5s"\nseed = 3\n[run.params]\nqty = "0.01"\nevery_ms = 100\n'
               '[venues.binance]\nbalances = { USDT = "100000", BTC = "1" }\n'
               f'latency = {{ model = "recorded", file = "{latency}" }}\n')
        return main(["backtest", "--config", str(tmp_path / f"{name}.toml"), "--out", str(tmp_path / name),
                     "--no-report"])

    assert run(f"{T0 + S},0,90000,submit,10,binance,,,rate_limited-local\n", "held") == 2
    assert capsys.readouterr().err.strip().endswith(
        "error: [venues.binance] latency.file's held requests (a session's rate-limit holds): needs a Python "
        "strategy (a compiled strategy's orders never cross the Python venue adapter; set fast_path = False on the "
        "strategy class)")
    assert not (tmp_path / "held").exists()
    assert run(f"{T0 + S},0,0,health,,binance,,,rate_limited\n", "health") == 0
