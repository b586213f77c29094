"""`tickparity emulator` end to end: banner, ccxt against it, a scheduled fault from a
--faults file, the dataset's end halting trading, --loop, Ctrl-C, one-line errors."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import time
from decimal import Decimal
from pathlib import Path

import ccxt
import pytest

from modes.emulator_cmd import read_banner
from venues.emulator import ccxt_config


def _start(tickparity_bin, tmp_path, *extra):
    proc = subprocess.Popen([tickparity_bin, "emulator", "--port", "0", "--out", str(tmp_path / "run"),
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    timer = threading.Timer(180, proc.kill)  # the first start may compile the sim
    timer.start()
    try:
        banner = read_banner(proc.stdout)
    finally:
        timer.cancel()
    if banner is None:
        proc.kill()
        raise AssertionError(f"no banner: {proc.stderr.read()}")
    url, key, secret, text = banner
    assert url.startswith("http://127.0.0.1:")
    return proc, url, key, secret, text


def _stop(proc):
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return proc.returncode, out, err


def test_cli_serves_ccxt_applies_scheduled_faults_and_stops_on_ctrl_c(tickparity_bin, tmp_path):
    accounts = tmp_path / "accounts.toml"
    accounts.write_text('[accounts.carol]\napi_key = "carol-key"\nsecret = "carol-secret"\n'
                        'balances = { USDT = "50000", BTC = "1" }\n')
    faults = tmp_path / "faults.toml"
    faults.write_text('seed = 1\n[[fault]]\nkind = "http_5xx_before"\nendpoint = "GET /api/v3/openOrders"\n'
                      'status = 502\n')
    proc, url, key, secret, text = _start(tickparity_bin, tmp_path, "--data", "synthetic:4:10m",
                                          "--accounts", str(accounts), "--faults", str(faults),
                                          "--speed", "5")
    try:
        assert (key, secret) == ("carol-key", "carol-secret")
        assert "'fetchCurrencies': False" in text and "/ws-api/v3" in text
        ex = ccxt.binance(ccxt_config(url, key, secret, timeout=5000))
        ex.load_markets()
        assert ex.fetch_balance()["USDT"]["free"] == 50000
        with pytest.raises(ccxt.ExchangeNotAvailable):  # the scheduled 502, once
            ex.fetch_open_orders("BTC/USDT")
        assert ex.fetch_open_orders("BTC/USDT") == []
        o = ex.create_order("BTC/USDT", "market", "buy", 0.01)
        assert o["status"] == "closed"
    finally:
        code, out, err = _stop(proc)
    assert code == 0 and "stopped" in err and "Traceback" not in err
    # the start is said while it runs (a cold numba cache spends about a minute compiling)
    lines = err.splitlines()
    compiling = [n for n, line in enumerate(lines) if line.startswith(
        "tickparity emulator: compiling the simulated venue's kernels")]
    assert len(compiling) == 2 and lines[compiling[0]].endswith(" ...")  # started (not a terminal) ...
    assert re.search(r" \.\.\. done in \d+\.\d s$", lines[compiling[1]])  # ... and how long it took
    assert any(re.search(r"^tickparity emulator: reading the first data \.\.\. done in \d+\.\d s$", line)
               for line in lines)
    journal = (tmp_path / "run" / "journal.jsonl").read_text()
    assert '"event":"fault"' in journal and '"event":"fill"' in journal
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["data"] == "synthetic:4:10m" and config["accounts"] == ["carol"]
    assert "carol-secret" not in (tmp_path / "run" / "config.json").read_text()
    assert json.loads((tmp_path / "run" / "instruments.json").read_text())["binance:BTC/USDT"]["tick_size"] == "0.01"
    final = json.loads((tmp_path / "run" / "final_state.json").read_text())
    commission = sum(Decimal(f["commission"]) for f in o["info"]["fills"])  # taker fee in BTC
    assert Decimal(final["accounts"]["carol"]["free"]["BTC"]) == Decimal("1.01") - commission


def test_as_docs_emulator_md_writes_it_log_level_after_the_command_every_account_and_the_state(
        tickparity_bin, tmp_path):
    """`tickparity emulator --log-level error --accounts FILE` (the docs' form) was refused
    (`unrecognized arguments`); the banner listed only the first account; with --accounts
    holding balances it still warned `balances not set: starting with 100000 USDT`; and
    docs/emulator.md described a `clock` key of GET /emulator/state that does not exist."""
    accounts = tmp_path / "accounts.toml"
    accounts.write_text('[accounts.alice]\napi_key = "alice-key"\nsecret = "alice-secret"\n'
                        'balances = { USDT = "200000", BTC = "2" }\n'
                        '[accounts.bob]\napi_key = "bob-key"\nsecret = "bob-secret"\n'
                        'balances = { USDT = "1000" }\n')
    proc, url, key, secret, text = _start(tickparity_bin, tmp_path, "--log-level", "error", "--data",
                                          "synthetic:4:10m", "--accounts", str(accounts))
    try:
        assert (key, secret) == ("alice-key", "alice-secret")  # the ccxt lines: the first account's
        assert "account 'alice': apiKey alice-key\n                 secret alice-secret" in text
        assert "account 'bob': apiKey bob-key\n               secret bob-secret" in text
        import urllib.request

        with urllib.request.urlopen(f"{url}/emulator/state", timeout=10) as reply:
            state = json.loads(reply.read())
        assert "clock" not in state and isinstance(state["market_ns"], int) and isinstance(state["shift_ns"], int)
        doc = (Path(__file__).resolve().parents[2] / "docs" / "emulator.md").read_text()
        row = next(line for line in doc.splitlines() if line.startswith("| `GET /emulator/state` |"))
        top = row.split("top-level keys:")[1]
        named = re.findall(r"`(\w+)` \(|`(\w+)`(?:,| \|)", top)
        documented = {a or b for a, b in named} - {"bids", "asks", "lastUpdateId", "free", "locked",
                                                  "open_orders", "trades", "positions"}
        assert documented == set(state), (documented, set(state))
        assert state["accounts"]["bob"]["free"] == {"USDT": "1000"}
    finally:
        code, _, err = _stop(proc)
    assert code == 0
    assert "balances not set" not in err and "unrecognized" not in err
    assert "warning" not in err and "compiling" not in err, err  # --log-level error: errors only


def test_accounts_file_with_a_config_that_sets_balances_says_they_are_not_used(tmp_path, capsys):
    import argparse

    from modes.emulator_cmd import prepare

    cfg = tmp_path / "run.toml"
    cfg.write_text('[run]\nstrategy = "unused.py:X"\ndata = "synthetic:3:1m"\ninstruments = ["binance:BTC/USDT"]\n'
                   '[venues.binance]\nbalances = { USDT = "2500" }\n')
    accounts = tmp_path / "accounts.toml"
    accounts.write_text('[accounts.carol]\napi_key = "k"\nsecret = "s"\nbalances = { USDT = "7" }\n')
    args = argparse.Namespace(config=str(cfg), data=None, instruments=None, instrument=None, seed=None,
                              from_=None, to=None, accounts=str(accounts), faults=None, speed=1.0, port=0,
                              loop=False, out=str(tmp_path / "out"))
    settings, _, _ = prepare(args)
    assert settings.accounts[0].free == {"USDT": Decimal("7")}
    err = capsys.readouterr().err
    assert f"{cfg}: [venues.binance] balances not used: the accounts of --accounts {accounts}" in err
    assert "balances not set" not in err


def test_dataset_end_halts_trading_and_loop_restarts_it(tickparity_bin, tmp_path):
    proc, url, key, secret, _ = _start(tickparity_bin, tmp_path, "--data", "synthetic:4:2s",
                                       "--speed", "4")
    try:
        deadline = time.monotonic() + 20
        line = ""
        while "dataset ended" not in line and time.monotonic() < deadline:
            line = proc.stdout.readline()
        assert "dataset ended" in line
        ex = ccxt.binance(ccxt_config(url, key, secret, timeout=5000))
        ex.load_markets()
        assert ex.market("BTC/USDT")["active"] is False  # status HALT
        with pytest.raises(ccxt.MarketClosed):
            ex.create_order("BTC/USDT", "market", "buy", 0.001)
    finally:
        assert _stop(proc)[0] == 0
    proc, url, key, secret, _ = _start(tickparity_bin, tmp_path, "--data", "synthetic:4:2s",
                                       "--speed", "4", "--loop")
    try:
        time.sleep(1.5)  # the 2 s dataset has ended and restarted at least once
        ex = ccxt.binance(ccxt_config(url, key, secret, timeout=5000))
        ex.load_markets()
        assert ex.create_order("BTC/USDT", "market", "buy", 0.001)["status"] == "closed"
    finally:
        assert _stop(proc)[0] == 0
    assert '"event":"loop"' in (tmp_path / "run" / "journal.jsonl").read_text()


@pytest.mark.parametrize("args,message", [
    (["--data", "synthetic:1", "--faults", "nope.toml"], "faults file not found: nope.toml"),
    (["--data", "synthetic:1", "--speed", "0"], "argument --speed: '0': expected a number > 0"),
    (["--data", "synthetic:1", "--speed", "1_0"], "argument --speed: '1_0': expected a number > 0"),
    (["--data", "synthetic:1", "--instrument", "binance:NOPE/USDT"], "unknown instrument"),
])
def test_cli_bad_input_is_one_line(tickparity_bin, tmp_path, args, message):
    r = subprocess.run([tickparity_bin, "emulator", "--port", "0", *args], capture_output=True,
                       text=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 2
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_bad_faults_file_names_the_key(tickparity_bin, tmp_path):
    bad = Path(tmp_path / "f.toml")
    bad.write_text('[[fault]]\nkind = "response_lost"\nstatus = 502\n')
    r = subprocess.run([tickparity_bin, "emulator", "--data", "synthetic:1", "--faults", str(bad)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "unknown key(s) ['status']" in r.stderr


@pytest.mark.parametrize(("table", "message"), [
    ('kind = "maintenance"\nduration = "5x"', "[[fault]] #1 duration = '5x': expected seconds"),
    ('kind = "response_lost"\nendpoint = "POST /api/v3/orders"',
     "[[fault]] #1 endpoint = 'POST /api/v3/orders': no such route on this emulator; valid endpoints: "
     "DELETE /api/v3/order, GET /api/v3/account"),
])
def test_a_bad_fault_names_the_file_the_fault_and_the_key(tickparity_bin, tmp_path, table, message):
    bad = tmp_path / "f.toml"
    bad.write_text(f"[[fault]]\n{table}\n")
    r = subprocess.run([tickparity_bin, "emulator", "--data", "synthetic:1", "--port", "0", "--faults", str(bad),
                        "--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert f"tickparity: error: {bad} {message}" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()  # refused before anything is written


def test_config_supplies_the_venue_table_instruments_and_balances(tmp_path):
    """--config: the backtest's [run] and [venues.binance] tables configure the emulator."""
    import argparse

    from modes.emulator_cmd import prepare

    cfg = tmp_path / "run.toml"
    cfg.write_text('[run]\nstrategy = "unused.py:X"\ndata = "synthetic:3:1m"\n'
                   'instruments = ["binance:ETH/USDT"]\n'
                   '[venues.binance]\nqueue_model = "power:2"\nstp = "cancel-both"\n'
                   'taker_fee_bps = 7.5\nbalances = { USDT = "2500" }\n'
                   '[venues.binance.latency]\nentry_ns = 4000000\nresponse_ns = 1000000\n')
    args = argparse.Namespace(config=str(cfg), data=None, instruments=None, instrument=None, seed=None,
                              from_=None, to=None, accounts=None, faults=None, speed=2.0, port=0,
                              loop=False, out=str(tmp_path / "out"))
    settings, source, config = prepare(args)
    venue = settings.venue_configs["binance"]
    assert (venue.entry_ns, venue.response_ns, venue.stp, venue.queue_model) == (
        4_000_000, 1_000_000, "cancel-both", "power:2")
    assert venue.taker_fee_bps == Decimal("7.5")
    assert [i.id for i in settings.instruments] == ["binance:ETH/USDT"]
    assert settings.accounts[0].free == {"USDT": Decimal("2500")}  # the ledger's balances
    assert source.spec == "synthetic:3:1m" and settings.speed == 2.0


@pytest.mark.parametrize("instrument,profile,balances", [
    ("binance:BTC/USDT", None, {"USDT": Decimal("100000")}),
    ("binanceusdm:BTC/USDT:USDT", None, {"USDT": Decimal("100000")}),
    ("binancecoinm:BTC/USD:BTC", None, {"BTC": Decimal("10")}),
    ("binance:BTC/USDT", "zero-cost", {"USDT": Decimal("100000"), "BTC": Decimal("10")}),
])
def test_the_default_account_s_balances_are_what_docs_emulator_md_states(tmp_path, instrument, profile, balances):
    """Without --accounts and without [venues.X] balances: the profile's quote_balance of the
    quote (settle) asset and no base asset; a profile with none (zero-cost): DEFAULT_QUOTE and
    DEFAULT_BASE. The figures are read from the code here and must be the docs' figures."""
    import argparse

    from modes.emulator_cmd import prepare
    from venues.emulator.accounts import DEFAULT_BASE, DEFAULT_QUOTE

    cfg = tmp_path / "run.toml"
    table = f'[venues.{instrument.split(":")[0]}]\nprofile = "{profile}"\n' if profile else ""
    cfg.write_text(f'[run]\nstrategy = "unused.py:X"\ndata = "synthetic:3:1m"\ninstruments = ["{instrument}"]\n{table}')
    args = argparse.Namespace(config=str(cfg), data=None, instruments=None, instrument=None, seed=None,
                              from_=None, to=None, accounts=None, faults=None, speed=1.0, port=0,
                              loop=False, out=str(tmp_path / "out"))
    settings, _, _ = prepare(args)
    assert settings.accounts[0].name == "default" and settings.accounts[0].free == balances
    doc = " ".join((Path(__file__).resolve().parents[2] / "docs" / "emulator.md").read_text().split())
    for figure in ("**100,000 USDT**", "**10** of the coin (BTC)", "**0 of each base asset**",
                   f"{DEFAULT_QUOTE:,f} of each quote and {DEFAULT_BASE:f} of each base"):
        assert figure in doc, figure


def test_another_venues_instruments_are_served_in_binances_dialect(tmp_path, capsys):
    """--instrument okx:BTC/USDT: the second emulator of a multi-venue session (docs/live.md
    "Two venues"): okx's specs and venue table, one warning line saying how to connect."""
    import argparse

    from modes.emulator_cmd import prepare

    args = argparse.Namespace(config=str(Path(__file__).resolve().parents[2] / "examples" / "cross_venue_arb.toml"),
                              data=None, instruments=None, instrument=["okx:BTC/USDT"], seed=None, from_=None,
                              to=None, accounts=None, faults=None, speed=1.0, port=0, loop=False,
                              out=str(tmp_path / "out"))
    settings, _, _ = prepare(args)
    (inst,) = settings.instruments
    assert (inst.id, inst.tick_size, inst.venue_symbol) == ("okx:BTC/USDT", Decimal("0.1"), "BTC-USDT")
    assert list(settings.venue_configs) == ["okx"] and settings.venue_configs["okx"].taker_fee_bps == 0
    assert settings.accounts[0].free == {"USDT": Decimal("200000"), "BTC": Decimal("1")}  # [venues.okx] balances
    assert 'exchange = "binance"' in capsys.readouterr().err


def test_cli_serves_binance_usdm_futures_for_a_perp_config(tickparity_bin, tmp_path, request):
    """`tickparity emulator --config examples/perp_long.toml`: the dataset's perp instrument
    of binanceusdm makes it a USDⓈ-M futures emulator (/fapi) that ccxt's binanceusdm trades,
    with the config's wallet, leverage (20) and margin mode (isolated)."""
    import asyncio

    import ccxt.pro as ccxtpro

    config = str(request.config.rootpath / "examples" / "perp_long.toml")
    proc, url, key, secret, text = _start(tickparity_bin, tmp_path, "--config", config, "--speed", "5")

    async def run():
        ex = ccxtpro.binanceusdm(ccxt_config(url, key, secret, exchange="binanceusdm", timeout=5000))
        try:
            await ex.load_markets()
            assert (await ex.fetch_balance())["USDT"]["total"] == 5000
            await ex.create_order("BTC/USDT:USDT", "market", "buy", 0.01)
            (pos,) = await ex.fetch_positions(["BTC/USDT:USDT"])
            assert (pos["contracts"], pos["leverage"], pos["marginMode"]) == (0.01, 20.0, "isolated")
            assert (await ex.fetch_funding_rate("BTC/USDT:USDT"))["markPrice"] > 0
        finally:
            await ex.close()

    try:
        assert "Binance USDⓈ-M futures at" in text and "binanceusdm" in text
        assert "binance.com" not in text  # the printed ccxt table moves every URL here
        asyncio.run(asyncio.wait_for(run(), 60))
    finally:
        code, out, err = _stop(proc)
    assert code == 0 and "Traceback" not in err


def test_a_start_stage_says_it_runs_and_how_long_it_took(capsys, monkeypatch):
    """engine.progress.stage, as `tickparity emulator` uses it while numba compiles: not on
    a terminal, one line when the step starts and one with its duration when it ends (on
    stderr); nothing above the warning log level (`--log-level error`)."""
    import logging

    from engine.progress import stage

    monkeypatch.setenv("TICKPARITY_PROGRESS", "0")
    with stage("tickparity emulator", "compiling"):
        print("inside")
    out, err = capsys.readouterr()
    assert out == "inside\n"
    first, last = err.splitlines()
    assert first == "tickparity emulator: compiling ..."
    assert re.fullmatch(r"tickparity emulator: compiling \.\.\. done in \d+\.\d s", last)
    logger = logging.getLogger("tickparity")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with stage("tickparity emulator", "compiling"):
            pass
    finally:
        logger.setLevel(level)
    assert capsys.readouterr().err == ""
