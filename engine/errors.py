"""One error taxonomy for the whole engine.

Why one module: the CLI turns any `TickparityError` into a single clear line and a
non-zero exit, and live venues decide retry-vs-give-up by class (ccxt's split of
network/transient versus exchange/rejected), so every layer must raise from here.
"""

from __future__ import annotations


class TickparityError(Exception):
    """Base of every error a user can cause or a venue can report."""

    exit_code = 2


class DataError(TickparityError):
    """Market data is missing, malformed or inconsistent (names file/row/field)."""


class StorageError(DataError):
    """A store or run directory cannot be written: disk full, locked by another writer,
    or shared in a way the backend does not allow (names the store and what to do)."""


class ConfigError(TickparityError):
    """A run config, instrument file or flag is wrong (names the key and value)."""


class InstrumentError(ConfigError):
    """Unknown instrument, or a value off its tick/lot grid."""


class OffGridError(InstrumentError):
    """A price or quantity is not a whole number of ticks or lots."""


class StrategyError(TickparityError):
    """A strategy path cannot be loaded, or its parameters do not fit."""


class VenueError(TickparityError):
    """Base of venue-side errors."""


class VenueTransientError(VenueError):
    """Network or 5xx error: safe to retry with backoff."""


class VenueRejectedError(VenueError):
    """The venue refused the request: do not retry unchanged."""


class AmbiguousSubmitError(VenueTransientError):
    """A submit timed out after it may have been accepted: look it up before resubmitting."""


class RateLimitedError(VenueTransientError):
    """The venue said slow down."""


class AuthError(VenueError):
    """Credentials missing or refused."""


class RiskError(TickparityError):
    """A risk check refused an order (surfaces as a REJECTED update, never a crash)."""


class IllegalTransitionError(TickparityError):
    """An order status change the OMS state machine forbids."""
