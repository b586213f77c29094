"""L2 price-level books as sorted numpy rows (numba).

Layout: every book side is one row `b` of three 2-D arrays `kx` (key), `qt` (feed qty)
and `cs` (qty our own taker fills consumed, exchange books only), with `cnt[b]` live
levels. Keys ascend and the best level is the LAST one: bid key = price, ask key =
-price. Updates at the top therefore shift almost nothing, a 1,000-level REST snapshot
is a binary search per row, and the best level is O(1).

Row index of instrument i: 4*i + 0 exchange bids, +1 exchange asks, +2 local bids,
+3 local asks (`book_row_nb`).
"""

from __future__ import annotations

from numba import njit

SHORT_BOOK = 32  # up to this many levels a side, searches count instead of branching


@njit(cache=True, inline="always")
def book_row_nb(inst, side, local):
    """Row of instrument `inst`, side +1 bid / -1 ask, local 0 exchange / 1 local."""
    return 4 * inst + 2 * local + (0 if side > 0 else 1)


@njit(cache=True, inline="always")
def side_key_nb(side, price):
    return price if side > 0 else -price


@njit(cache=True, _nrt=False, inline="always")
def find_nb(kx, b, n, key):
    """First index in ascending kx[b, 0:n] whose key is >= key.

    A short book (up to SHORT_BOOK levels) is searched by counting the keys below `key`:
    no data-dependent branch, so no mispredicted one. Otherwise most updates hit the top of
    the book, so the top 8 levels are scanned linearly first; deeper levels are found by
    binary search. (Indexing kx[b, j] directly, never a row view, keeps numba from
    reference-counting a slice per lookup.)
    """
    if n <= SHORT_BOOK:
        pos = 0
        for j in range(n):
            pos += kx[b, j] < key
        return pos
    j = n - 1
    lim = n - 8
    while j >= 0 and j >= lim:
        kj = kx[b, j]
        if kj <= key:
            return j + 1 if kj < key else j
        j -= 1
    if j < 0:
        return 0
    lo = 0
    hi = j + 1
    while lo < hi:
        mid = (lo + hi) >> 1
        if kx[b, mid] < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, _nrt=False)
def level_set_nb(kx, qt, cs, cnt, b, key, qty):
    """Set level `key` of row b to qty (0 removes it). Returns (prev_qty, changed).

    The consumed quantity of the level is reset: the feed has updated it.
    """
    n = cnt[b]
    pos = find_nb(kx, b, n, key)
    if pos < n and kx[b, pos] == key:
        prev = qt[b, pos]
        if qty > 0:
            qt[b, pos] = qty
            cs[b, pos] = 0
            return prev, prev != qty
        for j in range(pos, n - 1):
            kx[b, j] = kx[b, j + 1]
            qt[b, j] = qt[b, j + 1]
            cs[b, j] = cs[b, j + 1]
        cnt[b] = n - 1
        return prev, True
    if qty <= 0:
        return 0, False
    for j in range(n, pos, -1):
        kx[b, j] = kx[b, j - 1]
        qt[b, j] = qt[b, j - 1]
        cs[b, j] = cs[b, j - 1]
    kx[b, pos] = key
    qt[b, pos] = qty
    cs[b, pos] = 0
    cnt[b] = n + 1
    return 0, True


@njit(cache=True, _nrt=False)
def level_qty_nb(kx, qt, cs, cnt, b, key):
    """Visible quantity (feed qty minus our consumption) at `key`, 0 if absent."""
    n = cnt[b]
    pos = find_nb(kx, b, n, key)
    if pos < n and kx[b, pos] == key:
        return qt[b, pos] - cs[b, pos]
    return 0


@njit(cache=True, _nrt=False)
def level_feed_qty_nb(kx, qt, cnt, b, key):
    """Feed quantity at `key`, 0 if absent."""
    n = cnt[b]
    pos = find_nb(kx, b, n, key)
    if pos < n and kx[b, pos] == key:
        return qt[b, pos]
    return 0


@njit(cache=True, _nrt=False)
def best_visible_nb(kx, qt, cs, cnt, b):
    """Index of the best level with visible quantity > 0, or -1."""
    j = cnt[b] - 1
    while j >= 0:
        if qt[b, j] - cs[b, j] > 0:
            return j
        j -= 1
    return -1
