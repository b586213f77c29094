"""The report's contract section: funding PnL, fees vs funding, margin usage and
liquidation distance over time, liquidation markers (docs/derivatives.md).

Reads the run directory's margin.parquet (one sample per contract per equity sample),
funding.parquet (each settlement), liquidations.parquet and summary.json's
run.derivatives (exact totals per contract, in its settle asset). A run without contracts
has none of these files and the section is left out.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq


def section(run_dir: Path, summary: dict[str, Any]) -> dict[str, Any] | None:
    """Figures of the contract section, or None for a run without contracts."""
    run_dir = Path(run_dir)
    if not (run_dir / "margin.parquet").is_file():
        return None
    per = (summary.get("run") or {}).get("derivatives") or {}
    rows = []
    for inst_id, d in per.items():
        fees, funding = Decimal(d["fees"]), Decimal(d["funding"])
        rows.append({"instrument": inst_id, "asset": d["asset"], "position": d["position"],
                     "realized": d["realized"], "fees": d["fees"], "funding": d["funding"],
                     "funding_payments": d["funding_payments"], "net": str(Decimal(d["realized"]) - fees + funding),
                     # fees vs funding: how much of the carry the trading cost ate (n/a without funding)
                     "fees_over_funding": None if funding == 0 else float(fees / abs(funding)),
                     "liquidations": d["liquidations"], "deliveries": d.get("deliveries", 0),
                     "leverage": d["leverage"], "margin_mode": d["margin_mode"]})
    margin = pq.read_table(run_dir / "margin.parquet").to_pydict()
    liqs = pq.read_table(run_dir / "liquidations.parquet").to_pylist() \
        if (run_dir / "liquidations.parquet").is_file() else []
    ratio = np.asarray(margin["margin_ratio"], dtype=float)
    dist = np.asarray(margin["liquidation_distance_bps"], dtype=float)
    return {"contracts": rows, "liquidations": liqs, "samples": len(margin["ts"]),
            "max_margin_ratio": None if not np.isfinite(ratio).any() else float(np.nanmax(ratio)),
            "min_liquidation_distance_bps": None if not np.isfinite(dist).any() else float(np.nanmin(dist)),
            "series": margin}


def funding_received(run_dir: Path, specs: dict[str, Any] | None) -> tuple[np.ndarray, list[Decimal]] | None:
    """Each funding settlement of the run (funding.parquet) as (exch_ts array, amount
    received in quote units, exact): a linear contract's amount as it is (USDT), an inverse
    one's in the coin times the mark it settled at (as equity values the coin). None for a
    run without contracts. Funding is PnL the wallet received, apart from realized PnL
    (Binance books it as its own income, FUNDING_FEE): the report's net PnL adds it."""
    path = Path(run_dir) / "funding.parquet"
    if not path.is_file():
        return None
    rows = pq.read_table(path).to_pylist()
    inverse = {k for k, s in (specs or {}).items() if isinstance(s, dict) and str(s.get("linear")) == "false"}
    amounts = [Decimal(r["amount"]) * (Decimal(r["mark"]) if r["instrument"] in inverse else 1) for r in rows]
    return np.asarray([int(r["exch_ts"]) for r in rows], dtype=np.int64), amounts


def figure(sec: dict[str, Any]) -> str | None:
    """Margin ratio and liquidation distance over time, liquidations marked."""
    from reports import plots

    s = sec["series"]
    if not s["ts"]:
        return None
    fig, (top, bottom) = plots.plt.subplots(2, 1, figsize=(9, 4.6), sharex=True)
    ts = np.asarray(s["ts"], dtype=np.int64)
    for inst_id in dict.fromkeys(s["instrument"]):
        mine = np.asarray([i == inst_id for i in s["instrument"]])
        x = plots._dates(ts[mine])
        top.plot(x, 100 * np.asarray(s["margin_ratio"], dtype=float)[mine], label=inst_id)
        bottom.plot(x, np.asarray(s["liquidation_distance_bps"], dtype=float)[mine], label=inst_id)
    for liq in sec["liquidations"]:
        x = plots._dates(np.asarray([liq["ts"]], dtype=np.int64))
        for ax in (top, bottom):
            ax.axvline(x[0], color="#c0392b", linestyle="--", linewidth=1)
        top.annotate(liq["reason"], (x[0], 100), color="#c0392b", fontsize=8)
    top.axhline(100, color="#c0392b", linewidth=0.8)
    top.set_ylabel("margin ratio (%)")
    top.set_title("Margin usage (maintenance / margin balance; the venue liquidates at 100 %)")
    bottom.set_ylabel("bps above LP")
    bottom.set_title("Distance of the mark to the liquidation price")
    top.legend(loc="upper left", fontsize=8)
    plots._time_axis(bottom)
    return plots._svg(fig, "derivatives")
