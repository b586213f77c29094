"""One way for the runners and commands to warn the user on the console.

Why one function: a warning names something a run falls back on or drops (a venue
default, part of a window without data, rows an import skipped); the user silences them
with `--log-level error` like every other engine message, so every command prints them
through here instead of its own `print`.
"""

from __future__ import annotations

import logging
import sys

from engine.errors import plain_numbers

_LOGGER = logging.getLogger("tickparity")


def warn(text: str) -> None:
    """Print 'tickparity: warning: TEXT' to stderr unless the log level is above warning."""
    if _LOGGER.isEnabledFor(logging.WARNING):
        print(f"tickparity: warning: {plain_numbers(text)}", file=sys.stderr, flush=True)
