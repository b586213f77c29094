"""`tickparity kill | approve | refuse | resume RUN`: the command files they post and their
one-line errors (the session side is tests/engine/test_engine_risk_control.py)."""

from __future__ import annotations

import json

from engine.control import ControlInbox
from modes.cli import main


def test_kill_posts_one_atomic_command_with_who_and_why(tmp_path):
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


def test_approve_without_an_order_lists_what_waits_and_a_finished_run_warns(tmp_path, capsys):
    ControlInbox(tmp_path).write_pending(["tp-7", "tp-9"])
    assert main(["approve", str(tmp_path)]) == 0
    assert "orders waiting for approval: tp-7, tp-9" in capsys.readouterr().out
    (tmp_path / "summary.json").write_text("{}")
    assert main(["refuse", str(tmp_path), "tp-7"]) == 0
    assert "its session has ended" in capsys.readouterr().err
