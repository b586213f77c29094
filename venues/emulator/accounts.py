"""Emulator accounts: API keys, secrets and exact balances (free and locked, Decimal).

An accounts file (`--accounts FILE`) is TOML, one table per account::

    [accounts.alice]
    api_key = "alice-key"
    secret = "alice-secret"
    balances = { USDT = "100000", BTC = "2" }

Without a file one account, `default`, gets fresh random credentials and the balances the
run's venue tables resolve to (modes.backtest `_venue_tables`: `[venues.X] balances`, else
the venue profile's `quote_balance` of each quote asset and 0 of each base asset); only when
those are empty (a profile with no balance, `zero-cost`) 100,000 of each quote and 10 of each
base asset (DEFAULT_QUOTE, DEFAULT_BASE). docs/emulator.md states the figures.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from engine.config import read_toml_file
from engine.errors import ConfigError
from engine.types import Instrument

DEFAULT_QUOTE = Decimal("100000")
DEFAULT_BASE = Decimal("10")


@dataclass
class Account:
    """One trading account; `free`/`locked` per asset, exact."""

    name: str
    api_key: str
    secret: str
    free: dict[str, Decimal] = field(default_factory=dict)
    locked: dict[str, Decimal] = field(default_factory=dict)
    update_ms: int = 0
    update_ns: int = 0  # the same as market ns (a µs client's updateTime: BinanceServer._t)

    def available(self, asset: str) -> Decimal:
        return self.free.get(asset, Decimal(0))

    def lock(self, asset: str, amount: Decimal) -> None:
        self.free[asset] = self.free.get(asset, Decimal(0)) - amount
        self.locked[asset] = self.locked.get(asset, Decimal(0)) + amount

    def move(self, asset: str, free_delta: Decimal, locked_delta: Decimal) -> None:
        self.free[asset] = self.free.get(asset, Decimal(0)) + free_delta
        self.locked[asset] = self.locked.get(asset, Decimal(0)) + locked_delta

    def assets(self) -> list[str]:
        return sorted(set(self.free) | set(self.locked))


def _amount(value: Any, where: str) -> Decimal:
    if isinstance(value, float):
        raise ConfigError(f"{where} = {value!r}: write it as a quoted decimal string")
    try:
        out = Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(f"{where} = {value!r}: not a number") from None
    if out < 0:
        raise ConfigError(f"{where} = {value!r}: must be >= 0")
    return out


def read_toml(path: str | Path, what: str, known: set[str], expected: str) -> dict[str, Any]:
    """A TOML file's tables; ConfigError names the file (missing, bad TOML, unknown keys)."""
    file = Path(path)
    data = read_toml_file(file, what)
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"{file}: unknown top-level key(s) {sorted(unknown)}; expected {expected}")
    return data


def load_accounts(path: str | Path) -> list[Account]:
    """Read an accounts TOML file (see module doc); raises ConfigError naming the key."""
    file = Path(path)
    data = read_toml(file, "accounts", {"accounts"}, "[accounts.NAME]")
    tables = data.get("accounts")
    if not isinstance(tables, dict) or not tables:
        raise ConfigError(f"{file}: no [accounts.NAME] table")
    out: list[Account] = []
    keys: set[str] = set()
    for name, table in tables.items():
        where = f"{file} [accounts.{name}]"
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: expected a table")
        bad = set(table) - {"api_key", "secret", "balances"}
        if bad:
            raise ConfigError(f"{where}: unknown key(s) {sorted(bad)}; known: api_key, secret, balances")
        key = table.get("api_key")
        secret = table.get("secret")
        if not isinstance(key, str) or not key or not isinstance(secret, str) or not secret:
            raise ConfigError(f"{where}: api_key and secret must be non-empty strings")
        if key in keys:
            raise ConfigError(f"{where}: api_key {key!r} is used by another account")
        keys.add(key)
        balances = table.get("balances", {})
        if not isinstance(balances, dict):
            raise ConfigError(f"{where} balances: expected a table like {{ USDT = \"1000\" }}")
        free = {str(a): _amount(v, f"{where} balances.{a}") for a, v in balances.items()}
        out.append(Account(name=str(name), api_key=key, secret=secret, free=free))
    return out


def default_account(instruments: Iterable[Instrument],
                    venue_balances: Mapping[str, Mapping[str, Decimal]] | None = None) -> Account:
    """The account used without --accounts: random credentials; `venue_balances` ({venue:
    {asset: amount}}, the run's resolved venue balances) summed per asset, or, when they hold
    nothing, DEFAULT_QUOTE of each quote and DEFAULT_BASE of each base asset."""
    free: dict[str, Decimal] = {}
    for balances in (venue_balances or {}).values():
        for asset, amount in balances.items():
            free[asset] = free.get(asset, Decimal(0)) + Decimal(amount)
    if not free:
        for inst in instruments:
            free.setdefault(inst.quote, DEFAULT_QUOTE)
            free.setdefault(inst.base, DEFAULT_BASE)
    return Account(name="default", api_key=secrets.token_hex(32), secret=secrets.token_hex(32),
                   free=free)
