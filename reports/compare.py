"""`tickparity report compare RUN_A RUN_B`: headline differences, printed and as HTML.

Both runs are measured afresh with the same code (nothing is read from a possibly stale
summary.json, and neither run directory is modified), so the comparison never mixes
two versions of a metric.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

from reports import format as fmt
from reports import plots
from reports.metrics import HORIZONS, Metrics, compute
from reports.report import css, environment, write_text_atomic
from reports.rundir import RunData, load_run

#: headline key -> (label, kind, better): kind formats the value; better is "higher",
#: "lower" or None (neither is better, e.g. the number of fills).
HEADLINE: dict[str, tuple[str, str, str | None]] = {
    "net_pnl": ("Net PnL", "money", "higher"),
    "realized_pnl": ("Realized PnL", "money", "higher"),
    "unrealized_pnl": ("Unrealized PnL", "money", None),
    "fees_paid": ("Fees paid", "money", "lower"),
    "rebates": ("Rebates", "money", "higher"),
    "max_drawdown": ("Max drawdown", "num", "lower"),
    "sharpe": ("Sharpe (annualised)", "num", "higher"),
    "sortino": ("Sortino (annualised)", "num", "higher"),
    "turnover": ("Turnover", "num", None),
    "orders": ("Orders", "int", None),
    "fills": ("Fills", "int", None),
    "deliveries": ("Deliveries (dated futures)", "int", None),
    "notional": ("Traded notional", "num", None),
    "maker_share": ("Maker share (by fills)", "pct", None),
    "maker_notional_share": ("Maker share (by notional)", "pct", None),
    "fill_ratio": ("Fill ratio", "pct", "higher"),
    "cancel_to_fill_ratio": ("Cancel-to-fill ratio", "num", "lower"),
    "arrival_slippage_bps": ("Arrival slippage (bps)", "bps", "lower"),
    "vwap_slippage_bps": ("Interval-VWAP slippage (bps)", "bps", "lower"),
    "implementation_shortfall_bps": ("Impl. shortfall, orders (bps)", "bps", "lower"),
    "parent_implementation_shortfall_bps": ("Impl. shortfall, parents (bps)", "bps", "lower"),
    "effective_spread_bps": ("Effective spread (bps)", "bps", "lower"),
    "markout_1s_bps": ("Markout 1 s (bps)", "bps", "lower"),
    "markout_60s_bps": ("Markout 60 s (bps)", "bps", "lower"),
    "submit_to_ack_p50_ns": ("Submit → ack p50", "duration", "lower"),
    "submit_to_ack_p99_ns": ("Submit → ack p99", "duration", "lower"),
    "tick_to_order_p99_ns": ("Tick → order p99", "duration", "lower"),
}


@dataclass
class Row:
    key: str
    label: str
    a: Any
    b: Any
    delta: float | None
    verdict: str  # "better", "worse", "same", "n/a (…)" or ""


@dataclass
class Comparison:
    run_a: Path
    run_b: Path
    rows: list[Row]
    html: Path
    config_diff: list[tuple[str, Any, Any]]

    def text(self) -> str:
        """Plain-text table of the headline figures (what the command prints)."""
        lines = [f"A = {self.run_a}", f"B = {self.run_b}", ""]
        header = ("figure", "A", "B", "B - A", "")
        table = [header] + [(r.label, _show(r.key, r.a), _show(r.key, r.b), _show_delta(r.key, r.delta), r.verdict) for r in self.rows]
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        for k, row in enumerate(table):
            cells = [row[0].ljust(widths[0])] + [row[i].rjust(widths[i]) for i in range(1, 4)] + [row[4]]
            lines.append("  ".join(cells).rstrip())
            if k == 0:
                lines.append("  ".join("-" * w for w in widths[:4]))
        if self.config_diff:
            lines.append("")
            lines.append(f"config differences ({len(self.config_diff)}):")
            for key, va, vb in self.config_diff[:40]:
                lines.append(f"  {key}: {json.dumps(va)} -> {json.dumps(vb)}")
        lines.append("")
        lines.append(f"comparison written to {self.html}")
        return "\n".join(lines)


def _number(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return None


def _show(key: str, value: Any) -> str:
    kind = HEADLINE[key][1]
    if value is None:
        return fmt.DASH
    return {"money": fmt.money, "num": fmt.num, "bps": fmt.bps, "int": fmt.integer, "pct": fmt.pct,
            "duration": fmt.duration}[kind](value)


def _show_delta(key: str, delta: float | None) -> str:
    """B − A as shown: signed, and a plain "0" for a difference that rounds to nothing."""
    if delta is None:
        return fmt.DASH
    kind = HEADLINE[key][1]
    if kind == "duration":
        return "0 ns" if delta == 0 else ("+" if delta > 0 else "-") + fmt.duration(abs(delta))
    if kind == "pct":
        text = fmt.num(delta * 100, 1)
        return "0 pp" if text == "0" else f"{'' if text.startswith('-') else '+'}{text} pp"
    if kind == "int":
        return f"{int(delta):+,}" if int(delta) else "0"
    text = fmt.bps(delta) if kind == "bps" else fmt.num(delta)
    return text if text == "0" or text.startswith("-") else "+" + text


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def config_diff(a: dict[str, Any] | None, b: dict[str, Any] | None) -> list[tuple[str, Any, Any]]:
    fa, fb = _flatten(a or {}), _flatten(b or {})
    return [(k, fa.get(k), fb.get(k)) for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]


def rows(ha: dict[str, Any], hb: dict[str, Any]) -> list[Row]:
    out = []
    for key, (label, kind, better) in HEADLINE.items():
        a, b = ha.get(key), hb.get(key)
        na, nb = _number(a), _number(b)
        delta = nb - na if na is not None and nb is not None else None
        verdict = ""
        if kind == "duration" and delta is not None and 0 in (na, nb):
            # a 0 ns latency is a run that did not model latency (zero-cost profile), not a
            # fast one: calling it "better" would reward the missing model
            verdict = "n/a (0 ns: latency not modelled)"
        elif delta is not None and better is not None:
            if abs(delta) <= 1e-12 * max(abs(na or 0), abs(nb or 0), 1.0):
                verdict = "same"
            else:
                verdict = "better" if (delta > 0) == (better == "higher") else "worse"
        out.append(Row(key, label, a, b, delta, verdict))
    return out


def _overlay_figures(ra: RunData, ma: Metrics, rb: RunData, mb: Metrics) -> dict[str, str | None]:
    svgs: dict[str, str | None] = {}
    rc = plots._RC
    with matplotlib.rc_context(rc):
        import matplotlib.pyplot as plt

        # PnL against elapsed time, so runs over different periods still overlay
        fig, ax = plt.subplots(figsize=(13, 3.2))
        drawn = False
        for label, run, m, color in (("A", ra, ma, plots.SERIES[0]), ("B", rb, mb, plots.SERIES[1])):
            series = m.series["pnl"]
            if not series:
                continue
            start = run.start_ts if run.start_ts is not None else int(series["ts"][0])
            x, y, _ = plots.decimate(series["ts"], series["equity"] - series["equity"][0])
            ax.plot((x - start) / 60e9, y, color=color, label=f"{label}: {run.run_dir.name}", drawstyle="steps-post")
            drawn = True
        if drawn:
            ax.axhline(0, color=plots._MUTED, linewidth=0.8)
            ax.set_xlabel("minutes since start")
            ax.set_title("Net PnL of the trading")
            ax.legend(fontsize=8, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2, borderaxespad=0.2)
            svgs["pnl"] = plots._svg(fig, "cmp-pnl")
        else:
            plt.close(fig)
            svgs["pnl"] = None

        labels = ["0"] + [h for h, _ in HORIZONS]
        fig, ax = plt.subplots(figsize=(6.2, 3.1))
        drawn = False
        for label, m, color in (("A", ma, plots.SERIES[0]), ("B", mb, plots.SERIES[1])):
            for key, style in (("maker", "-"), ("taker", "--")):
                block = m.sections["markouts"][key]
                if not block["fills"]:
                    continue
                eff = block["effective_spread_bps"]
                values = np.array([eff / 2 if eff is not None else np.nan]
                                  + [v if v is not None else np.nan for v in block["markout_bps"].values()], dtype=float)
                if not np.isfinite(values).any():
                    continue
                ax.plot(np.arange(len(labels)), values, style, marker="o", markersize=3, color=color, label=f"{label} {key}")
                drawn = True
        if drawn:
            ax.axhline(0, color=plots._MUTED, linewidth=0.8)
            ax.set_xticks(np.arange(len(labels)), labels)
            ax.set_xlabel("horizon after fill")
            ax.set_ylabel("bps (positive = adverse)")
            ax.set_title("Markout cost by horizon")
            ax.legend(fontsize=8, ncols=2)
            svgs["markouts"] = plots._svg(fig, "cmp-markouts")
        else:
            plt.close(fig)
            svgs["markouts"] = None
    return svgs


#: Where comparisons go by default: beside the run directories a backtest writes
#: (``runs/<id>``), never loose in the working directory.
RUNS_DIR = Path("runs")


def default_out(run_a: Path, run_b: Path) -> Path:
    """``runs/compare-A-vs-B.html`` (A, B: the run directories' names)."""
    return RUNS_DIR / f"compare-{Path(run_a).resolve().name}-vs-{Path(run_b).resolve().name}.html"


def compare_runs(run_a: Path, run_b: Path, out: Path | None = None) -> Comparison:
    """Measure both runs, write the comparison HTML (default ``default_out``:
    ``runs/compare-A-vs-B.html``) and return the rows (``Comparison.text()`` is what the
    CLI prints)."""
    run_a, run_b = Path(run_a), Path(run_b)
    ra, rb = load_run(run_a), load_run(run_b)
    ma, mb = compute(ra), compute(rb)
    table = rows(ma.sections["headline"], mb.sections["headline"])
    diff = config_diff(ra.config, rb.config)
    html_path = Path(out) if out is not None else default_out(run_a, run_b)
    svgs = _overlay_figures(ra, ma, rb, mb)
    lat = []
    for key, label in (("submit_to_ack_ns", "submit → ack"), ("cancel_to_ack_ns", "cancel → ack"), ("tick_to_order_ns", "tick → order")):
        lat.append((label, ma.sections["latency"][key], mb.sections["latency"][key]))
    html = environment().get_template("compare.html").render(
        css=css(),
        a=ra, b=rb,
        a_run=ra.summary.get("run") or {}, b_run=rb.summary.get("run") or {},
        rows=[{"label": r.label, "a": _show(r.key, r.a), "b": _show(r.key, r.b),
               "delta": _show_delta(r.key, r.delta), "verdict": r.verdict} for r in table],
        svg=svgs,
        latency=lat,
        horizons=[h for h, _ in HORIZONS],
        ma=ma.sections, mb=mb.sections,
        config_diff=[(k, json.dumps(va), json.dumps(vb)) for k, va, vb in diff],
    )
    write_text_atomic(html_path, html)
    return Comparison(run_a=run_a, run_b=run_b, rows=table, html=html_path, config_diff=diff)
