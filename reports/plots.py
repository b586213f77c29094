"""Plots as inline SVG strings (matplotlib, Agg backend), themed by CSS variables.

Why sentinel colours: a matplotlib SVG has its colours baked in, which would make the
report unreadable on one of light/dark screens. Every figure is drawn with a few
reserved colours that are then rewritten to ``var(--fg)``, ``var(--c1)``... so the
page's ``prefers-color-scheme`` CSS decides the real colours. Text stays text
(``svg.fonttype = none``): the file is small and no font is embedded or fetched.

Big runs: line series are decimated to at most ``MAX_POINTS`` buckets keeping each
bucket's first, min, max and last point (so spikes and drawdowns survive); histograms
are computed on every value but clipped to the 0.5–99.5 percentile range. Each plot
function returns a note saying what it sampled, which the report prints under it.
"""

from __future__ import annotations

import io
import re
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from reports import format as fmt  # noqa: E402
from reports.metrics import HORIZONS  # noqa: E402

MAX_POINTS = 1500

# Reserved colours -> CSS variables (lower-case hex, as matplotlib writes them).
_FG, _MUTED, _GRID = "#010101", "#020202", "#030303"
SERIES = ["#0a0a01", "#0a0a02", "#0a0a03", "#0a0a04", "#0a0a05", "#0a0a06"]
_CSS = {_FG: "var(--fg)", _MUTED: "var(--muted)", _GRID: "var(--grid)"}
_CSS.update({color: f"var(--c{i + 1})" for i, color in enumerate(SERIES)})
_COLOR_RE = re.compile("|".join(re.escape(c) for c in _CSS))

_RC = {
    "svg.fonttype": "none",
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "text.color": _FG,
    "axes.labelcolor": _FG,
    "axes.edgecolor": _MUTED,
    "axes.facecolor": "none",
    "figure.facecolor": "none",
    "savefig.facecolor": "none",
    "savefig.edgecolor": "none",
    "axes.grid": True,
    "grid.color": _GRID,
    "grid.linewidth": 0.6,
    "xtick.color": _MUTED,
    "ytick.color": _MUTED,
    "xtick.labelcolor": _FG,
    "ytick.labelcolor": _FG,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": matplotlib.cycler(color=SERIES),
    "legend.frameon": False,
    "lines.linewidth": 1.4,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
}


def _svg(fig: Any, name: str) -> str:
    """Figure -> themed, responsive <svg> element with ids unique to ``name``."""
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": f"tickparity-{name}"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None}, bbox_inches="tight")
    plt.close(fig)
    text = buffer.getvalue()
    text = text[text.index("<svg"):]
    text = _COLOR_RE.sub(lambda m: _CSS[m.group(0)], text)
    text = text.replace("'DejaVu Sans'", "'DejaVu Sans', system-ui, sans-serif")
    text = re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', rf'<svg\1 class="plot" role="img" aria-label="{name}"', text, count=1)
    # matplotlib's ids are hashes salted per figure; prefix them anyway so two figures never clash
    text = re.sub(r'id="([^"]+)"', rf'id="{name}-\1"', text)
    text = re.sub(r'(xlink:href|href)="#([^"]+)"', rf'\1="#{name}-\2"', text)
    text = re.sub(r"url\(#([^)]+)\)", rf"url(#{name}-\1)", text)
    return text


def decimate(x: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray, bool]:
    """Keep the first, min, max and last row of each of ``max_points // 4`` buckets of
    consecutive rows (x sorted), so a line drawn through them keeps every spike.
    Returns (x, y, sampled)."""
    n = len(x)
    if n <= max_points:
        return x, y, False
    buckets = max(max_points // 4, 1)
    bucket = (np.arange(n, dtype=np.int64) * buckets) // n  # non-decreasing bucket id per row
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], n] - 1
    finite = np.where(np.isfinite(y), y, np.nan)
    keep = np.zeros(n, dtype=bool)
    keep[starts] = True
    keep[ends] = True
    for reduce in (np.fmin, np.fmax):
        extreme = reduce.reduceat(finite, starts)
        rows = np.flatnonzero(finite == extreme[bucket])
        first = np.r_[True, bucket[rows][1:] != bucket[rows][:-1]]  # first such row per bucket
        keep[rows[first]] = True
    return x[keep], y[keep], True


def _dates(ts: np.ndarray) -> np.ndarray:
    return ts.astype("datetime64[ns]").astype("datetime64[us]")


def _time_axis(ax: Any) -> None:
    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, show_offset=False))


def pnl_figure(pnl_series: dict[str, Any], inventory_series: dict[str, Any], currency: str | None) -> tuple[str | None, str]:
    """Equity, drawdown and inventory over time (UTC), stacked on one time axis."""
    if not pnl_series and not inventory_series:
        return None, ""
    panels = (2 if pnl_series else 0) + (1 if inventory_series else 0)
    with matplotlib.rc_context(_RC):
        fig, axes = plt.subplots(panels, 1, figsize=(10, 1.9 * panels + 0.6), sharex=True,
                                 gridspec_kw={"height_ratios": ([2.2, 1] if pnl_series else []) + ([1.2] if inventory_series else [])})
        axes = np.atleast_1d(axes)
        sampled = []
        i = 0
        unit = f" ({currency})" if currency else ""
        if pnl_series:
            ts = pnl_series["ts"]
            base = pnl_series["equity"][0]
            x, y, cut = decimate(ts, pnl_series["equity"] - base)
            if cut:
                sampled.append(f"equity: {len(x):,} of {len(ts):,} points")
            ax = axes[i]
            ax.plot(_dates(x), y, color=SERIES[0], label="net PnL of the trading", drawstyle="steps-post")
            xr, yr, _ = decimate(ts, pnl_series["realized"])
            ax.plot(_dates(xr), yr, color=SERIES[2], linewidth=1.0, label="realized", drawstyle="steps-post")
            xf, yf, _ = decimate(ts, -pnl_series["fees"])
            ax.plot(_dates(xf), yf, color=SERIES[1], linewidth=1.0, linestyle="--", label="− fees (net of rebates)",
                    drawstyle="steps-post")
            ax.axhline(0, color=_MUTED, linewidth=0.8)
            ax.set_title(f"PnL{unit}")
            ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=3, fontsize=8, borderaxespad=0.2)
            i += 1
            ax = axes[i]
            xd, yd, _ = decimate(ts, pnl_series["drawdown"])
            ax.fill_between(_dates(xd), yd, 0, color=SERIES[3], alpha=0.35, linewidth=0, step="post")
            ax.plot(_dates(xd), yd, color=SERIES[3], linewidth=0.9, drawstyle="steps-post")
            ax.set_title(f"Drawdown{unit}")
            i += 1
        if inventory_series:
            ax = axes[i]
            for k, (name, (ts, pos)) in enumerate(sorted(inventory_series.items())):
                x, y, cut = decimate(ts, pos)
                if cut:
                    sampled.append(f"inventory {name}: {len(x):,} of {len(ts):,} points")
                ax.step(_dates(x), y, where="post", color=SERIES[(k + 4) % len(SERIES)], label=name)
            ax.axhline(0, color=_MUTED, linewidth=0.8)
            ax.set_title("Inventory (base units; perpetuals and futures: contracts)")
            ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=4, fontsize=8, borderaxespad=0.2)
        _time_axis(axes[-1])
        axes[-1].set_xlabel("time (UTC)")
        fig.align_ylabels(axes)
        note = ""
        if sampled:
            note = ("Sampled for drawing (first/min/max/last of each time bucket kept): "
                    + "; ".join(sampled) + ". Figures in the tables use every row.")
        return _svg(fig, "pnl"), note


def markout_figure(markouts: dict[str, Any]) -> str | None:
    """Markout cost curve by horizon, all / maker / taker (0 = half the effective spread)."""
    labels = ["0"] + [label for label, _ in HORIZONS]
    lines = []
    for key, color in (("all", SERIES[0]), ("maker", SERIES[2]), ("taker", SERIES[1])):
        block = markouts[key]
        if not block["fills"]:
            continue
        eff = block["effective_spread_bps"]
        values = [eff / 2 if eff is not None else np.nan]
        values += [v if v is not None else np.nan for v in block["markout_bps"].values()]
        lines.append((f"{key} ({block['fills']:,} fills)", color, np.array(values, dtype=float)))
    if not lines or all(not np.isfinite(v).any() for _, _, v in lines):
        return None
    with matplotlib.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(6.2, 3.1))
        x = np.arange(len(labels))
        for label, color, values in lines:
            ax.plot(x, values, marker="o", markersize=3.5, color=color, label=label)
        ax.axhline(0, color=_MUTED, linewidth=0.8)
        ax.set_xticks(x, labels)
        ax.set_xlabel("horizon after fill")
        ax.set_ylabel("bps (positive = adverse)")
        ax.set_title("Markout cost by horizon")
        ax.legend(fontsize=8)
        return _svg(fig, "markouts")


def histogram_figure(series: list[tuple[str, np.ndarray, np.ndarray | None]], name: str, title: str, xlabel: str) -> tuple[str | None, str]:
    """Side-by-side histograms; values clipped to their 0.5–99.5 percentile range.

    Each panel is (label, values, weights). With weights (notional) the dashed line and the
    printed mean are the weighted mean over every finite value: the same figure as the
    report's tables, which are notional-weighted; without, the plain mean, labelled so."""
    panels = []
    for label, values, weights in series:
        ok = np.isfinite(values) if weights is None else np.isfinite(values) & np.isfinite(weights)
        panels.append((label, values[ok], None if weights is None else weights[ok]))
    panels = [p for p in panels if len(p[1])]
    if not panels:
        return None, ""
    notes = []
    with matplotlib.rc_context(_RC):
        fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels) + 0.4, 2.9), squeeze=False)
        for k, (ax, (label, values, weights)) in enumerate(zip(axes[0], panels, strict=True)):
            lo, hi = np.percentile(values, [0.5, 99.5]) if len(values) > 200 else (values.min(), values.max())
            if lo == hi:
                lo, hi = lo - 1, hi + 1
            inside = (values >= lo) & (values <= hi)
            clipped = int((~inside).sum())
            if clipped:
                notes.append(f"{label}: {clipped:,} of {len(values):,} outside [{lo:.2f}, {hi:.2f}] not drawn")
            ax.hist(values[inside], bins=40, color=SERIES[k % len(SERIES)], alpha=0.85)
            if weights is not None and weights.sum() > 0:
                mean, mean_label = float((values * weights).sum() / weights.sum()), "weighted mean"
            else:
                mean, mean_label = float(values.mean()), "mean (unweighted)"
            ax.axvline(mean, color=_FG, linewidth=1, linestyle="--")
            ax.axvline(0, color=_MUTED, linewidth=0.8)
            ax.set_title(f"{label}", fontsize=9)
            ax.text(0.98, 0.95, f"n={len(values):,}\n{mean_label}={fmt.bps(mean)}", transform=ax.transAxes,
                    ha="right", va="top", fontsize=8)
            ax.set_xlabel(xlabel)
        axes[0][0].set_ylabel("count")
        fig.suptitle(title, x=0.01, ha="left", fontsize=10, fontweight="bold")
        note = ""
        if notes:
            note = "Tails clipped for drawing (means and tables use every value): " + "; ".join(notes) + "."
        return _svg(fig, name), note


LATENCY_STATS = (("p50", "p50"), ("p90", "p90"), ("p99", "p99"), ("p99_9", "p99.9"), ("max", "max"))


def latency_figure(latency: dict[str, Any]) -> str | None:
    """Percentile ladder per latency (p50 -> max on one line, microseconds).

    Log axis, unless a plotted latency is 0 ns (a zero-latency venue profile, a strategy
    answering within the same event): log(0) does not exist, and drawing it at some small
    value would be a fake figure, so then the axis is linear and starts at 0."""
    kinds = [(k, label) for k, label in (("submit_to_ack_ns", "submit → ack"),
                                         ("cancel_to_ack_ns", "cancel → ack"),
                                         ("tick_to_order_ns", "tick → order")) if latency[k]["count"]]
    if not kinds:
        return None
    markers = ["o", "s", "D", "^", "v"]
    rows_ns = [[latency[key][s] or 0 for s, _ in LATENCY_STATS] for key, _ in kinds]
    log = all(v > 0 for row in rows_ns for v in row)
    with matplotlib.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(6.2, 0.9 + 0.55 * len(kinds)))
        for row, values_ns in enumerate(rows_ns):
            values = [v / 1e3 for v in values_ns]
            ax.plot([values[0], values[-1]], [row, row], color=_MUTED, linewidth=1.2, zorder=1)
            for j, value in enumerate(values):
                ax.scatter([value], [row], s=34, marker=markers[j], color=SERIES[j], zorder=2,
                           label=LATENCY_STATS[j][1] if row == 0 else None)
            text = (f"p50 {fmt.duration(values_ns[0])} · p99 {fmt.duration(values_ns[2])} · "
                    f"max {fmt.duration(values_ns[-1])}")
            ax.annotate(text, (values[-1], row), textcoords="offset points", xytext=(9, -3), ha="left", fontsize=7.5)
        ax.set_yticks(np.arange(len(kinds)), [label for _, label in kinds])
        ax.set_ylim(len(kinds) - 0.4, -0.6)
        hi = max(max(row) for row in rows_ns) / 1e3
        if log:
            ax.set_xscale("log")
            lo = min(row[0] for row in rows_ns) / 1e3
            ax.set_xlim(lo / 1.6, hi * 12)  # room on the right for the labels
            ax.set_xlabel("µs (log scale)")
        else:
            ax.set_xlim(0, hi * 2.2 if hi > 0 else 1.0)
            ax.set_xlabel("µs (linear scale: a 0 ns latency has no place on a log axis)")
        ax.legend(fontsize=7.5, ncols=5, loc="lower left", bbox_to_anchor=(0.0, 1.0), borderaxespad=0.2)
        ax.grid(axis="y", visible=False)
        return _svg(fig, "latency")


def shortfall_figure(orders: dict[str, Any], parents: dict[str, Any] | None) -> str | None:
    """Implementation shortfall components (bps of paper notional)."""
    groups = [("orders", orders)]
    if parents and parents.get("count"):
        groups.append(("parents", parents))
    comps = ["delay", "impact", "opportunity", "fees"]
    if all(g["paper_notional"] == 0 for _, g in groups):
        return None
    with matplotlib.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(6.2, 0.6 + 0.8 * len(groups)))
        for gi, (_label, g) in enumerate(groups):
            left_pos, left_neg = 0.0, 0.0
            for ci, comp in enumerate(comps):
                v = g.get(f"{comp}_bps") or 0.0
                left = left_pos if v >= 0 else left_neg
                ax.barh(gi, v, left=left, color=SERIES[ci], height=0.55, label=comp if gi == 0 else None)
                if v >= 0:
                    left_pos += v
                else:
                    left_neg += v
            total = g.get("total_bps")
            if total is not None:
                ax.plot([total], [gi], marker="D", color=_FG, markersize=5, label="total" if gi == 0 else None)
        ax.set_yticks(range(len(groups)), [label for label, _ in groups])
        ax.invert_yaxis()
        ax.axvline(0, color=_MUTED, linewidth=0.8)
        ax.set_xlabel("bps of paper notional (positive = cost)")
        ax.legend(fontsize=7.5, ncols=5, loc="lower left", bbox_to_anchor=(0.0, 1.0), borderaxespad=0.2)
        ax.grid(axis="y", visible=False)
        return _svg(fig, "shortfall")


__all__ = ["decimate", "histogram_figure", "latency_figure", "markout_figure", "pnl_figure", "shortfall_figure"]
