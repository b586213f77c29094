"""Every ConfigError from a config file names the file and the key, for every command that
takes one (`backtest`, `paper`, `testnet`, `emulator`, `stress --strategies`): before, the
emulator's and the stress cells' errors named the key but not the file, and a paper
session's `exchange` error named neither (it came after connecting). Nothing here connects:
each error comes before any socket is opened."""

from __future__ import annotations

import re

import pytest

from engine.errors import ConfigError
from modes.cli import main
from modes.stress import run_stress

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]
STRATEGY = ROOT / "examples" / "market_maker.py"


def config(tmp_path, venue_lines: str, extra: str = "") -> str:
    path = tmp_path / "x.toml"
    path.write_text(f'[run]\nstrategy = "{STRATEGY}:MarketMaker"\ninstruments = ["binance:BTC/USDT"]\n'
                    f'data = "synthetic:1:1m"\n[venues.binance]\nurl = "http://127.0.0.1:9"\n{venue_lines}\n{extra}')
    return str(path)


BAD = [
    ("colour = 1", "[venues.binance] colour: unknown key"),
    ("maker_fee_bps = 'x'", "[venues.binance] maker_fee_bps = 'x': expected a number of basis points"),
    ("leverage = 'x'", "[venues.binance] leverage = 'x': expected an integer leverage"),
    ("latency = { entry_ns = -1 }", "[venues.binance] latency.entry_ns = -1"),
    ("", "[risk] max_position = 'x': expected a number", "[risk]\nmax_position = 'x'"),
]


COMMANDS = [["backtest", "--dry-run"], ["paper", "--duration", "1"], ["emulator", "--port", "0"]]


def _reads(command: str, message: str) -> bool:
    """Whether `command` reads that key: a spot backtest or paper session never reads
    `leverage` (only contract venues do), the emulator reads it for every venue it serves
    and reads no [risk] value (it has no strategy)."""
    if "leverage" in message:
        return command == "emulator"
    return not ("[risk]" in message and command == "emulator")


CASES = [(cmd, case) for cmd in COMMANDS for case in BAD if _reads(cmd[0], case[1])]


@pytest.mark.parametrize(("command", "case"), CASES, ids=[f"{c[0]}-{k[1].split(':')[0]}" for c, k in CASES])
def test_a_bad_key_names_the_config_file(tmp_path, capsys, command, case):
    venue_lines, message, *extra = case
    path = config(tmp_path, venue_lines, *extra)
    assert main([command[0], "--config", path, *command[1:]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"tickparity: error: {path}: {message}"), err


@pytest.mark.parametrize(("venue_lines", "message"), [
    ("exchange = 'nope'", "[venues.binance] exchange = 'nope': not a ccxt.pro exchange id"),
    ("exchange = 'kraken'", "[venues.binance] url = 'http://127.0.0.1:9': a custom URL is supported"),
    ("api_key_env = 'TP_NO_SUCH_KEY'", "[venues.binance]: environment variable TP_NO_SUCH_KEY"),
])
def test_the_live_keys_name_the_config_file_before_connecting(tmp_path, capsys, monkeypatch, venue_lines, message):
    monkeypatch.delenv("TP_NO_SUCH_KEY", raising=False)
    path = config(tmp_path, venue_lines)
    assert main(["testnet", "--config", path, "--duration", "1", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"tickparity: error: {path}: {message}"), err
    assert not (tmp_path / "run").exists()  # nothing written


def test_a_stress_cell_of_a_bad_strategy_config_names_the_file(tmp_path):
    path = config(tmp_path, "colour = 1")
    out = tmp_path / "stress"
    # refused before the matrix runs (docs/scenarios.md), naming the file; nothing written
    with pytest.raises(ConfigError, match=re.escape(f"{path}: [venues.binance] colour: unknown key")):
        run_stress([path], [str(ROOT / "scenarios" / "library" / "rate-limit-storm-2020-06-01.toml")], out, jobs=1,
                   report=False)
    assert not (out / "results.json").exists()


# every file the user names, given a directory: the message says it is a directory (it said
# "file not found" for the latency files, so the user looked for a file that was there;
# a venue-profile or emulator faults file that was a directory was an "internal error")
DIRECTORY_CASES = [
    ("latency-file", 'latency = { model = "recorded", file = "{d}" }', "[venues.binance] latency.file = '{d}': "
     "file is a directory"),
    ("empirical-file", 'latency = { model = "empirical", file = "{d}" }', "[venues.binance] latency.file = '{d}': "
     "file is a directory"),
    ("feed-file", 'latency = { entry_ns = 1, feed_file = "{d}" }', "[venues.binance] latency.feed_file = '{d}': "
     "file is a directory"),
    ("report-file", 'latency = { entry_ns = 1, report_file = "{d}" }', "[venues.binance] latency.report_file = "
     "'{d}': file is a directory"),
]


@pytest.mark.parametrize(("venue_lines", "message"), [c[1:] for c in DIRECTORY_CASES],
                         ids=[c[0] for c in DIRECTORY_CASES])
def test_a_directory_given_for_a_latency_file_is_named_a_directory(tmp_path, capsys, venue_lines, message):
    folder = tmp_path / "session"
    folder.mkdir()
    path = config(tmp_path, venue_lines.replace("{d}", str(folder)))
    assert main(["backtest", "--dry-run", "--config", path]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"tickparity: error: {path}: {message.replace('{d}', str(folder))}"]


@pytest.mark.parametrize(("argv", "message"), [
    (["backtest", "--config", "{d}"], "config file is a directory: {d}"),
    (["backtest", "--strategy", "{d}/x.py:X", "--data", "synthetic:1:1m"], "strategy file is a directory: {d}/x.py"),
    (["backtest", "--strategy", f"{STRATEGY}:MarketMaker", "--data", "duckdb:{d}"], "DuckDB store is a directory: {d}"),
    (["backtest", "--strategy", f"{STRATEGY}:MarketMaker", "--data", "synthetic:1:1m", "--instruments", "{d}"],
     "instruments file is a directory: {d}"),
    (["emulator", "--data", "synthetic:1:1m", "--faults", "{d}"], "faults file is a directory: {d}"),
    (["stress", "--strategies", "{d}", "--scenarios", str(ROOT / "scenarios" / "library" / "gdax-eth-flash-crash-2017.toml")], "run config is a directory: {d}"),
])
def test_a_directory_given_for_a_file_on_the_command_line_is_named_a_directory(tmp_path, capsys, argv, message):
    folder = tmp_path / "dir"
    folder.mkdir()
    if "x.py" in message:
        (folder / "x.py").mkdir()
    assert main([a.replace("{d}", str(folder)) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tickparity: error: ") and message.replace("{d}", str(folder)) in err[0], err
