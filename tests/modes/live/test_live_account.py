"""The account a testnet/live session trades (issue #11): its name must be a real name,
the live confirmation never accepts an empty answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from live_helpers import RESTER, ROOT, session_config, wait_until, write_session_toml

from engine.errors import ConfigError
from modes.live import run_live
from modes.live.recording import read_journal
from venues.ccxt.confirm import ENV, LiveNotConfirmed, confirm_live


@pytest.mark.parametrize(("key", "value", "why"), [
    ("account", "", r"expected the account's name \(a non-empty string\)"),
    ("account", "   ", r"expected the account's name \(a non-empty string\)"),
    ("account", 5, r"expected the account's name \(a string in quotes, not a number\)"),
    ("account", " alice", "has blanks around it"),
    ("exchange", "", r"expected a ccxt.pro exchange id \(a non-empty string\)"),
    ("url", "", r"expected the venue's base URL \(a non-empty string\)"),
    ("api_key_env", 7, r"expected the name of an environment variable \(a string in quotes, not a number\)"),
    ("secret_env", "", r"expected the name of an environment variable \(a non-empty string\)"),
    ("secrets_file", True, r"expected a path to a 0600 secrets file \(a string in quotes, not a boolean\)"),
])
@pytest.mark.parametrize("mode", ["backtest", "paper", "testnet", "live"])
def test_a_live_key_must_be_a_non_empty_string_in_every_mode(live_emu, alice_env, tmp_path, monkeypatch,
                                                             key, value, why, mode):
    """A one-line ConfigError naming the table and key, before any run directory (an empty
    account used to be confirmed by an empty answer; `account = 5` asked for '5')."""
    from modes.backtest import run_backtest

    monkeypatch.setenv(ENV, "")  # the trial's empty confirmation
    config = session_config(live_emu, venue={key: value})
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match=rf"\[venues\.binance\] {key} = .*: {why}"):
        if mode == "backtest":
            run_backtest(config, out, write_html=False)
        else:
            run_live(config, mode, out, duration_s=1, health=False, confirm=lambda prompt: "")
    assert not out.exists()


def test_the_cli_refuses_an_empty_account_with_one_line_and_no_run_directory(live_emu, alice_env, tmp_path,
                                                                             monkeypatch, capsys):
    """The trial's command: `account = ""` and `TICKPARITY_CONFIRM_LIVE=` (empty) traded."""
    from modes.cli import main

    toml = write_session_toml(tmp_path / "run.toml", live_emu, params="refresh_ms = 200")
    toml.write_text(toml.read_text().replace('account = "alice"', 'account = ""'))
    monkeypatch.setenv(ENV, "")
    code = main(["live", "--config", str(toml), "--duration", "3", "--no-report", "--no-health",
                 "--out", str(tmp_path / "live")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == [f"tickparity: error: {toml}: [venues.binance] account = '': expected the account's name (a non-empty string)"]
    assert not (tmp_path / "live").exists()


def test_an_empty_answer_or_variable_never_confirms():
    said: list[str] = []
    for blank in ("", " ", "\t"):
        with pytest.raises(LiveNotConfirmed, match="set but empty"):
            confirm_live("binance", "main", "binance", environ={ENV: blank}, say=said.append)
    for account in ("", " "):  # the config check refuses these first; the confirmation never accepts one
        for answer in ("", account):
            with pytest.raises(LiveNotConfirmed, match="non-empty account name"):
                confirm_live("binance", account, "binance", environ={}, ask=lambda _, a=answer: a, say=said.append)
            with pytest.raises(LiveNotConfirmed, match="non-empty account name"):
                confirm_live("binance", account, "binance", environ={ENV: answer}, say=said.append)


def test_a_secrets_file_account_is_checked_the_same_way(tmp_path):
    from venues.ccxt.credentials import load_credentials

    path = tmp_path / "secrets.toml"
    for bad in ('""', "5", '" main"'):
        path.write_text(f'[binance]\napi_key = "k"\nsecret = "s"\naccount = {bad}\n')
        path.chmod(0o600)
        with pytest.raises(ConfigError, match=r"\[binance\] account = .*: expected a non-empty string"):
            load_credentials({"secrets_file": str(path)}, "binance", {})


def _start_testnet(toml, out, duration: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "modes.cli", "testnet", "--config", str(toml), "--out", str(out),
                             "--duration", duration, "--no-report", "--no-health"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_started(proc: subprocess.Popen, out) -> None:
    """Until the session's start step is recorded (its orders may be at the venue)."""
    wait_until("the first session's start", lambda: proc.poll() is not None or (
        (out / "session.jsonl").exists() and '"start":1' in (out / "session.jsonl").read_text()), timeout_s=120)
    assert proc.poll() is None, proc.communicate()


def test_a_second_session_on_the_account_is_refused_while_the_first_runs(live_emu, alice_env, tmp_path):
    """The trial: a second testnet session on alice adopted the running session's orders and
    cancelled them. Now it refuses to start, one line naming the first's run directory and
    pid, exit 2, no run directory; once the first was killed -9 (the OS drops its lock) a
    session starts, adopts the order it left (saying whose it is) and ends cleanly."""
    import signal

    from modes.live.account_lock import AccountLocks, account_key
    from modes.live.driver import state_dir

    toml = write_session_toml(tmp_path / "run.toml", live_emu, params="")
    (tmp_path / "rester.py").write_text(RESTER)
    toml.write_text(toml.read_text().replace(f'"{ROOT / "examples" / "market_maker.py"}:MarketMaker"',
                                             f'"{tmp_path / "rester.py"}:Rester"'))
    first = _start_testnet(toml, tmp_path / "A", "120")
    try:
        _wait_started(first, tmp_path / "A")
        wait_until("the first session's order at the venue", lambda: any(
            r.get("type") == "response" and r.get("command") == "submit" and r.get("outcome") == "confirmed"
            for r in map(json.loads, (tmp_path / "A" / "audit.jsonl").read_text().splitlines())), timeout_s=60)
        second = subprocess.run([sys.executable, "-m", "modes.cli", "testnet", "--config", str(toml), "--out",
                                 str(tmp_path / "B"), "--duration", "3", "--no-report", "--no-health"], cwd=ROOT,
                                capture_output=True, text=True, timeout=120)
        assert second.returncode == 2, second
        assert second.stderr.strip().splitlines() == [
            f"tickparity: error: [venues.binance] account 'alice' on binance ({live_emu.url}) is traded by another "
            f"session on this machine: run directory {(tmp_path / 'A').resolve()}, pid {first.pid}; one session per "
            "account (docs/live.md \"Warm restart\")"], second.stderr
        assert not (tmp_path / "B").exists()
        assert first.poll() is None  # the first one runs on, untouched
        prefix = read_journal(tmp_path / "A")[0]["id_prefix"]
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.communicate()
    third = subprocess.run([sys.executable, "-m", "modes.cli", "testnet", "--config", str(toml), "--out",
                            str(tmp_path / "C"), "--duration", "2", "--no-report", "--no-health"], cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
    assert third.returncode == 0, third
    assert f"adopted from a previous session (session {prefix}, started " in third.stderr, third.stderr
    # and once a session ended, its account is free in this process too
    key = account_key("testnet", "binance", live_emu.url, "alice")
    AccountLocks.take(state_dir(), [("[venues.binance]", key)], tmp_path / "D", "testnet").release()


def test_the_lock_is_per_venue_and_account_and_paper_takes_none(live_emu, alice_env, tmp_path):
    """Another account, or the same name on another venue, is not blocked; a paper session
    (orders on the simulated venue only) runs beside a testnet session of its account."""
    from modes.live.account_lock import AccountInUseError, AccountLocks, account_key
    from modes.live.driver import LiveDriver, state_dir

    held = AccountLocks.take(state_dir(), [("[venues.binance]", account_key("testnet", "binance", live_emu.url,
                                                                             "alice"))], tmp_path / "X", "testnet")
    try:
        with pytest.raises(AccountInUseError, match=rf"run directory {tmp_path / 'X'}, pid {os.getpid()}"):
            LiveDriver(session_config(live_emu), "testnet", tmp_path / "a", health=False)
        for other in (account_key("testnet", "binance", live_emu.url, "bob"),
                      account_key("testnet", "binance", None, "alice"),
                      account_key("live", "binance", None, "alice")):
            AccountLocks.take(state_dir(), [("[venues.binance]", other)], tmp_path / "Y", "testnet").release()
        LiveDriver(session_config(live_emu), "paper", tmp_path / "p", health=False)
        # the same URL is the same venue whatever the mode: a live session on it is refused too
        with pytest.raises(AccountInUseError):
            AccountLocks.take(state_dir(), [("[venues.binance]", account_key("live", "binance", live_emu.url,
                                                                            "alice"))], tmp_path / "Z", "live")
    finally:
        held.release()
