"""API keys for a venue: from environment variables or a 0600 secrets file, never from the
run config, and never shown.

`[venues.X]` keys (every mode accepts them, so a live config backtests unchanged):

    account = "main"                    # the account's name (the live confirmation names it)
    api_key_env = "BINANCE_API_KEY"     # environment variable names (defaults:
    secret_env = "BINANCE_SECRET"       #   TICKPARITY_<VENUE>_API_KEY / _SECRET)
    secrets_file = "~/.tickparity/secrets.toml"   # or a file, mode 0600: [binance] api_key, secret
                                        # (a relative path: relative to the config file's folder)

Why refuse a group- or world-readable file: a key readable by another user of the machine
is a leaked key (ssh refuses private keys the same way). Why a `Credentials` object that
masks itself: keys then cannot reach a log line, an audit record, config.json, an error
message or a report by accident (`repr`, `str`, f-strings all print `***`); the only way to
the values is `.api_key` / `.secret`, used when the ccxt client is built.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.config import read_toml_file
from engine.errors import ConfigError

KEYS = ("account", "api_key_env", "secret_env", "secrets_file")


@dataclass(frozen=True)
class Credentials:
    venue: str
    account: str
    api_key: str = field(repr=False)
    secret: str = field(repr=False)
    source: str = ""  # where they came from (names only: "env TICKPARITY_BINANCE_API_KEY", a path)

    def __repr__(self) -> str:
        return f"Credentials(venue={self.venue!r}, account={self.account!r}, api_key=***, secret=***, source={self.source!r})"

    __str__ = __repr__

    def redact(self, text: str) -> str:
        """`text` with both key values replaced by ***."""
        for value in (self.secret, self.api_key):
            if value:
                text = text.replace(value, "***")
        return text

    def ccxt(self) -> dict[str, str]:
        """The ccxt constructor keys."""
        return {"apiKey": self.api_key, "secret": self.secret}


def name_key(table: Mapping[str, Any], key: str, where: str, what: str) -> str | None:
    """`table[key]` when it is a non-empty string, None when absent; else a one-line
    ConfigError naming `where` (the table), the key and the expected type.

    Why check the type here: `api_key_env = ["ALICE_KEY"]` was turned into the text
    "['ALICE_KEY']" and reported as an unset environment variable, `secrets_file = 42` as a
    missing file "42" (misleading errors that send the user looking for the wrong fault)."""
    if key not in table:
        return None
    value = table[key]
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where} {key} = {value!r}: expected {what} (a non-empty string)")
    return value


def check_key_types(table: Mapping[str, Any], where: str) -> None:
    """ConfigError unless api_key_env, secret_env and secrets_file, where given, are
    non-empty strings (`name_key`)."""
    _env_names("", table, where)
    name_key(table, "secrets_file", where, "a path to a 0600 secrets file")


def _env_names(venue: str, table: Mapping[str, Any], where: str) -> tuple[str, str]:
    stem = "TICKPARITY_" + "".join(c if c.isalnum() else "_" for c in venue.upper())
    key_name = name_key(table, "api_key_env", where, "the name of an environment variable")
    secret_name = name_key(table, "secret_env", where, "the name of an environment variable")
    return key_name or stem + "_API_KEY", secret_name or stem + "_SECRET"


def check_private(path: Path, where: str) -> None:
    """ConfigError (one line naming `where`, the config key) unless `path` is a regular file
    that only its owner can read or write (mode 0600, or stricter)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ConfigError(f"{where}: secrets file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"{where}: {path} is not a regular file")
    if st.st_mode & 0o077:
        raise ConfigError(f"{where}: {path} must be mode 0600 (readable by its owner only), not "
                          f"{stat.S_IMODE(st.st_mode):04o}; run: chmod 600 {path}")


def secrets_path(value: Any, base_dir: str | Path | None) -> Path:
    """Where `secrets_file = VALUE` points: `~` expanded; a relative path is relative to the
    config file's directory (`base_dir`, RunConfig.base_dir), like every other path in the
    config, never to the working directory the command was started in."""
    path = Path(str(value)).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return path


def load_credentials(table: Mapping[str, Any], venue: str,
                     environ: Mapping[str, str] | None = None, base_dir: str | Path | None = None) -> Credentials:
    """The credentials of `[venues.<venue>]` (module doc for the keys).

    A secrets file wins over the environment when the table names one; a relative
    `secrets_file` is relative to `base_dir`, the config file's directory (`secrets_path`).
    Raises ConfigError naming the config key, variable or file (never a value) when they
    are missing, empty or the file is not mode 0600.
    """
    env = os.environ if environ is None else environ
    where = f"[venues.{venue}]"
    account = str(table.get("account", "default"))
    # every key's type first, so a wrong one is named even when another key would be used
    key_name, secret_name = _env_names(venue, table, where)
    secrets_file = name_key(table, "secrets_file", where, "a path to a 0600 secrets file")
    if secrets_file is not None:
        path = secrets_path(secrets_file, base_dir)
        check_private(path, f"{where} secrets_file")
        data = read_toml_file(path, "secrets")
        section = data.get(venue)
        if not isinstance(section, dict):
            raise ConfigError(f"{path}: no [{venue}] table (expected api_key and secret in it)")
        for key in ("api_key", "secret"):
            if not isinstance(section.get(key), str) or not section[key]:
                raise ConfigError(f"{path}: [{venue}] {key} is missing or empty")
        named = section.get("account", account)
        if not isinstance(named, str) or not named.strip() or named != named.strip():
            # the same rule as the config's account (engine.venue_profiles.check_live_keys):
            # the live confirmation asks for this name, and an empty one an empty answer gave
            raise ConfigError(f"{path}: [{venue}] account = {named!r}: expected a non-empty string in quotes "
                              "with no blanks around it")
        return Credentials(venue, named, section["api_key"], section["secret"], source=str(path))
    missing = [n for n in (key_name, secret_name) if not env.get(n)]
    if missing:
        raise ConfigError(f"{where}: environment variable {' and '.join(missing)} not set "
                          f"(or set secrets_file = PATH to a 0600 file)")
    return Credentials(venue, account, env[key_name], env[secret_name], source=f"env {key_name}, {secret_name}")
