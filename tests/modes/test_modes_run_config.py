"""The backtest command end to end: exact parameters, checked tables, run identity, dry run,
headline and console log level."""

import json
import subprocess

import pytest

from modes.cli import main

STRATEGY = """
from decimal import Decimal

from engine import Strategy


class Probe(Strategy):
    def __init__(self, qty: Decimal = Decimal("1"), bps: Decimal = Decimal("2"), every_ms: int = 500) -> None:
        if str(qty) != "0.01":  # the exact text the user wrote, not 0.01000000000000000020816...
            raise ValueError(f"qty arrived as {qty!r}")
        self.qty, self.bps, self.every_ms = qty, bps, every_ms

    def on_start(self, ctx) -> None:
        ctx.log("probe started", level="info", qty=self.qty)
        ctx.log("probe warns", level="warning")
"""


def _write_strategy(folder, text=STRATEGY):
    file = folder / "probe.py"
    file.write_text(text)
    return file


def _run(capsys, argv):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err.strip()


def test_param_from_the_command_line_reaches_the_strategy_exactly(capsys, tmp_path):
    strategy = _write_strategy(tmp_path)
    code, out, err = _run(capsys, ["backtest", "--strategy", f"{strategy}:Probe", "--data", "synthetic:1:5s",
                                   "--param", "qty=0.01", "--out", str(tmp_path / "run"), "--no-report"])
    assert code == 0, err
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    # effective parameters, defaults included
    assert config["params"] == {"qty": "0.01", "bps": "2", "every_ms": 500}
    assert config["instruments"] == ["binance:BTC/USDT"]


def test_param_from_a_toml_file_reaches_the_strategy_exactly(capsys, tmp_path):
    strategy = _write_strategy(tmp_path)
    run_toml = tmp_path / "run.toml"
    run_toml.write_text(f'[run]\nstrategy = "{strategy}:Probe"\ndata = "synthetic:1:5s"\n'
                        '[run.params]\nqty = 0.01\nbps = 0.5\n')
    code, _, err = _run(capsys, ["backtest", "--config", str(run_toml), "--out", str(tmp_path / "run"),
                                 "--no-report"])
    assert code == 0, err
    assert json.loads((tmp_path / "run" / "config.json").read_text())["params"]["bps"] == "0.5"


@pytest.mark.parametrize(("toml", "message"), [
    ('[venues.binanse]\nmaker_fee_bps = 1\n',
     "{file}: [venues.binanse]: no instrument of this run trades on venue 'binanse'; did you mean 'binance'? "
     "(venues in this run: binance)"),
    ('[venues.binance]\nlatency = { entry_nss = 5 }\n',
     "{file}: [venues.binance.latency] entry_nss: unknown key; did you mean 'entry_ns'? (valid keys: "
     "amend_entry_ns, cancel_entry_ns, entry_ns, feed_file, feed_ns, file, model, params, refusal_windows, report_file, response_ns, spikes)"),
    ('[run.params]\nqtty = 0.01\n',
     "{file}: [run.params] qtty: Probe() takes no parameter 'qtty'; did you mean 'qty'? "
     "(its parameters: qty, bps, every_ms)"),
    ('[run.params]\nevery_ms = 0.5\n', "{file}: [run.params] every_ms = 0.5: expected an integer"),
])
def test_config_mistakes_stop_the_run_before_any_output(capsys, tmp_path, toml, message):
    strategy = _write_strategy(tmp_path)
    run_toml = tmp_path / "run.toml"
    run_toml.write_text(f'[run]\nstrategy = "{strategy}:Probe"\ndata = "synthetic:1:5s"\n' + toml)
    code, out, err = _run(capsys, ["backtest", "--config", str(run_toml), "--out", str(tmp_path / "run")])
    assert code == 2
    assert err == "tickparity: error: " + message.format(file=run_toml)
    assert not (tmp_path / "run").exists() and not (tmp_path / ".run.partial").exists()


def test_editing_the_strategy_gives_a_new_run_id(capsys, tmp_path, monkeypatch, root):
    monkeypatch.chdir(tmp_path)
    strategy = _write_strategy(tmp_path)
    argv = ["backtest", "--strategy", f"{strategy}:Probe", "--data", "synthetic:1:5s", "--param", "qty=0.01",
            "--no-report"]
    assert _run(capsys, argv)[0] == 0
    first = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert _run(capsys, argv)[0] == 0  # unchanged: the same run directory
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == first
    _write_strategy(tmp_path, STRATEGY + "\n# edited\n")
    assert _run(capsys, argv)[0] == 0
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert len(first) == 1 and len(runs) == 2
    for name in runs:
        config = json.loads((tmp_path / "runs" / name / "config.json").read_text())
        assert config["run_id"] == name == json.loads((tmp_path / "runs" / name / "summary.json").read_text())[
            "run"]["config_hash"]
        assert set(config["files"]) == {"strategy", "instruments", "venue_profiles"}
        assert config["files"]["instruments"]["path"] == str(root / "engine" / "instruments.toml")
    digests = {json.loads((tmp_path / "runs" / n / "config.json").read_text())["files"]["strategy"]["sha256"]
               for n in runs}
    assert len(digests) == 2


def test_latency_file_is_part_of_the_run_id(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    strategy = _write_strategy(tmp_path)
    latency = tmp_path / "lat.txt"
    run_toml = tmp_path / "run.toml"
    run_toml.write_text(f'[run]\nstrategy = "{strategy}:Probe"\ndata = "synthetic:1:5s"\n[run.params]\n'
                        f'qty = 0.01\n[venues.binance]\nlatency = {{ model = "empirical", file = "{latency}" }}\n')
    ids = []
    for samples in ("1000\n2000\n", "1000\n3000\n"):
        latency.write_text(samples)
        code, out, err = _run(capsys, ["backtest", "--config", str(run_toml), "--dry-run"])
        assert code == 0, err
        config = json.loads(out[:out.index("\nrun id:")])
        assert config["files"]["venues.binance.latency.file"]["path"] == str(latency)
        ids.append(config["run_id"])
    assert ids[0] != ids[1]


def test_run_json_records_versions_and_git_commit(capsys, tmp_path, root):
    strategy = _write_strategy(tmp_path)
    code, _, err = _run(capsys, ["backtest", "--strategy", f"{strategy}:Probe", "--data", "synthetic:1:5s",
                                 "--param", "qty=0.01", "--out", str(tmp_path / "run"), "--no-report"])
    assert code == 0, err
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    import importlib.metadata
    import platform

    import numba
    import numpy

    assert info["tickparity"] == importlib.metadata.version("tickparity")
    assert info["python"] == platform.python_version()
    assert info["numba"] == numba.__version__ and info["numpy"] == numpy.__version__
    if (root / ".git").exists():
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True)
        assert info["git_commit"] == head.stdout.strip()
    assert info["run_id"] == json.loads((tmp_path / "run" / "config.json").read_text())["run_id"]


def test_dry_run_prints_config_and_span_and_writes_nothing(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    strategy = _write_strategy(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = _run(capsys, ["backtest", "--strategy", f"{strategy}:Probe", "--data", "synthetic:3:10m",
                                   "--param", "qty=0.01", "--from", "2024-01-01T00:02:00Z", "--dry-run"])
    assert code == 0, err
    config = json.loads(out[:out.index("\nrun id:")])
    assert config["params"] == {"qty": "0.01", "bps": "2", "every_ms": 500}
    assert config["start_ns"] == 1_704_067_320_000_000_000
    lines = out.splitlines()
    assert f"run id: {config['run_id']}; run directory: runs/{config['run_id']}" in lines
    # synthetic:3:10m from 00:02 spans 00:02 .. 00:12
    assert ("data binance:BTC/USDT: 2024-01-01T00:02:00.000000Z .. 2024-01-01T00:12:00.000000Z "
            "(run window: 2024-01-01T00:02:00.000000Z .. end)") in lines
    assert lines[-1] == "dry run: nothing written"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "__pycache__") == before


def test_dry_run_on_a_store_prints_its_time_span(capsys, tmp_path):
    store = f"duckdb:{tmp_path / 'd.duckdb'}"
    assert main(["data", "generate", "--to", store, "--instrument", "binance:BTC/USDT", "--seed", "2",
                 "--duration", "30s", "--start", "2024-08-08T00:00:00Z"]) == 0
    capsys.readouterr()
    strategy = _write_strategy(tmp_path)
    code, out, err = _run(capsys, ["backtest", "--strategy", f"{strategy}:Probe", "--data", store,
                                   "--param", "qty=0.01", "--dry-run"])
    assert code == 0, err
    import duckdb

    con = duckdb.connect(str(tmp_path / "d.duckdb"), read_only=True)
    first, last = con.execute("SELECT min(local_ts), max(local_ts) FROM events").fetchone()
    con.close()
    from replay.schema import format_ns

    assert f"data binance:BTC/USDT: {format_ns(first)} .. {format_ns(last)} (run window: start .. end)" in out
    assert format_ns(first).startswith("2024-08-08T00:00:00")


def test_backtest_ends_with_the_report_headline(capsys, tmp_path):
    strategy = _write_strategy(tmp_path)
    code, out, err = _run(capsys, ["backtest", "--strategy", f"{strategy}:Probe", "--data", "synthetic:1:5s",
                                   "--param", "qty=0.01", "--out", str(tmp_path / "run")])
    assert code == 0, err
    from modes.report_cmd import headline_text

    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    headline = headline_text(summary["headline"])
    assert out.endswith(headline + "\n")
    assert headline.startswith("fills 0  notional 0  net PnL ")
    assert "markout 1s/60s" in headline and "fill ratio" in headline


def test_console_log_level(capsys, tmp_path):
    strategy = _write_strategy(tmp_path)
    argv = ["backtest", "--strategy", f"{strategy}:Probe", "--data", "synthetic:1:5s", "--param", "qty=0.01",
            "--out", str(tmp_path / "run"), "--no-report"]
    code, _, err = _run(capsys, argv)
    assert code == 0
    assert "tickparity: WARNING: 2024-01-01T00:00:00.000000Z probe warns" in err.splitlines()
    assert "probe started" not in err  # info is below the default level (warning)
    code, _, err = _run(capsys, [*argv, "--log-level", "info"])
    assert code == 0
    assert "tickparity: INFO: 2024-01-01T00:00:00.000000Z probe started qty=0.01" in err.splitlines()
    code, _, err = _run(capsys, ["--log-level", "error", *argv])
    assert code == 0 and "probe" not in err


def test_run_id_ignores_out_but_not_the_seed(capsys, tmp_path):
    strategy = _write_strategy(tmp_path)
    ids = []
    for extra in (["--out", "runs/a"], ["--out", "runs/b"], ["--out", "runs/a", "--seed", "1"]):
        code, out, err = _run(capsys, ["backtest", "--strategy", f"{strategy}:Probe", "--data", "synthetic:1:5s",
                                       "--param", "qty=0.01", "--dry-run", *extra])
        assert code == 0, err
        ids.append(json.loads(out[:out.index("\nrun id:")])["run_id"])
    assert ids[0] == ids[1] != ids[2]


def test_log_level_error_also_silences_the_runs_own_warnings(capsys, tmp_path):
    """--log-level error hides every warning: ctx.log notes and the venue defaults alike."""
    strategy = _write_strategy(tmp_path)
    argv = ["backtest", "--strategy", f"{strategy}:Probe", "--data", "synthetic:1:5s", "--param", "qty=0.01",
            "--out", str(tmp_path / "run"), "--no-report"]
    code, _, err = _run(capsys, argv)
    assert code == 0 and "tickparity: warning: [venues.binance]" in err  # the defaults, by default
    code, _, err = _run(capsys, ["--log-level", "error", *argv])
    assert code == 0 and err == ""


def test_a_balance_of_an_asset_the_run_does_not_trade_is_an_error(capsys, tmp_path):
    strategy = _write_strategy(tmp_path)
    config = tmp_path / "run.toml"
    config.write_text(f'[run]\nstrategy = "{strategy}:Probe"\ndata = "synthetic:1:5s"\n\n[run.params]\nqty = 0.01\n\n'
                      '[venues.binance]\nbalances = { USDTT = "100000", BTC = "1" }\n')
    code, _, err = _run(capsys, ["backtest", "--config", str(config), "--out", str(tmp_path / "run")])
    assert code == 2
    assert err == (f"tickparity: error: {config}: [venues.binance.balances] USDTT: no instrument of this run "
                   "trades it; did you mean 'USDT'? (the run trades binance:BTC/USDT: BTC, USDT; the instruments "
                   "come from [run] instruments or --instrument)")
    # the cause is often --instrument picking another pair: the message names the pair
    code, _, err = _run(capsys, ["backtest", "--config", str(config), "--instrument", "binance:ETH/USDT",
                                 "--out", str(tmp_path / "run")])
    assert code == 2
    assert err.startswith(f"tickparity: error: {config}: [venues.binance.balances] ")
    assert "(the run trades binance:ETH/USDT: ETH, USDT;" in err
    assert not (tmp_path / "run").exists()


def test_dry_run_applies_the_runs_window_check_and_states_the_defaults(capsys, tmp_path):
    strategy = _write_strategy(tmp_path)
    base = ["backtest", "--strategy", f"{strategy}:Probe", "--data", "synthetic:3:10m", "--param", "qty=0.01",
            "--dry-run"]
    # synthetic:3:10m starts at --from (default 2024-01-01T00:00Z): a window ending before it is empty
    code, out, err = _run(capsys, [*base, "--to", "2023-12-31T00:00:00Z"])
    assert code == 2 and "no data in the window" in err and out == ""
    code, out, err = _run(capsys, base)
    assert code == 0
    assert "tickparity: warning: [venues.binance] maker_fee_bps, taker_fee_bps not set" in err
    resolved = json.loads(out[:out.index("\nrun id:")])["venues_resolved"]["binance"]
    assert resolved["taker_fee_bps"] == "10" and resolved["entry_ns"] == 5_000_000
