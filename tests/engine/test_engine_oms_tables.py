"""The OMS's id tables (engine/oms.py: `OrdersByNumber`, `OrdersByClient`, `OpenNumbers`):
every order, open or ended, found by number and by client id exactly as one plain dict per
key would find it, under random sessions (hypothesis), with pages and shards shrunk so a
short session crosses many page boundaries, and once at the real sizes."""

from __future__ import annotations

import random
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

import engine.oms as oms_module
from engine.oms import OrderManager
from engine.types import OrderStatus, OrderType, TimeInForce, load_instruments

INSTRUMENTS = load_instruments()
BTC, ETH = INSTRUMENTS["binance:BTC/USDT"], INSTRUMENTS["binance:ETH/USDT"]
PREFIX = "tpmx3lo400"
ENDS = (OrderStatus.CANCELLED, OrderStatus.FILLED, OrderStatus.REJECTED, OrderStatus.EXPIRED)

# a create under the session's own id, under a strategy's id (some shaped like our own
# ids but not ours: a leading zero, number 0, another number, unicode digits), or the end
# of the k-th order created (k modulo the orders so far)
_named = st.one_of(
    st.from_regex(r"[a-z][a-z0-9.]{0,8}", fullmatch=True),
    st.sampled_from([f"{PREFIX}-0", f"{PREFIX}-01", f"{PREFIX}-c1.tp", f"{PREFIX}-c1.tp.2", f"{PREFIX}-\u0661",
                     f"{PREFIX}-", f"{PREFIX}x-1", "tp-1", f"{PREFIX}-{'9' * 30}"]),
    st.integers(1, 60).map(lambda n: f"{PREFIX}-{n}"),
)
_step = st.one_of(
    st.tuples(st.just("own"), st.sampled_from([BTC, ETH])),
    st.tuples(st.just("named"), _named),
    st.tuples(st.just("end"), st.integers(0, 10**6), st.sampled_from(ENDS)),
)


def _create(oms: OrderManager, instrument, client_id=None):
    return oms.create(instrument, 0, 1, OrderType.LIMIT, TimeInForce.GTC, 100, 10, client_id)


def _end(oms: OrderManager, order, status: OrderStatus) -> None:
    oms.set_status(order, OrderStatus.SUBMITTED, 1)
    if status == OrderStatus.FILLED:
        oms.set_status(order, OrderStatus.ACKNOWLEDGED, 2)
    oms.set_status(order, status, 3)


def _check(oms: OrderManager, by_client: dict, by_no: dict, asked: set[str]) -> None:
    """The tables say what the model dicts say (`by_no` / `by_client`, one dict per key, the
    last order under an id winning as a dict's assignment does)."""
    for cid in set(by_client) | asked:
        assert oms.by_client.get(cid) is by_client.get(cid), cid
        assert (cid in oms.by_client) == (cid in by_client), cid
        if cid in by_client:
            assert oms.by_client[cid] is by_client[cid]
    for n in range(-1, len(by_no) + 3):
        assert oms.by_no.get(n) is by_no.get(n), n
        assert (n in oms.by_no) == (n in by_no)
    assert list(oms.by_no) == list(by_no) and list(reversed(oms.by_no)) == list(reversed(by_no))
    assert oms.by_no.values() == list(by_no.values()) and len(oms.by_no) == len(by_no)
    assert list(oms.by_client) == [o.client_id for o in by_no.values()]
    open_nos = [n for n, o in by_no.items() if o.is_open]
    assert list(oms.open_nos) == open_nos and len(oms.open_nos) == len(open_nos)
    assert all(n in oms.open_nos for n in open_nos)
    assert not any(n in oms.open_nos for n in by_no if n not in open_nos)
    assert oms.open_orders() == [by_no[n] for n in open_nos]
    assert oms.open_client_ids() == [by_no[n].client_id for n in open_nos]
    for inst in (BTC, ETH):
        assert oms.open_orders(inst.id) == [by_no[n] for n in open_nos if by_no[n].instrument is inst]
        assert oms.open_client_ids(inst.id) == [by_no[n].client_id for n in open_nos if by_no[n].instrument is inst]


def _run(steps) -> None:
    oms = OrderManager(id_prefix=PREFIX)
    by_client: dict = {}
    by_no: dict = {}
    asked = {"nope", f"{PREFIX}-999999", f"{PREFIX}-1.1"}
    for step in steps:
        if step[0] == "end":
            if by_no:
                order = by_no[step[1] % len(by_no) + 1]
                if order.is_open:
                    _end(oms, order, step[2])
            continue
        if step[0] == "named":
            cid = step[1]
            asked.add(cid)
            if oms.is_duplicate(cid):  # the session refuses a taken id before it creates
                assert cid in by_client
                continue
            order = _create(oms, BTC, cid)
        else:
            order = _create(oms, step[1])
        assert order.order_no == len(by_no) + 1
        by_no[order.order_no] = order
        by_client[order.client_id] = order
        assert oms.is_duplicate(order.client_id)
        assert order.client_id not in oms.recent  # orders' ids are by_client's, not the LRU's
    _check(oms, by_client, by_no, asked)


@settings(max_examples=150, deadline=None)
@given(st.lists(_step, max_size=120))
def test_every_order_found_by_number_and_client_id_across_small_pages(steps):
    # pages of 4 orders, open-number pages of 2, 4 shards: a short session crosses many
    # page boundaries, ends whole pages, and shares shards
    with mock.patch.multiple(oms_module, _PAGE_BITS=2, _PAGE=4, _SLOT=3, _OPEN_BITS=1, _SHARDS=4, _SHARD=3):
        _run(steps)


@settings(max_examples=25, deadline=None)
@given(st.lists(_step, max_size=60))
def test_every_order_found_at_the_real_sizes(steps):
    _run(steps)


def test_a_long_session_across_real_pages():
    """3,000 orders (three order pages, a dozen open-number pages), a third under named
    ids, ending in a random order; every lookup of every order, then a page emptied and
    dropped while a later one stays open."""
    rng = random.Random(7)
    steps = []
    for k in range(3000):
        steps.append(("named", f"g{k}.tp") if k % 3 == 0 else ("own", rng.choice([BTC, ETH])))
        if rng.random() < 0.7:
            steps.append(("end", rng.randrange(10**6), rng.choice(ENDS)))
    _run(steps)
    oms = OrderManager()
    orders = [_create(oms, BTC) for _ in range(600)]
    for order in orders[:300]:
        _end(oms, order, OrderStatus.CANCELLED)
    assert list(oms.open_nos) == list(range(301, 601)) and 1 not in oms.open_nos
    assert len(oms.open_nos._pages) == 2  # numbers 0-255 ended: that page is gone
    assert oms.by_client["tp-5"] is orders[4] and oms.by_no[5] is orders[4]  # ended, still found
