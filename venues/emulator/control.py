"""Validation of the emulator's control API bodies (`POST /emulator/control/*`).

Why a module of its own: a control request changes the emulator's rules (rate limits,
websocket rules, the clock, the fault plan) while clients trade, so a bad one must be
refused whole, with a 400 and one line naming the key, before anything is applied. Each
`parse_*` function below reads the whole body and returns the validated values; the
handler applies them only afterwards, so a refused request changes nothing.

Errors are `ControlError` (a `ConfigError`: the request is the user's input), whose text
is the `msg` of the 400 reply (`{"code": -1100, "msg": ...}`, Binance's "illegal
characters in parameter" code, as the emulator's other refusals of its own parameters).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from engine.errors import ConfigError


class ControlError(ConfigError):
    """A control request the emulator refuses (names the endpoint and the key)."""


@dataclass(frozen=True)
class LimitKey:
    """One `control/limits` key: its type and its smallest allowed value.

    `kind` is "int", "seconds" (a positive or zero number of seconds) or "bool"; `minimum`
    applies to numbers (None: any sign, e.g. a clock skew); `maximum` bounds the magnitude
    (a value past it is a typo that would wedge the emulator, e.g. a 10^308 ms clock skew)."""

    kind: str
    minimum: float | None = None
    doc: str = ""
    maximum: float | None = None


#: the keys of `POST /emulator/control/limits` (docs/emulator.md, "Inspection and control");
#: the minimums are what the rule can mean: a limit of 0 requests or orders would refuse
#: every call (use a `rate_limit` fault for that), a ban length or interval must be > 0
LIMIT_KEYS: dict[str, LimitKey] = {
    "weight_per_minute": LimitKey("int", 1, "request weight per IP per minute", 10**9),
    "orders_per_10s": LimitKey("int", 1, "new orders per account per 10 s", 10**9),
    "orders_per_minute": LimitKey("int", 1, "new orders per account per minute (futures)", 10**9),
    "ban_after": LimitKey("int", 0, "counted 429s tolerated in a hold: the next one starts a 418 ban (0: the first)", 10**9),
    "ban_s": LimitKey("seconds", 0, "length of the first ban (doubles per ban)", 7 * 86_400),
    "ban_grace_ms": LimitKey("int", 0, "ms after a hold's first 429 whose 429s do not count toward a ban",
                             3_600_000),
    "ping_interval": LimitKey("seconds", 0.05, "websocket ping interval", 7 * 86_400),
    "max_connection_s": LimitKey("seconds", 0, "websocket connection lifetime", 7 * 86_400),
    "max_incoming_per_s": LimitKey("int", 1, "incoming websocket messages per second", 10**9),
    "skew_ms": LimitKey("int", None, "server clock offset (ms, either sign)", 86_400_000),
    "max_num_orders": LimitKey("int", 1, "the MAX_NUM_ORDERS filter", 10**9),
    "stream_first": LimitKey("bool", doc="write an answer's user events before its REST reply"),
    "reset": LimitKey("bool", doc="forget the counters, violations and bans"),
}
#: keys that must be strictly positive (a zero interval or ban is no rule)
_STRICTLY_POSITIVE = frozenset({"ban_s", "ping_interval", "max_connection_s"})


def parse_body(raw: bytes, endpoint: str) -> dict[str, Any]:
    """The JSON object of a control request; raises ControlError for anything else
    (invalid JSON, an array, a string...)."""
    try:
        body = json.loads(raw.decode("utf-8") if raw else "")
    except (ValueError, UnicodeDecodeError):
        raise ControlError(f"{endpoint}: expected a JSON object, got invalid JSON") from None
    if not isinstance(body, dict):
        raise ControlError(f"{endpoint}: expected a JSON object, got a JSON {_json_type(body)}")
    return body


def _json_type(value: Any) -> str:
    return {list: "array", str: "string", bool: "boolean", int: "number", float: "number",
            type(None): "null"}.get(type(value), type(value).__name__)


def _unknown(endpoint: str, body: dict[str, Any], known: set[str] | frozenset[str]) -> None:
    bad = sorted(set(body) - set(known))
    if bad:
        raise ControlError(f"{endpoint}: unknown key(s) {bad}; known: {sorted(known)}")


def parse_limits(body: dict[str, Any], endpoint: str = "control/limits") -> dict[str, Any]:
    """Validate a `control/limits` body: every key of LIMIT_KEYS, typed and in range.
    Returns {key: value} (ints as int, seconds as float, flags as bool); an empty body is
    refused (it would silently do nothing)."""
    _unknown(endpoint, body, set(LIMIT_KEYS))
    if not body:
        raise ControlError(f"{endpoint}: empty body; known keys: {sorted(LIMIT_KEYS)}")
    out: dict[str, Any] = {}
    for key, value in body.items():
        spec = LIMIT_KEYS[key]
        where = f"{endpoint} {key} = {value!r}"
        if spec.kind == "bool":
            if not isinstance(value, bool):
                raise ControlError(f"{where}: expected true or false")
            out[key] = value
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ControlError(f"{where}: expected a number ({spec.doc})")
        if spec.kind == "int":
            if isinstance(value, float) and not value.is_integer():
                raise ControlError(f"{where}: expected an integer ({spec.doc})")
            value = int(value)
        else:
            if not math.isfinite(value):
                raise ControlError(f"{where}: expected a finite number of seconds ({spec.doc})")
            value = float(value)
        if spec.maximum is not None and abs(value) > spec.maximum:
            raise ControlError(f"{where}: must be at most {spec.maximum:g} in magnitude ({spec.doc})")
        if spec.minimum is not None:
            if key in _STRICTLY_POSITIVE and value <= spec.minimum:
                raise ControlError(f"{where}: must be > {spec.minimum:g} ({spec.doc})")
            if value < spec.minimum:
                raise ControlError(f"{where}: must be >= {spec.minimum:g} ({spec.doc})")
        out[key] = value
    return out


def parse_step(body: dict[str, Any], now_ns: int, endpoint: str = "control/step") -> int:
    """Validate a `control/step` body: exactly one of `to_ns` (market ns, not before now)
    or `by_ns` (>= 0). Returns the target market time (ns)."""
    _unknown(endpoint, body, {"to_ns", "by_ns"})
    if len(body) != 1:
        raise ControlError(f"{endpoint}: expected exactly one of to_ns, by_ns")
    (key, value), = body.items()
    if isinstance(value, bool) or not isinstance(value, int):
        raise ControlError(f"{endpoint} {key} = {value!r}: expected an integer (ns)")
    if key == "by_ns":
        if value < 0:
            raise ControlError(f"{endpoint} by_ns = {value}: must be >= 0 (the clock never goes back)")
        return now_ns + value
    if value < now_ns:
        raise ControlError(f"{endpoint} to_ns = {value}: before the market clock ({now_ns}); "
                           "the clock never goes back")
    return value


def is_clear(body: dict[str, Any], endpoint: str = "control/faults") -> bool:
    """True for `{"clear": true}` (remove every fault); a body with `clear` and anything
    else, or `clear` not true, is refused (a fault table has no `clear` key)."""
    if "clear" not in body:
        return False
    if body != {"clear": True}:
        raise ControlError(f"{endpoint} clear = {body['clear']!r}: expected {{\"clear\": true}} alone "
                           "(to add a fault, send its [[fault]] keys without clear)")
    return True
