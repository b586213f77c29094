"""Every metric against numbers worked out by hand on the tiny runs of conftest.py.

The hand run (mids 100 / 101 / 102 / 98 / 104 from T0, +1 s, +2 s, +10 s, +100 s):
  B1  buy limit 2, arrival mid 100, acked at +1.5 s (mid 101), 1 filled @ 101 as maker
      at +2.5 s (mid 102, rebate 0.0101), cancelled at +20.002 s (mid 98)
  S1  sell market 3, arrival mid 98, fills 2 @ 97 and 1 @ 96 at +12.002 s (mid 98),
      fees 0.194 + 0.096
  R1  sell 1, rejected
Expected values are written as the arithmetic one does on paper.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from reports.metrics import compute, percentiles
from reports.rundir import NA_TS, load_run

BPS = 1e4
YEAR_SECONDS = 365 * 86400


def approx(value: float) -> object:
    return pytest.approx(value, rel=1e-9, abs=1e-9)


@pytest.fixture
def hand(hand_run: Path):
    return compute(load_run(hand_run))


def test_per_order_arrival_and_shortfall_buy_and_sell(hand) -> None:
    po = hand.series["per_order"]  # rows: B1 (buy), S1 (sell), R1 (rejected sell)
    assert list(po["arrival_mid"]) == [100.0, 98.0, 98.0]
    # buy B1: delay = +1 * 1 * (101 - 100); impact = 1 * (101 - 101); opportunity = 1 * (2 - 1) * (98 - 100)
    assert po["delay"][0] == approx(1.0)
    assert po["impact"][0] == approx(0.0)
    assert po["opportunity"][0] == approx(-2.0)
    assert po["fees"][0] == approx(-0.0101)
    assert po["shortfall"][0] == approx(1 + 0 - 2 - 0.0101)
    assert po["shortfall_bps"][0] == approx((1 - 2 - 0.0101) / (2 * 100) * BPS)
    # sell S1: delay = -1 * 3 * (98 - 98); impact = -1 * 3 * (96.666.. - 98) = +4 (a cost)
    assert po["delay"][1] == approx(0.0)
    assert po["impact"][1] == approx(4.0)
    assert po["opportunity"][1] == approx(0.0)
    assert po["shortfall"][1] == approx(4.29)
    assert po["shortfall_bps"][1] == approx(4.29 / (3 * 98) * BPS)
    # rejected R1: nothing filled, mid unchanged between creation and end -> no cost
    assert po["shortfall"][2] == approx(0.0)
    # arrival slippage: buy paid 101 against 100; sell got 96.67 against 98: both costs
    assert po["arrival_bps"][0] == approx((101 - 100) / 100 * BPS)
    assert po["arrival_bps"][1] == approx(-1 * (290 / 3 - 98) / 98 * BPS)
    assert po["arrival_bps"][1] > 0
    assert math.isnan(po["arrival_bps"][2])


def test_interval_vwap_slippage(hand) -> None:
    po = hand.series["per_order"]
    # B1 lives from +0.5 s to +20.002 s: market trades 1 @ 100.5, 3 @ 102, 2 @ 98
    vwap = (100.5 * 1 + 102 * 3 + 98 * 2) / 6
    assert po["vwap"][0] == approx(vwap)
    assert po["vwap_bps"][0] == approx((101 - vwap) / vwap * BPS)
    # S1 lives 2 ms and no market trade printed then: no VWAP, counted as such
    assert math.isnan(po["vwap"][1])
    execution = hand.sections["execution"]
    assert execution["vwap_orders_without_market_trades"] == 1
    assert execution["vwap_slippage_bps"] == approx((101 - vwap) / vwap * BPS)


def test_vwap_slippage_sign_for_a_sell(runkit, tmp_path: Path) -> None:
    k = runkit
    tables = k.hand_run_tables()
    tables["trades"] = tables["trades"] + [{"ts": k.T0 + 12001 * k.MS, "exch_ts": k.T0 + 12001 * k.MS, "price": 99.0, "qty": 2.0}]
    m = compute(load_run(k.write_run(tmp_path / "run", **tables)))
    po = m.series["per_order"]
    # S1 sold at 96.67 while the market printed 99: selling below VWAP is a cost
    assert po["vwap"][1] == approx(99.0)
    assert po["vwap_bps"][1] == approx(-1 * (290 / 3 - 99) / 99 * BPS)
    assert po["vwap_bps"][1] > 0


def test_aggregate_execution_figures(hand) -> None:
    ex = hand.sections["execution"]
    b1_bps, s1_bps = 100.0, (98 - 290 / 3) / 98 * BPS
    assert ex["arrival_slippage_bps"] == approx((b1_bps * 101 + s1_bps * 290) / 391)
    shortfall = ex["implementation_shortfall"]
    assert shortfall["count"] == 3
    assert shortfall["delay"] == approx(1.0)
    assert shortfall["impact"] == approx(4.0)
    assert shortfall["opportunity"] == approx(-2.0)
    assert shortfall["fees"] == approx(0.2799)
    assert shortfall["total"] == approx(3.2799)
    assert shortfall["paper_notional"] == approx(200 + 294 + 98)
    assert shortfall["total_bps"] == approx(3.2799 / 592 * BPS)


def test_fill_ratio_and_time_to_fill(hand) -> None:
    po = hand.series["per_order"]
    assert list(po["fill_ratio"]) == [0.5, 1.0, 0.0]
    assert list(po["ttff"]) == [2 * 10**9, 2 * 10**6, NA_TS]
    assert list(po["ttlf"]) == [2 * 10**9, 2 * 10**6, NA_TS]
    orders = hand.sections["orders"]
    assert orders["fill_ratio"] == approx(4 / 6)
    assert orders["with_fills"] == 2
    assert orders["time_to_first_fill_ns"] == {"count": 2, "p50": 2 * 10**6, "p90": 2 * 10**9, "p99": 2 * 10**9,
                                               "p99_9": 2 * 10**9, "max": 2 * 10**9}


def test_effective_spread_maker_buy_and_taker_sell(hand) -> None:
    fm = hand.series["fill"]
    assert list(fm["mid"]) == [102.0, 98.0, 98.0]
    # maker buy at 101 under a 102 mid earns: negative cost
    assert fm["eff_bps"][0] == approx(2 * (101 - 102) / 102 * BPS)
    # taker sells at 97 and 96 under a 98 mid pay: positive cost
    assert fm["eff_bps"][1] == approx(2 * -1 * (97 - 98) / 98 * BPS)
    assert fm["eff_bps"][2] == approx(2 * -1 * (96 - 98) / 98 * BPS)
    mk = hand.sections["markouts"]
    assert mk["maker"]["effective_spread_bps"] == approx(-2 / 102 * BPS)
    assert mk["taker"]["effective_spread_bps"] == approx((194 * 2 / 98 + 96 * 4 / 98) / 290 * BPS)
    assert mk["all"]["effective_spread_bps"] == approx((101 * -2 / 102 + 194 * 2 / 98 + 96 * 4 / 98) / 391 * BPS)


def test_markouts_at_every_horizon(hand) -> None:
    mk = hand.series["fill"]["markout_bps"]
    # buy @ 101 at +2.5 s; mid 102 until +10 s, 98 until +100 s, then 104
    assert mk["100ms"][0] == approx((101 - 102) / 102 * BPS)
    assert mk["1s"][0] == approx((101 - 102) / 102 * BPS)
    assert mk["5s"][0] == approx((101 - 102) / 102 * BPS)
    assert mk["30s"][0] == approx((101 - 98) / 102 * BPS)  # price fell after we bought: adverse
    assert mk["60s"][0] == approx((101 - 98) / 102 * BPS)
    assert mk["5min"][0] == approx((101 - 104) / 102 * BPS)
    # sell @ 97 at +12.002 s; mid 98 until +100 s, then 104 (rose after we sold: adverse)
    for label in ("100ms", "1s", "5s", "30s", "60s"):
        assert mk[label][1] == approx(-1 * (97 - 98) / 98 * BPS)
        assert mk[label][2] == approx(-1 * (96 - 98) / 98 * BPS)
    assert mk["5min"][1] == approx(-1 * (97 - 104) / 98 * BPS)
    assert mk["5min"][2] == approx(-1 * (96 - 104) / 98 * BPS)


def test_realized_spread_and_price_impact(hand) -> None:
    """One sign convention: every figure is a cost to us (positive = it hurt)."""
    maker = hand.sections["markouts"]["maker"]
    # realized = 2 s (p - m_{t+h}) / m_t; impact = 2 s (m_t - m_{t+h}) / m_t; realized = eff + impact
    assert maker["realized_spread_bps"]["30s"] == approx(2 * (101 - 98) / 102 * BPS)
    # bought at +2.5 s (mid 102), mid 98 thirty seconds later: the mid moved against us, a cost
    assert maker["price_impact_bps"]["30s"] == approx(2 * (102 - 98) / 102 * BPS)
    assert maker["price_impact_bps"]["30s"] > 0
    assert maker["effective_spread_horizon_bps"]["30s"] == approx(2 * (101 - 102) / 102 * BPS)
    taker = hand.sections["markouts"]["taker"]
    realized = (194 * 2 * 7 / 98 + 96 * 2 * 8 / 98) / 290 * BPS
    # sold at mid 98, mid 104 five minutes later: adverse for a sell, a positive cost
    impact = (194 * 2 * -1 * (98 - 104) / 98 + 96 * 2 * -1 * (98 - 104) / 98) / 290 * BPS
    assert taker["realized_spread_bps"]["5min"] == approx(realized)
    assert taker["price_impact_bps"]["5min"] == approx(impact)
    assert impact == approx(12 / 98 * BPS)
    for block in hand.sections["markouts"].values():
        if not isinstance(block, dict) or "price_impact_bps" not in block:
            continue
        for label, value in block["price_impact_bps"].items():
            if value is not None:
                assert block["effective_spread_horizon_bps"][label] + value == approx(block["realized_spread_bps"][label])
    buy, sell = hand.sections["markouts"]["buy"], hand.sections["markouts"]["sell"]
    assert buy["fills"] == 1 and sell["fills"] == 2
    assert sell["markout_bps"]["1s"] == approx((194 * 1 / 98 + 96 * 2 / 98) / 290 * BPS)


def test_markout_past_the_end_of_the_run_is_left_out(runkit, tmp_path: Path) -> None:
    k = runkit
    tables = k.hand_run_tables()
    tables["run"]["end_ts"] = k.T0 + 20 * k.S  # 5 min after the fills is past the end
    m = compute(load_run(k.write_run(tmp_path / "run", **tables)))
    mk = m.series["fill"]["markout_bps"]
    assert math.isnan(mk["5min"][0]) and math.isnan(mk["5min"][1])
    assert mk["5s"][1] == approx(1 / 98 * BPS)  # +17.002 s is inside
    assert math.isnan(mk["30s"][1])  # +42.002 s is not
    assert any("past the end" in note for note in m.notes)


def test_fill_mid_is_the_one_in_force_before_the_fill(runkit, tmp_path: Path) -> None:
    k = runkit
    tables = k.hand_run_tables()
    # a quote row stamped with the fill's own time may be the book's reaction to the fill:
    # the benchmark is the last row strictly before it (mid 101 from +1 s), not 102 (+2 s)
    tables["fills"][0]["ts"] = k.T0 + 2 * k.S
    m = compute(load_run(k.write_run(tmp_path / "run", **tables)))
    assert m.series["fill"]["mid"][0] == 101.0
    assert m.series["fill"]["eff_bps"][0] == approx(2 * (101 - 101) / 101 * BPS)
    # the markout horizon is still "as of t + h": +2 s + 100 ms sees the +2 s row (102)
    assert m.series["fill"]["markout_bps"]["100ms"][0] == approx((101 - 102) / 101 * BPS)


def test_same_message_book_update_moves_effective_spread_from_minus_6_to_minus_1(runkit, tmp_path: Path) -> None:
    """Issue 9: a maker buy filled at 99.995 while the mid is 100.00; the book update that
    arrived in the same message (same local stamp) moves the mid to 100.025. Against the
    mid in force before the fill: 2 x (99.995 - 100) / 100 x 1e4 = -1.00 bps; against the
    updated mid it would be 2 x (99.995 - 100.025) / 100.025 x 1e4 = -5.9985 = "-6.00"."""
    from reports import format as fmt

    k = runkit
    t = k.T0 + 5 * k.S
    bbo = [k.quote(k.T0, 99.995, 100.005), k.quote(t, 100.02, 100.03)]
    fills = [k.fill(t, "buy", "99.995", "1", "0", "maker", "M1")]
    orders = [k.order("M1", "buy", "1", "1", "filled", k.T0 + k.S, price="99.995", ack_ts=k.T0 + k.S + k.MS,
                      first_fill_ts=t, last_fill_ts=t, done_ts=t, avg_fill_price="99.995",
                      arrival_bid="99.995", arrival_ask="100.005")]
    run = k.write_run(tmp_path / "run", fills=fills, orders=orders, bbo=bbo,
                      run={"id": "same-msg", "instruments": [k.BTC], "start_ts": k.T0, "end_ts": k.T0 + 100 * k.S})
    m = compute(load_run(run))
    eff = m.sections["markouts"]["all"]["effective_spread_bps"]
    assert eff == approx(2 * (99.995 - 100.0) / 100.0 * BPS)
    assert fmt.bps(eff) == "-1.00"
    assert fmt.bps(2 * (99.995 - 100.025) / 100.025 * BPS) == "-6.00"  # what the old rule showed
    # markout at 1 s: mid 100.025 after the fill; normalised by the pre-fill mid 100
    assert m.sections["markouts"]["all"]["markout_bps"]["1s"] == approx((99.995 - 100.025) / 100.0 * BPS)


def test_fill_without_any_quote_before_it_has_no_spread(runkit, tmp_path: Path) -> None:
    k = runkit
    tables = k.hand_run_tables()
    tables["bbo"] = [q for q in tables["bbo"] if q["ts"] >= k.T0 + 10 * k.S]
    m = compute(load_run(k.write_run(tmp_path / "run", **tables)))
    assert math.isnan(m.series["fill"]["eff_bps"][0])
    assert m.sections["fills"]["without_mid"] == 1
    assert m.sections["markouts"]["maker"]["effective_spread_bps"] is None


def test_queue_metrics(hand) -> None:
    q = hand.sections["queue"]
    assert q["resting_orders"] == 1  # B1; S1 is a market IOC, R1 was rejected
    assert q["time_in_queue_ns"]["p50"] == (20 * 10**9 + 2 * 10**6) - 1_500_000_000
    assert q["time_to_fill_in_queue_ns"]["max"] == 10**9
    # queue outcomes are those of resting orders only: S1 filled but never rested
    assert q["filled"] == 0
    assert q["partially_filled_then_cancelled"] == 1
    assert q["cancelled_unfilled"] == 0
    assert q["expired"] == 0 and q["open_at_end"] == 0
    assert "rejected" not in q  # a rejected order never queued
    outcomes = hand.sections["orders"]["outcomes"]
    assert outcomes == {"filled": 1, "partially_filled_then_cancelled": 1, "cancelled_unfilled": 0,
                        "expired": 0, "rejected": 1, "open_at_end": 0}
    assert sum(outcomes.values()) == hand.sections["orders"]["count"]
    assert hand.sections["orders"]["cancel_to_fill_ratio"] == approx(1 / 2)


def test_latency_percentiles(hand) -> None:
    lat = hand.sections["latency"]
    # submit->ack: B1 1 s, S1 1 ms, R1 1 ms (nearest rank)
    assert lat["submit_to_ack_ns"] == {"count": 3, "p50": 10**6, "p90": 10**9, "p99": 10**9, "p99_9": 10**9, "max": 10**9}
    # cancel->ack: B1 only, 2 ms
    assert lat["cancel_to_ack_ns"]["count"] == 1
    assert lat["cancel_to_ack_ns"]["p50"] == 2 * 10**6
    # tick->order: 20, 50, 30 us
    assert lat["tick_to_order_ns"]["p50"] == 30_000
    assert lat["tick_to_order_ns"]["p90"] == 50_000
    assert lat["tick_to_order_ns"]["max"] == 50_000


def test_percentiles_are_nearest_rank_on_many_values() -> None:
    values = np.arange(1, 1001, dtype=np.int64)
    p = percentiles(values)
    assert (p["p50"], p["p90"], p["p99"], p["p99_9"], p["max"]) == (500, 900, 990, 999, 1000)
    assert percentiles(np.array([], dtype=np.int64)) == {"count": 0, "p50": None, "p90": None, "p99": None, "p99_9": None, "max": None}


def test_pnl_fees_rebates_drawdown(hand) -> None:
    p = hand.sections["pnl"]
    assert (p["realized"], p["unrealized"], p["fees_net"]) == ("-4", "-15", "0.2799")
    assert (p["equity_start"], p["equity_end"], p["net"]) == ("10000", "9980.7201", "-19.2799")
    assert p["fees_paid"] == "0.29"
    assert p["rebates"] == "0.0101"
    assert p["max_drawdown"] == approx(10001.0101 - 9980.7201)
    assert p["max_drawdown_pct"] == approx((10001.0101 - 9980.7201) / 10001.0101 * 100)
    assert p["max_drawdown_ts"] == hand.series["pnl"]["ts"][3]
    assert p["turnover"] == approx(391.0)
    assert p["turnover_ratio"] == approx(391 / 10000)


def test_sharpe_and_sortino_are_not_annualised_from_a_short_sample(hand) -> None:
    p = hand.sections["pnl"]
    # 1000 s run: fewer than 30 one-minute periods, so 1 s sampling; 1000 returns, but over
    # 16.7 minutes, not the one day the rule asks for: no annualised figure, and why
    assert p["sampling_interval_ns"] == 10**9
    assert p["periods"] == 1000
    assert p["span_ns"] == 1000 * 10**9
    assert p["sharpe"] is None and p["sortino"] is None
    assert p["ratios_reason"] == ("sample too short: 1,000 returns over 16.7 min; annualised ratios need "
                                  ">= 30 returns over >= 1 day")
    assert hand.sections["headline"]["sharpe"] is None


def test_sharpe_and_sortino_on_the_stated_interval(runkit, tmp_path: Path) -> None:
    k = runkit
    tables = k.hand_run_tables()
    hour = 3600 * k.S
    end = k.T0 + 48 * hour  # two days: 48 one-hour returns (>= 30 over >= 1 day)
    tables["run"]["end_ts"] = end
    tables["equity"] = [
        {"ts": k.T0, "equity": "10000", "realized_pnl": "0", "unrealized_pnl": "0", "fees": "0"},
        {"ts": k.T0 + 2 * hour + k.S, "equity": "10010", "realized_pnl": "10", "unrealized_pnl": "0", "fees": "0"},
        {"ts": k.T0 + 5 * hour, "equity": "10004", "realized_pnl": "4", "unrealized_pnl": "0", "fees": "0"},
        {"ts": k.T0 + 30 * hour, "equity": "10020", "realized_pnl": "20", "unrealized_pnl": "0", "fees": "0"},
        {"ts": end, "equity": "10020", "realized_pnl": "20", "unrealized_pnl": "0", "fees": "0"},
    ]
    tables["run"]["pnl"]["equity_end"] = "10020"
    p = compute(load_run(k.write_run(tmp_path / "run", **tables))).sections["pnl"]
    assert p["sampling_interval_ns"] == 3600 * 10**9
    assert p["periods"] == 48
    assert p["ratios_reason"] is None
    returns = np.zeros(48)
    returns[2] = 10 / 10000  # sampled at +3 h: 10010 (the +2 h sample still saw 10000)
    returns[4] = -6 / 10000  # at +5 h: 10004 (as of, inclusive)
    returns[29] = 16 / 10000  # at +30 h: 10020
    scale = math.sqrt(YEAR_SECONDS / 3600)
    assert p["sharpe"] == approx(returns.mean() / returns.std(ddof=1) * scale)
    assert p["sortino"] == approx(returns.mean() / math.sqrt(np.mean(np.minimum(returns, 0) ** 2)) * scale)
    # by hand: mean = 20/10000/48; downside = sqrt(0.0006^2 / 48)
    assert p["sortino"] == approx((20 / 10000 / 48) / math.sqrt(0.0006**2 / 48) * scale)


def test_inventory(hand) -> None:
    inv = hand.sections["inventory"]["binance:BTC/USDT"]
    assert inv == {"final": -2.0, "max_long": 1.0, "max_short": 2.0}


def test_inventory_max_short_is_a_magnitude_and_never_minus_zero(runkit, tmp_path: Path) -> None:
    k = runkit
    tables = k.hand_run_tables()
    # never short (position "-0" at the start, as a ledger may write it) and never long
    tables["inventory"] = [{"ts": k.T0, "position": "-0"}, {"ts": k.END, "position": "0"}]
    run = k.write_run(tmp_path / "run", **tables)
    inv = compute(load_run(run)).sections["inventory"]["binance:BTC/USDT"]
    assert inv == {"final": 0.0, "max_long": 0.0, "max_short": 0.0}
    for value in inv.values():
        assert math.copysign(1.0, value) == 1.0  # +0.0, not -0.0
    from reports import write_report

    write_report(run)
    assert "-0.0" not in (run / "summary.json").read_text()


def test_per_venue_and_instrument_tables(hand) -> None:
    for table in (hand.sections["by_venue"]["binance"], hand.sections["by_instrument"]["binance:BTC/USDT"]):
        assert table["fills"] == 3
        assert table["orders"] == 3
        assert table["notional"] == approx(391.0)
        assert table["maker_share"] == approx(1 / 3)  # by count: 1 maker fill of 3
        assert table["maker_notional_share"] == approx(101 / 391)  # by notional
        assert table["fees"] == "0.2799"  # exact: 0.194 + 0.096 - 0.0101
        assert table["fill_ratio"] == approx(4 / 6)
        assert table["effective_spread_bps"] == approx(hand.sections["markouts"]["all"]["effective_spread_bps"])
        assert table["submit_to_ack_ns"]["max"] == 10**9
        assert table["markout_bps_maker"]["30s"] == approx((101 - 98) / 102 * BPS)
        assert table["markout_bps_taker"]["5min"] == approx((194 * 7 / 98 + 96 * 8 / 98) / 290 * BPS)


def test_parent_buy_and_sell(parent_run: Path) -> None:
    m = compute(load_run(parent_run))
    pp = m.series["per_parent"]
    assert list(pp["parent_id"]) == ["P1", "P2"]
    # P1 buy 4: decision mid 100 (parent creation); first child arrived at mid 101;
    # 3 filled @ 102; ended at mid 102 with 1 unfilled
    assert pp["decision_mid"][0] == 100.0
    assert pp["delay"][0] == approx(3 * (101 - 100))
    assert pp["impact"][0] == approx(3 * (102 - 101))
    assert pp["opportunity"][0] == approx(1 * (102 - 100))
    assert pp["fees"][0] == approx(0.306)
    assert pp["shortfall"][0] == approx(8.306)
    assert pp["shortfall_bps"][0] == approx(8.306 / 400 * BPS)
    assert pp["arrival_bps"][0] == approx(200.0)
    assert pp["fill_ratio"][0] == approx(0.75)
    assert pp["ttff"][0] == 1_100_000_000 and pp["ttlf"][0] == 2_100_000_000
    vwap = (100.5 * 1 + 102 * 3) / 4  # market trades between +0.2 s and +5 s
    assert pp["vwap_bps"][0] == approx((102 - vwap) / vwap * BPS)
    # P2 sell 2 @ 97 against a 98 mid: impact -1 * 2 * (97 - 98) = +2
    assert pp["delay"][1] == approx(0.0)
    assert pp["impact"][1] == approx(2.0)
    assert pp["opportunity"][1] == approx(0.0)
    assert pp["shortfall_bps"][1] == approx(2.194 / 196 * BPS)
    assert pp["arrival_bps"][1] == approx(1 / 98 * BPS)
    assert pp["fill_ratio"][1] == approx(1.0)
    parents = m.sections["parents"]
    assert parents["count"] == 2 and parents["children"] == 3
    assert parents["implementation_shortfall"]["total"] == approx(8.306 + 2.194)
    assert parents["fill_ratio"] == approx(5 / 6)
    # parent rows are not orders sent to a venue
    assert m.sections["orders"]["count"] == 3
    assert m.sections["orders"]["parent_rows"] == 2


def test_parent_without_its_own_row(runkit, tmp_path: Path) -> None:
    k = runkit
    tables = k.parent_run_tables()
    tables["orders"] = [o for o in tables["orders"] if o["client_id"] != "P1"]
    m = compute(load_run(k.write_run(tmp_path / "run", **tables)))
    pp = m.series["per_parent"]
    assert pp["decision_mid"][0] == 101.0  # the first child's arrival mid
    assert pp["delay"][0] == 0.0
    assert math.isnan(pp["opportunity"][0])  # target unknown
    assert math.isnan(pp["fill_ratio"][0])
    assert any("no row of their own" in note for note in m.notes)


def test_ccxt_spelling_of_cancelled_and_several_fee_assets(runkit, tmp_path: Path) -> None:
    k = runkit
    tables = k.hand_run_tables()
    tables["orders"][0]["status"] = "canceled"
    tables["fills"][0]["fee_asset"] = "BNB"
    m = compute(load_run(k.write_run(tmp_path / "run", **tables)))
    assert m.sections["orders"]["by_status"]["cancelled"] == 1
    assert any("several assets (BNB, USDT)" in note for note in m.notes)


def test_pnl_falls_back_to_the_runner_summary_without_equity(runkit, tmp_path: Path) -> None:
    k = runkit
    tables = k.hand_run_tables()
    tables["equity"] = None
    m = compute(load_run(k.write_run(tmp_path / "run", **tables)))
    p = m.sections["pnl"]
    assert p["source"] == "summary.json run.pnl"
    assert (p["net"], p["realized"], p["fees_net"]) == ("-19.2799", "-4", "0.2799")
    assert p["max_drawdown"] is None and p["sharpe"] is None


def test_pnl_mismatch_between_equity_and_runner_summary_is_noted(runkit, tmp_path: Path) -> None:
    k = runkit
    tables = k.hand_run_tables()
    tables["run"]["pnl"]["equity_end"] = "9999"
    m = compute(load_run(k.write_run(tmp_path / "run", **tables)))
    assert m.sections["pnl"]["equity_end"] == "9980.7201"
    assert any("differs from the last equity.parquet" in note for note in m.notes)


def test_decimal128_and_timestamp_columns_are_read_like_strings(hand_run: Path) -> None:
    """Issue 2 allows decimal128 for exact columns; the figures must not change."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    expected = compute(load_run(hand_run)).sections
    path = hand_run / "fills.parquet"
    table = pq.read_table(path)
    for name in ("price", "qty", "fee"):
        index = table.schema.get_field_index(name)
        table = table.set_column(index, name, pc.cast(table.column(name), pa.decimal128(20, 8)))
    table = table.set_column(0, "ts", pc.cast(table.column("ts"), pa.timestamp("ns")))
    pq.write_table(table, path)
    got = compute(load_run(hand_run)).sections
    assert got["markouts"] == expected["markouts"]
    assert got["pnl"]["fees_paid"] == expected["pnl"]["fees_paid"] == "0.29"
    assert got["pnl"]["rebates"] == "0.0101"


def test_queue_metrics_for_a_resting_sell(runkit, tmp_path: Path) -> None:
    k = runkit
    tables = k.hand_run_tables()
    # a sell quote at 103 acked at +3 s, cancelled at +8 s (done +8.001 s), never filled
    tables["orders"].append(k.order("Q1", "sell", "1", "0", "cancelled", k.T0 + 2990 * k.MS, price="103",
                                    ack_ts=k.T0 + 3 * k.S, cancel_req_ts=k.T0 + 8 * k.S, done_ts=k.T0 + 8001 * k.MS,
                                    arrival_bid="101", arrival_ask="103"))
    m = compute(load_run(k.write_run(tmp_path / "run", **tables)))
    q = m.sections["queue"]
    assert q["resting_orders"] == 2
    assert q["cancelled_unfilled"] == 1
    assert q["time_to_cancel_in_queue_ns"] == {"count": 1, "p50": 5_001_000_000, "p90": 5_001_000_000,
                                               "p99": 5_001_000_000, "p99_9": 5_001_000_000, "max": 5_001_000_000}
    assert m.sections["orders"]["cancel_to_fill_ratio"] == approx(2 / 2)
    assert m.sections["latency"]["cancel_to_ack_ns"]["max"] == 2 * 10**6
    assert m.sections["latency"]["cancel_to_ack_ns"]["count"] == 2
    # the unfilled sell: arrival mid 102, ended at mid 102 (+8.001 s): no opportunity cost
    po = m.series["per_order"]
    assert po["opportunity"][3] == approx(-1 * 1 * (102 - 102))
    # with the mid moving against it, the opportunity cost of an unfilled sell is positive
    tables["orders"][3]["done_ts"] = k.T0 + 11 * k.S  # mid 98 when it ended
    m = compute(load_run(k.write_run(tmp_path / "run2", **tables)))
    assert m.series["per_order"]["opportunity"][3] == approx(-1 * 1 * (98 - 102))


def test_ioc_and_market_remainders_are_expired_not_cancels(runkit, tmp_path: Path) -> None:
    """Nothing rested and nobody cancelled: an IOC or market order's unfilled remainder is
    "expired" (ccxt's word), whatever status the venue gave it, and not a queue outcome."""
    k = runkit
    tables = k.hand_run_tables()
    tables["fills"].append(k.fill(k.T0 + 40 * k.S, "buy", "99", "1", "0.099", "taker", "I1"))
    tables["orders"] += [
        # IOC buy 3 @ 99: 1 filled, the venue ended the remainder as "cancelled" (reason ioc_remainder)
        k.order("I1", "buy", "3", "1", "cancelled", k.T0 + 40 * k.S - k.MS, price="99", tif="IOC",
                ack_ts=k.T0 + 40 * k.S, first_fill_ts=k.T0 + 40 * k.S, last_fill_ts=k.T0 + 40 * k.S,
                done_ts=k.T0 + 40 * k.S, avg_fill_price="99", fees="0.099", reason="ioc_remainder",
                arrival_bid="97", arrival_ask="99"),
        # market sell 1 that found no liquidity: unfilled, "cancelled" by the venue
        k.order("M1", "sell", "1", "0", "cancelled", k.T0 + 50 * k.S, type="market", tif="IOC",
                ack_ts=k.T0 + 50 * k.S + k.MS, done_ts=k.T0 + 50 * k.S + k.MS, reason="no_liquidity",
                arrival_bid="97", arrival_ask="99"),
        # FOK buy that could not fill whole: expired
        k.order("F1", "buy", "5", "0", "expired", k.T0 + 60 * k.S, price="99", tif="FOK",
                ack_ts=k.T0 + 60 * k.S + k.MS, done_ts=k.T0 + 60 * k.S + k.MS, arrival_bid="97", arrival_ask="99"),
    ]
    m = compute(load_run(k.write_run(tmp_path / "run", **tables)))
    orders = m.sections["orders"]
    # B1 part-filled then cancelled (a real cancel); S1 filled; R1 rejected; I1, M1, F1 expired
    assert orders["outcomes"] == {"filled": 1, "partially_filled_then_cancelled": 1, "cancelled_unfilled": 0,
                                  "expired": 3, "rejected": 1, "open_at_end": 0}
    assert sum(orders["outcomes"].values()) == orders["count"] == 6
    assert orders["unfilled_remainders"] == 3
    assert orders["by_status"]["cancelled"] == 3  # as written; the outcome says what it means
    # cancels: B1 only; orders with a fill: B1, S1, I1
    assert orders["cancel_to_fill_ratio"] == approx(1 / 3)
    q = m.sections["queue"]
    assert q["resting_orders"] == 1  # B1
    assert (q["filled"], q["partially_filled_then_cancelled"], q["cancelled_unfilled"], q["expired"]) == (0, 1, 0, 0)
    assert m.sections["latency"]["cancel_to_ack_ns"]["count"] == 1  # B1's cancel only


def test_a_resting_order_that_took_liquidity_first_still_rested(runkit, tmp_path: Path) -> None:
    k = runkit
    tables = k.hand_run_tables()
    # GTC buy 2 @ 99 crosses for 1 as taker at +40 s, rests the other 1, cancelled at +45 s
    tables["fills"].append(k.fill(k.T0 + 40 * k.S, "buy", "99", "1", "0.099", "taker", "G1"))
    tables["orders"].append(k.order("G1", "buy", "2", "1", "cancelled", k.T0 + 40 * k.S - k.MS, price="99",
                                    ack_ts=k.T0 + 40 * k.S, first_fill_ts=k.T0 + 40 * k.S, last_fill_ts=k.T0 + 40 * k.S,
                                    cancel_req_ts=k.T0 + 45 * k.S, done_ts=k.T0 + 45 * k.S + k.MS, avg_fill_price="99",
                                    fees="0.099", arrival_bid="97", arrival_ask="99"))
    m = compute(load_run(k.write_run(tmp_path / "run", **tables)))
    q = m.sections["queue"]
    assert q["resting_orders"] == 2  # B1 and G1 (its remainder rested)
    assert q["partially_filled_then_cancelled"] == 2
    # time to fill in queue counts maker fills only: B1's 1 s; G1 had none
    assert q["time_to_fill_in_queue_ns"]["count"] == 1 and q["time_to_fill_in_queue_ns"]["max"] == 10**9


def test_per_venue_fees_are_exact_and_dust_free(runkit, tmp_path: Path) -> None:
    k = runkit
    tables = k.hand_run_tables()
    # 0.1 + 0.2 - 0.3 is 5.55e-17 in floats: exactly 0 as money
    tables["fills"] = [
        k.fill(k.T0 + 2500 * k.MS, "buy", "101", "1", "0.1", "taker", "B1"),
        k.fill(k.T0 + 12002 * k.MS, "sell", "97", "2", "0.2", "taker", "S1"),
        k.fill(k.T0 + 12002 * k.MS, "sell", "96", "1", "-0.3", "maker", "S1"),
    ]
    m = compute(load_run(k.write_run(tmp_path / "run", **tables)))
    assert 0.1 + 0.2 - 0.3 != 0
    assert m.sections["by_venue"]["binance"]["fees"] == "0"
    assert m.sections["by_instrument"]["binance:BTC/USDT"]["fees"] == "0"


def test_ack_and_done_mids_are_the_ones_in_force_before_the_event(runkit, tmp_path: Path) -> None:
    """An order's own events (ack, done) are measured against the mid before them, like a
    fill; an order still open at the end is marked as of the run's end."""
    k = runkit
    tables = k.hand_run_tables()
    # buy 1 @ 100 (arrival mid 100), acked exactly at +2 s (a quote row: mid 101 -> 102),
    # cancelled unfilled with done exactly at +10 s (a quote row: mid 102 -> 98)
    tables["orders"].append(k.order("Q1", "buy", "1", "0", "cancelled", k.T0 + 500 * k.MS, price="100",
                                    ack_ts=k.T0 + 2 * k.S, cancel_req_ts=k.T0 + 9 * k.S, done_ts=k.T0 + 10 * k.S,
                                    arrival_bid="99", arrival_ask="101"))
    # the same order still open at the end of the run: marked as of end (mid 104)
    tables["orders"].append(k.order("Q2", "buy", "1", "0", "acknowledged", k.T0 + 500 * k.MS, price="100",
                                    ack_ts=k.T0 + 2 * k.S, arrival_bid="99", arrival_ask="101"))
    m = compute(load_run(k.write_run(tmp_path / "run", **tables)))
    po = m.series["per_order"]
    # Q1: P_end = 102 (in force before +10 s), not 98: opportunity = 1 x 1 x (102 - 100) = 2
    assert po["opportunity"][3] == approx(2.0)
    # Q2: P_end = 104 as of the run's end: opportunity = 1 x 1 x (104 - 100) = 4
    assert po["opportunity"][4] == approx(4.0)
    # a filled order acked at the quote change: delay against the mid before the ack (101)
    tables["orders"][3].update(filled_qty="1", status="filled", avg_fill_price="100", first_fill_ts=k.T0 + 3 * k.S,
                               last_fill_ts=k.T0 + 3 * k.S, done_ts=k.T0 + 3 * k.S, cancel_req_ts=None)
    tables["fills"].append(k.fill(k.T0 + 3 * k.S, "buy", "100", "1", "0", "maker", "Q1"))
    m = compute(load_run(k.write_run(tmp_path / "run2", **tables)))
    assert m.series["per_order"]["delay"][3] == approx(1 * 1 * (101 - 100))
    assert m.series["per_order"]["impact"][3] == approx(1 * 1 * (100 - 101))


def test_fees_in_another_asset_than_the_reports_currency_are_named(runkit, tmp_path: Path) -> None:
    """A run directory whose fills keep every fee in a coin (an inverse contract's, written
    before the fee column was valued in the quote) says so instead of labelling BTC as USDT."""
    k = runkit
    tables = k.hand_run_tables()
    for fill in tables["fills"]:
        fill["fee_asset"] = "BTC"
    m = compute(load_run(k.write_run(tmp_path / "run", **tables)))
    assert any("fee column is in BTC, not the report's currency USDT" in note for note in m.notes)
    tables["fills"] = [{**fill, "fee_asset": "USDT"} for fill in tables["fills"]]
    m = compute(load_run(k.write_run(tmp_path / "run2", **tables)))
    assert not any("report's currency" in note for note in m.notes)
