"""Venue defaults are stated, not silent (issue 9): profiles, warnings, balances, zero-cost."""

from __future__ import annotations

import json
from decimal import Decimal

import pyarrow.parquet as pq
import pytest

from engine.config import load_config_file
from engine.errors import ConfigError
from engine.venue_profiles import VENUE_TABLE_KEYS, load_profiles, resolve_venue_table
from modes.cli import main

MM = "examples/market_maker.py:MarketMaker"


def _config(tmp_path, root, venue_table: str, params: str = "") -> str:
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'[run]\nstrategy = "{root}/{MM}"\ndata = "synthetic:11:1m"\n'
                   f'[run.params]\nhalf_spread_bps = 0.01\n{params}\n{venue_table}\n')
    return str(cfg)


def _run(capsys, cfg, out):
    code = main(["backtest", "--config", cfg, "--out", str(out), "--no-report"])
    err = capsys.readouterr().err
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())["run"]
    return summary, [line for line in err.splitlines() if "warning:" in line]


def test_a_run_without_venue_table_warns_once_per_default_and_uses_the_profile(capsys, tmp_path,
                                                                               request):
    root = request.config.rootpath
    summary, warnings = _run(capsys, _config(tmp_path, root, ""), tmp_path / "o")
    assert len(warnings) == 3
    fees, latency, balances = warnings
    assert "[venues.binance] maker_fee_bps, taker_fee_bps not set: using maker_fee_bps = 10 / " \
           "taker_fee_bps = 10 bps from profile 'binance-spot-vip0'" in fees
    assert "binance.com/en/fee/schedule" in fees
    assert "[venues.binance] latency not set: using entry_ns = 5 ms, response_ns = 5 ms, " \
           "feed_ns = 0 ms" in latency
    assert "[venues.binance] balances not set: starting with 100000 USDT" in balances
    venue = summary["venues"]["binance"]
    assert venue == {"profile": "binance-spot-vip0", "maker_fee_bps": "10", "taker_fee_bps": "10",
                     "entry_ns": 5_000_000, "response_ns": 5_000_000, "feed_ns": 0,
                     "enforce_balances": True, "balances": {"USDT": "100000"}, "fee_asset": "received"}
    assert summary["defaults"] == [w.split("warning: ", 1)[1] for w in warnings]


def test_a_spot_venue_rejects_orders_beyond_the_balance(capsys, tmp_path, request):
    """10 USDT and no BTC: the market maker's 0.01 BTC bids (about 600 USDT) and its asks
    (BTC not held) are all rejected by the venue with insufficient_balance, but for the
    post-only quotes that would cross (that check comes first); nothing fills."""
    root = request.config.rootpath
    table = '[venues.binance]\nbalances = { USDT = "10" }\n'
    summary, warnings = _run(capsys, _config(tmp_path, root, table), tmp_path / "o")
    orders = pq.read_table(tmp_path / "o" / "orders.parquet").to_pylist()
    assert orders and {o["status"] for o in orders} == {"rejected"}
    reasons = [o["reason"] for o in orders]
    assert set(reasons) == {"insufficient_balance", "post_only_would_take"}
    assert reasons.count("insufficient_balance") > len(orders) // 2
    assert summary["fills"] == 0
    assert summary["balances"] == {"binance:USDT": "10"}
    assert len(warnings) == 2  # fees and latency still defaulted; balances stated


def test_the_zero_cost_profile_reproduces_runs_before_profiles(capsys, tmp_path, request):
    """profile = "zero-cost": no warnings, 0 fees, 0 latency, no balances and no balance
    checks, so the market maker may sell BTC it does not hold, as every run did before."""
    root = request.config.rootpath
    table = '[venues.binance]\nprofile = "zero-cost"\n'
    summary, warnings = _run(capsys, _config(tmp_path, root, table), tmp_path / "z")
    assert warnings == []
    assert summary["venues"]["binance"] == {
        "profile": "zero-cost", "maker_fee_bps": "0", "taker_fee_bps": "0", "entry_ns": 0,
        "response_ns": 0, "feed_ns": 0, "enforce_balances": False, "balances": {}, "fee_asset": "quote"}
    fills = pq.read_table(tmp_path / "z" / "fills.parquet").to_pylist()
    assert fills and all(Decimal(f["fee"]) == 0 for f in fills)
    # the same run with every zero written out explicitly gives identical fills
    explicit = ('[venues.binance]\nmaker_fee_bps = "0"\ntaker_fee_bps = "0"\nbalances = {}\n'
                'enforce_balances = false\nlatency = { entry_ns = 0, response_ns = 0, feed_ns = 0 }\n'
                'fee_asset = "quote"\n')
    _run(capsys, _config(tmp_path, root, explicit), tmp_path / "e")
    assert pq.read_table(tmp_path / "e" / "fills.parquet").to_pylist() == fills


def test_unknown_venue_keys_list_the_valid_ones(tmp_path, request):
    with pytest.raises(ConfigError) as err:
        resolve_venue_table("binance", {"taker_fee": 5}, ["USDT"])
    assert str(err.value) == ("[venues.binance] unknown key 'taker_fee'; valid keys: "
                              + ", ".join(VENUE_TABLE_KEYS))
    with pytest.raises(ConfigError, match="profile = 'cheap': expected one of"):
        resolve_venue_table("binance", {"profile": "cheap"}, ["USDT"])


def test_every_shipped_profile_states_its_sources():
    profiles = load_profiles()
    assert {"binance", "okx", "bybit", "coinbase", "kraken"} <= set(profiles.venue_default)
    for prof in profiles.profiles.values():
        assert prof.fee_source and prof.latency_source and prof.description
    vip0 = profiles.profiles["binance-spot-vip0"]
    assert (vip0.maker_fee_bps, vip0.taker_fee_bps) == ("10", "10")  # 0.1% / 0.1%


def test_a_venue_without_profile_uses_generic_and_says_so():
    table, notes = resolve_venue_table("myvenue", {}, ["USD"])
    assert table["profile"] == "generic" and len(notes) == 3
    assert all(n.startswith("[venues.myvenue]") for n in notes)


def test_example_configs_state_their_venue_settings(request):
    """The shipped examples fall back on no default (so they print no warning)."""
    root = request.config.rootpath
    for name in ("market_maker.toml", "twap.toml"):
        raw = load_config_file(root / "examples" / name)
        for venue, table in raw["venues"].items():
            assert resolve_venue_table(venue, table, ["USDT"])[1] == []


def test_the_compiled_loop_applies_the_same_balance_check(tmp_path, request):
    """examples/compiled_market_maker.py with 700 USDT and no BTC: its 0.01 BTC bids (about
    600 USDT each) are accepted one at a time, its asks rejected insufficient_balance, in
    the numba loop exactly as through the Python adapter."""
    from engine.compiled import CompiledStrategy

    root = request.config.rootpath
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'[run]\nstrategy = "{root}/examples/compiled_market_maker.py:CompiledTouchQuoter"\n'
                   'data = "synthetic:5:1m"\nseed = 3\n[run.params]\nqty = "0.01"\nevery_ms = 100\n'
                   '[venues.binance]\nprofile = "binance-spot-vip0"\nbalances = { USDT = "700" }\n')
    assert main(["backtest", "--config", str(cfg), "--out", str(tmp_path / "fast"), "--no-report"]) == 0
    mp = pytest.MonkeyPatch()
    mp.setattr(CompiledStrategy, "fast_path", False)
    try:
        assert main(["backtest", "--config", str(cfg), "--out", str(tmp_path / "py"), "--no-report"]) == 0
    finally:
        mp.undo()
    fast = pq.read_table(tmp_path / "fast" / "orders.parquet").to_pylist()
    assert any(o["reason"] == "insufficient_balance" and o["side"] == "sell" for o in fast)
    assert pq.read_table(tmp_path / "py" / "orders.parquet").to_pylist() == fast
    summary = json.loads((tmp_path / "fast" / "summary.json").read_text())["run"]
    assert Decimal(summary["balances"]["binance:USDT"]) >= 0


PARKED = '''
from decimal import Decimal
from engine.strategy import Strategy


class Parked(Strategy):
    """Parks one buy of 0.01 BTC 10% below the bid and notes the balances once acked."""

    def on_start(self, ctx):
        ctx.subscribe("binance:BTC/USDT")
        self.sent = None

    def on_book(self, ctx, book):
        if self.sent is None and book.best_bid is not None:
            price = (book.best_bid * Decimal("0.9")).quantize(Decimal("0.01"))
            self.sent = ctx.submit("binance:BTC/USDT", "buy", "0.01", price)
            ctx.log("sent", price=price)

    def on_order(self, ctx, update):
        if update.client_id == self.sent and update.status == "acknowledged":
            ctx.log("balances", total=ctx.balance("binance", "USDT"),
                    free=ctx.balance("binance", "USDT", "free"),
                    locked=ctx.balance("binance", "USDT", "locked"))
'''


def test_ctx_balance_tells_free_from_locked(capsys, tmp_path):
    """1000 USDT; a resting buy of 0.01 BTC at price P locks 0.01 x P (Binance charges its
    10 bp fee in the BTC it receives, so no fee is locked in USDT): once acked,
    ctx.balance gives total 1000, locked that amount, free the rest."""
    (tmp_path / "parked.py").write_text(PARKED)
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'[run]\nstrategy = "{tmp_path}/parked.py:Parked"\ndata = "synthetic:3:20s"\n'
                   '[venues.binance]\nprofile = "binance-spot-vip0"\nbalances = { USDT = "1000" }\n')
    assert main(["backtest", "--config", str(cfg), "--out", str(tmp_path / "o"), "--no-report"]) == 0
    notes = [json.loads(line) for line in (tmp_path / "o" / "audit.jsonl").read_text().splitlines()]
    notes = {n["message"]: n for n in notes if n.get("kind") == "note" or "message" in n}
    price = Decimal(notes["sent"]["price"])
    locked = Decimal("0.01") * price
    bal = notes["balances"]
    assert (Decimal(bal["total"]), Decimal(bal["locked"]), Decimal(bal["free"])) == (
        Decimal("1000"), locked, Decimal("1000") - locked)


def test_a_partial_latency_table_is_completed_from_the_profile_with_a_warning():
    table, notes = resolve_venue_table("binance", {"latency": {"entry_ns": 2_000_000},
                                                   "maker_fee_bps": 1, "taker_fee_bps": 2,
                                                   "balances": {}}, ["USDT"])
    assert table["latency"] == {"entry_ns": 2_000_000, "response_ns": 5_000_000, "feed_ns": 0}
    assert notes == ["[venues.binance] latency.response_ns, latency.feed_ns not set: using "
                     "response_ns = 5 ms, feed_ns = 0 ms from profile 'binance-spot-vip0' "
                     "(client in AWS ap-northeast-1; 5-12 ms round trips measured there (see "
                     "the file header))"]
    empirical = {"latency": {"model": "empirical", "file": "x.txt"}, "maker_fee_bps": 1,
                 "taker_fee_bps": 2, "balances": {}}
    table, notes = resolve_venue_table("binance", empirical, ["USDT"])
    assert table["latency"] == {"model": "empirical", "file": "x.txt", "feed_ns": 0}
    assert len(notes) == 1 and "latency.feed_ns not set" in notes[0]
