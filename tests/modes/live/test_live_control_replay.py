"""Operator commands reach a running testnet session (real ccxt.pro on 127.0.0.1 against the
emulator) and are journaled, so `tickparity replay` of the session applies them at the same
step: a session that received `tickparity kill` replays byte-identically."""

from __future__ import annotations

import json
import threading
import time

import pyarrow.parquet as pq
from live_helpers import session_config

from engine.control import ControlInbox
from modes.live import run_live
from modes.live.recording import read_journal
from modes.live.replay import replay_session

PARAMS = {"refresh_ms": 100, "half_spread_bps": 0, "qty": "0.01"}


def _post_when_started(out, command: str, after_s: float, **kw) -> threading.Thread:
    """Post `command` into the session's inbox `after_s` after the session attached it."""
    def post() -> None:
        deadline = time.monotonic() + 300  # a first run may compile the kernels
        while time.monotonic() < deadline:
            if (out / "control" / "pending.json").is_file():
                time.sleep(after_s)
                ControlInbox(out).post(command, who="test", why=f"test {command}", **kw)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=post, daemon=True)
    thread.start()
    return thread


def test_a_killed_testnet_session_replays_identically(live_emu, alice_env, tmp_path):
    out = tmp_path / "run"
    poster = _post_when_started(out, "kill", 1.0)
    run_live(session_config(live_emu, params=PARAMS), "testnet", out, duration_s=3, health=False,
             write_html=False)
    poster.join(1)
    steps = [r for r in read_journal(out) if "ctl" in r]
    assert [c["command"] for r in steps for c in r["ctl"]] == ["kill"]
    ctl_now = steps[0]["now"]
    audit = [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines()]
    kills = [r for r in audit if r.get("action") == "kill"]
    assert [(k["who"], k["reason"]) for k in kills] == [("operator:test", "test kill")]
    # after the kill no order is created (the kill switch refuses new submits)
    orders = pq.read_table(out / "orders.parquet").to_pylist()
    assert orders and all(o["created_ts"] <= ctl_now for o in orders if o["status"] != "rejected")
    result = replay_session(out, tmp_path / "replay")
    assert result.identical, result.difference.text()


def test_a_replay_without_the_journaled_command_differs_after_it(live_emu, alice_env, tmp_path):
    """The command is what the replay applies: the same recording with its control step
    removed reports a difference (the kill's audit record is not produced)."""
    out = tmp_path / "run"
    poster = _post_when_started(out, "kill", 0.8)
    run_live(session_config(live_emu, params=PARAMS), "testnet", out, duration_s=2, health=False,
             write_html=False)
    poster.join(1)
    journal = out / "session.jsonl"
    lines = journal.read_text().splitlines()
    kept = [line for line in lines if '"ctl"' not in line]
    assert len(kept) == len(lines) - 1
    journal.write_text("\n".join(kept) + "\n")
    result = replay_session(out, tmp_path / "replay")
    assert not result.identical
