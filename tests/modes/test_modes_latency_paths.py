"""Latency files named in a config (`[venues.X] latency.file`, `feed_file`, `report_file`)
are read from the config file's folder, as the config's other paths, whatever the working
directory (issue #11: they were read from the working directory). Absolute paths stay as
they are; a missing file is one line naming the key and the resolved path.

The run: the data and pinger of test_modes_backtest_end (a resting buy at every 100 ms
timer, timers at 100..900 ms), the `recorded` latency of one line: entry 150 ms and
response 150 ms, which hold at every time (the nearest record). So each order is
acknowledged 300 ms after it was sent, which only the file gives (the profile's constant
latency is not used with the recorded model).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from engine.types import EventKind
from modes.cli import main
from tests.modes.test_modes_backtest_conflation import MS, T, write_store
from tests.modes.test_modes_backtest_end import PINGER

LATENCY_CSV = ("ts_ns,entry_ns,response_ns,command,seq,venue,entry_min_ns,entry_max_ns\n"
               f"{T + 100 * MS},{150 * MS},{150 * MS},submit,1,binance,,\n")


def _setup(tmp_path: Path, latency_file: str) -> Path:
    """cfg/run.toml naming `latency_file`; cfg/session/latency.csv; returns the config path."""
    cfg = tmp_path / "cfg"
    (cfg / "session").mkdir(parents=True)
    (cfg / "session" / "latency.csv").write_text(LATENCY_CSV)
    (cfg / "pinger.py").write_text(PINGER)
    data = write_store(cfg, [
        (0, EventKind.SNAPSHOT_BEGIN, 0, 0, 0), (0, EventKind.BOOK_DELTA, 1, 6_000_000, 100_000),
        (0, EventKind.BOOK_DELTA, -1, 6_000_200, 100_000), (0, EventKind.SNAPSHOT_END, 0, 0, 0),
        (1000, EventKind.TRADE, 1, 6_000_200, 1_000)])
    (cfg / "run.toml").write_text(f"""
[run]
strategy = "pinger.py:Pinger"
data = "{data}"
instruments = ["binance:BTC/USDT"]
[venues.binance]
profile = "zero-cost"
latency = {{ model = "recorded", file = "{latency_file}" }}
balances = {{ USDT = "1000000", BTC = "0" }}
""")
    return cfg / "run.toml"


def _acks_ms(run: Path) -> list[tuple[int, int]]:
    rows = pq.read_table(run / "orders.parquet").to_pylist()
    return [((o["created_ts"] - T) // MS, (o["ack_ts"] - T) // MS) for o in rows]


@pytest.mark.parametrize("absolute", [False, True])
def test_a_latency_file_is_read_from_the_config_files_folder(tmp_path, monkeypatch, absolute):
    name = str(tmp_path / "cfg" / "session" / "latency.csv") if absolute else "session/latency.csv"
    config = _setup(tmp_path, name)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # no session/latency.csv here
    assert main(["backtest", "--config", str(config), "--out", str(tmp_path / "run"), "--no-report"]) == 0
    assert _acks_ms(tmp_path / "run") == [(t, t + 300) for t in range(100, 1000, 100)]
    files = json.loads((tmp_path / "run" / "config.json").read_text())["files"]
    digest = files["venues.binance.latency.file"]
    assert Path(digest["path"]).resolve() == (tmp_path / "cfg" / "session" / "latency.csv").resolve()
    assert digest["sha256"] == hashlib.sha256(LATENCY_CSV.encode()).hexdigest()


def test_a_missing_latency_file_names_the_key_and_the_resolved_path(tmp_path, monkeypatch, capsys):
    config = _setup(tmp_path, "session/nope.csv")
    monkeypatch.chdir(tmp_path)
    assert main(["backtest", "--config", "cfg/run.toml", "--out", str(tmp_path / "run"), "--no-report"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    resolved = (tmp_path / "cfg" / "session" / "nope.csv")
    assert err[-1] == (f"tickparity: error: cfg/run.toml: [venues.binance] latency.file = 'session/nope.csv': "
                       f"file not found: {resolved} (a relative path is read from the config file's folder)")
    assert not config.with_name("run").exists() and not (tmp_path / "run").exists()
