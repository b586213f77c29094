"""Smart order router: hand-computed splits, and routed children through a two-venue backtest."""

import json
from decimal import Decimal as D

import pyarrow.parquet as pq

from engine.config import resolve
from engine.execution.router import (
    RouteParams,
    VenueQuote,
    plan_aggressive,
    plan_passive,
    same_asset,
)
from modes.backtest import run_backtest

P = RouteParams(latency_cost_bps_per_ms=D("0.05"), quote_life_ms=D("200"), passive_horizon_s=D("10"))


def quote(inst, levels, fee, latency, cap=D("100"), rate=D(0)):
    return VenueQuote(inst, inst.split(":")[0], tuple((D(p), D(q)) for p, q in levels), D(fee), D(latency),
                      cap, D("0.001"), D("0.001"), D(rate))


def test_aggressive_split_by_price_after_fees_and_latency():
    """Buy 3. Venue a: asks 100.00 x 1, 100.10 x 2; taker 5 bps; 1 ms. Venue b: asks
    100.02 x 1.5, 100.05 x 1; taker 2 bps; 4 ms. Latency cost 0.05 bps/ms, quote life 200 ms.

    a: cost 5 + 0.05 = 5.05 bps, survival 1 - 1/200 = 0.995: a1 = 100.00 * 1.000505 = 100.0505,
       a2 = 100.10 * 1.000505 = 100.1505505, usable 0.995 and 1.99
    b: cost 2 + 0.2 = 2.2 bps, survival 1 - 4/200 = 0.98: b1 = 100.02 * 1.00022 = 100.0420044,
       b2 = 100.05 * 1.00022 = 100.072011, usable 1.47 and 0.98
    Best first: b1 1.47 (1.53 left), a1 0.995 (0.535 left), b2 0.535 (done):
    a 0.995 up to 100.00, b 1.47 + 0.535 = 2.005 up to 100.05.
    """
    quotes = [quote("a:BTC/USDT", [("100.00", "1"), ("100.10", "2")], "5", "1"),
              quote("b:BTC/USDT", [("100.02", "1.5"), ("100.05", "1")], "2", "4")]
    splits, unrouted = plan_aggressive("buy", D("3"), quotes, P)
    assert [(s.instrument, s.qty, s.price) for s in splits] == [
        ("a:BTC/USDT", D("0.995"), D("100.00")), ("b:BTC/USDT", D("2.005"), D("100.05"))]
    assert unrouted == 0
    assert "taker 5 bps + latency 0.05 bps" in splits[0].reason

    # b may take at most 1.0 (its balance): b1 1.0, a1 0.995, b2 no room, a2 1.005
    quotes[1] = quote("b:BTC/USDT", [("100.02", "1.5"), ("100.05", "1")], "2", "4", cap=D("1.0"))
    splits, unrouted = plan_aggressive("buy", D("3"), quotes, P)
    assert [(s.instrument, s.qty, s.price) for s in splits] == [
        ("a:BTC/USDT", D("2.000"), D("100.10")), ("b:BTC/USDT", D("1.0"), D("100.02"))]
    # a limit price stops at the levels within it: 100.02 leaves a2 and b2 out
    splits, unrouted = plan_aggressive("buy", D("3"), quotes, P, limit_price=D("100.02"))
    assert [(s.instrument, s.qty) for s in splits] == [("a:BTC/USDT", D("0.995")), ("b:BTC/USDT", D("1.0"))]
    assert unrouted == D("1.005")


def test_passive_split_by_maker_price_and_fill_capacity():
    """Buy passively. a: bid 99.90 x 3, maker 1 bps, sells 0.5/s: eff 99.90 * 1.0001 = 99.90999,
    capacity 0.5 * 10 - 3 = 2. b: bid 99.95 x 1, maker -0.5 bps (rebate), sells 0.2/s:
    eff 99.95 * 0.99995 = 99.9450025, capacity 0.2 * 10 - 1 = 1.
    2.5: a (cheaper after fees) takes its capacity 2, b 0.5.
    4: a 2, b 1, the last 1 to the largest capacity (a): a 3, b 1."""
    quotes = [quote("a:BTC/USDT", [("99.90", "3")], "1", "1", rate=D("0.5")),
              quote("b:BTC/USDT", [("99.95", "1")], "-0.5", "1", rate=D("0.2"))]
    splits, unrouted = plan_passive("buy", D("2.5"), quotes, P)
    assert [(s.instrument, s.qty, s.price) for s in splits] == [
        ("a:BTC/USDT", D("2.000"), D("99.90")), ("b:BTC/USDT", D("0.500"), D("99.95"))]
    splits, unrouted = plan_passive("buy", D("4"), quotes, P)
    assert [(s.instrument, s.qty) for s in splits] == [("a:BTC/USDT", D("3.000")), ("b:BTC/USDT", D("1.000"))]
    assert unrouted == 0


def test_same_asset_needs_matching_quotes_unless_mapped():
    assert same_asset("BTC", "USDT", "BTC", "USDT", {})
    assert not same_asset("BTC", "USDT", "BTC", "USD", {})
    assert not same_asset("BTC", "USDC", "BTC", "USDT", {})
    assert same_asset("BTC", "USD", "BTC", "USDT", {"USD": "USDT"})


def routed_run(tmp_path, name, params, binance_fees=(1.0, 10.0), okx_fees=(0.8, 5.0)):
    config = resolve({"run": {
        "strategy": "tests/engine/routing_flow.py:RoutedTWAP", "data": "synthetic:4:90s",
        "instruments": ["binance:BTC/USDT", "okx:BTC/USDT"], "params": params},
        "venues": {"binance": {"maker_fee_bps": binance_fees[0], "taker_fee_bps": binance_fees[1],
                               "balances": {"USDT": "1000000", "BTC": "0.3"}},
                   "okx": {"maker_fee_bps": okx_fees[0], "taker_fee_bps": okx_fees[1],
                           "balances": {"USDT": "1000000", "BTC": "2"}}}}, {})
    out = run_backtest(config, tmp_path / name, write_html=False)
    fills = pq.read_table(out / "fills.parquet").to_pylist()
    audit = [json.loads(x) for x in (out / "audit.jsonl").read_text().splitlines()]
    return out, fills, audit


def test_routed_sale_respects_balances_and_audits_reasons(tmp_path):
    """Sell 1 BTC with binance the cheaper venue (taker 2 vs 5 bps): binance holds only 0.3 BTC,
    so at most 0.3 is sold there (a spot sale only where the base is held) and the rest on okx;
    every route decision is audited with a reason per split."""
    out, fills, audit = routed_run(tmp_path, "routed", {"side": "sell", "quantity": "1"}, binance_fees=(1.0, 2.0))
    sold = {}
    for f in fills:
        sold[f["venue"]] = sold.get(f["venue"], D(0)) + D(f["qty"])
    assert sold.get("binance", D(0)) <= D("0.3")
    assert sum(sold.values()) == D("1")
    routes = [r for r in audit if r.get("action") == "route"]
    assert routes and all(s["reason"] for r in routes for s in r["splits"])
    assert {s["venue"] for r in routes for s in r["splits"]} == {"binance", "okx"}
    summary = json.loads((out / "summary.json").read_text())["run"]
    assert D(summary["balances"]["binance:BTC"]) >= 0


def test_a_down_venue_gets_nothing(tmp_path):
    """okx is marked down 5 s in: no child is sent to okx after that (audited venue_health),
    and later route records list it as skipped."""
    out, fills, audit = routed_run(tmp_path, "down", {"side": "buy", "quantity": "1", "down_venue": "okx",
                                                      "down_at_ms": 5000})
    down = next(r for r in audit if r.get("action") == "venue_health")
    assert down["venue"] == "okx" and down["state"] == "down"
    later = [r for r in audit if r.get("action") == "route" and r["ts"] >= down["ts"]]
    assert later
    for r in later:
        assert all(s["venue"] != "okx" for s in r["splits"])
        assert any("okx" in reason for reason in r["skipped"])
    assert all(f["venue"] != "okx" or f["ts"] < down["ts"] + 10_000_000 for f in fills)


def test_open_passive_slices_are_rerouted_when_a_venue_goes_down(tmp_path):
    """Passive routed TWAP (okx pays a maker rebate, so it gets the resting slices): okx goes
    down 40 ms in, while the first passive child rests there; it is cancelled at once (the
    cancel request is audited at the venue_health time) and its quantity re-posted on binance,
    the only venue left, once the cancel is confirmed (no venue latency is configured here,
    so within the same nanosecond)."""
    out, fills, audit = routed_run(tmp_path, "passive", {"side": "buy", "quantity": "1", "style": "passive",
                                                         "down_venue": "okx", "down_at_ms": 40},
                                   okx_fees=(-0.5, 5.0))  # okx's rebate draws the passive slices
    orders = {o["client_id"]: o for o in pq.read_table(out / "orders.parquet").to_pylist()}
    down = next(r for r in audit if r.get("action") == "venue_health")
    open_on_okx = [o for o in orders.values() if o["venue"] == "okx" and o["created_ts"] < down["ts"]
                   and (o["done_ts"] is None or o["done_ts"] >= down["ts"])]
    assert open_on_okx, "the test needs a passive child resting on okx when it goes down"
    cancels = {r["client_id"] for r in audit if r.get("type") == "request" and r.get("action") == "cancel"
               and r["ts"] == down["ts"]}
    assert {o["client_id"] for o in open_on_okx} <= cancels
    later = [r for r in audit if r.get("action") == "route" and r["ts"] >= down["ts"]]
    assert later and later[0]["ts"] < down["ts"] + 1_000_000_000  # re-routed within the round trip
    assert all(s["venue"] == "binance" for r in later for s in r["splits"])


def test_per_venue_exposure_limit(tmp_path):
    """max_venue_position okx = 0.2: buying 1 BTC, okx never holds more than 0.2 BTC."""
    out, fills, audit = routed_run(tmp_path, "exposure", {"side": "buy", "quantity": "1",
                                                          "max_venue_position": {"okx": "0.2"}})
    bought_okx = sum(D(f["qty"]) for f in fills if f["venue"] == "okx")
    assert 0 < bought_okx <= D("0.2")
    summary = json.loads((out / "summary.json").read_text())["run"]
    assert D(summary["positions"]["okx:BTC/USDT"]) <= D("0.2")
