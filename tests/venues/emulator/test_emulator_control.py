"""The control API refuses every bad request whole: a 400 whose one-line `msg` names the key
(or says what the body should be), and nothing of the emulator's state changes. Real HTTP
over 127.0.0.1 (the bodies are raw bytes, as a user's curl would send them)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from emu_helpers import control

from venues.emulator.control import LIMIT_KEYS


def post_raw(emu, what: str, raw: bytes) -> tuple[int, dict]:
    req = urllib.request.Request(f"{emu.url}/emulator/control/{what}", data=raw,
                                 headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def snapshot(emu) -> dict:
    """Every piece of state a control request can change."""
    def read(server):
        lim = server.limiter
        return {"limiter": (lim.weight_per_minute, lim.orders_per_10s, lim.ban_after, lim.ban_s,
                            dict(lim._weight), dict(lim._violations)),
                "server": (server.ping_interval, server.max_connection_s, server.max_incoming_per_s,
                           server.skew_ms, server.stream_first),
                "max_num_orders": server.exchange.max_num_orders,
                "faults": [f.to_json() for f in server.faults.faults],
                "clock": server.exchange.clock.now()}
    return emu.call(read)


BAD = [
    # (endpoint, raw body, words the one-line message must contain)
    ("limits", b"[1, 2]", ["control/limits", "JSON object", "array"]),
    ("limits", b'"x"', ["control/limits", "JSON object", "string"]),
    ("limits", b"not json", ["control/limits", "invalid JSON"]),
    ("limits", b"", ["control/limits", "invalid JSON"]),
    ("limits", b"{}", ["control/limits", "empty body"]),
    ("limits", b'{"weight_per_minute": -5}', ["weight_per_minute = -5", ">= 1"]),
    ("limits", b'{"orders_per_10s": 0}', ["orders_per_10s = 0", ">= 1"]),
    ("limits", b'{"ban_after": -1}', ["ban_after = -1", ">= 0"]),
    ("limits", b'{"ban_s": 0}', ["ban_s = 0", "> 0"]),
    ("limits", b'{"ping_interval": -1.5}', ["ping_interval = -1.5", "> 0"]),
    ("limits", b'{"max_incoming_per_s": 2.5}', ["max_incoming_per_s = 2.5", "integer"]),
    ("limits", b'{"max_num_orders": "10"}', ["max_num_orders = '10'", "number"]),
    ("limits", b'{"stream_first": "no"}', ["stream_first = 'no'", "true or false"]),
    ("limits", b'{"reset": 1}', ["reset = 1", "true or false"]),
    # magnitudes past what a rule can mean (a typo that would wedge the emulator)
    ("limits", b'{"skew_ms": 1e308}', ["skew_ms = 1e+308", "at most 8.64e+07"]),
    ("limits", b'{"weight_per_minute": 1e30}', ["weight_per_minute = 1e+30", "at most 1e+09"]),
    ("limits", b'{"ping_interval": 0.001}', ["ping_interval = 0.001", "> 0.05"]),
    ("faults", b'{"kind": "stale_market", "duration": "99999999999d"}', ["duration = '99999999999d'", "7 days"]),
    ("limits", b'{"bogus": 1}', ["unknown key(s) ['bogus']", "weight_per_minute"]),
    # a good key before a bad one: the good one must not be applied either
    ("limits", b'{"weight_per_minute": 7, "ban_s": "abc"}', ["ban_s = 'abc'"]),
    ("limits", b'{"weight_per_minute": 7, "wieght": 1}', ["unknown key(s) ['wieght']"]),
    ("faults", b"[1, 2]", ["control/faults", "JSON object", "array"]),
    ("faults", b"null", ["control/faults", "JSON object", "null"]),
    ("faults", b'{"clear": true, "kind": "delay"}', ["clear", "alone"]),
    ("faults", b'{"clear": false}', ["clear = False"]),
    ("faults", b'{"kind": "delay", "delay": -1}', ["control fault", "delay = -1"]),
    ("faults", b'{"kind": "delay", "colour": 1}', ["control fault", "unknown key(s) ['colour']"]),
    ("faults", b'{"kind": "response_lost", "endpoint": "POST /api/v3/orders"}',
     ["control fault", "endpoint = 'POST /api/v3/orders'", "valid endpoints: DELETE /api/v3/order"]),
    ("faults", b'{"kind": "maintenance", "duration": "5x"}', ["control fault duration = '5x'"]),
    ("faults", b'{"kind": "delay", "after": "10s", "until": "2s"}', ["control fault until = '2s'", "later than after"]),
    ("faults", b'{"kind": "stale_market", "duration": 0}', ["control fault duration = 0: must be > 0"]),
    ("step", b"[1]", ["control/step", "JSON object", "array"]),
    ("step", b'{"by_ns": -5}', ["by_ns = -5", ">= 0"]),
    ("step", b'{"to_ns": 0}', ["to_ns = 0", "never goes back"]),
    ("step", b'{"by_ns": 1.5}', ["by_ns = 1.5", "integer"]),
    ("step", b'{"x": 1}', ["unknown key(s) ['x']"]),
    ("step", b"{}", ["exactly one of to_ns, by_ns"]),
    ("step", b'{"to_ns": 1, "by_ns": 1}', ["exactly one of to_ns, by_ns"]),
]


@pytest.mark.parametrize(("what", "raw", "words"), BAD, ids=[f"{w}:{r.decode()[:40]}" for w, r, _ in BAD])
def test_a_bad_control_request_is_a_400_naming_the_key_and_changes_nothing(emu, what, raw, words):
    control(emu, "faults", {"kind": "response_lost", "count": 2})  # a plan to keep
    try:
        before = snapshot(emu)
        status, body = post_raw(emu, what, raw)
        assert status == 400, body
        assert body["code"] == -1100
        assert "\n" not in body["msg"]
        for word in words:
            assert word in body["msg"], body["msg"]
        assert snapshot(emu) == before
    finally:
        control(emu, "faults", {"clear": True})


def test_good_control_requests_apply_exactly_what_they_say(emu):
    before = snapshot(emu)
    try:
        assert control(emu, "limits", {"weight_per_minute": 7, "ban_s": 2, "stream_first": True,
                                       "skew_ms": -250}) == {
            "ok": True, "weight_per_minute": 7, "ban_s": 2.0, "stream_first": True, "skew_ms": -250}
        after = snapshot(emu)
        assert after["limiter"][0] == 7 and after["limiter"][3] == 2.0
        assert after["server"][3] == -250 and after["server"][4] is True
        assert after["limiter"][1:3] == before["limiter"][1:3]  # untouched keys stay
        clock = before["clock"]
        assert control(emu, "step", {"by_ns": 1_000_000}) == {"market_ns": clock + 1_000_000}
        assert control(emu, "step", {"to_ns": clock + 3_000_000}) == {"market_ns": clock + 3_000_000}
    finally:
        control(emu, "limits", {"weight_per_minute": before["limiter"][0], "ban_s": before["limiter"][3],
                                "stream_first": before["server"][4], "skew_ms": before["server"][3]})


def test_the_limit_keys_are_the_documented_ones():
    """docs/emulator.md lists control/limits' keys; the validator knows exactly those."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[3] / "docs" / "emulator.md").read_text()
    row = next(line for line in doc.splitlines() if line.startswith("| `POST /emulator/control/limits`"))
    for key in LIMIT_KEYS:
        assert f"`{key}`" in row, key
