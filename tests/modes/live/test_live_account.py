"""The account a testnet/live session trades (issue #11): its name must be a real name,
the live confirmation never accepts an empty answer."""

from __future__ import annotations

import pytest
from live_helpers import session_config, write_session_toml

from engine.errors import ConfigError
from modes.live import run_live
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
