"""Starting a session as a new user does (`tickparity testnet --config RUN.toml` through the
CLI's main): a venue url without a scheme, a secrets file next to the config, a venue that
does not answer, and what the session header keeps. Every mistake is one line naming the
config key, exit 2, and leaves no run directory behind."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from live_helpers import ROOT

from modes.cli import main

STRATEGY = f"{ROOT / 'examples' / 'market_maker.py'}:MarketMaker"


def _toml(path: Path, venue_lines: str, strategy: str = STRATEGY) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'''[run]
strategy = "{strategy}"
instruments = ["binance:BTC/USDT"]
[run.params]
refresh_ms = 200
[venues.binance]
account = "alice"
balances = {{ USDT = "10000000", BTC = "100" }}
{venue_lines}
''')
    return path


def _one_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("tickparity: error: ")
    return lines[0]


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.parametrize("url", ["127.0.0.1:8080", "localhost:8765", "http//127.0.0.1:8765", "ftp://127.0.0.1:21"])
def test_a_venue_url_without_an_http_scheme_is_one_line_naming_the_key(tmp_path, monkeypatch, capsys, url):
    monkeypatch.chdir(tmp_path)
    toml = _toml(tmp_path / "run.toml", f'url = "{url}"\napi_key_env = "TP_TEST_KEY"\nsecret_env = "TP_TEST_SECRET"')
    assert main(["testnet", "--config", str(toml)]) == 2  # a ConfigError, as every other config mistake
    line = _one_error(capsys.readouterr().err)
    assert f"{toml}: [venues.binance] url = '{url}': expected an http:// or https:// URL" in line
    assert "http://http" not in line  # a suggestion is a valid address, or there is none
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(("url", "suggested"), [
    ("http//127.0.0.1:8765", "http://127.0.0.1:8765"), ("htp://127.0.0.1:8765", "http://127.0.0.1:8765"),
    ("localhost:8765", "http://localhost:8765"), ("http://127.0.0.1:99999", "http://127.0.0.1:8765")])
def test_a_mistyped_url_suggests_a_valid_address(tmp_path, monkeypatch, capsys, url, suggested):
    monkeypatch.chdir(tmp_path)
    toml = _toml(tmp_path / "run.toml", f'url = "{url}"\napi_key_env = "TP_TEST_KEY"\nsecret_env = "TP_TEST_SECRET"')
    assert main(["testnet", "--config", str(toml)]) == 2
    line = _one_error(capsys.readouterr().err)
    assert line.endswith(f"e.g. '{suggested}'"), line


@pytest.mark.parametrize("url", ["http://127.0.0.1:8765/api/v3", "http://127.0.0.1:8765/?x=1",
                                 "http://127.0.0.1:8765/ws"])
def test_a_url_with_a_path_is_refused_not_dropped(tmp_path, monkeypatch, capsys, url):
    """Every API path is derived from the url's host (the emulator's banner prints its paths
    too): a path given there used to be dropped silently; now it is one line naming the
    address to give instead."""
    monkeypatch.chdir(tmp_path)
    toml = _toml(tmp_path / "run.toml", f'url = "{url}"\napi_key_env = "TP_TEST_KEY"\nsecret_env = "TP_TEST_SECRET"')
    assert main(["testnet", "--config", str(toml)]) == 2
    line = _one_error(capsys.readouterr().err)
    assert line.startswith(f"tickparity: error: {toml}: [venues.binance] url = '{url}': expected the venue's "
                           "address only (scheme://host:port, e.g. 'http://127.0.0.1:8765')"), line
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(("line", "message"), [
    ('api_key_env = ["ALICE_KEY"]', "api_key_env = ['ALICE_KEY']: expected the name of an environment variable"),
    ('secret_env = 7', "secret_env = 7: expected the name of an environment variable"),
    ('api_key_env = ""', "api_key_env = '': expected the name of an environment variable (a non-empty string)"),
    ('secrets_file = 42', "secrets_file = 42: expected a path to a 0600 secrets file (a string in quotes, not a number)"),
    ('secrets_file = ["s.toml"]', "secrets_file = ['s.toml']: expected a path to a 0600 secrets file"),
    ('exchange = 42', "exchange = 42: expected a ccxt.pro exchange id (a string"),
    ('url = 8765', "url = 8765: expected the venue's base URL (a string in quotes, not a number)"),
])
def test_a_wrong_typed_connection_key_is_one_line_naming_file_key_and_type(tmp_path, monkeypatch, capsys,
                                                                            alice_env, line, message):
    """A list or a number given for a credential or connection key: before, `api_key_env =
    ["ALICE_KEY"]` was reported as an unset variable "['ALICE_KEY']" and `secrets_file = 42`
    as a missing file ".../42"; now the file, the key and the expected type."""
    monkeypatch.chdir(tmp_path)
    venue = line if line.startswith("url") else f'url = "http://127.0.0.1:9"\n{line}'
    if not line.startswith(("api_key_env", "secret_env")):
        venue += '\napi_key_env = "TP_TEST_KEY"\nsecret_env = "TP_TEST_SECRET"'
    toml = _toml(tmp_path / "run.toml", venue)
    for mode in ("testnet", "paper"):  # paper reads no keys, but the same config runs testnet next
        assert main([mode, "--config", str(toml)]) == 2
        err = _one_error(capsys.readouterr().err)
        assert err.startswith(f"tickparity: error: {toml}: [venues.binance] {message}"), err
    assert not (tmp_path / "runs").exists()


def test_a_venue_that_does_not_answer_leaves_no_run_directory(tmp_path, monkeypatch, capsys, alice_env):
    """The run directory is created once the venues answered: an unreachable url is one line
    naming the venue table, and neither --out nor the default runs/<mode>-... exists after."""
    monkeypatch.chdir(tmp_path)
    toml = _toml(tmp_path / "run.toml", f'url = "http://127.0.0.1:{_closed_port()}"\n'
                                        'api_key_env = "TP_TEST_KEY"\nsecret_env = "TP_TEST_SECRET"')
    assert main(["testnet", "--config", str(toml), "--out", "chosen", "--no-health"]) == 2
    line = _one_error(capsys.readouterr().err)
    assert line.startswith(f"tickparity: error: {toml}: [venues.binance]") and "cannot reach the venue" in line
    assert main(["testnet", "--config", str(toml), "--no-health"]) == 2
    capsys.readouterr()
    assert not (tmp_path / "chosen").exists() and not (tmp_path / "runs").exists()


@pytest.mark.parametrize("problem", ["missing", "readable by others"])
def test_a_secrets_file_missing_or_not_0600_is_one_line_naming_the_key(tmp_path, monkeypatch, capsys, problem):
    cfg = tmp_path / "cfg"
    _toml(cfg / "run.toml", 'url = "http://127.0.0.1:8765"\nsecrets_file = "secrets.toml"')
    if problem != "missing":
        (cfg / "secrets.toml").write_text('[binance]\napi_key = "alice-key"\nsecret = "alice-secret"\n')
        os.chmod(cfg / "secrets.toml", 0o644)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["testnet", "--config", "../cfg/run.toml"]) == 2
    line = _one_error(capsys.readouterr().err)
    assert "[venues.binance] secrets_file" in line and str(cfg / "secrets.toml") in line
    if problem == "missing":
        assert "secrets file not found" in line
    else:
        assert "must be mode 0600" in line and "chmod 600" in line and "alice-key" not in line


def test_a_session_reads_its_secrets_next_to_its_config_and_records_the_absolute_base_dir(
        live_emu, tmp_path, monkeypatch, capsys):
    """Started from another folder with a relative --config: `secrets_file = "secrets.toml"`
    is the file beside the config (not in the working directory), the session runs on those
    keys, its header records the config's folder as an absolute base_dir, and the strategy
    named relative to that folder replays from anywhere."""
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "quoter.py").write_text((ROOT / "examples" / "market_maker.py").read_text())
    toml = _toml(cfg / "run.toml", f'url = "{live_emu.url}"\nsecrets_file = "secrets.toml"',
                 strategy="quoter.py:MarketMaker")
    (cfg / "secrets.toml").write_text('[binance]\naccount = "alice"\napi_key = "alice-key"\nsecret = "alice-secret"\n')
    os.chmod(cfg / "secrets.toml", 0o600)
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    assert main(["testnet", "--config", "../cfg/run.toml", "--duration", "2", "--out", "session", "--no-report",
                 "--no-health"]) == 0, capsys.readouterr().err
    head = json.loads((here / "session" / "session.jsonl").read_text().splitlines()[0])
    assert head["config"]["base_dir"] == str(cfg.resolve()) and Path(head["config"]["base_dir"]).is_absolute()
    assert head["config"]["config_file"] == "../cfg/run.toml"
    assert toml.exists()
    from modes.live.replay import replay_session

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = replay_session(here / "session", elsewhere / "replayed")
    assert result.difference is None, result.difference.text()


def test_an_instrument_the_venue_does_not_list_is_one_line_at_once(live_emu, tmp_path, monkeypatch, capsys,
                                                                  alice_env):
    """`--instrument binance:SOL/USDT` against a venue that lists BTC/USDT and ETH/USDT: one
    line naming the instrument and what the venue lists, before any stream starts and
    before the run directory exists (before: a 15 s wait, `no order book ... BadSymbol`,
    and a partial run directory left behind; found by a new user's trial)."""
    monkeypatch.chdir(tmp_path)
    toml = tmp_path / "run.toml"
    toml.write_text(f'''[run]
strategy = "{STRATEGY}"
instruments = ["binance:SOL/USDT"]
[venues.binance]
account = "alice"
url = "{live_emu.url}"
api_key_env = "TP_TEST_KEY"
secret_env = "TP_TEST_SECRET"
''')
    assert main(["testnet", "--config", str(toml), "--out", "chosen", "--no-health"]) == 2
    line = _one_error(capsys.readouterr().err)
    assert line.startswith(f"tickparity: error: {toml}: [run] instruments: binance:SOL/USDT: [venues.binance] "), line
    assert "lists no such market (it lists BTC/USDT, ETH/USDT)" in line
    assert not (tmp_path / "chosen").exists()


@pytest.mark.parametrize("duration", ["0", "-5", "nan", "inf", "1_0", " 10", "1e400", "ten", "\u0661\u0660"])
@pytest.mark.parametrize("mode", ["paper", "testnet"])
def test_a_duration_that_is_not_positive_is_refused(tmp_path, monkeypatch, capsys, duration, mode):
    """`--duration=-5` or 0 made a run directory with start = end and nothing in it; `1_0`
    (float() reads it as 10) ran 10 s; each was refused only after the venue was contacted.
    Now one line naming the flag, before anything: the venue (a listening socket here)
    sees no connection, nothing is written."""
    monkeypatch.chdir(tmp_path)
    venue = socket.socket()
    venue.bind(("127.0.0.1", 0))
    venue.listen()
    venue.setblocking(False)
    url = f"http://127.0.0.1:{venue.getsockname()[1]}"
    toml = _toml(tmp_path / "run.toml", f'url = "{url}"\napi_key_env = "TP_TEST_KEY"\n'
                                        'secret_env = "TP_TEST_SECRET"')
    try:
        with pytest.raises(SystemExit) as exit_:
            main([mode, "--config", str(toml), f"--duration={duration}", "--out", "chosen"])
        assert exit_.value.code == 2
        with pytest.raises(BlockingIOError):
            venue.accept()  # nobody connected
    finally:
        venue.close()
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines == [f"tickparity {mode}: error: argument --duration: {duration!r}: expected a number of "
                     f"seconds > 0, in plain digits (e.g. 60 or 2.5) (see tickparity {mode} --help)"]
    assert not (tmp_path / "chosen").exists()


def test_every_numeric_flag_is_parsed_strictly(tmp_path, capsys):
    """The same parser for every numeric flag: `1_0`, nan, inf and out-of-range values are
    one usage line naming the flag (modes/cli_args.py), and plain digits still pass."""
    from modes import cli_args

    cases = [["emulator", "--port", "8_765"], ["emulator", "--port", "70000"], ["emulator", "--speed", "inf"],
             ["emulator", "--speed", "0"], ["backtest", "--strategy", "x.py:X", "--seed", "1_0"],
             ["backtest", "--strategy", "x.py:X", "--seed", "nan"],
             ["testnet", "--config", "x.toml", "--reconcile-confirm", "3_0"],
             ["stress", "--strategies", "x.toml", "--jobs", "0"]]
    for argv in cases:
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
        line = _one_line(capsys.readouterr().err)
        assert f"error: argument {argv[-2]}: {argv[-1]!r}: expected " in line, line
    assert cli_args.SECONDS("2.5") == 2.5 and cli_args.SECONDS("60") == 60.0 and cli_args.SECONDS("1e1") == 10.0
    assert cli_args.integer(0, 65535)("8765") == 8765


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]
