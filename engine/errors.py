"""One error taxonomy for the whole engine.

Why one module: the CLI turns any `TickparityError` into a single clear line and exit 2
(the user can fix it: data, config, an order argument, their strategy), and anything
else into "internal error" and exit 1 (our bug: report it). So a class belongs under
`TickparityError` only if the user caused it, and our own invariants (an illegal order
status change, a fast path that disagrees with the reference path) raise `InternalError`.

Refusals of an order (a venue filter, a risk limit, the venue's answer) are never
exceptions: they arrive as a REJECTED order update whose `reason` comes from the one
vocabulary in `engine.types.orders.REASONS`.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

#: a Decimal's repr inside a message: `Decimal('1.5')` (TOML numbers with a fraction are read as Decimal)
_DECIMAL_REPR = re.compile(r"Decimal\('([^']*)'\)")


def plain_numbers(text: str) -> str:
    """`text` with every `Decimal('1.5')` written as the number the user wrote: `1.5`.

    Why: config files are read with `parse_float=Decimal`, and messages echo values with
    `!r` (so strings keep their quotes); a `params = [1.5]` came back as
    `[Decimal('1.5')]`, a Python detail the user never typed. Applied to every
    TickparityError message and console warning, so no message site has to remember it."""
    return _DECIMAL_REPR.sub(r"\1", text) if "Decimal(" in text else text


def file_problem(path: str | Path) -> str | None:
    """Why `path` cannot be read as a file: None when it is a regular file, else
    "not found", "is a directory" or "is not a regular file" (a FIFO, a device).

    Why one helper: every message about a file the user named said "not found" when the
    path was a directory (`feed_file = "runs/x"`), which sent the user looking for a file
    that is there. Sites write "<what> {problem}: PATH" or "<key> = 'PATH': file {problem}"."""
    file = Path(path)
    if file.is_file():
        return None
    if file.is_dir():
        return "is a directory"
    return "is not a regular file" if file.exists() else "not found"


class TickparityError(Exception):
    """Base of every error a user can cause: one line on stderr, exit 2. The message's
    Decimal reprs are shown as plain numbers (`plain_numbers`)."""

    exit_code = 2

    def __init__(self, *args: object) -> None:
        if args and isinstance(args[0], str):
            args = (plain_numbers(args[0]), *args[1:])
        super().__init__(*args)


class DataError(TickparityError):
    """Market data or a run's file is missing, malformed or inconsistent (names file/row/field)."""


class StorageError(DataError):
    """A store or run directory cannot be written: disk full, locked by another writer,
    or shared in a way the backend does not allow (names the store and what to do)."""


class ConfigError(TickparityError):
    """A run config, instrument file or flag is wrong (names the key and value)."""


class InstrumentError(ConfigError):
    """Unknown instrument, a bad instrument spec, or a value off its tick/lot grid."""


class OffGridError(InstrumentError):
    """A price or quantity is not a whole number of ticks or lots."""


class OrderError(TickparityError):
    """An order request is malformed: side, type, tif, qty or price (names the argument).

    Raised at the call (`ctx.submit`, `ctx.amend`, `ctx.open_parent`), because no venue
    could accept it; a well-formed order that a filter, a risk limit or the venue refuses
    is not an error but a REJECTED update.
    """


class VenueBannedError(TickparityError):
    """A venue refuses every request from this IP for now (HTTP 418, an IP ban after 429s
    were ignored, by us or another process on the IP): a session does not start into it.
    Names the venue and how long the ban lasts."""


class AccountInUseError(TickparityError):
    """Another testnet/live session on this machine trades the account (modes/live/account_lock.py):
    a second one would take over its running orders. Names its run directory and pid."""


class StrategyError(TickparityError):
    """A strategy cannot be loaded, its parameters do not fit, or its own code raised.

    When the strategy's code raised, `callback` names the callback ('on_book', '__init__',
    'timer_nb', ...) and `location` is 'file.py:line' of the innermost frame in the
    strategy's file; the original exception is the `__cause__`.
    """

    def __init__(self, message: str, *, callback: str | None = None, location: str | None = None) -> None:
        super().__init__(message)
        self.callback = callback
        self.location = location


def strategy_stop_text(exc: StrategyError) -> str:
    """summary.json `stopped_by` of a run its strategy stopped (a session halted by it, or
    any mode's end at which it raised): `strategy error: <callback> at <file:line>:
    <exception>: <message>`. One helper: the backtest and the sessions say it alike."""
    cause = exc.__cause__
    detail = f"{type(cause).__name__}: {cause}" if cause is not None else str(exc)
    detail = detail.strip().splitlines()[0] if detail.strip() else type(cause).__name__
    return f"strategy error: {exc.callback or 'strategy'} at {exc.location or 'an unknown line'}: {detail}"


def require_run_directory(path: str | Path, flag: str | None = None) -> Path:
    """`path` as a Path when it is an existing directory; else ConfigError, one line:
    "[FLAG: ]no such run directory: PATH" (or "not a directory").

    Why one helper: every command that reads a run directory (`testnet|live --resume`,
    `replay`, `report`, `kill|approve|refuse|resume`) must say that the directory is missing
    before it complains about a file inside it (a missing directory used to read "no
    contingent.json", which sent the user looking for the wrong file)."""
    where = f"{flag}: " if flag else ""
    run_dir = Path(path)
    if not run_dir.exists():
        raise ConfigError(f"{where}no such run directory: {run_dir}")
    if not run_dir.is_dir():
        raise ConfigError(f"{where}{run_dir}: not a directory (a run directory was expected)")
    return run_dir


class InternalError(Exception):
    """Our bug, not the user's: an engine invariant broke. Exit 1, "internal error".

    Deliberately not a `TickparityError`: the user cannot fix it by changing input, and
    the CLI asks for a report instead of blaming their data or code.
    """


class IllegalTransitionError(InternalError):
    """An order status change the OMS state machine forbids (a bug or a venue anomaly)."""


# -- pointing at the user's code ------------------------------------------------------------
def display_path(path: str | Path) -> str:
    """A path as the user would type it: relative to the working directory when under it."""
    file = Path(path)
    try:
        return str(file.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(file)


def user_location(tb: TracebackType | None, files: Iterable[str | Path]) -> str | None:
    """'file.py:line' of the innermost traceback frame in one of `files`, or None.

    Why innermost in the user's files (not the innermost frame): the exception may be
    raised in the standard library or in the engine on the user's behalf (`Decimal(1)/0`,
    `ctx.submit(... side="up")`); the line to fix is the user's call.
    """
    wanted = set()
    for f in files:
        try:
            wanted.add(str(Path(f).resolve()))
        except OSError:
            continue
    found = None
    for frame, line in traceback.walk_tb(tb):
        name = frame.f_code.co_filename
        try:
            resolved = str(Path(name).resolve())
        except OSError:
            continue
        if resolved in wanted:
            found = f"{display_path(name)}:{line}"
    return found


def user_code_error(callback: str, exc: BaseException, files: Iterable[str | Path],
                    fallback: str | None = None) -> StrategyError:
    """The one-line StrategyError for an exception raised by user code in `callback`.

    Message: ``strategy error in on_book (my_mm.py:42): ZeroDivisionError: division by zero``;
    `fallback` is the location to name when no frame is in `files` (e.g. numba-compiled
    code, which leaves no Python frame). The caller raises it ``from exc``.
    """
    location = user_location(exc.__traceback__, files) or fallback
    where = f" ({location})" if location else ""
    lines = str(exc).strip().splitlines()  # one line: numba's typing errors run to pages
    text = lines[0] if len(lines) <= 1 else f"{lines[0]} ... (the rest with --debug)"
    detail = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return StrategyError(f"strategy error in {callback}{where}: {detail}", callback=callback, location=location)


def code_location(func: object) -> str | None:
    """'file.py:line' where a function (or a numba dispatcher's Python function) is defined."""
    code = getattr(getattr(func, "py_func", func), "__code__", None)
    if code is None:
        return None
    return f"{display_path(code.co_filename)}:{code.co_firstlineno}"

