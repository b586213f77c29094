"""The per-order-event profile of the plain-Python session (bench/profile_session.py), on a
small real run of the race's market maker."""

from __future__ import annotations

import pytest

from bench.feed import FeedSpec, generate_feed
from bench.profile_session import PARTS, Attribution, instrumented_run


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
    feed = generate_feed(FeedSpec(events=6000, seed=3))
    return instrumented_run(feed, tmp_path_factory.mktemp("profile"))


def test_every_order_event_is_counted_once(profiled):
    att, result = profiled
    by = att.summary()["by_entry"]
    assert by["submit"]["count"] == result.counts["submits"] > 0
    assert by["cancel"]["count"] == result.counts["cancels"] > 0
    # one venue report per fill, plus acks, rejects and cancel replies
    assert by["response"]["count"] >= result.counts["fill events"] + result.counts["post-only rejects"]


def test_parts_add_up_to_each_event_exactly(profiled):
    att, _ = profiled
    assert len(att.events) == len(att.parts) > 0
    for (_name, inclusive), parts in zip(att.events, att.parts, strict=True):
        assert sum(parts.values()) == inclusive  # exclusive times, integer ns
        assert set(parts) <= set(PARTS)


def test_parts_land_where_the_session_does_the_work(profiled):
    att, result = profiled
    s = att.summary()
    n = s["order_events"]
    parts = s["parts"]
    assert parts["audit"]["share_of_events"] == 1.0  # every order event writes an audit record
    assert parts["risk"]["share_of_events"] * n >= result.counts["submits"]  # pre-trade check per submit
    # the venue adapter runs on the submits and cancels the session sends
    assert parts["venue adapter"]["share_of_events"] * n >= result.counts["submits"] - result.counts["post-only rejects"]
    # the ledger books each fill
    assert round(parts["ledger"]["share_of_events"] * n) >= result.counts["fill events"]
    assert parts["recorder"]["share_of_events"] > 0  # fills written to the run directory's writer


def test_nested_parts_are_charged_exclusively():
    att = Attribution()

    class Inner:
        def work(self):
            return sum(range(2000))

    class Outer:
        def __init__(self, inner):
            self.inner = inner

        def work(self):
            return self.inner.work() + sum(range(2000))

    inner = Inner()
    outer = Outer(inner)
    att.instrument(inner, "ledger")
    att.instrument(outer, "OMS")
    entry = att.wrap_entry("submit", lambda: outer.work())
    assert entry() == 2 * sum(range(2000))
    assert inner.work() == sum(range(2000))  # outside an event: not counted
    (name, inclusive), = att.events
    parts = att.parts[0]
    assert name == "submit" and parts["ledger"] > 0 and parts["OMS"] > 0
    assert parts["ledger"] + parts["OMS"] + parts["session"] == inclusive
    assert att.calls == 2
