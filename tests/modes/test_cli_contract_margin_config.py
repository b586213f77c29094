"""A contract venue's `leverage` / `margin_mode` / `open_positions` typo is a one-line
error naming the config file, before anything else: a paper session used to connect to
the venue and write its run directory first (and, without a reachable venue, reported
the connection instead of the typo)."""

from __future__ import annotations

from pathlib import Path

import pytest

from modes.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path, line: str) -> Path:
    path = tmp_path / "perp.toml"
    path.write_text(f"""
[run]
strategy = "{ROOT / 'examples' / 'perp_long.py'}:PerpLong"
data = "synthetic:7:1m"
instruments = ["binanceusdm:BTC/USDT:USDT"]
[venues.binanceusdm]
url = "http://127.0.0.1:9"   # nothing listens there: the error must come first
{line}
""")
    return path


@pytest.mark.parametrize(("line", "message"), [
    ('margin_mode = "isolate"', "[venues.binanceusdm] margin_mode = 'isolate': expected 'cross' or 'isolated'"),
    ("leverage = 500", "[venues.binanceusdm] leverage = 500: expected an integer leverage from 1 to 125"),
    ('open_positions = "keep"', "[venues.binanceusdm] open_positions = 'keep': expected 'adopt' or 'refuse'"),
    # a misspelt symbol key used to leave the contract at the default 20x without a word
    ('leverage = { "BTCUSDT" = 5 }', "[venues.binanceusdm] leverage.BTCUSDT: no contract 'BTCUSDT' on "
                                     "binanceusdm (keys are ccxt symbols, e.g. 'BTC/USDT:USDT'); "
                                     "did you mean 'BTC/USDT:USDT'?"),
    ('leverage = { "BTC/USDT" = 5 }', "[venues.binanceusdm] leverage.BTC/USDT: no contract 'BTC/USDT' on "
                                      "binanceusdm (keys are ccxt symbols, e.g. 'BTC/USDT:USDT'); "
                                      "did you mean 'BTC/USDT:USDT'?"),
])
@pytest.mark.parametrize("command", ["backtest", "paper", "emulator"])
def test_a_bad_margin_key_is_refused_first_naming_the_file(tmp_path, capsys, command, line, message):
    config, out = _config(tmp_path, line), tmp_path / "run"
    extra = ["--duration", "1"] if command == "paper" else []
    assert main([command, "--config", str(config), "--out", str(out), *extra]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"tickparity: error: {config}: {message}"
    assert not out.exists()


def test_a_leverage_table_may_name_other_contracts_of_the_venue(tmp_path):
    """The documented table (docs/derivatives.md "Venues") names BTC and ETH: a run of BTC
    alone takes its 7x and ignores ETH's (a contract of the venue in the instruments file)."""
    import json

    config, out = _config(tmp_path, 'leverage = { "BTC/USDT:USDT" = 7, "ETH/USDT:USDT" = 10 }'), tmp_path / "run"
    config.write_text(config.read_text().replace('url = "http://127.0.0.1:9"', ""))
    assert main(["backtest", "--config", str(config), "--out", str(out)]) == 0
    derivatives = json.loads((out / "summary.json").read_text())["run"]["derivatives"]
    assert derivatives["binanceusdm:BTC/USDT:USDT"]["leverage"] == 7


def test_contract_keys_on_a_spot_only_venue_are_warned_as_ignored(tmp_path, capsys):
    """`leverage` / `margin_mode` on a venue that trades no contract in the run set nothing
    (spot is not traded on margin): the run says so instead of running unlevered silently."""
    config = _config(tmp_path, 'leverage = 10\nmargin_mode = "isolated"')
    config.write_text(config.read_text().replace('url = "http://127.0.0.1:9"', "").replace(
        "binanceusdm:BTC/USDT:USDT", "binance:BTC/USDT").replace("[venues.binanceusdm]", "[venues.binance]"))
    assert main(["backtest", "--config", str(config), "--out", str(tmp_path / "run")]) == 0
    assert ("tickparity: warning: [venues.binance] leverage, margin_mode: apply to perpetuals and futures only; "
            "the run trades no contract on binance: ignored (spot is not traded on margin)") in capsys.readouterr().err


@pytest.mark.parametrize(("line", "message"), [
    ("margin_mode = 5", "[venues.binance] margin_mode = 5: expected 'cross' or 'isolated'"),
    ('open_positions = ""', "[venues.binance] open_positions = '': expected 'adopt' or 'refuse'"),
    ('leverage = "3"', "[venues.binance] leverage = '3': expected an integer leverage from 1 to 125"),
])
def test_a_bad_contract_key_value_is_refused_in_a_spot_only_run_too(tmp_path, capsys, line, message):
    """The values are checked whatever the run trades (issue #11): a spot run accepted
    `margin_mode = 5`, and the same config refused it once it traded a contract."""
    config, out = _config(tmp_path, line), tmp_path / "run"
    config.write_text(config.read_text().replace('url = "http://127.0.0.1:9"', "").replace(
        "binanceusdm:BTC/USDT:USDT", "binance:BTC/USDT").replace("[venues.binanceusdm]", "[venues.binance]"))
    assert main(["backtest", "--config", str(config), "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"tickparity: error: {config}: {message}"
    assert not out.exists()


def test_a_leverage_above_the_contracts_maximum_is_refused(tmp_path, capsys):
    """ETHUSDT's brackets allow at most 75x (engine/instruments.toml): 100x is a one-line
    ConfigError (Binance -4028), where the run used to start and refuse every order
    `max_notional_at_leverage`; 75x runs."""
    for leverage, code in ((100, 2), (75, 0)):
        config = _config(tmp_path, f"leverage = {leverage}")
        config.write_text(config.read_text().replace('url = "http://127.0.0.1:9"', "").replace(
            "BTC/USDT:USDT", "ETH/USDT:USDT"))
        assert main(["backtest", "--config", str(config), "--out", str(tmp_path / f"run{leverage}")]) == code
    err = capsys.readouterr().err
    assert (f"tickparity: error: {config}: [venues.binanceusdm] leverage = 100: above binanceusdm:ETH/USDT:USDT's "
            "maximum leverage 75 (its margin_brackets; Binance refuses it, -4028)") in err
