"""`tickparity kill | approve | refuse | resume RUN`: the command files they post and their
one-line errors (the session side is tests/engine/test_engine_risk_control.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from engine.control import ControlInbox
from modes.cli import main


def test_kill_posts_one_atomic_command_with_who_and_why(tmp_path):
    listener = ControlInbox(tmp_path)
    listener.listen()  # what a running session's attach_control does
    assert main(["kill", str(tmp_path), "--flatten", "--max-slippage-bps", "30", "--why", "feed stale",
                 "--who", "dana"]) == 0
    (path,) = (tmp_path / "control" / "inbox").glob("*-kill.json")
    body = json.loads(path.read_text())
    assert {k: body[k] for k in ("command", "who", "why", "flatten", "max_slippage_bps", "order")} == {
        "command": "kill", "who": "dana", "why": "feed stale", "flatten": True, "max_slippage_bps": "30",
        "order": None}
    assert list((tmp_path / "control" / "tmp").iterdir()) == []  # renamed into the inbox, nothing left


def test_bad_commands_are_one_line_errors(tmp_path, capsys):
    assert main(["kill", str(tmp_path), "--max-slippage-bps", "-3"]) == 2
    assert main(["resume", str(tmp_path / "nope"), "--why", "x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["tickparity: error: --max-slippage-bps '-3': expected a number >= 0",
                   f"tickparity: error: no such run directory: {tmp_path / 'nope'}"]


def test_approve_without_an_order_lists_what_waits_and_a_finished_run_is_refused(tmp_path, capsys):
    assert main(["approve", str(tmp_path)]) == 2  # not a session's run directory: nothing to list
    assert "not a paper, testnet or live session's run directory" in capsys.readouterr().err
    (tmp_path / "session.jsonl").write_text("")
    ControlInbox(tmp_path).write_pending(["tp-7", "tp-9"])
    assert main(["approve", str(tmp_path)]) == 0
    assert "orders waiting for approval: tp-7, tp-9" in capsys.readouterr().out
    (tmp_path / "summary.json").write_text("{}")
    assert main(["refuse", str(tmp_path), "tp-7"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"tickparity: error: refuse {tmp_path}: its session has ended (summary.json is written); nothing was posted")
    assert not list(tmp_path.glob("control/inbox/*.json"))


def test_a_command_to_a_directory_no_session_reads_is_an_error_and_posts_nothing(tmp_path, capsys):
    """A mistyped path, an emulator's folder or a crashed session: before, `kill` printed
    "kill posted" and exited 0, and the operator believed the kill switch had fired
    (found by a new user's trial). A running session holds control/session.lock; the OS
    drops it when the process is killed (-9 here), so a crash never looks like a session."""
    assert main(["kill", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"tickparity: error: kill {tmp_path}: not a paper, testnet or live session's run directory "
        "(no session.jsonl); nothing was posted")
    (tmp_path / "session.jsonl").write_text("")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from engine.control import ControlInbox; "
         "ControlInbox(sys.argv[1]).listen(); print('listening', flush=True); time.sleep(60)", str(tmp_path)],
        stdout=subprocess.PIPE, text=True, cwd=os.getcwd(), env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        assert holder.stdout.readline().strip() == "listening"
        assert main(["kill", str(tmp_path), "--why", "test"]) == 0  # a session reads the inbox
        assert "kill posted" in capsys.readouterr().out
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
    time.sleep(0.05)
    assert main(["kill", str(tmp_path)]) == 2  # the session was killed: its lock went with it
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"tickparity: error: kill {tmp_path}: no session is running there"), err
    assert len(list((tmp_path / "control" / "inbox").glob("*-kill.json"))) == 1  # the one posted while it ran
    (tmp_path / "resumed_by.json").write_text(json.dumps({"by": "/runs/t4", "at": "2026-12-02T14:00:00Z"}))
    assert main(["kill", str(tmp_path)]) == 2  # a crashed run another session resumed: point there
    assert "it was resumed by /runs/t4: send the command there" in capsys.readouterr().err
