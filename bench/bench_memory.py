"""Peak memory of `tickparity backtest` on the race's market maker (issue 16: the 10M-event
run, about 100k orders, under 1 GB peak RSS).

    python bench/bench_memory.py [--events N] [--strategies python,compiled] [--keep DIR] [--json PATH]
    python -m bench --only memory --quick        # 1M events

Writes the race's feed (bench/feed.py, N rows, seed 7) to a Parquet store, then runs
`tickparity backtest --config CFG --no-report` in a child process per strategy — the plain
Python `TouchQuoter` (bench/strategies.py) and the compiled `CompiledTouchQuoter`
(examples/compiled_market_maker.py), the race's settings (bench_sim.backtest_config) —
and reads the child's peak resident set from the kernel (VmHWM of /proc/self/status, taken
by the child as it ends: the whole process, interpreter, numba, pyarrow, the run and the
headline the CLI prints). The store is written by this parent, so its memory is not
counted (and `wait4`'s `ru_maxrss` is not used: it carries the parent's peak across
fork+exec). Prints events, orders, fills, wall time and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

TARGET_MB = 1024


def _toml_value(value) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))


def write_config(path: Path, config) -> None:
    """A RunConfig (bench_sim.backtest_config) as the TOML a user would write."""
    file, _, cls = config.strategy.rpartition(":")  # relative to the repository, made absolute
    lines = ["[run]", f"strategy = {_toml_value(f'{REPO / file}:{cls}')}", f"data = {_toml_value(config.data)}",
             f"instruments = [{', '.join(_toml_value(i) for i in config.instruments)}]",
             f"seed = {config.seed}", f"out = {_toml_value(config.out)}", "", "[run.params]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in config.params.items()]
    for venue, table in config.venues.items():
        lines += ["", f"[venues.{venue}]"] + [f"{k} = {_toml_value(v)}" for k, v in table.items()]
    path.write_text("\n".join(lines) + "\n")


# the CLI in a fresh interpreter, reporting its own peak RSS (VmHWM) when it ends: a
# child's rusage ru_maxrss is not usable here, it keeps the parent's peak across fork+exec
_CHILD = r"""
import sys
from pathlib import Path
import modes.cli as cli

def hwm():
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmHWM:"))
    return line.split()[1]

marks = {}
headline = getattr(cli, "_headline", None)
if headline is not None:  # the peak of the run itself, before the CLI computes its headline
    def _headline(run_dir):
        marks["run"] = hwm()
        return headline(run_dir)
    cli._headline = _headline
try:
    code = cli.main(sys.argv[1:])
finally:
    Path(sys.argv[-1] + ".hwm").write_text(hwm() + " " + marks.get("run", "0"))
sys.exit(code)
"""


def run_child(config_path: Path, strategy: str) -> dict:
    """`tickparity backtest --config CFG --no-report` (modes.cli.main, what the console
    script runs) in a fresh interpreter; its peak RSS is the kernel's VmHWM of that process."""
    env = dict(os.environ, TICKPARITY_PROGRESS="0")
    hwm_file = Path(str(config_path) + ".hwm")
    hwm_file.unlink(missing_ok=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, "backtest", "--no-report", "--config", str(config_path)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if proc.returncode != 0 or not hwm_file.exists():
        raise RuntimeError(f"tickparity backtest ({strategy}) exited with {proc.returncode}:\n{out[-3000:]}")
    peak, run_peak = (int(x) / 1024.0 for x in hwm_file.read_text().split())
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": peak,
            "run_peak_rss_mb": run_peak or None, "output": out}


def where_memory(spec: str, work: Path, compiled: bool, top: int = 15) -> list[tuple[str, float, int]]:
    """What holds memory at the end of the loop: one in-process `run_backtest` under
    tracemalloc (Python allocations only: numpy buffers and pyarrow's pool are counted by
    numpy's tracemalloc hook and not at all, respectively), snapshot taken when the run
    directory's tables are about to be written (`RunWriter.finish`), grouped by the line
    that allocated. Returns (site, MB, blocks), largest first. Slow (~3-5x)."""
    import tracemalloc

    from bench.bench_sim import backtest_config
    from engine.output import RunWriter
    from modes.backtest import run_backtest

    out = work / ("where-compiled" if compiled else "where-python")
    config = backtest_config(spec, out, compiled=compiled)
    taken: list = []
    finish = RunWriter.finish

    def finish_with_snapshot(self, *args, **kwargs):
        taken.append(tracemalloc.take_snapshot())
        return finish(self, *args, **kwargs)

    RunWriter.finish = finish_with_snapshot
    tracemalloc.start(1)
    try:
        run_backtest(config, out, write_html=False)
    finally:
        tracemalloc.stop()
        RunWriter.finish = finish
    stats = taken[0].statistics("lineno")
    rows = []
    for st in stats[:top]:
        frame = st.traceback[0]
        try:
            name = str(Path(frame.filename).resolve().relative_to(REPO))
        except ValueError:
            name = Path(frame.filename).name
        rows.append((f"{name}:{frame.lineno}", st.size / 2**20, st.count))
    total = sum(st.size for st in stats) / 2**20
    rows.insert(0, ("total traced (Python + numpy)", total, sum(st.count for st in stats)))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_memory", description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000, help="feed rows (default 10M)")
    parser.add_argument("--quick", action="store_true", help="1M events")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--strategies", default="python,compiled", help="comma list of: python, compiled")
    parser.add_argument("--keep", metavar="DIR", help="work in DIR (store and run directories kept)")
    parser.add_argument("--where", action="store_true",
                        help="also run each strategy once in this process under tracemalloc and print what "
                             "holds memory when the run directory is written")
    parser.add_argument("--json", metavar="PATH", help="results file (default bench/results/<UTC>-<sha>.json)")
    parser.add_argument("--no-json", action="store_true")
    args = parser.parse_args(argv)
    events = 1_000_000 if args.quick else args.events
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    bad = set(strategies) - {"python", "compiled"}
    if bad:
        parser.error(f"--strategies: unknown {sorted(bad)} (python, compiled)")

    from bench.bench_sim import backtest_config, write_store
    from bench.feed import FeedSpec, generate_feed
    from bench.results import Row, RunRecord

    record = RunRecord("bench_memory", argv, vars(args))
    tmp = None
    if args.keep:
        work = Path(args.keep)
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="tickparity-memory-")
        work = Path(tmp.name)
    try:
        store = work / f"feed_{events}"
        spec = f"parquet:{store}"
        if not store.exists():
            t0 = time.perf_counter()
            feed = generate_feed(FeedSpec(events=events, seed=args.seed))
            write_store(feed, store)
            del feed
            print(f"feed: {events:,} events written to {spec} in {time.perf_counter() - t0:.1f} s", flush=True)
        for name in strategies:
            out = work / f"run-{name}"
            config = backtest_config(spec, out, compiled=name == "compiled")
            cfg_path = work / f"{name}.toml"
            write_config(cfg_path, config)
            if out.exists():
                import shutil

                shutil.rmtree(out)
            r = run_child(cfg_path, config.strategy)
            run = json.loads((out / "summary.json").read_text())["run"]
            verdict = "met" if r["peak_rss_mb"] < TARGET_MB else "MISSED"
            print(f"tickparity backtest {name:<8}: {run['events']:,} events, {run['orders']:,} orders, "
                  f"{run['fills']:,} fills; wall {r['wall_s']:.1f} s, CPU {r['cpu_s']:.1f} s; "
                  f"peak RSS {r['peak_rss_mb']:,.0f} MB (target < {TARGET_MB} MB at 10M events: {verdict}); "
                  f"before the CLI's headline {r['run_peak_rss_mb'] or float('nan'):,.0f} MB",
                  flush=True)
            if args.where:
                print(f"  tracemalloc, {name}: what is allocated when the run directory is written:")
                for site, mb, blocks in where_memory(spec, work, name == "compiled"):
                    print(f"    {mb:9.1f} MB {blocks:>11,} blocks  {site}", flush=True)
            record.add(Row(f"memory: tickparity backtest {name}, {events:,} events: peak RSS", r["peak_rss_mb"],
                           "MB", "lower", detail={"events": run["events"], "orders": run["orders"],
                                                  "run_peak_rss_mb": r["run_peak_rss_mb"],
                                                  "fills": run["fills"], "wall_s": r["wall_s"], "cpu_s": r["cpu_s"]}))
    finally:
        if tmp is not None:
            tmp.cleanup()
    if not args.no_json:
        print(f"results: {record.write(args.json)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
