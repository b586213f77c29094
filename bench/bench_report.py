"""Benchmark: build the report of a synthetic run with a million fills.

    .venv/bin/python bench/bench_report.py [--fills 1000000] [--seed 7] [--keep DIR]

Prints the seconds spent generating the run directory (not part of the report), loading
it, computing the metrics, drawing the plots and writing the files, the total time of
`write_report`, and the size of report.html and summary.json. Not a test: nothing is
asserted, so a slow machine never fails CI.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.results import Row, RunRecord, add_arguments  # noqa: E402
from reports import report as report_module  # noqa: E402
from reports.metrics import compute  # noqa: E402
from reports.rundir import load_run  # noqa: E402
from reports.synthetic import write_synthetic_run  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fills", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--duration", type=float, default=6 * 3600.0, help="run length in seconds")
    parser.add_argument("--keep", type=Path, default=None, help="write the run here and keep it")
    parser.add_argument("--profile", action="store_true", help="print the top functions of write_report")
    add_arguments(parser)
    args = parser.parse_args(argv)
    record = RunRecord("bench_report", sys.argv[1:] if argv is None else argv, vars(args))

    with tempfile.TemporaryDirectory(prefix="tp-bench-report-") as tmp:
        run_dir = args.keep if args.keep is not None else Path(tmp) / "run"
        t0 = time.perf_counter()
        write_synthetic_run(run_dir, fills=args.fills, seed=args.seed, duration_s=args.duration)
        t_gen = time.perf_counter() - t0

        t0 = time.perf_counter()
        run = load_run(run_dir)
        t_load = time.perf_counter() - t0
        t0 = time.perf_counter()
        metrics = compute(run)
        t_metrics = time.perf_counter() - t0
        t0 = time.perf_counter()
        report_module.make_plots(metrics)
        t_plots = time.perf_counter() - t0

        profiler = cProfile.Profile() if args.profile else None
        t0 = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        html = report_module.write_report(run_dir)
        if profiler is not None:
            profiler.disable()
        t_total = time.perf_counter() - t0

        summary = run_dir / "summary.json"
        print(f"fills                {len(run.fills):>12,}")
        print(f"orders               {len(run.orders):>12,}")
        print(f"bbo rows             {run.quotes.rows:>12,}")
        print(f"trade rows           {run.trades.rows:>12,}")
        print(f"equity rows          {len(run.equity.ts) if run.equity is not None else 0:>12,}")
        print(f"generate run dir     {t_gen:>10.2f} s   (synthetic data, not part of the report)")
        print(f"  load               {t_load:>10.2f} s")
        print(f"  metrics            {t_metrics:>10.2f} s")
        print(f"  plots              {t_plots:>10.2f} s")
        print(f"write_report total   {t_total:>10.2f} s")
        print(f"report.html          {html.stat().st_size / 1024:>10.1f} KiB")
        print(f"summary.json         {summary.stat().st_size / 1024:>10.1f} KiB")
        if profiler is not None:
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
        counts = {"fills": len(run.fills), "orders": len(run.orders), "bbo_rows": run.quotes.rows,
                  "trade_rows": run.trades.rows}
        for name, seconds in (("report: load", t_load), ("report: metrics", t_metrics), ("report: plots", t_plots),
                              ("report: write_report total", t_total)):
            record.add(Row(name, seconds, "s", better="lower", detail=counts))
        record.add(Row("report: report.html size", html.stat().st_size / 1024, "KiB", better="lower"))
    record.finish(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
