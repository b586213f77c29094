"""More rules through the backtest: risk refusals at trigger time, restored state that keeps
working, icebergs cancelled, stop-limit stops in brackets, OCO legs refused by the venue."""

import json
from decimal import Decimal

import pytest
from contingent_harness import ID, MS, T0, Script, book, level, run, trade

from engine.contingent import OrderSpec
from engine.errors import OrderError


def _base():
    return book(T0, [("100.00", "1"), ("99.50", "5")], [("100.10", "1"), ("100.50", "5")])


def test_a_risk_refusal_at_trigger_time_rejects_the_stop_with_the_risk_reason(tmp_path):
    # [risk] max_order_notional = 10 USDT: the released market sell of 0.5 (~50 USDT) is refused
    script = Script(start=lambda ctx: ctx.submit_stop(ID, "sell", "0.5", "99.90", client_id="s"))
    session = run(tmp_path, _base() + [trade(T0 + 1 * MS, "sell", "99.90", "0.1")], script,
                  risk={"max_order_notional": "10"})
    assert script.events("s") == [("acknowledged", "acknowledged"), ("triggered", "acknowledged"),
                                  ("rejected", "rejected")]
    assert session.ctx.contingent("s")["reason"] == "max_order_notional"
    assert session.oms.by_client["s.1"].reason == "max_order_notional"


def test_restored_state_keeps_watching_in_the_new_session(tmp_path):
    first = run(tmp_path / "a", _base(), Script(start=lambda ctx: ctx.submit_stop(ID, "sell", "0.2", "99.90",
                                                                                 client_id="kept")))
    saved = json.loads(json.dumps(first.contingent.state()))
    assert first.ctx.contingent("kept")["state"] == "armed"
    # a new process: restore before the first event, then the market touches the trigger
    session = run(tmp_path / "b", _base() + [trade(T0 + 1 * MS, "sell", "99.90", "0.1")],
                  Script(start=lambda ctx: ctx._session.contingent.restore(saved)))
    leg = session.ctx.contingent("kept")
    assert leg["state"] == "filled" and leg["triggered_ts"] == T0 + 1 * MS
    assert session.oms.by_client["kept.1"].avg_fill_price == Decimal("100.00")
    with pytest.raises(OrderError, match="without contingent orders"):
        session.contingent.restore(saved)


def test_cancelling_an_iceberg_cancels_its_working_slice(tmp_path):
    script = Script(start=lambda ctx: ctx.submit_iceberg(ID, "buy", "1", "99.00", "0.2", client_id="ice"),
                    at={T0 + 1 * MS: lambda ctx: ctx.cancel("ice")})
    session = run(tmp_path, _base() + [level(T0 + 2 * MS, "ask", "100.20", "1")], script)
    assert session.oms.by_client["ice.1"].status.name == "CANCELLED"
    assert script.events("ice")[-1] == ("cancelled", "cancelled")
    assert session.ctx.contingent("ice")["reason"] == "user_cancel"


def test_bracket_with_a_stop_limit_gapped_through_keeps_its_limit_working(tmp_path):
    def start(ctx):
        ctx.submit_bracket(ID, "buy", "1", "99.90", stop_loss_price="99.40", stop_loss_limit_price="99.30",
                           take_profit_price="101.00", client_id="b")
    rows = _base() + [
        trade(T0 + 1 * MS, "sell", "99.90", "1"),  # entry filled
        level(T0 + 2 * MS, "bid", "100.00", "0"), level(T0 + 2 * MS, "bid", "99.50", "0"),
        level(T0 + 2 * MS, "bid", "98.00", "5"), trade(T0 + 2 * MS, "sell", "98.00", "0.1"),  # gap to 98.00
    ]
    session = run(tmp_path, rows, Script(start=start))
    child = session.oms.by_client["b.sl.1"]
    assert child.price == 9930 and child.filled == 0 and child.is_open  # no bid at or above 99.30
    assert session.ctx.contingent("b.tp")["reason"] == "bracket_stop"
    assert session.ctx.position(ID) == Decimal("1")  # still long: a stop-limit may not fill


def test_an_oco_leg_refused_by_the_venue_cancels_the_other(tmp_path):
    def start(ctx):  # a post-only sell at the bid would take: rejected, and the stop goes with it
        ctx.submit_oco(OrderSpec(ID, "sell", "0.5", "100.00", post_only=True),
                       OrderSpec(ID, "sell", "0.5", type="stop_market", trigger_price="99.00"), client_id="o")
    session = run(tmp_path, _base() + [level(T0 + 2 * MS, "ask", "100.20", "1")], Script(start=start))
    assert session.oms.by_client["o.1"].reason == "post_only_would_take"
    assert session.ctx.contingent("o.2")["state"] == "cancelled"
    assert session.ctx.contingent("o.2")["reason"] == "oco"


def test_amend_contingent_refusals(tmp_path):
    def start(ctx):
        ctx.submit_stop(ID, "sell", "0.1", "99.00", client_id="s")
        ctx.submit_bracket(ID, "buy", "1", "99.90", stop_loss_price="99", take_profit_price="101", client_id="b")
        with pytest.raises(OrderError, match="unknown contingent order"):
            ctx.amend_contingent("nope", trigger_price="1")
        with pytest.raises(OrderError, match="no limit price"):
            ctx.amend_contingent("s", price="98")
        with pytest.raises(OrderError, match="follows its entry"):
            ctx.amend_contingent("b.sl", qty="2")
        assert ctx.amend_contingent("s", qty="0.2") is True
        start.ok = True
    session = run(tmp_path, _base(), Script(start=start))
    assert start.ok and session.ctx.contingent("s")["qty"] == "0.200"


def test_triggers_run_before_the_strategys_own_callback_of_the_same_event(tmp_path):
    seen = []

    class Watcher(Script):
        def on_trade(self, ctx, trade):
            seen.append((str(trade.price), ctx.contingent("s")["state"], ctx.contingent_orders()))

    script = Watcher(start=lambda ctx: (ctx.subscribe(ID, book=False, trades=True),
                                        ctx.submit_stop(ID, "sell", "0.2", "99.90", client_id="s"),
                                        ctx.submit_iceberg(ID, "buy", "1", "99.00", "0.5", client_id="i")))
    run(tmp_path, _base() + [trade(T0 + 1 * MS, "sell", "100.00", "0.1"),
                             trade(T0 + 2 * MS, "sell", "99.90", "0.1")], script)
    # at the touching trade the stop has already released its order when the strategy hears of it
    assert seen == [("100.00", "armed", ["s", "i"]), ("99.90", "working", ["s", "i"])]


def test_a_refused_bracket_leaves_no_trace(tmp_path):
    def start(ctx):
        with pytest.raises(OrderError, match="other side"):
            ctx._session.contingent.submit_bracket(
                OrderSpec(ID, "buy", "1", "99.90"), OrderSpec(ID, "buy", "1", type="stop_market", trigger_price="99"),
                OrderSpec(ID, "sell", "1", "101"), "bad")
        with pytest.raises(OrderError, match="take_profit_type"):
            ctx.submit_bracket(ID, "buy", "1", "99.90", stop_loss_price="99", take_profit_price="101",
                               take_profit_type="trailing", client_id="bad")
        ctx.submit_bracket(ID, "buy", "1", "99.90", stop_loss_price="99", take_profit_price="101", client_id="bad")
        start.ok = True
    session = run(tmp_path, _base(), Script(start=start))
    assert start.ok and session.ctx.contingent("bad")["legs"] == ["bad.entry", "bad.sl", "bad.tp"]


def test_an_armed_stop_counts_as_exposure_for_the_risk_limits(tmp_path):
    """An armed buy stop for 1 could add a position of 1 (about 100 at the 100.05 mid): with
    max_position_notional 150 a limit buy of 1 would make the worst case 2 x 100.05 and is
    refused; once the stop is cancelled the same order passes (worst case 100.05)."""

    def start(ctx):
        ctx.submit_stop(ID, "buy", "1", trigger_price="101.00", client_id="st")
        ctx.submit(ID, "buy", "1", "99.00", client_id="a")

    def later(ctx):
        ctx.cancel("st")
        ctx.submit(ID, "buy", "1", "99.00", client_id="b")

    script = Script(start=start, at={T0 + 5 * MS: later})
    rows = book(T0, [("100.00", "1")], [("100.10", "1")]) + [level(T0 + 9 * MS, "bid", "100.00", "2")]
    session = run(tmp_path, rows, script, risk={"max_position_notional": "150"})
    assert session.oms.by_client["a"].reason == "max_position_notional"
    assert session.oms.by_client["b"].status.name == "ACKNOWLEDGED"
