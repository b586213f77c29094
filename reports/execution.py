"""Execution algorithms and routing in the report: schedule vs executed per parent, and
per-venue routing quality (README "Execution algorithms and smart order routing").

Why from the audit log: the algorithms (engine/execution) write their planned schedule
(`algo_schedule` records: times in ns, cumulative target quantities, one record per plan or
re-plan) and the router its decisions (`route` records: splits with reasons, the liquidity
each venue offered) into the run's hash-chained audit log, so the report judges exactly what
was decided, in any mode, with no extra output file. Fills come from fills.parquet.

Definitions:
- schedule checkpoint k of a parent: the k-th time of the plan in force (a re-plan replaces
  the rest of the previous plan from its own time on); `target` is the cumulative quantity due
  from that time on; `executed` the cumulative filled quantity just before the next checkpoint
  (or the parent's last fill), i.e. what the slice achieved in its window; `behind` = target -
  executed (positive: behind schedule).
- per venue (routed parents only): `share_routed` = quantity the router sent there / all it
  sent; `share_available` = liquidity the venue displayed within the decision's limit (capped
  by its room) / all venues' (summed over decisions); `fill_ratio` = filled / sent of the
  routed children there; effective spread and markouts are the venue's fills' (by_venue).
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from engine.errors import DataError

MAX_SCHEDULE_PLOTS = 6


def read_decisions(audit_path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(algo_schedule records, route records) of an audit log; ([], []) without one.

    Only lines naming one of those actions are parsed, so a long log reads fast."""
    schedules: list[dict[str, Any]] = []
    routes: list[dict[str, Any]] = []
    if not audit_path.is_file():
        return schedules, routes
    with audit_path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if '"algo_schedule"' not in line and '"route"' not in line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                raise DataError(f"{audit_path}:{line_no}: not JSON") from None
            if record.get("action") == "algo_schedule":
                schedules.append(record)
            elif record.get("action") == "route":
                routes.append(record)
    return schedules, routes


def _parent_fills(fills_path: Path) -> dict[str, tuple[np.ndarray, list[Decimal]]]:
    """parent id -> (fill ts ascending, cumulative filled qty as Decimals)."""
    if not fills_path.is_file():
        return {}
    table = pq.read_table(fills_path, columns=["ts", "parent_id", "qty", "client_id", "venue"]).to_pylist()
    per: dict[str, list[tuple[int, Decimal]]] = {}
    for row in table:
        if row["parent_id"]:
            per.setdefault(row["parent_id"], []).append((int(row["ts"]), Decimal(row["qty"])))
    out = {}
    for parent, rows in per.items():
        rows.sort(key=lambda r: r[0])
        cum, total = [], Decimal(0)
        for _, qty in rows:
            total += qty
            cum.append(total)
        out[parent] = (np.array([r[0] for r in rows], dtype=np.int64), cum)
    return out


def _text(value: Decimal) -> str:
    """A quantity as plain text ('0' rather than '0E-8'; no exponent)."""
    return "0" if value == 0 else format(value.normalize(), "f")


def _executed_before(fills: tuple[np.ndarray, list[Decimal]] | None, ts: int, inclusive: bool = False) -> Decimal:
    if fills is None or not len(fills[0]):
        return Decimal(0)
    i = int(np.searchsorted(fills[0], ts, side="right" if inclusive else "left"))
    return fills[1][i - 1] if i > 0 else Decimal(0)


def schedule_vs_executed(run_dir: Path) -> dict[str, Any]:
    """Per parent: the plan(s) in force and the executed quantity at each checkpoint."""
    schedules, _ = read_decisions(run_dir / "audit.jsonl")
    fills = _parent_fills(run_dir / "fills.parquet")
    by_parent: dict[str, list[dict[str, Any]]] = {}
    for record in schedules:
        by_parent.setdefault(record["parent_id"], []).append(record)
    parents = []
    for parent_id, plans in by_parent.items():
        plans.sort(key=lambda r: (r["ts"], r["seq"]))
        steps: list[tuple[int, Decimal]] = []
        for k, plan in enumerate(plans):
            valid_until = plans[k + 1]["ts"] if k + 1 < len(plans) else None
            for t, q in zip(plan["times"], plan["target"], strict=True):
                if valid_until is None or t < valid_until:
                    steps.append((int(t), Decimal(q)))
        pf = fills.get(parent_id)
        last_fill = int(pf[0][-1]) if pf is not None and len(pf[0]) else None
        rows = []
        for k, (t, target) in enumerate(steps):
            window_end = steps[k + 1][0] if k + 1 < len(steps) else None
            if window_end is None:
                executed = pf[1][-1] if pf is not None and len(pf[1]) else Decimal(0)
            else:
                executed = _executed_before(pf, window_end)
            rows.append({"ts": t, "target": _text(target), "executed": _text(executed),
                         "behind": _text(target - executed)})
        final = plans[-1]
        parents.append({
            "parent_id": parent_id, "algo": final.get("algo"), "instrument": final.get("instrument"),
            "side": final.get("side"), "plans": len(plans), "checkpoints": rows,
            "max_behind": _text(max((Decimal(r["behind"]) for r in rows), default=Decimal(0))),
            "executed": _text(pf[1][-1]) if pf is not None and len(pf[1]) else "0",
            "last_fill_ts": last_fill,
        })
    return {"count": len(parents), "parents": parents}


def routing_quality(run_dir: Path, by_venue: dict[str, Any] | None = None) -> dict[str, Any]:
    """Per venue: share routed vs share of available liquidity, fill ratio, spreads, markouts."""
    _, routes = read_decisions(run_dir / "audit.jsonl")
    if not routes:
        return {"decisions": 0, "venues": {}}
    sent: dict[str, Decimal] = {}
    available: dict[str, Decimal] = {}
    child_venue: dict[str, str] = {}
    for record in routes:
        for split in record.get("splits", []):
            sent[split["venue"]] = sent.get(split["venue"], Decimal(0)) + Decimal(split["qty"])
            child_venue[split["client_id"]] = split["venue"]
        for instrument, qty in (record.get("available") or {}).items():
            venue = instrument.split(":", 1)[0]
            available[venue] = available.get(venue, Decimal(0)) + Decimal(qty)
    filled: dict[str, Decimal] = {}
    fills_path = run_dir / "fills.parquet"
    if fills_path.is_file():
        for row in pq.read_table(fills_path, columns=["client_id", "qty"]).to_pylist():
            venue = child_venue.get(row["client_id"])
            if venue is not None:
                filled[venue] = filled.get(venue, Decimal(0)) + Decimal(row["qty"])
    total_sent = sum(sent.values(), Decimal(0))
    total_avail = sum(available.values(), Decimal(0))
    venues = {}
    for venue in sorted(set(sent) | set(available)):
        extra = (by_venue or {}).get(venue, {})
        venues[venue] = {
            "sent": _text(sent.get(venue, Decimal(0))),
            "filled": _text(filled.get(venue, Decimal(0))),
            "share_routed": float(sent.get(venue, Decimal(0)) / total_sent) if total_sent else None,
            "share_available": float(available.get(venue, Decimal(0)) / total_avail) if total_avail else None,
            "fill_ratio": float(filled.get(venue, Decimal(0)) / sent[venue]) if sent.get(venue) else None,
            "effective_spread_bps": extra.get("effective_spread_bps"),
            "markout_bps": extra.get("markout_bps"),
        }
    return {"decisions": len(routes), "venues": venues}


def schedule_figures(section: dict[str, Any], fills_dir: Path) -> list[tuple[str, str]]:
    """(parent id, inline SVG) per parent, up to MAX_SCHEDULE_PLOTS: target (step, dashed)
    against executed (cumulative fills) over time."""
    from reports import plots

    fills = _parent_fills(fills_dir / "fills.parquet")
    out = []
    for parent in section["parents"][:MAX_SCHEDULE_PLOTS]:
        rows = parent["checkpoints"]
        if not rows:
            continue
        fig, ax = plots.plt.subplots(figsize=(7.0, 2.6))
        t0 = rows[0]["ts"]
        xs = [(r["ts"] - t0) / 1e9 for r in rows]
        ax.step(xs, [float(r["target"]) for r in rows], where="post", linestyle="--", label="schedule (target)")
        pf = fills.get(parent["parent_id"])
        if pf is not None and len(pf[0]):
            fx = [0.0] + [(int(t) - t0) / 1e9 for t in pf[0]]
            fy = [0.0] + [float(q) for q in pf[1]]
            ax.step(fx, fy, where="post", label="executed")
        ax.set_xlabel("seconds since start")
        ax.set_ylabel("cumulative qty")
        ax.set_title(f"{parent['parent_id']} ({parent['algo']}, {parent['side']} {parent['instrument']})")
        ax.legend(loc="lower right")
        out.append((parent["parent_id"], plots._svg(fig, f"schedule-{len(out)}")))
    return out
