"""HealthSignals: the rules that turn a live session's symptoms into venue health states
(engine/execution/health.py), pinned by hand on a timeline in seconds."""

from __future__ import annotations

import pytest

from engine.errors import ConfigError
from engine.execution.health import HealthSignals, VenueHealth

S = 1_000_000_000


def test_rest_breaker_trips_cools_off_probes_and_doubles():
    h = HealthSignals(fail_threshold=3, cooloff_ns=5 * S, max_cooloff_ns=60 * S)
    h.rest("b", 1 * S, False, "RequestTimeout")
    h.rest("b", 2 * S, False, "RequestTimeout")
    assert h.state("b", 2 * S) == ("up", "")  # two failures: not yet
    h.rest("b", 2 * S + 1, True)  # an answer resets the count
    for t in (3, 4, 5):
        h.rest("b", t * S, False, "ExchangeNotAvailable")
    assert h.state("b", 5 * S) == ("down", "REST failing (orders): ExchangeNotAvailable")
    h.rest("b", 6 * S, True)  # an answer within the cool-off (a call already in flight) changes nothing
    h.rest("b", 7 * S, False, "late")  # nor does a failure
    assert h.state("b", 9 * S)[0] == "down"
    assert h.state("b", 10 * S) == ("degraded", "on probation after REST failures (orders)")  # 5 + 5 s
    h.rest("b", 11 * S, False, "RequestTimeout")  # one failure on probation: down again, 10 s
    assert h.state("b", 20 * S)[0] == "down"
    assert h.state("b", 21 * S)[0] == "degraded"
    h.rest("b", 22 * S, True)
    assert h.state("b", 22 * S) == ("up", "")
    for t in (23, 24, 25):  # third trip within max_cooloff of the last: 20 s
        h.rest("b", t * S, False, "x")
    assert h.state("b", 44 * S)[0] == "down"
    assert h.state("b", 45 * S)[0] == "degraded"


def test_trips_reset_after_a_full_max_cooloff_up():
    h = HealthSignals(fail_threshold=1, cooloff_ns=5 * S, max_cooloff_ns=20 * S)
    h.rest("b", 0, False, "t")
    h.rest("b", 6 * S, True)  # up at 6 s
    h.rest("b", 30 * S, True)  # 30 s after the trip: the count resets
    h.rest("b", 31 * S, False, "t")
    assert h.state("b", 35 * S)[0] == "down" and h.state("b", 36 * S)[0] == "degraded"  # 5 s again


def test_streams_throttle_and_closed_worst_state_wins():
    h = HealthSignals(settle_ns=2 * S)
    h.stream("b", "user", 10 * S, False, "NetworkError")
    assert h.state("b", 11 * S) == ("down", "user stream lost: NetworkError")
    assert h.state("b", 12 * S) == ("up", "")  # settled: no new error for 2 s
    h.stream("b", "market", 20 * S, False, "closed")
    h.stream("b", "market", 20 * S + 5, True)  # data again
    assert h.state("b", 20 * S + 6) == ("up", "")
    h.throttle("b", 30 * S, 90 * S, False)
    assert h.state("b", 31 * S) == ("rate_limited", "429 Too Many Requests")
    h.throttle("b", 32 * S, 60 * S, True)  # a 418 within the 429's hold: banned
    assert h.state("b", 33 * S) == ("down", "IP banned (418)")
    assert h.state("b", 90 * S) == ("up", "")
    h.closed("b", 100 * S, True, "BTCUSDT status BREAK")
    h.throttle("b", 100 * S, 110 * S, False)
    assert h.state("b", 101 * S) == ("down", "BTCUSDT status BREAK")  # down beats rate_limited
    h.closed("b", 120 * S, False)
    assert h.state("b", 120 * S) == ("up", "")


def test_changes_reports_each_transition_once_per_venue():
    h = HealthSignals(fail_threshold=1, cooloff_ns=5 * S)
    assert h.changes(["a", "b"], 0) == []
    h.rest("b", 1 * S, False, "t")
    assert h.changes(["a", "b"], 1 * S) == [("b", "down", "REST failing (orders): t")]
    assert h.changes(["a", "b"], 2 * S) == []
    assert h.changes(["a", "b"], 6 * S) == [("b", "degraded", "on probation after REST failures (orders)")]
    h.rest("b", 7 * S, True)
    assert h.changes(["a", "b"], 7 * S) == [("b", "up", "")]


def test_bad_parameters_and_states_are_config_errors():
    with pytest.raises(ConfigError, match="fail_threshold"):
        HealthSignals(fail_threshold=0)
    with pytest.raises(ConfigError, match="cool-off"):
        HealthSignals(cooloff_ns=10 * S, max_cooloff_ns=5 * S)
    with pytest.raises(ConfigError, match="expected one of"):
        VenueHealth().set("b", "sideways", "", 0)


def test_orders_and_queries_have_their_own_breakers():
    """Reads that still work do not hide order calls that fail: lookups answered between lost
    orders do not reset the orders' count."""
    h = HealthSignals(fail_threshold=3, cooloff_ns=5 * S)
    h.rest("b", 1 * S, False, "lost", calls="orders")
    h.rest("b", 2 * S, True, calls="queries")
    h.rest("b", 3 * S, False, "lost", calls="orders")
    h.rest("b", 4 * S, True, calls="queries")
    h.rest("b", 5 * S, False, "lost", calls="orders")
    assert h.state("b", 5 * S) == ("down", "REST failing (orders): lost")
    assert h.half_open("b", 9 * S) == [] and h.half_open("b", 10 * S) == ["orders"]  # what to probe
    h.rest("b", 11 * S, True, calls="queries")  # a read answered: the orders stay on probation
    assert h.state("b", 11 * S) == ("degraded", "on probation after REST failures (orders)")
    h.rest("b", 12 * S, True, calls="orders")
    assert h.state("b", 12 * S) == ("up", "")
