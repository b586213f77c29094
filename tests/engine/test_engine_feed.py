import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.feed import apply_feed_latency
from engine.types import EVENT_DTYPE


def _events(stamps, instruments):
    ev = np.zeros(len(stamps), dtype=EVENT_DTYPE)
    ev["local_ts"] = np.sort(np.asarray(stamps, dtype=np.int64))
    ev["exch_ts"] = ev["local_ts"]
    ev["instrument"] = instruments
    ev["qty"] = np.arange(len(stamps))  # source order tag
    return ev


@settings(max_examples=60)
@given(st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 2)), min_size=1, max_size=80),
       st.lists(st.integers(0, 300), min_size=3, max_size=3), st.integers(1, 9))
def test_shifted_feed_equals_global_stable_sort(rows, shifts, chunk):
    ev = _events([r[0] for r in rows], [r[1] for r in rows])
    chunks = [ev[i:i + chunk] for i in range(0, len(ev), chunk)]
    out = np.concatenate(list(apply_feed_latency(chunks, np.array(shifts))))
    expected = ev.copy()
    expected["local_ts"] += np.array(shifts)[expected["instrument"]]
    expected = expected[np.argsort(expected["local_ts"], kind="stable")]
    assert np.array_equal(out, expected)


def test_zero_latency_passes_through():
    ev = _events([1, 2, 3], [0, 0, 0])
    assert list(apply_feed_latency([ev], np.zeros(1, dtype=np.int64)))[0] is ev
