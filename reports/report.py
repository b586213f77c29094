"""`write_report(run_dir)`: metrics -> summary.json sections + one self-contained HTML file.

The HTML holds everything inline (CSS, SVG plots): no script, font, image or stylesheet
is fetched, so the file can be mailed, archived with the run or opened offline.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import numpy as np

from engine.progress import progress
from reports import execution, plots
from reports import format as fmt
from reports.metrics import HORIZONS, NA_TS, RATIO_RULE, Metrics, compute
from reports.risk import risk_section
from reports.rundir import RunData, load_run

#: Version of the summary.json sections written by reports (bump on a breaking change).
SCHEMA_VERSION = 2
#: Top-level summary.json sections owned by reports (everything else, e.g. "run", is kept).
REPORT_SECTIONS = (
    "report", "headline", "orders", "fills", "execution", "parents", "markouts",
    "queue", "latency", "pnl", "inventory", "by_venue", "by_instrument",
    "algorithms", "routing",  # reports.execution (execution algorithms and the router)
    "risk",  # reports.risk: refusals by reason, risk states, kill-switch timing
)
MAX_PARENT_ROWS = 25
#: Order outcomes (orders.outcomes / queue keys) and how the report names them.
OUTCOME_LABELS = (
    ("filled", "filled"),
    ("partially_filled_then_cancelled", "partly filled, then cancelled"),
    ("cancelled_unfilled", "cancelled unfilled"),
    ("expired", "expired / unfilled remainder (IOC, FOK, market)"),
    ("rejected", "rejected"),
    ("open_at_end", "open at the end of the run"),
)


def _clean(value: Any) -> Any:
    """JSON-safe copy: numpy scalars -> Python, NaN/inf -> None, -0.0 -> 0.0, keys -> str."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        x = float(value)
        return x + 0.0 if math.isfinite(x) else None
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(_clean(data), indent=2, allow_nan=False) + "\n")


def write_text_atomic(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: resources.files("reports").joinpath(name).read_text(encoding="utf-8")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(fmt.FILTERS)
    return env


def css() -> str:
    return resources.files("reports").joinpath("report.css").read_text(encoding="utf-8")


NBSP = "\u00a0"


def _tile(label: str, value: str | list[str], hint: str = "", tone: str = "") -> dict[str, Any]:
    """One headline tile. ``value`` is one figure or several shown as "a / b"; each figure
    is kept on one line (never cut), the tile grows to the widest one (report.css)."""
    parts = [value] if isinstance(value, str) else list(value)
    return {"label": label, "parts": parts, "hint": hint, "tone": tone}


def pnl_texts(p: dict[str, Any]) -> dict[str, Any]:
    """Texts of the PnL figures, all at one precision at which the shown parts add up:
    net = realized + unrealized + (rebates − fees) (the trading's net PnL), fees net = paid −
    rebates [+ other], equity change = equity end − equity start = net + the revaluation of
    the starting inventory (docs/report.md "PnL")."""
    net, realized, unrealized = fmt.as_decimal(p["net"]), fmt.as_decimal(p["realized"]), fmt.as_decimal(p["unrealized"])
    fees_net, paid, rebates = fmt.as_decimal(p["fees_net"]), fmt.as_decimal(p["fees_paid"]), fmt.as_decimal(p["rebates"])
    funding = fmt.as_decimal(p.get("funding"))  # contracts: the funding received (net PnL adds it)
    start, end = fmt.as_decimal(p["equity_start"]), fmt.as_decimal(p["equity_end"])
    change = fmt.as_decimal(p.get("equity_change"))
    if change is None and None not in (start, end):
        change = end - start
    revaluation = fmt.as_decimal(p.get("inventory_revaluation"))
    if revaluation is None and None not in (change, net):
        revaluation = change - net
    groups: list[tuple[Any, list[Any]]] = []
    fee_other = None
    if None not in (net, realized, unrealized, fees_net):
        groups.append((net, [realized, unrealized, -fees_net] + ([funding] if funding is not None else [])))
    if None not in (fees_net, paid, rebates):
        fee_other = fees_net - (paid - rebates) or None
        groups.append((fees_net, [paid, -rebates] + ([fee_other] if fee_other else [])))
    if None not in (change, start, end):
        groups.append((change, [end, -start]))
    if None not in (change, net, revaluation):
        groups.append((change, [net, revaluation]))
    k = fmt.additive_digits(groups, 2) or 18  # exact decimals: always found (18 = decimal128 scale)
    text = {name: fmt.money(value, k) for name, value in (
        ("net", net), ("realized", realized), ("unrealized", unrealized), ("fees_net", fees_net),
        ("fees_paid", paid), ("rebates", rebates), ("equity_start", start), ("equity_end", end),
        ("equity_change", change), ("revaluation", revaluation), ("fee_other", fee_other),
        ("fee_effect", -fees_net if fees_net is not None else None), ("funding", funding))}
    text["digits"] = k
    text["has_revaluation"] = revaluation is not None and not fmt.rounds_to_zero(revaluation, k)
    text["has_fee_other"] = fee_other is not None
    text["has_funding"] = funding is not None
    return text


def ratios_text(p: dict[str, Any]) -> tuple[list[str], str]:
    """([Sharpe, Sortino] texts, reason) — ["n/a"] with the reason when the sample does not support them."""
    if p["sharpe"] is None and p["sortino"] is None:
        return ["n/a"], p.get("ratios_reason") or "no equity samples"
    return [fmt.num(p["sharpe"]), fmt.num(p["sortino"])], p.get("ratios_reason") or ""


def tiles(m: dict[str, Any]) -> list[dict[str, Any]]:
    p, h = m["pnl"], m["headline"]
    cur = f" {p['currency']}" if p.get("currency") else ""
    mk = m["markouts"]
    t = pnl_texts(p)
    net_hint = f"realized {t['realized']} · unrealized {t['unrealized']} · rebates − fees {t['fee_effect']}"
    if t["has_funding"]:
        net_hint += f" · funding {t['funding']}"
    if t["has_revaluation"]:
        net_hint += f" · starting inventory revalued {t['revaluation']} (not in net PnL)"
    fees_hint = f"paid {t['fees_paid']} · rebates {t['rebates']}"
    if t["has_fee_other"]:
        fees_hint += f" · other {t['fee_other']}"
    ratios, reason = ratios_text(p)
    interval = fmt.duration(p["sampling_interval_ns"]) if p["sampling_interval_ns"] else "–"
    ratio_hint = reason if ratios == ["n/a"] else f"annualised, {p['periods']:,} returns of {interval}" + (f"; {reason}" if reason else "")
    turnover = f" · turnover {fmt.num(p['turnover_ratio'])}× start equity" if p["turnover_ratio"] is not None else ""
    out = [
        _tile("Net PnL" + cur, t["net"], net_hint, fmt.tone(p["net"], cost=False, digits=t["digits"])),
        _tile("Max drawdown" + cur, fmt.num(p["max_drawdown"]),
              f"{fmt.num(p['max_drawdown_pct'], 3)} % of peak equity" if p["max_drawdown_pct"] is not None else "",
              "bad" if not fmt.rounds_to_zero(p["max_drawdown"] or 0, 2) else ""),
        _tile("Sharpe / Sortino", ratios, ratio_hint),
        _tile("Fills", fmt.integer(h["fills"]), f"{fmt.integer(h['orders'])} orders · maker {fmt.pct(h['maker_share'])} of fills"
              + (f" · {fmt.integer(h['deliveries'])} deliveries (not trades)" if h.get("deliveries") else "")),
        _tile("Traded notional" + cur, fmt.num(h["notional"], 0), f"maker {fmt.pct(h['maker_notional_share'])} of notional{turnover}"),
        _tile("Fill ratio", fmt.pct(h["fill_ratio"]), f"filled / ordered qty · cancel-to-fill {fmt.num(h['cancel_to_fill_ratio'])}"),
        _tile("Arrival slippage", f"{fmt.bps(h['arrival_slippage_bps'])}{NBSP}bps",
              f"interval VWAP {fmt.bps(h['vwap_slippage_bps'])} bps", fmt.tone(h["arrival_slippage_bps"])),
    ]
    for scope, block in (("orders", m["execution"]["implementation_shortfall"]),
                         ("parents", m["parents"]["implementation_shortfall"] if m["parents"].get("count") else None)):
        if block is None:
            continue
        out.append(_tile(f"Impl. shortfall, {scope}", f"{fmt.bps(block['total_bps'])}{NBSP}bps",
                         f"{fmt.num(block['total'])}{cur} over {fmt.integer(block['count'])} {scope}",
                         fmt.tone(block["total_bps"])))
    out += [
        _tile("Effective spread", f"{fmt.bps(h['effective_spread_bps'])}{NBSP}bps",
              f"maker {fmt.bps(mk['maker']['effective_spread_bps'])} · taker {fmt.bps(mk['taker']['effective_spread_bps'])}",
              fmt.tone(h["effective_spread_bps"])),
        _tile("Markout 1 s / 60 s", [fmt.bps(h["markout_1s_bps"]), f"{fmt.bps(h['markout_60s_bps'])}{NBSP}bps"],
              "positive = adverse (a cost)", fmt.tone(h["markout_60s_bps"])),
        _tile("Fees net" + cur, t["fees_net"], fees_hint, fmt.tone(p["fees_net"], digits=t["digits"])),
        _tile("Submit → ack p50", fmt.duration(h["submit_to_ack_p50_ns"]).replace(" ", NBSP),
              f"p99 {fmt.duration(h['submit_to_ack_p99_ns'])} · tick→order p99 {fmt.duration(h['tick_to_order_p99_ns'])}"),
    ]
    return out


def shortfall_rows(m: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """The implementation-shortfall table: per column (orders, parents) the components and
    the total in money and in bps, each column at a precision where the parts add up."""
    cols = [("orders", m["execution"]["implementation_shortfall"])]
    if m["parents"].get("count"):
        cols.append(("parents", m["parents"]["implementation_shortfall"]))
    comps = ["delay", "impact", "opportunity", "fees"]
    cells: dict[str, list[dict[str, str]]] = {c: [] for c in [*comps, "total"]}
    for _, block in cols:
        money_total, money_parts = fmt.additive(block["total"], [block[c] for c in comps], 2, extra=2)
        bps_vals = [block[f"{c}_bps"] for c in comps]
        start = max(fmt.bps_digits(v) for v in [*bps_vals, block["total_bps"]])
        bps_total, bps_parts = fmt.additive(block["total_bps"], bps_vals, start, extra=2)
        for c, mt, bt in zip([*comps, "total"], [*money_parts, money_total], [*bps_parts, bps_total], strict=True):
            cells[c].append({"money": mt, "bps": bt, "tone": fmt.tone_text(mt)})
    rows = [{"name": c, "cells": cells[c]} for c in [*comps, "total"]]
    return [name for name, _ in cols], rows


def decomposition_rows(markouts: dict[str, Any], horizons: list[str]) -> list[dict[str, Any]]:
    """Per subset (all, maker, taker) and horizon: effective spread (same fills) + price
    impact = realized spread, at one precision per subset (the bps rule of its largest
    figure). Price impact is by definition realized − effective, so the impact shown is
    the realized spread shown minus the effective spread shown: the rows add up as shown."""
    rows = []
    for key in ("all", "maker", "taker"):
        b = markouts[key]
        cols = [(b["effective_spread_horizon_bps"][h], b["realized_spread_bps"][h]) for h in horizons]
        known = [v for pair in cols for v in pair if v is not None]
        k = max((fmt.bps_digits(v) for v in known), default=2)
        texts = []
        for e, r in cols:
            et, rt = fmt.bps(e, k), fmt.bps(r, k)
            se, sr = fmt.shown_value(et), fmt.shown_value(rt)
            it = fmt.bps(sr - se, k) if se is not None and sr is not None else fmt.DASH
            texts.append((et, it, rt))
        for idx, label in enumerate((f"effective spread, {key}", f"+ price impact, {key}", f"= realized spread, {key}")):
            rows.append({"label": label, "last": idx == 2,
                         "cells": [{"text": t[idx], "tone": fmt.tone_text(t[idx])} for t in texts]})
    return rows


def _parents_rows(run: RunData, per_parent: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    if not per_parent:
        return [], ""
    n = len(per_parent["parent_id"])
    order = np.argsort(-per_parent["notional"], kind="stable")[:MAX_PARENT_ROWS]
    rows = []
    for i in order:
        row = {k: (v[i].item() if hasattr(v[i], "item") else v[i]) for k, v in per_parent.items()}
        row["instrument"] = run.instruments[row["instrument"]] if row["instrument"] >= 0 else "?"
        row["side"] = "buy" if row["side"] > 0 else "sell"
        for key in ("ttff", "ttlf"):
            row[key] = None if row[key] == NA_TS else row[key]
        for key, value in list(row.items()):
            if isinstance(value, float) and not math.isfinite(value):
                row[key] = None
        rows.append(row)
    caption = (f"All {n:,} parent orders." if n <= MAX_PARENT_ROWS
               else f"The {MAX_PARENT_ROWS} largest of {n:,} parent orders by filled notional (all are in the totals above).")
    return rows, caption + (
        " bps, positive = cost to us: arrival = s·(P_f − P_d)/P_d with P_d the parent's arrival mid; "
        "VWAP = s·(P_f − VWAP)/VWAP over the parent's life; IS = implementation shortfall "
        "(delay + impact + opportunity + fees) over paper notional Q·P_d.")


def render_html(run: RunData, metrics: Metrics, sampling_notes: dict[str, str], svgs: dict[str, str | None]) -> str:
    m = metrics.sections
    rs = run.summary.get("run") if isinstance(run.summary.get("run"), dict) else {}
    parents_rows, parents_caption = _parents_rows(run, metrics.series["per_parent"])
    invariants = []
    raw_inv = run.summary.get("invariants")
    if isinstance(raw_inv, list):
        for item in raw_inv:
            if isinstance(item, dict):
                invariants.append({"name": item.get("name", "?"), "ok": bool(item.get("ok", item.get("passed", False))),
                                   "detail": item.get("detail", item.get("message", ""))})
    elif isinstance(raw_inv, dict):
        for name, item in raw_inv.items():
            ok = item.get("ok", item.get("passed")) if isinstance(item, dict) else item
            detail = item.get("detail", "") if isinstance(item, dict) else ""
            invariants.append({"name": name, "ok": bool(ok), "detail": detail})
    all_notes = list(metrics.notes) + [v for v in sampling_notes.values() if v]
    if run.missing:
        all_notes.append("Optional files not in the run directory: " + ", ".join(run.missing) + ".")
    all_notes.append(m["report"]["sampling"]["statement"])
    is_cols, is_rows = shortfall_rows(m)
    env = environment()
    return env.get_template("report.html").render(
        title=f"tickparity report — {rs.get('id') or run.run_dir.name}",
        css=css(),
        run=rs,
        run_dir_name=run.run_dir.name,
        start_ts=run.start_ts,
        end_ts=run.end_ts,
        instruments=run.instruments,
        empty=m["fills"]["count"] == 0,
        missing=[name for name in run.missing if name.endswith(".parquet")],
        tiles=tiles(m),
        m=m,
        p=m["pnl"],
        pt=pnl_texts(m["pnl"]),
        ratios=" / ".join(ratios_text(m["pnl"])[0]),
        ratio_rule=RATIO_RULE,
        is_cols=is_cols,
        is_rows=is_rows,
        decomposition=decomposition_rows(m["markouts"], [label for label, _ in HORIZONS]),
        outcome_labels=OUTCOME_LABELS,
        shares={key: dict(zip(m[key], fmt.shares([r["notional_share"] for r in m[key].values()]), strict=True))
                for key in ("by_venue", "by_instrument")},
        svg=svgs,
        notes=sampling_notes,
        horizons=[label for label, _ in HORIZONS],
        parents_rows=parents_rows,
        parents_caption=parents_caption,
        invariants=invariants,
        config_text=json.dumps(run.config, indent=2, sort_keys=True) if run.config is not None else "",
        instruments_text=json.dumps(run.instrument_specs, indent=2, sort_keys=True) if run.instrument_specs else "",
        all_notes=all_notes,
        algorithms=m.get("algorithms") or {"count": 0},
        routing=m.get("routing") or {"decisions": 0},
        risk=m.get("risk") or {"refusals_total": 0, "kills": [], "transitions": [], "rejected_orders": {}},
        schedule_svgs=_schedule_svgs(run, m, metrics.notes),
        derivatives=_derivatives(run, metrics.notes),
    )


def _derivatives(run: RunData, notes: list[str]) -> dict[str, Any] | None:
    """The contract section (reports.derivatives) with its figure; None without contracts."""
    from reports import derivatives

    sec = derivatives.section(run.run_dir, run.summary)
    if sec is None:
        return None
    try:
        sec["svg"] = derivatives.figure(sec)
    except Exception as exc:  # noqa: BLE001 - reported, never hidden (as make_plots)
        sec["svg"] = None
        notes.append(f"The margin plot could not be drawn ({type(exc).__name__}: {exc}).")
    return sec


def _schedule_svgs(run: RunData, m: dict[str, Any], notes: list[str]) -> list[tuple[str, str]]:
    """Schedule-vs-executed plots (reports.execution); a drawing error becomes a note."""
    if not (m.get("algorithms") or {}).get("count"):
        return []
    try:
        return execution.schedule_figures(m["algorithms"], run.run_dir)
    except Exception as exc:  # noqa: BLE001 - reported, never hidden (as make_plots)
        notes.append(f"The schedule plots could not be drawn ({type(exc).__name__}: {exc}).")
        return []


def make_plots(metrics: Metrics) -> tuple[dict[str, str | None], dict[str, str]]:
    """Every figure as inline SVG plus the note saying what it sampled.

    A figure that cannot be drawn (odd data matplotlib refuses) is replaced by a note
    naming the error: the figures and tables of the report do not depend on the plots, and
    a backtest must not lose its run directory over a drawing."""
    m, series = metrics.sections, metrics.series
    svgs: dict[str, str | None] = {}
    notes: dict[str, str] = {}
    po = series["per_order"]
    fill = series["fill"]
    filled = po["has_fill"]
    hist = [  # weighted by notional, as the tables are
        ("arrival slippage per order (bps)", po["arrival_bps"][filled], po["notional"][filled]),
        ("interval-VWAP slippage per order (bps)", po["vwap_bps"][filled], po["notional"][filled]),
        ("effective spread per fill (bps)", fill["eff_bps"], fill["notional"]),
    ]
    figures: dict[str, Any] = {
        "pnl": lambda: plots.pnl_figure(series["pnl"], series["inventory"], m["pnl"]["currency"]),
        "markouts": lambda: (plots.markout_figure(m["markouts"]), ""),
        "slippage": lambda: plots.histogram_figure(hist, "slippage", "", "bps (positive = cost)"),
        "latency": lambda: (plots.latency_figure(m["latency"]), ""),
        "shortfall": lambda: (plots.shortfall_figure(m["execution"]["implementation_shortfall"],
                                                     m["parents"].get("implementation_shortfall")), ""),
    }
    for name, draw in figures.items():
        try:
            svgs[name], notes[name] = draw()
        except Exception as exc:  # noqa: BLE001 - see the docstring: reported, never hidden
            svgs[name], notes[name] = None, ""
            metrics.notes.append(f"The {name} plot could not be drawn ({type(exc).__name__}: {exc}).")
    return svgs, notes


def write_report(run_dir: Path, out: Path | None = None) -> Path:
    """Compute metrics of ``run_dir``, merge them into its summary.json (keeping the
    runner's ``run`` section and any other section not owned by reports) and write the
    HTML report to ``out`` (default ``run_dir/report.html``). Returns the HTML path."""
    run_dir = Path(run_dir)
    with progress("report", total=4, unit="steps") as bar:
        run = load_run(run_dir)
        bar.advance()
        metrics = compute(run)
        metrics.sections["algorithms"] = execution.schedule_vs_executed(run_dir)
        metrics.sections["routing"] = execution.routing_quality(run_dir, metrics.sections.get("by_venue"))
        metrics.sections["risk"] = risk_section(run_dir, run.summary)
        bar.advance()
        svgs, sampling_notes = make_plots(metrics)
        bar.advance()
        html_path = _write(run, run_dir, out, metrics, svgs, sampling_notes)
        bar.advance()
    return html_path


def _write(run: RunData, run_dir: Path, out: Path | None, metrics: Metrics,
           svgs: dict[str, str | None], sampling_notes: dict[str, str]) -> Path:
    drawn = [n for n in sampling_notes.values() if n]
    metrics.sections["report"] = {
        "schema_version": SCHEMA_VERSION,
        "html": None,
        "missing_files": list(run.missing),
        "notes": list(metrics.notes),
        "sampling": {
            "plots_max_points": plots.MAX_POINTS,
            "sampled": drawn,
            "statement": (
                "All figures and tables are computed on every fill and order. "
                + ("Some plots were sampled for drawing: see the notes under them." if drawn
                   else "No plot needed sampling for this run.")
            ),
        },
    }
    html_path = Path(out) if out is not None else run_dir / "report.html"
    try:  # relative when the HTML is inside the run directory, absolute otherwise
        metrics.sections["report"]["html"] = html_path.resolve().relative_to(run_dir.resolve()).as_posix()
    except ValueError:
        metrics.sections["report"]["html"] = str(html_path.resolve())
    html = render_html(run, metrics, sampling_notes, svgs)
    write_text_atomic(html_path, html)
    summary = {k: v for k, v in run.summary.items() if k not in REPORT_SECTIONS}
    for key in REPORT_SECTIONS:
        summary[key] = metrics.sections[key]
    write_json_atomic(run_dir / "summary.json", summary)
    return html_path
