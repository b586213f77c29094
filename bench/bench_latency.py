"""The cost of pluggable latency models (issue 16): bench_sim's rows under each kind of
latency model.

    python -m bench.bench_latency [--events N] [--repeat R]

One generated feed (bench.feed, as bench_sim), and three of bench_sim's rows: (a) replay
(no orders: the latency model is never called; the kernels only carry it), the market
maker's "core only" (SimCore from Python: every request's entry latency is one numba call
from Python, `latency_nb.request_arrival_nb`) and "compiled nb" (the compiled-strategy
loop: entry and response latencies inside numba). Each under
  constant            the shipped model, `latency.model = "constant"` (1 ms each way),
  constant by path    the same functions named by path (bench/latency_models.py): what a
                      user's model costs over a shipped one,
  empirical           the shipped empirical model (samples 0.5 to 1.5 ms, a seeded
                      splitmix64 draw per request and per response).
Rates are feed events per second of process CPU time, best of --repeat, the models
interleaved so load spikes hit each. The cost of the indirection itself (the switch over
models against the closed list before it) is measured by running bench_sim before and after
the change: docs/models.md "Latency models". Nothing asserts.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import bench_sim  # noqa: E402
from bench.feed import FeedSpec, generate_feed  # noqa: E402
from bench.results import Row, RunRecord, add_arguments  # noqa: E402

ROWS = {"replay": bench_sim.ours_replay, "core only": bench_sim.ours_core_quoter,
        "compiled nb": bench_sim.ours_compiled_loop}


def venue_tables(tmp: Path) -> dict[str, dict]:
    samples = tmp / "latency.txt"
    samples.write_text("\n".join(f"{500_000 + 50_000 * k},{1_500_000 - 50_000 * k}" for k in range(21)))
    base = {"entry_ns": bench_sim.ENTRY_NS, "response_ns": bench_sim.RESPONSE_NS, "feed_ns": 0}
    return {
        "constant": {"latency": base},
        "constant by path": {"latency": {"model": "bench.latency_models:constant_by_path", "feed_ns": 0,
                                         "params": [bench_sim.ENTRY_NS] * 3 + [bench_sim.RESPONSE_NS]}},
        "empirical": {"latency": {"model": "empirical", "file": str(samples), "feed_ns": 0}},
    }


def run(name: str, table: dict, feed):
    """One of bench_sim's rows with the venue under `table` (bench_sim's functions read
    their venue from bench_sim.venue_config, swapped here for the call)."""
    from venues.sim import SimVenueConfig

    cfg = SimVenueConfig.from_table(bench_sim.VENUE, {"queue_model": "risk_averse", **table,
                                                      "maker_fee_bps": float(bench_sim.MAKER_BPS),
                                                      "taker_fee_bps": float(bench_sim.TAKER_BPS)})
    shipped = bench_sim.venue_config
    bench_sim.venue_config = lambda: cfg
    try:
        return ROWS[name](feed)
    finally:
        bench_sim.venue_config = shipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_latency", description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    add_arguments(parser)
    args = parser.parse_args(argv)
    record = RunRecord("bench_latency", sys.argv[1:] if argv is None else argv, vars(args))
    feed = generate_feed(FeedSpec(events=args.events, seed=7))
    small = generate_feed(FeedSpec(events=20_000, seed=8))
    with tempfile.TemporaryDirectory(prefix="tickparity-bench-latency-") as tmp:
        tables = venue_tables(Path(tmp))
        for table in tables.values():  # compile / load every kernel variant first
            for row in ROWS:
                run(row, table, small)
        best: dict[tuple[str, str], object] = {}
        for _ in range(max(1, args.repeat)):
            for row in ROWS:
                for model, table in tables.items():
                    res = run(row, table, feed)
                    key = (row, model)
                    if key not in best or res.cpu < best[key].cpu:
                        best[key] = res
    print(f"latency models: {len(feed):,} events, best of {args.repeat}, events/s of CPU time")
    for row in ROWS:
        base = best[(row, "constant")].cpu_rate
        for model in tables:
            res = best[(row, model)]
            counts = ", ".join(f"{k} {int(v):,}" for k, v in res.counts.items() if k in ("submits", "fill events"))
            print(f"  {row:<12} {model:<18} {res.cpu_rate / 1e6:7.2f} M ev/s  {res.cpu_rate / base:5.2f}x "
                  f"of constant  {counts}")
            record.add(Row(f"latency {row}, {model}", res.cpu_rate, "ev/s", peer="constant",
                           peer_figure=base, detail={"events": res.events, "cpu_s": res.cpu, **res.counts}))
    record.finish(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
