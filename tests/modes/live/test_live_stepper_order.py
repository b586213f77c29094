"""A live step applies the venue's reports at their receipt times, after the timers due
before them (modes/live/stepper.py): a step that runs late on a loaded machine must not
move a timer's decision past a report (README "Parity"). Times pinned by hand."""

from __future__ import annotations

from types import SimpleNamespace

from engine.config import resolve
from modes.backtest import resolve_run
from modes.live.build import build_session
from modes.live.driver import run_step

MS = 1_000_000
T0 = 1_700_000_000_000 * MS

STRATEGY = '''
from engine import Strategy

class Timers(Strategy):
    seen = []

    def on_start(self, ctx):
        ctx.schedule(every_ns=100_000_000)

    def on_timer(self, ctx, ts):
        Timers.seen.append(("timer", ts, ctx.now))
'''


def test_timers_due_before_a_report_fire_at_their_time_first(tmp_path):
    from venues.simulated import SimulatedVenue

    (tmp_path / "timers.py").write_text(STRATEGY)
    config = resolve({"run": {"strategy": "timers.py:Timers", "data": "synthetic:0",
                              "instruments": ["binance:BTC/USDT"]},
                      "venues": {"binance": {"profile": "zero-cost"}}}, {}, base_dir=str(tmp_path))
    resolved = resolve_run(config)
    built = build_session(resolved, tmp_path / "run", T0, "tp",
                          lambda core: {n: SimulatedVenue(n, core, c) for n, c in resolved.venue_configs.items()})
    seen = built.session.strategy.seen
    built.stepper.apply_report = lambda report: seen.append(("report", report.local_ts, built.clock.now()))
    run_step(built, {"now": T0, "start": 1}, [])
    # one late step at 250 ms holding a report received at 150 ms
    built.stepper.step(T0 + 250 * MS, [SimpleNamespace(local_ts=T0 + 150 * MS)])
    assert [(kind, (ts - T0) // MS, (now - T0) // MS) for kind, ts, now in seen] == [
        ("timer", 100, 100), ("report", 150, 150), ("timer", 200, 200)]


MARKS = '''
from engine import Strategy

class MarkTimers(Strategy):
    seen = []
    probe = None

    def on_start(self, ctx):
        ctx.schedule(every_ns=100_000_000)

    def on_timer(self, ctx, ts):
        MarkTimers.seen.append((ts, MarkTimers.probe()))
'''


def test_a_mark_received_after_a_due_timer_is_not_seen_by_it(tmp_path):
    """Testnet/live mark prices (modes/live/derivatives.py rows): a late step at 250 ms holds
    a mark received at 150 ms; the timer due at 100 ms decides on no mark yet, the one at
    200 ms on it (it was applied for the whole step up front: the 100 ms timer saw a mark
    from its future, which neither a backtest nor the session's own order of events has)."""
    import numpy as np

    from engine.types import EVENT_DTYPE, EventKind
    from venues.simulated import SimulatedVenue

    inst_id = "binanceusdm:BTC/USDT:USDT"
    (tmp_path / "marks.py").write_text(MARKS)
    config = resolve({"run": {"strategy": "marks.py:MarkTimers", "data": "synthetic:0", "instruments": [inst_id]},
                      "venues": {"binanceusdm": {"profile": "zero-cost"}}}, {}, base_dir=str(tmp_path))
    resolved = resolve_run(config)
    built = build_session(resolved, tmp_path / "run", T0, "tp",
                          lambda core: {n: SimulatedVenue(n, core, c) for n, c in resolved.venue_configs.items()})
    inst = resolved.instruments[inst_id]
    strategy = type(built.session.strategy)
    strategy.probe = staticmethod(lambda: built.session.ledger.derivatives.mark_of(inst_id))
    run_step(built, {"now": T0, "start": 1}, [])
    mark = np.zeros(1, dtype=EVENT_DTYPE)
    mark["kind"], mark["price"] = EventKind.MARK_PRICE, inst.price_to_ticks(inst.round_price(60_000, "down"))
    mark["local_ts"], mark["exch_ts"] = T0 + 150 * MS, T0 + 149 * MS
    built.stepper.push(mark)
    built.stepper.step(T0 + 250 * MS, [])
    assert [((ts - T0) // MS, m) for ts, m in strategy.seen] == [(100, None), (200, inst.round_price(60_000, "down"))]
    assert built.session.ledger.derivatives.mark_ts[inst_id] == T0 + 149 * MS
