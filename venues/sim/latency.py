"""Latency models of one simulated venue: `entry` (request -> venue) and `response`
(venue -> us), constant or empirical, plus scenario spikes.

Entry latencies are drawn here, in Python, when the kernel sends a request; response
latencies are drawn in batches into an array the numba core consumes (`response_batch`),
so both come from one seeded stream per venue and a run is reproducible from its seed.
"""

from __future__ import annotations

import numpy as np

from venues.sim.codes import RQ_AMEND, RQ_CANCEL, RQ_QUERY, RQ_SUBMIT
from venues.sim.config import SimVenueConfig


class LatencyModel:
    """entry(kind, send_ts) and response_batch(n) for one venue."""

    def __init__(self, config: SimVenueConfig, seed: int, venue_index: int) -> None:
        self.config = config
        self.empirical = config.latency_model == "empirical"
        # one independent stream per venue, derived only from the run seed
        self._rng = np.random.default_rng([int(seed), int(venue_index)])
        self._entry = {
            RQ_SUBMIT: config.entry_ns,
            RQ_CANCEL: config.cancel_entry_ns,
            RQ_AMEND: config.amend_entry_ns,
            RQ_QUERY: config.entry_ns,  # a lookup is a REST request like a submit
        }

    @property
    def min_entry(self) -> int:
        """The smallest entry latency this model can produce (spikes only add)."""
        if self.empirical:
            return int(self.config.latency_samples[:, 0].min())
        return min(self._entry.values())

    def entry(self, kind: int, send_ts: int) -> int:
        """Entry latency of a request of `kind` (codes.RQ_*) sent at local time send_ts."""
        if self.empirical:
            samples = self.config.latency_samples
            lat = int(samples[int(self._rng.integers(0, samples.shape[0])), 0])
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
