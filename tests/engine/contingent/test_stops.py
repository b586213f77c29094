"""Stop-market, stop-limit and take-profit orders through the backtest: hand-computed cases."""

from decimal import Decimal

from contingent_harness import ID, MS, T0, Script, book, level, run, trade


def _base():
    # bid 100.00 x 1, ask 100.10 x 1; deeper: 99.50 x 5 / 100.50 x 5
    return book(T0, [("100.00", "1"), ("99.50", "5")], [("100.10", "1"), ("100.50", "5")])


def test_sell_stop_market_on_last_trade_fills_at_the_bid(tmp_path):
    script = Script(start=lambda ctx: ctx.submit_stop(ID, "sell", "0.5", "99.90", client_id="sl"))
    rows = _base() + [
        trade(T0 + 1 * MS, "sell", "100.00", "0.1"),  # above the trigger: nothing
        level(T0 + 2 * MS, "bid", "100.00", "0"),  # bid now 99.50: a book change does not touch a last-trade stop
        level(T0 + 2 * MS, "bid", "99.90", "2"),  # bid 99.90 x 2
        trade(T0 + 3 * MS, "sell", "99.90", "0.1"),  # touches 99.90: fires
    ]
    session = run(tmp_path, rows, script)
    assert script.events("sl") == [("acknowledged", "acknowledged"), ("triggered", "acknowledged"),
                                   ("fill", "filled")]
    child = session.oms.by_client["sl.1"]
    # market sell 0.5 at T0+3ms: best bid 99.90 x 2 -> all at 99.90
    assert child.avg_fill_price == Decimal("99.90") and child.filled == 500
    assert child.created_ts == T0 + 3 * MS
    view = session.ctx.contingent("sl")
    assert view["state"] == "filled" and view["trigger_reference"] == "99.90" and view["orders"] == "sl.1"


def test_buy_stop_on_the_opposite_best_fires_on_a_book_change_without_subscription(tmp_path):
    # a buy stop with trigger_type='bid_ask' watches the best ask; the strategy subscribes to nothing
    script = Script(start=lambda ctx: ctx.submit_stop(ID, "buy", "0.5", "100.30", trigger_type="bid_ask",
                                                      client_id="bs"))
    rows = _base() + [
        level(T0 + 1 * MS, "ask", "100.10", "0"),  # ask 100.50: through 100.30
    ]
    session = run(tmp_path, rows, script)
    leg = session.ctx.contingent("bs")
    assert leg["state"] == "filled" and leg["triggered_ts"] == T0 + 1 * MS
    assert leg["trigger_reference"] == "100.50"
    # a market buy of 0.5 against ask 100.50 x 5
    assert session.oms.by_client["bs.1"].avg_fill_price == Decimal("100.50")
    assert not session.wake_book.any() and not session.wake_trade.any()  # no subscription was needed


def test_mid_trigger_counts_a_half_tick_mid(tmp_path):
    script = Script(start=lambda ctx: ctx.submit_stop(ID, "sell", "0.1", "99.975", trigger_type="mid",
                                                      client_id="m"))
    rows = _base() + [
        level(T0 + 1 * MS, "ask", "100.10", "0"),  # mid (100.00 + 100.50) / 2 = 100.25
        level(T0 + 2 * MS, "bid", "100.00", "0"),  # mid (99.50 + 100.50) / 2 = 100.00
        level(T0 + 3 * MS, "ask", "100.45", "1"),  # mid (99.50 + 100.45) / 2 = 99.975: touched
    ]
    session = run(tmp_path, rows, script)
    leg = session.ctx.contingent("m")
    assert leg["triggered_ts"] == T0 + 3 * MS and leg["trigger_reference"] == "99.975"
    assert leg["trigger_price"] == "99.975"
    assert session.oms.by_client["m.1"].avg_fill_price == Decimal("99.50")


def _gap_rows():
    # the bid gaps from 100.00 to 99.00 in one message, then a trade prints there
    return _base() + [
        level(T0 + 1 * MS, "bid", "100.00", "0"),
        level(T0 + 1 * MS, "bid", "99.50", "0"),
        level(T0 + 1 * MS, "bid", "99.00", "3"),
        trade(T0 + 1 * MS, "sell", "99.00", "0.2"),
    ]


def test_a_gap_through_a_stop_market_fills_at_what_the_book_offers(tmp_path):
    script = Script(start=lambda ctx: ctx.submit_stop(ID, "sell", "0.5", "99.90", client_id="g"))
    session = run(tmp_path, _gap_rows(), script)
    # the trigger is 99.90; the book offers 99.00: the stop's market order fills there
    assert session.oms.by_client["g.1"].avg_fill_price == Decimal("99.00")
    assert session.ctx.contingent("g")["trigger_reference"] == "99.00"


def test_a_gap_through_a_stop_limit_leaves_it_resting_unfilled(tmp_path):
    script = Script(start=lambda ctx: ctx.submit_stop(ID, "sell", "0.5", "99.90", "99.80", client_id="gl"))
    session = run(tmp_path, _gap_rows(), script)
    child = session.oms.by_client["gl.1"]
    # a sell limit at 99.80 with the best bid at 99.00 does not cross: it rests, unfilled
    assert child.filled == 0 and child.is_open and child.price == 9980
    leg = session.ctx.contingent("gl")
    assert leg["state"] == "working" and leg["filled_qty"] == "0"


def test_entry_latency_fills_at_the_book_when_the_order_arrives(tmp_path):
    # trigger at T0+1ms (local); the market order reaches the venue 5 ms later, after the
    # bid dropped to 99.50: it fills at 99.50, not at the 100.00 bid of the trigger time
    script = Script(start=lambda ctx: ctx.submit_stop(ID, "sell", "0.5", "100.00", client_id="l"))
    rows = _base() + [
        trade(T0 + 1 * MS, "sell", "100.00", "0.1"),
        level(T0 + 3 * MS, "bid", "100.00", "0"),
    ]
    session = run(tmp_path, rows, script, entry_ns=5 * MS)
    child = session.oms.by_client["l.1"]
    assert child.created_ts == T0 + 1 * MS and child.avg_fill_price == Decimal("99.50")


def test_a_stop_already_touched_when_armed_fires_at_once(tmp_path):
    # the last trade was 100.00; a sell stop at 100.05 armed afterwards is already through
    script = Script(at={T0 + 2 * MS: lambda ctx: ctx.submit_stop(ID, "sell", "0.1", "100.05", client_id="now")})
    rows = _base() + [trade(T0 + 1 * MS, "sell", "100.00", "0.1"), level(T0 + 5 * MS, "ask", "100.20", "1")]
    session = run(tmp_path, rows, script)
    leg = session.ctx.contingent("now")
    assert leg["armed_ts"] == leg["triggered_ts"] == T0 + 2 * MS and leg["trigger_reference"] == "100.00"
    assert session.oms.by_client["now.1"].avg_fill_price == Decimal("100.00")


def test_take_profit_fires_on_the_favourable_side_and_limit_version_rests(tmp_path):
    def start(ctx):
        ctx.submit_take_profit(ID, "sell", "0.2", "100.40", client_id="tp")  # market if touched
        ctx.submit_take_profit(ID, "sell", "0.2", "100.40", "100.60", client_id="tpl")  # limit if touched
    rows = _base() + [trade(T0 + 1 * MS, "buy", "100.30", "0.1"), trade(T0 + 2 * MS, "buy", "100.40", "0.1")]
    session = run(tmp_path, rows, script := Script(start=start))
    assert session.ctx.contingent("tp")["triggered_ts"] == T0 + 2 * MS
    assert session.oms.by_client["tp.1"].avg_fill_price == Decimal("100.00")  # the bid
    limit = session.oms.by_client["tpl.1"]
    assert limit.price == 10060 and limit.filled == 0 and limit.is_open
    assert ("triggered", "acknowledged") in script.events("tpl")


def test_cancel_and_amend_an_armed_stop(tmp_path):
    def start(ctx):
        ctx.submit_stop(ID, "sell", "0.1", "99.00", client_id="a")
        ctx.submit_stop(ID, "sell", "0.1", "99.00", client_id="b")

    def later(ctx):
        assert ctx.cancel("a") is True
        assert ctx.amend_contingent("b", trigger_price="99.95") is True

    rows = _base() + [trade(T0 + 2 * MS, "sell", "99.95", "0.1"), trade(T0 + 3 * MS, "sell", "99.00", "0.1")]
    script = Script(start=start, at={T0 + 1 * MS: later})
    session = run(tmp_path, rows, script)
    assert script.events("a")[-1] == ("cancelled", "cancelled")
    assert session.ctx.contingent("a")["reason"] == "user_cancel" and "a.1" not in session.oms.by_client
    assert session.ctx.contingent("b")["triggered_ts"] == T0 + 2 * MS  # the moved trigger
    assert session.ctx.cancel("b") is False  # already released and filled


def test_malformed_requests_raise_order_errors(tmp_path):
    import pytest

    from engine.errors import OffGridError, OrderError

    def start(ctx):
        with pytest.raises(OrderError, match="trigger_type"):
            ctx.submit_stop(ID, "sell", "0.1", "99", trigger_type="close")
        with pytest.raises(OffGridError):
            ctx.submit_stop(ID, "sell", "0.1", "99.001")
        with pytest.raises(OrderError, match="exactly one"):
            ctx.submit_trailing_stop(ID, "sell", "0.1")
        with pytest.raises(OrderError, match="display_qty"):
            ctx.submit_iceberg(ID, "sell", "0.1", "101", "0.2")
        ctx.submit_stop(ID, "sell", "0.1", "99", client_id="x")
        with pytest.raises(OrderError, match="already used"):
            ctx.submit_stop(ID, "sell", "0.1", "99", client_id="x")
        start.ok = True

    run(tmp_path, _base(), Script(start=start))
    assert start.ok
