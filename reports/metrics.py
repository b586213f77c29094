"""Execution-quality metrics (TCA) computed from a loaded run, vectorised with numpy.

Every formula is written out in docs/report.md. Conventions used throughout:

* ``s`` is the side sign: +1 for a buy, -1 for a sell.
* A **cost is positive** for buys and sells alike, in every figure (paying up on a buy or
  selling low is a positive cost; earning the spread as a maker is a negative cost; a mid
  moving against a fill after it is a positive price impact).
* Mids are ``(bid + ask) / 2`` from bbo.parquet. At a decision time or a horizon the mid is
  taken **as of** that local time (last row with ``ts <= t``); at one of our own events
  (ack, fill, done) it is the mid **in force before** it (last row with ``ts < t``),
  because a row with the very same stamp may be the book's reaction to that event,
  delivered in the same message (``numpy.searchsorted`` with side "right" / "left").
* Averages in bps are weighted by notional (``price * qty``) unless said otherwise.
* Percentiles use the nearest-rank definition (value of rank ``ceil(q/100 * n)`` in the
  sorted sample), so every reported percentile is an observed value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from reports.format import as_decimal, duration
from reports.rundir import NA_TS, STATUS_CODE, RunData

#: Markout horizons (label, nanoseconds). Labels are summary.json keys: keep them stable.
HORIZONS: tuple[tuple[str, int], ...] = (
    ("100ms", 100_000_000),
    ("1s", 1_000_000_000),
    ("5s", 5_000_000_000),
    ("30s", 30_000_000_000),
    ("60s", 60_000_000_000),
    ("5min", 300_000_000_000),
)
PERCENTILES: tuple[tuple[str, float], ...] = (
    ("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99_9", 99.9),
)
#: Candidate Sharpe/Sortino sampling intervals, largest first; the largest that gives at
#: least MIN_PERIODS periods over the run is used (1 s otherwise).
SHARPE_INTERVALS_NS: tuple[int, ...] = (86_400 * 10**9, 3_600 * 10**9, 60 * 10**9, 10**9)
MIN_PERIODS = 30
#: Annualised Sharpe/Sortino are reported only from at least MIN_PERIODS returns over at
#: least MIN_RATIO_SPAN_NS (one day). Why: scaling by sqrt(periods per year) assumes the
#: sample's returns are representative of the whole year, independent and identically
#: distributed (Lo, "The Statistics of Sharpe Ratios", FAJ 2002); a sample shorter than a
#: day holds part of one intraday cycle of volume and volatility, so a 1-hour run would be
#: extrapolated 8,760-fold (59 one-minute returns gave "Sharpe 390").
MIN_RATIO_SPAN_NS = 86_400 * 10**9
RATIO_RULE = f">= {MIN_PERIODS} returns over >= {MIN_RATIO_SPAN_NS / 86_400e9:g} day"
YEAR_NS = int(365 * 86_400 * 10**9)
BPS = 1e4

_CANCELLED = STATUS_CODE["cancelled"]
_FILLED = STATUS_CODE["filled"]
_REJECTED = STATUS_CODE["rejected"]
_EXPIRED = STATUS_CODE["expired"]
_OPEN_STATUSES = (
    STATUS_CODE["pending"], STATUS_CODE["submitted"],
    STATUS_CODE["acknowledged"], STATUS_CODE["partially_filled"],
)


# --------------------------------------------------------------------------- helpers


def asof_mid(run: RunData, instrument: np.ndarray, ts: np.ndarray, before: bool | np.ndarray = False) -> np.ndarray:
    """Mid of each (instrument, ts) as of local time ts (last bbo row with ``row.ts <= ts``),
    or where ``before`` is true (one flag, or one per row) the mid in force before ts (last
    row with ``row.ts < ts``: a row stamped with our own event's time may already be the
    book's reaction to it). NaN before the first quote, for an unknown instrument, for a
    null ts (NA_TS) or when a side was empty."""
    out = np.full(len(ts), np.nan)
    if len(ts) == 0:
        return out
    valid_ts = ts != NA_TS
    strict = np.broadcast_to(np.asarray(before, dtype=bool), ts.shape)
    for code, quote_ts in run.quotes.ts.items():
        for side, flag in (("right", False), ("left", True)):
            rows = np.flatnonzero((instrument == code) & valid_ts & (strict == flag))
            if len(rows) == 0:
                continue
            pos = np.searchsorted(quote_ts, ts[rows], side=side) - 1
            ok = pos >= 0
            out[rows[ok]] = run.quotes.mid[code][pos[ok]]
    return out


def interval_vwap(run: RunData, instrument: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Market VWAP of trades.parquet over [start, end] (inclusive) per row; NaN if none."""
    out = np.full(len(start), np.nan)
    for code, trade_ts in run.trades.ts.items():
        rows = np.flatnonzero(instrument == code)
        if len(rows) == 0:
            continue
        lo = np.searchsorted(trade_ts, start[rows], side="left")
        hi = np.searchsorted(trade_ts, end[rows], side="right")
        cum_pq, cum_q = run.trades.cum_pq[code], run.trades.cum_q[code]
        volume = cum_q[hi] - cum_q[lo]
        ok = volume > 0
        out[rows[ok]] = (cum_pq[hi][ok] - cum_pq[lo][ok]) / volume[ok]
    return out


def percentiles(values: np.ndarray) -> dict[str, Any]:
    """count, p50, p90, p99, p99_9, max (nearest rank); None when there are no values."""
    values = np.asarray(values)
    if values.dtype.kind == "f":
        values = values[np.isfinite(values)]
    result: dict[str, Any] = {"count": int(len(values))}
    if len(values) == 0:
        result.update({name: None for name, _ in PERCENTILES})
        result["max"] = None
        return result
    ordered = np.sort(values)
    n = len(ordered)
    cast = int if values.dtype.kind in "iu" else float
    for name, q in PERCENTILES:
        # nearest rank: the smallest value with at least q % of the values at or below it
        # (rounded first so that 99.9 % of 1000 is rank 999, not 1000 by float error)
        rank = min(max(math.ceil(round(q * n / 100.0, 6)), 1), n)
        result[name] = cast(ordered[rank - 1])
    result["max"] = cast(ordered[-1])
    return result


def wmean(values: np.ndarray, weights: np.ndarray) -> float | None:
    """Weighted mean over finite values; None if nothing is left."""
    ok = np.isfinite(values) & np.isfinite(weights)
    total = weights[ok].sum()
    if not ok.any() or total == 0:
        return None
    return float((values[ok] * weights[ok]).sum() / total)


def group_wmean(values: np.ndarray, weights: np.ndarray, key: np.ndarray, groups: int) -> np.ndarray:
    """Weighted mean of finite values per integer key in [0, groups); NaN if empty."""
    ok = np.isfinite(values) & np.isfinite(weights) & (key >= 0)
    num = np.bincount(key[ok], weights=values[ok] * weights[ok], minlength=groups)
    den = np.bincount(key[ok], weights=weights[ok], minlength=groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def _f(value: float | np.floating | None) -> float | None:
    """JSON-safe float: None for NaN/inf, and never -0.0 (a sign on nothing misleads)."""
    if value is None:
        return None
    value = float(value)
    return value + 0.0 if np.isfinite(value) else None


def _dstr(value: Decimal | None) -> str | None:
    if value is None:
        return None
    text = format(value.normalize(), "f") if value != 0 else "0"
    return text


# --------------------------------------------------------------------------- result


@dataclass
class Metrics:
    """``sections`` go into summary.json; ``series`` feed the plots (not serialised)."""

    sections: dict[str, Any]
    series: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- orders


def _order_masks(run: RunData) -> tuple[np.ndarray, np.ndarray]:
    """(is_parent_row, is_child) over orders.parquet rows."""
    orders = run.orders
    if len(orders) == 0:
        return np.zeros(0, dtype=bool), np.zeros(0, dtype=bool)
    parent = orders.parent_id
    has_parent = pc.and_(pc.is_valid(parent), pc.not_equal(parent, "")).fill_null(False)
    has_parent_np = has_parent.to_numpy(zero_copy_only=False)
    if not has_parent_np.any():
        return np.zeros(len(orders), dtype=bool), has_parent_np
    parent_ids = pc.unique(pc.filter(parent, has_parent))
    is_parent_row = pc.is_in(orders.client_id, value_set=parent_ids).fill_null(False)
    return is_parent_row.to_numpy(zero_copy_only=False), has_parent_np


def _arrival_mid(run: RunData, rows: np.ndarray) -> np.ndarray:
    orders = run.orders
    mid = (orders.arrival_bid[rows] + orders.arrival_ask[rows]) / 2.0
    missing = ~np.isfinite(mid)
    if missing.any():
        mid[missing] = asof_mid(run, orders.instrument[rows][missing], orders.created_ts[rows][missing])
    return mid


def _end_ts(run: RunData, n: int) -> np.ndarray:
    return np.full(n, run.end_ts if run.end_ts is not None else NA_TS, dtype=np.int64)


def order_metrics(run: RunData, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Per-order arrays (docs/report.md, "Per order")."""
    o = run.orders
    s = o.side[rows].astype(np.float64)
    qty = o.qty[rows]
    filled = o.filled_qty[rows]
    avg = o.avg_fill_price[rows]
    has_fill = (filled > 0) & np.isfinite(avg)
    arrival = _arrival_mid(run, rows)
    ack = o.ack_ts[rows]
    start_mid = np.where(ack != NA_TS, asof_mid(run, o.instrument[rows], ack, before=True), np.nan)
    start_mid = np.where(np.isfinite(start_mid), start_mid, arrival)
    done = o.done_ts[rows]
    end = np.where(done != NA_TS, done, _end_ts(run, len(rows)))
    # before our own done event; as of the run's end for an order still open
    end_mid = asof_mid(run, o.instrument[rows], end, before=done != NA_TS)
    avg0 = np.where(has_fill, avg, 0.0)
    delay = np.where(has_fill, s * filled * (start_mid - arrival), 0.0)
    impact = np.where(has_fill, s * filled * (avg0 - start_mid), 0.0)
    opportunity = s * (qty - filled) * (end_mid - arrival)
    opportunity = np.where(qty - filled > 0, opportunity, 0.0)
    fees = o.fees[rows]
    total = delay + impact + opportunity + fees
    paper = qty * arrival
    with np.errstate(invalid="ignore", divide="ignore"):
        arrival_bps = np.where(has_fill, s * (avg - arrival) / arrival * BPS, np.nan)
        vwap_end = np.where(o.last_fill_ts[rows] != NA_TS, np.maximum(end, o.last_fill_ts[rows]), end)
        vwap = interval_vwap(run, o.instrument[rows], o.created_ts[rows], vwap_end)
        vwap_bps = np.where(has_fill, s * (avg - vwap) / vwap * BPS, np.nan)
        fill_ratio = np.where(qty > 0, filled / qty, np.nan)
        total_bps = total / paper * BPS
    created = o.created_ts[rows]
    first = o.first_fill_ts[rows]
    last = o.last_fill_ts[rows]
    return {
        "arrival_mid": arrival,
        "has_fill": has_fill,
        "notional": np.where(has_fill, filled * avg0, 0.0),
        "paper_notional": paper,
        "delay": delay,
        "impact": impact,
        "opportunity": opportunity,
        "fees": fees,
        "shortfall": total,
        "shortfall_bps": total_bps,
        "arrival_bps": arrival_bps,
        "vwap": vwap,
        "vwap_bps": vwap_bps,
        "fill_ratio": fill_ratio,
        "ttff": np.where(first != NA_TS, first - created, NA_TS),
        "ttlf": np.where(last != NA_TS, last - created, NA_TS),
    }


def _shortfall_summary(per: dict[str, np.ndarray], valid: np.ndarray) -> dict[str, Any]:
    comps = {name: float(np.nansum(per[name][valid])) for name in ("delay", "impact", "opportunity", "fees")}
    total = sum(comps.values())
    paper = float(np.nansum(per["paper_notional"][valid]))
    result: dict[str, Any] = {"count": int(valid.sum()), "paper_notional": paper, "total": total, **comps}
    result["total_bps"] = _f(total / paper * BPS) if paper else None
    for name in ("delay", "impact", "opportunity", "fees"):
        result[f"{name}_bps"] = _f(comps[name] / paper * BPS) if paper else None
    return result


def parent_metrics(run: RunData, is_parent_row: np.ndarray, is_child: np.ndarray) -> tuple[dict[str, np.ndarray], list[str]]:
    """Per-parent arrays: children grouped by parent_id (docs/report.md, "Per parent order")."""
    o = run.orders
    child_rows = np.flatnonzero(is_child)
    if len(child_rows) == 0:
        return {}, []
    encoded = pc.take(o.parent_id, pa.array(child_rows)).dictionary_encode()
    parent_names = np.asarray(encoded.dictionary.to_pylist(), dtype=object)
    code = encoded.indices.to_numpy().astype(np.int64)
    n = len(parent_names)
    # children ordered by (parent, created_ts) to find each parent's first child
    order = np.lexsort((o.created_ts[child_rows], code))
    sorted_rows = child_rows[order]
    sorted_code = code[order]
    starts = np.concatenate(([0], np.flatnonzero(np.diff(sorted_code)) + 1))
    first_child = sorted_rows[starts]
    first_child_arrival = _arrival_mid(run, first_child)

    filled = np.bincount(code, weights=o.filled_qty[child_rows], minlength=n)
    avg = o.avg_fill_price[child_rows]
    fill_notional = np.bincount(code, weights=np.where(np.isfinite(avg), avg, 0.0) * o.filled_qty[child_rows], minlength=n)
    fees = np.bincount(code, weights=o.fees[child_rows], minlength=n)
    child_qty_sum = np.bincount(code, weights=o.qty[child_rows], minlength=n)

    def reduce_ts(values: np.ndarray, fn: Any, fill: int) -> np.ndarray:
        vals = values[sorted_rows]
        vals = np.where(vals == NA_TS, fill, vals)
        out = fn.reduceat(vals, starts)
        return np.where(out == fill, NA_TS, out)

    big = np.iinfo(np.int64).max
    first_fill = reduce_ts(o.first_fill_ts, np.minimum, big)
    last_fill = reduce_ts(o.last_fill_ts, np.maximum, np.iinfo(np.int64).min + 1)
    last_done = reduce_ts(o.done_ts, np.maximum, np.iinfo(np.int64).min + 1)
    first_created = o.created_ts[first_child]

    # the parent's own row, when the runner wrote one
    parent_row = pc.index_in(encoded.dictionary, value_set=o.client_id).fill_null(-1).to_numpy().astype(np.int64)
    has_row = parent_row >= 0
    pr = np.where(has_row, parent_row, 0)

    side = np.where(has_row, o.side[pr], o.side[first_child]).astype(np.float64)
    instrument = o.instrument[first_child]
    decision_ts = np.where(has_row, o.created_ts[pr], first_created)
    decision_mid = first_child_arrival.copy()
    if has_row.any():
        decision_mid[has_row] = _arrival_mid(run, parent_row[has_row])
        bad = has_row & ~np.isfinite(decision_mid)
        decision_mid[bad] = first_child_arrival[bad]
    target = np.where(has_row, o.qty[pr], np.nan)
    parent_done = np.where(has_row, o.done_ts[pr], NA_TS)
    own_end = np.where(parent_done != NA_TS, parent_done, last_done)
    end = np.where(own_end != NA_TS, own_end, _end_ts(run, n))
    end_mid = asof_mid(run, instrument, end, before=own_end != NA_TS)
    with np.errstate(invalid="ignore", divide="ignore"):
        avg_price = np.where(filled > 0, fill_notional / np.where(filled > 0, filled, 1), np.nan)
        has_fill = filled > 0
        delay = np.where(has_fill, side * filled * (first_child_arrival - decision_mid), 0.0)
        impact = np.where(has_fill, side * filled * (avg_price - first_child_arrival), 0.0)
        unfilled = target - filled
        opportunity = np.where(has_row, np.where(unfilled > 0, side * unfilled * (end_mid - decision_mid), 0.0), np.nan)
        total = delay + impact + np.nan_to_num(opportunity) + fees
        paper = np.where(has_row, target, filled) * decision_mid
        vwap_end = np.where(last_fill != NA_TS, np.maximum(end, last_fill), end)
        vwap = interval_vwap(run, instrument, decision_ts, vwap_end)
        arrival_bps = np.where(has_fill, side * (avg_price - decision_mid) / decision_mid * BPS, np.nan)
        vwap_bps = np.where(has_fill, side * (avg_price - vwap) / vwap * BPS, np.nan)
        fill_ratio = np.where(has_row & (target > 0), filled / target, np.nan)
    notes = []
    if (~has_row).any():
        notes.append(
            f"{int((~has_row).sum())} parent id(s) have no row of their own in orders.parquet: "
            "their target quantity is unknown, so opportunity cost and fill ratio are not computed "
            "and the decision price is the first child's arrival mid."
        )
    return {
        "parent_id": parent_names,
        "instrument": instrument,
        "side": side,
        "children": np.bincount(code, minlength=n),
        "target": target,
        "child_qty": child_qty_sum,
        "filled": filled,
        "avg_price": avg_price,
        "decision_mid": decision_mid,
        "has_fill": has_fill,
        "notional": np.where(has_fill, fill_notional, 0.0),
        "paper_notional": paper,
        "delay": delay,
        "impact": impact,
        "opportunity": opportunity,
        "fees": fees,
        "shortfall": total,
        "shortfall_bps": np.where(paper > 0, total / np.where(paper > 0, paper, 1) * BPS, np.nan),
        "arrival_bps": arrival_bps,
        "vwap_bps": vwap_bps,
        "fill_ratio": fill_ratio,
        "ttff": np.where(first_fill != NA_TS, first_fill - decision_ts, NA_TS),
        "ttlf": np.where(last_fill != NA_TS, last_fill - decision_ts, NA_TS),
    }, notes


# --------------------------------------------------------------------------- fills


def fill_metrics(run: RunData) -> dict[str, Any]:
    """Per-fill effective spread and markouts (arrays, bps, positive = cost to us).

    ``mid`` is m_t, the mid in force *before* the fill (last bbo row with ts < the fill's
    local ts): a row with the fill's own stamp may be the book update that came with the
    fill and already shows its effect. Markouts use m_{t+h} as of ts + h (inclusive)."""
    f = run.fills
    s = f.side.astype(np.float64)
    mid = asof_mid(run, f.instrument, f.ts, before=True)
    notional = f.price * f.qty
    with np.errstate(invalid="ignore", divide="ignore"):
        eff_bps = 2.0 * s * (f.price - mid) / mid * BPS
    markouts = {}
    for label, horizon in HORIZONS:
        t = f.ts + horizon
        later = asof_mid(run, f.instrument, t)
        if run.end_ts is not None:
            later[t > run.end_ts] = np.nan
        with np.errstate(invalid="ignore", divide="ignore"):
            markouts[label] = s * (f.price - later) / mid * BPS
    return {"mid": mid, "notional": notional, "eff_bps": eff_bps, "markout_bps": markouts}


def _spread_blocks(eff: np.ndarray, markouts: dict[str, np.ndarray], weights: np.ndarray,
                   masks: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """Notional-weighted spread/markout figures for several (overlapping) fill subsets.

    Every figure is a cost to us (positive = hurts). Per horizon h, over the fills that
    have both a pre-fill mid and a mid at t + h:
    realized spread = 2 x markout, price impact = 2 s (m_t - m_{t+h}) / m_t (the mid moving
    against the fill), and effective spread over the same fills
    (``effective_spread_horizon_bps``) + price impact = realized spread, exactly.

    One matrix product per horizon computes every subset at once (a million fills x a
    handful of subsets), instead of one pass per subset."""
    names = list(masks)
    groups = np.vstack([masks[name] for name in names]).astype(np.float64) if len(weights) else np.zeros((len(names), 0))

    def ratio(num: np.ndarray, den: np.ndarray) -> list[float | None]:
        return [_f(a / b) if b > 0 else None for a, b in zip(num, den, strict=True)]

    eff_ok = np.isfinite(eff) & np.isfinite(weights)
    w_eff = np.where(eff_ok, weights, 0.0)
    eff_mean = ratio(groups @ (w_eff * np.where(eff_ok, eff, 0.0)), groups @ w_eff)
    blocks: dict[str, dict[str, Any]] = {}
    counts = groups.sum(axis=1)
    notionals = groups @ np.where(np.isfinite(weights), weights, 0.0)
    for k, name in enumerate(names):
        blocks[name] = {
            "fills": int(counts[k]),
            "notional": float(notionals[k]),
            "effective_spread_bps": eff_mean[k],
            "markout_bps": {},
            "effective_spread_horizon_bps": {},
            "realized_spread_bps": {},
            "price_impact_bps": {},
        }
    for label, _ in HORIZONS:
        mk = markouts[label]
        both = eff_ok & np.isfinite(mk)
        wb = np.where(both, weights, 0.0)
        den = groups @ wb
        mk_mean = ratio(groups @ (wb * np.where(both, mk, 0.0)), den)
        eff_same = ratio(groups @ (wb * np.where(both, eff, 0.0)), den)
        for k, name in enumerate(names):
            block = blocks[name]
            block["markout_bps"][label] = mk_mean[k]
            realized = None if mk_mean[k] is None else 2.0 * mk_mean[k]
            block["effective_spread_horizon_bps"][label] = eff_same[k]
            block["realized_spread_bps"][label] = realized
            block["price_impact_bps"][label] = (
                None if realized is None or eff_same[k] is None else _f(realized - eff_same[k])
            )
    return blocks


# --------------------------------------------------------------------------- pnl


def _choose_interval(duration_ns: int) -> int:
    for interval in SHARPE_INTERVALS_NS:
        if duration_ns // interval >= MIN_PERIODS:
            return interval
    return SHARPE_INTERVALS_NS[-1]


def ratio_rule_reason(periods: int, span_ns: int) -> str | None:
    """Why annualised Sharpe/Sortino are not shown for this sample, or None when they are
    (rule: at least MIN_PERIODS returns over at least MIN_RATIO_SPAN_NS)."""
    if periods >= MIN_PERIODS and span_ns >= MIN_RATIO_SPAN_NS:
        return None
    return f"sample too short: {periods:,} returns over {duration(span_ns)}; annualised ratios need {RATIO_RULE}"


def _ratios(ts: np.ndarray, equity: np.ndarray, start: int, end: int) -> dict[str, Any]:
    """Sharpe/Sortino section keys (docs/report.md, "PnL") of an equity curve (`equity` at
    local times `ts`): sampling, the figures or the reason."""
    span = max(end - start, 0)
    interval = _choose_interval(span)
    grid = np.arange(start, end + 1, interval, dtype=np.int64)
    pos = np.searchsorted(ts, grid, side="right") - 1
    sampled = np.where(pos >= 0, equity[np.maximum(pos, 0)], equity[0])
    base = equity[0]
    out: dict[str, Any] = {"sampling_interval_ns": interval, "span_ns": int(span), "periods": max(len(sampled) - 1, 0)}
    if not (base and np.isfinite(base) and base > 0):
        out["ratios_reason"] = "starting equity is not positive: returns over it are undefined"
        return out
    reason = ratio_rule_reason(out["periods"], span)
    if reason is not None:
        out["ratios_reason"] = reason
        return out
    returns = np.diff(sampled) / base
    scale = np.sqrt(YEAR_NS / interval)
    std = returns.std(ddof=1)
    mean = returns.mean()
    downside = np.sqrt(np.mean(np.minimum(returns, 0.0) ** 2))
    out["sharpe"] = _f(mean / std * scale) if std > 0 else None
    out["sortino"] = _f(mean / downside * scale) if downside > 0 else None
    out["ratios_reason"] = (None if std > 0 and downside > 0 else
                            "equity never changed: no ratio" if std == 0 else
                            "no losing period: Sortino's downside deviation is 0")
    return out


def pnl_metrics(run: RunData, notes: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    run_pnl = (run.summary.get("run") or {}).get("pnl") or {}
    fees_paid = run.fills.fees_exact
    rebates = run.fills.rebates_exact
    turnover = float((run.fills.price * run.fills.qty).sum())
    section: dict[str, Any] = {
        "currency": run.equity.quote_asset if run.equity is not None and run.equity.quote_asset else None,
        "realized": None, "unrealized": None, "fees_net": None,
        "fees_paid": _dstr(fees_paid), "rebates": _dstr(rebates),
        "equity_start": None, "equity_end": None, "net": None, "funding": None, "opening_unrealized": None,
        "equity_change": None, "inventory_revaluation": None,
        "max_drawdown": None, "max_drawdown_pct": None, "max_drawdown_ts": None,
        "turnover": turnover, "turnover_ratio": None,
        "sampling_interval_ns": None, "periods": 0, "span_ns": None, "sharpe": None, "sortino": None,
        "ratios_reason": "no equity samples", "source": None,
    }
    series: dict[str, Any] = {}
    from reports.derivatives import funding_received

    funding = funding_received(run.run_dir, run.instrument_specs)  # contracts: PnL apart from realized
    if funding is not None:
        section["funding"] = _dstr(sum(funding[1], Decimal(0)))
    if run.equity is not None:
        eq = run.equity
        # the positions the run started with (a resumed session's): the first sample's
        # unrealized PnL, unless a fill came first (then it is this run's own trading: a
        # contract run samples equity only once its account can be valued)
        traded_first = bool(len(run.fills.ts)) and len(eq.ts) and int(run.fills.ts.min()) <= int(eq.ts[0])
        opening_text = "0" if traded_first else eq.first_unrealized
        section.update(
            realized=_dstr(as_decimal(eq.last["realized_pnl"])),
            unrealized=_dstr(as_decimal(eq.last["unrealized_pnl"])),
            fees_net=_dstr(as_decimal(eq.last["fees"])),
            equity_start=_dstr(as_decimal(eq.first_equity)),
            equity_end=_dstr(as_decimal(eq.last["equity"])),
            opening_unrealized=_dstr(as_decimal(opening_text)),
            source="equity.parquet",
        )
        # the trading's equity: starting equity + realized + unrealized - fees - the opening
        # unrealized, i.e. the account's equity without the revaluation of what it held at
        # the start (an idle session's curve is flat, a resumed one's too: docs/report.md "PnL")
        curve = (float(eq.equity[0]) + eq.realized + eq.unrealized - eq.fees - float(opening_text)
                 if len(eq.ts) else eq.equity)
        if funding is not None and len(funding[0]) and len(eq.ts):  # funding received up to each sample
            paid = np.concatenate(([0.0], np.cumsum([float(a) for a in funding[1]])))
            curve = curve + paid[np.searchsorted(funding[0], eq.ts, side="right")]
        running_max = np.fmax.accumulate(curve)
        drawdown = curve - running_max  # <= 0
        i = int(np.nanargmin(drawdown)) if np.isfinite(drawdown).any() else 0
        section["max_drawdown"] = _f(-drawdown[i]) if len(drawdown) else None
        with np.errstate(invalid="ignore", divide="ignore"):
            dd_pct = np.where(running_max > 0, -drawdown / running_max * 100.0, np.nan)
        section["max_drawdown_pct"] = _f(np.nanmax(dd_pct)) if np.isfinite(dd_pct).any() else None
        section["max_drawdown_ts"] = int(eq.ts[i]) if len(drawdown) and drawdown[i] < 0 else None
        series.update(ts=eq.ts, equity=curve, drawdown=drawdown, realized=eq.realized, fees=eq.fees)
        start = run.start_ts if run.start_ts is not None else int(eq.ts[0])
        end = run.end_ts if run.end_ts is not None else int(eq.ts[-1])
        section.update(_ratios(eq.ts, curve, start, end))
    if run_pnl and all(as_decimal(run_pnl.get(k)) is not None for k in ("realized", "unrealized", "fees", "equity_start", "equity_end")):
        if run.equity is None:
            section.update(
                realized=_dstr(as_decimal(run_pnl["realized"])), unrealized=_dstr(as_decimal(run_pnl["unrealized"])),
                fees_net=_dstr(as_decimal(run_pnl["fees"])), equity_start=_dstr(as_decimal(run_pnl["equity_start"])),
                equity_end=_dstr(as_decimal(run_pnl["equity_end"])), source="summary.json run.pnl",
            )
        elif as_decimal(run_pnl["equity_end"]) != as_decimal(run.equity.last["equity"]):
            notes.append(
                f"summary.json run.pnl equity_end {run_pnl['equity_end']} differs from the last equity.parquet "
                f"row {run.equity.last['equity']}: the report uses equity.parquet (same source as its curves)."
            )
    start_dec, end_dec = as_decimal(section["equity_start"]), as_decimal(section["equity_end"])
    parts = [as_decimal(section[k]) for k in ("realized", "unrealized", "fees_net")]
    if None not in parts:  # net PnL of the trading since the start (exact): contracts add the funding received,
        # less the unrealized PnL of the positions the run started with: a resumed session
        # restores its predecessor's position at that session's cost basis (modes/live/resume.py),
        # whose unrealized PnL at the first mark that session already reported
        opening = as_decimal(section["opening_unrealized"]) or 0
        section["net"] = _dstr(parts[0] + parts[1] - parts[2] + (as_decimal(section["funding"]) or 0) - opening)
    if start_dec is not None and end_dec is not None:
        change = end_dec - start_dec
        section["equity_change"] = _dstr(change)
        if section["net"] is None:
            section["net"] = _dstr(change)
            notes.append("no realized/unrealized/fees figures: net PnL is the equity change, which includes the "
                         "revaluation of the starting inventory.")
        else:
            section["inventory_revaluation"] = _dstr(change - as_decimal(section["net"]))
        if start_dec > 0:
            section["turnover_ratio"] = _f(turnover / float(start_dec))
    return section, series


def inventory_metrics(run: RunData) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per instrument: final position (signed), max_long and max_short (magnitudes >= 0,
    never -0.0; 0 when the position never went long / short), in base units."""
    section: dict[str, Any] = {}
    series: dict[str, Any] = {}
    if run.inventory is None:
        return section, series
    for code, ts in run.inventory.ts.items():
        pos = run.inventory.position[code]
        name = run.instruments[code]
        # max_long and max_short are magnitudes (>= 0, base units): 0 when never long/short
        section[name] = {
            "final": _f(pos[-1]) if len(pos) else None,
            "max_long": _f(np.maximum(np.nanmax(pos), 0.0)) if len(pos) else None,
            "max_short": _f(np.maximum(-np.nanmin(pos), 0.0)) if len(pos) else None,
        }
        series[name] = (ts, pos)
    return section, series


# --------------------------------------------------------------------------- main


def compute(run: RunData) -> Metrics:
    notes: list[str] = []
    o, f = run.orders, run.fills
    is_parent_row, is_child = _order_masks(run)
    order_rows = np.flatnonzero(~is_parent_row)
    per_order = order_metrics(run, order_rows)

    status = o.status[order_rows]
    filled_any = o.filled_qty[order_rows] > 0
    by_status = {name: int((status == code).sum()) for name, code in STATUS_CODE.items()}
    total_qty = float(o.qty[order_rows].sum())
    total_filled = float(o.filled_qty[order_rows].sum())
    # What became of each order. An IOC/FOK or market order never rests: its unfilled
    # remainder is "expired" (ccxt's word; Binance reports EXPIRED), not a cancel, whatever
    # status the venue gave it; only orders that could rest are cancelled.
    never_rests = o.is_market[order_rows] | o.is_ioc[order_rows]
    remainder = never_rests & ((status == _CANCELLED) | (status == _EXPIRED))
    cancelled = (status == _CANCELLED) & ~never_rests
    outcome = {
        "filled": status == _FILLED,
        "partially_filled_then_cancelled": cancelled & filled_any,
        "cancelled_unfilled": cancelled & ~filled_any,
        "expired": (status == _EXPIRED) | remainder,
        "rejected": status == _REJECTED,
        "open_at_end": np.isin(status, _OPEN_STATUSES),
    }
    orders_section = {
        "count": int(len(order_rows)),
        "parent_rows": int(is_parent_row.sum()),
        "by_status": by_status,
        "outcomes": {name: int(mask.sum()) for name, mask in outcome.items()},
        "unfilled_remainders": int(remainder.sum()),
        "with_fills": int(filled_any.sum()),
        "cancel_to_fill_ratio": _f(int(cancelled.sum()) / int(filled_any.sum())) if filled_any.any() else None,
        "fill_ratio": _f(total_filled / total_qty) if total_qty > 0 else None,
        "fill_ratio_mean": _f(np.nanmean(per_order["fill_ratio"])) if np.isfinite(per_order["fill_ratio"]).any() else None,
        "time_to_first_fill_ns": percentiles(per_order["ttff"][per_order["ttff"] != NA_TS]),
        "time_to_last_fill_ns": percentiles(per_order["ttlf"][per_order["ttlf"] != NA_TS]),
    }

    filled_mask = per_order["has_fill"]
    weights = per_order["notional"]
    arrival_valid = np.isfinite(per_order["arrival_mid"]) & (per_order["arrival_mid"] > 0)
    missing_arrival = int((~arrival_valid).sum())
    if missing_arrival:
        notes.append(f"{missing_arrival} order(s) have no arrival mid (no bid/ask at creation): left out of shortfall figures.")
    execution = {
        "arrival_slippage_bps": _f(wmean(per_order["arrival_bps"], np.where(filled_mask, weights, np.nan))),
        "vwap_slippage_bps": _f(wmean(per_order["vwap_bps"], np.where(filled_mask, weights, np.nan))),
        "vwap_orders_without_market_trades": int((filled_mask & ~np.isfinite(per_order["vwap"])).sum()),
        "implementation_shortfall": _shortfall_summary(per_order, arrival_valid & np.isfinite(per_order["shortfall"])),
        "arrival_slippage_bps_percentiles": percentiles(per_order["arrival_bps"][filled_mask]),
        "vwap_slippage_bps_percentiles": percentiles(per_order["vwap_bps"][filled_mask]),
    }

    per_parent, parent_notes = parent_metrics(run, is_parent_row, is_child)
    notes.extend(parent_notes)
    parents_section: dict[str, Any] = {"count": 0}
    if per_parent:
        valid = np.isfinite(per_parent["decision_mid"]) & (per_parent["decision_mid"] > 0)
        pw = np.where(per_parent["has_fill"], per_parent["notional"], np.nan)
        target = per_parent["target"]
        known = np.isfinite(target)
        parents_section = {
            "count": int(len(per_parent["parent_id"])),
            "children": int(per_parent["children"].sum()),
            "arrival_slippage_bps": _f(wmean(per_parent["arrival_bps"], pw)),
            "vwap_slippage_bps": _f(wmean(per_parent["vwap_bps"], pw)),
            "fill_ratio": _f(per_parent["filled"][known].sum() / target[known].sum()) if known.any() and target[known].sum() > 0 else None,
            "implementation_shortfall": _shortfall_summary(
                {**per_parent, "opportunity": np.nan_to_num(per_parent["opportunity"])}, valid),
            "time_to_first_fill_ns": percentiles(per_parent["ttff"][per_parent["ttff"] != NA_TS]),
            "time_to_last_fill_ns": percentiles(per_parent["ttlf"][per_parent["ttlf"] != NA_TS]),
        }

    # ---- fills, spreads, markouts
    fm = fill_metrics(run)
    all_fills = np.ones(len(f), dtype=bool)
    no_mid = int((~np.isfinite(fm["mid"])).sum())
    if no_mid:
        notes.append(f"{no_mid} fill(s) had no mid at fill time (no bbo row before them): left out of spread and markout figures.")
    currency = run.equity.quote_asset if run.equity is not None else None
    if currency and len(f.fee_assets) == 1 and f.fee_assets[0] != currency:
        # the fills' fee column is in the quote (a coin fee valued at the fill's price) since
        # COIN-M support; a run directory written before kept an inverse contract's fee in the coin
        notes.append(f"The fills' fee column is in {f.fee_assets[0]}, not the report's currency {currency} "
                     "(a run directory written before fees were valued in the quote): fee totals are in "
                     f"{f.fee_assets[0]}; re-run the backtest for fees in {currency}.")
    if len(f.fee_assets) > 1:
        notes.append(
            f"Fees are charged in several assets ({', '.join(f.fee_assets)}): fee totals add them 1:1 "
            "(no FX conversion yet)."
        )
    fills_section = {
        "count": int(len(f)),
        "buys": int((f.side > 0).sum()),
        "sells": int((f.side < 0).sum()),
        "maker": int(f.maker.sum()),
        "taker": int((~f.maker).sum()),
        "maker_share": _f(f.maker.mean()) if len(f) else None,
        "notional": float(fm["notional"].sum()),
        "maker_notional_share": _f(fm["notional"][f.maker].sum() / fm["notional"].sum()) if fm["notional"].sum() > 0 else None,
        "without_mid": no_mid,
        "effective_spread_bps_percentiles": percentiles(fm["eff_bps"]),
    }
    markouts = {
        "horizons_ns": {label: ns for label, ns in HORIZONS},
        **_spread_blocks(fm["eff_bps"], fm["markout_bps"], fm["notional"], {
            "all": all_fills, "maker": f.maker, "taker": ~f.maker, "buy": f.side > 0, "sell": f.side < 0,
        }),
    }
    if run.end_ts is not None and len(f):
        cut = {label: int((f.ts + h > run.end_ts).sum()) for label, h in HORIZONS}
        if any(cut.values()):
            notes.append(
                "Markouts whose horizon runs past the end of the run are left out: "
                + ", ".join(f"{label}: {n}" for label, n in cut.items() if n) + " fill(s)."
            )

    # ---- queue: orders that rested in the book (never IOC/FOK/market remainders)
    ack = o.ack_ts[order_rows]
    acked = ack != NA_TS
    known_order = f.order >= 0
    maker_rows = f.order[known_order & f.maker]
    first_maker_fill = np.full(len(o), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first_maker_fill, maker_rows, f.ts[known_order & f.maker])
    first_maker_fill = first_maker_fill[order_rows]
    has_maker_fill = first_maker_fill != np.iinfo(np.int64).max
    # a limit order that filled completely on arrival (taker fills only) never rested
    took_all_on_arrival = (status == _FILLED) & ~has_maker_fill
    rested = ~o.is_market[order_rows] & ~o.is_ioc[order_rows] & acked & (status != _REJECTED) & ~took_all_on_arrival
    done = o.done_ts[order_rows]
    end_all = _end_ts(run, len(order_rows))
    leave = np.where(done != NA_TS, done, end_all)
    queue = {
        "resting_orders": int(rested.sum()),
        "time_in_queue_ns": percentiles((leave - ack)[rested & (leave != NA_TS)]),
        "time_to_fill_in_queue_ns": percentiles((first_maker_fill - ack)[rested & has_maker_fill]),
        "time_to_cancel_in_queue_ns": percentiles((done - ack)[rested & cancelled & ~filled_any & (done != NA_TS)]),
        **{name: int((mask & rested).sum()) for name, mask in outcome.items() if name != "rejected"},
    }

    # ---- latency
    created = o.created_ts[order_rows]
    trigger = o.trigger_ts[order_rows]
    cancel_req = o.cancel_req_ts[order_rows]
    submit_ack = (ack - created)[acked]
    cancel_ack = (done - cancel_req)[cancelled & (cancel_req != NA_TS) & (done != NA_TS)]
    tick_order = (created - trigger)[trigger != NA_TS]
    latency = {
        "submit_to_ack_ns": percentiles(submit_ack),
        "cancel_to_ack_ns": percentiles(cancel_ack),
        "tick_to_order_ns": percentiles(tick_order),
    }

    # ---- pnl, inventory
    pnl, pnl_series = pnl_metrics(run, notes)
    inventory, inventory_series = inventory_metrics(run)

    # ---- per venue / per instrument tables
    def breakdown(fill_key: np.ndarray, order_key: np.ndarray, names: list[str], exact_fees: dict[int, Decimal]) -> dict[str, Any]:
        g = len(names)
        table: dict[str, Any] = {}
        if g == 0:
            return table
        fk = np.where(fill_key >= 0, fill_key, g)
        fills_n = np.bincount(fk, minlength=g + 1)[:g]
        maker_n = np.bincount(fk[f.maker], minlength=g + 1)[:g]
        notional = np.bincount(fk, weights=fm["notional"], minlength=g + 1)[:g]
        maker_notional = np.bincount(fk[f.maker], weights=fm["notional"][f.maker], minlength=g + 1)[:g]
        eff = group_wmean(fm["eff_bps"], fm["notional"], fill_key, g)
        mk, mk_maker, mk_taker = {}, {}, {}
        for label, _ in HORIZONS:
            values = fm["markout_bps"][label]
            ok = np.isfinite(values) & np.isfinite(fm["notional"]) & (fill_key >= 0)
            key, w, maker = fill_key[ok], fm["notional"][ok], f.maker[ok]
            wv = w * values[ok]
            for out, sel in ((mk, slice(None)), (mk_maker, maker), (mk_taker, ~maker)):
                num = np.bincount(key[sel], weights=wv[sel], minlength=g)
                den = np.bincount(key[sel], weights=w[sel], minlength=g)
                with np.errstate(invalid="ignore", divide="ignore"):
                    out[label] = np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
        ok_key = np.where(order_key >= 0, order_key, g)
        orders_n = np.bincount(ok_key, minlength=g + 1)[:g]
        qty_sum = np.bincount(ok_key, weights=o.qty[order_rows], minlength=g + 1)[:g]
        filled_sum = np.bincount(ok_key, weights=o.filled_qty[order_rows], minlength=g + 1)[:g]
        arr = group_wmean(per_order["arrival_bps"], np.where(filled_mask, weights, np.nan), order_key, g)
        for i, name in enumerate(names):
            lat = (ack - created)[acked & (order_key == i)]
            table[name] = {
                "fills": int(fills_n[i]),
                "notional": float(notional[i]),
                "notional_share": _f(notional[i] / notional.sum()) if notional.sum() > 0 else None,
                "maker_share": _f(maker_n[i] / fills_n[i]) if fills_n[i] else None,
                "maker_notional_share": _f(maker_notional[i] / notional[i]) if notional[i] > 0 else None,
                "fees": _dstr(exact_fees.get(i, Decimal(0))),
                "effective_spread_bps": _f(eff[i]),
                "markout_bps": {label: _f(mk[label][i]) for label, _ in HORIZONS},
                "markout_bps_maker": {label: _f(mk_maker[label][i]) for label, _ in HORIZONS},
                "markout_bps_taker": {label: _f(mk_taker[label][i]) for label, _ in HORIZONS},
                "orders": int(orders_n[i]),
                "fill_ratio": _f(filled_sum[i] / qty_sum[i]) if qty_sum[i] > 0 else None,
                "arrival_slippage_bps": _f(arr[i]),
                "submit_to_ack_ns": percentiles(lat),
            }
        return table

    by_venue = breakdown(f.venue, o.venue[order_rows], run.venues, f.fees_by_venue)
    by_instrument = breakdown(f.instrument, o.instrument[order_rows], run.instruments, f.fees_by_instrument)

    pnl_headline = {
        "net_pnl": pnl["net"], "realized_pnl": pnl["realized"], "unrealized_pnl": pnl["unrealized"],
        "fees_paid": pnl["fees_paid"], "rebates": pnl["rebates"],
        "inventory_revaluation": pnl["inventory_revaluation"],
        "max_drawdown": pnl["max_drawdown"], "sharpe": pnl["sharpe"], "sortino": pnl["sortino"],
        "turnover": pnl["turnover"],
    }
    headline = {
        **pnl_headline,
        "orders": orders_section["count"],
        "fills": fills_section["count"],
        # dated futures delivered by the venue: no trades, so in none of the fill figures
        "deliveries": run.deliveries,
        "notional": fills_section["notional"],
        "maker_share": fills_section["maker_share"],
        "maker_notional_share": fills_section["maker_notional_share"],
        "fill_ratio": orders_section["fill_ratio"],
        "cancel_to_fill_ratio": orders_section["cancel_to_fill_ratio"],
        "arrival_slippage_bps": execution["arrival_slippage_bps"],
        "vwap_slippage_bps": execution["vwap_slippage_bps"],
        "implementation_shortfall_bps": execution["implementation_shortfall"]["total_bps"],
        "parent_implementation_shortfall_bps": (
            parents_section["implementation_shortfall"]["total_bps"] if parents_section.get("count") else None
        ),
        "effective_spread_bps": markouts["all"]["effective_spread_bps"],
        "markout_1s_bps": markouts["all"]["markout_bps"]["1s"],
        "markout_60s_bps": markouts["all"]["markout_bps"]["60s"],
        "submit_to_ack_p50_ns": latency["submit_to_ack_ns"]["p50"],
        "submit_to_ack_p99_ns": latency["submit_to_ack_ns"]["p99"],
        "tick_to_order_p99_ns": latency["tick_to_order_ns"]["p99"],
    }
    sections = {
        "headline": headline,
        "orders": orders_section,
        "fills": fills_section,
        "execution": execution,
        "parents": parents_section,
        "markouts": markouts,
        "queue": queue,
        "latency": latency,
        "pnl": pnl,
        "inventory": inventory,
        "by_venue": by_venue,
        "by_instrument": by_instrument,
    }
    series = {
        "per_order": per_order,
        "per_parent": per_parent,
        "fill": fm,
        "pnl": pnl_series,
        "inventory": inventory_series,
        "latency": {"submit_to_ack": submit_ack, "cancel_to_ack": cancel_ack, "tick_to_order": tick_order},
    }
    return Metrics(sections=sections, series=series, notes=notes)
