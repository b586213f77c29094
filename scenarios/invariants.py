"""Invariants: checks of a finished run, evaluated from its own records (docs/run_dir.md).

An invariant reads the run directory (orders/fills/equity/inventory parquet, summary.json,
config.json) through `RunRecords` and returns an `InvariantResult`: pass, fail (with each
`Violation`'s offending local time, ns) or skipped (the run has nothing to check, e.g. a
`limit = "risk"` when the run config sets no such risk limit). Money is compared exactly
(Decimal); the only float is the mid in inventory.parquet, used for exposure.

Users add invariants by import path: `kind = "package.module:Class"`; the class takes the
table's other keys as keyword arguments and implements `check(run) -> InvariantResult`.
`run_figures` gives the key figures of a run (PnL, max drawdown, fill ratio) that the stress
matrix compares with the unperturbed base run (the cost of the disaster).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cached_property
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from engine.errors import ConfigError, DataError
from replay.schema import format_ns
from scenarios.perturbations import decimal_value

OPEN_STATUSES = ("pending", "submitted", "acknowledged", "partially_filled")


@dataclass(frozen=True)
class Violation:
    """One breach: when (local ns, None if the whole run) and what."""

    ts: int | None
    message: str


@dataclass(frozen=True)
class InvariantResult:
    name: str
    status: str  # "pass" | "fail" | "skipped"
    detail: str = ""
    violations: tuple[Violation, ...] = field(default_factory=tuple)

    @property
    def first_ts(self) -> int | None:
        stamps = [v.ts for v in self.violations if v.ts is not None]
        return min(stamps) if stamps else None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "detail": self.detail,
                "first_ts": self.first_ts,
                "violations": [{"ts": v.ts, "message": v.message} for v in self.violations[:20]],
                "violation_count": len(self.violations)}


def _dec(value: Any, where: str) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise DataError(f"{where}: {value!r} is not a decimal") from None


class RunRecords:
    """Lazy, read-only view of one run directory's records."""

    def __init__(self, run_dir: str | Path) -> None:
        self.dir = Path(run_dir)
        if not (self.dir / "summary.json").is_file():
            raise DataError(f"{self.dir}: not a run directory (no summary.json)")

    def _table(self, name: str) -> list[dict[str, Any]]:
        path = self.dir / name
        if not path.is_file():
            raise DataError(f"{path}: missing from the run directory")
        return pq.read_table(path).to_pylist()

    @cached_property
    def summary(self) -> dict[str, Any]:
        return json.loads((self.dir / "summary.json").read_text())["run"]

    @cached_property
    def config(self) -> dict[str, Any]:
        return json.loads((self.dir / "config.json").read_text())

    @cached_property
    def orders(self) -> list[dict[str, Any]]:
        return self._table("orders.parquet")

    @cached_property
    def fills(self) -> list[dict[str, Any]]:
        return self._table("fills.parquet")

    @cached_property
    def equity(self) -> list[tuple[int, Decimal]]:
        return [(int(r["ts"]), _dec(r["equity"], "equity.parquet equity"))
                for r in self._table("equity.parquet")]

    @cached_property
    def audit(self) -> list[dict[str, Any]]:
        """audit.jsonl's records in file order (decisions, requests, responses, fills, faults)."""
        path = self.dir / "audit.jsonl"
        if not path.is_file():
            raise DataError(f"{path}: missing from the run directory")
        out = []
        with path.open() as fh:
            for n, line in enumerate(fh, 1):
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    raise DataError(f"{path} line {n}: not a JSON record") from None
        return out

    @cached_property
    def equity_rows(self) -> list[dict[str, Any]]:
        return self._table("equity.parquet")

    @cached_property
    def inventory(self) -> list[dict[str, Any]]:
        return self._table("inventory.parquet")

    @property
    def equity_start(self) -> Decimal:
        return _dec(self.summary["pnl"]["equity_start"], "summary.json pnl.equity_start")

    @property
    def equity_end(self) -> Decimal:
        return _dec(self.summary["pnl"]["equity_end"], "summary.json pnl.equity_end")


class Invariant:
    """Base class: `name` (the table's kind) and `check`."""

    name = "invariant"

    def check(self, run: RunRecords) -> InvariantResult:
        raise NotImplementedError

    def result(self, violations: list[Violation], detail: str) -> InvariantResult:
        return InvariantResult(self.name, "fail" if violations else "pass", detail, tuple(violations))


def _limit(name: str, value: Any) -> Decimal | None:
    return None if value is None else decimal_value(name, value)


def drawdown_series(equity: list[tuple[int, Decimal]]) -> list[tuple[int, Decimal, Decimal]]:
    """(ts, drawdown from the running peak (>= 0), the peak) per equity sample."""
    out = []
    peak: Decimal | None = None
    for ts, eq in equity:
        peak = eq if peak is None or eq > peak else peak
        out.append((ts, peak - eq, peak))
    return out


class MaxDrawdown(Invariant):
    """Peak-to-trough equity drawdown stays within `limit` (quote units) and/or `limit_pct`
    (% of the running peak). Reports the first sample beyond a limit."""

    name = "max_drawdown"

    def __init__(self, limit: Any = None, limit_pct: Any = None) -> None:
        self.limit = _limit("limit", limit)
        self.limit_pct = _limit("limit_pct", limit_pct)
        if self.limit is None and self.limit_pct is None:
            raise ConfigError("max_drawdown: set limit (quote units) or limit_pct")

    def check(self, run: RunRecords) -> InvariantResult:
        worst = Decimal(0)
        worst_ts = None
        violations = []
        for ts, dd, peak in drawdown_series(run.equity):
            if dd > worst:
                worst, worst_ts = dd, ts
            pct = dd / peak * 100 if peak > 0 else Decimal(0)
            over = (self.limit is not None and dd > self.limit) or (self.limit_pct is not None and pct > self.limit_pct)
            if over and not violations:
                violations.append(Violation(ts, f"drawdown {dd:.2f} ({pct:.2f} % of peak {peak:.2f}) "
                                                f"exceeds {self._limits()}"))
        return self.result(violations, f"max drawdown {worst:.2f} at {format_ns(worst_ts)}; limit {self._limits()}")

    def _limits(self) -> str:
        parts = ([f"{self.limit}"] if self.limit is not None else []) + (
            [f"{self.limit_pct} %"] if self.limit_pct is not None else [])
        return " / ".join(parts)


class MaxPosition(Invariant):
    """|position| of `instrument` ("*" = each) stays within `limit` base units; `limit = "risk"`
    takes the run config's `[risk] max_position` (skipped when the run sets none)."""

    name = "max_position"

    def __init__(self, limit: Any = "risk", instrument: str = "*") -> None:
        self.raw_limit = limit
        self.limit = None if limit == "risk" else _limit("limit", limit)
        self.instrument = instrument

    def check(self, run: RunRecords) -> InvariantResult:
        limit = self.limit
        if limit is None:
            risk = run.config.get("risk", {}).get("max_position")
            if risk is None:
                return InvariantResult(self.name, "skipped", "limit = 'risk' but the run config sets no "
                                                            "[risk] max_position")
            limit = _limit("[risk] max_position", risk)
        worst = Decimal(0)
        violations = []
        for row in run.inventory:
            if self.instrument not in ("*", row["instrument"]):
                continue
            pos = abs(_dec(row["position"], "inventory.parquet position"))
            worst = max(worst, pos)
            if pos > limit and not violations:
                violations.append(Violation(int(row["ts"]), f"{row['instrument']} position "
                                                            f"{row['position']} exceeds {limit}"))
        return self.result(violations, f"max |position| {worst}; limit {limit}")


class MaxExposure(Invariant):
    """Gross exposure (sum of |position| x mid over instruments, quote units) stays within
    `limit` and/or `limit_pct` of the starting equity."""

    name = "max_exposure"

    def __init__(self, limit: Any = None, limit_pct: Any = None) -> None:
        self.limit = _limit("limit", limit)
        self.limit_pct = _limit("limit_pct", limit_pct)
        if self.limit is None and self.limit_pct is None:
            raise ConfigError("max_exposure: set limit (quote units) or limit_pct")

    def check(self, run: RunRecords) -> InvariantResult:
        limits = [x for x in (self.limit, None if self.limit_pct is None else
                              run.equity_start * self.limit_pct / 100) if x is not None]
        limit = min(limits)
        by_ts: dict[int, dict[str, Decimal]] = {}
        for row in run.inventory:
            mid = row["mid"]
            if mid is None or mid != mid:  # NaN: no book yet
                continue
            exposure = abs(_dec(row["position"], "inventory.parquet position")) * Decimal(repr(float(mid)))
            by_ts.setdefault(int(row["ts"]), {})[row["instrument"]] = exposure
        worst = Decimal(0)
        violations = []
        for ts in sorted(by_ts):
            gross = sum(by_ts[ts].values(), Decimal(0))
            worst = max(worst, gross)
            if gross > limit and not violations:
                violations.append(Violation(ts, f"gross exposure {gross:.2f} exceeds {limit:.2f}"))
        return self.result(violations, f"max gross exposure {worst:.2f}; limit {limit:.2f}")


class NoOrphanOrders(Invariant):
    """Every order has an owner to the end: no fill of an unknown order, no child of an
    unknown parent, no child left open after its parent ended, and no order left open at the
    end of the run that nobody asked to cancel (a working order the strategy forgot)."""

    name = "no_orphan_orders"

    def check(self, run: RunRecords) -> InvariantResult:
        orders = {o["client_id"]: o for o in run.orders}
        end = int(run.summary["end_ts"])
        violations = []
        for f in run.fills:
            if f["client_id"] not in orders:
                violations.append(Violation(int(f["ts"]), f"fill of unknown order {f['client_id']}"))
        for o in run.orders:
            if o["type"] == "parent" or o["status"] not in OPEN_STATUSES:
                continue
            parent_id = o.get("parent_id")
            if parent_id:
                parent = orders.get(parent_id)
                if parent is None:
                    violations.append(Violation(int(o["created_ts"]), f"order {o['client_id']} names "
                                                                      f"unknown parent {parent_id}"))
                    continue
                if parent["status"] not in OPEN_STATUSES and o.get("cancel_req_ts") is None:
                    ts = parent.get("done_ts") or end
                    violations.append(Violation(int(ts), f"order {o['client_id']} still {o['status']} after "
                                                         f"its parent {parent_id} ended"))
                    continue
            if o.get("cancel_req_ts") is None:
                violations.append(Violation(end, f"order {o['client_id']} left {o['status']} at the end "
                                                 "of the run without a cancel request"))
        violations.sort(key=lambda v: (v.ts is None, v.ts or 0))
        return self.result(violations, f"{len(run.orders)} orders, {len(violations)} without an owner")


class LedgerReconciles(Invariant):
    """The ledger equals the sum of the fills: final balances and positions (summary.json)
    rebuilt exactly from the starting balances (config.json) and fills.parquet, and the fee
    total in every equity sample equals the fills' fees up to that time."""

    name = "ledger_reconciles"

    def check(self, run: RunRecords) -> InvariantResult:
        start: dict[str, Decimal] = {}
        # the balances the run started with: resolved (profile defaults filled in) when
        # summary.json states them, else as config.json gives them
        resolved = run.summary.get("venues") or run.config.get("venues", {})
        for venue, table in resolved.items():
            for asset, amount in (table.get("balances") or {}).items():
                start[f"{venue}:{asset}"] = _dec(amount, f"config.json venues.{venue}.balances.{asset}")
        instruments = json.loads((run.dir / "instruments.json").read_text())
        balances = dict(start)
        positions: dict[str, Decimal] = {i: Decimal(0) for i in instruments}
        contracts: dict[str, Any] = {}
        violations = []
        for f in run.fills:
            spec = instruments.get(f["instrument"])
            if spec is None:
                violations.append(Violation(int(f["ts"]), f"fill on unknown instrument {f['instrument']}"))
                continue
            base_asset, quote_asset = spec["base"], spec["quote"]
            sign = 1 if f["side"] == "buy" else -1
            qty, price, fee = (_dec(f[k], f"fills.parquet {k}") for k in ("qty", "price", "fee"))
            if f.get("fee_charged") is not None:  # the fee as charged, in its own asset (`fee` is in the quote)
                fee = _dec(f["fee_charged"], "fills.parquet fee_charged")
            if spec.get("type", "spot") != "spot":  # a contract: PnL, fee (and funding) in the settle asset
                self._contract_fill(contracts, balances, f, spec, sign, qty, price, fee)
                positions[f["instrument"]] += sign * qty
                continue
            base_key, quote_key = f"{f['venue']}:{base_asset}", f"{f['venue']}:{quote_asset}"
            fee_key = f"{f['venue']}:{f.get('fee_charged_asset') or f['fee_asset']}"
            balances[base_key] = balances.get(base_key, Decimal(0)) + sign * qty
            balances[quote_key] = balances.get(quote_key, Decimal(0)) - sign * qty * price
            balances[fee_key] = balances.get(fee_key, Decimal(0)) - fee
            positions[f["instrument"]] += sign * qty
        funding = run.dir / "funding.parquet"
        for row in pq.read_table(funding).to_pylist() if funding.is_file() else []:
            spec = instruments[row["instrument"]]
            key = f"{spec['venue']}:{spec['settle']}"
            balances[key] = balances.get(key, Decimal(0)) + _dec(row["amount"], "funding.parquet amount")
        end = int(run.summary["end_ts"])
        for key, amount in sorted(run.summary.get("balances", {}).items()):
            want = balances.get(key, Decimal(0))
            if _dec(amount, f"summary.json balances.{key}") != want:
                violations.append(Violation(end, f"balance {key} is {amount} but the fills give {want}"))
        for inst, amount in sorted(run.summary.get("positions", {}).items()):
            want = positions.get(inst, Decimal(0))
            if _dec(amount, f"summary.json positions.{inst}") != want:
                violations.append(Violation(end, f"position {inst} is {amount} but the fills give {want}"))
        violations.extend(self._fees_over_time(run))
        return self.result(violations, f"{len(run.fills)} fills against {len(balances)} balances")

    @staticmethod
    def _contract_fill(contracts: dict[str, Any], balances: dict[str, Decimal], f: dict[str, Any],
                       spec: dict[str, str], sign: int, qty: Decimal, price: Decimal, fee: Decimal) -> None:
        """Rebuild a contract fill's realized PnL with the engine's position rule
        (engine.margin.book_fill) and book it, less the fee, into the settle asset."""
        from engine.margin import book_fill, position_for

        tick, lot = Decimal(spec["tick_size"]), Decimal(spec["lot_size"])
        pos = contracts.get(f["instrument"])
        if pos is None:
            pos = contracts[f["instrument"]] = position_for(spec["linear"] != "true", lot, tick,
                                                            Decimal(spec["contract_size"]))
        realized = book_fill(pos, sign, int(price / tick), int(qty / lot))
        key = f"{f['venue']}:{spec['settle']}"
        balances[key] = balances.get(key, Decimal(0)) + realized - fee

    @staticmethod
    def _fees_over_time(run: RunRecords) -> list[Violation]:
        """Fees in each equity sample (the last sample of each time) vs the fills up to it."""
        fills = sorted(run.fills, key=lambda f: int(f["ts"]))
        last_of_ts: dict[int, Decimal] = {}
        for row in run.equity_rows:
            last_of_ts[int(row["ts"])] = _dec(row["fees"], "equity.parquet fees")
        i, total = 0, Decimal(0)
        for ts in sorted(last_of_ts):
            while i < len(fills) and int(fills[i]["ts"]) <= ts:
                total += _dec(fills[i]["fee"], "fills.parquet fee")
                i += 1
            if last_of_ts[ts] != total:
                return [Violation(ts, f"equity sample shows fees {last_of_ts[ts]} but the fills up to "
                                      f"then sum to {total}")]
        return []


class PnlBounded(Invariant):
    """Equity minus starting equity stays within [min, max] (quote units) and/or
    [min_pct, max_pct] (% of the starting equity) at every sample."""

    name = "pnl_bounded"

    def __init__(self, min: Any = None, max: Any = None, min_pct: Any = None, max_pct: Any = None) -> None:
        self.bounds = {k: _limit(k, v) for k, v in
                       (("min", min), ("max", max), ("min_pct", min_pct), ("max_pct", max_pct))}
        if all(v is None for v in self.bounds.values()):
            raise ConfigError("pnl_bounded: set at least one of min, max, min_pct, max_pct")

    def check(self, run: RunRecords) -> InvariantResult:
        start = run.equity_start
        b = self.bounds
        low = [x for x in (b["min"], None if b["min_pct"] is None else start * b["min_pct"] / 100) if x is not None]
        high = [x for x in (b["max"], None if b["max_pct"] is None else start * b["max_pct"] / 100) if x is not None]
        lo = max(low) if low else None
        hi = min(high) if high else None
        worst_lo = worst_hi = None
        violations = []
        for ts, eq in run.equity:
            pnl = eq - start
            worst_lo = pnl if worst_lo is None or pnl < worst_lo else worst_lo
            worst_hi = pnl if worst_hi is None or pnl > worst_hi else worst_hi
            if not violations and ((lo is not None and pnl < lo) or (hi is not None and pnl > hi)):
                violations.append(Violation(ts, f"PnL {pnl:.2f} outside [{lo}, {hi}]"))
        return self.result(violations, f"PnL range [{worst_lo}, {worst_hi}]; bounds [{lo}, {hi}]")


class NoLiquidation(Invariant):
    """No contract position was liquidated (liquidations.parquet, docs/derivatives.md):
    a leveraged strategy that the venue had to close failed the scenario. Skipped for a
    run without contracts."""

    name = "no_liquidation"

    def check(self, run: RunRecords) -> InvariantResult:
        path = run.dir / "liquidations.parquet"
        if not path.is_file():
            return InvariantResult(self.name, "skipped", "the run trades no contracts")
        rows = [r for r in pq.read_table(path).to_pylist() if r["reason"] == "liquidation"]
        violations = [Violation(int(r["ts"]), f"{r['instrument']} {r['side']} {r['qty']} liquidated at "
                                f"{r['price']} (mark {r['mark']}, margin ratio {r['margin_ratio']})") for r in rows]
        return self.result(violations, f"{len(rows)} liquidation(s)")
def _health_changes(run: RunRecords) -> list[dict[str, Any]]:
    """The venue-health decisions of the audit log (`ctx.venue_health`'s input), in order."""
    return [r for r in run.audit if r.get("type") == "decision" and r.get("action") == "venue_health"]


class NoOrderWhileDown(Invariant):
    """No new order and no amend is sent to a venue while it is down (an outage, maintenance
    or halt, a disconnect, an IP ban: its health "down" in the audit log); cancels are
    allowed. Reads the audit log in order, so a request written after the health change
    counts even at the same nanosecond. `venue` ("*" = each)."""

    name = "no_order_while_down"

    def __init__(self, venue: str = "*") -> None:
        self.venue = venue

    def check(self, run: RunRecords) -> InvariantResult:
        state: dict[str, tuple[str, str]] = {}
        venue_of: dict[str, str] = {}
        violations, downs, sent = [], 0, 0
        for r in run.audit:
            if r.get("type") == "decision" and r.get("action") == "venue_health":
                state[r["venue"]] = (r["state"], r.get("reason", ""))
                downs += r["state"] == "down"
                continue
            if r.get("type") != "request" or r.get("action") not in ("submit", "amend"):
                continue
            venue = r.get("venue") or venue_of.get(r.get("client_id", ""), "")
            if r["action"] == "submit":
                venue_of[r["client_id"]] = venue
            if self.venue not in ("*", venue):
                continue
            health, why = state.get(venue, ("up", ""))
            if health == "down":
                sent += 1
                if len(violations) < 5:
                    violations.append(Violation(int(r["ts"]), f"{r['action']} {r['client_id']} sent to {venue} "
                                                              f"while it is down ({why})"))
        return self.result(violations, f"{downs} down period(s); {sent} order request(s) sent while down")


class CancelOnDisconnectWithin(Invariant):
    """Every order open on a venue when it disconnects (venue health "down" for a
    disconnect) is cancelled within `within_ms`: its cancel requested, or the order done,
    by then. An order that stays open longer may fill on a market we can no longer see."""

    name = "cancel_on_disconnect_within"

    def __init__(self, within_ms: Any = 1000, venue: str = "*") -> None:
        self.within_ns = int(decimal_value("within_ms", within_ms, low=Decimal(0)) * 1_000_000)
        self.venue = venue

    def check(self, run: RunRecords) -> InvariantResult:
        events = [(int(r["ts"]), r["venue"]) for r in _health_changes(run)
                  if r["state"] == "down" and "disconnect" in r.get("reason", "")
                  and self.venue in ("*", r["venue"])]
        violations = []
        checked = 0
        for ts, venue in events:
            deadline = ts + self.within_ns
            for o in run.orders:
                if o["venue"] != venue or o["type"] == "parent" or o["created_ts"] > ts:
                    continue
                if o["ack_ts"] is None and o["status"] == "rejected":
                    continue  # never reached the venue
                if o["done_ts"] is not None and o["done_ts"] <= ts:
                    continue
                checked += 1
                handled = [t for t in (o["cancel_req_ts"], o["done_ts"]) if t is not None and t >= ts]
                if not handled or min(handled) > deadline:
                    violations.append(Violation(deadline, f"order {o['client_id']} open on {venue} at the "
                                                          f"disconnect ({format_ns(ts)}) not cancelled within "
                                                          f"{self.within_ns // 1_000_000} ms"))
        violations.sort(key=lambda v: v.ts)
        return self.result(violations, f"{len(events)} disconnect(s), {checked} open order(s) checked; "
                                        f"limit {self.within_ns // 1_000_000} ms")


class NoBan(Invariant):
    """The venue never bans us: no HTTP 418 (Binance bans an IP that keeps sending after
    429s, for 2 minutes to 3 days). Reads the venue's answers in the audit log: a fault
    answer with HTTP status 418, or an order refused `ip_banned`."""

    name = "no_ban"

    def check(self, run: RunRecords) -> InvariantResult:
        violations = []
        limited = 0
        for r in run.audit:
            banned = (r.get("type") == "fault" and r.get("http_status") == 418) or (
                r.get("type") in ("response", "reject") and r.get("reason") == "ip_banned")
            limited += r.get("type") == "fault" and r.get("http_status") == 429
            if banned:
                violations.append(Violation(int(r["ts"]), f"banned by {r.get('venue', 'the venue')} (418): "
                                                          f"{r.get('command', r.get('event', ''))} "
                                                          f"{r.get('client_id', '')}"))
                break
        return self.result(violations, f"{limited} request(s) answered 429; "
                                        f"{'banned' if violations else 'never banned'}")


class KillSwitchWithin(Invariant):
    """The kill switch fires within `within_ms` of its condition: once PnL falls below
    -`loss_pct` % of the starting equity (and/or the drawdown from the peak passes
    `drawdown_pct` %), at the first equity sample that shows it, a kill must be in the audit
    log by then + `within_ms` (a `risk` record with action `kill`, as the risk engine writes
    it: ts, reason, who). With `cancels_within_ms`, the kill's cancels must also be
    acknowledged that fast (its `kill_cancels_done` record's `cancel_ack_ns`)."""

    name = "kill_switch_within"

    def __init__(self, within_ms: Any = 1000, loss_pct: Any = None, drawdown_pct: Any = None,
                 cancels_within_ms: Any = None) -> None:
        self.within_ns = int(decimal_value("within_ms", within_ms, low=Decimal(0)) * 1_000_000)
        self.loss_pct = _limit("loss_pct", loss_pct)
        self.drawdown_pct = _limit("drawdown_pct", drawdown_pct)
        if self.loss_pct is None and self.drawdown_pct is None:
            raise ConfigError("kill_switch_within: set the condition, loss_pct and/or drawdown_pct")
        self.cancels_ns = None if cancels_within_ms is None else int(
            decimal_value("cancels_within_ms", cancels_within_ms, low=Decimal(0)) * 1_000_000)

    def _condition_ts(self, run: RunRecords) -> int | None:
        start = run.equity_start
        for ts, dd, peak in drawdown_series(run.equity):
            pnl_pct = (peak - dd - start) / start * 100 if start else Decimal(0)
            if (self.loss_pct is not None and pnl_pct < -self.loss_pct) or (
                    self.drawdown_pct is not None and peak > 0 and dd / peak * 100 > self.drawdown_pct):
                return ts
        return None

    def check(self, run: RunRecords) -> InvariantResult:
        cond = self._condition_ts(run)
        kills = [r for r in run.audit if r.get("type") == "risk" and r.get("action") == "kill"]
        if cond is None:
            return self.result([], f"condition never met; {len(kills)} kill(s)")
        deadline = cond + self.within_ns
        fired = [r for r in kills if int(r["ts"]) <= deadline]
        if not fired:
            late = f"; the first kill came at {format_ns(int(kills[0]['ts']))}" if kills else ""
            return self.result([Violation(deadline, f"condition met at {format_ns(cond)}, no kill within "
                                                    f"{self.within_ns // 1_000_000} ms{late}")], "kill missing")
        violations = []
        if self.cancels_ns is not None:
            done = [r for r in run.audit if r.get("type") == "risk" and r.get("action") == "kill_cancels_done"
                    and int(r["ts"]) >= int(fired[0]["ts"])]
            if not done or int(done[0].get("cancel_ack_ns", 0)) > self.cancels_ns:
                violations.append(Violation(int(fired[0]["ts"]) + self.cancels_ns, "the kill's cancels were not "
                                            f"acknowledged within {self.cancels_ns // 1_000_000} ms"))
        return self.result(violations, f"condition at {format_ns(cond)}, kill at {format_ns(int(fired[0]['ts']))} "
                                       f"({(int(fired[0]['ts']) - cond) / 1e6:.1f} ms)")


BUILTIN_INVARIANTS: dict[str, type] = {
    "max_drawdown": MaxDrawdown,
    "max_position": MaxPosition,
    "max_exposure": MaxExposure,
    "no_orphan_orders": NoOrphanOrders,
    "ledger_reconciles": LedgerReconciles,
    "pnl_bounded": PnlBounded,
    "no_liquidation": NoLiquidation,
    "no_order_while_down": NoOrderWhileDown,
    "cancel_on_disconnect_within": CancelOnDisconnectWithin,
    "no_ban": NoBan,
    "kill_switch_within": KillSwitchWithin,
}

PLANNED_INVARIANTS: dict[str, str] = {}


def run_figures(run: RunRecords) -> dict[str, Any]:
    """Key figures of a run: PnL and max drawdown (exact decimal strings, quote units), max
    drawdown in % of the peak, fill ratio (filled / ordered quantity over sent orders; a
    statistic, float), order and fill counts."""
    dd = drawdown_series(run.equity)
    worst = max(dd, key=lambda r: r[1], default=None)
    ordered = filled = Decimal(0)
    for o in run.orders:
        if o["type"] == "parent":
            continue
        ordered += _dec(o["qty"], "orders.parquet qty")
        filled += _dec(o["filled_qty"], "orders.parquet filled_qty")
    return {
        "pnl": str(run.equity_end - run.equity_start),
        "max_drawdown": str(worst[1]) if worst else "0",
        "max_drawdown_pct": float(worst[1] / worst[2] * 100) if worst and worst[2] > 0 else 0.0,
        "fill_ratio": float(filled / ordered) if ordered > 0 else None,
        "orders": int(run.summary["orders"]),
        "fills": int(run.summary["fills"]),
    }


def cost_of_disaster(cell: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """Perturbed minus unperturbed figures: PnL and drawdown (decimal strings), fill ratio."""
    ratio = None
    if cell.get("fill_ratio") is not None and base.get("fill_ratio") is not None:
        ratio = cell["fill_ratio"] - base["fill_ratio"]
    return {
        "pnl": str(Decimal(cell["pnl"]) - Decimal(base["pnl"])),
        "max_drawdown": str(Decimal(cell["max_drawdown"]) - Decimal(base["max_drawdown"])),
        "fill_ratio": ratio,
        "fills": cell["fills"] - base["fills"],
    }
