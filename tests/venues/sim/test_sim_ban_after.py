"""`ban_after` means the same in the emulator and the simulated venue: a client that keeps
calling through a 429 hold may have `ban_after` of its 429s counted (those sent after the
first 429 reached it); the next counted one starts a 418 ban, and every request after it is
refused 418 (venues/emulator/ratelimit.py `_violate`, venues/sim/faults.py `intercept`;
docs/emulator.md "Rate limits", docs/scenarios.md `rate_limit`)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import venues.sim.faults as sim_faults
from venues.emulator.ratelimit import BinanceError, RateLimiter
from venues.sim.faults import SimFaults, parse_sim_fault

S = 1_000_000_000
CALLS = 8  # the hold's first 429, then one request a second (each long after the 429 was in hand)


def _emulator(ban_after: int) -> list[int]:
    limiter = RateLimiter(ban_after=ban_after)
    limiter.force_429("ip", 0.0, hold_s=60)
    out = []
    for k in range(CALLS):
        try:
            limiter.check_ip("ip", 1, float(k))
            out.append(200)
        except BinanceError as exc:
            out.append(exc.status)
    return out


def _sim(ban_after: int, monkeypatch) -> list[int]:
    monkeypatch.setattr(sim_faults, "BAN_AFTER", ban_after)
    faults = SimFaults([parse_sim_fault({"kind": "rate_limit", "retry_after": "60s", "count": 1}, "f")], seed=0)
    written: list[dict] = []
    session = SimpleNamespace(audit=SimpleNamespace(write=lambda ts, record, **f: written.append(f)))
    faults.bind(session, 0, {"binance": SimpleNamespace(config=None)})
    out = []
    for k in range(CALLS):
        order = SimpleNamespace(order_no=k + 1, instrument_index=0, price=100, qty=1, filled=0, client_id=f"tp-{k}",
                                instrument=SimpleNamespace(venue="binance"))
        before = len(written)
        refused = faults.intercept("binance", "submit", order, k * S, 1_000_000)
        out.append(written[before]["http_status"] if refused else 200)
    return out


@pytest.mark.parametrize("ban_after", [0, 1, 3])
def test_the_emulator_and_the_simulated_venue_ban_on_the_same_request(ban_after, monkeypatch):
    emulator, sim = _emulator(ban_after), _sim(ban_after, monkeypatch)
    # the first 429 and `ban_after` counted ones, then the one that earns the ban (still a 429)
    expected = [429] * (ban_after + 2) + [418] * (CALLS - ban_after - 2)
    assert emulator == expected, emulator
    assert sim == expected, sim


def test_the_defaults_agree():
    assert sim_faults.BAN_AFTER == RateLimiter().ban_after == 3
