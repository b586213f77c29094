"""Reconciliation: the OMS and ledger against what the venue says, and the safety gates
around it (fail closed, warm-restart adoption, dead-man switch, strategy-error halt).

Why (live-lessons note): sessions that trusted their own bookkeeping after a fault lost
fills, invented fills on a restart, or doubled a position. So the engine compares, at
start, after every reconnect and every N seconds:

- open orders: every order the OMS holds open (and not in flight) must be open at the
  venue with the same price, quantity and filled quantity; every open order at the venue
  whose client id carries our prefix must be open in the OMS;
- fills: an order's filled quantity at the venue equals the OMS's (the fills themselves
  are merged by trade id elsewhere; a gap here means a fill was lost);
- balances (free + locked) of every asset the run trades equal the ledger's. On spot a
  position *is* the base balance, so this covers positions too.

An order the OMS holds open but the venue does not list is not yet a mismatch: it may have
filled a moment ago. It is returned in `lookups` (the caller asks the venue by client id and
merges the answer) and only a difference that survives the lookup counts. A balance (or
contract position) difference is compared at a consistent point only: the venue's balances
may include fills the session has not booked yet (their reports are on the way) and the
ledger may hold fills the venue's read predates. So a gap counts only when two consecutive
checks see the same amount missing with the ledger's own figure unchanged between them
(nothing was booked meanwhile), and the second check is settled: no lookup outstanding, no
order in flight (its reply, and its fills, on the way) and no order owing fills the venue
reported. Otherwise it stays pending and the caller checks again. Why not "the same amount
twice" alone: two same-size fills in flight at consecutive checks show the same amount with
a different fill behind it each time (the first booked in between), which closed the gate
on fills that were merely late. But a session that always has an order in flight (a
market maker re-quoting on every tick) is never settled, so a real gap (a lost fill, a
withdrawal) stayed pending forever: a gap also counts once `confirm_after` consecutive
checks (CONFIRM_AFTER by default) saw the same amount missing with the ledger's figure
unchanged, in flight or not. Same amount and same ledger figure means the same venue
figure too: neither side booked anything across those checks, which a fill merely late
cannot do for long (its report, or the lookup of its order, books it at the next check),
and two same-size fills at consecutive checks move the ledger in between, which starts
the count over. On a mismatch the
gate fails closed: no new submits (the session refuses them with reason
`reconcile_mismatch`), cancels still go out, and `Report.text()` says exactly what differs
(which order or asset, ours vs the venue's). The gate reopens only on an explicit
`reopen()` after a clean reconciliation.

Warm restart: at start, open orders with our client-id prefix that a previous session left
are adopted into the OMS (`adopt`) before any new order; others are reported, never touched.
A restored contingent leg whose venue order is no longer open, or a plain order the resumed
session had open, is taken back into the OMS and looked up (`ContingentManager.
restore_order`); one still open that filled further while no session ran is adopted with
what the previous session booked and looked up too (`ContingentManager.adopted`): its fills
are booked once, by trade id, into the position. Only an order the venue does not know is
a difference.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from engine.errors import ConfigError
from engine.types import Instrument, OrderStatus, OrderType, TimeInForce
from engine.types.instrument import decimal_str as _plain
from engine.types.venue_reports import VenueOrderState

if TYPE_CHECKING:
    from engine.ledger import Ledger
    from engine.oms import Order, OrderManager
    from engine.session import TradingSession

def short_decimal(value: Decimal) -> str:
    """Shortest plain text (0.5, not 0.50000): difference lines are read by people."""
    return _plain(value.normalize())


_IN_FLIGHT = (OrderStatus.PENDING, OrderStatus.SUBMITTED)
#: consecutive checks that must see the same balance gap (same amount missing, same ledger
#: figure) for it to count while orders are in flight (module doc); the live driver checks
#: again one second after a pending gap, so a gap counts about two seconds after it is first
#: seen: a late fill report is booked well within that, a stalled user stream reconnects
CONFIRM_AFTER = 3


@dataclass(frozen=True, slots=True)
class Difference:
    """One thing that differs: `what` (order/fill/balance), its key, our value, the venue's."""

    what: str
    key: str
    ours: str
    venue: str

    def text(self) -> str:
        return f"{self.what} {self.key}: ours {self.ours}, venue {self.venue}"


@dataclass
class Report:
    """The outcome of one reconciliation (see module doc)."""

    at: str  # "start", "reconnect", "periodic", "after-kill", ...
    differences: list[Difference] = field(default_factory=list)
    lookups: list[str] = field(default_factory=list)  # client ids to look up, then re-check
    pending: list[Difference] = field(default_factory=list)  # balance gaps seen once: check again
    adopted: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)  # open at the venue, not ours (reported)

    @property
    def ok(self) -> bool:
        return not self.differences

    def text(self) -> str:
        """One line when ok (what was adopted or found foreign on it, `; `-separated: an ok
        reconciliation is a note, not a list to read); one line per difference otherwise."""
        head = f"reconciliation ({self.at}): " + ("ok" if self.ok else f"{len(self.differences)} difference(s)")
        notes = [f"adopted from a previous session ({_session_stamp(prefix)}): " + ", ".join(ids)
                 for prefix, ids in _by_session(self.adopted).items()]
        if self.foreign:
            notes.append("open at the venue, not ours (left alone): " + ", ".join(self.foreign))
        if self.ok:
            return "; ".join([head, *notes])
        return "\n".join([head] + ["  " + d.text() for d in self.differences] + ["  " + n for n in notes])


def _by_session(client_ids: list[str]) -> dict[str, list[str]]:
    """Client ids grouped by the prefix of the session that made them (`tp<stamp>-<n>`)."""
    out: dict[str, list[str]] = {}
    for cid in client_ids:
        out.setdefault(cid.rpartition("-")[0] or cid, []).append(cid)
    return out


def _session_stamp(prefix: str) -> str:
    """'session tpmx3eck6e, started 2026-12-02 17:00:01 UTC': which session's orders an
    adoption takes over, from its prefix's stamp (the session's start in epoch ms, base 36,
    engine.oms.session_id_prefix), so an operator can tell a warm restart's own leftovers
    from the orders of a session still running on the account elsewhere."""
    from datetime import UTC, datetime

    try:
        ms = int(prefix[2:], 36)
        started = datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (ValueError, OverflowError, OSError):
        return f"session {prefix}"
    return f"session {prefix}, started {started}"


class Gate:
    """Fail-closed switch for new submits (cancels always pass)."""

    def __init__(self) -> None:
        self.closed = False
        self.why: list[str] = []
        #: amends refused too (the session's stop: nothing may move while it cancels)
        self.amends = False

    def close(self, why: str, *, amends: bool = False) -> None:
        self.closed = True
        self.why.append(why)
        self.amends = self.amends or amends

    def reopen(self) -> None:
        self.closed = False
        self.why.clear()
        self.amends = False


def _order_text(price: int, qty: int, filled: int, inst: Instrument) -> str:
    return (f"price {short_decimal(inst.ticks_to_price(price))} qty {short_decimal(inst.lots_to_qty(qty))} "
            f"filled {short_decimal(inst.lots_to_qty(filled))}")


def compare_orders(oms: OrderManager, venue_open: Iterable[tuple[Instrument, VenueOrderState]], prefix: str,
                   report: Report, *, looked_up: Mapping[str, VenueOrderState] | None = None,
                   ours: Callable[[str], bool] | None = None) -> list[tuple[Instrument, VenueOrderState]]:
    """Fill `report` with order differences; returns the venue's open orders of ours the OMS
    does not know (adoption candidates at start, differences later).

    An order is ours when its client id carries `prefix`, the OMS holds it, or `ours(id)`
    says so (the venue orders contingent legs released: `<leg id>.<n>`, whatever the prefix).
    looked_up: the answers of lookups by client id for orders missing from `venue_open`.
    """
    looked_up = looked_up or {}
    at_venue: dict[str, tuple[Instrument, VenueOrderState]] = {}
    unknown: list[tuple[Instrument, VenueOrderState]] = []
    for inst, state in venue_open:
        cid = state.client_id
        if not (cid.startswith(prefix) or cid in oms.by_client or (ours is not None and ours(cid))):
            report.foreign.append(f"{inst.id} {state.client_id} (venue id {state.venue_order_id})")
            continue
        at_venue[state.client_id] = (inst, state)
        if state.client_id not in oms.by_client:
            unknown.append((inst, state))
    for order in oms.open_orders():
        if order.status in _IN_FLIGHT:
            continue  # its answer is on the way; the OMS resolves it
        inst = order.instrument
        hit = at_venue.get(order.client_id)
        if hit is None:
            state = looked_up.get(order.client_id)
            evidence = order.evidence or {}
            if state is None and evidence.get("lookup") == "not found":  # a restored leg's order
                report.differences.append(Difference(
                    "order", order.client_id, f"{order.status.name} " + _order_text(order.price, order.qty,
                                                                                     order.filled, inst),
                    "unknown (looked up by client id: not found)"))
                continue
            if state is None:
                report.lookups.append(order.client_id)
                continue
            venue = ("not found" if not state.found else
                     f"{state.status.name} " + _order_text(state.price, state.qty, state.filled, inst))
            report.differences.append(Difference(
                "order", order.client_id, f"{order.status.name} " + _order_text(order.price, order.qty, order.filled, inst),
                venue))
            continue
        state = looked_up.get(order.client_id, hit[1])
        # leaves, not filled: an amend (Binance cancel-replace) starts a new venue order whose
        # filled count restarts at 0, while what remains to fill is the same on both sides
        leaves = state.qty - state.filled
        differs = leaves != order.leaves or (order.type == OrderType.LIMIT and state.price != order.price)
        if differs and order.client_id not in looked_up:
            report.lookups.append(order.client_id)  # fills may be on their way: ask first
        elif leaves != order.leaves:
            report.differences.append(Difference(
                "fill", order.client_id, f"leaves {short_decimal(inst.lots_to_qty(order.leaves))}",
                f"leaves {short_decimal(inst.lots_to_qty(leaves))}"))
        elif differs:
            report.differences.append(Difference(
                "order", order.client_id, _order_text(order.price, order.qty, order.filled, inst),
                _order_text(state.price, state.qty, state.filled, inst)))
    return unknown


def compare_balances(ledger: Ledger, venue: str, assets: Iterable[str],
                     balances: Mapping[str, tuple[Decimal, Decimal]]) -> list[tuple[Difference, Decimal]]:
    """Ledger balance vs the venue's free + locked, exactly, for each asset the run trades:
    each difference with its amount (ours - venue's)."""
    out = []
    for asset in sorted(set(assets)):
        ours = ledger.balance(venue, asset)
        free, locked = balances.get(asset, (Decimal(0), Decimal(0)))
        theirs = free + locked
        if ours != theirs:
            out.append((Difference("balance", f"{venue}:{asset}", short_decimal(ours),
                                   f"{short_decimal(theirs)} (free {short_decimal(free)}, locked {short_decimal(locked)})"),
                        ours - theirs))
    return out


def traded_assets(instruments: Iterable[Instrument], venue: str) -> set[str]:
    """The assets whose balances a run's instruments move on `venue`: base and quote of a
    spot pair, the settle asset of a contract (its fills move no base or quote)."""
    out: set[str] = set()
    for inst in instruments:
        if inst.venue == venue:
            out.update((inst.settle,) if inst.contract else (inst.base, inst.quote))
    return out


def compare_positions(ledger: Ledger, instruments: Iterable[Instrument],
                      positions: Mapping[str, Decimal]) -> list[tuple[Difference, Decimal]]:
    """Contract positions (contracts, signed) of the ledger vs the venue's (a contract the
    venue does not list is flat there): each difference with its amount (ours - venue's)."""
    out = []
    for inst in instruments:
        if not inst.contract:
            continue
        ours = ledger.position(inst.id)
        theirs = Decimal(positions.get(inst.id, 0))
        if ours != theirs:
            out.append((Difference("position", inst.id, short_decimal(ours), short_decimal(theirs)), ours - theirs))
    return out


_TIF_OF_STATE = TimeInForce.GTC


def adopt(session: TradingSession, inst: Instrument, state: VenueOrderState, side: int,
          filled: int | None = None) -> Order:
    """Take over an open order a previous session of ours left (warm restart).

    The OMS gets it as ACKNOWLEDGED / PARTIALLY_FILLED with the venue's price, quantity and
    filled quantity; its earlier fills are already in the venue's balances (the ledger starts
    from them), so none is booked again. `filled`: the lots to adopt it with instead, when a
    resumed session knows what the previous one booked of it (`ContingentManager.
    adopt_filled`: the rest is looked up and booked into the position). Audited as `adopt`.
    """
    filled = state.filled if filled is None else filled
    now = session.clock.now()
    order = session.oms.create(
        client_id=state.client_id, instrument=inst, instrument_index=session.index[inst.id], side=side,
        type=OrderType.LIMIT, tif=_TIF_OF_STATE, price=state.price, qty=state.qty, created_ts=now, trigger_ts=now)
    session.oms.set_status(order, OrderStatus.SUBMITTED, now)
    session.oms.set_status(order, OrderStatus.ACKNOWLEDGED, now)
    if filled:
        order.filled = filled
        session.oms.set_status(order, OrderStatus.PARTIALLY_FILLED, now)
    order.ack_ts = now
    session.audit.write(now, "decision", action="adopt", client_id=state.client_id, instrument=inst.id,
                        venue_order_id=state.venue_order_id, side=order.side_name,
                        price=short_decimal(inst.ticks_to_price(state.price)),
                        qty=short_decimal(inst.lots_to_qty(state.qty)), filled=short_decimal(inst.lots_to_qty(state.filled)))
    return order


class Reconciler:
    """Runs the comparisons for one session and drives its gate (see module doc).

    Usage by a live driver: `report = reconciler.check(at, venue_open, balances, sides)`; if
    `report.lookups`, look those ids up, merge the answers into the session, and call
    `check(..., looked_up=answers)` again; the final report closes the gate on differences.
    `sides` maps a venue order's client id to +1/-1 (the venue states do not carry it) for
    adoption at start.
    """

    def __init__(self, session: TradingSession, prefix: str, every_s: float = 30.0,
                 confirm_after: int | None = CONFIRM_AFTER) -> None:
        """`confirm_after`: consecutive sightings of the same balance gap that count it
        even while orders are in flight (>= 2; None: only a settled second sighting
        counts, the rule of recordings made before it existed)."""
        self.session = session
        self.confirm_after = check_confirm_after(confirm_after)
        self.prefix = prefix
        self.every_ns = int(every_s * 1e9)
        self.gate: Gate = getattr(session, "gate", None) or Gate()
        session.gate = self.gate  # type: ignore[attr-defined]
        self.reports: list[Report] = []
        self.last: Report | None = None  # the latest check, final or waiting for lookups
        # balance/position differences of the last check: key -> (amount, the ledger's figure,
        # consecutive sightings of that pair)
        self._balance_gaps: dict[str, tuple[Decimal, str, int]] = {}
        self.last_ns = 0

    def due(self, now_ns: int) -> bool:
        return now_ns - self.last_ns >= self.every_ns

    def check(self, at: str, venue_open: Iterable[tuple[Instrument, VenueOrderState]],
              balances: Mapping[str, Mapping[str, tuple[Decimal, Decimal]]], *,
              sides: Mapping[str, int] | None = None,
              looked_up: Mapping[str, VenueOrderState] | None = None,
              positions: Mapping[str, Decimal] | None = None) -> Report:
        s = self.session
        report = Report(at)
        contingent = s.contingent
        unknown = compare_orders(s.oms, venue_open, self.prefix, report, looked_up=looked_up,
                                 ours=contingent.is_child)
        for inst, state in unknown:
            if at == "start" and sides and state.client_id in sides:
                order = adopt(s, inst, state, sides[state.client_id],
                              contingent.adopt_filled(state.client_id, state.filled))
                report.adopted.append(state.client_id)
                if contingent.adopted(order, state):  # a resumed order that filled while down:
                    report.lookups.append(state.client_id)  # its trades are looked up and booked
            else:
                report.differences.append(Difference(
                    "order", state.client_id, "unknown to the OMS",
                    f"{state.status.name} " + _order_text(state.price, state.qty, state.filled, inst)))
        if at == "start":  # a restored working leg whose venue order is no longer open:
            # it filled or ended while no session ran; looked up by client id, its answer
            # merged as any venue report (fills booked once, the group advanced)
            for leg_id, cid in contingent.orphans():
                contingent.restore_order(leg_id, cid)
                report.lookups.append(cid)
        # a balance read can race fills still on their way (see module doc): a gap counts
        # when the previous check saw the same amount with the same ledger figure and this
        # check is settled, or when `confirm_after` consecutive checks saw them, settled or
        # not; until then it is pending (the caller checks again)
        settled = not report.lookups and not any(
            o.status in _IN_FLIGHT or o.owed for o in s.oms.open_orders())
        pending: dict[str, tuple[Decimal, str, int]] = {}

        def sighted(key: str, diff: Difference, amount: Decimal) -> None:
            before = self._balance_gaps.get(key)
            # diff.ours: the ledger's figure now
            seen = before[2] + 1 if before is not None and before[:2] == (amount, diff.ours) else 1
            pending[key] = (amount, diff.ours, seen)
            confirmed = (settled and seen >= 2) or (self.confirm_after is not None and seen >= self.confirm_after)
            (report.differences if confirmed else report.pending).append(diff)

        for venue, assets in balances.items():
            for diff, amount in compare_balances(s.ledger, venue, traded_assets(s.instruments.values(), venue),
                                                 assets):
                sighted(diff.key, diff, amount)
        if positions is not None:  # contracts: a position is no balance (same rule)
            for diff, amount in compare_positions(s.ledger, s.instruments.values(), positions):
                sighted(f"position {diff.key}", diff, amount)
        self._balance_gaps = pending
        now = s.clock.now()
        self.last_ns = now
        self.last = report
        # every check is an audit record (docs/live.md), a pending one too: a strategy that
        # always has an order in flight would otherwise leave no trace of its checks
        final = not (report.ok and (report.lookups or report.pending))
        s.audit.write(now, "reconcile", at=at, ok=report.ok,
                      differences=[d.text() for d in report.differences],
                      adopted=report.adopted, foreign=report.foreign,
                      **({} if final else {"pending": [d.text() for d in report.pending],
                                           "lookups": list(report.lookups)}),
                      **({"positions": {k: short_decimal(Decimal(v)) for k, v in sorted(positions.items())}}
                         if positions is not None else {}))
        if not final:  # not final yet: the caller checks again
            return report
        self.reports.append(report)
        if not report.ok:
            self.gate.close(report.text())
        return report


def check_confirm_after(value: int | None, where: str = "confirm_after") -> int | None:
    """`confirm_after` as given (None or an int >= 2); ConfigError naming `where` otherwise
    (1 would count a balance read racing a fill on its way, the race the rule exists for)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 2:
        raise ConfigError(f"{where} = {value!r}: expected a whole number of consecutive checks >= 2 "
                          f"(default {CONFIRM_AFTER})")
    return value


def seed_ledger(session: TradingSession, venue: str,
                balances: Mapping[str, tuple[Decimal, Decimal]]) -> list[str]:
    """At the start of a testnet/live session the venue's balances are the truth: set the
    ledger's balances of the run's assets on `venue` to free + locked, audited
    (`ledger_seeded`, with what the config said). Returns the assets that changed."""
    changed = []
    for asset in sorted(traded_assets(session.instruments.values(), venue)):
        free, locked = balances.get(asset, (Decimal(0), Decimal(0)))
        was = session.ledger.balance(venue, asset)
        if was != free + locked:
            session.ledger.balances[(venue, asset)] = free + locked
            changed.append(f"{asset} {short_decimal(was)} -> {short_decimal(free + locked)}")
    if changed:
        session.audit.write(session.clock.now(), "decision", action="ledger_seeded", venue=venue, changed=changed)
    return changed


def close_gate(session: TradingSession, why: str, *, amends: bool = False) -> Gate:
    """Close the session's fail-closed gate (new submits and approvals refused `fail_closed`;
    amends too with `amends`) for `why`, once per reason: a session's normal stop
    (modes/live/driver.py run_step), which is no risk state and no kill."""
    gate: Gate = getattr(session, "gate", None) or Gate()
    session.gate = gate  # type: ignore[attr-defined]
    if not gate.closed or why not in gate.why:
        gate.close(why, amends=amends)
    return gate


def halt_strategy(session: TradingSession, why: str, *, cancel: bool = True) -> list[str]:
    """A strategy raised (or the operator halted it): refuse new submits and, unless
    `cancel=False` ([live] on_strategy_error = "keep"), cancel its open orders. Returns the
    client ids cancelled. The caller then reconciles, so the session ends reconciled."""
    gate = getattr(session, "gate", None) or Gate()
    session.gate = gate  # type: ignore[attr-defined]
    gate.close(why)
    now = session.clock.now()
    session.audit.write(now, "decision", action="halt", reason=why, cancel=cancel)
    cancelled = []
    if cancel:
        for order in list(session.oms.open_orders()):
            if session.cancel(order.client_id):
                cancelled.append(order.client_id)
    return cancelled


class DeadManSwitch:
    """Cancel everything when the market feed or the user stream has been silent too long.

    Binance spot has no venue-side cancel-on-disconnect, so the engine emulates Kraken's and
    BitMEX's cancel-all-after (live-lessons note: refresh every 15 s, 60 s timeout).
    `touch(stream, now_ns)` on every message of a stream; `check(now_ns)` returns the streams
    silent longer than `timeout_s` the first time they are (it fires once per outage; a
    touch re-arms it). The caller cancels all open orders and closes the gate when it fires.
    """

    def __init__(self, timeout_s: float = 60.0, streams: Iterable[str] = ("market", "user")) -> None:
        self.timeout_ns = int(timeout_s * 1e9)
        self.last: dict[str, int | None] = {s: None for s in streams}
        self.fired: set[str] = set()
        self.firings: list[tuple[int, str]] = []

    def touch(self, stream: str, now_ns: int) -> None:
        self.last[stream] = now_ns
        self.fired.discard(stream)

    def check(self, now_ns: int) -> list[str]:
        lost = []
        for stream, last in self.last.items():
            if last is None or stream in self.fired:
                continue
            if now_ns - last > self.timeout_ns:
                self.fired.add(stream)
                self.firings.append((now_ns, stream))
                lost.append(stream)
        return lost
