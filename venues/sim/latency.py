"""Latency models of one simulated venue: `entry` (request -> venue) and `response`
(venue -> us), constant, empirical or recorded, plus scenario spikes.

`recorded` replays the round trips a paper/testnet/live session measured (its
latency.csv: send time, entry, response), interpolated in time as hftbacktest's
IntpOrderLatency does (docs: hftbacktest "Latency Models"): the entry latency of a request
is interpolated linearly at its send time between the two records around it; the response
latency at the exchange time the venue answers, held constant between two records at
their mean (the kernel adds it as a time segment, like a spike); before the first record
and after the last, the nearest record's values. So a backtest of a session's period
sees the latency that session saw, spikes included.

Entry latencies are drawn here, in Python, when the kernel sends a request; response
latencies are drawn in batches into an array the numba core consumes (`response_batch`),
so both come from one seeded stream per venue and a run is reproducible from its seed.
"""

from __future__ import annotations

import numpy as np

from venues.sim.codes import RQ_AMEND, RQ_CANCEL, RQ_SUBMIT
from venues.sim.config import SimVenueConfig


class LatencyModel:
    """entry(kind, send_ts) and response_batch(n) for one venue."""

    def __init__(self, config: SimVenueConfig, seed: int, venue_index: int) -> None:
        self.config = config
        self.empirical = config.latency_model == "empirical"
        self.recorded = config.latency_model == "recorded"
        # one independent stream per venue, derived only from the run seed
        self._rng = np.random.default_rng([int(seed), int(venue_index)])
        self._entry = {
            RQ_SUBMIT: config.entry_ns,
            RQ_CANCEL: config.cancel_entry_ns,
            RQ_AMEND: config.amend_entry_ns,
        }

    @property
    def min_entry(self) -> int:
        """The smallest entry latency this model can produce (spikes only add)."""
        if self.empirical:
            return int(self.config.latency_samples[:, 0].min())
        if self.recorded:
            return int(self.config.latency_samples[:, 1].min())
        return min(self._entry.values())

    def entry(self, kind: int, send_ts: int) -> int:
        """Entry latency of a request of `kind` (codes.RQ_*) sent at local time send_ts."""
        if self.empirical:
            samples = self.config.latency_samples
            lat = int(samples[int(self._rng.integers(0, samples.shape[0])), 0])
        elif self.recorded:
            lat = recorded_entry(self.config.latency_samples, send_ts)
        else:
            lat = self._entry[kind]
        return lat + self.spike(send_ts)

    def spike(self, ts: int) -> int:
        extra = 0
        for start, end, add in self.config.spikes:
            if start <= ts < end:
                extra += add
        return extra

    def response_batch(self, n: int) -> np.ndarray:
        """n response latencies (empirical model; spikes are added by the kernel)."""
        samples = self.config.latency_samples[:, 1]
        return samples[self._rng.integers(0, samples.shape[0], size=n)]

    def response_segments(self) -> list[tuple[int, int, int]]:
        """Recorded model: (start, end, response_ns) exchange-time segments (see module doc)."""
        if not self.recorded:
            return []
        return recorded_response_segments(self.config.latency_samples)


def recorded_entry(table: np.ndarray, ts: int) -> int:
    """Entry latency at send time ts: linear between the records around it (exact integer
    arithmetic, rounded down), the nearest record's value outside them."""
    times = table[:, 0]
    k = int(np.searchsorted(times, ts, side="right"))
    if k == 0:
        return int(table[0, 1])
    if k >= len(times):
        return int(table[-1, 1])
    t0, t1 = int(times[k - 1]), int(times[k])
    e0, e1 = int(table[k - 1, 1]), int(table[k, 1])
    if t1 == t0:
        return e1
    return e0 + (e1 - e0) * (int(ts) - t0) // (t1 - t0)


def recorded_response_segments(table: np.ndarray) -> list[tuple[int, int, int]]:
    """Response latency by exchange time: the first record's value before it, the mean of
    two consecutive records between them, the last record's value after it."""
    i64 = np.iinfo(np.int64)
    times = [int(t) for t in table[:, 0]]
    resp = [int(r) for r in table[:, 2]]
    out = [(int(i64.min), times[0], resp[0])]
    for k in range(len(times) - 1):
        if times[k + 1] > times[k]:
            out.append((times[k], times[k + 1], (resp[k] + resp[k + 1]) // 2))
    out.append((times[-1], int(i64.max), resp[-1]))
    return out
