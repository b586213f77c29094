"""Where the plain-Python market maker's time goes, per order event (issue 16: "profile first").

    python -m bench.profile_session [--events N] [--cprofile] [--json PATH]

Runs the race's `TouchQuoter` (bench/strategies.py) through the real `TradingSession` and
backtest driver on the bench feed (bench/feed.py, 1M events by default), as the bench row
"tickparity" does, but with every method of the session's parts wrapped in a timer:

- an **order event** is one entry into the session for one order: a `ctx.submit`, a
  `ctx.cancel` (strategy -> session) or a venue report `session.on_order_event` (ack,
  fill, cancel reply, reject: venue -> session). Its time is inclusive: everything the
  session does for it until control returns.
- inside it, time is charged *exclusively* to the part whose method is running: risk
  (`session.guard` RiskGuard + `session.risk` RiskEngine), OMS (`session.oms`), ledger
  (`session.ledger`), audit (`session.audit`: canonical JSON + SHA-256 chain + write; the
  backtest's log keeps its records as rows and encodes them in bulk, `AuditLog(batch=True)`,
  so the event that fills a batch of 4,096 pays for all of them: the audit's p50 is a kept
  row, its mean the whole cost),
  venue adapter (`SimulatedVenue` and the `SimCore` calls it makes), recorder (the run
  directory's fill/equity rows: a real `RunWriter` into a temp dir), contingent (the
  contingent-order manager's hooks); what remains is the session's own code (`ctx`
  argument parsing, `venue_merge` records, views, `OrderUpdate` delivery) = "session".

Numbers are µs per order event: p50/p90/p99 of the inclusive time, and each part's mean
(its exclusive time summed over all order events / number of order events) and its
median over the events where it ran. Each wrapped call costs ~0.1-0.3 µs of timer
overhead, which inflates the inclusive figures; the overhead is measured (a wrapped no-op)
and printed with the number of wrapped calls per event, and an uninstrumented run gives
the session's true cost per order event as (run - core-only) CPU time / order events.

`--cprofile` also runs the same market maker under cProfile and prints the time per file
group (tottime: engine/oms.py -> OMS, ...) and the top functions; cProfile's own overhead
is larger than the wrappers' (every Python call), so use it for "which function", the
wrappers for "how many µs".
"""

from __future__ import annotations

import argparse
import inspect
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

PARTS = ("risk", "OMS", "ledger", "audit", "venue adapter", "recorder", "contingent", "session")


class Attribution:
    """Exclusive time per part inside each order event (see the module docstring)."""

    def __init__(self) -> None:
        self._clock = time.perf_counter_ns
        self.stack: list[list[Any]] = []  # [part, child ns]
        self.events: list[tuple[str, int]] = []  # (entry name, inclusive ns)
        self.cpu_ns: list[int] = []  # the same events' thread CPU time (no preemption in it)
        self.parts: list[dict[str, int]] = []  # per event: part -> exclusive ns
        self._current: dict[str, int] | None = None
        self.calls = 0  # wrapped calls made inside order events

    def wrap_entry(self, name: str, fn):
        clock, stack, thread_clock = self._clock, self.stack, time.thread_time_ns

        def entry(*args, **kwargs):
            if stack:  # an entry inside another (a strategy reacting in on_order_update): a part of it
                return fn(*args, **kwargs)
            parts: dict[str, int] = defaultdict(int)
            self._current = parts
            frame = ["session", 0]
            stack.append(frame)
            c0 = thread_clock()
            t0 = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                dt = clock() - t0
                self.cpu_ns.append(thread_clock() - c0)
                stack.pop()
                parts["session"] += dt - frame[1]
                self.events.append((name, dt))
                self.parts.append(parts)
                self._current = None

        return entry

    def wrap_part(self, part: str, fn):
        clock, stack = self._clock, self.stack

        def timed(*args, **kwargs):
            if not stack or stack[-1][0] == part:  # outside an event, or within the same part
                return fn(*args, **kwargs)
            self.calls += 1
            frame = [part, 0]
            stack.append(frame)
            t0 = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                dt = clock() - t0
                stack.pop()
                stack[-1][1] += dt
                self._current[part] += dt - frame[1]

        return timed

    def instrument(self, obj: Any, part: str, skip: frozenset[str] = frozenset()) -> int:
        """Wrap every method of `obj`'s class (instance attributes shadow them); returns
        how many. Objects whose instances take no attributes are left as they are."""
        n = 0
        for name, member in inspect.getmembers(type(obj)):
            if name.startswith("__") or name in skip or not inspect.isfunction(member):
                continue
            try:
                setattr(obj, name, self.wrap_part(part, getattr(obj, name)))
                n += 1
            except (AttributeError, TypeError):
                return n
        return n

    def overhead_ns(self, repeat: int = 200_000) -> float:
        """Median cost of one wrapped no-op call inside an event, minus the bare call."""
        def noop():
            return None

        probe = Attribution()  # its own stack: inside an event, in another part
        probe.stack.append(["session", 0])
        probe._current = defaultdict(int)
        wrapped = probe.wrap_part("probe", noop)
        clock = time.process_time_ns
        best = []
        for _ in range(5):
            t0 = clock()
            for _ in range(repeat):
                wrapped()
            t1 = clock()
            for _ in range(repeat):
                noop()
            t2 = clock()
            best.append(((t1 - t0) - (t2 - t1)) / repeat)
        return float(np.median(best))

    def summary(self) -> dict[str, Any]:
        incl = np.array([dt for _, dt in self.events], dtype=np.float64) / 1e3
        n = len(incl)
        out: dict[str, Any] = {"order_events": n, "wrapped_calls_per_event": self.calls / max(n, 1)}
        if n:
            out["inclusive_us"] = {"p50": float(np.percentile(incl, 50)), "p90": float(np.percentile(incl, 90)),
                                   "p99": float(np.percentile(incl, 99)), "mean": float(incl.mean())}
        by_entry: dict[str, list[float]] = defaultdict(list)
        for (name, dt) in self.events:
            by_entry[name].append(dt / 1e3)
        out["by_entry"] = {k: {"count": len(v), "p50_us": float(np.median(v)), "mean_us": float(np.mean(v))}
                           for k, v in by_entry.items()}
        # means over the events up to the p99 of the inclusive time: on a shared machine the
        # slowest 1% are preemptions (milliseconds), which would dominate a plain mean
        keep = incl <= np.percentile(incl, 99) if n else np.zeros(0, dtype=bool)
        out["trimmed_mean_us"] = float(incl[keep].mean()) if n else 0.0
        cpu = np.array(self.cpu_ns, dtype=np.float64) / 1e3
        if n:
            out["inclusive_cpu_us"] = {"p50": float(np.percentile(cpu, 50)), "p90": float(np.percentile(cpu, 90)),
                                       "p99": float(np.percentile(cpu, 99)), "mean": float(cpu.mean())}
        parts = {}
        for part in PARTS:
            vals = np.array([p.get(part, 0) for p in self.parts], dtype=np.float64) / 1e3
            ran = vals[vals > 0]
            parts[part] = {"mean_us": float(vals[keep].mean()) if n else 0.0,
                           "p50_when_run_us": float(np.median(ran)) if len(ran) else 0.0,
                           "share_of_events": len(ran) / max(n, 1)}
        total = sum(v["mean_us"] for v in parts.values()) or 1.0
        for v in parts.values():
            v["share_of_time"] = v["mean_us"] / total
        out["parts"] = parts
        return out


def instrumented_run(feed: np.ndarray, work: Path) -> tuple[Attribution, Any]:
    """The bench's plain-Python market maker with the session's parts wrapped; returns the
    attribution and the bench Result of the (slowed) run."""
    from bench import bench_sim

    att = Attribution()
    writer = _run_writer(work)

    def hook(session, core):
        ctx = session.ctx
        ctx.submit = att.wrap_entry("submit", ctx.submit)
        ctx.cancel = att.wrap_entry("cancel", ctx.cancel)
        session.on_order_event = att.wrap_entry("response", session.on_order_event)
        att.instrument(session.guard, "risk")
        att.instrument(session.risk, "risk")
        att.instrument(session.oms, "OMS")
        att.instrument(session.ledger, "ledger")
        att.instrument(session.audit, "audit")
        att.instrument(session.recorder, "recorder")
        att.instrument(session.contingent, "contingent")
        for venue in session.venues.values():
            att.instrument(venue, "venue adapter")
        # the core's order entry (submit/cancel) and top of book, not its replay loop
        att.instrument(core, "venue adapter", skip=frozenset({"run_until", "drain_bbo", "drain_trades"}))

    result = bench_sim.ours_market_maker(feed, work, session_hook=hook, recorder=writer)
    return att, result


def _run_writer(work: Path):
    """A real run-directory writer (the fills and equity rows a backtest writes)."""
    from bench.bench_sim import INSTRUMENT_ID, bench_instrument
    from engine.output import RunWriter

    staging = work / "run"
    staging.mkdir(parents=True, exist_ok=True)
    return RunWriter(staging, {INSTRUMENT_ID: bench_instrument()})


def cprofile_run(feed: np.ndarray, work: Path, top: int = 25) -> dict[str, Any]:
    """cProfile of the same market maker: tottime per file group and the top functions."""
    import cProfile
    import pstats

    from bench import bench_sim

    prof = cProfile.Profile()
    prof.enable()
    bench_sim.ours_market_maker(feed, work, recorder=_run_writer(work / "cprof"))
    prof.disable()
    stats = pstats.Stats(prof)
    groups: dict[str, float] = defaultdict(float)
    rows = []
    total = 0.0
    for (file, line, func), (_cc, nc, tt, ct, _callers) in stats.stats.items():
        total += tt
        groups[_group(file)] += tt
        rows.append((tt, ct, nc, f"{_short(file)}:{line}({func})"))
    rows.sort(reverse=True)
    return {"total_s": total, "groups": dict(sorted(groups.items(), key=lambda kv: -kv[1])),
            "top": [{"tottime_s": tt, "cumtime_s": ct, "calls": nc, "function": f} for tt, ct, nc, f in rows[:top]]}


# the phases of `tickparity backtest` with a compiled strategy: (label, module, attribute
# path) of the function that runs each; times are inclusive (a phase includes what it calls)
PHASES = (
    ("compiled loop: numba loop + the session replay of its log", "modes.backtest_compiled", "CompiledLoop.run"),
    ("  numba loop (venue + strategy + risk), call_compiled", "venues.sim.compiled_nb", "call_compiled"),
    ("  audit records (canonical JSON + SHA-256 + write)", "engine.audit", "AuditLog.write"),
    ("  audit records through compiled shapes (submit, fill)", "engine.audit", "AuditLog.write_shaped"),
    ("  equity samples (ledger marks, exact)", "engine.session", "TradingSession.sample_equity"),
    ("  recorder rows (fills)", "engine.output", "RunWriter.fill"),
    ("  recorder rows (equity)", "engine.output", "RunWriter.equity"),
    ("  top-of-book / trade tapes to Parquet (the last flush is inside finish)", "engine.output",
     "RunWriter._flush_market"),
    ("run directory: orders/fills/equity/inventory Parquet + JSON (finish)", "engine.output", "RunWriter.finish"),
    ("contingent.parquet", "modes.backtest", "write_contingent_table"),
)


@contextmanager
def timed_functions(specs: Any, record: Callable[[str, int], None]) -> Iterator[None]:
    """While the block runs, every function named in `specs` ((label, module, "Class.attr")
    tuples) is wrapped so that each call's thread CPU time (ns, inclusive) goes to
    `record(label, ns)`; the originals are back on exit (bench/bench_live.py --stages too)."""
    import importlib

    clock = time.thread_time_ns
    saved = []
    try:
        for label, module, attr in specs:
            owner = importlib.import_module(module)
            *path, name = attr.split(".")
            for part in path:
                owner = getattr(owner, part)
            fn = getattr(owner, name)
            saved.append((owner, name, fn))

            def timed(*args, _fn=fn, _label=label, **kwargs):
                t0 = clock()
                try:
                    return _fn(*args, **kwargs)
                finally:
                    record(_label, clock() - t0)

            setattr(owner, name, timed)
        yield
    finally:
        for owner, name, fn in reversed(saved):
            setattr(owner, name, fn)


def phases_compiled_e2e(feed: np.ndarray, work: Path) -> dict[str, Any]:
    """`tickparity backtest` of the compiled market maker (bench_sim.ours_backtest_e2e: Parquet
    store in, run directory and audit log out), timed whole and per phase (PHASES) by thread
    CPU time, with a timer around each phase's function (few calls but the audit's, so little
    overhead; the run is also timed without them). The session replay's own share is the
    loop minus the numba call; store reading happens inside the loop (chunks on demand)."""

    from bench import bench_sim

    spec = bench_sim.write_store(feed, work / "feed_parquet")
    first = int(feed["exch_ts"][0])
    bench_sim.ours_backtest_e2e(spec, work, True, first)  # numba cache, imports
    plain = bench_sim.ours_backtest_e2e(spec, work, True, first)
    totals = {label: 0 for label, _m, _a in PHASES}
    calls = {label: 0 for label, _m, _a in PHASES}

    def record(label: str, ns: int) -> None:
        totals[label] += ns
        calls[label] += 1

    with timed_functions(PHASES, record):
        timed_run = bench_sim.ours_backtest_e2e(spec, work, True, first)
    phases = [{"phase": label, "cpu_s": totals[label] / 1e9, "calls": calls[label]} for label, _m, _a in PHASES]
    loop, numba = phases[0]["cpu_s"], phases[1]["cpu_s"]
    phases.insert(2, {"phase": "  session replay and the Python around the loop (loop - numba)",
                      "cpu_s": loop - numba, "calls": None})
    rest = timed_run.cpu - loop - phases[-2]["cpu_s"] - phases[-1]["cpu_s"]
    phases.append({"phase": "the rest: config, store metadata, summary, publishing the directory",
                   "cpu_s": rest, "calls": None})
    return {"uninstrumented_wall_s": plain.seconds, "uninstrumented_cpu_s": plain.cpu,
            "timed_cpu_s": timed_run.cpu, "events": plain.events, "counts": plain.counts, "phases": phases}


def cprofile_compiled_e2e(feed: np.ndarray, work: Path, top: int = 20) -> dict[str, Any]:
    """The same compiled end-to-end run under cProfile: tottime per file group and the top
    functions (which Python functions; cProfile inflates Python against numba and C)."""
    import cProfile
    import pstats

    from bench import bench_sim

    spec = f"parquet:{work / 'feed_parquet'}"
    if not (work / "feed_parquet").exists():
        spec = bench_sim.write_store(feed, work / "feed_parquet")
    prof = cProfile.Profile()
    prof.enable()
    bench_sim.ours_backtest_e2e(spec, work, True, int(feed["exch_ts"][0]))
    prof.disable()
    stats = pstats.Stats(prof)
    groups: dict[str, float] = defaultdict(float)
    rows = []
    for (file, line, func), (_cc, nc, tt, ct, _callers) in stats.stats.items():
        groups[_group(file)] += tt
        rows.append((tt, ct, nc, f"{_short(file)}:{line}({func})"))
    rows.sort(reverse=True)
    return {"groups": dict(sorted(groups.items(), key=lambda kv: -kv[1])),
            "top": [{"tottime_s": tt, "cumtime_s": ct, "calls": nc, "function": f} for tt, ct, nc, f in rows[:top]]}


_GROUPS = (("engine/risk", "risk"), ("engine/oms", "OMS"), ("engine/ledger", "ledger"),
           ("engine/audit", "audit"), ("engine/fees", "ledger"), ("venues/simulated", "venue adapter"),
           ("venues/sim/", "venue adapter (SimCore)"), ("engine/output", "recorder"),
           ("engine/contingent", "contingent"), ("engine/session", "session"),
           ("engine/venue_merge", "session"), ("engine/context", "session"), ("engine/views", "session"),
           ("engine/types", "session (types)"), ("modes/backtest", "driver"), ("bench/", "strategy + bench"),
           ("decimal", "builtins: Decimal"), ("json", "builtins: json"))


def _group(file: str) -> str:
    f = file.replace("\\", "/")
    if f == "~":
        return "builtins (C calls: hashlib, Decimal, json encoder, numpy...)"
    for key, name in _GROUPS:
        if key in f:
            return name
    return "other Python (stdlib, numpy wrappers)"


def _short(file: str) -> str:
    try:
        return str(Path(file).resolve().relative_to(REPO))
    except ValueError:
        return Path(file).name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_session", description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="feed rows (default 1M, the race's --quick)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cprofile", action="store_true", help="also run under cProfile (file groups, top functions)")
    parser.add_argument("--compiled", action="store_true",
                        help="also profile `tickparity backtest` of the compiled market maker end to end")
    parser.add_argument("--json", metavar="PATH", help="write the figures to this results file")
    parser.add_argument("--no-json", action="store_true", help="do not write bench/results/*.json")
    args = parser.parse_args(argv)

    from bench import bench_sim
    from bench.feed import FeedSpec, generate_feed
    from bench.results import RunRecord

    record = RunRecord("profile_session", argv, vars(args))
    feed = generate_feed(FeedSpec(events=args.events, seed=args.seed))
    small = generate_feed(FeedSpec(events=20_000, seed=args.seed + 1))
    with tempfile.TemporaryDirectory(prefix="tickparity-profile-") as tmp:
        work = Path(tmp)
        bench_sim.ours_market_maker(small, work)  # warm-up: numba cache load, imports
        plain = bench_sim.ours_market_maker(feed, work, recorder=_run_writer(work / "plain"))
        core = bench_sim.ours_core_quoter(feed)
        att, slowed = instrumented_run(feed, work)
        over = att.overhead_ns()
        s = att.summary()
        prof = cprofile_run(feed, work) if args.cprofile else None
        comp = phases_compiled_e2e(feed, work) if args.compiled else None
        comp_prof = cprofile_compiled_e2e(feed, work) if args.compiled and args.cprofile else None
    n = s["order_events"]
    true_us = (plain.cpu - core.cpu) / n * 1e6 if n else float("nan")
    entries = ", ".join(f"{k} {v['count']:,}" for k, v in s["by_entry"].items())
    print(f"plain-Python market maker, {plain.events:,} feed events, {n:,} order events ({entries})")
    print(f"  uninstrumented: {plain.cpu:.2f} s CPU ({plain.cpu_rate / 1e6:.2f} M ev/s); core only "
          f"{core.cpu:.2f} s -> session + strategy {true_us:.1f} us per order event")
    print(f"  instrumented run: {slowed.cpu:.2f} s CPU; {s['wrapped_calls_per_event']:.1f} wrapped calls per "
          f"order event at ~{over:.0f} ns each (~{s['wrapped_calls_per_event'] * over / 1e3:.1f} us of overhead "
          f"in the figures below)")
    inc = s.get("inclusive_us", {})
    print(f"  per order event, inclusive: p50 {inc.get('p50', 0):.1f} us, p90 {inc.get('p90', 0):.1f} us, "
          f"p99 {inc.get('p99', 0):.1f} us, mean {inc.get('mean', 0):.1f} us, "
          f"mean below the p99 {s['trimmed_mean_us']:.1f} us")
    cpu = s.get("inclusive_cpu_us", {})
    print(f"  per order event, thread CPU time (preemption excluded): p50 {cpu.get('p50', 0):.1f} us, "
          f"p90 {cpu.get('p90', 0):.1f} us, p99 {cpu.get('p99', 0):.1f} us, mean {cpu.get('mean', 0):.1f} us")
    for k, v in s["by_entry"].items():
        print(f"    {k:<9} {v['count']:>8,}  p50 {v['p50_us']:6.1f} us  mean {v['mean_us']:6.1f} us")
    print("  exclusive time per part (mean over the events below the p99; p50 over the events it ran in):")
    print(f"  {'part':<14} {'mean us/event':>14} {'share':>6} {'p50 when run':>13} {'runs in':>8}")
    for part, v in s["parts"].items():
        print(f"  {part:<14} {v['mean_us']:>14.2f} {v['share_of_time']:>6.0%} {v['p50_when_run_us']:>13.2f} "
              f"{v['share_of_events']:>8.0%}")
    if prof is not None:
        print(f"\ncProfile (tottime, {prof['total_s']:.2f} s in all, with cProfile's overhead):")
        for g, tt in prof["groups"].items():
            print(f"  {g:<55} {tt:7.2f} s {tt / prof['total_s']:6.1%}")
        print("  top functions by tottime:")
        for r in prof["top"]:
            print(f"    {r['tottime_s']:6.2f} s  {r['calls']:>9,}  {r['function']}")

    if comp is not None:
        cpu = comp["uninstrumented_cpu_s"]
        print(f"\ncompiled market maker, `tickparity backtest` end to end: {cpu:.2f} s CPU "
              f"({comp['events'] / cpu / 1e6:.2f} M ev/s); with phase timers {comp['timed_cpu_s']:.2f} s CPU:")
        for ph in comp["phases"]:
            n = "" if ph["calls"] is None else f"{ph['calls']:>8,} calls"
            print(f"  {ph['phase']:<72} {ph['cpu_s']:7.3f} s {ph['cpu_s'] / comp['timed_cpu_s']:6.1%} {n}")
    if comp_prof is not None:
        print("  cProfile of the same run, tottime per file group:")
        for g, tt in comp_prof["groups"].items():
            print(f"    {g:<55} {tt:7.2f} s")
        print("  top functions by tottime:")
        for r in comp_prof["top"]:
            print(f"    {r['tottime_s']:6.2f} s  {r['calls']:>9,}  {r['function']}")

    from bench.results import Row

    record.add(Row("plain Python: session per order event p50", inc.get("p50"), "us", "lower",
                   note="instrumented (wrapper overhead included)",
                   detail={"p90": inc.get("p90"), "p99": inc.get("p99"), "mean": inc.get("mean"), "cpu_us": cpu,
                           "order_events": n, "wrapped_calls_per_event": s["wrapped_calls_per_event"],
                           "wrapper_overhead_ns": over, "by_entry": s["by_entry"]}))
    record.add(Row("plain Python: session + strategy per order event (uninstrumented)", true_us, "us", "lower",
                   detail={"plain_cpu_s": plain.cpu, "core_only_cpu_s": core.cpu, "order_events": n}))
    for part, v in s["parts"].items():
        record.add(Row(f"plain Python per order event: {part}", v["mean_us"], "us", "lower", detail=v))
    record.add(Row("market maker: tickparity (plain Python)", plain.cpu_rate, "ev/s",
                   detail={"events": plain.events, "cpu_s": plain.cpu, "wall_s": plain.seconds}))
    if prof is not None:
        record.extra["cprofile"] = prof
    if comp_prof is not None:
        record.extra["compiled_e2e_cprofile"] = comp_prof
    if comp is not None:
        record.extra["compiled_e2e_phases"] = comp
        for ph in comp["phases"]:
            record.add(Row(f"compiled end to end: {ph['phase'].strip()}", ph["cpu_s"], "s", "lower",
                           detail={"calls": ph["calls"]}))
        record.add(Row("market maker: tickparity backtest compiled", comp["events"] / comp["uninstrumented_cpu_s"],
                       "ev/s", detail={"cpu_s": comp["uninstrumented_cpu_s"], "wall_s": comp["uninstrumented_wall_s"],
                                       "counts": comp["counts"]}))
    if not args.no_json:
        print(f"\nresults: {record.write(args.json)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
