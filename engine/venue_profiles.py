"""Venue profiles: the fees, latency and starting balances a run assumes for a venue.

Why: a run whose `[venues.<name>]` table says nothing used to get 0 fees, 0 latency and
0 balances without a word, and then bought 1 BTC from an equity of 0. Every default now
comes from a named profile in `engine/venue_profiles.toml` (each figure with its source), and each
default a run falls back on is reported as one warning line. `profile = "zero-cost"`
reproduces runs made before profiles existed.

The valid keys of a venue table live here (`VENUE_TABLE_KEYS`, `LATENCY_KEYS`) so that the
config check in `engine.config` can use them without `engine` importing `venues`; the
simulated venue (`venues.sim.config`) reads the same lists.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine.config import parse_decimal, read_toml_file
from engine.errors import ConfigError
from engine.fees import FEE_ASSET_RULES

#: keys a `[venues.<name>]` table may hold (README "Venue table keys")
VENUE_TABLE_KEYS: tuple[str, ...] = (
    "profile",
    "queue_model",
    "latency",
    "maker_fee_bps",
    "taker_fee_bps",
    "partial_fills",
    "stp",
    "balances",
    "enforce_balances",
    "leverage",  # contracts: an int, or { "BTC/USDT:USDT" = 10 } (engine/margin.py)
    "margin_mode",  # contracts: "cross" (default) or "isolated"
    "open_positions",  # contracts, testnet/live: "adopt" (default) or "refuse" a position held at start
    "fee_asset",
    # the venue publishes its depth as one diff per this many ms (Binance `@depth@100ms`: 100);
    # a backtest's local book then sees book rows only at the window ends (venues/sim/core_nb.py)
    "depth_conflation_ms",
    # the live session's order-count limiter on a backtest's requests (venues/sim/budget.py):
    # false (default), true (the venue's ORDERS windows), or { orders, window_s, max_wait_ms, phase_ns }
    "request_budget",
    # live modes (paper/testnet/live; a backtest accepts and ignores them, so one config
    # serves every mode): the ccxt exchange id, an optional base URL (e.g. the emulator's)
    # and where the credentials come from (names of environment variables, or a secrets file);
    # `account` names the account (the live confirmation asks for it)
    "exchange",
    "url",
    "account",
    "api_key_env",
    "secret_env",
    "secrets_file",
)
#: keys of its `latency` table
LATENCY_KEYS: tuple[str, ...] = (
    "entry_ns",
    "response_ns",
    "feed_ns",
    "cancel_entry_ns",
    "amend_entry_ns",
    "model",
    "file",
    "spikes",
    "feed_file",  # a recorded feed latency (venues/sim/latency.py RecordedFeed)
    "params",  # the integer parameters of a latency model named by path (docs/models.md)
    "report_file",  # a recorded response leg (venues/sim/latency.py latency_nb.response_time_nb)
    "refusal_windows",  # the recorded model's refused submits placed in their windows (latency.refusal_windows)
)
ZERO_COST = "zero-cost"
GENERIC = "generic"
_LATENCY_DEFAULTED = ("entry_ns", "response_ns", "feed_ns")


def default_profiles_path() -> Path:
    """engine/venue_profiles.toml, beside the instruments file."""
    return Path(__file__).resolve().parent / "venue_profiles.toml"


@dataclass(frozen=True, slots=True)
class VenueProfile:
    """One `[profiles.<name>]` table of the profiles file."""

    name: str
    description: str
    maker_fee_bps: str
    taker_fee_bps: str
    fee_source: str
    latency: Mapping[str, int]
    latency_source: str
    enforce_balances: bool
    quote_balance: Decimal
    fee_asset: str = "quote"  # engine.fees.FEE_ASSET_RULES


@dataclass(frozen=True, slots=True)
class Profiles:
    """The profiles file: profiles by name and each venue's default profile."""

    profiles: Mapping[str, VenueProfile]
    venue_default: Mapping[str, str]

    def for_venue(self, venue: str) -> str:
        return self.venue_default.get(venue, GENERIC)


def load_profiles(path: str | Path | None = None) -> Profiles:
    """Read a profiles file (default engine/venue_profiles.toml). Raises ConfigError naming the
    file and the field on anything malformed."""
    file = Path(path) if path is not None else default_profiles_path()
    raw = read_toml_file(file, "venue profiles")
    profiles: dict[str, VenueProfile] = {}
    fields = ("description", "maker_fee_bps", "taker_fee_bps", "fee_source", "latency",
              "latency_source", "enforce_balances", "quote_balance")
    for name, spec in raw.get("profiles", {}).items():
        where = f"{file} [profiles.{name}]"
        missing = [f for f in fields if f not in spec]
        unknown = sorted(set(spec) - set(fields) - {"fee_asset"})
        if missing or unknown:
            raise ConfigError(f"{where}: missing {missing}, unknown {unknown}; fields: {list(fields)}")
        latency = dict(spec["latency"])
        if set(latency) != set(_LATENCY_DEFAULTED):
            raise ConfigError(f"{where}: latency must give exactly {list(_LATENCY_DEFAULTED)}")
        profiles[name] = VenueProfile(
            name=name, description=str(spec["description"]),
            maker_fee_bps=_decimal_text(spec["maker_fee_bps"], f"{where} maker_fee_bps"),
            taker_fee_bps=_decimal_text(spec["taker_fee_bps"], f"{where} taker_fee_bps"),
            fee_source=str(spec["fee_source"]), latency=latency,
            latency_source=str(spec["latency_source"]),
            enforce_balances=bool(spec["enforce_balances"]),
            quote_balance=Decimal(_decimal_text(spec["quote_balance"], f"{where} quote_balance")),
            fee_asset=parse_fee_asset(spec.get("fee_asset", "quote"), f"{where} fee_asset"),
        )
    defaults = dict(raw.get("venues", {}))
    for venue, name in defaults.items():
        if name not in profiles:
            raise ConfigError(f"{file} [venues] {venue} = {name!r}: no such profile")
    for required in (GENERIC, ZERO_COST):
        if required not in profiles:
            raise ConfigError(f"{file}: the profile {required!r} is required")
    return Profiles(profiles=profiles, venue_default=defaults)


def check_venue_keys(venue: str, table: Mapping[str, Any]) -> None:
    """Unknown keys in a venue table (or its latency table) -> ConfigError listing the
    valid ones."""
    where = f"[venues.{venue}]"
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where} must be a table, got {type(table).__name__}")
    for key in table:
        if key not in VENUE_TABLE_KEYS:
            raise ConfigError(f"{where} unknown key {key!r}; valid keys: {', '.join(VENUE_TABLE_KEYS)}")
    check_live_keys(where, table)
    latency = table.get("latency", {})
    if isinstance(latency, Mapping):
        for key in latency:
            if key not in LATENCY_KEYS:
                raise ConfigError(
                    f"{where} unknown key 'latency.{key}'; valid keys: {', '.join(LATENCY_KEYS)}")


#: the live keys whose value is a name: each must be a non-empty string without surrounding
#: blanks (check_live_keys)
LIVE_NAME_KEYS: dict[str, str] = {
    "exchange": "a ccxt.pro exchange id", "url": "the venue's base URL", "account": "the account's name",
    "api_key_env": "the name of an environment variable", "secret_env": "the name of an environment variable",
    "secrets_file": "a path to a 0600 secrets file",
}


def check_live_keys(where: str, table: Mapping[str, Any]) -> None:
    """ConfigError (one line naming the key and value) unless each live key of the table
    that is given is a non-empty string with no blanks around it.

    Why in every mode: these keys were read with `str(...)`, so `account = 5` became the
    account '5' and `account = ""` an account whose live confirmation an empty answer (Enter,
    or an empty TICKPARITY_CONFIRM_LIVE) gave; an empty `api_key_env` named no variable and
    an empty `url` meant "no url". A backtest of the same config refuses it too, so the
    config is fixed before it ever reaches a venue."""
    for key, what in LIVE_NAME_KEYS.items():
        if key not in table:
            continue
        value = table[key]
        if not isinstance(value, str):
            raise ConfigError(f"{where} {key} = {value!r}: expected {what} (a string in quotes, not "
                              f"{_toml_kind(value)})")
        if not value.strip():
            raise ConfigError(f"{where} {key} = {value!r}: expected {what} (a non-empty string)")
        if value != value.strip():
            raise ConfigError(f"{where} {key} = {value!r}: has blanks around it; write {value.strip()!r}")


def _toml_kind(value: Any) -> str:
    """What a TOML value is, in the user's words ("a number", "a table")."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float | Decimal):
        return "a number"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


def resolve_venue_table(
    venue: str,
    table: Mapping[str, Any],
    quote_assets: Iterable[str],
    profiles: Profiles | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Fill a `[venues.<venue>]` table from its profile; returns (table, warnings).

    The profile is `profile = "..."` when the table names one, else the venue's default
    profile (`[venues]` in the profiles file; `generic` for a venue not listed there).
    Fees, latency (entry, response, feed) and balances the table does not give come from
    the profile; each is reported as one warning line unless the table named the profile
    itself. Balances default to the profile's `quote_balance` of every quote asset in
    `quote_assets` (base assets start at 0). The result holds every key but `profile`,
    plus `profile` (the profile's name) for the record.
    """
    check_venue_keys(venue, table)
    profiles = profiles or load_profiles()
    named = table.get("profile")
    if named is not None and named not in profiles.profiles:
        raise ConfigError(f"[venues.{venue}] profile = {named!r}: expected one of "
                          f"{', '.join(sorted(profiles.profiles))} (engine/venue_profiles.toml)")
    name = named if named is not None else profiles.for_venue(venue)
    prof = profiles.profiles[name]
    warn = named is None
    where = f"[venues.{venue}]"
    out: dict[str, Any] = {k: v for k, v in table.items() if k != "profile"}
    notes: list[str] = []

    fees_missing = [k for k in ("maker_fee_bps", "taker_fee_bps") if k not in table]
    for key in fees_missing:
        out[key] = getattr(prof, key)
    if "fee_asset" not in table:  # the venue's rule, not an assumption: stated with the fees
        out["fee_asset"] = prof.fee_asset
    if fees_missing and warn:
        shown = " / ".join(f"{k} = {getattr(prof, k)}" for k in fees_missing)
        charged = (", charged in the asset received (a buy in base, a sell in quote)"
                   if out["fee_asset"] == "received" else "")
        notes.append(f"{where} {', '.join(fees_missing)} not set: using {shown} bps from profile "
                     f"{name!r} ({prof.description}; {prof.fee_source}){charged}")

    latency = table.get("latency")
    if latency is None:
        out["latency"] = dict(prof.latency)
        if warn:
            notes.append(f"{where} latency not set: using {_latency_text(prof.latency)} from profile "
                         f"{name!r} ({prof.latency_source})")
    elif isinstance(latency, Mapping):
        filled = dict(latency)
        # an empirical model draws entry and response latencies from its file
        defaulted = _LATENCY_DEFAULTED if latency.get("model", "constant") == "constant" else ("feed_ns",)
        gaps = [k for k in defaulted if k not in latency
                and not (k == "feed_ns" and "feed_file" in latency)  # a recorded feed latency
                and not (k == "response_ns" and "report_file" in latency)]  # a recorded response leg
        for key in gaps:
            filled[key] = prof.latency[key]
        out["latency"] = filled
        if gaps and warn:
            notes.append(f"{where} latency.{', latency.'.join(gaps)} not set: using "
                         f"{_latency_text({k: prof.latency[k] for k in gaps})} from profile {name!r} "
                         f"({prof.latency_source})")

    if "enforce_balances" not in table:
        out["enforce_balances"] = prof.enforce_balances
    if "balances" not in table:
        quotes = list(dict.fromkeys(quote_assets))
        amount = prof.quote_balance
        out["balances"] = {q: str(amount) for q in quotes} if amount > 0 else {}
        if warn:
            held = ", ".join(f"{amount} {q}" for q in quotes) if amount > 0 else "nothing"
            notes.append(f"{where} balances not set: starting with {held} (profile {name!r} "
                         f"quote_balance; base assets start at 0)")
    out["profile"] = name
    return out, notes


def parse_balances(venue: str, raw: Any) -> dict[str, Decimal]:
    """`balances = { USDT = "100000", BTC = "0.5" }` -> exact Decimals (no TOML floats)."""
    where = f"[venues.{venue}]"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} balances must be a table like {{ USDT = \"100000\" }}")
    out: dict[str, Decimal] = {}
    for asset, amount in raw.items():
        out[str(asset)] = Decimal(_decimal_text(amount, f"{where} balances.{asset}"))
        if out[str(asset)] < 0:
            raise ConfigError(f"{where} balances.{asset} = {amount!r}: must not be negative")
    return out


def parse_fee_asset(value: Any, where: str) -> str:
    """A venue's fee-asset rule ("quote" or "received", engine.fees.FEE_ASSET_RULES)."""
    if value not in FEE_ASSET_RULES:
        raise ConfigError(f"{where} = {value!r}: expected one of {', '.join(map(repr, FEE_ASSET_RULES))}")
    return str(value)


def _decimal_text(value: Any, where: str) -> str:
    parse_decimal(value, where)
    return str(value)


def _latency_text(latency: Mapping[str, int]) -> str:
    return ", ".join(f"{k} = {v / 1e6:g} ms" for k, v in latency.items())
