"""Client ids stay within Binance's 36 characters (issue 11): a session prefix that could
lead a longer id within the id space a session can reach is refused when the session is
made (one line, naming the key); an id the engine would make beyond 36 is an InternalError,
one made from a strategy's own id an OrderError; never a truncated id."""

from __future__ import annotations

import pytest

from engine.errors import ConfigError, InternalError
from engine.oms import (
    CLIENT_ID_MAX,
    ID_SPACE_TAIL,
    PREFIX_MAX,
    RELEASE_DIGITS,
    OrderManager,
    base36,
)
from engine.types import OrderType, TimeInForce, load_instruments

BTC = load_instruments()["binance:BTC/USDT"]


def _new(oms: OrderManager, client_id=None):
    return oms.create(BTC, 0, 1, OrderType.LIMIT, TimeInForce.GTC, 100, 10, client_id)


def test_the_id_space_and_the_prefix_limit():
    prefix = "p" * PREFIX_MAX
    longest = f"{prefix}-c{'9' * 9}.parent.{'9' * RELEASE_DIGITS}"  # an OTO parent leg's release
    assert len(longest) == CLIENT_ID_MAX and len(longest) - PREFIX_MAX == ID_SPACE_TAIL
    # a live session's prefix, `tp<stamp>`, fits for epoch ms up to 36**8 (year 2059)
    assert len(f"tp{base36(36**8 - 1)}") <= PREFIX_MAX
    OrderManager(id_prefix=prefix)  # exactly the limit: accepted


@pytest.mark.parametrize("prefix", ["p" * (PREFIX_MAX + 1), "", "tp x", "tp\u00e9", "tp!"])
def test_a_prefix_that_could_lead_a_longer_id_is_refused_in_one_line(prefix):
    with pytest.raises(ConfigError) as info:
        OrderManager(id_prefix=prefix)
    message = str(info.value)
    assert message.startswith(f"id_prefix = {prefix!r}: expected 1 to {PREFIX_MAX} characters")
    assert "\n" not in message


def test_the_generator_never_makes_a_longer_id_nor_truncates_one():
    oms = OrderManager(id_prefix="tp")
    _new(oms)
    # the largest number a 36-character `tp-<n>` carries is the guard's bound
    assert len(f"tp-{oms._last_no}") == CLIENT_ID_MAX and len(f"tp-{oms._last_no + 1}") == CLIENT_ID_MAX + 1
    oms._next_no = oms._last_no + 1  # a session this long is far outside the id space: the guard still holds
    with pytest.raises(InternalError, match=r"'tp-1000000000000000000000000000000000': 37 characters, more than 36"):
        _new(oms)
    assert oms._next_no == oms._last_no + 1 and len(oms.by_no) == 1  # nothing made, no number used
