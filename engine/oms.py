"""Order manager: the order state machine, client ids and idempotent submission.

Why strict: an illegal status change is a bug that must surface, not be papered over. It
raises `IllegalTransitionError`, an `InternalError` (exit 1): the user cannot cause it.
A live venue answers late, twice or out of order; that is not a bug, so venue reports go
through engine/venue_merge.py first, which merges them per client id (fills once per
trade id, statuses never regressing) and asks `set_status` only for legal changes. Every
mode feeds venue reports through that one merge.
"""

from __future__ import annotations

import json
import operator
import os
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from engine.errors import (
    ConfigError,
    IllegalTransitionError,
    InternalError,
    OrderError,
    StorageError,
)
from engine.order_state_nb import FILLED, NO_CHANGE, fill_status, is_legal, is_terminal
from engine.types import Instrument, OrderStatus, OrderType, TimeInForce
from engine.types.orders import TERMINAL_STATUSES
from engine.types.venue_reports import BookedFill

S = OrderStatus
# the one transition table is engine.order_state_nb.LEGAL_MASK (integers, shared with the
# compiled loop); this is its reading as statuses, for the code that asks by set
LEGAL_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    c: frozenset(n for n in S if is_legal(c, n)) for c in S
}
# the same table and `is_terminal` read once into tuples indexed by the status's int
# value (an IntEnum hashes by its name in Python code, a tuple index is one C call): the
# plain path's transitions, `Order.leaves` and `is_open` (several per order event) index
# them instead of calling is_legal / is_terminal (bench/PROFILE.md 2f: one call more per
# transition was measurable)
_LEGAL: tuple[tuple[bool, ...], ...] = tuple(tuple(is_legal(c, n) for n in S) for c in S)
_TERMINAL: tuple[bool, ...] = tuple(is_terminal(s) for s in S)
_STATUS: tuple[OrderStatus, ...] = tuple(S)  # a status code -> its OrderStatus


def check_transition(current: OrderStatus, new: OrderStatus) -> None:
    """Raise IllegalTransitionError unless current -> new is allowed (order_state_nb.is_legal)."""
    if not is_legal(current, new):
        raise IllegalTransitionError(
            f"illegal order transition {current.name} -> {new.name}"
        )


@dataclass(slots=True)
class Order:
    """One order as the engine knows it (ticks/lots inside, Decimals at the edges)."""

    order_no: int
    client_id: str
    instrument: Instrument
    instrument_index: int
    side: int  # +1 buy, -1 sell
    type: OrderType
    tif: TimeInForce
    price: int  # ticks; 0 for market orders
    qty: int  # lots, total ordered
    post_only: bool = False
    reduce_only: bool = False
    gtd_ts: int = 0
    parent_id: str | None = None
    status: OrderStatus = OrderStatus.PENDING
    filled: int = 0  # lots
    notional_filled: Decimal = Decimal(0)  # sum of price*qty of fills
    fees: Decimal = Decimal(0)
    reason: str | None = None  # a code of engine.types.orders.REASONS; None when there is none
    created_ts: int = 0
    trigger_ts: int = 0
    ack_ts: int | None = None
    first_fill_ts: int | None = None
    last_fill_ts: int | None = None
    cancel_req_ts: int | None = None
    done_ts: int | None = None
    arrival_bid: Decimal | None = None
    arrival_ask: Decimal | None = None
    history: list[OrderStatus] = field(default_factory=list)
    # what the venue told us (engine.types.venue_reports; merged by engine.venue_merge)
    venue_order_id: str | None = None
    evidence: dict | None = None  # the venue's own words when it refused the order
    venue_filled: int = 0  # lots: the largest cumulative `filled` a venue state reported
    ambiguous: set[str] = field(default_factory=set)  # commands awaiting a lookup
    lookup_pending: bool = False  # a request_order_state is out, not answered yet
    state_ts: int = -1  # exch_ts of the venue state whose price/qty the order carries
    # a cancel-replace amend (Binance spot) gives the order a new venue order id under the
    # same client id: the venue order ids it replaced -> the lots each filled (their
    # CANCELED is the replace's cancel part, not the order's end; engine/venue_merge.py)
    replaced: dict[str, int] = field(default_factory=dict)
    # a CANCELLED report of the current venue order id that came while an amend was in
    # flight: held until the amend's outcome says whether it was the replace's cancel part
    held_end: tuple | None = None

    @property
    def owed(self) -> int:
        """Lots the venue says filled that no fill record has booked yet (0 = none)."""
        return max(0, self.venue_filled - self.filled)

    @property
    def leaves(self) -> int:
        return 0 if _TERMINAL[self.status] else self.qty - self.filled

    @property
    def is_open(self) -> bool:
        return not _TERMINAL[self.status]

    @property
    def side_name(self) -> str:
        return "buy" if self.side > 0 else "sell"

    @property
    def avg_fill_price(self) -> Decimal | None:
        """Volume-weighted average fill price (exact), None before the first fill."""
        return self.notional_filled / self.instrument.lots_to_qty(self.filled) if self.filled else None

    def transition(self, new: OrderStatus) -> None:
        current = self.status
        if not _LEGAL[current][new]:  # order_state_nb.is_legal, as a table
            check_transition(current, new)  # raises, naming both
        self.history.append(current)
        self.status = new


@dataclass(slots=True)
class ParentOrder:
    """A parent (e.g. a TWAP's whole quantity): never sent, filled by its children.

    Why it exists: execution analysis needs the parent's decision time, arrival prices and
    target to measure implementation shortfall and the opportunity cost of what did not
    fill.
    """

    parent_id: str
    instrument: Instrument
    side: int
    qty: Decimal  # target, base units
    created_ts: int
    trigger_ts: int
    arrival_bid: Decimal | None
    arrival_ask: Decimal | None
    filled: Decimal = Decimal(0)
    notional_filled: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    status: OrderStatus = OrderStatus.ACKNOWLEDGED
    reason: str | None = None  # the strategy's close reason when cancelled short of its target
    first_fill_ts: int | None = None
    last_fill_ts: int | None = None
    done_ts: int | None = None

    @property
    def side_name(self) -> str:
        return "buy" if self.side > 0 else "sell"

    def book_fill(self, fill: BookedFill) -> None:
        """A child's booked fill (engine/venue_merge.py hands it the record): `add_fill`."""
        self.add_fill(fill.ts, fill.price, fill.qty, fill.fee_quote)

    def add_fill(self, ts: int, price: Decimal, qty: Decimal, fee: Decimal) -> None:
        self.filled += qty
        self.notional_filled += price * qty
        self.fees += fee
        self.first_fill_ts = self.first_fill_ts or ts
        self.last_fill_ts = ts
        if self.status not in TERMINAL_STATUSES:
            self.status = OrderStatus.FILLED if self.filled >= self.qty else OrderStatus.PARTIALLY_FILLED
            if self.status == OrderStatus.FILLED:
                self.done_ts = ts


def _order_builder():
    """A constructor of `Order` by position: (order_no, client_id, instrument,
    instrument_index, side, type, tif, price, qty, post_only, reduce_only, gtd_ts,
    parent_id, created_ts, trigger_ts, arrival_bid, arrival_ask), every other field its
    default, each slot set directly. The same object as `Order(...)` with those fields
    (tests/engine/test_engine_oms.py pins every field): the dataclass `__init__` matches
    keywords and takes all 35 parameters; a submit builds one Order (bench/PROFILE.md 1i)."""
    import dataclasses

    given = ("order_no", "client_id", "instrument", "instrument_index", "side", "type", "tif", "price", "qty",
             "post_only", "reduce_only", "gtd_ts", "parent_id", "created_ts", "trigger_ts", "arrival_bid",
             "arrival_ask")
    namespace: dict = {"_new": object.__new__, "_cls": Order}
    lines = []
    for f in dataclasses.fields(Order):
        if f.name in given:
            value = f.name
        elif f.default_factory is list:
            value = "[]"
        elif f.default_factory is set:
            value = "set()"
        elif f.default_factory is dict:
            value = "{}"
        elif f.default_factory is not dataclasses.MISSING:  # any other factory: called per order
            value = f"_f_{f.name}()"
            namespace[f"_f_{f.name}"] = f.default_factory
        elif f.default is not dataclasses.MISSING:
            value = f"_d_{f.name}"
            namespace[value] = f.default
        else:  # a field without a default this builder does not take: refuse to guess
            raise InternalError(f"Order field {f.name} has no default")
        lines.append(f"    o.{f.name} = {value}\n")
    source = f"def build({', '.join(given)}):\n    o = _new(_cls)\n" + "".join(lines) + "    return o\n"
    exec(source, namespace)  # noqa: S102 - generated from the dataclass's own field names
    return namespace["build"]


_new_order = _order_builder()


# -- the OMS's id tables -------------------------------------------------------------------
# Why pages and shards, not one dict per key (bench/PROFILE.md 1i "The live tail", 1k): a
# CPython dict cannot be presized and rebuilds its whole table when it grows (at 2/3 full:
# 21,845 entries, 43,690, 87,381, ...); one rebuild of a 21,845-entry table costs 0.6-0.8
# ms, and the four tables of every order (by client id, by number, open numbers, recent
# ids) grew together on one create: a 4 ms stall of the tick -> request path, 8 ms at
# 43,690 orders, 16 ms at 87,381. Here nothing grows as one table with the session: the
# orders sit in fixed pages of 1,024 slots by number (a new page is one allocation), the
# session's own ids (`<prefix>-<n>`) are not stored at all (the id names its number), the
# other ids (a strategy's own, contingent legs) are spread over 256 dicts by hash (one
# grows at a time, each a 256th of the table), and the open numbers sit in one small dict
# per 256 numbers. Every order stays reachable by number and by client id, open or ended (late
# venue reports, the run directory's orders file, reconciliation, the tests read them).
_PAGE_BITS = 10
_PAGE = 1 << _PAGE_BITS  # slots per page: a page is one list of 1,024 pointers (8 KiB)
_SLOT = _PAGE - 1
_OPEN_BITS = 8  # the open numbers: one dict per 256 numbers (its last rebuild: 170 entries)
_SHARDS = 256  # dicts holding the ids that are not the session's `<prefix>-<n>`
_SHARD = _SHARDS - 1


def _as_number(value: object) -> int | None:
    """An order number asked for (an int, a numpy integer) as an int; None for anything else."""
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        return None


class OrdersByNumber(Mapping[int, Order]):
    """Every order of the session by its number (1, 2, ... in creation order): `oms.by_no`.
    A read-only mapping (get, [], in, len, iteration in number order, `values()` a list in
    number order); only `OrderManager.create` adds to it."""

    __slots__ = ("_count", "_pages")

    def __init__(self) -> None:
        self._pages: list[list[Order | None]] = []  # page n >> _PAGE_BITS, slot n & _SLOT
        self._count = 0  # orders 1..count exist

    def _append(self, order: Order) -> None:
        n = order.order_no
        if n != self._count + 1:
            raise InternalError(f"order number {n} created after {self._count}: numbers go up by one")
        pages = self._pages
        if n >> _PAGE_BITS == len(pages):
            pages.append([None] * _PAGE)
        pages[n >> _PAGE_BITS][n & _SLOT] = order
        self._count = n

    def get(self, order_no: int, default: Order | None = None) -> Order | None:  # type: ignore[override]
        if 0 < order_no <= self._count:
            return self._pages[order_no >> _PAGE_BITS][order_no & _SLOT]
        return default

    def __getitem__(self, order_no: int) -> Order:
        if 0 < order_no <= self._count:
            return self._pages[order_no >> _PAGE_BITS][order_no & _SLOT]  # type: ignore[return-value]
        raise KeyError(order_no)

    def __contains__(self, order_no: object) -> bool:
        n = _as_number(order_no)
        return n is not None and 0 < n <= self._count

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[int]:
        return iter(range(1, self._count + 1))

    def __reversed__(self) -> Iterator[int]:
        return iter(range(self._count, 0, -1))

    def values(self) -> list[Order]:  # type: ignore[override]
        """Every order, in number order (a new list)."""
        out: list = [o for page in self._pages for o in page]
        return out[1:self._count + 1]


class OrdersByClient(Mapping[str, Order]):
    """Every order of the session by its client id: `oms.by_client`. The session's own ids
    `<prefix>-<n>` resolve to order n by number (checked: order n must carry exactly that
    id); any other id (named by the strategy, a contingent leg, an adopted order) is kept
    in one of 256 dicts by its hash. A read-only mapping; iteration in number order."""

    __slots__ = ("_numbers", "_own", "_own_len", "_shards")

    def __init__(self, numbers: OrdersByNumber, prefix: str) -> None:
        self._numbers = numbers
        self._own = f"{prefix}-"
        self._own_len = len(self._own)
        self._shards: list[dict[str, Order]] = [{} for _ in range(_SHARDS)]

    def _add_named(self, order: Order) -> None:
        self._shards[hash(order.client_id) & _SHARD][order.client_id] = order

    def get(self, client_id: str, default: Order | None = None) -> Order | None:  # type: ignore[override]
        if isinstance(client_id, str) and client_id.startswith(self._own):
            tail = client_id[self._own_len:]
            if tail.isdecimal() and len(tail) < 19:
                n = int(tail)
                numbers = self._numbers
                if 0 < n <= numbers._count:
                    order = numbers._pages[n >> _PAGE_BITS][n & _SLOT]
                    if order.client_id == client_id:  # type: ignore[union-attr]
                        return order
        return self._shards[hash(client_id) & _SHARD].get(client_id, default)

    def __getitem__(self, client_id: str) -> Order:
        order = self.get(client_id)
        if order is None:
            raise KeyError(client_id)
        return order

    def __contains__(self, client_id: object) -> bool:
        return self.get(client_id) is not None  # type: ignore[arg-type]

    def __len__(self) -> int:
        return self._numbers._count

    def __iter__(self) -> Iterator[str]:
        return (order.client_id for order in self._numbers.values())


class OpenNumbers:
    """The numbers of the open orders, ascending (creation order): `oms.open_nos`. One small
    dict per 256 numbers, dropped when its orders have all ended, so no table
    grows with the session (nor with the open orders beyond a page). Iteration, `in` and
    `len`; `OrderManager` adds (numbers only go up) and discards."""

    __slots__ = ("_count", "_last", "_last_page", "_pages")

    def __init__(self) -> None:
        self._pages: dict[int, dict[int, None]] = {}  # page number -> {order number: None}
        self._count = 0
        self._last_page = -1
        self._last: dict[int, None] = {}

    def _add(self, order_no: int) -> None:
        page_no = order_no >> _OPEN_BITS
        if page_no != self._last_page:  # numbers go up: a new page
            self._last = self._pages[page_no] = {}
            self._last_page = page_no
        self._last[order_no] = None
        self._count += 1

    def _discard(self, order_no: int) -> None:
        page_no = order_no >> _OPEN_BITS
        page = self._pages.get(page_no)
        if page is not None and order_no in page:
            del page[order_no]
            self._count -= 1
            if not page and page_no != self._last_page:
                del self._pages[page_no]

    def __contains__(self, order_no: object) -> bool:
        n = _as_number(order_no)
        page = None if n is None else self._pages.get(n >> _OPEN_BITS)
        return page is not None and n in page

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[int]:
        for page in self._pages.values():
            yield from page


class RecentIds:
    """Bounded LRU of ids taken that are not orders' (contingent orders, groups and legs
    not yet released), so a resubmitted id is refused, not sent twice. The orders' own
    ids are in `OrderManager.by_client` (every order of the session)."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, client_id: str) -> bool:
        return client_id in self._ids

    def add(self, client_id: str) -> None:
        ids = self._ids
        if client_id in ids:
            ids.move_to_end(client_id)
            return
        ids[client_id] = None
        if len(ids) > self._capacity:
            ids.popitem(last=False)


CLIENT_ID_MAX = 36  # Binance spot newClientOrderId: ^[.A-Z:/a-z0-9_-]{1,36}$ (the longest we need)
_CLIENT_ID_CHARS = frozenset(".:/_-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
#: The id space a session can reach, for the length checks (issue 11): order numbers and
#: contingent numbers below 10**9 (a billion orders: 5,000 days of Binance's 200,000 orders
#: a day per account), a contingent leg's released orders (an iceberg's slices) below 10**6.
#: The longest id the engine then makes from the session's prefix is a released order of an
#: OTO's parent leg, `<prefix>-c<k>.parent.<j>` (engine/contingent/manager.py): 25
#: characters after the prefix, so a prefix has at most 11 (a live session's `tp<stamp>`
#: has 10 until 2059, when epoch ms reach 9 digits in base 36).
NUMBER_DIGITS = 9  # order numbers and contingent numbers
RELEASE_DIGITS = 6  # a contingent leg's released orders
ID_SPACE_TAIL = len("-c") + NUMBER_DIGITS + len(".parent") + len(".") + RELEASE_DIGITS
PREFIX_MAX = CLIENT_ID_MAX - ID_SPACE_TAIL


def check_id_prefix(prefix: str, key: str = "id_prefix") -> str:
    """`prefix` when every id the session can make from it (ID_SPACE_TAIL) fits Binance's 36
    characters; ConfigError naming `key` otherwise (one line). Called where a session's
    prefix is made or given, before anything is sent or written (OrderManager, the live
    driver before its run directory)."""
    if not isinstance(prefix, str) or not 1 <= len(prefix) <= PREFIX_MAX or not set(prefix) <= _CLIENT_ID_CHARS:
        raise ConfigError(f"{key} = {prefix!r}: expected 1 to {PREFIX_MAX} characters of [.:/_-a-zA-Z0-9] "
                          f"(client ids reach '<prefix>-c<9 digits>.parent.<6 digits>', {ID_SPACE_TAIL} more, "
                          f"and Binance takes at most {CLIENT_ID_MAX})")
    return prefix


def fit_client_id(client_id: str, named: str | None = None) -> str:
    """`client_id` when it has at most CLIENT_ID_MAX characters; never truncated. Otherwise
    OrderError when it was made from an id the strategy named (`named`: that id), else
    InternalError: the session's own ids were checked to fit at start (`check_id_prefix`),
    so one that does not is ours to fix."""
    if len(client_id) <= CLIENT_ID_MAX:
        return client_id
    if named is not None:
        raise OrderError(f"client id {client_id!r}, made from {named!r}: {len(client_id)} characters, "
                         f"more than the {CLIENT_ID_MAX} Binance takes (name it shorter)")
    raise InternalError(f"client id {client_id!r}: {len(client_id)} characters, more than {CLIENT_ID_MAX}: "
                        f"beyond the id space its prefix was checked for (engine.oms.ID_SPACE_TAIL)")


_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def base36(n: int) -> str:
    """n >= 0 in lowercase base 36 (short ids: session 1,000,000 is 'lfls')."""
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = _B36[r] + out
        if n == 0:
            return out


def next_session_stamp(state_dir: Path, accounts: Iterable[str], now_ms: int) -> int:
    """The stamp of a new live session on `accounts` ("venue:account" names): its start in
    epoch ms, raised above every stamp an earlier session on any of those accounts took
    (`max(now_ms, last + 1)`), kept durably in `state_dir/sessions.json` ({account: last
    stamp}) under a writer lock. So two sessions started on one account in the same
    millisecond, or a restart after the wall clock stepped back, never share a stamp, and
    stamps stay time-like across machines (a second machine's session differs by its own
    start time).

    Written atomically (temporary file, fsync, rename, fsync of the directory): a crash
    leaves the old stamps or the new ones, never a torn file. Raises StorageError when the
    file is unreadable or another process holds the lock too long.
    """
    from engine.durable import WriterLock, fsync_dir, write_file_durably

    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "sessions.json"
    names = sorted(set(accounts))
    with WriterLock(path, f"session stamps {path}").held():
        try:
            stamps = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        except (OSError, ValueError) as exc:
            raise StorageError(f"{path}: unreadable session stamps ({exc}); it holds the last session "
                               "stamp per account: restore it, or remove it only if no open orders "
                               "of earlier sessions remain") from None
        stamp = max([int(now_ms)] + [int(stamps.get(n, -1)) + 1 for n in names])
        for n in names:
            stamps[n] = stamp
        tmp = path.with_name(path.name + ".tmp")
        write_file_durably(tmp, json.dumps(stamps, sort_keys=True, indent=1).encode())
        os.replace(tmp, path)
        fsync_dir(state_dir)
    return stamp


def session_id_prefix(state_dir: Path, accounts: Iterable[str], now_ms: int, base: str = "tp") -> str:
    """The client-id prefix of a new live session on `accounts`: `<base><stamp in base 36>`
    (next_session_stamp), so its orders are `<prefix>-<n>` (`tpmx3eck6e-42`): deterministic
    within the session (the journal keeps the prefix for `tickparity replay`), unique across
    sessions and restarts on the account, and recognisably ours (every id starts with
    `<base>`, the prefix reconciliation adopts by). Backtests keep the bare `tp` prefix
    (`tp-42`): deterministic from the config, with no account to collide on."""
    return f"{base}{base36(next_session_stamp(state_dir, accounts, now_ms))}"


class OrderManager:
    """Owns every order of a run, keyed by client id and by the venue-facing order number."""

    def __init__(self, id_prefix: str = "tp", recent_capacity: int = 100_000) -> None:
        self._prefix = check_id_prefix(id_prefix)
        # the largest number `<prefix>-<n>` can carry within CLIENT_ID_MAX (create's guard)
        self._last_no = 10 ** (CLIENT_ID_MAX - len(id_prefix) - 1) - 1
        self._next_no = 1
        self.recent = RecentIds(recent_capacity)
        # every order, open or ended (see "the OMS's id tables" above)
        self.by_no = OrdersByNumber()
        self.by_client = OrdersByClient(self.by_no, id_prefix)
        self.open_nos = OpenNumbers()  # ascending: deterministic iteration
        self.parents: dict[str, ParentOrder] = {}
        # (instrument id, trade id) of every fill booked: a fill reported twice (REST reply,
        # user stream, my-trades query) is booked once
        self.trades: set[tuple[str, str]] = set()
        # client ids of orders whose fills the ledger's balances already hold: a restored
        # contingent leg's venue order that ended while no session ran (a warm restart seeds
        # the balances from the venue's); their fills move positions and PnL, not balances
        self.prebooked: set[str] = set()

    @property
    def prefix(self) -> str:
        """The session's client-id prefix (`tp` in backtests, `tp<stamp>` live): every id
        the engine makes (plain orders, contingent legs and what they release) starts with it."""
        return self._prefix

    def next_client_id(self) -> str:
        return f"{self._prefix}-{self._next_no}"

    def is_duplicate(self, client_id: str) -> bool:
        return client_id in self.recent or client_id in self.by_client or client_id in self.parents

    def create(self, instrument: Instrument, instrument_index: int, side: int, type: OrderType,  # noqa: A002
               tif: TimeInForce, price: int, qty: int, client_id: str | None = None, post_only: bool = False,
               reduce_only: bool = False, gtd_ts: int = 0, parent_id: str | None = None, created_ts: int = 0,
               trigger_ts: int = 0, arrival_bid: Decimal | None = None,
               arrival_ask: Decimal | None = None) -> Order:
        """Register a new PENDING order; the caller has checked the id is not a duplicate.
        (Named parameters, not **fields: a submit's hot path, bench/PROFILE.md 1c; the
        session's submit passes them by position, which matches no keyword names, 1i.)"""
        order_no = self._next_no
        named = bool(client_id)
        if not named:
            if order_no > self._last_no:  # never a longer id, never a truncated one
                fit_client_id(f"{self._prefix}-{order_no}")
            client_id = f"{self._prefix}-{order_no}"  # by_client finds it by its number
        self._next_no = order_no + 1
        order = _new_order(order_no, client_id, instrument, instrument_index, side, type, tif, price, qty,
                           post_only, reduce_only, gtd_ts, parent_id, created_ts, trigger_ts, arrival_bid,
                           arrival_ask)
        self.by_no._append(order)
        if named:
            self.by_client._add_named(order)
        self.open_nos._add(order_no)
        return order

    def set_status(self, order: Order, new: OrderStatus, ts: int, reason: str | None = None) -> None:
        """Move `order` to `new` (IllegalTransitionError unless legal: order_state_nb's table)."""
        order.transition(new)
        if reason is not None:
            order.reason = reason
        if _TERMINAL[new]:
            order.done_ts = ts
            self.open_nos._discard(order.order_no)

    def book_fill(self, order: Order, fill: BookedFill, leaves: int | None) -> bool:
        """The OMS's part of a booked fill (engine/venue_merge.py hands it the record):
        the order's filled lots, notional, fees (in quote), fill and ack times, then its status,
        PARTIALLY_FILLED or FILLED (all filled, or the venue's `leaves` 0), unless it has
        ended already (a fill after the cancel). True when this fill closed it. Every path
        that books a fill comes here (engine/venue_merge.py `_hand_fill`)."""
        now = fill.ts
        order.filled += fill.lots
        order.notional_filled += fill.price * fill.qty
        order.fees += fill.fee_quote
        order.first_fill_ts = order.first_fill_ts or now
        order.last_fill_ts = now
        if order.ack_ts is None:  # a fill answers the submit
            order.ack_ts = now
        order.ambiguous.discard("submit")
        new = fill_status(order.status, order.filled, order.qty, leaves)  # the rule the compiled loop runs
        if new == NO_CHANGE:  # the order had ended: the fill is booked, the status stays
            return False
        self.set_status(order, _STATUS[new], now)
        return new == FILLED

    def open_client_ids(self, instrument_id: str | None = None) -> list[str]:
        """The client ids of `open_orders(instrument_id)`, in one pass (`ctx.open_orders`:
        a quoting strategy asks on every timer)."""
        pages = self.by_no._pages
        opened = self.open_nos._pages.values()
        if instrument_id is None:
            return [pages[n >> _PAGE_BITS][n & _SLOT].client_id for page in opened for n in page]  # type: ignore[union-attr]
        return [order.client_id for page in opened for n in page
                if (order := pages[n >> _PAGE_BITS][n & _SLOT]).instrument.id == instrument_id]  # type: ignore[union-attr]

    def open_orders(self, instrument_id: str | None = None) -> list[Order]:
        pages = self.by_no._pages
        orders = [pages[n >> _PAGE_BITS][n & _SLOT] for page in self.open_nos._pages.values() for n in page]
        if instrument_id is None:
            return orders  # type: ignore[return-value]
        return [o for o in orders if o.instrument.id == instrument_id]  # type: ignore[union-attr]
