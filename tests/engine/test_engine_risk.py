"""Risk limits, states, approvals and the kill switch, hand-computed on backtests.

Every backtest here runs `risk_flow.Script` through the CLI on a hand-made book
(tests/engine/risk_flow.py): BTC/USDT bid 10000.00 / ask 10001.00 (mid 10000.50) unless a
test moves it, latencies 1 ms entry + 1 ms response, no fees. Each expected figure is
worked out in the comment beside it.
"""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import ConfigError
from engine.risk import RiskConfig, RiskEngine, RiskState, reset_offset_ns
from engine.types import load_instruments
from engine.types.orders import REASONS, ReasonCode, ReasonSource
from modes.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parent))
import risk_flow as rf  # noqa: E402

BTC = "binance:BTC/USDT"
ETH = "binance:ETH/USDT"
OKX_BTC = "okx:BTC/USDT"
FLAT = {BTC: [(0, "10000.00", "10001.00")]}
# the book drops 1000 at 3 s: mid 10000.50 -> 9000.50
DROP = {BTC: [(0, "10000.00", "10001.00"), (3000, "9000.00", "9001.00")]}


@pytest.fixture(scope="module")
def flat(tmp_path_factory):
    return rf.write_store(tmp_path_factory.mktemp("flat") / "d.duckdb", FLAT, seconds=8)


@pytest.fixture(scope="module")
def drop(tmp_path_factory):
    return rf.write_store(tmp_path_factory.mktemp("drop") / "d.duckdb", DROP, seconds=8)


def buy(at, qty, price, **kw):
    return {"at_ms": at, "do": "submit", "side": "buy", "qty": qty, "price": price} | kw


def sell(at, qty, price, **kw):
    return {"at_ms": at, "do": "submit", "side": "sell", "qty": qty, "price": price} | kw


def reasons(run_dir):
    return {cid: (o["status"], o["reason"]) for cid, o in rf.orders(run_dir).items()}


def test_position_and_open_exposure_per_instrument_count_resting_and_in_flight_orders(tmp_path, flat):
    steps = [buy(100, "0.5", "9990", id="a"),  # worst position 0.5 x 10000.50 = 5000.25 <= 8000
             buy(200, "0.5", "10001", tif="IOC", id="b"),  # worst 1.0 x 10000.50 = 10000.50 > 8000
             sell(300, "0.3", "10010", id="c"),  # worst max(|0.5|, |-0.3|) = 0.5: not increased -> passes
             buy(400, "0.2", "9980", id="d"),  # worst 0.7 -> 7000.35 <= 8000
             buy(400, "0.2", "9980", id="e"),  # d is in flight (no ack yet) and counts: 0.9 -> 9000.45
             # open 0.5 + 0.3 + 0.2 = 1.0; + 0.3 = 1.3 x 10000.50 = 13000.65 > 12000 (worst 0.7 unchanged)
             sell(500, "0.3", "10020", id="f")]
    run = rf.run(tmp_path, flat, steps, {"max_position_notional": 8000, "max_open_notional": 12000})
    assert reasons(run) == {
        "a": ("acknowledged", None), "b": ("rejected", "max_position_notional"), "c": ("acknowledged", None),
        "d": ("acknowledged", None), "e": ("rejected", "max_position_notional"),
        "f": ("rejected", "max_open_notional")}
    risk = rf.summary(run)["run"]["risk"]
    assert risk["refusals"] == {"max_open_notional": 1, "max_position_notional": 2}
    assert risk["state"] == "active"


def test_total_exposure_and_venue_share(tmp_path):
    data = rf.write_store(tmp_path / "d.duckdb", {BTC: [(0, "10000.00", "10001.00")],
                                                  ETH: [(0, "2000.00", "2001.00")],
                                                  OKX_BTC: [(0, "10000.0", "10001.0")]}, seconds=3)
    steps = [buy(100, "1", "9990", id="btc"),  # binance 10000.50 <= 60% x 20000 = 12000
             buy(200, "1", "1990", instrument=ETH, id="eth1"),  # binance 10000.50 + 2000.50 = 12001.00 > 12000
             buy(300, "0.5", "1990", instrument=ETH, id="eth2"),  # binance 11000.75
             buy(400, "1", "9990", instrument=OKX_BTC, id="okx1"),  # total 21001.25 > 20000
             buy(500, "0.8", "9990", instrument=OKX_BTC, id="okx2"),  # total 19001.15; okx 8000.40
             # total position 19601.18 <= 20000, okx 8600.43 <= 12000, but open 19601.18 > 19500
             buy(600, "0.06", "9990", instrument=OKX_BTC, id="okx3")]
    run = rf.run(tmp_path, data, steps, {"max_total_position_notional": 20000, "max_venue_exposure_pct": 60,
                                         "max_total_open_notional": 19500},
                 instruments=(BTC, ETH, OKX_BTC))
    assert reasons(run) == {
        "btc": ("acknowledged", None), "eth1": ("rejected", "max_venue_exposure"),
        "eth2": ("acknowledged", None), "okx1": ("rejected", "max_total_position_notional"),
        "okx2": ("acknowledged", None), "okx3": ("rejected", "max_total_open_notional")}


def test_a_total_over_two_quote_currencies_is_a_config_error(tmp_path, capsys):
    data = rf.write_store(tmp_path / "d.duckdb", {BTC: [(0, "10000.00", "10001.00")],
                                                  "binance:ETH/BTC": [(0, "0.05000", "0.05001")]}, seconds=1)
    with pytest.raises(AssertionError, match="exited 2"):
        rf.run(tmp_path, data, [], {"max_total_open_notional": 1000}, instruments=(BTC, "binance:ETH/BTC"),
               balances={"binance": {"USDT": "1000", "BTC": "1", "ETH": "1"}})
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "[risk] max_total_open_notional" in err[0] and "BTC, USDT" in err[0]


def test_daily_loss_moves_to_reducing_and_the_daily_reset_back_to_active(tmp_path):
    # starts 10 s before midnight UTC; the drop at 3 s makes the day's PnL
    # (9000.50 - 10001) x 1 = -1000.50 < -500
    start = rf.T0 - 10 * rf.S
    data = rf.write_store(tmp_path / "d.duckdb", DROP, seconds=14, start=start)
    steps = [buy(100, "1", "10001", tif="IOC", id="open"),
             buy(5000, "0.1", "9001", tif="IOC", id="more"),  # reducing: a buy on a long is refused
             sell(5100, "0.2", "9000", tif="IOC", id="less"),  # reduces the long: filled
             buy(11000, "0.1", "9001", tif="IOC", id="newday")]  # 00:00:01, the new day: active again
    run = rf.run(tmp_path, data, steps, {"max_daily_loss": 500})
    assert reasons(run) == {"open": ("filled", None), "more": ("rejected", "risk_reducing"),
                            "less": ("filled", None), "newday": ("filled", None)}
    transitions = rf.summary(run)["run"]["risk"]["transitions"]
    assert [(t["from"], t["to"], t["reason"], t["who"]) for t in transitions] == [
        ("active", "reducing", "max_daily_loss", "risk"), ("reducing", "active", "daily_reset", "risk")]
    assert transitions[0]["ts"] == start + 3 * rf.S  # the equity sample that saw the drop
    assert transitions[1]["ts"] == rf.T0  # the sample at 00:00:00 UTC


def test_drawdown_kills_cancels_flattens_within_the_cap_and_times_the_cancels(tmp_path, drop):
    steps = [buy(100, "1", "10001", tif="IOC", id="open"),
             buy(200, "0.1", "8990", id="resting"),
             buy(4000, "0.1", "8990", id="frozen"),  # after the kill: refused
             {"at_ms": 5000, "do": "resume", "why": "checked"},
             buy(5100, "0.1", "8990", id="again")]
    run = rf.run(tmp_path, drop, steps, {"max_drawdown": 500, "kill_flatten": True, "kill_max_slippage_bps": 50})
    orders = rf.orders(run)
    assert reasons(run)["resting"] == ("cancelled", "user_cancel")
    assert reasons(run)["frozen"] == ("rejected", "kill_switch")
    assert reasons(run)["again"] == ("acknowledged", None)
    (flat_id,) = [cid for cid, o in orders.items() if cid not in ("open", "resting", "frozen", "again")]
    flat = orders[flat_id]
    # sell 1 at ceil(9000.50 x (1 - 50/10000)) = ceil(8955.4975) = 8955.50, IOC; fills at the bid
    assert (flat["side"], flat["qty"], flat["price"], flat["tif"], flat["reduce_only"]) == \
        ("sell", "1.00000", "8955.50", "IOC", True)
    assert [(f["side"], f["price"], f["qty"]) for f in rf.fills(run)] == [
        ("buy", "10001.00", "1.00000"), ("sell", "9000.00", "1.00000")]
    summary = rf.summary(run)["run"]
    assert Decimal(summary["positions"][BTC]) == 0
    (kill,) = summary["risk"]["kills"]
    trigger = rf.T0 + 3 * rf.S  # the sample that saw drawdown 0 - (-1000.50) = 1000.50 > 500
    assert (kill["ts"], kill["who"], kill["reason"], kill["cancels"]) == (trigger, "risk", "max_drawdown", 1)
    assert kill["cancel_ack_ns"] == 2 * rf.MS  # cancel entry 1 ms + response 1 ms
    assert kill["flatten_orders"] == [flat_id]
    assert [(t["to"], t["reason"], t["who"], t["why"]) for t in summary["risk"]["transitions"]] == [
        ("halted", "kill", "risk", "max_drawdown"), ("active", "resume", "strategy", "checked")]
    actions = [r["action"] for r in rf.audit(run, "risk")]
    assert actions[:4] == ["risk_state", "kill", "kill_cancels_done", "flatten"]
    assert main(["audit", "verify", str(run / "audit.jsonl")]) == 0  # risk records are in the chain


def test_ctx_kill_without_flatten_freezes_and_with_a_zero_cap_does_not_chase(tmp_path, flat):
    steps = [buy(100, "0.5", "10001", tif="IOC", id="long"),
             buy(200, "0.1", "9990", id="r1"), sell(200, "0.1", "10010", id="r2"),
             {"at_ms": 1000, "do": "kill", "reason": "manual"},
             buy(1500, "0.1", "9990", id="after"),
             {"at_ms": 2000, "do": "resume", "why": "again"},
             # cap 0: sell at ceil(10000.50) = 10000.50 > bid 10000.00: the IOC does not fill
             {"at_ms": 3000, "do": "kill", "reason": "flat", "flatten": True, "slippage": "0"}]
    run = rf.run(tmp_path, flat, steps, {})
    r = reasons(run)
    assert r["r1"] == r["r2"] == ("cancelled", "user_cancel")
    assert r["after"] == ("rejected", "kill_switch")
    kills = rf.summary(run)["run"]["risk"]["kills"]
    assert [(k["ts"], k["cancels"], k["cancel_ack_ns"], k["who"]) for k in kills] == [
        (rf.T0 + 1000 * rf.MS, 2, 2 * rf.MS, "strategy"), (rf.T0 + 3000 * rf.MS, 0, 0, "strategy")]
    flat_id = kills[1]["flatten_orders"][0]
    assert reasons(run)[flat_id] == ("cancelled", "ioc_remainder")
    assert rf.orders(run)[flat_id]["price"] == "10000.50"
    assert Decimal(rf.summary(run)["run"]["positions"][BTC]) == Decimal("0.5")


def test_cancel_rate_limit_refuses_the_third_cancel_in_a_second(tmp_path, flat):
    steps = [buy(100, "0.1", "9990", id="a"), buy(100, "0.1", "9989", id="b"), buy(100, "0.1", "9988", id="c"),
             *({"at_ms": 500, "do": "cancel", "id": x} for x in "abc"),
             {"at_ms": 1600, "do": "cancel", "id": "c"}]  # a second later: allowed
    run = rf.run(tmp_path, flat, steps, {"max_cancels_per_second": 2})
    refused = [(u["client_id"], u["event"], u["status"], u["reason"]) for u in rf.updates(run)
               if u["event"] == "cancel_rejected"]
    assert refused == [("c", "cancel_rejected", "acknowledged", "cancel_rate")]
    assert all(status == "cancelled" for status, _ in reasons(run).values())
    assert rf.summary(run)["run"]["risk"]["refusals"] == {"cancel_rate": 1}


def test_venue_rejects_auto_disable_and_resume(tmp_path, flat):
    # two post-only buys at the ask are rejected by the venue: halted after the second
    steps = [buy(100, "0.1", "10001", tif="GTX", id="po1"), buy(200, "0.1", "10001", tif="GTX", id="po2"),
             buy(300, "0.1", "9990", id="halted"), {"at_ms": 400, "do": "resume", "why": "fixed"},
             buy(500, "0.1", "9990", id="ok")]
    run = rf.run(tmp_path, flat, steps, {"disable_after_rejects": 2, "disable_window_s": 1})
    r = reasons(run)
    assert r["po1"] == r["po2"] == ("rejected", "post_only_would_take")
    assert r["halted"] == ("rejected", "risk_halted") and r["ok"] == ("acknowledged", None)
    t = rf.summary(run)["run"]["risk"]["transitions"]
    assert [(x["to"], x["reason"]) for x in t] == [("halted", "disable_after_rejects"), ("active", "resume")]
    assert t[0]["ts"] == rf.T0 + 202 * rf.MS  # po2's reject arrives 2 ms after it was sent


@pytest.mark.parametrize(("limit", "halted"), [("0.4", True), ("0.5", False)])
def test_slippage_beyond_the_limit_auto_disables(tmp_path, flat, limit, halted):
    # a buy filled at 10001 against an arrival mid of 10000.50: 0.5 / 10000.5 x 10000 = 0.49998 bps
    steps = [buy(100, "0.1", "10001", tif="IOC", id="take"), buy(300, "0.1", "9990", id="next")]
    run = rf.run(tmp_path, flat, steps, {"disable_slippage_bps": limit})
    assert reasons(run)["next"] == (("rejected", "risk_halted") if halted else ("acknowledged", None))


@pytest.mark.parametrize(("mode", "expected"), [("reject", ("rejected", "approval_refused")),
                                                ("approve", ("filled", None))])
def test_backtest_approvals_follow_the_config(tmp_path, flat, mode, expected):
    # 0.5 x 10001 = 5000.50 >= 5000 needs approval; 0.49 x 10001 = 4900.49 does not
    steps = [buy(100, "0.5", "10001", tif="IOC", id="big"), buy(200, "0.49", "10001", tif="IOC", id="small")]
    run = rf.run(tmp_path, flat, steps, {"approval_notional": 5000, "approval_in_backtest": mode})
    assert reasons(run) == {"big": expected, "small": ("filled", None)}
    (record,) = [r for r in rf.audit(run, "risk") if r["action"] in ("approved", "refused_approval")]
    assert (record["client_id"], record["who"]) == ("big", "config")


def test_an_amend_beyond_a_limit_is_refused_and_the_order_kept(tmp_path, flat):
    steps = [buy(100, "0.5", "9990", id="a"),
             {"at_ms": 200, "do": "amend", "id": "a", "qty": "0.9"},  # 0.9 x 10000.50 = 9000.45 > 8000
             {"at_ms": 300, "do": "amend", "id": "a", "qty": "0.7"},  # 7000.35: applied
             # |10300 - 10000.50| / 10000.50 = 299.5 bps > 200
             {"at_ms": 400, "do": "amend", "id": "a", "price": "10300"},
             # 0.7 x 13000 = 9100 > 9000 (the whole amended quantity, as at submit; checked before the band)
             {"at_ms": 500, "do": "amend", "id": "a", "price": "13000"}]
    run = rf.run(tmp_path, flat, steps, {"max_position_notional": 8000, "price_band_bps": 200,
                                         "max_order_notional": 9000})  # 0.9 x 9990 = 8991 passes it
    events = [(u["event"], u["reason"]) for u in rf.updates(run)]
    assert events == [("acknowledged", "None"), ("amend_rejected", "max_position_notional"), ("amended", "None"),
                      ("amend_rejected", "price_band"), ("amend_rejected", "max_order_notional")]
    assert rf.orders(run)["a"]["qty"] == "0.70000"


def test_ctx_reduce_and_resume(tmp_path, flat):
    steps = [buy(100, "0.5", "10001", tif="IOC", id="long"), {"at_ms": 200, "do": "reduce", "why": "lunch"},
             buy(300, "0.1", "10001", tif="IOC", id="more"), sell(400, "0.1", "10000", tif="IOC", id="less"),
             sell(500, "0.5", "10000", tif="IOC", id="flip"),  # 0.5 > the 0.4 held: would flip
             {"at_ms": 600, "do": "resume", "why": "back"}, buy(700, "0.1", "10001", tif="IOC", id="after")]
    run = rf.run(tmp_path, flat, steps, {})
    assert reasons(run) == {"long": ("filled", None), "more": ("rejected", "risk_reducing"),
                            "less": ("filled", None), "flip": ("rejected", "risk_reducing"),
                            "after": ("filled", None)}


@pytest.mark.parametrize(("table", "key"), [
    ({"max_daily_loss": -1}, "max_daily_loss"),
    ({"on_drawdown": "explode"}, "on_drawdown"),
    ({"daily_reset_utc": "25:00"}, "daily_reset_utc"),
    ({"max_venue_exposure_pct": 30}, "max_venue_exposure_pct"),
    ({"max_venue_exposure_pct": 150, "max_total_position_notional": 1}, "max_venue_exposure_pct"),
    ({"disable_after_rejects": 0}, "disable_after_rejects"),
    ({"kill_flatten": "yes"}, "kill_flatten"),
    ({"approval_in_backtest": "maybe"}, "approval_in_backtest"),
    ({"max_margin_ratio": 1.5}, "max_margin_ratio"),  # the venue liquidates at 1: it could never act
])
def test_config_errors_name_the_risk_key(table, key):
    with pytest.raises(ConfigError, match=rf"^\[risk\] {key}") as info:
        RiskConfig.from_table(table)
    assert "\n" not in str(info.value)


def test_max_margin_ratio_takes_a_ratio_up_to_one():
    assert RiskConfig.from_table({"max_margin_ratio": 1}).max_margin_ratio == 1
    assert RiskConfig.from_table({"max_margin_ratio": 0.8}).max_margin_ratio == Decimal("0.8")


def test_the_compiled_fast_path_refuses_a_limit_it_does_not_apply(tmp_path, capsys, root):
    code = main(["backtest", "--strategy", str(root / "examples/compiled_market_maker.py:CompiledTouchQuoter"),
                 "--data", "synthetic:3:10s", "--out", str(tmp_path / "c"), "--no-report",
                 "--config", str(_risk_only(tmp_path, "max_daily_loss = 100"))])
    assert code == 2
    err = capsys.readouterr().err
    assert "[risk] max_daily_loss: the compiled fast path applies only" in err
    assert not (tmp_path / "c").exists()


def _risk_only(tmp_path, line):
    path = tmp_path / "risk.toml"
    path.write_text(f"[risk]\n{line}\n")
    return path


def test_new_reasons_are_risk_codes():
    for code in ("risk_halted", "risk_reducing", "max_position_notional", "max_total_position_notional",
                 "max_open_notional", "max_total_open_notional", "max_venue_exposure", "no_mark", "cancel_rate",
                 "approval_refused", "approval_timeout"):
        assert REASONS[ReasonCode(code)].source == ReasonSource.RISK


def test_daily_reset_time_and_states_on_the_engine():
    assert reset_offset_ns("00:00") == 0 and reset_offset_ns("17:30") == (17 * 3600 + 30 * 60) * rf.S
    engine = RiskEngine(RiskConfig.from_table({"max_daily_loss": 100, "daily_reset_utc": "17:30"}))
    day = rf.T0 + reset_offset_ns("17:30")  # 2024-01-01T17:30Z
    assert engine.on_pnl(day - 1, Decimal(0)) is None
    assert engine.on_pnl(day - 1, Decimal("-100.01")) == ("reducing", "max_daily_loss")  # lost 100.01
    engine.set_state(day - 1, RiskState.REDUCING, "max_daily_loss")
    assert engine.on_pnl(day, Decimal("-100.01")) is None  # a new day: the baseline is -100.01
    assert engine.state is RiskState.ACTIVE and engine.daily_loss == 0
    # a weaker state never overrides a stronger one; only ACTIVE (resume) leaves HALTED
    engine.set_state(day, RiskState.HALTED, "operator")
    assert not engine.set_state(day, RiskState.REDUCING, "max_daily_loss")
    assert engine.set_state(day, RiskState.ACTIVE, "resume", who="ops", why="ok")


class _Pos:
    def __init__(self, lots):
        self.lots = lots


@settings(max_examples=200, deadline=None)
@given(pos=st.lists(st.integers(-500, 500), min_size=2, max_size=2),
       holds=st.lists(st.tuples(st.integers(0, 1), st.sampled_from([1, -1]), st.integers(0, 400)), max_size=6),
       side=st.sampled_from([1, -1]), lots=st.integers(1, 400),
       mids=st.lists(st.integers(1, 3_000_000), min_size=2, max_size=2),
       limits=st.tuples(st.integers(1, 10**7), st.integers(1, 10**7), st.integers(1, 2 * 10**7),
                        st.integers(1, 2 * 10**7)))
def test_exposure_arithmetic_matches_a_decimal_recomputation(pos, holds, side, lots, mids, limits):
    specs = load_instruments()
    insts = [specs[BTC], specs[ETH]]
    per_pos, per_open, total_pos, total_open = (Decimal(x) for x in limits)
    engine = RiskEngine(RiskConfig.from_table({"max_position_notional": per_pos, "max_open_notional": per_open,
                                               "max_total_position_notional": total_pos,
                                               "max_total_open_notional": total_open}))
    tops = [(lambda m=m: (m, 1, m + 2, 1)) for m in mids]  # bid m, ask m + 2 ticks: mid2 = 2m + 2
    engine.bind(insts, [_Pos(p) for p in pos], tops)
    buys, sells = [0, 0], [0, 0]
    for k, (i, s, q) in enumerate(holds):
        engine.hold(f"k{k}", i, s, q)
        (buys if s > 0 else sells)[i] += q
    engine.hold("k0", 0, 1, 0)  # releasing a key takes back exactly what it held
    if holds:
        i, s, q = holds[0]
        (buys if s > 0 else sells)[i] -= q
    assert [engine.held(i) for i in (0, 1)] == [(buys[0], sells[0]), (buys[1], sells[1])]

    def mid(i):
        return (insts[i].tick_size * (2 * mids[i] + 2)) / 2

    def worst(i, b=0, s=0):
        return max(abs(pos[i] + buys[i] + b), abs(pos[i] - sells[i] - s)) * insts[i].lot_size

    add = (lots, 0) if side > 0 else (0, lots)
    before, after = worst(0), worst(0, *add)
    expected = None
    if after > before and after * mid(0) > per_pos:
        expected = "max_position_notional"
    elif (buys[0] + sells[0] + lots) * insts[0].lot_size * mid(0) > per_open:
        expected = "max_open_notional"
    elif after > before and after * mid(0) + worst(1) * mid(1) > total_pos:
        expected = "max_total_position_notional"
    elif ((buys[0] + sells[0] + lots) * insts[0].lot_size * mid(0)
          + (buys[1] + sells[1]) * insts[1].lot_size * mid(1)) > total_open:
        expected = "max_total_open_notional"
    assert engine.check_exposure(0, side, lots, 0) == expected


def test_a_daily_loss_set_to_kill_fires_the_kill_switch(tmp_path, drop):
    steps = [buy(100, "1", "10001", tif="IOC", id="open"), buy(200, "0.1", "8990", id="resting"),
             sell(4000, "0.5", "9000", tif="IOC", id="halted")]
    run = rf.run(tmp_path, drop, steps, {"max_daily_loss": 500, "on_daily_loss": "kill"})
    (kill,) = rf.summary(run)["run"]["risk"]["kills"]
    # the day's PnL at the 3 s sample: (9000.50 - 10001) x 1 = -1000.50; no flatten by default
    assert (kill["ts"], kill["who"], kill["reason"], kill["flatten"], kill["cancel_ack_ns"]) == \
        (rf.T0 + 3 * rf.S, "risk", "max_daily_loss", False, 2 * rf.MS)
    assert reasons(run)["resting"] == ("cancelled", "user_cancel")
    assert reasons(run)["halted"] == ("rejected", "kill_switch")  # even a reducing order


def test_no_mark_values_by_the_limit_price_or_refuses():
    inst = load_instruments()[BTC]
    engine = RiskEngine(RiskConfig.from_table({"max_position_notional": 1000}))
    engine.bind([inst], [_Pos(0)], [lambda: (0, 0, 10_001_00, 5)])  # no bid: no mid yet
    assert engine.check_exposure(0, 1, 10_000, 0) == "no_mark"  # a market buy of 0.1 BTC
    assert engine.check_exposure(0, 1, 10_000, 9_999_00) is None  # 0.1 x 9999 = 999.90 <= 1000
    assert engine.check_exposure(0, 1, 10_002, 9_999_00) == "max_position_notional"  # 0.10002 x 9999 = 1000.09998


def test_docs_risk_md_lists_every_key_and_its_example_is_valid(root):
    """docs/risk.md's [risk] example is a valid table naming every key; its limits table
    names every risk reason of the vocabulary."""
    import tomllib
    from dataclasses import fields

    text = (root / "docs" / "risk.md").read_text()
    block = text.split("```toml\n", 1)[1].split("```", 1)[0]
    table = tomllib.loads(block)["risk"]
    RiskConfig.from_table(table)
    assert set(table) == {f.name for f in fields(RiskConfig)}
    risk_codes = {code.value for code, reason in REASONS.items() if reason.source == ReasonSource.RISK}
    assert {code for code in risk_codes if f"`{code}`" not in text} == set()
