"""OCO, OTO and bracket rules through the backtest: hand-computed cases (docs/contingent-orders.md)."""

from decimal import Decimal

from contingent_harness import ID, MS, T0, Script, book, level, run, trade

from engine.contingent import OrderSpec


def _base():
    # bid 100.00 x 1, ask 100.10 x 1; deeper: 99.50 x 5 / 100.50 x 5
    return book(T0, [("100.00", "1"), ("99.50", "5")], [("100.10", "1"), ("100.50", "5")])


def _oco(ctx):
    ctx.submit_oco(OrderSpec(ID, "sell", "0.5", "101.00"),  # take-profit resting at the venue
                   OrderSpec(ID, "sell", "0.5", type="stop_market", trigger_price="99.50"), client_id="o")


def test_oco_stop_triggers_and_cancels_the_resting_limit(tmp_path):
    script = Script(start=_oco)
    session = run(tmp_path, _base() + [trade(T0 + 1 * MS, "sell", "99.50", "0.1")], script)
    assert script.events("o.1") == [("acknowledged", "acknowledged"), ("cancelled", "cancelled")]
    assert session.ctx.contingent("o.1")["reason"] == "oco"
    assert session.oms.by_client["o.2.1"].avg_fill_price == Decimal("100.00")
    assert session.ctx.position(ID) == Decimal("-0.5")


def test_oco_first_fill_of_the_limit_cancels_the_stop(tmp_path):
    script = Script(start=_oco)
    # a buy prints through 101.00: the resting sell fills 0.2 of 0.5 (trade of 0.2 at its price, nothing ahead)
    rows = _base() + [trade(T0 + 1 * MS, "buy", "101.00", "0.2"), trade(T0 + 2 * MS, "sell", "99.50", "0.1")]
    session = run(tmp_path, rows, script)
    assert session.oms.by_client["o.1"].filled == 200
    stop = session.ctx.contingent("o.2")
    assert stop["state"] == "cancelled" and stop["reason"] == "oco" and stop["orders"] is None
    assert session.ctx.position(ID) == Decimal("-0.2")


def test_oco_tie_on_one_event_the_stop_wins(tmp_path):
    # one book message moves the bid to 98.00 and the ask to 104.00: the bid-watched stop
    # (<= 99.00) and the mid-watched take-profit (mid 101.00 >= 101.00) are both touched
    def start(ctx):
        ctx.submit_oco(OrderSpec(ID, "sell", "0.5", type="take_profit", trigger_price="101.00", trigger_type="mid"),
                       OrderSpec(ID, "sell", "0.5", type="stop_market", trigger_price="99.00", trigger_type="bid_ask"),
                       client_id="t")
    rows = _base() + [
        level(T0 + 1 * MS, "bid", "100.00", "0"), level(T0 + 1 * MS, "bid", "99.50", "0"),
        level(T0 + 1 * MS, "bid", "98.00", "2"), level(T0 + 1 * MS, "ask", "100.10", "0"),
        level(T0 + 1 * MS, "ask", "100.50", "0"), level(T0 + 1 * MS, "ask", "104.00", "2"),
    ]
    script = Script(start=start)
    session = run(tmp_path, rows, script)
    tp, sl = session.ctx.contingent("t.1"), session.ctx.contingent("t.2")
    assert sl["state"] == "filled" and sl["triggered_ts"] == T0 + 1 * MS
    assert tp["state"] == "cancelled" and tp["reason"] == "oco" and tp["triggered_ts"] is None
    assert session.oms.by_client["t.2.1"].avg_fill_price == Decimal("98.00")


def test_oco_cancelling_one_leg_cancels_the_other(tmp_path):
    script = Script(start=_oco, at={T0 + 1 * MS: lambda ctx: ctx.cancel("o.1")})
    session = run(tmp_path, _base() + [level(T0 + 2 * MS, "ask", "100.20", "1")], script)
    assert session.ctx.contingent("o.2")["state"] == "cancelled"
    assert session.ctx.contingent("o.2")["reason"] == "oco"
    assert session.oms.by_client["o.1"].reason == "user_cancel"


def _oto(trigger_on):
    def start(ctx):
        ctx.submit_oto(OrderSpec(ID, "buy", "1", "99.90"),  # rests alone at 99.90
                       [OrderSpec(ID, "sell", "1", "101.00")], trigger_on=trigger_on, client_id="p")
    return start


def _oto_rows():
    return _base() + [trade(T0 + 1 * MS, "sell", "99.90", "0.4"), trade(T0 + 2 * MS, "sell", "99.90", "0.6")]


def test_oto_releases_children_on_the_first_fill(tmp_path):
    session = run(tmp_path, _oto_rows(), Script(start=_oto("first_fill")))
    child = session.oms.by_client["p.1"]
    assert child.created_ts == T0 + 1 * MS and child.qty == 1000


def test_oto_releases_children_on_the_full_fill(tmp_path):
    session = run(tmp_path, _oto_rows(), Script(start=_oto("full_fill")))
    assert session.oms.by_client["p.1"].created_ts == T0 + 2 * MS


def test_oto_parent_cancelled_unfilled_cancels_children_part_filled_releases_them(tmp_path):
    unfilled = run(tmp_path / "a", _base() + [level(T0 + 2 * MS, "ask", "100.20", "1")],
                   Script(start=_oto("full_fill"), at={T0 + 1 * MS: lambda ctx: ctx.cancel("p.parent")}))
    child = unfilled.ctx.contingent("p.1")
    assert child["state"] == "cancelled" and child["reason"] == "parent_cancelled" and "p.1" not in unfilled.oms.by_client
    rows = _base() + [trade(T0 + 1 * MS, "sell", "99.90", "0.4"), level(T0 + 3 * MS, "ask", "100.20", "1")]
    part = run(tmp_path / "b", rows, Script(start=_oto("full_fill"), at={T0 + 2 * MS: lambda ctx: ctx.cancel("p.parent")}))
    assert part.oms.by_client["p.1"].created_ts == T0 + 2 * MS  # released when the parent ended part-filled


def test_oto_parent_rejected_cancels_children(tmp_path):
    def start(ctx):  # a post-only buy at the ask would take liquidity: the venue rejects it
        ctx.submit_oto(OrderSpec(ID, "buy", "1", "100.10", post_only=True), [OrderSpec(ID, "sell", "1", "101.00")],
                       client_id="r")
    session = run(tmp_path, _base() + [level(T0 + 2 * MS, "ask", "100.20", "1")], Script(start=start))
    assert session.oms.by_client["r.parent"].reason == "post_only_would_take"
    assert session.ctx.contingent("r.1")["reason"] == "parent_rejected"


def _bracket(ctx, **kw):
    ctx.submit_bracket(ID, "buy", "1", "99.90", stop_loss_price="99.00", take_profit_price="101.00",
                       client_id="b", **kw)


def test_bracket_exits_follow_partial_fills_then_the_stop_closes_it(tmp_path):
    script = Script(start=_bracket)
    rows = _base() + [
        trade(T0 + 1 * MS, "sell", "99.90", "0.4"),  # entry fills 0.4: exits for 0.4
        trade(T0 + 2 * MS, "sell", "99.90", "0.6"),  # entry fills the rest: exits resized to 1
        level(T0 + 3 * MS, "bid", "99.00", "4"),
        trade(T0 + 4 * MS, "sell", "99.00", "0.1"),  # stop touched
    ]
    session = run(tmp_path, rows, script)
    tp = session.oms.by_client["b.tp"]
    assert tp.created_ts == T0 + 1 * MS and tp.qty == 1000  # sent for 0.4, amended to 1
    assert [(u.event.value, u.qty) for u in script.updates if u.client_id == "b.sl"][:3] == [
        ("acknowledged", Decimal("0.4")), ("amended", Decimal("1")), ("triggered", Decimal("1"))]
    # the stop's market sell of 1: bid 100.00 x 1 -> all at 100.00
    assert session.oms.by_client["b.sl.1"].avg_fill_price == Decimal("100.00")
    assert tp.status.name == "CANCELLED" and tp.reason == "user_cancel"  # cancelled by the bracket
    assert session.ctx.contingent("b.tp")["reason"] == "bracket_stop"
    assert session.ctx.position(ID) == Decimal("0")


def test_bracket_take_profit_partial_fill_resizes_the_stop_and_its_full_fill_cancels_it(tmp_path):
    script = Script(start=_bracket)
    rows = _base() + [
        trade(T0 + 1 * MS, "sell", "99.90", "1"),  # entry filled
        trade(T0 + 2 * MS, "buy", "101.00", "0.3"),  # take-profit fills 0.3
        trade(T0 + 3 * MS, "buy", "101.00", "0.7"),  # and the rest
    ]
    session = run(tmp_path, rows, script)
    sl = [(u.event.value, u.qty) for u in script.updates if u.client_id == "b.sl"]
    assert sl == [("acknowledged", Decimal("1")), ("amended", Decimal("0.7")), ("cancelled", Decimal("0.7"))]
    assert session.ctx.contingent("b.sl")["reason"] == "bracket_closed"
    assert session.ctx.position(ID) == Decimal("0")


def test_bracket_entry_cancelled_or_rejected_unfilled_cancels_the_exits(tmp_path):
    cancelled = run(tmp_path / "a", _base() + [level(T0 + 2 * MS, "ask", "100.20", "1")],
                    Script(start=_bracket, at={T0 + 1 * MS: lambda ctx: ctx.cancel("b.entry")}))
    assert cancelled.ctx.contingent("b.sl")["reason"] == "entry_cancelled"
    assert cancelled.ctx.contingent("b.tp")["reason"] == "entry_cancelled"
    # a post-only entry at the ask would take liquidity: the venue rejects it
    rejected = run(tmp_path / "b", _base(), Script(start=lambda ctx: ctx.submit_bracket(
        ID, "buy", "1", "100.10", post_only=True, stop_loss_price="99", take_profit_price="101", client_id="b")))
    assert rejected.ctx.contingent("b.sl")["reason"] == "entry_rejected"


def test_bracket_entry_cancelled_after_a_partial_fill_keeps_exits_for_what_filled(tmp_path):
    rows = _base() + [trade(T0 + 1 * MS, "sell", "99.90", "0.4"), level(T0 + 3 * MS, "ask", "100.20", "1")]
    session = run(tmp_path, rows, Script(start=_bracket, at={T0 + 2 * MS: lambda ctx: ctx.cancel("b.entry")}))
    assert session.ctx.contingent("b.sl")["state"] == "armed" and session.ctx.contingent("b.sl")["qty"] == "0.400"
    assert session.oms.by_client["b.tp"].qty == 400 and session.oms.by_client["b.tp"].is_open


def test_cancelling_the_bracket_cancels_every_live_leg_and_keeps_the_position(tmp_path):
    rows = _base() + [trade(T0 + 1 * MS, "sell", "99.90", "1"), level(T0 + 3 * MS, "ask", "100.20", "1")]
    session = run(tmp_path, rows, Script(start=_bracket, at={T0 + 2 * MS: lambda ctx: ctx.cancel("b")}))
    assert session.ctx.contingent("b.sl")["state"] == "cancelled"
    assert session.ctx.contingent("b.tp")["state"] == "cancelled"
    assert session.ctx.position(ID) == Decimal("1")
    assert session.ctx.contingent("b")["done"] is True


def test_bracket_with_engine_held_take_profit(tmp_path):
    rows = _base() + [trade(T0 + 1 * MS, "sell", "99.90", "1"), trade(T0 + 2 * MS, "buy", "101.00", "0.1")]
    session = run(tmp_path, rows, Script(start=lambda ctx: _bracket(ctx, take_profit_type="take_profit")))
    tp = session.ctx.contingent("b.tp")
    assert tp["triggered_ts"] == T0 + 2 * MS and tp["state"] == "filled"
    assert session.oms.by_client["b.tp.1"].avg_fill_price == Decimal("100.00")  # a market sell at the bid
    assert session.ctx.contingent("b.sl")["reason"] == "bracket_closed"


def test_bracket_exits_sell_what_arrived_when_the_venue_takes_its_fee_in_the_base_asset(tmp_path):
    """Binance spot charges a buy's fee in the base asset it delivers: an entry of 1 BTC at
    maker 15 bps arrives as 0.9985 BTC, so the exits are for 0.998 (rounded down to the
    0.001 lot; the fee rounded up to 2 lots); the 0.002 BTC left is dust the exits never
    try to sell (with no other BTC, a sell of 1 would be refused for insufficient balance)."""
    script = Script(start=_bracket)
    rows = _base() + [
        trade(T0 + 1 * MS, "sell", "99.90", "1"),  # entry filled: 1 BTC minus a 0.0015 BTC fee
        trade(T0 + 2 * MS, "buy", "101.00", "1"),  # the take-profit fills
    ]
    session = run(tmp_path, rows, script, balances={"USDT": "1000", "BTC": "0"},
                  table={"maker_fee_bps": 15, "taker_fee_bps": 15, "fee_asset": "received"})
    tp, sl = session.oms.by_client["b.tp"], session.ctx.contingent("b.sl")
    assert (tp.qty, tp.filled, tp.status.name) == (998, 998, "FILLED")
    assert sl["qty"] == "0.998" and sl["reason"] == "bracket_closed"
    assert session.ledger.balance("sim", "BTC") == Decimal("0.0005")  # 1 - 0.0015 - 0.998


def test_generated_ids_carry_the_sessions_prefix(tmp_path):
    """Ids the engine makes for contingent orders start with the session's client-id prefix
    like plain orders' (docs/orders-live.md "Client ids"): a backtest's is `tp`, so the
    bracket is `tp-c1` and its legs `tp-c1.entry` / `.sl` / `.tp` (deterministic from the
    config, as `tp-<n>`); a live session's is `tp<stamp>` (unique per account)."""

    def start(ctx):
        ctx.submit_bracket(ID, "buy", "0.5", "100.10", stop_loss_price="99.00", take_profit_price="101.00")
        ctx.submit_stop(ID, "sell", "0.1", "99.00")

    script = Script(start=start)
    session = run(tmp_path, _base() + [trade(T0 + 1 * MS, "sell", "100.00", "0.1")], script)
    assert sorted(session.contingent.groups) == ["tp-c1"]
    assert sorted(session.contingent.legs) == ["tp-c1.entry", "tp-c1.sl", "tp-c1.tp", "tp-c2"]
    assert all(cid.startswith("tp-") for cid in session.oms.by_client)
    assert "tp-c1.entry" in session.oms.by_client and "tp-c1.tp" in session.oms.by_client
