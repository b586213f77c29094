"""The `report` command: `tickparity report RUN_DIR [--out FILE]` and
`tickparity report compare RUN_A RUN_B [--out FILE]`.

`register(subparsers)` plugs it into the main `tickparity` parser; `main(argv)` runs it
on its own (``python -m modes.report_cmd ...``). User errors are `TickparityError`s, which
the caller turns into one line and a non-zero exit.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from engine.errors import ConfigError

USAGE = "tickparity report RUN_DIR [--out FILE]\n       tickparity report compare RUN_A RUN_B [--out FILE]"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write a run's HTML report and summary.json, or compare two runs",
        description=(
            "Write RUN_DIR/report.html (self-contained) and add the execution metrics to "
            "RUN_DIR/summary.json. With 'compare RUN_A RUN_B', print the differences of the "
            "headline figures and write a comparison HTML (default runs/compare-A-vs-B.html). "
            "Formulas: docs/report.md."
        ),
        usage=USAGE,
    )
    parser.add_argument("paths", nargs="+", metavar="RUN_DIR", help="run directory, or: compare RUN_A RUN_B")
    parser.add_argument("--out", type=Path, default=None, metavar="FILE", help="where to write the HTML")
    parser.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    paths = list(args.paths)
    if paths[0] == "compare":
        if len(paths) != 3:
            raise ConfigError(f"report compare needs exactly two run directories, got {len(paths) - 1}: usage: {USAGE.splitlines()[1].strip()}")
        from reports.compare import compare_runs

        comparison = compare_runs(Path(paths[1]), Path(paths[2]), args.out)
        print(comparison.text())
        return 0
    if len(paths) != 1:
        raise ConfigError(f"report takes one run directory, got {len(paths)} ({' '.join(paths)}); to compare two runs: tickparity report compare RUN_A RUN_B")
    from reports.report import write_report

    run_dir = Path(paths[0])
    if (run_dir / "session.jsonl").is_file() and not (run_dir / "summary.json").is_file():
        # a paper/testnet/live session that crashed (kill -9, power): its tables are written
        # at the end, but its journal holds everything they are made of
        raise ConfigError(f"report {run_dir}: the session did not finish (no summary.json, no tables); "
                          f"`tickparity replay {run_dir} --out DIR` rebuilds its run files from session.jsonl, "
                          "then `tickparity report DIR`")
    html = write_report(run_dir, args.out)
    print(f"report  {html}")
    print(f"summary {run_dir / 'summary.json'}")
    print(end_text(run_dir, json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))["headline"]))
    return 0


def end_text(run_dir: Path, headline: dict) -> str:
    """What a run's command (and `tickparity report`) ends with: the headline's two lines,
    then one line counting the refused orders by reason when there are any
    (modes.console.run_refusals)."""
    from modes.console import run_refusals

    refused = run_refusals(run_dir)
    return headline_text(headline) + (f"\n{refused}" if refused else "")


def headline_text(h: dict) -> str:
    """Two lines of the figures a desk looks at first."""
    from reports import format as fmt

    return (
        f"fills {fmt.integer(h['fills'])}  notional {fmt.num(h['notional'], 0)}  net PnL {fmt.money(h['net_pnl'])}"
        f"  max DD {fmt.num(h['max_drawdown'])}  fill ratio {fmt.pct(h['fill_ratio'])}"
        + (f"  deliveries {fmt.integer(h['deliveries'])}" if h.get("deliveries") else "") + "\n"
        f"arrival slippage {fmt.bps(h['arrival_slippage_bps'])} bps  eff. spread {fmt.bps(h['effective_spread_bps'])} bps"
        f"  markout 1s/60s {fmt.bps(h['markout_1s_bps'])}/{fmt.bps(h['markout_60s_bps'])} bps"
        f"  submit->ack p99 {fmt.duration(h['submit_to_ack_p99_ns'])}"
    )
