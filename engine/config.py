"""Run configuration: one TOML file for every mode, flags override it.

Why frozen and strict: a typo in a risk limit or venue key must stop the run with the
key's name, not be ignored; and a run is identified by a stable hash of its resolved
config, so two runs with the same hash (and data) must produce the same fills.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.errors import ConfigError

_TOP_KEYS = {"run", "venues", "risk"}
_RUN_KEYS = {"strategy", "data", "instruments", "seed", "params", "from", "to", "out",
             "instruments_file", "sample_ms"}


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """The resolved configuration of one run (after file + flags)."""

    strategy: str
    data: str
    instruments: tuple[str, ...] = ()
    seed: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    venues: dict[str, dict[str, Any]] = field(default_factory=dict)
    risk: dict[str, Any] = field(default_factory=dict)
    instruments_file: str | None = None
    start_ns: int | None = None
    end_ns: int | None = None
    out: str | None = None
    sample_ns: int = 1_000_000_000
    base_dir: str = "."  # where relative paths in the config file are resolved

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["instruments"] = list(self.instruments)
        data.pop("base_dir")
        return data

    @property
    def hash(self) -> str:
        """Stable identity of the run: same hash + same data => same fills."""
        blob = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def parse_time(value: str | int | None, field_name: str) -> int | None:
    """ISO-8601 (UTC if no zone) or integer ns -> int ns since the epoch."""
    if value is None:
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{field_name}={value!r}: expected ISO time like 2024-08-08T23:55:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def load_config_file(path: str | Path) -> dict[str, Any]:
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"config file not found: {file}")
    try:
        raw = tomllib.loads(file.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        raise ConfigError(f"{file}: unknown section(s) {unknown}; known: {sorted(_TOP_KEYS)}")
    run = raw.get("run", {})
    unknown = sorted(set(run) - _RUN_KEYS)
    if unknown:
        raise ConfigError(f"{file}: unknown key(s) in [run]: {unknown}; known: {sorted(_RUN_KEYS)}")
    venues = raw.get("venues", {})
    for name, table in venues.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{file}: [venues.{name}] must be a table")
    return raw


def resolve(file_values: dict[str, Any] | None, overrides: dict[str, Any], base_dir: str = ".") -> RunConfig:
    """Merge a parsed config file with CLI overrides (non-None overrides win)."""
    raw = file_values or {}
    run = dict(raw.get("run", {}))
    for key, value in overrides.items():
        if value is not None:
            run[key] = value
    if not run.get("strategy"):
        raise ConfigError("no strategy: set [run] strategy or pass --strategy FILE.py:Class")
    if not run.get("data"):
        raise ConfigError("no data source: set [run] data or pass --data SOURCE")
    instruments = run.get("instruments", ())
    if isinstance(instruments, str):
        instruments = (instruments,)
    if not all(isinstance(i, str) for i in instruments):
        raise ConfigError(f"[run] instruments = {instruments!r}: expected a list of ids")
    seed = run.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"[run] seed = {seed!r}: expected an integer")
    params = run.get("params", {})
    if not isinstance(params, dict):
        raise ConfigError("[run.params] must be a table of strategy keyword arguments")
    sample_ms = run.get("sample_ms", 1000)
    if not isinstance(sample_ms, int) or sample_ms <= 0:
        raise ConfigError(f"[run] sample_ms = {sample_ms!r}: expected a positive integer")
    start_ns = parse_time(run.get("from"), "from")
    end_ns = parse_time(run.get("to"), "to")
    if start_ns is not None and end_ns is not None and end_ns <= start_ns:
        raise ConfigError(f"to ({run.get('to')}) must be after from ({run.get('from')})")
    return RunConfig(
        strategy=str(run["strategy"]),
        data=str(run["data"]),
        instruments=tuple(instruments),
        seed=seed,
        params=params,
        venues={k: dict(v) for k, v in raw.get("venues", {}).items()},
        risk=dict(raw.get("risk", {})),
        instruments_file=run.get("instruments_file"),
        start_ns=start_ns,
        end_ns=end_ns,
        out=run.get("out"),
        sample_ns=sample_ms * 1_000_000,
        base_dir=base_dir,
    )
