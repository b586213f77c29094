"""run_until with an unbounded time limit must end when the feed and all requests are done.

Run in a child process with a timeout: the bug this pins was a hang, and a hang must fail
the test rather than stall the suite.
"""

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {helpers!r})
    import numpy as np
    from sim_helpers import BUY, DELTA, SELL, TRADE, make_core
    from venues.sim import WakeKind
    core = make_core([(0, DELTA, BUY, 99, 10), (0, DELTA, SELL, 101, 10), (10, TRADE, SELL, 99, 3)],
                     latency={{"entry_ns": 5, "response_ns": 5}})
    core.submit(1, 0, BUY, 0, 0, 99, 2, False, 0, 1)
    kinds = []
    while True:
        w = core.run_until(np.iinfo(np.int64).max, np.zeros(1, bool), np.zeros(1, bool))
        kinds.append(w.kind.name)
        if w.kind == WakeKind.END:
            break
    print(",".join(kinds))
""")


def test_unbounded_run_until_reaches_end():
    helpers = str(Path(__file__).parent)
    done = subprocess.run([sys.executable, "-c", SCRIPT.format(helpers=helpers)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    kinds = done.stdout.strip().split(",")
    assert kinds[-1] == "END"
    assert kinds[:-1] == ["ORDER"] * (len(kinds) - 1) and len(kinds) >= 2  # ack (+ fill) first
