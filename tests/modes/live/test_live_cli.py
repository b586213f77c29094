"""`tickparity paper` as a user runs it, in its own process against the emulator: Ctrl-C
stops it cleanly (complete run directory, nothing left open), and a killed session leaves a
recording that `tickparity replay` re-runs as far as it goes (at most the last second lost)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

from live_helpers import ROOT, write_session_toml

from engine.audit import _resume_point
from modes.live.recording import read_journal, read_rows
from modes.live.replay import replay_session


def _start(live_emu, tmp_path, name: str) -> tuple[subprocess.Popen, object]:
    toml = write_session_toml(tmp_path / "paper.toml", live_emu, params="refresh_ms = 100\nhalf_spread_bps = 0",
                              keys=False)
    out = tmp_path / name
    proc = subprocess.Popen([sys.executable, "-m", "modes.cli", "paper", "--config", str(toml), "--out", str(out),
                             "--no-report", "--no-health"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # until the session has started (its start step is recorded)
        journal = out / "session.jsonl"
        if journal.exists() and '"start":1' in journal.read_text():
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    time.sleep(2.5)  # a few flushes
    return proc, out


def test_ctrl_c_stops_a_session_cleanly(live_emu, tmp_path):
    proc, out = _start(live_emu, tmp_path, "interrupted")
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert f"run directory: {out}" in stdout
    summary = json.loads((out / "summary.json").read_text())["run"]
    assert summary["open_orders"] == [] and summary["orders"] > 0
    assert "stop" in read_journal(out)[-1]


def test_a_killed_session_replays_as_far_as_it_was_recorded(live_emu, tmp_path):
    proc, out = _start(live_emu, tmp_path, "killed")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert not (out / "summary.json").exists()
    journal = read_journal(out)
    steps = [r for r in journal[1:] if "now" in r]
    assert len(steps) > 10 and len(read_rows(out)) > 0  # the recording reaches into the last seconds
    # the audit log is flushed record by record: every line on disk is a whole record and the
    # chain verifies up to the last one, though the log was never closed
    copy = tmp_path / "audit-copy.jsonl"
    copy.write_bytes((out / "audit.jsonl").read_bytes())
    found = _resume_point(copy)
    records = [json.loads(line) for line in copy.read_text().splitlines()]
    assert found["records"] == len(records) > 1 and not found["closed"]
    result = replay_session(out, tmp_path / "recovered")
    assert result.difference is None, result.difference.text()
    assert result.crashed
    assert (tmp_path / "recovered" / "orders.parquet").is_file()  # the session's tables, rebuilt


def _kill_says(tmp_path, run) -> str:
    r = subprocess.run([sys.executable, "-m", "modes.cli", "kill", str(run), "--why", "t"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r
    (line,) = r.stderr.strip().splitlines()
    return line


def test_kill_on_a_crashed_session_suggests_a_resume_that_works(live_emu, tmp_path, alice_env):
    """`tickparity kill` on a killed session suggested `--resume RUN` for every run, and the
    resume was then refused (`no contingent.json`) where there was nothing to resume. Now it
    suggests the resume only for a testnet/live session that left its contingent.json, with
    its mode and config file, and that command, run as printed, takes the session over;
    a paper session's and one that never had an order say there is nothing to resume."""
    import shlex

    toml = write_session_toml(tmp_path / "tn.toml", live_emu, params="refresh_ms = 100\nhalf_spread_bps = 5")
    out = tmp_path / "crashed"
    proc = subprocess.Popen([sys.executable, "-m", "modes.cli", "testnet", "--config", str(toml), "--out", str(out),
                             "--no-report", "--no-health"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    journal = out / "session.jsonl"
    while not ((out / "contingent.json").exists()  # it had an order: its state is saved
               and journal.exists() and '"start":1' in journal.read_text()):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    time.sleep(1.5)  # the recording's once-a-second flush
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    line = _kill_says(tmp_path, out)
    command = line.split("`")[1]
    assert command == f"tickparity testnet --config {toml} --resume {out}", line
    r = subprocess.run([sys.executable, "-m", "modes.cli", "replay", str(out)], cwd=tmp_path, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0 and f"the session did not stop: its open orders and armed stops are taken over by " \
        f"`{command}`" in r.stdout, r
    resumed = tmp_path / "resumed"
    argv = shlex.split(command)[1:]
    r = subprocess.run([sys.executable, "-m", "modes.cli", "--log-level", "info", *argv, "--out", str(resumed),
                        "--duration", "2", "--no-report", "--no-health"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    # its clean start reconciliation adopted the killed session's open orders (audited); an
    # ok reconciliation is one line (a warning only when it names adopted or foreign orders)
    lines = [line for line in r.stderr.splitlines() if "reconciliation" in line or "adopted" in line]
    assert all(": reconciliation (start): ok" in line for line in lines), r.stderr
    assert '"action":"adopt"' in (resumed / "audit.jsonl").read_text()
    assert (resumed / "summary.json").is_file()
    assert f"it was resumed by {resumed}: send the command there" in _kill_says(tmp_path, out)

    # a testnet session that never had an order left no contingent.json: nothing to resume
    (out / "resumed_by.json").unlink()
    (out / "contingent.json").unlink()
    assert "it left no contingent.json (it never had an order)" in _kill_says(tmp_path, out)
    r = subprocess.run([sys.executable, "-m", "modes.cli", "testnet", "--config", str(toml), "--resume", str(out)],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "no contingent.json" in r.stderr  # what the message says a resume would meet

    paper, _ = _start(live_emu, tmp_path, "paper-killed")
    paper.send_signal(signal.SIGKILL)
    paper.communicate(timeout=30)
    assert "a paper session has no venue orders to take over" in _kill_says(tmp_path, tmp_path / "paper-killed")
