"""Exact decimal strings -> integer ticks/lots, vectorised (numba over Arrow string buffers).

Venue files carry prices and sizes as decimal text ("61737.63000000"). Converting through
float would silently round; `Decimal` per value is exact but slow. This parser reads the
digits of every string in an Arrow string array and returns, per value, the integer
number of steps (ticks or lots) and a status: OK, NEGATIVE, NAN (not a number: empty,
"NaN", garbage), OFF_GRID (not a whole number of steps) or OVERFLOW (more steps than
int64 holds). The numba pass handles up to 18 significant digits; the rare longer values
are settled exactly with `Decimal` (`_settle_long`), so OVERFLOW means out of range.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pyarrow as pa
from numba import njit

OK, NEGATIVE, NAN, OFF_GRID, OVERFLOW = 0, 1, 2, 3, 4
STATUS_NAMES = {
    NEGATIVE: "negative",
    NAN: "not a number",
    OFF_GRID: "off grid",
    OVERFLOW: "beyond the int64 range of the step",
}

_POW10 = np.array([10**i for i in range(19)], dtype=np.int64)


def step_parts(step: Decimal) -> tuple[int, int]:
    """0.01 -> (1, 2): step = mantissa * 10**-exponent with an integer mantissa."""
    sign, digits, exp = step.normalize().as_tuple()
    mantissa = int("".join(map(str, digits)))
    if exp >= 0:
        return mantissa * 10**exp, 0
    return mantissa, -exp


@njit(cache=True)
def _parse_nb(data, offsets, valid, step_m, step_e, out, status, pow10):
    n = offsets.shape[0] - 1
    for i in range(n):
        out[i] = 0
        if not valid[i]:
            status[i] = NAN
            continue
        a = offsets[i]
        b = offsets[i + 1]
        # trim spaces and quotes
        while a < b and (data[a] == 32 or data[a] == 34):
            a += 1
        while b > a and (data[b - 1] == 32 or data[b - 1] == 34 or data[b - 1] == 13):
            b -= 1
        if a == b:
            status[i] = NAN
            continue
        neg = False
        if data[a] == 45:  # '-'
            neg = True
            a += 1
        elif data[a] == 43:  # '+'
            a += 1
        mant = np.int64(0)
        ndig = 0
        frac = 0
        seen_dot = False
        bad = False
        over = False
        exp10 = 0
        ndigits_seen = 0
        j = a
        while j < b:
            c = data[j]
            if c >= 48 and c <= 57:
                ndigits_seen += 1
                if seen_dot:
                    frac += 1
                if mant == 0 and c == 48:
                    pass  # leading zero: not significant
                elif ndig >= 18:
                    if c == 48 and seen_dot:
                        frac -= 1  # trailing zero beyond 18 digits: drop it, value unchanged
                    else:
                        over = True
                else:
                    mant = mant * 10 + (c - 48)
                    ndig += 1
            elif c == 46 and not seen_dot:
                seen_dot = True
            elif c == 101 or c == 69:  # exponent
                k = j + 1
                eneg = False
                if k < b and (data[k] == 45 or data[k] == 43):
                    eneg = data[k] == 45
                    k += 1
                if k == b:
                    bad = True
                while k < b:
                    d = data[k]
                    if d < 48 or d > 57:
                        bad = True
                        break
                    exp10 = exp10 * 10 + (d - 48)
                    k += 1
                if eneg:
                    exp10 = -exp10
                break
            else:
                bad = True
                break
            j += 1
        if bad or ndigits_seen == 0:
            status[i] = NAN
            continue
        if neg and mant != 0:
            status[i] = NEGATIVE
            continue
        if over:
            status[i] = OVERFLOW
            continue
        # value = mant * 10**(exp10 - frac); steps = value / (step_m * 10**-step_e)
        shift = step_e + exp10 - frac
        if shift >= 0:
            if shift > 18:
                if mant == 0:
                    status[i] = OK
                    continue
                status[i] = OVERFLOW
                continue
            p = pow10[shift]
            if mant != 0 and mant > 9223372036854775807 // p:
                status[i] = OVERFLOW
                continue
            num = mant * p
        else:
            if -shift > 18:
                if mant == 0:
                    num = np.int64(0)
                else:
                    status[i] = OFF_GRID
                    continue
            else:
                p = pow10[-shift]
                if mant % p != 0:
                    status[i] = OFF_GRID
                    continue
                num = mant // p
        if num % step_m != 0:
            status[i] = OFF_GRID
            continue
        v = num // step_m
        status[i] = OK
        out[i] = v


def parse_units(
    values: pa.Array | pa.ChunkedArray | list[str], step: Decimal
) -> tuple[np.ndarray, np.ndarray]:
    """Decimal strings -> (int64 units of `step`, uint8 status) arrays."""
    if isinstance(values, list):
        values = pa.array(values, pa.string())
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
        values = values.cast(pa.string())
    if pa.types.is_large_string(values.type):
        values = values.cast(pa.string())
    n = len(values)
    out = np.zeros(n, dtype=np.int64)
    status = np.zeros(n, dtype=np.uint8)
    if n == 0:
        return out, status
    bufs = values.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int32, count=n + 1 + values.offset)[values.offset :]
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(1, np.uint8)
    valid = values.is_valid().to_numpy(zero_copy_only=False)
    step_m, step_e = step_parts(step)
    _parse_nb(data, offsets, valid, np.int64(step_m), step_e, out, status, _POW10)
    long = np.flatnonzero(status == OVERFLOW)
    if len(long):
        _settle_long(values, long, step, out, status)
    return out, status


def _settle_long(values: pa.Array, idx: np.ndarray, step: Decimal, out: np.ndarray,
                 status: np.ndarray) -> None:
    """Exact status of the values the numba pass could not hold (> 18 digits)."""
    from decimal import InvalidOperation

    limit = 2**63 - 1
    for i in idx.tolist():
        try:
            value = Decimal(str(values[i].as_py()).strip().strip('"'))
        except InvalidOperation:
            status[i] = NAN
            continue
        if not value.is_finite():
            status[i] = NAN
            continue
        units = value / step
        if units != units.to_integral_value():
            status[i] = OFF_GRID
        elif units > limit:
            status[i] = OVERFLOW
        elif value < 0:
            status[i] = NEGATIVE
        else:
            out[i] = int(units)
            status[i] = OK
