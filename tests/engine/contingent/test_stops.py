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
