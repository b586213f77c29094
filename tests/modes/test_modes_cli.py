"""User errors give one clear line and a non-zero exit; --debug shows the traceback."""

import subprocess

import pytest

from modes.cli import main

STRATEGY = "examples/market_maker.py:MarketMaker"


def _run(capsys, argv):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.err.strip()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["backtest", "--config", "nope.toml"], "config file not found: nope.toml"),
        (["backtest", "--strategy", STRATEGY, "--data", "synthetic:1:10s", "--instrument", "binance:NOPE/USDT"],
         "unknown instrument(s) ['binance:NOPE/USDT']"),
        (["backtest", "--strategy", STRATEGY, "--data", "synthetic:1:10s", "--instrument", "binanceusdm:BTC/USDT"],
         "unknown instrument(s) ['binanceusdm:BTC/USDT']; add them to an instruments file (--instruments FILE); "
         "did you mean 'binance:BTC/USDT' or 'binanceusdm:BTC/USDT:USDT'?"),
        (["backtest", "--strategy", "examples/market_maker.py", "--data", "synthetic:1:10s"],
         "expected 'FILE.py:Class'"),
        (["backtest", "--strategy", "examples/missing.py:X", "--data", "synthetic:1:10s"],
         "strategy file not found: examples/missing.py"),
        (["backtest", "--strategy", "examples/market_maker.py:Nope", "--data", "synthetic:1:10s"],
         "has no class 'Nope'"),
        (["backtest", "--strategy", STRATEGY, "--data", "duckdb:/nonexistent/x.duckdb"], "/nonexistent/x.duckdb"),
        (["backtest", "--strategy", STRATEGY, "--data", "synthetic:1:10s", "--param", "colour=1"],
         "--param colour: MarketMaker() takes no parameter 'colour' (its parameters: instrument, "
         "half_spread_bps, qty, max_position, skew_bps, refresh_ms)"),
        (["backtest", "--strategy", STRATEGY, "--data", "synthetic:1:10s", "--param", "qty=abc"],
         "--param qty = 'abc': expected a decimal number like 0.01"),
        (["backtest", "--strategy", STRATEGY, "--data", "synthetic:1:10s", "--param", "refresh_ms=0.5"],
         "--param refresh_ms = 0.5: expected an integer"),
        (["backtest", "--strategy", STRATEGY, "--data", "synthetic:1:10s", "--seed", "-5"],
         "--seed = -5: expected an integer from 0 to 2**63-1"),
        (["backtest", "--strategy", STRATEGY, "--data", "synthetic:1:10s", "--instruments", "missing.toml"],
         "instruments file not found: missing.toml"),
    ],
)
def test_user_errors_are_one_line(capsys, root, monkeypatch, argv, message):
    monkeypatch.chdir(root)
    code, err = _run(capsys, argv)
    assert code != 0
    assert message in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_bad_config_key(capsys, tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text('[run]\nstrategy = "x.py:X"\ndata = "synthetic:1"\nspeed = 3\n')
    code, err = _run(capsys, ["backtest", "--config", str(cfg)])
    assert code == 2
    assert err == (f"tickparity: error: {cfg}: [run] speed: unknown key; did you mean 'seed'? "
                   "(valid keys: data, from, instruments, instruments_file, out, params, sample_ms, seed, "
                   "strategy, to)")


def test_bad_venue_key(capsys, root, monkeypatch, tmp_path):
    monkeypatch.chdir(root)
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'[run]\nstrategy = "{root}/{STRATEGY}"\ndata = "synthetic:1:10s"\n'
                   '[venues.binance]\nqueue_modle = "risk_averse"\n')
    code, err = _run(capsys, ["backtest", "--config", str(cfg), "--out", str(tmp_path / "o")])
    assert code != 0 and "queue_modle" in err and "[venues.binance]" in err


def test_console_script_no_traceback_unless_debug(tickparity_bin, tmp_path):
    plain = subprocess.run([tickparity_bin, "backtest", "--config", str(tmp_path / "x.toml")],
                           capture_output=True, text=True)
    assert plain.returncode == 2
    assert plain.stderr.strip() == f"tickparity: error: config file not found: {tmp_path / 'x.toml'}"
    debug = subprocess.run([tickparity_bin, "--debug", "backtest", "--config", str(tmp_path / "x.toml")],
                           capture_output=True, text=True)
    assert debug.returncode == 2 and "Traceback" in debug.stderr
