"""`SimVenueConfig.config_hash` (config.json's `venue_models`, the run's identity) covers
every input that changes fills: each `[venues.X]` key and `latency` key that a backtest
uses, and a latency file's content (its bytes, not its path). Issue #11: two backtests with
different latency files or `refusal_windows` showed the same venue model."""

from __future__ import annotations

import pytest
from test_sim_user_latency import JITTER

from engine.types import load_instruments
from engine.venue_profiles import LATENCY_KEYS, VENUE_TABLE_KEYS
from modes.backtest import MARGIN_MODEL_KEYS, venue_model_hash
from venues.sim import SimVenueConfig

HEADER = "ts_ns,entry_ns,response_ns,command,seq,venue,entry_min_ns,entry_max_ns\n"
ROUND_TRIPS = HEADER + "1000000,50000,5000,submit,1,sim,,\n1000000,100000,350000,submit,2,sim,20000,400000\n"

#: keys that change nothing a backtest computes: live modes' connection and credentials,
#: a position held at a live start, and `profile` (the values it resolves to are hashed)
NOT_SIMULATED = {"exchange", "url", "account", "api_key_env", "secret_env", "secrets_file", "open_positions",
                 "profile"}


def _write(path, text: str) -> str:
    path.write_text(text)
    return str(path)


def _hash(table: dict) -> str:
    return SimVenueConfig.from_table("sim", table).config_hash


def test_the_latency_files_content_not_its_path(tmp_path):
    path = _write(tmp_path / "latency.csv", ROUND_TRIPS)
    before = _hash({"latency": {"model": "recorded", "file": path}})
    # the same path, a 300 ms round trip instead of 55 us on the first line
    _write(tmp_path / "latency.csv", ROUND_TRIPS.replace("1000000,50000,5000,", "1000000,150000000,150000000,"))
    assert _hash({"latency": {"model": "recorded", "file": path}}) != before
    # the first content again, at another path: the same model
    (tmp_path / "elsewhere").mkdir()
    other = _write(tmp_path / "elsewhere" / "latency.csv", ROUND_TRIPS)
    assert _hash({"latency": {"model": "recorded", "file": other}}) == before


def test_refusal_windows_on_and_off_are_two_models(tmp_path):
    path = _write(tmp_path / "latency.csv", ROUND_TRIPS)
    on = SimVenueConfig.from_table("sim", {"latency": {"model": "recorded", "file": path}})
    off = SimVenueConfig.from_table("sim", {"latency": {"model": "recorded", "file": path, "refusal_windows": False}})
    assert on.arrival_windows.shape == (1, 5) and off.arrival_windows.shape == (0, 5)
    assert on.config_hash != off.config_hash
    # the default is the windows on: writing it out is the same model
    assert _hash({"latency": {"model": "recorded", "file": path, "refusal_windows": True}}) == on.config_hash


def test_the_file_digests_are_the_files_bytes(tmp_path):
    import hashlib

    path = _write(tmp_path / "latency.csv", ROUND_TRIPS)
    cfg = SimVenueConfig.from_table("sim", {"latency": {"model": "recorded", "file": path}})
    assert cfg.file_digests == (("file", hashlib.sha256(ROUND_TRIPS.encode()).hexdigest()),)


def _variants(tmp_path) -> dict[str, tuple[dict, dict]]:
    """For each simulated key, two tables that differ in it only (key -> (a, b))."""
    lat = _write(tmp_path / "latency.csv", ROUND_TRIPS)
    lat2 = _write(tmp_path / "latency2.csv", ROUND_TRIPS.replace(",350000,", ",360000,"))
    feed = _write(tmp_path / "feed_latency.csv", "ts_ns,feed_ns,stream,instrument\n1000,10,book,sim:BTC/USDT\n")
    feed2 = _write(tmp_path / "feed2.csv", "ts_ns,feed_ns,stream,instrument\n1000,11,book,sim:BTC/USDT\n")
    rep = _write(tmp_path / "report_latency.csv", "ts_ns,response_ns,report,venue\n1700,30,acknowledged,sim\n")
    rep2 = _write(tmp_path / "report2.csv", "ts_ns,response_ns,report,venue\n1700,31,acknowledged,sim\n")
    rec = {"model": "recorded", "file": lat}
    return {
        "queue_model": ({}, {"queue_model": "power:2"}),
        "maker_fee_bps": ({}, {"maker_fee_bps": 1}),
        "taker_fee_bps": ({}, {"taker_fee_bps": 1}),
        "partial_fills": ({}, {"partial_fills": False}),
        "stp": ({}, {"stp": "cancel-resting"}),
        "balances": ({}, {"balances": {"USDT": "1"}}),
        "enforce_balances": ({"balances": {"USDT": "1"}},
                             {"balances": {"USDT": "1"}, "enforce_balances": True}),
        "fee_asset": ({}, {"fee_asset": "received"}),
        "depth_conflation_ms": ({}, {"depth_conflation_ms": 100}),
        "request_budget": ({}, {"request_budget": True, "exchange": "binance"}),
        "latency.entry_ns": ({"latency": {"entry_ns": 1}}, {"latency": {"entry_ns": 2}}),
        "latency.response_ns": ({"latency": {"response_ns": 1}}, {"latency": {"response_ns": 2}}),
        "latency.feed_ns": ({"latency": {"feed_ns": 1}}, {"latency": {"feed_ns": 2}}),
        "latency.cancel_entry_ns": ({"latency": {"cancel_entry_ns": 1}}, {"latency": {"cancel_entry_ns": 2}}),
        "latency.amend_entry_ns": ({"latency": {"amend_entry_ns": 1}}, {"latency": {"amend_entry_ns": 2}}),
        "latency.model": ({"latency": {"entry_ns": 0}}, {"latency": rec}),
        "latency.file": ({"latency": rec}, {"latency": rec | {"file": lat2}}),
        "latency.spikes": ({}, {"latency": {"spikes": [[0, 10, 5]]}}),
        "latency.feed_file": ({"latency": {"feed_file": feed}}, {"latency": {"feed_file": feed2}}),
        "latency.params": ({"latency": {"model": "user_jitter_latency:jitter", "params": [100, 50, 5]}},
                           {"latency": {"model": "user_jitter_latency:jitter", "params": [100, 50, 6]}}),
        "latency.report_file": ({"latency": {"report_file": rep}}, {"latency": {"report_file": rep2}}),
        "latency.refusal_windows": ({"latency": rec}, {"latency": rec | {"refusal_windows": False}}),
    }


def test_every_key_that_changes_fills_changes_the_hash(tmp_path, monkeypatch):
    """Every key of `[venues.X]` and its `latency` table is either hashed (its variants give
    two hashes) or named here as not simulated; a new key fails this test until it is one
    or the other."""
    (tmp_path / "user_jitter_latency.py").write_text(JITTER)  # a latency model named by path
    monkeypatch.syspath_prepend(str(tmp_path))
    variants = _variants(tmp_path)
    keys = {k for k in VENUE_TABLE_KEYS if k != "latency"} | {f"latency.{k}" for k in LATENCY_KEYS}
    assert keys == set(variants) | NOT_SIMULATED | set(MARGIN_MODEL_KEYS)
    for key, (a, b) in variants.items():
        assert _hash(a) != _hash(b), key


@pytest.mark.parametrize("key, a, b", [("leverage", 5, 10), ("margin_mode", "cross", "isolated")])
def test_the_margin_keys_are_part_of_a_contract_venues_model(key, a, b):
    catalog = load_instruments()
    perp = {"binanceusdm:BTC/USDT:USDT": catalog["binanceusdm:BTC/USDT:USDT"]}
    spot = {"binance:BTC/USDT": catalog["binance:BTC/USDT"]}
    cfg = SimVenueConfig.from_table("binanceusdm", {})
    assert venue_model_hash(cfg, {key: a}, perp) != venue_model_hash(cfg, {key: b}, perp)
    assert venue_model_hash(cfg, {}, perp) == cfg.config_hash  # unset: the venue's defaults, as before
    spot_cfg = SimVenueConfig.from_table("binance", {})
    # a spot venue ignores them (a warning says so): the same model
    assert venue_model_hash(spot_cfg, {key: a}, spot) == venue_model_hash(spot_cfg, {key: b}, spot)
