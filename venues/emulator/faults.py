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
from venues.emulator.accounts import read_toml
from venues.faults import (
    DEFAULT_ENDPOINTS,
    DURATION_KEYS,
    EMULATOR_KINDS,
    FAULT_KEYS,
    REST_KINDS,
    FaultSpec,
    parse_fault,
)

# the shared vocabulary (venues/faults.py): the kinds the emulator implements and their keys
KINDS: dict[str, set[str]] = {k: set(FAULT_KEYS[k]) for k in sorted(EMULATOR_KINDS)}


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
    where: str = "fault"  # the file and fault index (or "control fault"), for error messages
    endpoint_given: bool = False  # the table named its own `endpoint` (else: the default order calls)

    @classmethod
    def from_table(cls, table: dict[str, Any], where: str) -> Fault:
        return cls.from_spec(parse_fault(table, where, EMULATOR_KINDS), where)

    @classmethod
    def from_spec(cls, spec: FaultSpec, where: str = "fault") -> Fault:
        """A validated fault of the shared vocabulary (a stress scenario's, `--via emulator`)."""
        params = {k: (v / 1e9 if k in DURATION_KEYS else v) for k, v in spec.params.items()}
        return cls(kind=spec.kind, endpoint=spec.endpoint, after_s=spec.after_ns / 1e9,
                   until_s=None if spec.until_ns is None else spec.until_ns / 1e9,
                   count=spec.count, probability=spec.probability, params=params, where=where,
                   endpoint_given=spec.endpoint != DEFAULT_ENDPOINTS)

    @property
    def uses_endpoint(self) -> bool:
        """REST kinds and latency_spike act on calls to `endpoint`; other kinds ignore it."""
        return self.kind in REST_KINDS or self.kind == "latency_spike"

    def check_endpoint(self, served: frozenset[str]) -> None:
        """Refuse an `endpoint` that names no REST route of this emulator (`served`: the
        "METHOD /path" of every route, `venues.emulator.rest_endpoints`): such a fault
        could never fire. Raises ConfigError naming the fault and listing the routes."""
        if not self.endpoint_given and not self.uses_endpoint:
            return
        unknown = [e for e in self.endpoint if e not in served]
        if unknown:
            default = "" if self.endpoint_given else " (the default: Binance spot's order calls)"
            raise ConfigError(f"{self.where} endpoint = {unknown[0]!r}{default}: no such route on this "
                              f"emulator; valid endpoints: {', '.join(sorted(served))}")

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

    def check_endpoints(self, served: frozenset[str]) -> None:
        """Refuse the plan if a fault names an endpoint this emulator does not serve
        (`served` = `venues.emulator.rest_endpoints(instruments)`); see Fault.check_endpoint."""
        for fault in self.faults:
            fault.check_endpoint(served)

    def add(self, table: dict[str, Any], served: frozenset[str] | None = None) -> Fault:
        """Control API: schedule one more fault (`after` counts from now); with `served`,
        its endpoints are checked against the emulator's routes first."""
        fault = Fault.from_table(table, "control fault")
        if served is not None:
            fault.check_endpoint(served)
        fault.after_s += time.monotonic() - self._start
        if fault.until_s is not None:
            fault.until_s += time.monotonic() - self._start
        self.faults.append(fault)
        return fault

    def clear(self) -> None:
        self.faults.clear()

    def spike(self, endpoint: str) -> Fault | None:
        """The `latency_spike` whose window [after, after + duration) covers now and whose
        endpoints include `endpoint`: every such call is slowed (counted in `fired`);
        `count` and `probability` do not apply to a window."""
        elapsed = time.monotonic() - self._start
        for f in self.faults:
            if (f.kind == "latency_spike" and endpoint in f.endpoint
                    and f.after_s <= elapsed < f.after_s + float(f.params["duration"])):
                f.fired += 1
                return f
        return None

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
