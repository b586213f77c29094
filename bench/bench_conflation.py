"""The cost of depth conflation (`[venues.X] depth_conflation_ms`) in the simulated venue.

    python -m bench.bench_conflation [--events N] [--repeat R]

One generated feed (bench.feed, as bench_sim), replayed by `SimCore.run_until` in two ways,
each with `depth_conflation_ms` 0 (off) and 100 (Binance's @depth@100ms):
(a) replay, no subscriptions, no orders (bench_sim's row (a)): conflation holds every book
    row in the venue's ring and keeps the exchange side awake (a conflating venue never
    goes dormant), so this is its whole cost; a third row keeps the exchange side awake
    without conflation, which splits that cost between the two;
(b) the same with a wake-up on every local book change (a strategy subscribed to the
    book; the wake is returned and nothing else done): conflation also turns many book
    wakes into one per 100 ms window, which is what a subscribed strategy gains.
Rates are feed events per second of process CPU time (best of --repeat). Nothing asserts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.bench_sim import REPLAY_STEP_NS, VENUE, _chunks, _Timer, bench_instrument  # noqa: E402
from bench.feed import FeedSpec, generate_feed  # noqa: E402
from bench.results import Row, RunRecord, add_arguments  # noqa: E402


def run(feed: np.ndarray, conflation_ms: int, wake_book: bool, lazy: bool = True) -> tuple[float, int, int]:
    """(CPU seconds, events, book wakes) of one replay; lazy=False keeps the exchange side
    awake without conflation (to split conflation's cost: the awake exchange vs the ring)."""
    from venues.sim import SimCore, SimVenueConfig, WakeKind

    cfg = SimVenueConfig.from_table(VENUE, {"queue_model": "risk_averse", "depth_conflation_ms": conflation_ms,
                                            "latency": {"entry_ns": 1_000_000, "response_ns": 1_000_000}})
    core = SimCore([bench_instrument()], {VENUE: cfg}, _chunks(feed), seed=1, lazy_exchange=lazy)
    book = np.full(1, wake_book, dtype=np.bool_)
    none = np.zeros(1, dtype=np.bool_)
    end = int(feed["local_ts"][-1]) + 1
    bound = int(feed["local_ts"][0])
    wakes = 0
    with _Timer() as t:
        while True:
            bound = min(bound + REPLAY_STEP_NS, end)
            while True:
                kind = core.run_until(bound, book, none).kind
                if kind == WakeKind.BOOK:
                    wakes += 1
                    continue
                break
            core.drain_bbo()
            core.drain_trades()
            if kind == WakeKind.END or bound >= end:
                break
    return t.cpu, int(core.events_processed), wakes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_conflation", description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    add_arguments(parser)
    args = parser.parse_args(argv)
    record = RunRecord("bench_conflation", sys.argv[1:] if argv is None else argv, vars(args))
    feed = generate_feed(FeedSpec(events=args.events, seed=7))
    small = feed[:20_000]
    for ms in (0, 100):  # compile / load every kernel variant first
        for wake in (False, True):
            run(small, ms, wake)
    print(f"depth conflation: {len(feed):,} events, best of {args.repeat}, events/s of CPU time")
    for wake in (False, True):
        case = "(b) wake on every book change" if wake else "(a) replay, no subscriptions"
        rates = {}
        for ms in (0, 100):
            best = min(run(feed, ms, wake) for _ in range(args.repeat))
            rates[ms] = best[1] / best[0]
            print(f"  {case:<34} depth_conflation_ms={ms:<4} {rates[ms] / 1e6:6.2f} M ev/s   book wakes {best[2]:,}")
            record.add(Row(f"conflation {case}, depth_conflation_ms={ms}", rates[ms], "ev/s",
                           detail={"events": best[1], "cpu_s": best[0], "book_wakes": best[2]}))
        if not wake:
            best = min(run(feed, 0, wake, lazy=False) for _ in range(args.repeat))
            print(f"  {case:<34} 0, exchange kept awake {best[1] / best[0] / 1e6:6.2f} M ev/s   (the awake "
                  "exchange side alone)")
            record.add(Row(f"conflation {case}, exchange kept awake", best[1] / best[0], "ev/s",
                           detail={"events": best[1], "cpu_s": best[0]}))
        print(f"  {'':<34} rate with / without conflation: {rates[100] / rates[0]:.2f}x")
    record.finish(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
