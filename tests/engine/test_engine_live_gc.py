"""engine.live_gc.quiet_collector: start-up frozen, generation 0's threshold raised while
the block runs, the collector as it was afterwards (tests share one process)."""

import gc

from engine.live_gc import LIVE_GEN0_THRESHOLD, quiet_collector


def test_quiet_collector_freezes_raises_and_restores():
    before = gc.get_threshold()
    frozen_before = gc.get_freeze_count()
    keep = [object() for _ in range(10)] + [[] for _ in range(10)]  # alive at "start-up"
    with quiet_collector():
        assert gc.get_threshold() == (max(LIVE_GEN0_THRESHOLD, before[0]), before[1], before[2])
        assert gc.get_freeze_count() >= frozen_before + 10  # the lists above among them
        cycle = []
        cycle.append(cycle)  # garbage cycles are still collected (an explicit pass here)
        del cycle
        assert gc.collect() >= 1
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
    assert keep
