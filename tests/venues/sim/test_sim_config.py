"""`[venues.<name>]` parsing: defaults, validation messages, stable hash."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.errors import ConfigError
from venues.sim import SimVenueConfig
from venues.sim.codes import QM_LOG, QM_POWER, QM_RISK_AVERSE

ISSUE_TABLE = {
    "queue_model": "risk_averse",
    "latency": {"entry_ns": 1_000_000, "response_ns": 1_000_000, "feed_ns": 0},
    "maker_fee_bps": 1.0,
    "taker_fee_bps": 5.0,
}


def test_issue_table_parses_with_defaults():
    cfg = SimVenueConfig.from_table("binance", ISSUE_TABLE)
    assert (cfg.queue_code, cfg.entry_ns, cfg.response_ns, cfg.feed_ns) == (
        QM_RISK_AVERSE, 1_000_000, 1_000_000, 0)
    assert cfg.cancel_entry_ns == cfg.amend_entry_ns == 1_000_000
    assert cfg.maker_fee_bps == Decimal("1.0") and cfg.taker_fee_bps == Decimal("5.0")
    assert cfg.partial_fills is True and cfg.stp == "cancel-new"
    assert cfg.config_hash == SimVenueConfig.from_table("binance", dict(ISSUE_TABLE)).config_hash
    other = SimVenueConfig.from_table("binance", ISSUE_TABLE | {"maker_fee_bps": "-0.5"})
    assert other.maker_fee_bps == Decimal("-0.5")  # a rebate
    assert other.config_hash != cfg.config_hash


def test_queue_models():
    assert SimVenueConfig.from_table("x", {"queue_model": "power:2"}).queue_code == QM_POWER
    assert SimVenueConfig.from_table("x", {"queue_model": "power:0.5"}).queue_param == 0.5
    assert SimVenueConfig.from_table("x", {"queue_model": "log"}).queue_code == QM_LOG


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"x": 1}, r"\[venues.binance\] unknown key 'x'"),
        ({"latency": {"entry": 1}}, r"unknown key 'latency.entry'"),
        ({"latency": {"entry_ns": 1.5}}, r"latency.entry_ns = 1.5: expected an integer"),
        ({"latency": {"entry_ns": -1}}, r"latency.entry_ns = -1"),
        ({"queue_model": "fifo"}, r"queue_model = 'fifo'"),
        ({"queue_model": "power:-1"}, r"positive exponent"),
        ({"queue_model": "power:x"}, r"positive exponent"),
        ({"stp": "cancel"}, r"stp = 'cancel'"),
        ({"partial_fills": "yes"}, r"partial_fills = 'yes'"),
        ({"maker_fee_bps": "abc"}, r"maker_fee_bps = 'abc'"),
        ({"latency": {"model": "empirical"}}, r"needs latency.file"),
        ({"latency": {"model": "gauss"}}, r"latency.model = 'gauss'"),
        ({"latency": {"model": "empirical", "file": "/nonexistent"}}, r"file not found"),
        ({"latency": {"spikes": [[5, 1, 3]]}}, r"latency.spikes item"),
    ],
)
def test_bad_tables_name_the_key(table, message):
    with pytest.raises(ConfigError, match=message):
        SimVenueConfig.from_table("binance", table)


def test_empirical_latency_file(tmp_path):
    one = tmp_path / "one.txt"
    one.write_text("# observed one-way ns\n100\n200\n\n300\n")
    cfg = SimVenueConfig.from_table("x", {"latency": {"model": "empirical", "file": str(one)}})
    assert cfg.latency_samples.tolist() == [[100, 100], [200, 200], [300, 300]]
    two = tmp_path / "two.csv"
    two.write_text("100,7\n200,8\n")
    cfg = SimVenueConfig.from_table("x", {"latency": {"model": "empirical", "file": str(two)}})
    assert cfg.latency_samples.tolist() == [[100, 7], [200, 8]]
    bad = tmp_path / "bad.txt"
    bad.write_text("100\nabc\n")
    with pytest.raises(ConfigError, match=r"bad.txt:2"):
        SimVenueConfig.from_table("x", {"latency": {"model": "empirical", "file": str(bad)}})
