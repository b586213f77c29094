"""engine.frozen.frozen_builder: the session's cheap constructor of frozen records must make
exactly the object the dataclass makes (every field, still frozen)."""

import dataclasses
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.frozen import frozen_builder
from engine.types import Liquidity, OrderStatus
from engine.types.venue_reports import VenueFill, VenueOrderState
from engine.views import Event, OrderUpdate, OrderView, Status

_amounts = st.decimals(allow_nan=False, allow_infinity=False, places=6)
_optional = st.none() | _amounts
_text = st.text(max_size=8)


def _same(cls, fields):
    built = frozen_builder(cls)(**fields)
    want = cls(**fields)
    assert type(built) is cls and built == want
    assert dataclasses.astuple(built) == dataclasses.astuple(want)
    # the positional builder: the fields in the dataclass's order
    by_position = frozen_builder(cls, positional=True)(*(fields[f.name] for f in dataclasses.fields(cls)))
    assert type(by_position) is cls and dataclasses.astuple(by_position) == dataclasses.astuple(want)
    name = dataclasses.fields(cls)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(built, name, getattr(want, name))  # still frozen for the strategy


@given(st.fixed_dictionaries({
    "client_id": _text, "instrument": _text, "side": st.sampled_from(["buy", "sell"]),
    "status": st.sampled_from(list(Status)), "event": st.sampled_from(list(Event)), "filled_qty": _amounts,
    "leaves_qty": _amounts, "last_fill_price": _optional, "last_fill_qty": _amounts, "fee": _amounts,
    "liquidity": st.none() | st.sampled_from(["maker", "taker"]), "reason": st.none() | _text,
    "ts": st.integers(0, 2**63), "price": _optional, "qty": _amounts, "parent_id": st.none() | _text,
    "fee_charged": _optional, "fee_asset": st.none() | st.sampled_from(["USDT", "BTC"])}))
def test_order_update_builder_makes_the_dataclass_own_object(fields):
    _same(OrderUpdate, fields)


_ts = st.none() | st.integers(0, 2**63)


@given(st.fixed_dictionaries({
    "client_id": _text, "instrument": _text, "side": st.sampled_from(["buy", "sell"]),
    "type": st.sampled_from(["limit", "market"]), "tif": st.sampled_from(["GTC", "IOC", "FOK", "GTX", "GTD"]),
    "status": st.sampled_from(list(Status)), "price": _optional, "qty": _amounts, "filled_qty": _amounts,
    "leaves_qty": _amounts, "avg_fill_price": _optional, "fees": _amounts, "reason": st.none() | _text,
    "post_only": st.booleans(), "reduce_only": st.booleans(), "parent_id": st.none() | _text,
    "expire_ns": _ts, "created_ts": st.integers(0, 2**63), "ack_ts": _ts, "first_fill_ts": _ts,
    "last_fill_ts": _ts, "cancel_req_ts": _ts, "done_ts": _ts}))
def test_order_view_builder_makes_the_dataclass_own_object(fields):
    _same(OrderView, fields)  # ctx.order's snapshot (engine/session.py order_view)


@given(st.fixed_dictionaries({
    "client_id": _text, "venue_order_id": st.none() | _text, "status": st.sampled_from(list(OrderStatus)),
    "price": st.integers(0, 2**62), "qty": st.integers(0, 2**62), "filled": st.integers(0, 2**62),
    "exch_ts": st.integers(0, 2**63), "local_ts": st.integers(0, 2**63), "reason": st.none() | _text,
    "source": st.sampled_from(["sim", "query", "stream"]), "found": st.booleans()}))
def test_venue_state_builder_makes_the_dataclass_own_object(fields):
    _same(VenueOrderState, fields)


@given(st.fixed_dictionaries({
    "client_id": _text, "venue_order_id": _text, "trade_id": _text, "price": st.integers(0, 2**62),
    "qty": st.integers(1, 2**62), "fee": _amounts, "fee_asset": st.sampled_from(["USDT", "BTC", "BNB"]),
    "liquidity": st.sampled_from(list(Liquidity)), "exch_ts": st.integers(0, 2**63),
    "local_ts": st.integers(0, 2**63), "source": st.sampled_from(["sim", "query"])}))
def test_venue_fill_builder_makes_the_dataclass_own_object(fields):
    _same(VenueFill, fields)


def test_the_builder_needs_every_field_defaults_included():
    fields = {f.name: None for f in dataclasses.fields(VenueOrderState)}
    del fields["found"]  # has a default in the dataclass, not in the builder
    with pytest.raises(TypeError, match="found"):
        frozen_builder(VenueOrderState)(**fields)
    assert frozen_builder(Decimal) is Decimal  # not a slotted dataclass: returned as is
