"""Classify a failed ccxt call: the command's typed Outcome, and whether resending is safe.

The rule that matters (Binance spot API docs, "HTTP Return Codes" and "Error Codes"):
- HTTP 4XX with a venue error code is a refusal *before* execution: REJECTED, with the code
  and message as evidence. 429 (-1003 weight, -1015 orders) is a refusal too, but transient:
  not executed, safe to resend after `Retry-After` (reason `rate_limited` when it is final).
  418 is an IP ban: REJECTED `ip_banned`, never resent (the request limiter holds every
  request to the venue until the ban's Retry-After). -1021 (timestamp outside recvWindow) is
  checked before anything else: not executed, safe to resend.
- HTTP 5XX, -1007 ("Timeout waiting for response from backend server. Send status
  unknown"), -1000/-1001, a timeout, a connection closed or reset after sending, any other
  transport error with no venue error code (aiohttp's ClientError family, e.g. a body cut
  short: ccxt raises a bare ExchangeError for it, which is not the venue's refusal), and a
  200 whose body does not parse: the execution status is UNKNOWN. For a submit or an amend
  (cancel-replace) that is AMBIGUOUS and is never resent: the OMS looks the order up by
  client id. A resend could trade twice, because Binance's newClientOrderId is unique only
  among OPEN orders (a filled order's id is free again).
- A cancel, or a query, may be resent after a network failure: a second cancel of the same
  client id cannot create anything (the worst answer is -2011 Unknown order).
- A connection that could not even be opened (aiohttp's ClientConnectorError under ccxt's
  ExchangeNotAvailable) never sent the request: safe to resend any command.

Why status and code before the exception class: on a non-Binance host (the emulator, a
proxy) ccxt applies its generic error table, where a 401 -2015 turns into DDoSProtection
(transient) once a private call has succeeded; the HTTP status and the body's code, when a
reply arrived (`venues.ccxt.http.Reply`), are the venue's own words.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from typing import Any

from engine.types.orders import ReasonCode
from engine.types.venue_reports import Command, Outcome

# Binance codes that are refusals before execution, but transient: resend after waiting
TRANSIENT_CODES = {-1003: "request weight limit", -1015: "order count limit", -1021: "timestamp outside recvWindow"}
# codes whose execution status is unknown (Binance: "Send status unknown")
UNKNOWN_CODES = {-1000, -1001, -1006, -1007}
_CODE = re.compile(r'"code"\s*:\s*(-?\d+)')
_MSG = re.compile(r'"msg"\s*:\s*"((?:[^"\\]|\\.)*)"')

# -2010 (NEW_ORDER_REJECTED) texts -> the engine's reason vocabulary
_NEW_ORDER_TEXTS = (
    ("insufficient balance", ReasonCode.INSUFFICIENT_BALANCE),
    ("immediately match and take", ReasonCode.POST_ONLY_WOULD_TAKE),
    ("duplicate order", ReasonCode.DUPLICATE_ORDER),
    ("market is closed", ReasonCode.MARKET_CLOSED),  # maintenance (BREAK, HALT), as the simulated venue's
)


@dataclass(frozen=True, slots=True)
class Classified:
    """The verdict on one failed call.

    outcome: for a command, REJECTED (the venue refused it, evidence attached) or AMBIGUOUS
    (it may have executed); `retry`: resending the same request is safe and may succeed;
    `wait_s`: the venue's Retry-After (seconds) when it gave one; `reason`: a code of
    `engine.types.orders.REASONS` for a rejection, when one fits.
    """

    outcome: Outcome
    retry: bool
    executed_unknown: bool
    reason: str | None = None
    wait_s: float | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


def venue_error(text: str | None) -> tuple[int | None, str | None]:
    """(code, msg) of a Binance error body (JSON or ccxt's 'binance {...}' message)."""
    if not text:
        return None, None
    brace = text.find("{")
    if brace >= 0:
        try:
            body = json.loads(text[brace:])
            if isinstance(body, dict) and "code" in body:
                return int(body["code"]), str(body.get("msg", ""))
        except (ValueError, TypeError):
            pass
    code = _CODE.search(text)
    msg = _MSG.search(text)
    return (int(code.group(1)) if code else None), (msg.group(1) if msg else None)


def _never_sent(exc: BaseException) -> bool:
    """True when the connection was never established (so the request never left)."""
    try:
        import aiohttp
    except ImportError:  # pragma: no cover - aiohttp is a ccxt dependency
        return False
    cause: BaseException | None = exc.__cause__
    while cause is not None:
        if isinstance(cause, aiohttp.ClientConnectorError):
            return True
        cause = cause.__cause__
    return False


def retry_after(headers: dict[str, str] | None) -> float | None:
    """A reply's `Retry-After` in seconds (any case of the header name), None without one."""
    for key, value in (headers or {}).items():
        if key.lower() == "retry-after":
            try:
                return float(value)
            except ValueError:
                return None
    return None


def _transport(exc: BaseException) -> str | None:
    """The class name of the transport error behind `exc`, None when there is none: the
    failure came from the transport, not from the venue, when somewhere in the exception's
    causes is an aiohttp ClientError (connection reset, payload cut short, malformed HTTP),
    an OSError (a socket reset, a timeout) or an incomplete read.

    Why: ccxt turns aiohttp's ClientConnectionError into ExchangeNotAvailable but any other
    aiohttp.ClientError (ClientPayloadError: the body ended before its Content-Length) into a
    bare ExchangeError, the class of a venue refusal; only the cause tells them apart."""
    try:
        import aiohttp
        transport: tuple[type[BaseException], ...] = (aiohttp.ClientError, OSError, asyncio.IncompleteReadError)
    except ImportError:  # pragma: no cover - aiohttp is a ccxt dependency
        transport = (OSError, asyncio.IncompleteReadError)
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, transport):
            return type(cause).__name__
        cause = cause.__cause__ or cause.__context__
    return None


def _cancel_replace_data(body: str | None) -> dict[str, Any]:
    """The `data` of a failed cancel-replace's error body (Binance -2022 / -2021): its
    cancelResult, newOrderResult, cancelResponse and newOrderResponse; {} if unreadable."""
    if not body:
        return {}
    try:
        data = json.loads(body[body.find("{"):]).get("data") or {}
    except (ValueError, TypeError, AttributeError):
        return {}
    return data if isinstance(data, dict) else {}


def _cancel_replace_code(data: dict[str, Any]) -> int | None:
    """The cancel part's code of a failed cancel-replace (in `data.cancelResponse`): -2011
    when the order to replace was not open any more."""
    try:
        return int((data.get("cancelResponse") or {}).get("code"))
    except (ValueError, TypeError, AttributeError):
        return None


def _reason(code: int | None, msg: str | None, command: Command | None) -> str | None:
    text = (msg or "").lower()
    if code == -2010:
        for needle, reason in _NEW_ORDER_TEXTS:
            if needle in text:
                return reason.value
        return None
    if code == -4108:  # futures: "Symbol is on delivering or delivered or settling or closed or
        # pre-trading": a dated future past its delivery, as the simulated venue refuses it
        return ReasonCode.MARKET_CLOSED.value
    if code in (-2011, -2013):  # cancel / query of an order the venue does not hold (open)
        return ReasonCode.UNKNOWN_ORDER.value
    if code == -1013:
        return ReasonCode.INVALID_PRICE.value if "price" in text else ReasonCode.INVALID_QTY.value
    return None


def classify(exc: BaseException, command: Command | None, *, status: int | None = None,
             body: str | None = None, headers: dict[str, str] | None = None) -> Classified:
    """Classify the exception a ccxt call raised (see module doc for the rules).

    command: SUBMIT / CANCEL / AMEND, or None for a read-only query (always safe to resend).
    status/body/headers: of the reply, when one arrived (`venues.ccxt.http.Reply`).
    """
    import ccxt

    code, msg = venue_error(body) if body else (None, None)
    if code is None:
        code, msg = venue_error(str(exc))
    replace = _cancel_replace_data(body) if code in (-2021, -2022) else {}
    inner = _cancel_replace_code(replace) if replace else None
    evidence: dict[str, Any] = {"exception": type(exc).__name__}
    if status is not None:
        evidence["http_status"] = status
    if code is not None:
        evidence["code"] = code
    if msg:
        evidence["msg"] = msg
    if inner is not None:
        evidence["cancel_code"] = inner
    # -2021 with the cancel part done: the order is gone and its replacement was refused;
    # the OMS ends the order (engine/venue_merge.py), with the replacement's refusal reason
    replaced_off = code == -2021 and replace.get("cancelResult") == "SUCCESS"
    if replaced_off:
        evidence["cancel_result"] = "SUCCESS"
        new = replace.get("newOrderResponse") or {}
        new_code, new_msg = (new.get("code"), new.get("msg")) if isinstance(new, dict) else (None, None)
    wait_s = retry_after(headers)
    resend_ok = command in (None, Command.CANCEL)  # resending cannot create an order

    def verdict(outcome: Outcome, retry: bool, unknown: bool) -> Classified:
        reason = None
        if outcome is Outcome.REJECTED:
            reason = (_reason(new_code, new_msg, Command.SUBMIT) if replaced_off
                      else _reason(inner if inner == -2011 else code, msg, command))
        return Classified(outcome, retry, unknown, reason, wait_s, evidence)

    # the venue's own words first
    if status == 418:  # an IP ban: nothing is resent into it (the limiter holds every request)
        return Classified(Outcome.REJECTED, False, False, ReasonCode.IP_BANNED.value, wait_s, evidence)
    if status == 429 or code in (-1003, -1015):  # transient: resent after Retry-After when that is soon
        return Classified(Outcome.REJECTED, True, False, ReasonCode.RATE_LIMITED.value, wait_s, evidence)
    if code in TRANSIENT_CODES:
        return verdict(Outcome.REJECTED, True, False)
    if status is not None and status >= 500 or code in UNKNOWN_CODES:
        return verdict(Outcome.AMBIGUOUS, resend_ok, True)
    if status is not None and 400 <= status < 500:
        return verdict(Outcome.REJECTED, False, False)
    if status is not None and 200 <= status < 300 and code is None:
        # the venue answered OK but the body could not be read: whatever it said is unknown
        return verdict(Outcome.AMBIGUOUS, resend_ok, True)
    # no reply: the exception class and its cause
    if isinstance(exc, ccxt.NetworkError) and _never_sent(exc):
        evidence["never_sent"] = True
        return verdict(Outcome.REJECTED, True, False)
    if isinstance(exc, (ccxt.RateLimitExceeded, ccxt.DDoSProtection)):
        return Classified(Outcome.REJECTED, True, False, ReasonCode.RATE_LIMITED.value, wait_s, evidence)
    if isinstance(exc, ccxt.InvalidNonce) and not isinstance(exc, ccxt.ChecksumError):
        return verdict(Outcome.REJECTED, True, False)
    if isinstance(exc, (ccxt.OperationFailed, ccxt.ExchangeNotAvailable)) or not isinstance(exc, ccxt.BaseError):
        # timeouts, lost replies, 5xx, bodies that do not parse, anything unexpected
        return verdict(Outcome.AMBIGUOUS, resend_ok, True)
    if code is None and (transport := _transport(exc)) is not None:
        # a transport failure ccxt labelled ExchangeError (a body cut short): no venue evidence
        evidence["transport"] = transport
        return verdict(Outcome.AMBIGUOUS, resend_ok, True)
    return verdict(Outcome.REJECTED, False, False)  # ExchangeError family with the venue's words: a refusal


def ambiguous_reply(reply: Any) -> bool:
    """A 200 whose body did not carry the order (truncated JSON): ccxt returns an order
    without an id, or with the raw text as its `info`, so the status is unknown (never treat
    it as a success or a refusal). One test for submit, cancel and amend replies."""
    return not isinstance(reply, dict) or not reply.get("id") or not isinstance(reply.get("info"), dict)
