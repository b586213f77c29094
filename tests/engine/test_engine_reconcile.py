"""Reconciliation of the OMS and ledger against the venue's answers, the fail-closed gate,
warm-restart adoption, the dead-man switch and the strategy halt (hand-computed cases)."""

import json
import sys
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_engine_session import BTC, _event, _session  # noqa: E402  (its scripted venue)

from engine.reconcile import DeadManSwitch, Reconciler, halt_strategy  # noqa: E402
from engine.types import OrderEventKind, OrderStatus  # noqa: E402
from engine.types.venue_reports import VenueOrderState  # noqa: E402

USDT = Decimal("100000")


def _state(cid, status=OrderStatus.ACKNOWLEDGED, price=10_000_00, qty=50_000, filled=0, found=True):
    return VenueOrderState(cid, "v-" + cid, status, price, qty, filled, 0, 0, source="query", found=found)


def _balances(usdt=USDT, btc=Decimal(0)):
    return {"binance": {"USDT": (usdt, Decimal(0)), "BTC": (btc, Decimal(0))}}


def test_clean_session_reconciles_and_keeps_submits_open(tmp_path):
    session, venue, _ = _session(tmp_path)
    rec = Reconciler(session, prefix="tp-")
    cid = session.ctx.submit(BTC.id, "buy", "0.5", "10000.00")
    session.on_order_event(_event(1, OrderEventKind.ACK, leaves=50_000))
    # the order locks funds at the venue: free + locked is still the ledger's balance
    report = rec.check("periodic", [(BTC, _state(cid))],
                       {"binance": {"USDT": (USDT - 5000, Decimal(5000))}})
    assert report.ok and not session.gate.closed
    assert report.text() == "reconciliation (periodic): ok"


def test_a_lost_fill_fails_closed_and_says_what_differs(tmp_path):
    session, venue, strategy = _session(tmp_path)
    rec = Reconciler(session, prefix="tp-")
    cid = session.ctx.submit(BTC.id, "buy", "0.5", "10000.00")
    session.on_order_event(_event(1, OrderEventKind.ACK, leaves=50_000))
    # the venue filled 0.2 at 10000 (fee 0.0002 BTC) and we never heard of it
    part = _state(cid, OrderStatus.PARTIALLY_FILLED, filled=20_000)
    venue_balances = _balances(usdt=USDT - 2000, btc=Decimal("0.1998"))
    first = rec.check("reconnect", [(BTC, part)], venue_balances)
    assert first.lookups == [cid] and not session.gate.closed  # asked first: the fill may be on its way
    # the lookup shows the same state and its fill never arrives: a difference; the balance
    # gaps are seen for the second time with the same amounts, so they count too
    report = rec.check("reconnect", [(BTC, part)], venue_balances, looked_up={cid: part})
    assert [d.text() for d in report.differences] == [
        f"fill {cid}: ours leaves 0.5, venue leaves 0.3",
        "balance binance:BTC: ours 0, venue 0.1998 (free 0.1998, locked 0)",
        "balance binance:USDT: ours 100000, venue 98000 (free 98000, locked 0)",
    ]
    assert session.gate.closed and "3 difference(s)" in report.text()
    # fail closed: a new submit is refused locally, a cancel still goes out
    refused = session.ctx.submit(BTC.id, "buy", "0.1", "9999.00")
    view = session.ctx.order(refused)
    assert (view.status, view.reason) == ("rejected", "fail_closed")
    assert session.ctx.cancel(cid) and venue.requests[-1][0] == "cancel"
    assert len([r for r in venue.requests if r[0] == "submit"]) == 1


def test_an_order_missing_at_the_venue_is_looked_up_before_it_counts(tmp_path):
    session, _, _ = _session(tmp_path)
    rec = Reconciler(session, prefix="tp-")
    cid = session.ctx.submit(BTC.id, "buy", "0.5", "10000.00")
    session.on_order_event(_event(1, OrderEventKind.ACK, leaves=50_000))
    first = rec.check("periodic", [], _balances())
    assert first.lookups == [cid] and first.ok and not session.gate.closed  # not final yet
    second = rec.check("periodic", [], _balances(), looked_up={cid: _state(cid, found=False)})
    assert [d.text() for d in second.differences] == [
        f"order {cid}: ours ACKNOWLEDGED price 10000 qty 0.5 filled 0, venue not found"]
    assert session.gate.closed


def test_in_flight_orders_are_not_differences(tmp_path):
    session, _, _ = _session(tmp_path)
    rec = Reconciler(session, prefix="tp-")
    session.ctx.submit(BTC.id, "buy", "0.5", "10000.00")  # SUBMITTED, no answer yet
    assert rec.check("periodic", [], _balances()).ok


def test_warm_restart_adopts_ours_and_reports_foreign_orders(tmp_path):
    session, venue, _ = _session(tmp_path)
    rec = Reconciler(session, prefix="tp-")
    left = _state("tp-old-7", OrderStatus.PARTIALLY_FILLED, price=9_990_00, qty=30_000, filled=10_000)
    foreign = _state("web_8d7f", price=9_000_00, qty=1_000)
    report = rec.check("start", [(BTC, left), (BTC, foreign)], _balances(), sides={"tp-old-7": +1})
    assert report.ok and report.adopted == ["tp-old-7"]
    assert report.foreign == ["binance:BTC/USDT web_8d7f (venue id v-web_8d7f)"]
    order = session.oms.by_client["tp-old-7"]
    assert (order.status, order.price, order.qty, order.filled, order.side) == (
        OrderStatus.PARTIALLY_FILLED, 9_990_00, 30_000, 10_000, +1)
    assert session.ledger.position(BTC.id) == 0  # earlier fills are in the venue balances already
    assert session.ctx.cancel("tp-old-7") and venue.requests[-1][0] == "cancel"
    # after the start, an unknown order of ours at the venue is a difference, not adopted
    later = rec.check("periodic", [(BTC, left), (BTC, _state("tp-ghost"))], _balances())
    assert [d.what for d in later.differences] == ["order"] and session.gate.closed


def test_halt_strategy_stops_submits_and_cancels_its_orders(tmp_path):
    session, venue, strategy = _session(tmp_path)
    a = session.ctx.submit(BTC.id, "buy", "0.1", "10000.00")
    b = session.ctx.submit(BTC.id, "sell", "0.1", "10001.00")
    session.on_order_event(_event(1, OrderEventKind.ACK, leaves=10_000))
    session.on_order_event(_event(2, OrderEventKind.ACK, leaves=10_000))
    assert halt_strategy(session, "strategy error in on_book") == [a, b]
    assert [r[0] for r in venue.requests] == ["submit", "submit", "cancel", "cancel"]
    assert session.ctx.order(session.ctx.submit(BTC.id, "buy", "0.1", "10000.00")).reason == "fail_closed"


def test_dead_man_switch_fires_once_per_outage():
    dm = DeadManSwitch(timeout_s=5)
    s = 1_000_000_000
    dm.touch("market", 0)
    dm.touch("user", 0)
    assert dm.check(5 * s) == []
    dm.touch("market", 5 * s)
    assert dm.check(5 * s + 1) == ["user"]
    assert dm.check(9 * s) == []  # already fired for this outage
    assert dm.check(10 * s + 1) == ["market"]
    dm.touch("user", 11 * s)
    assert dm.check(17 * s) == ["user"] and len(dm.firings) == 3


def test_a_balance_gap_counts_only_when_the_next_check_finds_the_same_amount(tmp_path):
    """A balance read can race fills still on their way: seen once it is pending, the gate
    stays open; the same gap again closes it; a different amount starts over."""
    session, _, _ = _session(tmp_path)
    rec = Reconciler(session, prefix="tp-")
    first = rec.check("periodic", [], _balances(usdt=USDT - 10))
    assert first.ok and [d.key for d in first.pending] == ["binance:USDT"] and not session.gate.closed
    moved = rec.check("periodic", [], _balances(usdt=USDT - 12))  # the gap moved: a race
    assert moved.ok and moved.pending and not session.gate.closed
    gone = rec.check("periodic", [], _balances())
    assert gone.ok and not gone.pending and not session.gate.closed
    rec.check("periodic", [], _balances(usdt=USDT - 7))
    same = rec.check("periodic", [], _balances(usdt=USDT - 7))
    assert [d.text() for d in same.differences] == [
        "balance binance:USDT: ours 100000, venue 99993 (free 99993, locked 0)"] and session.gate.closed


def test_two_same_size_fills_in_flight_at_consecutive_checks_stay_pending(tmp_path):
    """The venue's balances are one fill (0.1 BTC at 10000, rebate 0.05) ahead of the ledger at
    two consecutive checks, the same amounts each time, but a different fill behind them: the
    first was booked in between (the ledger moved) and the second is being looked up, so the
    gap stays pending; once both are booked the balances agree and the gate never closed."""
    from test_engine_session import Liquidity

    session, _, _ = _session(tmp_path)
    rec = Reconciler(session, prefix="tp-")
    cid = session.ctx.submit(BTC.id, "buy", "0.4", "10000.00")
    session.on_order_event(_event(1, OrderEventKind.ACK, leaves=40_000))
    one = _balances(usdt=USDT - 1000 + Decimal("0.05"), btc=Decimal("0.1"))
    two = _balances(usdt=USDT - 2000 + Decimal("0.1"), btc=Decimal("0.2"))
    first = rec.check("periodic", [(BTC, _state(cid, OrderStatus.PARTIALLY_FILLED, qty=40_000, filled=10_000))], one)
    assert first.ok and first.lookups == [cid] and [d.key for d in first.pending] == ["binance:BTC", "binance:USDT"]
    session.on_order_event(_event(1, OrderEventKind.FILL, price=10_000_00, qty=10_000, filled=10_000, leaves=30_000,
                                  liquidity=Liquidity.MAKER))
    assert session.ledger.balance("binance", "USDT") == USDT - 1000 + Decimal("0.05")
    second = rec.check("periodic", [(BTC, _state(cid, OrderStatus.PARTIALLY_FILLED, qty=40_000, filled=20_000))], two)
    assert [d.text() for d in second.pending] == [
        "balance binance:BTC: ours 0.1, venue 0.2 (free 0.2, locked 0)",
        "balance binance:USDT: ours 99000.05, venue 98000.1 (free 98000.1, locked 0)"]
    assert second.ok and not session.gate.closed  # the same amounts as `first`: not a difference
    session.on_order_event(_event(1, OrderEventKind.FILL, price=10_000_00, qty=10_000, filled=20_000, leaves=20_000,
                                  liquidity=Liquidity.MAKER))
    third = rec.check("periodic", [(BTC, _state(cid, OrderStatus.PARTIALLY_FILLED, qty=40_000, filled=20_000))], two)
    assert third.ok and not third.pending and not third.lookups and not session.gate.closed


def test_a_balance_gap_is_not_confirmed_while_an_order_is_in_flight(tmp_path):
    """An order whose reply (and fills) are on the way makes the check unsettled: the same gap
    with the same ledger stays pending until the order is answered, then counts."""
    session, _, _ = _session(tmp_path)
    rec = Reconciler(session, prefix="tp-")
    cid = session.ctx.submit(BTC.id, "buy", "0.5", "10000.00")  # no reply yet
    gap = _balances(usdt=USDT - 7)
    assert rec.check("periodic", [], gap).pending
    again = rec.check("periodic", [], gap)
    assert again.ok and again.pending and not session.gate.closed
    session.on_order_event(_event(1, OrderEventKind.ACK, leaves=50_000))
    settled = rec.check("periodic", [(BTC, _state(cid))], gap)
    assert [d.text() for d in settled.differences] == [
        "balance binance:USDT: ours 100000, venue 99993 (free 99993, locked 0)"] and session.gate.closed


def test_a_balance_gap_counts_after_n_sightings_even_with_an_order_always_in_flight(tmp_path):
    """A quoting strategy always has an order in flight, so no check is ever settled: the
    same gap (7 USDT missing) against the same ledger figure counts at the third
    consecutive sighting (CONFIRM_AFTER), or at `confirm_after`; a check in between with a
    different amount starts the count over."""
    from engine.reconcile import CONFIRM_AFTER

    assert CONFIRM_AFTER == 3
    session, _, _ = _session(tmp_path)
    rec = Reconciler(session, prefix="tp-")
    session.ctx.submit(BTC.id, "buy", "0.5", "10000.00")  # never answered: in flight throughout
    gap = _balances(usdt=USDT - 7)
    assert rec.check("periodic", [], gap).pending
    assert rec.check("periodic", [], _balances(usdt=USDT - 8)).pending  # moved: starts over
    assert rec.check("periodic", [], gap).pending and not session.gate.closed  # 1st of this gap
    assert rec.check("periodic", [], gap).pending and not session.gate.closed  # 2nd
    third = rec.check("periodic", [], gap)
    assert [d.text() for d in third.differences] == [
        "balance binance:USDT: ours 100000, venue 99993 (free 99993, locked 0)"] and session.gate.closed

    (tmp_path / "n4").mkdir()
    session2, _, _ = _session(tmp_path / "n4")
    rec4 = Reconciler(session2, prefix="tp-", confirm_after=4)
    session2.ctx.submit(BTC.id, "buy", "0.5", "10000.00")
    assert [rec4.check("periodic", [], gap).ok for _ in range(3)] == [True, True, True]
    assert not rec4.check("periodic", [], gap).ok and session2.gate.closed


def test_in_flight_gaps_with_the_ledger_moving_between_checks_never_count(tmp_path):
    """Same-size fills in flight at every check, one booked between each two: the venue is one
    fill (0.1 BTC at 10000, rebate 0.05) ahead of the ledger at four consecutive checks, the
    same amounts each time, but the ledger's figure moved between them, so the count starts
    over at each and the gate stays open (the rule of test_two_same_size_fills_...)."""
    from test_engine_session import Liquidity

    session, _, _ = _session(tmp_path)
    rec = Reconciler(session, prefix="tp-", confirm_after=2)
    cid = session.ctx.submit(BTC.id, "buy", "0.4", "10000.00")
    session.on_order_event(_event(1, OrderEventKind.ACK, leaves=40_000))
    session.ctx.submit(BTC.id, "buy", "0.1", "9000.00")  # never answered: in flight throughout
    for n in range(1, 5):  # the venue has n fills, the ledger n - 1
        venue = _balances(usdt=USDT - 1000 * n + Decimal("0.05") * n, btc=Decimal("0.1") * n)
        report = rec.check("periodic", [(BTC, _state(cid, OrderStatus.PARTIALLY_FILLED, qty=40_000,
                                                     filled=10_000 * n))], venue)
        assert report.ok and len(report.pending) == 2 and not session.gate.closed, report.text()
        session.on_order_event(_event(1, OrderEventKind.FILL, price=10_000_00, qty=10_000, filled=10_000 * n,
                                      leaves=40_000 - 10_000 * n, liquidity=Liquidity.MAKER))


def test_confirm_after_is_validated():
    import pytest

    from engine.errors import ConfigError
    from engine.reconcile import check_confirm_after

    assert check_confirm_after(None) is None and check_confirm_after(5) == 5
    for bad in (1, 0, -3, 2.5, True, "3"):
        with pytest.raises(ConfigError, match=r"--reconcile-confirm = .*expected a whole number of consecutive checks >= 2"):
            check_confirm_after(bad, "--reconcile-confirm")


def test_an_unknown_open_contingent_leg_of_an_earlier_session_is_ours(tmp_path):
    """Contingent legs carry the session's prefix (`<prefix>-c<n>.tp`, docs/orders-live.md
    "Client ids"): an open take-profit an earlier session left (`tpmx3eck6e-c1.tp`) is ours
    to the reconciler's prefix check, so after the start it is a difference (the gate
    closes), not a foreign order it overlooks. A bare `ct-1.tp` was foreign to it."""
    session, venue, _ = _session(tmp_path)
    rec = Reconciler(session, prefix="tp")
    rec.check("start", [], _balances())
    tp = _state("tpmx3eck6e-c1.tp", price=10_100_00, qty=10_000)
    later = rec.check("periodic", [(BTC, tp)], _balances())
    assert later.foreign == [] and [d.what for d in later.differences] == ["order"] and session.gate.closed


def test_a_restored_take_profit_amended_by_cancel_replace_is_adopted_with_the_whole_legs_fills(tmp_path):
    """A bracket's take-profit (0.3 BTC after the entry's fills) had filled 0.1 when an amend
    replaced its venue order (Binance cancel-replace: the replacement counts from 0). The
    session dies; while none runs the replacement fills 0.05 more. The saved state keeps
    what the replaced venue order filled (`live_base`), so the resumed session adopts the
    order with the leg's 0.1 booked and the venue's 0.15, looks it up, and books only the
    0.05 it missed, from its trade (price, fee), into the position but not the balances."""
    from decimal import Decimal as D

    from engine.types import Liquidity
    from engine.types.venue_reports import Command, CommandResult, Outcome, VenueFill

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, _, _ = _session(tmp_path / "a")
    ctx = first.ctx
    group = ctx.submit_bracket(BTC.id, "buy", "0.3", "10000.00", stop_loss_price="9000", take_profit_price="11000")
    entry = first.oms.by_client[f"{group}.entry"]
    first.on_order_event(_event(entry.order_no, OrderEventKind.ACK, leaves=30_000))
    first.on_order_event(_event(entry.order_no, OrderEventKind.FILL, price=10_000_00, qty=30_000, filled=30_000))
    tp = first.oms.by_client[f"{group}.tp"]
    assert tp.qty == 30_000
    first.on_command_result(CommandResult(tp.client_id, Command.SUBMIT, Outcome.CONFIRMED, 5, "v1"))
    first.on_venue_fill(VenueFill(tp.client_id, "v1", "t9", 11_000_00, 10_000, D(0), "USDT", Liquidity.MAKER,
                                  6, 6, "stream"))
    tp.replaced["v1"] = 10_000  # an amend replaced v1 by v2 (engine/venue_merge.py `_retire`)
    tp.venue_order_id = "v2"
    saved = first.contingent.state()
    assert saved["live_base"] == {tp.client_id: 10_000} and saved["live_filled"][tp.client_id] == 10_000

    second, _, _ = _session(tmp_path / "b")
    second.contingent.restore(saved)
    rec = Reconciler(second, prefix="tp")
    # at the venue: the replacement v2, 0.2 ordered (what was left when it replaced v1), 0.05 filled
    v2 = VenueOrderState(tp.client_id, "v2", OrderStatus.PARTIALLY_FILLED, 11_000_00, 20_000, 5_000, 0, 0,
                         source="query")
    report = rec.check("start", [(BTC, v2)], _balances(), sides={tp.client_id: -1})
    assert report.adopted == [tp.client_id] and report.lookups == [tp.client_id]
    order = second.oms.by_client[tp.client_id]
    assert (order.qty, order.filled, order.venue_filled, order.status) == (
        30_000, 10_000, 15_000, OrderStatus.PARTIALLY_FILLED)
    leg = second.contingent.legs[tp.client_id]
    assert leg.filled == 10_000
    # the lookup's answer: the order and its trades (the one before the kill was booked: t9)
    balances = dict(second.ledger.balances)
    lots_before = second.ledger.positions[BTC.id].lots
    second.on_venue_state(v2)
    second.on_venue_fill(VenueFill(tp.client_id, "v2", "t10", 11_010_00, 5_000, D("0.55"), "USDT", Liquidity.MAKER,
                                   0, 0, "query"))
    assert leg.filled == 15_000  # 0.1 known + the 0.05 missed, not 0.05 - 0.1
    assert (order.filled, order.owed) == (15_000, 0)
    assert second.ledger.positions[BTC.id].lots == lots_before - 5_000
    assert dict(second.ledger.balances) == balances  # the venue's balances hold it already


def test_a_saved_state_without_trade_ids_books_only_the_fills_beyond_what_it_counts(tmp_path):
    """A contingent.json written before trade ids were saved: the take-profit had filled
    0.1 (one trade the state does not name) and filled the rest, 0.2, while no session ran.
    The resumed session's lookup lists three trades of 0.04, 0.12 and 0.14: the earliest,
    up to the 0.1 counted, are taken as the ones booked (0.04 and 0.06 of the 0.12, audited
    `inferred_booked`), and only 0.2 is booked: the 0.06 left of the straddling trade, its
    fee in proportion, and the 0.14."""
    from decimal import Decimal as D

    from engine.types import Liquidity
    from engine.types.venue_reports import Command, CommandResult, Outcome, VenueFill

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, _, _ = _session(tmp_path / "a")
    group = first.ctx.submit_bracket(BTC.id, "buy", "0.3", "10000.00", stop_loss_price="9000",
                                     take_profit_price="11000")
    entry = first.oms.by_client[f"{group}.entry"]
    first.on_order_event(_event(entry.order_no, OrderEventKind.ACK, leaves=30_000))
    first.on_order_event(_event(entry.order_no, OrderEventKind.FILL, price=10_000_00, qty=30_000, filled=30_000))
    tp = first.oms.by_client[f"{group}.tp"]
    first.on_command_result(CommandResult(tp.client_id, Command.SUBMIT, Outcome.CONFIRMED, 5, "v1"))
    first.on_venue_fill(VenueFill(tp.client_id, "v1", "t9", 11_000_00, 10_000, D("1.1"), "USDT", Liquidity.MAKER,
                                  6, 6, "stream"))
    saved = first.contingent.state()
    assert saved["live_trades"] == {tp.client_id: ["t9"]}
    del saved["live_trades"]  # as written before trade ids were saved

    second, _, _ = _session(tmp_path / "b")
    second.contingent.restore(saved)
    assert second.contingent.inferred == {tp.client_id: 10_000}
    rec = Reconciler(second, prefix="tp")
    report = rec.check("start", [], _balances())
    assert report.lookups == [tp.client_id]  # no longer open at the venue: looked up
    lots = second.ledger.positions[BTC.id].lots
    second.on_venue_state(VenueOrderState(tp.client_id, "v1", OrderStatus.FILLED, 11_000_00, 30_000, 30_000, 9, 9,
                                          source="query"))
    for trade_id, qty, fee in (("t9", 4_000, "0.44"), ("t10", 12_000, "1.32"), ("t11", 14_000, "1.54")):
        second.on_venue_fill(VenueFill(tp.client_id, "v1", trade_id, 11_000_00, qty, D(fee), "USDT", Liquidity.MAKER,
                                       9, 9, "query"))
    order = second.oms.by_client[tp.client_id]
    assert (order.filled, order.status) == (30_000, OrderStatus.FILLED)
    assert second.ledger.positions[BTC.id].lots == lots - 20_000
    assert second.contingent.legs[tp.client_id].filled == 30_000 and not second.contingent.inferred
    second.audit.flush()
    audit = [json.loads(x) for x in (tmp_path / "b" / "audit.jsonl").read_text().splitlines()]
    assert [(r["trade_id"], r["qty"], r["of"]) for r in audit if r["type"] == "inferred_booked"] == [
        ("t9", "0.04", "0.04"), ("t10", "0.06", "0.12")]
    assert [(r["trade_id"], D(r["qty"]), D(r["fee"])) for r in audit if r["type"] == "fill"] == [
        ("t10", D("0.06"), D("0.66")), ("t11", D("0.14"), D("1.54"))]
    # a later resume of this session knows every trade of the order was booked
    assert second.contingent._trades[tp.client_id] == ["t9", "t10", "t10", "t11"]


def test_an_ok_report_is_one_line_and_a_difference_one_line_each():
    """An ok reconciliation printed as a two-line warning ("reconciliation (start): ok" /
    "  adopted ..."); it is one line (the live driver prints it at info level)."""
    from engine.reconcile import Report

    ok = Report("start", adopted=["tp1-1", "tp1-2"], foreign=["binance:BTC/USDT x (venue id 7)"])
    assert ok.text() == ("reconciliation (start): ok; adopted from a previous session (session tp1, started 1970-01-01 00:00:00 UTC): "
                         "tp1-1, tp1-2; "
                         "open at the venue, not ours (left alone): binance:BTC/USDT x (venue id 7)")
    assert Report("periodic").text() == "reconciliation (periodic): ok"
