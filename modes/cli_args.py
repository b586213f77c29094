"""Strict parsers for the command line's numeric flags (argparse `type=`).

Why not `type=float` / `type=int`: Python's float() and int() accept what no user means as
a number of seconds or a count: `1_0` (10), ` 10 `, `nan`, `inf`, `1e400`. A flag parsed by
them either ran with a value the user did not type (`--duration 1_0` ran 10 s) or was
refused only after the session had contacted its venue. Every numeric flag goes through
here instead, so argparse refuses a bad value at once, in one line naming the flag
(`tickparity paper: error: argument --duration: '1_0': expected ...`), before anything is
read, contacted or written.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable

#: a plain decimal number: digits, an optional fraction, an optional exponent; no
#: underscores, spaces, signs other than a leading one, nan or inf
_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", re.ASCII)
_INTEGER = re.compile(r"[+-]?\d+", re.ASCII)


def number(*, positive: bool = True, what: str = "a number") -> Callable[[str], float]:
    """A plain decimal number, finite, > 0 (or >= 0 with positive=False); `what` it is,
    for the error ("a number of seconds")."""
    bound = "> 0" if positive else ">= 0"

    def parse(text: str) -> float:
        value = float(text) if _DECIMAL.fullmatch(text) else math.nan
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            raise argparse.ArgumentTypeError(f"{text!r}: expected {what} {bound}, in plain digits (e.g. 60 or 2.5)")
        return value

    return parse


#: a duration in seconds (`--duration`)
SECONDS = number(what="a number of seconds")


def integer(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """A whole number in [low, high] (either bound optional), written in plain digits."""
    if low is not None and high is not None:
        expected = f"a whole number from {low} to {high}"
    elif low is not None:
        expected = f"a whole number >= {low}"
    else:
        expected = "a whole number"

    def parse(text: str) -> int:
        value = int(text) if _INTEGER.fullmatch(text) else None
        if value is None or (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{text!r}: expected {expected}")
        return value

    return parse
