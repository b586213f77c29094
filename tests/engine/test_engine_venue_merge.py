"""Merging venue reports (engine/venue_merge.py): typed outcomes, idempotent merge per
client id, fills deduplicated by trade id, statuses that never regress, ambiguity resolved
by a lookup (never a resend). Records are played by hand against a scripted venue."""

import json
import random
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.audit import AuditLog
from engine.clock import SimClock
from engine.ledger import Ledger
from engine.risk import RiskConfig, RiskEngine
from engine.session import TradingSession
from engine.strategy import Strategy
from engine.types import Liquidity, OrderStatus, load_instruments
from engine.types.venue_reports import Command, CommandResult, Outcome, VenueFill, VenueOrderState

BTC = load_instruments()["binance:BTC/USDT"]
PX = 10_000_00  # 10000.00 in ticks


class QueryVenue:
    """A venue that records commands and lookups; the test plays its answers."""

    name = "binance"
    maker_fee_bps = Decimal("-0.5")
    taker_fee_bps = Decimal("7")

    def __init__(self):
        self.requests = []

    def submit(self, order, ts):
        self.requests.append(("submit", order.client_id))

    def cancel(self, order, ts):
        self.requests.append(("cancel", order.client_id))

    def amend(self, order, price, qty, ts):
        self.requests.append(("amend", order.client_id, price, qty))

    def request_order_state(self, order, ts):
        self.requests.append(("lookup", order.client_id))

    def top_of_book(self, i):
        return (PX, 100, PX + 100, 100)

    def levels(self, i, side, n):
        return np.array([PX]), np.array([100])


class Updates(Strategy):
    def __init__(self):
        self.updates = []

    def on_order(self, ctx, update):
        self.updates.append(update)


def _session(tmp_path, name="audit.jsonl"):
    venue, strategy = QueryVenue(), Updates()
    session = TradingSession(
        strategy=strategy, instruments={BTC.id: BTC}, venues={"binance": venue}, clock=SimClock(1_000),
        ledger=Ledger({BTC.id: BTC}, {"binance": {"USDT": Decimal("100000")}}),
        risk=RiskEngine(RiskConfig.from_table(None)), audit=AuditLog(tmp_path / name))
    session.start()
    return session, venue, strategy


def _state(cid, status, filled=0, *, qty=50_000, ts=10, source="stream", found=True, reason=None):
    return VenueOrderState(cid, "v1", status, PX, qty, filled, ts, ts, reason, source, found)


def _fill(cid, trade_id, qty, *, price=PX, fee="0.7", asset="USDT", source="stream", ts=10):
    return VenueFill(cid, "v1", trade_id, price, qty, Decimal(fee), asset, Liquidity.TAKER, ts, ts, source)


def _audit(tmp_path, name="audit.jsonl"):
    return [json.loads(line) for line in (tmp_path / name).read_text().splitlines()]


def test_a_fill_after_the_cancel_is_booked_not_a_crash(tmp_path):
    session, _, strategy = _session(tmp_path)
    cid = session.ctx.submit(BTC.id, "buy", "0.5", "10000")
    session.on_command_result(CommandResult(cid, Command.SUBMIT, Outcome.CONFIRMED, 2_000, "v1"))
    # the cancel reply (filled 0.2) overtakes the executionReport of that fill
    session.on_venue_state(_state(cid, OrderStatus.CANCELLED, 20_000, source="rest", reason="user_cancel"))
    order = session.oms.by_client[cid]
    assert order.status == OrderStatus.CANCELLED and order.filled == 0 and order.owed == 20_000
    session.on_venue_fill(_fill(cid, "t1", 20_000, fee="1.4"))
    assert order.status == OrderStatus.CANCELLED and order.filled == 20_000 and order.owed == 0
    assert session.ledger.position(BTC.id) == Decimal("0.2")
    # 100000 - 0.2 x 10000 - 1.4 fee
    assert session.ledger.balance("binance", "USDT") == Decimal("97998.6")
    events = [(u.event, u.status) for u in strategy.updates]
    assert events == [("acknowledged", "acknowledged"), ("cancelled", "cancelled"), ("fill", "cancelled")]
    assert strategy.updates[-1].filled_qty == Decimal("0.2")


def test_late_ack_and_duplicates_change_nothing_and_are_audited(tmp_path):
    session, _, strategy = _session(tmp_path)
    cid = session.ctx.submit(BTC.id, "buy", "0.5", "10000")
    session.on_venue_fill(_fill(cid, "t1", 50_000))  # the fill before any ack
    session.on_venue_fill(_fill(cid, "t1", 50_000, source="query"))  # the same trade again
    session.on_venue_state(_state(cid, OrderStatus.ACKNOWLEDGED, 0, ts=5))  # a late ack
    session.on_command_result(CommandResult(cid, Command.SUBMIT, Outcome.CONFIRMED, 3_000, "v1"))
    order = session.oms.by_client[cid]
    assert order.status == OrderStatus.FILLED and order.filled == 50_000 and session.fill_count == 1
    assert session.ledger.position(BTC.id) == Decimal("0.5")
    assert [u.event for u in strategy.updates] == ["fill"]
    kinds = [r["type"] for r in _audit_after(session, tmp_path)]
    assert kinds.count("duplicate_fill") == 1 and kinds.count("stale") == 1


def _audit_after(session, tmp_path):
    session.audit._file.flush()
    return _audit(tmp_path)


def test_a_rejected_submit_keeps_the_venue_evidence(tmp_path):
    session, _, strategy = _session(tmp_path)
    cid = session.ctx.submit(BTC.id, "buy", "0.5", "10000")
    evidence = {"code": -2010, "msg": "Account has insufficient balance for requested action.", "http": 400}
    session.on_command_result(CommandResult(cid, Command.SUBMIT, Outcome.REJECTED, 2_000, None,
                                            "insufficient_balance", evidence))
    order = session.oms.by_client[cid]
    assert order.status == OrderStatus.REJECTED and order.reason == "insufficient_balance"
    assert order.evidence == evidence
    assert strategy.updates[-1].event == "rejected" and strategy.updates[-1].reason == "insufficient_balance"
    logged = [r for r in _audit_after(session, tmp_path) if r["type"] == "response"]
    assert logged[-1]["evidence"]["code"] == -2010


def test_an_ambiguous_submit_is_looked_up_never_resent(tmp_path):
    session, venue, strategy = _session(tmp_path)
    cid = session.ctx.submit(BTC.id, "buy", "0.5", "10000")
    session.on_command_result(CommandResult(cid, Command.SUBMIT, Outcome.AMBIGUOUS, 2_000,
                                            evidence={"error": "timeout"}))
    assert venue.requests == [("submit", cid), ("lookup", cid)]
    assert strategy.updates == []  # nothing is known yet
    session.on_venue_state(_state(cid, OrderStatus.REJECTED, source="query", found=False))
    order = session.oms.by_client[cid]
    assert order.status == OrderStatus.REJECTED and order.reason == "not_received"
    assert strategy.updates[-1].event == "rejected" and strategy.updates[-1].reason == "not_received"
    assert [r[0] for r in venue.requests].count("submit") == 1


def test_an_ambiguous_submit_found_at_the_venue_is_adopted_with_its_fills(tmp_path):
    session, venue, strategy = _session(tmp_path)
    cid = session.ctx.submit(BTC.id, "buy", "0.5", "10000")
    session.on_command_result(CommandResult(cid, Command.SUBMIT, Outcome.AMBIGUOUS, 2_000))
    session.on_venue_fill(_fill(cid, "t9", 10_000, source="query"))
    session.on_venue_state(_state(cid, OrderStatus.PARTIALLY_FILLED, 10_000, source="query"))
    order = session.oms.by_client[cid]
    assert order.status == OrderStatus.PARTIALLY_FILLED and order.filled == 10_000
    assert not order.ambiguous and not order.lookup_pending and order.venue_order_id == "v1"
    assert [u.event for u in strategy.updates] == ["fill"]


def test_an_ambiguous_cancel_the_venue_did_not_apply_is_refused_not_received(tmp_path):
    session, venue, strategy = _session(tmp_path)
    cid = session.ctx.submit(BTC.id, "buy", "0.5", "10000")
    session.on_venue_state(_state(cid, OrderStatus.ACKNOWLEDGED))
    session.ctx.cancel(cid)
    session.on_command_result(CommandResult(cid, Command.CANCEL, Outcome.AMBIGUOUS, 3_000))
    assert venue.requests[-1] == ("lookup", cid)
    session.on_venue_state(_state(cid, OrderStatus.ACKNOWLEDGED, source="query", ts=20))
    assert strategy.updates[-1].event == "cancel_rejected" and strategy.updates[-1].reason == "not_received"
    assert session.oms.by_client[cid].is_open and not session._in_flight.get(1)


def test_an_amend_is_confirmed_by_a_state_showing_it(tmp_path):
    session, _, strategy = _session(tmp_path)
    cid = session.ctx.submit(BTC.id, "buy", "0.5", "10000")
    session.on_venue_state(_state(cid, OrderStatus.ACKNOWLEDGED))
    session.ctx.amend(cid, price="9999", qty="0.4")
    old = VenueOrderState(cid, "v1", OrderStatus.ACKNOWLEDGED, PX, 50_000, 0, 11, 11, None, "stream")
    session.on_venue_state(old)  # a stale report of the old price changes nothing
    new = VenueOrderState(cid, "v1", OrderStatus.ACKNOWLEDGED, 9_999_00, 40_000, 0, 12, 12, None, "stream")
    session.on_venue_state(new)
    session.on_command_result(CommandResult(cid, Command.AMEND, Outcome.CONFIRMED, 4_000))  # the reply, late
    order = session.oms.by_client[cid]
    assert (order.price, order.qty) == (9_999_00, 40_000)
    assert [u.event for u in strategy.updates] == ["acknowledged", "amended"]


def test_states_counting_unseen_fills_trigger_one_lookup(tmp_path):
    session, venue, _ = _session(tmp_path)
    cid = session.ctx.submit(BTC.id, "buy", "0.5", "10000")
    session.on_venue_state(_state(cid, OrderStatus.PARTIALLY_FILLED, 10_000))
    session.on_venue_state(_state(cid, OrderStatus.PARTIALLY_FILLED, 20_000, ts=11))
    assert [r for r in venue.requests if r[0] == "lookup"] == [("lookup", cid)]  # one at a time
    assert session.oms.by_client[cid].owed == 20_000


def test_balances_are_kept_and_differences_audited(tmp_path):
    session, _, _ = _session(tmp_path)
    session.on_balances("binance", {"USDT": (Decimal("99990"), Decimal("10")), "BTC": (Decimal("0.1"), Decimal(0))})
    assert session.venue_balances["binance"]["USDT"] == (Decimal("99990"), Decimal("10"))
    record = [r for r in _audit_after(session, tmp_path) if r["type"] == "balances"][-1]
    assert record["differences"] == {"BTC": ["0", "0.1"]}  # USDT agrees: 99990 + 10


def test_records_about_orders_not_ours_are_audited_not_fatal(tmp_path):
    session, _, _ = _session(tmp_path)
    session.on_venue_fill(_fill("someone-else", "t1", 10_000))
    session.on_venue_state(_state("someone-else", OrderStatus.ACKNOWLEDGED))
    assert session.fill_count == 0
    assert [r["type"] for r in _audit_after(session, tmp_path)].count("unknown_order") == 2


# -- the property: any order and duplication of an order's records, one outcome ---------------
def _life(data):
    """The records describing one order's life at a venue (stream, REST and query copies)."""
    qty = 100_000
    n_fills = data.draw(st.integers(0, 4), label="fills")
    sizes = [data.draw(st.integers(1, 20_000), label="size") for _ in range(n_fills)]
    ending = data.draw(st.sampled_from(["open", "cancelled", "filled", "expired"]), label="ending")
    if ending == "filled":
        sizes.append(qty - sum(sizes))
    prices = [PX - data.draw(st.integers(0, 50), label="price") for _ in sizes]
    records = [("cmd", Outcome.CONFIRMED), ("state", OrderStatus.ACKNOWLEDGED, 0, 1)]
    cum = 0
    for k, (size, price) in enumerate(zip(sizes, prices, strict=True)):
        cum += size
        records.append(("fill", f"t{k}", size, price, 2 + k))
        status = OrderStatus.FILLED if cum >= qty else OrderStatus.PARTIALLY_FILLED
        records.append(("state", status, cum, 2 + k))
    if ending in ("cancelled", "expired"):
        records.append(("state", OrderStatus.CANCELLED if ending == "cancelled" else OrderStatus.EXPIRED,
                        cum, 100))
    return qty, records


def _play(tmp_path, name, qty, records):
    session, _, _ = _session(tmp_path, name)
    cid = session.ctx.submit(BTC.id, "buy", BTC.lots_to_qty(qty), "10000")
    for rec in records:
        if rec[0] == "cmd":
            session.on_command_result(CommandResult(cid, Command.SUBMIT, rec[1], 2_000, "v1"))
        elif rec[0] == "state":
            _, status, filled, ts = rec
            session.on_venue_state(_state(cid, status, filled, qty=qty, ts=ts))
        else:
            _, trade_id, size, price, ts = rec
            session.on_venue_fill(_fill(cid, trade_id, size, price=price, fee="0.01", ts=ts))
    order = session.oms.by_client[cid]
    ledger = session.ledger
    return ((order.status, order.filled, order.notional_filled, order.fees, order.reason),
            dict(ledger.balances), ledger.position(BTC.id), ledger.realized_pnl(), session.fill_count)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_permutation_and_duplication_gives_one_outcome(tmp_path_factory, data):
    qty, records = _life(data)
    tmp = tmp_path_factory.mktemp("merge")
    expected = _play(tmp, "in_order.jsonl", qty, records)
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    rng = random.Random(seed)
    shuffled = records + [rng.choice(records) for _ in range(rng.randint(0, len(records)))]
    rng.shuffle(shuffled)
    got = _play(tmp, "shuffled.jsonl", qty, shuffled)
    assert got == expected
    n_fills = sum(1 for r in records if r[0] == "fill")
    assert got[-1] == n_fills  # each fill booked exactly once


class _Rows:
    """A recorder that keeps the fills it is handed (the run directory's fills rows)."""

    def __init__(self):
        self.fills = []

    def fill(self, order, ts, exch_ts, price, qty, fee, liquidity, fee_charged=None, fee_charged_asset=None,
             trade_id=None):
        self.fills.append((order.client_id, ts, exch_ts, price, qty, fee, liquidity, fee_charged,
                           fee_charged_asset, trade_id))

    def equity(self, *args):
        pass


def test_a_fill_is_built_once_and_every_listener_gets_the_same_values(tmp_path):
    """A fill of 0.3 BTC at 10000.00, fee 0.0003 BTC (Binance spot: a buy pays in the base it
    receives) = 3.0 USDT at the fill price, by hand: the OMS, the ledger, the parent order,
    the audit `fill` record, the recorder's row and the strategy's update all carry it."""
    session, _, strategy = _session(tmp_path)
    session.recorder = rows = _Rows()
    parent = session.open_parent(BTC.id, 1, Decimal("1"), "p1")
    cid = session.ctx.submit(BTC.id, "buy", "0.5", "10000", parent_id=parent)
    session.on_venue_fill(VenueFill(cid, "v9", "t7", PX, 30_000, Decimal("0.0003"), "BTC", Liquidity.MAKER,
                                    55, 60, "stream"))
    order = session.oms.by_client[cid]
    # OMS: lots, notional 0.3 x 10000, fee in quote 0.0003 x 10000; the venue's order id adopted
    assert (order.filled, order.notional_filled, order.fees) == (30_000, Decimal("3000.0000"), Decimal("3.00000000"))
    assert order.status == OrderStatus.PARTIALLY_FILLED and order.venue_order_id == "v9"
    # ledger: the fee leaves the base asset it was charged in; the position counts it in quote
    assert session.ledger.balance("binance", "BTC") == Decimal("0.2997")
    assert session.ledger.balance("binance", "USDT") == Decimal("97000")
    assert session.ledger.positions[BTC.id].fees == Decimal("3.00000000")
    # the parent
    p = session.oms.parents["p1"]
    assert (p.filled, p.fees) == (Decimal("0.30000"), Decimal("3.00000000"))
    # the audit record and the recorder's row
    (record,) = [r for r in _audit_after(session, tmp_path) if r["type"] == "fill"]
    assert {k: record[k] for k in ("client_id", "exch_ts", "price", "qty", "fee", "fee_asset", "liquidity",
                                   "trade_id")} == {"client_id": cid, "exch_ts": 55, "price": "10000.00",
                                                    "qty": "0.30000", "fee": "0.0003", "fee_asset": "BTC",
                                                    "liquidity": "maker", "trade_id": "t7"}
    assert rows.fills == [(cid, 1_000, 55, Decimal("10000.00"), Decimal("0.30000"), Decimal("3.00000000"), "maker",
                           Decimal("0.0003"), "BTC", "t7")]
    # the strategy's update
    update = strategy.updates[-1]
    assert (update.event, update.last_fill_price, update.last_fill_qty, update.fee, update.fee_charged,
            update.fee_asset, update.liquidity) == ("fill", Decimal("10000.00"), Decimal("0.30000"),
                                                    Decimal("3.00000000"), Decimal("0.0003"), "BTC", "maker")
    # booked once: the same trade again is audited and dropped
    session.on_venue_fill(VenueFill(cid, "v9", "t7", PX, 30_000, Decimal("0.0003"), "BTC", Liquidity.MAKER,
                                    56, 61, "query"))
    assert order.filled == 30_000 and len(rows.fills) == 1 and session.fill_count == 1


# -- the paths that used to book fills by hand: the compiled path's bulk pass (engine/bulk.py)
# and the session's liquidations (engine/session.py on_liquidation) build the same BookedFill
# and hand it to the same listeners ----------------------------------------------------------
def _sim_fill_row(order_no, exch_ts):
    """A simulated venue's FILL row: 0.3 BTC at 10000.00, taker, 0.2 BTC left."""
    from engine.types import OrderEventKind
    from engine.types.orders import ORDER_EVENT_DTYPE

    row = np.zeros(1, ORDER_EVENT_DTYPE)[0]
    for name, value in (("exch_ts", exch_ts), ("local_ts", exch_ts), ("order_no", order_no),
                        ("kind", int(OrderEventKind.FILL)), ("liquidity", int(Liquidity.TAKER)), ("price", PX),
                        ("qty", 30_000), ("filled", 30_000), ("leaves", 20_000), ("order_price", PX)):
        row[name] = value
    return row


@pytest.mark.parametrize("path", ["compiled", "per_event"])
def test_a_compiled_path_fill_reaches_every_listener_as_the_per_event_one(tmp_path, path):
    """The compiled path's bulk pass (engine/bulk.py `BulkBooks`) books a simulated FILL row
    through the same BookedFill listeners as the per-event merge. By hand: 0.3 BTC at
    10000.00 = 3000 USDT, taker fee 7 bps of it = 2.1 USDT; the trade id is the order number
    and its cumulative lots; the venue order id the order number (the fee text keeps the
    exponent of 3000.0000 x 0.0007, as both paths write it)."""
    from engine.bulk import RESP, BulkBooks, BulkLog

    session, _, _ = _session(tmp_path)
    session.recorder = rows = _Rows()
    cid = session.ctx.submit(BTC.id, "buy", "0.5", "10000")
    order = session.oms.by_client[cid]
    row = _sim_fill_row(order.order_no, 55)
    if path == "per_event":
        session.on_order_event(row)
    else:
        names = dict(zip(("exch_ts", "r_order_no", "r_kind", "liq", "reason", "r_price", "r_qty", "filled",
                          "leaves", "order_price"),
                         ("exch_ts", "order_no", "kind", "liquidity", "reason", "price", "qty", "filled", "leaves",
                          "order_price"), strict=True))
        columns = {name: [0] for name in BulkLog.COLUMNS}
        columns.update({name: [int(row[field])] for name, field in names.items()})
        columns.update(kind=[RESP], ts=[1_000], status=[int(OrderStatus.PARTIALLY_FILLED)])
        books = BulkBooks(session, [], None)
        books.book(BulkLog(columns, [[]], 1), lambda k: pytest.fail(f"row {k} not booked in bulk"))
        assert books.booked == 1
    trade_id = f"{order.order_no}.30000"
    # OMS
    assert (order.filled, order.notional_filled, order.fees) == (30_000, Decimal("3000"), Decimal("2.1"))
    assert order.status == OrderStatus.PARTIALLY_FILLED and order.venue_order_id == str(order.order_no)
    assert session.oms.trades == {(BTC.id, trade_id)} and session.fill_count == 1
    # ledger
    assert session.ledger.balance("binance", "BTC") == Decimal("0.3")
    assert session.ledger.balance("binance", "USDT") == Decimal("96997.9")
    assert session.ledger.positions[BTC.id].fees == Decimal("2.1")
    # audit record
    (record,) = [r for r in _audit_after(session, tmp_path) if r["type"] == "fill"]
    assert {k: v for k, v in record.items() if k not in ("seq", "ts", "prev", "hash")} == {
        "type": "fill", "client_id": cid, "exch_ts": 55, "price": "10000.00", "qty": "0.30000", "fee": "2.1000000",
        "fee_asset": "USDT", "liquidity": "taker", "trade_id": trade_id}
    # recorder
    assert rows.fills == [(cid, 1_000, 55, Decimal("10000.00"), Decimal("0.30000"), Decimal("2.1"), "taker",
                           Decimal("2.1"), "USDT", trade_id)]


def test_a_liquidation_fill_reaches_every_listener(tmp_path):
    """`on_liquidation` books the venue's close through the same BookedFill listeners. By
    hand: a 1 BTC long opened at 50000 with 10,000 USDT isolated at 10x is closed at its
    bankruptcy price 45000 (tests/engine/test_engine_margin.py), with a live venue's stated
    fee of 1.5 USDT (the settle asset, so 1.5 in quote): the OMS order `liquidation-1` is
    FILLED (reason liquidation) with 45000 notional and 1.5 fees; the wallet keeps 10000 -
    5000 (the lost margin) - 1.5 = 4998.5; the audit `fill` record has no trade id or fee
    asset (an engine fill); the fills row has no trade id."""
    from engine.margin import Liquidation, MarginSettings

    usdm = load_instruments()["binanceusdm:BTC/USDT:USDT"]
    venue, strategy = QueryVenue(), Updates()
    venue.name = "binanceusdm"
    ledger = Ledger({usdm.id: usdm}, {"binanceusdm": {"USDT": Decimal("10000")}})
    ledger.derivatives.settings = {"binanceusdm": MarginSettings.from_table(
        "binanceusdm", {"margin_mode": "isolated", "leverage": 10})}
    session = TradingSession(
        strategy=strategy, instruments={usdm.id: usdm}, venues={"binanceusdm": venue}, clock=SimClock(1_000),
        ledger=ledger, risk=RiskEngine(RiskConfig.from_table(None)), audit=AuditLog(tmp_path / "audit.jsonl"))
    session.start()
    session.recorder = rows = _Rows()
    ledger.apply_fill(usdm, 1, usdm.price_to_ticks(Decimal("50000")), usdm.qty_to_lots(Decimal("1")), Decimal(0))
    cid = session.on_liquidation(Liquidation(usdm, -1, 1000, usdm.price_to_ticks(Decimal("45000")),
                                             Decimal("45180"), Decimal("1.004")), 77, Decimal("1.5"))
    assert cid == "liquidation-1"
    order = session.oms.by_client[cid]
    # OMS
    assert (order.filled, order.notional_filled, order.fees) == (1000, Decimal("45000"), Decimal("1.5"))
    assert (order.status, order.reason, order.venue_order_id) == (OrderStatus.FILLED, "liquidation", None)
    assert session.fill_count == 1 and session.oms.trades == set()
    # ledger
    assert ledger.balance("binanceusdm", "USDT") == Decimal("4998.5") and ledger.position(usdm.id) == 0
    # audit record
    (record,) = [r for r in _audit_after(session, tmp_path) if r["type"] == "fill"]
    assert {k: v for k, v in record.items() if k not in ("seq", "ts", "prev", "hash")} == {
        "type": "fill", "client_id": cid, "exch_ts": 77, "price": "45000.0", "qty": "1.000", "fee": "1.5",
        "liquidity": "taker"}
    # recorder
    assert rows.fills == [(cid, 1_000, 77, Decimal("45000.0"), Decimal("1.000"), Decimal("1.5"), "taker",
                           Decimal("1.5"), "USDT", None)]
    # the strategy's update
    update = strategy.updates[-1]
    assert (update.event, update.last_fill_price, update.last_fill_qty, update.fee, update.fee_charged,
            update.fee_asset, update.reason) == ("fill", Decimal("45000.0"), Decimal("1.000"), Decimal("1.5"),
                                                 Decimal("1.5"), "USDT", "liquidation")


def test_a_simulated_fills_fee_is_remembered_only_under_the_same_rates(tmp_path):
    """`_sim_fill` remembers a fill's fee per (ticks, lots, liquidity, side) under the venue's
    rates and fee-asset rule (bench/PROFILE.md 1i). By hand: 0.3 BTC at 10000.00 taker =
    3000 USDT; 7 bps = 2.1 USDT; after the venue's taker rate becomes 5 bps, 1.5 USDT; under
    the "received" rule a buy pays 0.3 x 5 bps = 0.00015 BTC (1.5 USDT at the fill price)."""
    session, venue, _ = _session(tmp_path)
    session.ledger.balances[("binance", "BTC")] = Decimal("1")
    seen = []
    for taker, rule in ((None, None), (Decimal("5"), None), (None, "received")):
        if taker is not None:
            venue.taker_fee_bps = taker
        if rule is not None:
            venue.fee_asset = rule
        for _ in range(2):
            cid = session.ctx.submit(BTC.id, "buy", "0.5", "10000")
            order = session.oms.by_client[cid]
            session.on_order_event(_sim_fill_row(order.order_no, 55))
            seen.append(order.fees)
    assert seen == [Decimal("2.1")] * 2 + [Decimal("1.5")] * 4
    fills = [r for r in _audit_after(session, tmp_path) if r["type"] == "fill"]
    assert [(r["fee"], r["fee_asset"]) for r in fills] == [("2.1000000", "USDT")] * 2 + [("1.5000000", "USDT")] * 2 \
        + [("0.00015", "BTC")] * 2
    assert session.ledger.balance("binance", "BTC") == Decimal("1") + 6 * Decimal("0.3") - 2 * Decimal("0.00015")


# -- amends by cancel-replace ------------------------------------------------------------
# Amends by cancel-replace (Binance spot): the venue cancels the order's venue order and
# places a new one under the same client id. The REST reply (the amend's result and the new
# order) and the user stream (the old order's fills and CANCELED, the new order's NEW and
# fills) come in any interleaving; the OMS keeps one open client order
# (engine/venue_merge.py `_retire`, `_replaced_report`, `_amend_outcome`): never cancelled by
# the old id's CANCELED, its size the chain's fills plus the replacement's, each fill of
# either venue order booked once by trade id.


def _cr_st(cid, vid, status, qty, filled, source="stream", price=PX):
    return VenueOrderState(cid, vid, status, price, qty, filled, 10, 10, None, source)


def _cr_fill(cid, vid, trade_id, qty, source="stream"):
    return VenueFill(cid, vid, trade_id, PX, qty, Decimal("0.1"), "USDT", Liquidity.MAKER, 10, 10, source)


def _cr_play(session, records):
    for rec in records:
        if isinstance(rec, CommandResult):
            session.on_command_result(rec)
        elif isinstance(rec, VenueFill):
            session.on_venue_fill(rec)
        else:
            session.on_venue_state(rec)


def _cr_records(cid, *, race_lots, new_qty, new_fill):
    """The venue's records of one amend of `cid` (v1, 50,000 lots resting, none filled as far
    as the session knows) to `new_qty` lots: the old order fills `race_lots` while the amend
    is on its way (0: no race), the replacement v2 is sized `new_qty` (the quantity asked
    minus the 0 lots known filled when it left) and fills `new_fill`."""
    S = OrderStatus
    stream = []
    if race_lots:
        stream.append([_cr_fill(cid, "v1", "t1", race_lots), _cr_st(cid, "v1", S.PARTIALLY_FILLED, 50_000, race_lots)])
    stream.append([_cr_st(cid, "v1", S.CANCELLED, 50_000, race_lots)])
    stream.append([_cr_st(cid, "v2", S.ACKNOWLEDGED, new_qty, 0)])
    if new_fill:
        stream.append([_cr_fill(cid, "v2", "t2", new_fill), _cr_st(cid, "v2", S.PARTIALLY_FILLED, new_qty, new_fill)])
    rest = [CommandResult(cid, Command.AMEND, Outcome.CONFIRMED, 10, "v2"),
            _cr_st(cid, "v2", S.ACKNOWLEDGED, new_qty, 0, source="rest")]
    return stream, rest


def _cr_orders(stream, rest):
    """Every interleaving of the REST reply with the stream's messages (each message's records
    stay together, the stream keeps its order), and the stream's CANCELED after its NEW (a
    reordered stream)."""
    out = []
    cancel = next(i for i, part in enumerate(stream) if getattr(part[-1], "status", None) == OrderStatus.CANCELLED)
    swapped = stream[:cancel] + [stream[cancel + 1], stream[cancel]] + stream[cancel + 2:]
    for messages in (stream, swapped):
        for k in range(len(messages) + 1):
            out.append([r for part in messages[:k] for r in part] + rest + [r for part in messages[k:] for r in part])
    return out


@pytest.mark.parametrize(("amend_to", "race_lots", "new_fill"), [
    (80_000, 0, 0), (80_000, 0, 30_000), (30_000, 0, 10_000), (80_000, 10_000, 30_000), (30_000, 10_000, 0),
], ids=["up", "up-fill", "down-fill", "up-race", "down-race"])
def test_every_interleaving_of_a_cancel_replace_keeps_the_order_open_with_the_chains_size(
        tmp_path, amend_to, race_lots, new_fill):
    finals = set()
    stream, rest = _cr_records("x", race_lots=race_lots, new_qty=amend_to, new_fill=new_fill)
    for n, play in enumerate(_cr_orders(stream, rest)):
        session, venue, strategy = _session(tmp_path, f"a{n}.jsonl")
        cid = session.ctx.submit(BTC.id, "buy", "0.5", "10000")
        session.on_command_result(CommandResult(cid, Command.SUBMIT, Outcome.CONFIRMED, 2, "v1"))
        session.on_venue_state(_cr_st(cid, "v1", OrderStatus.ACKNOWLEDGED, 50_000, 0, source="rest"))
        assert session.ctx.amend(cid, qty=BTC.lots_to_qty(amend_to))
        _cr_play(session, [_with_cid(r, cid) for r in play])
        order = session.oms.by_client[cid]
        events = [u.event for u in strategy.updates]
        assert "cancelled" not in events and events.count("amended") == 1, (n, events)
        assert order.is_open and order.filled == race_lots + new_fill, n
        # the replacement was sized on the 0 lots known filled: a racing fill adds to it
        assert order.qty == amend_to + race_lots, (n, order.qty)
        assert session.fill_count == (race_lots > 0) + (new_fill > 0)
        assert session.ledger.position(BTC.id) == BTC.lots_to_qty(race_lots + new_fill)
        assert order.status == (OrderStatus.PARTIALLY_FILLED if order.filled else OrderStatus.ACKNOWLEDGED)
        kinds = [r["type"] for r in _audit(tmp_path, f"a{n}.jsonl")]
        assert "stale" not in kinds and "conflict" not in kinds, (n, kinds)
        # the shutdown's cancel of the replacement closes it (its CANCELED, from the stream)
        session.ctx.cancel(cid)
        session.on_venue_state(_cr_st(cid, "v2", OrderStatus.CANCELLED, amend_to, new_fill))
        assert order.status == OrderStatus.CANCELLED and [u.event for u in strategy.updates][-1] == "cancelled"
        finals.add((order.qty, order.filled, order.price))
    assert len(finals) == 1


def _with_cid(rec, cid):
    from dataclasses import replace

    return replace(rec, client_id=cid)


def test_a_refused_amend_releases_the_held_cancel_as_the_orders_end(tmp_path):
    """The venue cancelled the order (expiry, STP, the operator) while our amend was on its way;
    the stream's CANCELED is held until the amend's answer: refused (-2022, the cancel part
    -2011), the order ends cancelled, reported once."""
    session, venue, strategy = _session(tmp_path)
    cid = session.ctx.submit(BTC.id, "buy", "0.5", "10000")
    session.on_command_result(CommandResult(cid, Command.SUBMIT, Outcome.CONFIRMED, 2, "v1"))
    assert session.ctx.amend(cid, qty="0.8")
    session.on_venue_state(_cr_st(cid, "v1", OrderStatus.CANCELLED, 50_000, 0))
    order = session.oms.by_client[cid]
    assert order.is_open and order.held_end is not None
    session.on_command_result(CommandResult(cid, Command.AMEND, Outcome.REJECTED, 10, None, "unknown_order"))
    assert order.status == OrderStatus.CANCELLED and order.held_end is None
    assert [u.event for u in strategy.updates].count("cancelled") == 1


def test_an_ambiguous_amend_is_resolved_by_the_lookup_showing_the_replacement(tmp_path):
    """The amend's reply was lost after the stream said the old id CANCELED: the lookup by
    client id answers the replacement (Binance answers the open order first): amended."""
    session, venue, strategy = _session(tmp_path)
    cid = session.ctx.submit(BTC.id, "buy", "0.5", "10000")
    session.on_command_result(CommandResult(cid, Command.SUBMIT, Outcome.CONFIRMED, 2, "v1"))
    assert session.ctx.amend(cid, qty="0.8")
    session.on_venue_state(_cr_st(cid, "v1", OrderStatus.CANCELLED, 50_000, 0))
    session.on_command_result(CommandResult(cid, Command.AMEND, Outcome.AMBIGUOUS, 10, None))
    assert ("lookup", cid) in venue.requests
    session.on_venue_state(_cr_st(cid, "v2", OrderStatus.ACKNOWLEDGED, 80_000, 0, source="query"))
    order = session.oms.by_client[cid]
    assert order.is_open and order.qty == 80_000 and order.venue_order_id == "v2" and order.replaced == {"v1": 0}
    assert [u.event for u in strategy.updates][-1] == "amended"
    # had the lookup shown the old order cancelled (the replacement never placed), it ends
    session2, _, strategy2 = _session(tmp_path, "b.jsonl")
    cid2 = session2.ctx.submit(BTC.id, "buy", "0.5", "10000")
    session2.on_command_result(CommandResult(cid2, Command.SUBMIT, Outcome.CONFIRMED, 2, "v1"))
    session2.ctx.amend(cid2, qty="0.8")
    session2.on_venue_state(_cr_st(cid2, "v1", OrderStatus.CANCELLED, 50_000, 0))
    session2.on_command_result(CommandResult(cid2, Command.AMEND, Outcome.AMBIGUOUS, 10, None))
    session2.on_venue_state(_cr_st(cid2, "v1", OrderStatus.CANCELLED, 50_000, 0, source="query"))
    assert session2.oms.by_client[cid2].status == OrderStatus.CANCELLED
