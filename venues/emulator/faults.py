"""Faults on demand: a seeded schedule (`--faults FILE`) or the control API.

The vocabulary (documented in docs/emulator.md, shared with the stress scenarios) is a list
of `[[fault]]` tables::

    seed = 7                       # draws for `probability` (default 0)
    [[fault]]
    kind = "response_lost"         # see KINDS
    endpoint = "POST /api/v3/order"  # REST kinds: which calls (default: any order call)
    after = "5s"                   # wall time after start before it can fire (default 0)
    until = "60s"                  # ... and after which it no longer fires (default: never)
    count = 1                      # how many times it fires (-1 = unlimited; default 1)
    probability = 1.0              # chance per eligible call, drawn from the seeded RNG
    # kind-specific keys: status, body, delay, skew_ms, code, msg, transport,
    # duration, halt, stream, events

Every firing is written to the journal (`"event": "fault"`), so a run can be replayed and
explained. Faults never touch the venue's own state beyond what the fault says (a lost
response still executed the order; a 5xx-before did not).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import ConfigError
from replay.schema import parse_duration
from venues.emulator.accounts import read_toml

# kind -> kind-specific keys it accepts
KINDS: dict[str, set[str]] = {
    # REST, before or after the venue executes the call
    "request_lost": {"delay"},  # NOT executed; after `delay` (0) the connection closes unanswered
    "response_lost": set(),  # executed, then the connection closes without a reply
    "http_5xx_before": {"status", "body"},  # a 5xx and the call is NOT executed
    "http_5xx_after": {"status", "body"},  # executed, then a 5xx (status unknown to client)
    "delay": {"delay"},  # executed, reply held back `delay` (past the client's timeout)
    "truncated_body": {"transport"},  # executed, a 200 whose JSON body is cut in half
    "rate_limit": set(),  # this minute's weight is used up: 429 + Retry-After, then 418
    "clock_skew": {"skew_ms"},  # the server clock is off by skew_ms: -1021 recvWindow
    "reject": {"code", "msg", "status"},  # refuse with a real Binance code and message
    "maintenance": {"duration", "halt"},  # cancel-only for `duration`, then halt for `halt`
    # streams
    "user_duplicate": {"events"},  # the next `events` user events are sent twice
    "user_reorder": {"events"},  # the next `events` user events go out in reverse order
    "user_drop": {"events"},  # the next `events` user events are never sent
    "user_delay": {"events", "delay"},  # the stream stalls `delay` from the next event (order kept)
    "user_expire": set(),  # the user-data subscription ends (eventStreamTerminated)
    "ws_disconnect": {"stream"},  # the server closes websockets: market | user | all
    "stale_market": {"duration"},  # no diffs/trades/tickers while the book moves on
    "update_id_gap": set(),  # the next depth diff is dropped: the client sees U != u+1
}
REST_KINDS = {"request_lost", "response_lost", "http_5xx_before", "http_5xx_after", "delay",
              "truncated_body", "rate_limit", "clock_skew", "reject"}
_COMMON = {"kind", "endpoint", "after", "until", "count", "probability"}
DEFAULT_ENDPOINTS = ("POST /api/v3/order", "DELETE /api/v3/order", "POST /api/v3/order/cancelReplace")


def _seconds(value: Any, where: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        return parse_duration(value) / 1e9
    raise ConfigError(f"{where} = {value!r}: expected seconds or a duration like '5s'")


@dataclass
class Fault:
    """One scheduled fault (see module doc for the keys)."""

    kind: str
    endpoint: tuple[str, ...] = DEFAULT_ENDPOINTS
    after_s: float = 0.0
    until_s: float | None = None
    count: int = 1
    probability: float = 1.0
    params: dict[str, Any] = field(default_factory=dict)
    fired: int = 0

    @classmethod
    def from_table(cls, table: dict[str, Any], where: str) -> Fault:
        kind = table.get("kind")
        if kind not in KINDS:
            raise ConfigError(f"{where} kind = {kind!r}: expected one of {sorted(KINDS)}")
        bad = set(table) - _COMMON - KINDS[kind]
        if bad:
            raise ConfigError(f"{where} ({kind}): unknown key(s) {sorted(bad)}; "
                              f"known: {sorted(_COMMON | KINDS[kind])}")
        endpoint = table.get("endpoint", DEFAULT_ENDPOINTS)
        if isinstance(endpoint, str):
            endpoint = (endpoint,)
        for e in endpoint:
            method, _, path = str(e).partition(" ")
            if method not in ("GET", "POST", "DELETE", "PUT") or not path.startswith("/"):
                raise ConfigError(f"{where} endpoint = {e!r}: expected 'METHOD /path'")
        count = table.get("count", 1)
        if not isinstance(count, int) or count == 0 or count < -1:
            raise ConfigError(f"{where} count = {count!r}: expected a positive integer or -1")
        prob = table.get("probability", 1.0)
        if not isinstance(prob, int | float) or not 0 < prob <= 1:
            raise ConfigError(f"{where} probability = {prob!r}: expected 0 < p <= 1")
        params = {k: table[k] for k in KINDS[kind] if k in table}
        for key in ("delay", "duration", "halt"):
            if key in params:
                params[key] = _seconds(params[key], f"{where} {key}")
        if "status" in params and not (isinstance(params["status"], int) and 400 <= params["status"] <= 599):
            raise ConfigError(f"{where} status = {params['status']!r}: expected an HTTP status 400-599")
        if kind == "reject" and not isinstance(params.get("code"), int):
            raise ConfigError(f"{where} (reject) needs code = <Binance error code>, e.g. -2010")
        if "transport" in params and not isinstance(params["transport"], bool):
            raise ConfigError(f"{where} transport = {params['transport']!r}: expected true or false")
        if "events" in params and not (isinstance(params["events"], int) and params["events"] > 0):
            raise ConfigError(f"{where} events = {params['events']!r}: expected a positive integer")
        if kind == "ws_disconnect" and params.get("stream", "all") not in ("market", "user", "all"):
            raise ConfigError(f"{where} stream = {params['stream']!r}: expected market, user or all")
        return cls(kind=kind, endpoint=tuple(endpoint),
                   after_s=_seconds(table.get("after", 0), f"{where} after"),
                   until_s=None if "until" not in table else _seconds(table["until"], f"{where} until"),
                   count=count, probability=float(prob), params=params)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "endpoint": list(self.endpoint), "after": self.after_s,
                "until": self.until_s, "count": self.count, "probability": self.probability,
                "fired": self.fired, **self.params}


class FaultPlan:
    """The active faults and the seeded RNG that decides `probability` draws."""

    def __init__(self, faults: list[Fault] | None = None, seed: int = 0) -> None:
        self.faults: list[Fault] = list(faults or [])
        self.seed = seed
        self._rng = random.Random(seed)
        self._start = time.monotonic()

    @classmethod
    def load(cls, path: str | Path) -> FaultPlan:
        file = Path(path)
        data = read_toml(file, "faults", {"seed", "fault"}, "seed and [[fault]]")
        seed = data.get("seed", 0)
        if not isinstance(seed, int):
            raise ConfigError(f"{file}: seed = {seed!r}: expected an integer")
        tables = data.get("fault", [])
        if not isinstance(tables, list):
            raise ConfigError(f"{file}: fault must be an array of tables ([[fault]])")
        faults = [Fault.from_table(t, f"{file} [[fault]] #{k + 1}") for k, t in enumerate(tables)]
        return cls(faults, seed)

    def add(self, table: dict[str, Any]) -> Fault:
        """Control API: schedule one more fault (`after` counts from now)."""
        fault = Fault.from_table(table, "control fault")
        fault.after_s += time.monotonic() - self._start
        if fault.until_s is not None:
            fault.until_s += time.monotonic() - self._start
        self.faults.append(fault)
        return fault

    def clear(self) -> None:
        self.faults.clear()

    def take(self, kinds: set[str] | frozenset[str], endpoint: str | None = None) -> Fault | None:
        """The first active fault of one of `kinds` (matching `endpoint`) that fires now."""
        elapsed = time.monotonic() - self._start
        for f in self.faults:
            if f.kind not in kinds or (f.count != -1 and f.fired >= f.count):
                continue
            if elapsed < f.after_s or (f.until_s is not None and elapsed >= f.until_s):
                continue
            if endpoint is not None and f.kind in REST_KINDS and endpoint not in f.endpoint:
                continue
            if f.probability < 1.0 and self._rng.random() >= f.probability:
                continue
            f.fired += 1
            return f
        return None
