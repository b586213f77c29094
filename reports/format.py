"""Human formatting of figures for the HTML pages (numbers stay raw in summary.json).

Display rules (docs/report.md, "How figures are shown"), kept here so that every tile,
table and the compare page follow them:

* A value that rounds to zero at the precision shown is printed ``0`` and gets no
  colour: float dust such as 1.4e-12 is not a red ``0.0000``, and there is no ``-0.00``.
* Parts shown beside their total add up at the precision shown: ``additive`` picks the
  smallest number of decimals at which they do (money is exact, so one always exists).
* Shares of a whole that are shown together add up to 100 % (largest-remainder rounding).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

DASH = "–"


def as_decimal(value: Any) -> Decimal | None:
    """Exact decimal of a float, int, Decimal or decimal string; None if not a finite number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        d = Decimal(value) if isinstance(value, (Decimal, int)) else Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return None
    return d if d.is_finite() else None


def bps_digits(value: Any) -> int:
    """Decimals shown for a bps figure: 2 from 1 bps, 3 from 0.1, else 4 (BTC spreads are ~0.01 bps)."""
    d = as_decimal(value)
    if d is None:
        return 2
    ax = abs(d)  # compared as shown, so 0.99999999 (float error) is "1.00", not "1.000"
    return 2 if _shown(ax, 2) >= 1 or ax == 0 else 3 if _shown(ax, 3) >= Decimal("0.1") else 4


def rounds_to_zero(value: Any, digits: int) -> bool:
    """True when ``value`` prints as zero with ``digits`` decimals (None is not zero)."""
    d = as_decimal(value)
    return d is not None and d.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_EVEN) == 0


def fixed(value: Any, digits: int, sign: bool = False) -> str:
    """``value`` with ``digits`` decimals and thousands separators; ``0`` when it rounds to zero."""
    d = as_decimal(value)
    if d is None:
        return DASH if value is None or isinstance(value, (float, Decimal)) else str(value)
    if rounds_to_zero(d, digits):
        return "0"
    # quantize first with an explicit rounding: formatting a Decimal rounds with the thread's
    # decimal context, which other libraries change (ccxt sets ROUND_HALF_UP globally)
    d = d.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_EVEN)
    return f"{d:{'+' if sign else ''},.{digits}f}"


def num(value: Any, digits: int = 2) -> str:
    return fixed(value, digits)


def signed(value: Any, digits: int = 2) -> str:
    return fixed(value, digits, sign=True)


def bps(value: Any, digits: int | None = None) -> str:
    """Basis points with enough decimals for small figures (``bps_digits``)."""
    return fixed(value, bps_digits(value) if digits is None else digits)


def integer(value: Any) -> str:
    return DASH if value is None else f"{int(value):,}"


def pct(value: Any, digits: int = 1) -> str:
    """A fraction (0.25) as a percentage (25.0 %)."""
    d = as_decimal(value)
    if d is None:
        return DASH
    x = d * 100
    if x != 0 and abs(x) < Decimal("0.1"):
        digits = max(digits, 3)  # 1 fill in 12,000 orders is 0.008 %, not 0.0 %
    return f"{fixed(x, digits)} %"


def money(value: Any, digits: int = 2) -> str:
    """Exact decimal strings are shown rounded for reading; the JSON keeps them exact."""
    return fixed(value, digits)


def duration(ns: Any) -> str:
    """Nanoseconds -> '850 ns', '12.3 µs', '4.56 ms', '1.20 s', '3.5 min', '2.1 h'."""
    if ns is None:
        return DASH
    x = float(ns)
    ax = abs(x)
    if ax < 1e3:
        return f"{x:.0f} ns"
    if ax < 1e6:
        return f"{x / 1e3:.1f} µs"
    if ax < 1e9:
        return f"{x / 1e6:.2f} ms"
    if ax < 60e9:
        return f"{x / 1e9:.2f} s"
    if ax < 3600e9:
        return f"{x / 60e9:.1f} min"
    return f"{x / 3600e9:.2f} h"


def timestamp(ns: Any) -> str:
    if ns is None:
        return DASH
    seconds, rest = divmod(int(ns), 10**9)
    stamp = dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
    return stamp.strftime("%Y-%m-%d %H:%M:%S") + f".{rest // 10**6:03d} UTC"


def tone(value: Any, cost: bool = True, digits: int | None = None) -> str:
    """CSS class: 'bad' for a positive cost (or a negative gain), 'good' for the opposite,
    none for a value shown as 0 at ``digits`` decimals (None: the bps rule); ``tone_text``
    of the value as shown."""
    return tone_text(fixed(value, bps_digits(value) if digits is None else digits), cost)


def tone_text(text: str, cost: bool = True) -> str:
    """Tone of a figure from its shown text, so the colour always matches what is printed:
    none for "0" or a dash, else by its sign (see ``tone``)."""
    body = text.strip()
    if not body or body[0] not in "+-0123456789" or body == "0" or body.startswith("0 "):
        return ""
    negative = body.startswith("-")
    return ("good" if negative else "bad") if cost else ("bad" if negative else "good")


def _shown(d: Decimal, digits: int) -> Decimal:
    return d.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_EVEN)


def shown_value(text: str) -> Decimal | None:
    """The number a text made by ``fixed`` shows (None for a dash)."""
    return as_decimal(text.replace(",", "").removesuffix(" %"))


def additive_digits(groups: Sequence[tuple[Any, Sequence[Any]]], digits: int = 2,
                    max_digits: int | None = None) -> int | None:
    """Smallest number of decimals in [digits, max_digits] at which, in every
    (total, parts) group, the parts as shown sum to the total as shown; None if none.

    ``max_digits`` None: up to the finest decimal of the values themselves, so exact money
    whose parts add up always finds one. Groups with a None value take no part."""
    numbers = [(as_decimal(t), [as_decimal(p) for p in parts]) for t, parts in groups]
    numbers = [(t, ps) for t, ps in numbers if t is not None and all(p is not None for p in ps)]
    if not numbers:
        return digits
    if max_digits is None:
        max_digits = min(max(-min(0, int(v.as_tuple().exponent)) for t, ps in numbers for v in (t, *ps)), 28)
    for k in range(digits, max(max_digits, digits) + 1):
        if all(sum((_shown(p, k) for p in ps), Decimal(0)) == _shown(t, k) for t, ps in numbers):
            return k
    return None


def additive(total: Any, parts: Sequence[Any], digits: int = 2, extra: int | None = None) -> tuple[str, list[str]]:
    """Texts of ``total`` and ``parts`` (signed so that Σ parts = total) that add up as shown.

    Shows ``digits`` decimals, or up to ``extra`` more where that makes them add up (None:
    as many as the values have: exact money). Floats (bps, statistics) can miss by float
    error; then the total shown is the sum of the parts as shown at ``digits`` decimals
    (it differs from the total rounded alone by at most one unit of the last decimal; the
    exact figure is in summary.json). A None part or total is a dash and takes no part."""
    k = additive_digits([(total, parts)], digits, None if extra is None else digits + extra)
    if k is not None:
        return fixed(total, k), [fixed(p, k) for p in parts]
    values = [as_decimal(p) for p in parts]
    return fixed(sum((_shown(v, digits) for v in values if v is not None), Decimal(0)), digits), [fixed(p, digits) for p in parts]


def shares(values: Sequence[Any], digits: int = 1) -> list[str]:
    """Fractions of one whole (they sum to 1) as percentages that add up to 100 % as shown.

    Largest-remainder (Hamilton) rounding: each share is rounded down to ``digits``
    decimals and the units still missing go to the largest remainders, so no share moves
    by more than one unit of the last decimal. None stays a dash."""
    unit = Decimal(1).scaleb(-digits)
    scaled = [(as_decimal(v) * 100) if as_decimal(v) is not None else None for v in values]
    known = [(i, s) for i, s in enumerate(scaled) if s is not None]
    total = sum((s for _, s in known), Decimal(0))
    out = [DASH] * len(values)
    if not known:
        return out
    floors = {i: (s / unit).to_integral_value(rounding="ROUND_FLOOR") for i, s in known}
    target = (total / unit).to_integral_value(rounding=ROUND_HALF_EVEN)
    missing = int(target - sum(floors.values()))
    by_remainder = sorted(known, key=lambda item: (-(item[1] / unit - floors[item[0]]), item[0]))
    for i, _ in by_remainder[:max(missing, 0)]:
        floors[i] += 1
    for i, _ in known:
        out[i] = f"{fixed(floors[i] * unit, digits)} %"
    return out


FILTERS = {
    "num": num, "bps": bps, "signed": signed, "integer": integer, "pct": pct, "money": money,
    "duration": duration, "timestamp": timestamp, "tone": tone, "tone_text": tone_text,
}
