"""The session's side of risk: refusals as order updates, approvals, triggers, the kill switch.

Why a module beside the session: `engine.risk.RiskEngine` decides (limits, states,
counters); this module acts on the session's orders — it holds each order's exposure while
it is open, in flight or pending approval, turns loss/reject/slippage triggers into state
changes or the kill switch, keeps orders that need approval waiting (live) or decides them
by config (backtest), applies operator commands from the control inbox, and records the
kill switch's timing. It runs the same in every mode: only `RiskEngine.interactive` (set
by a live driver) and an attached `engine.control.ControlInbox` differ.

The kill switch (docs/risk.md): HALTED at once; pending approvals refused; every open order
cancelled (the cancel-rate limit does not apply); contingent components told through
`on_kill`; once the last cancel is acknowledged the time from the trigger is recorded
(audit "kill_cancels_done", summary.json "risk.kills", the report) and, when asked, each
position is flattened with one marketable limit IOC priced at the local mid +/- the
slippage cap (buy: floor, sell: ceil to the tick, so the cap is never exceeded).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from engine.errors import StrategyError
from engine.risk import APPROVAL, RiskState
from engine.types import OrderStatus
from engine.types.orders import ReasonCode
from engine.views import Event

if TYPE_CHECKING:
    from engine.control import Command, ControlInbox
    from engine.oms import Order
    from engine.session import TradingSession
    from engine.views import OrderUpdate

#: pre_submit's answer for an order that waits for an operator's approval
PENDING_APPROVAL = "pending_approval"
_C = SimpleNamespace(**{code.name: code for code in ReasonCode})  # fast member reads (engine.risk)
_EV_REJECTED, _EV_FILL = Event.REJECTED, Event.FILL
_HALTED = RiskState.HALTED


class RiskGuard:
    """One per session (`session.guard`); see the module docstring."""

    def __init__(self, session: TradingSession) -> None:
        self.session = session
        self.risk = session.risk
        self.pending: dict[str, int] = {}  # client id -> approval deadline (local ns)
        self.kills: list[dict[str, Any]] = []
        self.approvals: list[dict[str, Any]] = []
        #: callables(now) told when the kill switch fires (contingent orders disarm)
        self.on_kill: list[Callable[[int], None]] = []
        self.control: ControlInbox | None = None  # a live driver attaches the run's inbox
        self._kill_wait: set[int] = set()
        # a PnL trigger is configured: on_pnl has something to feed (the session's equity
        # sample skips the PnL sum when neither this nor a pending approval needs it)
        self.pnl_on = session.risk.config.max_daily_loss is not None or session.risk.config.max_drawdown is not None
        risk = session.risk
        ids = list(session.instruments)
        risk.bind([session.instruments[i] for i in ids], [session.ledger.positions[i] for i in ids],
                  [_top(session, i) for i in ids])
        risk.emit = lambda now, action, fields: session.audit.write(now, "risk", action=action, **fields)
        self._check_submit = risk.check_submit  # the hot path's bound method and open-order set
        self._open_nos = session.oms.open_nos

    # -- before sending ---------------------------------------------------------------------
    def pre_submit(self, order: Order, *, now: int, side: int, reduce_only: bool) -> str | None:
        """A risk reason, PENDING_APPROVAL, or None (send it) for a new PENDING order (its
        lots and ticks; ticks 0 = market). Counts refusals by reason."""
        reason: str | None = self._check_submit(order.instrument_index, now, side, order.qty, order.price,
                                                len(self._open_nos) - 1, reduce_only)
        if reason is None:
            return None
        if reason == APPROVAL:
            reason = self._approval(order, now)
            if reason is None or reason == PENDING_APPROVAL:
                return reason
        self.risk.refused(reason)
        return reason

    def decided(self, reason: str | None) -> None:
        """The next `pre_submit` answers `reason` (None: send it) instead of checking: the
        compiled fast path's replay, whose verdict the numba loop already took with the one
        implementation of the checks (`engine.risk_nb`) on this engine's limits and state.
        `undecided` ends it (after the submit, whatever the session decided before risk)."""
        def verdict(*_args: Any) -> str | None:
            self._check_submit = self.risk.check_submit
            return reason
        self._check_submit = verdict

    def undecided(self) -> None:
        """Back to checking every submit (see `decided`)."""
        self._check_submit = self.risk.check_submit

    def _approval(self, order: Order, now: int) -> str | None:
        cfg = self.risk.config
        if self.risk.interactive:
            self.pending[order.client_id] = now + int(cfg.approval_timeout_s * 1_000_000_000)
            self.risk.hold(order.client_id, order.instrument_index, order.side, order.qty)
            self.session.audit.write(now, "risk", action="approval_required", client_id=order.client_id,
                                     threshold=str(cfg.approval_notional), timeout_s=str(cfg.approval_timeout_s))
            self._write_pending()
            return PENDING_APPROVAL
        approved = cfg.approval_in_backtest == "approve"
        self._record_approval(now, order.client_id, approved, "config", "approval_in_backtest")
        return None if approved else _C.APPROVAL_REFUSED

    def dry_check(self, instrument_id: str, side: int, qty: Decimal, price: Decimal | None) -> str | None:
        """`TradingSession.risk_check`: the state, the per-order limits (nothing counted) and
        the exposure limits for a new order of `qty` (base units, on the lot grid) at `price`
        (None: market) on `side` (+1 buy, -1 sell); OffGridError off the grid."""
        session = self.session
        inst = session.instrument(instrument_id)
        return self.risk.check_dry(session.index[inst.id], session.clock.now(), side, inst.qty_to_lots(qty),
                                   inst.price_to_ticks(price) if price is not None else 0,
                                   len(session.oms.open_nos))

    def sent(self, order: Order) -> None:
        """The order left for the venue: hold its quantity as in-flight exposure."""
        self.risk.hold(order.client_id, order.instrument_index, order.side, order.qty)

    def pre_amend(self, order: Order, new_price: int, new_qty: int, now: int) -> str | None:
        """A risk reason refusing an amend to (price ticks, total qty lots), or None.

        The state, max_order_notional, max_position, price_band, the exposure limits and
        the approval threshold apply to the order as amended; while the amend is in
        flight the larger of the old and new leaves is held.
        """
        risk = self.risk
        leaves = order.qty - order.filled
        new_leaves = new_qty - order.filled
        if order.client_id in self.pending:
            reason: str | None = _C.APPROVAL_PENDING
        else:
            reason = risk.check_amend(order.instrument_index, side=order.side, qty=new_qty, leaves=leaves,
                                      new_leaves=new_leaves, price_ticks=new_price)
        if reason is not None:
            risk.refused(reason)
            return reason
        risk.hold(order.client_id, order.instrument_index, order.side, max(leaves, new_leaves))
        return None

    def pre_cancel(self, now: int) -> str | None:
        """The cancel-rate limit (never for the kill switch's own cancels)."""
        reason = self.risk.check_cancel(now)
        if reason is not None:
            self.risk.refused(reason)
        return reason

    # -- after a venue response ---------------------------------------------------------------
    def after_event(self, order: Order, update: OrderUpdate, now: int) -> None:
        """Update the order's held exposure and feed the triggers; called by the session's
        venue merge (engine/venue_merge.py) for every venue report that changed the order,
        before the strategy hears of it."""
        risk = self.risk
        risk.hold(order.client_id, order.instrument_index, order.side, order.leaves)
        fired = None
        if update.event == _EV_REJECTED:
            fired = risk.on_venue_reject(now)
        elif update.event == _EV_FILL and risk.config.disable_slippage_bps is not None:
            bid, ask = order.arrival_bid, order.arrival_ask
            price = update.last_fill_price
            if bid is not None and ask is not None and bid + ask > 0 and price is not None:
                mid = (bid + ask) / 2
                fired = risk.on_fill_slippage(now, order.side * (price - mid) / mid * 10000)
        if fired is not None:
            self.apply(now, *fired)
        if self._kill_wait and order.order_no in self._kill_wait and not order.is_open:
            self._kill_wait.discard(order.order_no)
            if not self._kill_wait:
                self._cancels_done(now)

    def record_ambiguous(self, client_id: str) -> None:
        """An ambiguous venue outcome for `client_id` (the OMS calls this in live modes):
        counted toward [risk] disable_after_ambiguous."""
        now = self.session.clock.now()
        self.session.audit.write(now, "risk", action="ambiguous", client_id=client_id)
        fired = self.risk.record_ambiguous(now)
        if fired is not None:
            self.apply(now, *fired)

    def on_pnl(self, now: int, pnl: Decimal) -> None:
        """Feed PnL (at each equity sample) to the daily-loss and drawdown triggers; also
        expires approvals that waited too long."""
        if self.pending:
            self.expire_approvals(now)
        if not self.pnl_on:
            return
        fired = self.risk.on_pnl(now, pnl)
        if fired is not None:
            self.apply(now, *fired)
            self.session._flush()  # refusals of flatten orders reach the strategy now

    def apply(self, now: int, action: str, trigger: str) -> None:
        """Carry out a trigger's action: 'reducing', 'halt' or 'kill'."""
        cfg = self.risk.config
        if action == "kill":
            if not self.risk.killed:
                self.kill(trigger, flatten=cfg.kill_flatten, max_slippage_bps=cfg.kill_max_slippage_bps, who="risk")
        else:
            state = RiskState.REDUCING if action == "reducing" else RiskState.HALTED
            self.risk.set_state(now, state, trigger, who="risk", why=f"[risk] {trigger} exceeded")

    # -- the kill switch ------------------------------------------------------------------------
    def kill(self, reason: str, *, flatten: bool = False, max_slippage_bps: Decimal | str | None = None,
             who: str = "strategy") -> dict[str, Any]:
        """Cancel all, optionally flatten, freeze (see module docstring); returns the kill's
        record (its `cancel_ack_ns` is filled once the last cancel is acknowledged). A second
        kill while one is in progress only adds an audit record."""
        session, risk = self.session, self.risk
        now = session.clock.now()
        cap = Decimal(str(max_slippage_bps)) if max_slippage_bps is not None else risk.config.kill_max_slippage_bps
        if not cap.is_finite() or cap < 0:
            raise StrategyError(f"kill max_slippage_bps={max_slippage_bps!r}: expected a number >= 0 (bps)")
        if self.kills and not self.kills[-1]["done"] and risk.killed:
            session.audit.write(now, "risk", action="kill_repeated", reason=reason, who=who)
            return self.kills[-1]
        risk.set_state(now, RiskState.HALTED, "kill", who=who, why=reason)
        record: dict[str, Any] = {"ts": now, "reason": reason, "who": who, "flatten": flatten,
                                  "max_slippage_bps": str(cap), "cancels": 0, "last_cancel_ack_ts": None,
                                  "cancel_ack_ns": None, "flatten_orders": [], "done": False}
        self.kills.append(record)
        session.audit.write(now, "risk", action="kill", reason=reason, who=who, flatten=flatten,
                            max_slippage_bps=str(cap))
        for client_id in list(self.pending):
            self._release(client_id, False, who, reason, refusal=_C.KILL_SWITCH)
        for listener in self.on_kill:
            listener(now)
        targets = [o for o in session.oms.open_orders(None) if o.status != OrderStatus.PENDING]
        record["cancels"] = len(targets)
        self._kill_wait = {o.order_no for o in targets}
        risk.bypass = True
        try:
            for order in targets:
                if not session.cancel_in_flight(order):
                    session.cancel(order.client_id)
        finally:
            risk.bypass = False
        if not targets:
            self._cancels_done(now)
        return record

    def _cancels_done(self, now: int) -> None:
        record = self.kills[-1]
        record["last_cancel_ack_ts"] = now
        record["cancel_ack_ns"] = now - record["ts"]
        self.session.audit.write(now, "risk", action="kill_cancels_done", cancels=record["cancels"],
                                 cancel_ack_ns=record["cancel_ack_ns"])
        if record["flatten"] and self.risk.killed:
            self._flatten(now, record)
        elif record["flatten"]:  # resumed before the cancels were all acknowledged
            self.session.audit.write(now, "risk", action="flatten_skipped", reason="resumed before the cancels ended")
        record["done"] = True

    def _flatten(self, now: int, record: dict[str, Any]) -> None:
        session, risk = self.session, self.risk
        cap = Decimal(record["max_slippage_bps"])
        for index, inst_id in enumerate(session.instruments):
            inst = session.instruments[inst_id]
            lots = session.ledger.positions[inst_id].lots
            if lots == 0:
                continue
            mid2 = risk.mid2(index)
            if mid2 == 0:
                session.audit.write(now, "risk", action="flatten_skipped", instrument=inst_id, reason="no mid")
                continue
            side = -1 if lots > 0 else 1
            limit = Decimal(mid2) * (10000 + side * cap) / 20000
            ticks = int(limit.to_integral_value(rounding=ROUND_FLOOR if side > 0 else ROUND_CEILING))
            if ticks <= 0:
                session.audit.write(now, "risk", action="flatten_skipped", instrument=inst_id, reason="price <= 0")
                continue
            risk.bypass = True
            try:
                client_id = session.submit(
                    instrument=inst_id, side=side, qty=inst.lots_to_qty(abs(lots)), price=inst.ticks_to_price(ticks),
                    order_type="limit", tif="IOC", post_only=False, reduce_only=True, client_id=None,
                    expire_ns=None, parent_id=None)
            finally:
                risk.bypass = False
            record["flatten_orders"].append(client_id)
            session.audit.write(now, "risk", action="flatten", client_id=client_id, instrument=inst_id,
                                side="buy" if side > 0 else "sell", qty=str(inst.lots_to_qty(abs(lots))),
                                price=str(inst.ticks_to_price(ticks)))

    # -- states and approvals (ctx, control commands) -------------------------------------------
    def resume(self, who: str, why: str) -> bool:
        """Leave REDUCING or HALTED for ACTIVE, audited with who and why (both required).
        The drawdown peak is re-based at the next mark (the daily loss is not)."""
        if not who or not why or not str(why).strip():
            raise StrategyError("resume needs who and why (a reason for the audit log)")
        now = self.session.clock.now()
        changed = self.risk.set_state(now, RiskState.ACTIVE, "resume", who=who, why=why)
        if changed:
            self.risk._peak_pnl = None
        return changed

    def reduce(self, who: str, why: str) -> bool:
        """Enter REDUCING (only position-reducing orders), audited."""
        now = self.session.clock.now()
        return self.risk.set_state(now, RiskState.REDUCING, "operator", who=who, why=why)

    def approve(self, client_id: str, who: str, why: str = "") -> bool:
        """Release an order waiting for approval (sent now); False when none waits."""
        return self._release(client_id, True, who, why)

    def refuse(self, client_id: str, who: str, why: str = "") -> bool:
        """Refuse an order waiting for approval (REJECTED, reason approval_refused)."""
        return self._release(client_id, False, who, why)

    def _release(self, client_id: str, approved: bool, who: str, why: str,
                 refusal: str = _C.APPROVAL_REFUSED) -> bool:
        session = self.session
        now = session.clock.now()
        if self.pending.pop(client_id, None) is None:
            session.audit.write(now, "risk", action="approval_unknown", client_id=client_id, who=who)
            return False
        order = session.oms.by_client[client_id]
        self._record_approval(now, client_id, approved, who, why)
        reason: str | None = None if approved else refusal
        if approved and self.risk.state is _HALTED:
            reason = _C.KILL_SWITCH if self.risk.killed else _C.RISK_HALTED
        gate = getattr(session, "gate", None)
        if approved and reason is None and gate is not None and gate.closed:
            reason = _C.FAIL_CLOSED  # a halt or the session's stop: an approval sends nothing new
        if reason is None:
            session._send(order, now)
        else:
            self.risk.hold(client_id, order.instrument_index, order.side, 0)
            self.risk.refused(reason)
            session._refuse(order, now, reason)
        self._write_pending()
        return True

    def _record_approval(self, now: int, client_id: str, approved: bool, who: str, why: str) -> None:
        self.approvals.append({"ts": now, "client_id": client_id, "approved": approved, "who": who, "why": why})
        self.session.audit.write(now, "risk", action="approved" if approved else "refused_approval",
                                 client_id=client_id, who=who, why=why)

    def expire_approvals(self, now: int) -> None:
        """Refuse (approval_timeout) every order that waited past its deadline."""
        for client_id, deadline in list(self.pending.items()):
            if now >= deadline:
                self._release(client_id, False, "risk", "approval_timeout_s elapsed", refusal=_C.APPROVAL_TIMEOUT)

    def _write_pending(self) -> None:
        if self.control is not None:
            self.control.write_pending(sorted(self.pending))

    # -- the control inbox ---------------------------------------------------------------------
    def poll_control(self) -> int:
        """Apply the commands waiting in the attached control inbox (none attached: 0);
        returns how many were applied. A live driver calls this between events."""
        now = self.session.clock.now()
        if self.pending:
            self.expire_approvals(now)
        if self.control is None:
            return 0
        commands = self.control.take()
        for command in commands:
            self._apply_command(command)
        self.session._flush()
        return len(commands)

    def _apply_command(self, command: Command) -> None:
        who = f"operator:{command.who}"
        now = self.session.clock.now()
        self.session.audit.write(now, "risk", action="control", command=command.command, order=command.order,
                                 who=command.who, why=command.why, file=command.name)
        if command.command == "kill":
            self.kill(command.why or "operator kill", flatten=command.flatten,
                      max_slippage_bps=command.max_slippage_bps, who=who)
        elif command.command == "resume":
            self.resume(who, command.why)
        elif command.command == "approve":
            self.approve(command.order or "", who, command.why)
        elif command.command == "refuse":
            self.refuse(command.order or "", who, command.why)

    def summary(self) -> dict[str, Any]:
        """summary.json "risk": state, refusals by reason, transitions, kills, approvals."""
        return self.risk.summary() | {"kills": [dict(k) for k in self.kills], "approvals": list(self.approvals),
                                      "pending_approval": sorted(self.pending)}


def _top(session: TradingSession, instrument_id: str) -> Callable[[], tuple[int, int, int, int]]:
    """The instrument's local top of book, looked up through the session's current venue
    object (the compiled fast path swaps venues during its replay)."""
    index = session.index[instrument_id]
    venue = session.instruments[instrument_id].venue
    return lambda: session.venues[venue].top_of_book(index)

