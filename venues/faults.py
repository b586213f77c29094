"""The one fault vocabulary of the venues: the exchange emulator's `[[fault]]` schedule and
the simulated venue's faults in a stress scenario use the same kinds and keys.

Why one vocabulary: a scenario that says "the venue answers 5xx from minute 5 to minute 15"
must mean the same thing whether it stresses a backtest (venues.sim.faults, in simulated
time) or a testnet session against the local exchange emulator (venues.emulator.faults, in
wall time), so `--via emulator` can run the same file. Each backend implements a subset
(`EMULATOR_KINDS`, `SIM_KINDS`); a kind one of them lacks is refused with its name.

A fault table::

    kind = "http_5xx_before"      # FAULT_KEYS
    endpoint = "POST /api/v3/order"  # REST kinds: which calls (default: order POST/DELETE, cancelReplace)
    after = "5m"                  # offset from the start (emulator: wall time since it started;
                                  # simulated venue: replayed time since the first event)
    until = "15m"                 # no firing from then on (default: never)
    count = -1                    # firings, -1 = unlimited (default 1)
    probability = 0.5             # chance per eligible call, from the schedule's seeded RNG

Durations are seconds (a number) or replay units ('250ms', '30s', '5m', '1h').
Real venue codes and rules: Binance spot API docs ("Error codes", "LIMITS"), as measured in
../shared/notes/ccxt-binance-dialect.md and ../shared/notes/scenario-calibration.md note 16.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from engine.errors import ConfigError
from replay.schema import parse_compound_duration

#: kind -> the kind-specific keys it accepts (besides COMMON_KEYS)
FAULT_KEYS: dict[str, frozenset[str]] = {k: frozenset(v) for k, v in {
    # REST, before or after the venue executes the call
    "request_lost": {"delay"},  # NOT executed; after `delay` (0) the connection closes unanswered
    "response_lost": set(),  # executed, then the connection closes without a reply
    "http_5xx_before": {"status", "body"},  # a 5xx and the call is NOT executed
    "http_5xx_after": {"status", "body"},  # executed, then a 5xx (status unknown to client)
    "delay": {"delay"},  # executed, reply held back `delay` (past the client's timeout)
    "truncated_body": {"transport"},  # executed, a 200 whose JSON body is cut in half
    # the minute's weight is used up: 429 + Retry-After (to the minute's end, or `retry_after`), then 418 (ban)
    "rate_limit": {"retry_after"},
    "clock_skew": {"skew_ms"},  # the server clock is off by skew_ms: -1021 recvWindow
    "reject": {"code", "msg", "status"},  # refuse with a real Binance code and message
    "maintenance": {"duration", "halt"},  # cancel-only for `duration`, then halt for `halt`
    "outage": {"duration", "reply"},  # down for `duration`: nothing executes; timeout, 5xx or reset
    "latency_spike": {"duration", "extra"},  # each leg (request, reply) takes `extra` longer for `duration`
    "partial_fill_drought": {"duration", "fraction"},  # passive fills cut to `fraction` of their size for `duration`
    # streams
    "user_duplicate": {"events"},  # the next `events` user events are sent twice
    "user_reorder": {"events"},  # the next `events` user events go out in reverse order
    "user_drop": {"events"},  # the next `events` user events are never sent
    "user_delay": {"events", "delay"},  # the stream stalls `delay` from the next event (order kept)
    "user_expire": set(),  # the user-data subscription ends (eventStreamTerminated)
    "user_silent": set(),  # the open user-data subscriptions stop delivering: no event, no error, no close
    "ws_disconnect": {"stream"},  # the server closes websockets: market | user | all
    "stale_market": {"duration"},  # no diffs/trades/tickers while the book moves on
    "update_id_gap": set(),  # the next depth diff is dropped: the client sees U != u+1
}.items()}
COMMON_KEYS = frozenset({"kind", "endpoint", "after", "until", "count", "probability"})
REST_KINDS = frozenset({"request_lost", "response_lost", "http_5xx_before", "http_5xx_after", "delay",
                        "truncated_body", "rate_limit", "clock_skew", "reject"})
DEFAULT_ENDPOINTS = ("POST /api/v3/order", "DELETE /api/v3/order", "POST /api/v3/order/cancelReplace")
#: the order command each order endpoint carries (the simulated venue's view of `endpoint`)
ENDPOINT_COMMANDS = {"POST /api/v3/order": "submit", "DELETE /api/v3/order": "cancel",
                     "POST /api/v3/order/cancelReplace": "amend"}

#: what each backend implements
EMULATOR_KINDS = frozenset({"request_lost", "response_lost", "http_5xx_before", "http_5xx_after", "delay",
                            "latency_spike",
                            "truncated_body", "rate_limit", "clock_skew", "reject", "maintenance",
                            "user_duplicate", "user_reorder", "user_drop", "user_delay", "user_expire", "user_silent",
                            "ws_disconnect", "stale_market", "update_id_gap", "partial_fill_drought"})
SIM_KINDS = frozenset({"request_lost", "response_lost", "http_5xx_before", "http_5xx_after", "delay",
                       "truncated_body", "rate_limit", "reject", "maintenance", "outage", "latency_spike",
                       "ws_disconnect", "partial_fill_drought"})

OUTAGE_REPLIES = ("timeout", "5xx", "reset")
FIVE_XX_BODIES = ("html", "json", "empty")  # an http_5xx fault's body: a proxy's page, -1001 JSON, nothing

#: Binance spot error codes a `reject` fault may name: code -> (default message, the engine's
#: reason code). Source: Binance spot API docs, "Error codes" (errors.md).
BINANCE_REJECTS: dict[int, tuple[str, str]] = {
    -1003: ("Too much request weight used; current limit is 6000 request weight per 1 MINUTE.", "rate_limited"),
    -1015: ("Too many new orders; current limit is 50 orders per 10 SECOND.", "rate_limited"),
    -1008: ("Server is currently overloaded with other requests. Please try again in a few minutes.",
            "venue_error"),
    -1013: ("Filter failure: PRICE_FILTER", "invalid_price"),
    -1021: ("Timestamp for this request is outside of the recvWindow.", "venue_error"),
    -2010: ("Account has insufficient balance for requested action.", "insufficient_balance"),
    -2011: ("Unknown order sent.", "unknown_order"),
    -2013: ("Order does not exist.", "unknown_order"),
}
MARKET_CLOSED = (-2010, "Market is closed.")  # Binance's answer in BREAK (cancel-only) and HALT


#: the longest fault duration accepted (one week): a longer one is a typo, and in the
#: emulator it would silence a stream or hold a maintenance for the life of the process
MAX_DURATION_NS = 7 * 86_400 * 1_000_000_000


def duration_ns(value: Any, where: str) -> int:
    """A fault duration: seconds (int/float) or replay units ('250ms', '30s', '5m') -> ns,
    in [0, MAX_DURATION_NS]; ConfigError naming `where` otherwise."""
    if isinstance(value, bool):
        raise ConfigError(f"{where} = {value!r}: expected seconds or a duration like '5s'")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise ConfigError(f"{where} = {value!r}: must be >= 0 (a finite number of seconds)")
        ns = int(round(value * 1_000_000_000))
    elif isinstance(value, str):
        if value.strip() in ("0", "0s", "0ms", "0m"):
            return 0
        try:
            ns = parse_compound_duration(value)
        except ConfigError:  # its message names only the text: say which file, fault and key
            raise ConfigError(f"{where} = {value!r}: expected seconds or a duration such as "
                              "'250ms', '30s', '5m30s', '1h'") from None
    else:
        raise ConfigError(f"{where} = {value!r}: expected seconds or a duration like '5s'")
    if ns > MAX_DURATION_NS:
        raise ConfigError(f"{where} = {value!r}: longer than the 7 days a fault may last")
    return ns


@dataclass(frozen=True)
class FaultSpec:
    """One validated fault table (times in ns from the start; `params` kind-specific,
    durations in ns)."""

    kind: str
    endpoint: tuple[str, ...] = DEFAULT_ENDPOINTS
    after_ns: int = 0
    until_ns: int | None = None
    count: int = 1
    probability: float = 1.0
    params: dict[str, Any] = field(default_factory=dict)

    def commands(self) -> frozenset[str]:
        """The order commands (submit, cancel, amend) a REST kind's endpoints cover."""
        return frozenset(ENDPOINT_COMMANDS[e] for e in self.endpoint if e in ENDPOINT_COMMANDS)


#: the keys whose values are durations (parsed to ns here; the emulator keeps them in seconds)
DURATION_KEYS = ("delay", "duration", "halt", "extra", "retry_after")

#: kind -> the value of each optional key a table leaves out (durations in seconds, as a
#: file writes them). The one place both backends take them from: parse_fault fills them
#: in, so the simulated venue (a stress scenario) and the emulator (a testnet session, or
#: `stress --via emulator`) act the same for the same table. Before, each backend had its
#: own: a `maintenance` without `duration`/`halt` was 5 s cancel-only + 5 s halt in the
#: emulator and did nothing in the simulated venue. Keys without a default (`outage`'s and
#: `latency_spike`'s `duration`, `reject`'s `code`, ...) are required. `http_5xx` `body`
#: defaults by status (FIVE_XX_BODIES: `json` for 500, else `html`) and `reject` `msg` by
#: code (BINANCE_REJECTS' message), see parse_fault.
FAULT_DEFAULTS: dict[str, dict[str, Any]] = {
    "request_lost": {"delay": 0},
    "http_5xx_before": {"status": 502},
    "http_5xx_after": {"status": 502},
    "delay": {"delay": 30},  # past ccxt's default 10 s timeout: a RequestTimeout
    "truncated_body": {"transport": False},
    "clock_skew": {"skew_ms": 5000},  # past Binance's default recvWindow of 5000 ms
    "reject": {"status": 400},
    "maintenance": {"duration": 5, "halt": 5},
    "outage": {"reply": "timeout"},
    "user_duplicate": {"events": 1},
    "user_reorder": {"events": 1},
    "user_drop": {"events": 1},
    "user_delay": {"events": 1, "delay": 2},
    "ws_disconnect": {"stream": "all"},
    "stale_market": {"duration": 5},
}


def fraction_ppm(fraction: float) -> int:
    """A `partial_fill_drought` fraction as parts per million (the matching's integer unit),
    rounded half-even from the decimal the file wrote."""
    from decimal import Decimal

    return int((Decimal(str(fraction)) * 1_000_000).to_integral_value())


def parse_fault(table: dict[str, Any], where: str, kinds: frozenset[str] | None = None) -> FaultSpec:
    """Validate one fault table against the vocabulary (and the backend's `kinds`); raises
    ConfigError naming `where` and the key."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: a fault must be a table")
    allowed = FAULT_KEYS if kinds is None else {k: FAULT_KEYS[k] for k in kinds}
    kind = table.get("kind")
    if kind not in allowed:
        extra = ""
        if kind in FAULT_KEYS:
            extra = " (a kind of the shared vocabulary this venue does not simulate)"
        raise ConfigError(f"{where} kind = {kind!r}{extra}: expected one of {sorted(allowed)}")
    bad = set(table) - COMMON_KEYS - allowed[kind]
    if bad:
        raise ConfigError(f"{where} ({kind}): unknown key(s) {sorted(bad)}; known: {sorted(COMMON_KEYS | allowed[kind])}")
    endpoint = table.get("endpoint", DEFAULT_ENDPOINTS)
    if isinstance(endpoint, str):
        endpoint = (endpoint,)
    if not isinstance(endpoint, list | tuple) or not endpoint:
        raise ConfigError(f"{where} endpoint = {endpoint!r}: expected 'METHOD /path' or a list of them")
    for e in endpoint:
        method, _, path = str(e).partition(" ")
        if method not in ("GET", "POST", "DELETE", "PUT") or not path.startswith("/"):
            raise ConfigError(f"{where} endpoint = {e!r}: expected 'METHOD /path'")
    count = table.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or count == 0 or count < -1:
        raise ConfigError(f"{where} count = {count!r}: expected a positive integer or -1")
    prob = table.get("probability", 1.0)
    if isinstance(prob, bool) or not isinstance(prob, int | float) or not 0 < prob <= 1:
        raise ConfigError(f"{where} probability = {prob!r}: expected 0 < p <= 1")
    params = FAULT_DEFAULTS.get(kind, {}) | {k: table[k] for k in allowed[kind] if k in table}
    for key in DURATION_KEYS:
        if key in params:
            params[key] = duration_ns(params[key], f"{where} {key}")
    if "status" in params and not (isinstance(params["status"], int) and 400 <= params["status"] <= 599):
        raise ConfigError(f"{where} status = {params['status']!r}: expected an HTTP status 400-599")
    if kind == "reject" and (not isinstance(params.get("code"), int) or isinstance(params["code"], bool)):
        raise ConfigError(f"{where} (reject) needs code = <Binance error code>, e.g. -2010")
    if kind == "reject" and "msg" not in params:  # Binance's own message for a code it lists
        params["msg"] = BINANCE_REJECTS.get(params["code"], ("Rejected by the fault plan.",))[0]
    if "msg" in params and not isinstance(params["msg"], str):
        raise ConfigError(f"{where} msg = {params['msg']!r}: expected the error message text")
    if "skew_ms" in params and (not isinstance(params["skew_ms"], int) or isinstance(params["skew_ms"], bool)):
        raise ConfigError(f"{where} skew_ms = {params['skew_ms']!r}: expected an integer (ms, either sign)")
    if "body" in params and params["body"] not in FIVE_XX_BODIES:
        raise ConfigError(f"{where} body = {params['body']!r}: expected one of {list(FIVE_XX_BODIES)}")
    if kind in ("http_5xx_before", "http_5xx_after") and "body" not in params:
        params["body"] = "json" if params["status"] == 500 else "html"  # -1001 JSON, else a proxy's page
    if "transport" in params and not isinstance(params["transport"], bool):
        raise ConfigError(f"{where} transport = {params['transport']!r}: expected true or false")
    if "events" in params and not (isinstance(params["events"], int) and params["events"] > 0):
        raise ConfigError(f"{where} events = {params['events']!r}: expected a positive integer")
    if kind == "ws_disconnect" and params.get("stream", "all") not in ("market", "user", "all"):
        raise ConfigError(f"{where} stream = {params['stream']!r}: expected market, user or all")
    if kind == "outage" and params.get("reply", "timeout") not in OUTAGE_REPLIES:
        raise ConfigError(f"{where} reply = {params['reply']!r}: expected one of {list(OUTAGE_REPLIES)}")
    if kind in ("outage", "latency_spike") and "duration" not in params:
        raise ConfigError(f"{where} ({kind}) needs duration = '...', e.g. '10m'")
    if kind == "partial_fill_drought":
        if "duration" not in params:
            raise ConfigError(f"{where} (partial_fill_drought) needs duration = '...', e.g. '5m'")
        fraction = params.get("fraction")
        if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 < fraction <= 1:
            raise ConfigError(f"{where} fraction = {fraction!r}: expected 0 < fraction <= 1 (the share of "
                              "each passive fill the venue still gives)")
    if kind == "latency_spike" and "extra" not in params:
        raise ConfigError(f"{where} (latency_spike) needs extra = '...', the added order-entry latency")
    after, until = table.get("after", 0), table.get("until")
    after_ns = duration_ns(after, f"{where} after")
    until_ns = None if until is None else duration_ns(until, f"{where} until")
    _check_window(table, params, kind, after_ns, until_ns, where)
    return FaultSpec(kind=kind, endpoint=tuple(str(e) for e in endpoint), after_ns=after_ns, until_ns=until_ns,
                     count=count, probability=float(prob), params=params)


#: kinds that act for a window of `duration` from when they fire (0 = they would do nothing)
WINDOW_KINDS = frozenset({"outage", "latency_spike", "partial_fill_drought", "stale_market"})


def _check_window(table: dict[str, Any], params: dict[str, Any], kind: str, after_ns: int,
                  until_ns: int | None, where: str) -> None:
    """Refuse a fault that could never act: `until` not later than `after` (it may fire only
    in [after, until), which is then empty: `until` at or before the start, or before
    `after`), a window kind with `duration` 0, a `latency_spike` adding 0, a `maintenance`
    with both `duration` and `halt` 0. Why: such a file was accepted and the run went
    through without the fault, a stress result that says nothing."""
    if until_ns is not None and until_ns <= after_ns:
        raise ConfigError(f"{where} until = {table['until']!r}: must be later than after = {table.get('after', 0)!r} "
                          "(the fault fires only from after until until: that window is empty)")
    if kind in WINDOW_KINDS and params.get("duration") == 0:
        raise ConfigError(f"{where} duration = {table['duration']!r}: must be > 0 (a {kind} of no duration does nothing)")
    if kind == "rate_limit" and params.get("retry_after") == 0:
        raise ConfigError(f"{where} retry_after = {table['retry_after']!r}: must be > 0 (a 429 that holds "
                          "no time is no rate limit)")
    if kind == "latency_spike" and params.get("extra") == 0:
        raise ConfigError(f"{where} extra = {table['extra']!r}: must be > 0 (a latency_spike adding nothing does nothing)")
    if kind == "maintenance" and params.get("duration") == 0 and params.get("halt") == 0:
        raise ConfigError(f"{where} duration = {table['duration']!r}: with halt = {table['halt']!r} the maintenance "
                          "lasts no time; give either > 0")
