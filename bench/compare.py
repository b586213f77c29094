"""Compare two bench results files row by row.

    python -m bench.compare A.json B.json [--threshold PCT]

Prints every row of either file (matched by `name`) with A's and B's figure, the change
from A to B in % and whether that change is an improvement in the row's own direction
(a rate up, a time or a memory figure down). Rows measured in only one file are listed
with a dash for the other. `--threshold` (default 5%) marks changes larger than it:
on the shared 2-core machine run-to-run noise alone is a few percent, so compare the
ratios (against hftbacktest, NautilusTrader) when the load averages differ.
Exit 0 always (a comparison is information, not a test); 2 on an unreadable file.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from bench.results import load


def change_pct(a: float | None, b: float | None) -> float | None:
    """(b - a) / a in %, None when either is missing or a is 0."""
    if a is None or b is None or a == 0:
        return None
    return (b - a) / abs(a) * 100.0


def _fmt(x: float | None, unit: str = "") -> str:
    if x is None:
        return "-"
    ax = abs(x)
    if ax >= 1e6:
        s = f"{x / 1e6:.3f} M"
    elif ax >= 1e4:
        s = f"{x / 1e3:.1f} k"
    elif ax >= 100:
        s = f"{x:.0f}"
    else:
        s = f"{x:.3g}"
    return f"{s} {unit}".strip()


def compare_rows(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per row name, in A's order then B's new rows: name, unit, better, both
    figures and ratios, change in % and `improved` (True/False/None)."""
    rows_a = {r["name"]: r for r in a["rows"]}
    rows_b = {r["name"]: r for r in b["rows"]}
    names = list(rows_a) + [n for n in rows_b if n not in rows_a]
    out = []
    for name in names:
        ra, rb = rows_a.get(name), rows_b.get(name)
        ref = ra or rb
        fa = ra.get("figure") if ra else None
        fb = rb.get("figure") if rb else None
        pct = change_pct(fa, fb)
        better = ref.get("better", "higher")
        improved = None if pct is None or pct == 0 else (pct > 0) == (better == "higher")
        out.append({"name": name, "unit": ref.get("unit", ""), "better": better, "a": fa, "b": fb,
                    "change_pct": pct, "improved": improved,
                    "ratio_a": ra.get("ratio") if ra else None, "ratio_b": rb.get("ratio") if rb else None,
                    "peer": ref.get("peer"),
                    "note": (rb or {}).get("note") or (ra or {}).get("note")})
    return out


def _header(label: str, data: dict[str, Any], path: str) -> str:
    build, machine = data.get("build", {}), data.get("machine", {})
    sha = (build.get("git_commit") or "?")[:10] + ("+dirty" if build.get("git_dirty") else "")
    load_avg = machine.get("load_average") or []
    load_end = machine.get("load_average_end") or []
    return (f"{label}: {path}\n   {data.get('bench')} {data.get('started_utc')} commit {sha}; "
            f"{machine.get('cores')} cores; load avg {load_avg[0] if load_avg else '?'} at start, "
            f"{load_end[0] if load_end else '?'} at end; python {build.get('python')}, numba {build.get('numba')}; "
            f"args {' '.join(data.get('argv') or [])}")


def render(a: dict[str, Any], b: dict[str, Any], path_a: str, path_b: str, threshold: float = 5.0) -> str:
    lines = [_header("A", a, path_a), _header("B", b, path_b), ""]
    rows = compare_rows(a, b)
    width = max([len(r["name"]) for r in rows] + [4])
    lines.append(f"{'row':<{width}}  {'A':>14}  {'B':>14}  {'change':>8}  {'ratio A':>8}  {'ratio B':>8}")
    lines.append("-" * (width + 64))
    for r in rows:
        pct = r["change_pct"]
        if pct is None:
            ch = "-"
        else:
            ch = f"{pct:+.1f}%"
            if abs(pct) >= threshold:
                ch += " +" if r["improved"] else " -"
        ra = "-" if r["ratio_a"] is None else f"{r['ratio_a']:.2f}x"
        rb = "-" if r["ratio_b"] is None else f"{r['ratio_b']:.2f}x"
        lines.append(f"{r['name']:<{width}}  {_fmt(r['a'], r['unit']):>14}  {_fmt(r['b'], r['unit']):>14}  "
                     f"{ch:>8}  {ra:>8}  {rb:>8}")
        if r["a"] is None and r["b"] is None and r["note"]:
            lines.append(f"{'':<{width}}  {r['note']}")
    lines.append("")
    lines.append(f"change = (B - A) / A; '+' marks a change of {threshold:g}% or more for the better "
                 "(a rate up, a time or memory down), '-' for the worse; ratio = ours / the row's peer")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__.split("\n")[0])
    parser.add_argument("a", help="the older results file")
    parser.add_argument("b", help="the newer results file")
    parser.add_argument("--threshold", type=float, default=5.0, help="mark changes of at least this %% (default 5)")
    args = parser.parse_args(argv)
    try:
        a, b = load(args.a), load(args.b)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(render(a, b, args.a, args.b, args.threshold))
    return 0


if __name__ == "__main__":
    sys.exit(main())
