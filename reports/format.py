"""Human formatting of figures for the HTML pages (numbers stay raw in summary.json)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

DASH = "–"


def num(value: Any, digits: int = 2) -> str:
    if value is None:
        return DASH
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if x != x:
        return DASH
    return f"{x:,.{digits}f}"


def signed(value: Any, digits: int = 2) -> str:
    if value is None:
        return DASH
    x = float(value)
    return f"{x:+,.{digits}f}"


def bps(value: Any) -> str:
    """Basis points with enough decimals for small figures (BTC spreads are ~0.01 bps)."""
    if value is None:
        return DASH
    x = float(value)
    if x != x:
        return DASH
    ax = abs(x)
    digits = 2 if ax >= 1 or ax == 0 else 3 if ax >= 0.1 else 4
    return f"{x:,.{digits}f}"


def integer(value: Any) -> str:
    return DASH if value is None else f"{int(value):,}"


def pct(value: Any, digits: int = 1) -> str:
    """A fraction (0.25) as a percentage (25.0 %)."""
    if value is None:
        return DASH
    x = float(value) * 100
    if x != 0 and abs(x) < 0.1:
        digits = max(digits, 3)  # 1 fill in 12,000 orders is 0.008 %, not 0.0 %
    return f"{x:.{digits}f} %"


def money(value: Any, digits: int = 2) -> str:
    """Exact decimal strings are shown rounded for reading; the JSON keeps them exact."""
    if value is None:
        return DASH
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    return f"{d:,.{digits}f}"


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


def tone(value: Any, cost: bool = True) -> str:
    """CSS class: 'bad' for a positive cost (or a negative gain), 'good' for the opposite."""
    if value is None:
        return ""
    x = float(value)
    if x == 0:
        return ""
    return ("bad" if x > 0 else "good") if cost else ("good" if x > 0 else "bad")


FILTERS = {
    "num": num, "bps": bps, "signed": signed, "integer": integer, "pct": pct, "money": money,
    "duration": duration, "timestamp": timestamp, "tone": tone,
}
