"""The replay loop keeps the objects made before it out of full garbage collections
(modes/backtest.py `_setup_frozen`, bench/PROFILE.md 1g) and puts them back afterwards."""

import gc

from modes.backtest import _setup_frozen
from modes.cli import main

STRATEGY = '''
import gc
from engine.strategy import Strategy


class FreezeProbe(Strategy):
    """Notes the collector's frozen-object count at every timer; writes them to `record`."""

    def __init__(self, record: str) -> None:
        self.record = record
        self.seen = []

    def on_start(self, ctx):
        ctx.schedule(every_ns=1_000_000_000)

    def on_timer(self, ctx, ts):
        self.seen.append(gc.get_freeze_count())

    def on_stop(self, ctx):
        with open(self.record, "w") as f:
            f.write(" ".join(str(n) for n in self.seen))
'''


def test_a_backtest_runs_its_loop_with_the_setup_frozen_and_unfreezes_it(tmp_path):
    path = tmp_path / "probe.py"
    path.write_text(STRATEGY)
    assert gc.get_freeze_count() == 0
    record = tmp_path / "seen.txt"
    code = main(["backtest", "--strategy", f"{path}:FreezeProbe", "--data", "synthetic:3:1m",
                 "--param", f'record="{record}"', "--out", str(tmp_path / "run"), "--no-report"])
    assert code == 0
    seen = [int(n) for n in record.read_text().split()]
    assert len(seen) >= 50 and min(seen) > 0  # every timer ran with the setup frozen
    assert gc.get_freeze_count() == 0  # and nothing stays frozen after the run


def test_a_callers_freeze_is_left_as_it_is():
    # A frozen object may still be freed by its last reference going (another test's
    # thread, a cache): the count can fall by a few while frozen, never to 0 unless unfrozen.
    gc.freeze()
    try:
        assert gc.get_freeze_count() > 0
        with _setup_frozen():
            assert gc.get_freeze_count() > 0
        assert gc.get_freeze_count() > 0  # not undone by the loop
    finally:
        gc.unfreeze()
    with _setup_frozen():
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0


def test_the_loop_raises_generation_0s_threshold_and_puts_it_back():
    # fewer young collections in the loop (bench/PROFILE.md 1j); a caller's higher
    # threshold is kept, and whatever the caller had comes back after the loop
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        with _setup_frozen():
            assert gc.get_threshold() == (50_000, 10, 10)
        assert gc.get_threshold() == (700, 10, 10)
        gc.set_threshold(80_000, 5, 7)
        with _setup_frozen():
            assert gc.get_threshold() == (80_000, 5, 7)
        assert gc.get_threshold() == (80_000, 5, 7)
    finally:
        gc.set_threshold(*before)
