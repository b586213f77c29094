"""Trailing stops and icebergs through the backtest: hand-computed cases."""

from decimal import Decimal

from contingent_harness import ID, MS, T0, Script, book, level, run, trade


def _base():
    return book(T0, [("100.00", "1"), ("99.50", "5")], [("100.10", "1"), ("100.50", "5")])


def test_trailing_stop_by_amount_on_last_trade(tmp_path):
    seen = []
    script = Script(start=lambda ctx: ctx.submit_trailing_stop(ID, "sell", "0.5", trailing_amount="0.50",
                                                               client_id="ts"),
                    at={T0 + 3 * MS + 1: lambda ctx: seen.append(ctx.contingent("ts")["trigger_price"])})
    rows = _base() + [
        trade(T0 + 1 * MS, "buy", "100.10", "0.1"),  # watermark 100.10, trigger 99.60
        trade(T0 + 2 * MS, "buy", "101.00", "0.1"),  # watermark 101.00, trigger 100.50
        trade(T0 + 3 * MS, "sell", "100.60", "0.1"),  # lower: the trigger stays at 100.50
        trade(T0 + 4 * MS, "sell", "100.50", "0.1"),  # touched
    ]
    session = run(tmp_path, rows, script)
    assert seen == ["100.50"]
    leg = session.ctx.contingent("ts")
    assert leg["triggered_ts"] == T0 + 4 * MS and leg["trigger_reference"] == "100.50"
    assert session.oms.by_client["ts.1"].avg_fill_price == Decimal("100.00")


def test_trailing_stop_by_bps_on_the_bid(tmp_path):
    # 100 bps: bid 100.00 -> trigger 100.00 - 1.00 = 99.00; bid 101.00 -> 101.00 - 1.01 = 99.99
    script = Script(start=lambda ctx: ctx.submit_trailing_stop(ID, "sell", "0.5", trailing_bps="100",
                                                               trigger_type="bid_ask", client_id="tb"))
    rows = _base() + [
        level(T0 + 1 * MS, "ask", "101.10", "1"), level(T0 + 1 * MS, "bid", "101.00", "1"),
        level(T0 + 2 * MS, "bid", "101.00", "0"),  # bid 100.00: above 99.99
        level(T0 + 3 * MS, "bid", "100.00", "0"), level(T0 + 3 * MS, "bid", "99.99", "2"),  # bid 99.99: touched
    ]
    session = run(tmp_path, rows, script)
    leg = session.ctx.contingent("tb")
    assert leg["trigger_price"] == "99.99" and leg["triggered_ts"] == T0 + 3 * MS
    assert session.oms.by_client["tb.1"].avg_fill_price == Decimal("99.99")


def test_trailing_buy_stop_by_percent_follows_the_low(tmp_path):
    # 1% = 100 bps above the lowest trade: 100.00 -> 101.00; 99.00 -> 99.99
    script = Script(start=lambda ctx: ctx.submit_trailing_stop(ID, "buy", "0.1", trailing_percent="1",
                                                               client_id="tp"))
    rows = _base() + [trade(T0 + 1 * MS, "sell", "100.00", "0.1"), trade(T0 + 2 * MS, "sell", "99.00", "0.1"),
                      trade(T0 + 3 * MS, "buy", "99.98", "0.1"), trade(T0 + 4 * MS, "buy", "99.99", "0.1")]
    session = run(tmp_path, rows, script)
    leg = session.ctx.contingent("tp")
    assert leg["trigger_price"] == "99.99" and leg["triggered_ts"] == T0 + 4 * MS and leg["trailing_bps"] == "100"


def test_iceberg_shows_one_slice_and_refills_at_the_back_of_the_queue(tmp_path):
    # sell 0.9 at 101.00 shown 0.3 at a time; 1.0 of others' asks sits at 101.00 already
    ahead = []

    def queue(ctx):  # the venue's queue position of slice 2 (lots ahead of it)
        session = ctx._session
        ahead.append(session.venues["sim"]._core.order_state(session.oms.by_client["ice.2"].order_no)["ahead"])

    script = Script(start=lambda ctx: ctx.submit_iceberg(ID, "sell", "0.9", "101.00", "0.3", client_id="ice"),
                    at={T0 + 1 * MS + 1: queue, T0 + 3 * MS: queue})
    rows = book(T0, [("100.00", "1")], [("101.00", "1")]) + [
        trade(T0 + 1 * MS, "buy", "101.00", "1.3"),  # 1.0 ahead of slice 1, then 0.3 fills it
        level(T0 + 2 * MS, "ask", "101.00", "0.5"),  # the feed restates the level: 0.5 of others
        trade(T0 + 4 * MS, "buy", "101.00", "0.4"),  # 0.4 of the 0.5 ahead of slice 2
        trade(T0 + 5 * MS, "buy", "101.00", "0.3"),  # 0.1 ahead, then 0.2 fills slice 2 partly
        trade(T0 + 6 * MS, "buy", "101.00", "0.1"),  # the last 0.1 of slice 2
    ]
    session = run(tmp_path, rows, script)
    slices = [session.oms.by_client[f"ice.{k}"] for k in (1, 2, 3)]
    assert [s.qty for s in slices] == [300, 300, 300]
    assert [s.filled for s in slices] == [300, 300, 0]
    assert slices[1].created_ts == T0 + 1 * MS and slices[2].created_ts == T0 + 6 * MS
    assert slices[1].last_fill_ts == T0 + 6 * MS
    # slice 2 joined behind the whole level the venue showed (1.0: trades do not restate it),
    # and after the feed restated 0.5 the queue model put those 0.5 ahead of it
    assert ahead == [1000, 500]
    leg = session.ctx.contingent("ice")
    assert leg["state"] == "working" and leg["filled_qty"] == "0.600" and leg["orders"] == "ice.1,ice.2,ice.3"


def test_trailing_stop_waits_for_its_trailing_trigger_price(tmp_path):
    script = Script(start=lambda ctx: ctx.submit_trailing_stop(ID, "sell", "0.5", trailing_amount="0.50",
                                                               trailing_trigger_price="101.00", client_id="ta"))
    rows = _base() + [
        trade(T0 + 1 * MS, "buy", "100.50", "0.1"),  # not active yet: no watermark
        trade(T0 + 2 * MS, "sell", "99.00", "0.1"),  # a fall before activation triggers nothing
        trade(T0 + 3 * MS, "buy", "101.00", "0.1"),  # activates: watermark 101.00, trigger 100.50
        trade(T0 + 4 * MS, "buy", "101.20", "0.1"),  # trigger 100.70
        trade(T0 + 5 * MS, "sell", "100.70", "0.1"),  # touched
    ]
    session = run(tmp_path, rows, script)
    leg = session.ctx.contingent("ta")
    assert leg["trailing_trigger_price"] == "101.00" and leg["trigger_price"] == "100.70"
    assert leg["triggered_ts"] == T0 + 5 * MS
