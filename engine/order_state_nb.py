"""The one implementation of an order's state rules, as integers: legal status changes,
the status a booked fill leaves, the merge of a venue's status report, and the compiled
path's per-order rows.

Why one set of functions for two callers: the OMS (engine/oms.py, engine/venue_merge.py:
every mode, any venue's reports) and the compiled fast path's numba loop
(venues/sim/compiled_nb.py) must move an order through the same states for the same
reports. Each rule is written once in the subset of Python numba compiles;
`register_jitable` leaves it an ordinary Python function for the interpreter (plain ints,
nothing to dispatch) and compiles it inline into any `@njit` kernel that calls it (as
engine/risk_nb.py does for the pre-trade checks). tests/engine/test_order_state_nb.py
plays random report sequences (duplicates, late fills after a cancel, out-of-order acks)
through the OMS and through these functions, compiled and as Python, and compares.

Codes: an order status is `engine.types.OrderStatus`'s int value (PENDING 0 ... EXPIRED 7);
`LEGAL_MASK[current]` has bit `new` set when current -> new is allowed (the table
`engine.oms.LEGAL_TRANSITIONS` is built from it). A simulated venue's report is an
`engine.types.orders.OrderEventKind` value.

Rows (the compiled path): `rows[order_no - base, OR_*]`, int64, one row per order the loop
numbered: status, filled lots, ordered lots, limit price in ticks, side (+1 / -1),
instrument index, time in force. `position` holds lots per instrument index, moved by the
same booked fills (`book_fill_row`), as the ledger's position moves with each fill it books.
"""

from __future__ import annotations

from numba.extending import register_jitable

from engine.types.orders import OrderEventKind, OrderStatus

PENDING = int(OrderStatus.PENDING)
SUBMITTED = int(OrderStatus.SUBMITTED)
ACKNOWLEDGED = int(OrderStatus.ACKNOWLEDGED)
PARTIALLY_FILLED = int(OrderStatus.PARTIALLY_FILLED)
FILLED = int(OrderStatus.FILLED)
CANCELLED = int(OrderStatus.CANCELLED)
REJECTED = int(OrderStatus.REJECTED)
EXPIRED = int(OrderStatus.EXPIRED)
NO_CHANGE = -1  # fill_status / status_of_report: the status stays as it is

_OPEN_ENDS = (1 << PARTIALLY_FILLED) | (1 << FILLED) | (1 << CANCELLED) | (1 << EXPIRED)
# LEGAL_MASK[current]: bit `new` set when current -> new is a legal change (indexed by status)
LEGAL_MASK = (
    (1 << SUBMITTED) | (1 << REJECTED),  # PENDING: sent, or refused before it left
    (1 << ACKNOWLEDGED) | _OPEN_ENDS | (1 << REJECTED),  # SUBMITTED: any venue answer
    _OPEN_ENDS,  # ACKNOWLEDGED
    _OPEN_ENDS,  # PARTIALLY_FILLED (a further partial fill included)
    0, 0, 0, 0,  # FILLED, CANCELLED, REJECTED, EXPIRED: final
)
TERMINAL_MASK = (1 << FILLED) | (1 << CANCELLED) | (1 << REJECTED) | (1 << EXPIRED)
# the venue-reported ends that close an order by a status report (a FILLED report does not:
# FILLED comes from the fills booked, engine/venue_merge.py)
_REPORTED_ENDS = (1 << CANCELLED) | (1 << REJECTED) | (1 << EXPIRED)

# merge_status verdicts
MERGE_NONE = 0  # nothing changes
MERGE_END = 1  # the reported end (CANCELLED / REJECTED / EXPIRED) is applied
MERGE_CONFIRM = 2  # the order exists at the venue: SUBMITTED -> ACKNOWLEDGED
MERGE_STALE = 3  # older than what the order shows, or a contradicting end: audited, ignored

# rows[row, OR_*]
OR_STATUS = 0
OR_FILLED = 1  # lots booked from fills
OR_QTY = 2  # lots ordered
OR_PRICE = 3  # ticks
OR_SIDE = 4  # +1 buy, -1 sell
OR_INST = 5  # instrument index (run order)
OR_TIF = 6  # engine.types.TimeInForce value
OR_NF = 7

_EV_ACK = int(OrderEventKind.ACK)
_EV_FILL = int(OrderEventKind.FILL)
_EV_CANCELLED = int(OrderEventKind.CANCELLED)
_EV_REJECTED = int(OrderEventKind.REJECTED)
_EV_EXPIRED = int(OrderEventKind.EXPIRED)


@register_jitable
def is_legal(current, new):
    """True when status `current` may change to `new` (LEGAL_MASK)."""
    return (LEGAL_MASK[current] >> new) & 1 != 0


@register_jitable
def is_terminal(status):
    """True for FILLED, CANCELLED, REJECTED, EXPIRED."""
    return (TERMINAL_MASK >> status) & 1 != 0


@register_jitable
def leaves_of(status, qty, filled):
    """Lots still working: 0 once the order ended, else ordered minus filled."""
    return 0 if (TERMINAL_MASK >> status) & 1 != 0 else qty - filled


@register_jitable
def fill_status(status, filled, qty, venue_leaves):
    """The status after a booked fill: `filled` lots booked in all (this fill included),
    `venue_leaves` the venue's remaining lots (-1, or None from Python, when it gave
    none). FILLED when all is filled or the venue says nothing remains, else
    PARTIALLY_FILLED; NO_CHANGE when the order had ended (a fill after the cancel is
    booked, the status stays)."""
    if (TERMINAL_MASK >> status) & 1 != 0:
        return NO_CHANGE
    if filled >= qty or venue_leaves == 0:
        return FILLED
    return PARTIALLY_FILLED


@register_jitable
def merge_status(current, reported, query):
    """engine/venue_merge.py's verdict on a venue's status report (MERGE_*).

    A reported end (CANCELLED / REJECTED / EXPIRED) is applied when the order is open and
    the change legal; otherwise, unless it repeats the order's own status, it is stale
    (a second, different end, or a reject after the ack). Any other report says the order
    exists at the venue: it confirms a SUBMITTED order; a report older than the order's
    status (not a lookup's answer, `query` False) is stale. Statuses never regress."""
    if (_REPORTED_ENDS >> reported) & 1 != 0:
        if (TERMINAL_MASK >> current) & 1 == 0 and (LEGAL_MASK[current] >> reported) & 1 != 0:
            return MERGE_END
        if reported != current:
            return MERGE_STALE
        return MERGE_NONE
    if current == SUBMITTED:
        return MERGE_CONFIRM
    if reported < current and not query:
        return MERGE_STALE
    return MERGE_NONE


@register_jitable
def status_of_event(kind):
    """The status a simulated venue's report kind (OrderEventKind) states, or NO_CHANGE
    for one that states none (FILL: booked as a fill; AMENDED, CANCEL_REJECTED, STATE)."""
    if kind == _EV_ACK:
        return ACKNOWLEDGED
    if kind == _EV_CANCELLED:
        return CANCELLED
    if kind == _EV_REJECTED:
        return REJECTED
    if kind == _EV_EXPIRED:
        return EXPIRED
    return NO_CHANGE


@register_jitable
def open_row(rows, row, status, inst, side, price, qty, tif):
    """A new order's row: PENDING moved to `status` (SUBMITTED when sent, REJECTED when
    refused before it left), nothing filled."""
    rows[row, OR_STATUS] = status
    rows[row, OR_FILLED] = 0
    rows[row, OR_QTY] = qty
    rows[row, OR_PRICE] = price
    rows[row, OR_SIDE] = side
    rows[row, OR_INST] = inst
    rows[row, OR_TIF] = tif


@register_jitable
def book_fill_row(rows, position, row, lots, venue_leaves):
    """A booked fill of `lots` on the order in `row`: its filled lots, the instrument's
    position (lots, signed by side: what the ledger's position moves by), then its status
    (fill_status). Returns True when this fill closed the order (as OrderManager.book_fill)."""
    filled = rows[row, OR_FILLED] + lots
    rows[row, OR_FILLED] = filled
    position[rows[row, OR_INST]] += rows[row, OR_SIDE] * lots
    new = fill_status(rows[row, OR_STATUS], filled, rows[row, OR_QTY], venue_leaves)
    if new == NO_CHANGE:
        return False
    rows[row, OR_STATUS] = new
    return new == FILLED


@register_jitable
def report_row(rows, position, row, kind, lots, venue_leaves):
    """One simulated venue report (OrderEventKind `kind`; a FILL's `lots` and the venue's
    `venue_leaves`) applied to the order in `row` by the merge's rules (fills by
    book_fill_row, statuses by merge_status). Returns the row's status after it."""
    if kind == _EV_FILL:
        book_fill_row(rows, position, row, lots, venue_leaves)
        return rows[row, OR_STATUS]
    reported = status_of_event(kind)
    if reported == NO_CHANGE:
        return rows[row, OR_STATUS]
    verdict = merge_status(rows[row, OR_STATUS], reported, False)
    if verdict == MERGE_END:
        rows[row, OR_STATUS] = reported
    elif verdict == MERGE_CONFIRM:
        rows[row, OR_STATUS] = ACKNOWLEDGED
    return rows[row, OR_STATUS]
