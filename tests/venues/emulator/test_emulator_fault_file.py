"""The fault-file parser: every error names the file, the fault (its index) and the key;
an `endpoint` the emulator does not serve is refused when the plan is loaded, with the list
of the endpoints it does serve (a fault on a route that does not exist could never fire)."""

from __future__ import annotations

import pytest

from engine.errors import ConfigError
from engine.types import load_instruments
from venues.emulator import FaultPlan
from venues.emulator.server import rest_endpoints

CAT = load_instruments()
SPOT = rest_endpoints([CAT["binance:BTC/USDT"]])
USDM = rest_endpoints([CAT["binanceusdm:BTC/USDT:USDT"]])
COINM = rest_endpoints([CAT["binancecoinm:BTC/USD:BTC"]])


def plan_file(tmp_path, text: str):
    path = tmp_path / "faults.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("table", "message"), [
    # durations: the key of every duration (after, until, delay, duration, halt, extra)
    ('kind = "maintenance"\nduration = "5x"', "#2 duration = '5x': expected seconds or a duration"),
    ('kind = "delay"\nafter = "soon"', "#2 after = 'soon'"),
    ('kind = "delay"\nuntil = "1 minute"', "#2 until = '1 minute'"),
    ('kind = "delay"\ndelay = -3', "#2 delay = -3: must be >= 0"),
    ('kind = "maintenance"\nhalt = true', "#2 halt = True"),
    ('kind = "latency_spike"\nduration = "5s"\nextra = "fast"', "#2 extra = 'fast'"),
    # the other keys
    ('kind = "http_5xx_before"\nbody = "xml"', "#2 body = 'xml': expected one of ['html', 'json', 'empty']"),
    ('kind = "clock_skew"\nskew_ms = "5s"', "#2 skew_ms = '5s': expected an integer"),
    ('kind = "reject"\ncode = -2010\nmsg = 5', "#2 msg = 5"),
    ('kind = "delay"\ncount = 0', "#2 count = 0"),
    ('kind = "delay"\nprobability = 2', "#2 probability = 2"),
    ('kind = "delay"\nendpoint = "order"', "#2 endpoint = 'order': expected 'METHOD /path'"),
    # impossible windows: a fault that could never act
    ('kind = "delay"\nafter = "60s"\nuntil = "30s"', "#2 until = '30s': must be later than after = '60s'"),
    ('kind = "delay"\nafter = 5\nuntil = 5', "#2 until = 5: must be later than after = 5"),
    ('kind = "delay"\nuntil = 0', "#2 until = 0: must be later than after = 0"),
    ('kind = "stale_market"\nduration = "0s"', "#2 duration = '0s': must be > 0"),
    ('kind = "partial_fill_drought"\nduration = "0ms"\nfraction = 0.5', "#2 duration = '0ms': must be > 0"),
    ('kind = "latency_spike"\nduration = 0\nextra = "1s"', "#2 duration = 0: must be > 0"),
    ('kind = "latency_spike"\nduration = "5s"\nextra = 0', "#2 extra = 0: must be > 0"),
    ('kind = "maintenance"\nduration = 0\nhalt = "0s"', "#2 duration = 0: with halt = '0s' the maintenance"),
])
def test_every_parse_error_names_the_file_the_fault_and_the_key(tmp_path, table, message):
    path = plan_file(tmp_path, f'seed = 1\n[[fault]]\nkind = "response_lost"\n[[fault]]\n{table}\n')
    with pytest.raises(ConfigError) as err:
        FaultPlan.load(path)
    text = str(err.value)
    assert text.startswith(f"{path} [[fault]] #2 "), text
    assert message in text, text
    assert "\n" not in text


def test_the_emulator_endpoints_are_its_rest_routes():
    """Pinned by hand from docs/emulator.md's endpoint tables (spot) and the futures ones."""
    assert SPOT == {"GET /api/v3/ping", "GET /api/v3/time", "GET /api/v3/exchangeInfo", "GET /api/v3/depth",
                    "GET /api/v3/ticker/bookTicker", "GET /api/v3/account", "POST /api/v3/order",
                    "GET /api/v3/order", "DELETE /api/v3/order", "POST /api/v3/order/cancelReplace",
                    "GET /api/v3/openOrders", "GET /api/v3/myTrades"}
    assert {"POST /fapi/v1/order", "DELETE /fapi/v1/order", "GET /fapi/v3/positionRisk",
            "POST /fapi/v1/listenKey"} <= USDM
    assert not any(e.split(" ")[1].startswith("/api/") for e in USDM)
    assert "POST /dapi/v1/order" in COINM and not USDM & COINM


def test_an_endpoint_the_emulator_does_not_serve_is_refused_with_the_valid_ones(tmp_path):
    path = plan_file(tmp_path, '[[fault]]\nkind = "response_lost"\n'
                               '[[fault]]\nkind = "http_5xx_before"\nendpoint = ["POST /api/v3/order", "POST /api/v3/orders"]\n')
    plan = FaultPlan.load(path)  # the vocabulary is fine: only the emulator knows its routes
    with pytest.raises(ConfigError) as err:
        plan.check_endpoints(SPOT)
    text = str(err.value)
    assert text.startswith(f"{path} [[fault]] #2 endpoint = 'POST /api/v3/orders': no such route")
    assert "valid endpoints: DELETE /api/v3/order, GET /api/v3/account," in text
    # a stream kind naming a route that exists is fine; one naming none is refused too
    ok = plan_file(tmp_path, '[[fault]]\nkind = "ws_disconnect"\n[[fault]]\nkind = "rate_limit"\n'
                             'endpoint = "GET /api/v3/depth"\n')
    FaultPlan.load(ok).check_endpoints(SPOT)


def test_a_futures_emulator_refuses_the_spot_default_and_takes_its_own_routes(tmp_path):
    """A REST fault without `endpoint` means the spot order calls: on a /fapi emulator it
    could never fire, so it is refused (docs/emulator.md: name the futures ones)."""
    default = FaultPlan.load(plan_file(tmp_path, '[[fault]]\nkind = "response_lost"\n'))
    default.check_endpoints(SPOT)
    with pytest.raises(ConfigError, match=r"#1 endpoint = 'POST /api/v3/order' \(the default: Binance spot's "
                                          r"order calls\): no such route .* POST /fapi/v1/order"):
        default.check_endpoints(USDM)
    FaultPlan.load(plan_file(tmp_path, '[[fault]]\nkind = "response_lost"\nendpoint = "POST /fapi/v1/order"\n')
                   ).check_endpoints(USDM)
    FaultPlan.load(plan_file(tmp_path, '[[fault]]\nkind = "user_drop"\n')).check_endpoints(USDM)


def test_a_window_that_is_possible_is_accepted(tmp_path):
    """The bounds of the window rules: until just after after, a maintenance that only halts."""
    path = plan_file(tmp_path, '[[fault]]\nkind = "delay"\nafter = "5s"\nuntil = "5001ms"\n'
                               '[[fault]]\nkind = "maintenance"\nduration = 0\nhalt = "1s"\n')
    plan = FaultPlan.load(path)
    assert [(f.after_s, f.until_s) for f in plan.faults] == [(5.0, 5.001), (0.0, None)]
    assert plan.faults[1].params == {"duration": 0.0, "halt": 1.0}
