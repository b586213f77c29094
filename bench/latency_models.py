"""A latency model named by path for bench/bench_latency.py: the shipped `constant`
model's own functions, so the only difference from `model = "constant"` is that the
venue reaches it as a user's model (one more branch in the kernels' model switch)."""

from __future__ import annotations

from venues.sim.latency_nb import constant_entry_nb, constant_min_entry_nb, constant_response_nb
from venues.sim.models import LatencyModel

constant_by_path = LatencyModel(entry=constant_entry_nb, response=constant_response_nb,
                                min_entry=constant_min_entry_nb)
