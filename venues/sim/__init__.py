"""The simulated venue: numba L2 books, own-order matching, queue and latency models.

Public API (used by the engine's kernel)::

    from venues.sim import SimCore, SimVenueConfig, Wake, WakeKind, warmup
"""

from venues.sim.codes import BBO_DTYPE, TRADE_DTYPE, WakeKind
from venues.sim.config import SimVenueConfig
from venues.sim.core import SimCore, Wake
from venues.sim.warmup import warmup

__all__ = ["BBO_DTYPE", "TRADE_DTYPE", "SimCore", "SimVenueConfig", "Wake", "WakeKind", "warmup"]
