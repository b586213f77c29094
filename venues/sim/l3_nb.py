"""L3 (order-by-order) feeds: venue orders by id, aggregated into the L2 books (numba).

Each processor (0 exchange, 1 local) has its own open-addressing hash table keyed by
(instrument, order_id), with linear probing and backward-shift deletion (no tombstones):
  keys[p, c]  uint64 order id
  tab[p, c]   int64 columns T_USED, T_INST, T_SIDE, T_PRICE, T_QTY, T_SEQ
  meta[p]     [count, next seq]
Row semantics: L3_ADD adds an order at the back of (side, price); L3_MODIFY sets its price
and remaining qty (a price change or an increase loses priority, a decrease keeps it);
L3_CANCEL removes it; L3_FILL executes `qty` of it (removed at 0).
"""

from __future__ import annotations

import numpy as np
from numba import njit

T_USED = np.int64(0)
T_INST = np.int64(1)
T_SIDE = np.int64(2)
T_PRICE = np.int64(3)
T_QTY = np.int64(4)
T_SEQ = np.int64(5)
T_NF = np.int64(6)

M_COUNT = np.int64(0)
M_SEQ = np.int64(1)

_MIX = np.uint64(0x9E3779B97F4A7C15)


@njit(cache=True, _nrt=False)
def l3_slot_nb(keys, tab, p, inst, oid):
    """Slot of (inst, oid) in table p, or -(free slot) - 1 where it would go."""
    cap = keys.shape[1]
    mask = cap - 1
    h = int(((oid * _MIX) >> np.uint64(17)) ^ np.uint64(inst)) & mask
    while True:
        if tab[p, h, T_USED] == 0:
            return -h - 1
        if keys[p, h] == oid and tab[p, h, T_INST] == inst:
            return h
        h = (h + 1) & mask


@njit(cache=True, _nrt=False)
def l3_delete_nb(keys, tab, meta, p, h):
    """Remove slot h (backward-shift deletion keeps probe chains intact)."""
    cap = keys.shape[1]
    mask = cap - 1
    tab[p, h, T_USED] = 0
    meta[p, M_COUNT] -= 1
    j = h
    while True:
        j = (j + 1) & mask
        if tab[p, j, T_USED] == 0:
            return
        home = int(((keys[p, j] * _MIX) >> np.uint64(17)) ^ np.uint64(tab[p, j, T_INST])) & mask
        # move j back into the hole h if its home is not in the cyclic range (h, j]
        if (j > h and (home <= h or home > j)) or (j < h and (home <= h and home > j)):
            keys[p, h] = keys[p, j]
            for c in range(T_NF):
                tab[p, h, c] = tab[p, j, c]
            tab[p, j, T_USED] = 0
            h = j


@njit(cache=True, _nrt=False)
def l3_rehash_nb(keys, tab, meta, new_keys, new_tab, new_meta):
    """Copy both tables into bigger ones."""
    for p in range(keys.shape[0]):
        new_meta[p, M_SEQ] = meta[p, M_SEQ]
        for c in range(keys.shape[1]):
            if tab[p, c, T_USED] != 0:
                h = l3_slot_nb(new_keys, new_tab, p, tab[p, c, T_INST], keys[p, c])
                h = -h - 1
                new_keys[p, h] = keys[p, c]
                for f in range(T_NF):
                    new_tab[p, h, f] = tab[p, c, f]
                new_meta[p, M_COUNT] += 1


@njit(cache=True, _nrt=False)
def l3_row_nb(keys, tab, meta, p, inst, kind, side, price, qty, oid, out):
    """Apply one L3 row to table p. Describes the venue order before and after in `out`:
    out[0..4] = had (0/1), side, price, qty, seq before; out[5..9] = has, side, price,
    qty, seq after; out[10] = executed qty (L3_FILL). Returns False if the row names an
    unknown order (it is then ignored, except an add)."""
    for k in range(11):
        out[k] = 0
    h = l3_slot_nb(keys, tab, p, inst, oid)
    if h >= 0:
        out[0] = 1
        out[1] = tab[p, h, T_SIDE]
        out[2] = tab[p, h, T_PRICE]
        out[3] = tab[p, h, T_QTY]
        out[4] = tab[p, h, T_SEQ]
    if kind == 5:  # L3_ADD (an add of a known id replaces it)
        if h < 0:
            h = -h - 1
            meta[p, M_COUNT] += 1
        keys[p, h] = oid
        tab[p, h, T_USED] = 1
        tab[p, h, T_INST] = inst
        tab[p, h, T_SIDE] = side
        tab[p, h, T_PRICE] = price
        tab[p, h, T_QTY] = qty
        tab[p, h, T_SEQ] = meta[p, M_SEQ]
        meta[p, M_SEQ] += 1
        if qty <= 0:
            l3_delete_nb(keys, tab, meta, p, h)
            return True
    elif h < 0:
        return False
    elif kind == 6:  # L3_MODIFY
        if side == 0:
            side = tab[p, h, T_SIDE]
        if qty <= 0:
            l3_delete_nb(keys, tab, meta, p, h)
            return True
        lose = price != tab[p, h, T_PRICE] or side != tab[p, h, T_SIDE] or qty > tab[p, h, T_QTY]
        tab[p, h, T_SIDE] = side
        tab[p, h, T_PRICE] = price
        tab[p, h, T_QTY] = qty
        if lose:
            tab[p, h, T_SEQ] = meta[p, M_SEQ]
            meta[p, M_SEQ] += 1
    elif kind == 7:  # L3_CANCEL
        l3_delete_nb(keys, tab, meta, p, h)
        return True
    else:  # L3_FILL
        x = min(qty, tab[p, h, T_QTY])
        out[10] = x
        tab[p, h, T_QTY] -= x
        if tab[p, h, T_QTY] <= 0:
            l3_delete_nb(keys, tab, meta, p, h)
            return True
    out[5] = 1
    out[6] = tab[p, h, T_SIDE]
    out[7] = tab[p, h, T_PRICE]
    out[8] = tab[p, h, T_QTY]
    out[9] = tab[p, h, T_SEQ]
    return True
