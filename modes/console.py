"""One way for the runners and commands to warn the user on the console.

Why one function: a warning names something a run falls back on or drops (a venue
default, part of a window without data, rows an import skipped); the user silences them
with `--log-level error` like every other engine message, so every command prints them
through here instead of its own `print`.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from engine.errors import plain_numbers

_LOGGER = logging.getLogger("tickparity")


def warn(text: str) -> None:
    """Print 'tickparity: warning: TEXT' to stderr unless the log level is above warning."""
    if _LOGGER.isEnabledFor(logging.WARNING):
        print(f"tickparity: warning: {plain_numbers(text)}", file=sys.stderr, flush=True)


def info(text: str) -> None:
    """Print 'tickparity: info: TEXT' to stderr when the log level is info or lower
    (`--log-level info`): what went as expected but is worth knowing, never a warning."""
    if _LOGGER.isEnabledFor(logging.INFO):
        print(f"tickparity: info: {plain_numbers(text)}", file=sys.stderr, flush=True)


def refusal_meaning(reason: str) -> str:
    """The vocabulary's text for a reject reason (engine.types.orders.REASONS), or ''."""
    from engine.types.orders import REASONS, ReasonCode

    try:
        return REASONS[ReasonCode(reason)].meaning
    except (ValueError, KeyError):
        return ""


def refusals_text(counts: dict[str, int]) -> str | None:
    """One line for a run's refused orders (`counts`: reason -> orders), most first; the
    reason's meaning is spelled out when there is one reason. None when nothing was refused.

    Why: a refused order is not an error (the strategy gets a `rejected` update), so a run
    whose orders were all refused (a futures order beyond the margin in a testnet session)
    ended with "fills 0" and nothing else on the console; the reasons were only in
    orders.parquet and the audit log."""
    total = sum(counts.values())
    if not total:
        return None
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    parts = ", ".join(f"{reason} {n}" for reason, n in ranked)
    meaning = refusal_meaning(ranked[0][0]) if len(ranked) == 1 else ""
    return (f"orders refused: {total} ({parts}{': ' + meaning if meaning else ''})"
            " - reasons in orders.parquet and docs/errors.md")


def run_refusals(run_dir: Path) -> str | None:
    """`refusals_text` of a finished run directory's orders.parquet (status `rejected`)."""
    import pyarrow.parquet as pq

    path = Path(run_dir) / "orders.parquet"
    if not path.is_file():
        return None
    table = pq.read_table(path, columns=["status", "reason"]).to_pydict()
    counts: dict[str, int] = {}
    for status, reason in zip(table["status"], table["reason"], strict=True):
        if status == "rejected":
            counts[reason or "unknown"] = counts.get(reason or "unknown", 0) + 1
    return refusals_text(counts)
