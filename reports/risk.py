"""The report's risk section: refusals by reason, risk-state changes, kill-switch timing.

Why from summary.json's `run.risk`: the session counts every refusal there, including
refused cancels and amends, which leave no trace in orders.parquet (the order is
unchanged). A run directory without it (written before risk reporting) falls back to the
rejected orders' risk reasons in orders.parquet, and says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from engine.types.orders import REASONS, ReasonCode, ReasonSource


def risk_section(run_dir: Path, summary: dict[str, Any]) -> dict[str, Any]:
    """{"source", "state", "state_reason", "refusals" {reason: n}, "refusals_total",
    "meanings" {reason: text}, "kills" [...], "transitions" [...], "approvals" n,
    "rejected_orders" {reason: n} (every rejected order in orders.parquet, any source)}."""
    run = summary.get("run") if isinstance(summary.get("run"), dict) else {}
    risk = run.get("risk") if isinstance(run.get("risk"), dict) else None
    if risk is not None:
        refusals = {str(k): int(v) for k, v in (risk.get("refusals") or {}).items()}
        source = "summary.json run.risk"
        kills = [k for k in risk.get("kills") or [] if isinstance(k, dict)]
        transitions = [t for t in risk.get("transitions") or [] if isinstance(t, dict)]
        state, state_reason = risk.get("state"), risk.get("state_reason")
        approvals = len(risk.get("approvals") or [])
    else:
        refusals = _from_orders(Path(run_dir) / "orders.parquet")
        source = "orders.parquet (rejected orders' risk reasons; refused cancels and amends not counted)"
        kills, transitions, state, state_reason, approvals = [], [], None, None, 0
    rejected = _from_orders(Path(run_dir) / "orders.parquet", risk_only=False)
    meanings = {code: REASONS[ReasonCode(code)].meaning for code in {**refusals, **rejected}
                if code in ReasonCode._value2member_map_}
    return {"source": source, "state": state, "state_reason": state_reason,
            "refusals": _most_first(refusals), "refusals_total": sum(refusals.values()), "meanings": meanings,
            "kills": kills, "transitions": transitions, "approvals": approvals,
            "rejected_orders": _most_first(rejected)}


def _most_first(counts: dict[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _from_orders(path: Path, risk_only: bool = True) -> dict[str, int]:
    """Rejected orders by reason in orders.parquet: risk's reasons only, or (`risk_only`
    False) every source's (filters, the request budget, the venue: the report's "Rejected
    orders by reason", where a refusal that is not risk's is otherwise only a count)."""
    if not path.is_file():
        return {}
    table = pq.read_table(path, columns=["status", "reason"]).to_pylist()
    risk_codes = {code.value for code, reason in REASONS.items() if reason.source == ReasonSource.RISK}
    counts: dict[str, int] = {}
    for row in table:
        if row["status"] == "rejected" and row["reason"] and (row["reason"] in risk_codes or not risk_only):
            counts[row["reason"]] = counts.get(row["reason"], 0) + 1
    return counts
