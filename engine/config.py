"""Run configuration: one TOML file for every mode, flags override it.

Why frozen and strict: a typo in a risk limit or venue key must stop the run with the
key's name, not be ignored; and a run is identified by a stable hash of its resolved
config, so two runs with the same hash (and data) must produce the same fills.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from engine.errors import ConfigError, file_problem

#: A config schema: key -> None (a value), a nested schema (a sub-table whose keys are
#: checked too), or FREE_TABLE (a table whose keys are names the user picks, e.g. assets).
FREE_TABLE = "free table"
Schema = dict[str, Any]

RUN_SCHEMA: Schema = {
    "strategy": None, "data": None, "instruments": None, "seed": None, "params": FREE_TABLE,
    "from": None, "to": None, "out": None, "instruments_file": None, "sample_ms": None,
}
#: `[venues.X]` keys are checked by the function the mode runner passes to `check_run`
#: (the engine does not know the venue models); `[risk]` keys are RiskConfig's fields.
TOP_SCHEMA: Schema = {"run": RUN_SCHEMA, "venues": FREE_TABLE, "risk": FREE_TABLE}


def did_you_mean(name: str, valid: Iterable[str]) -> str:
    """'; did you mean 'x'?' for the closest valid name(s) by difflib's ratio, else ''."""
    scored = [(difflib.SequenceMatcher(None, name, v).ratio(), v) for v in sorted(valid)]
    best = max((score for score, _ in scored), default=0.0)
    # the best match, and any other as close (0.6 is difflib.get_close_matches' cutoff)
    close = [v for score, v in scored if score >= 0.6 and score >= best - 0.05]
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def check_keys(table: Mapping[str, Any], schema: Schema, where: str) -> None:
    """Raise ConfigError naming the first key of `table` (recursively) that `schema` lacks.

    `where` is the table's path as the user wrote it, e.g. ``run.toml: [venues.binance]``;
    the message lists the valid keys and the difflib close matches.
    """
    for key, value in table.items():
        if key not in schema:
            raise ConfigError(f"{where} {key}: unknown key{did_you_mean(key, schema)} "
                              f"(valid keys: {', '.join(sorted(schema))})")
        sub = schema[key]
        if isinstance(sub, dict):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where} {key} = {value!r}: expected a table")
            check_keys(value, sub, _sub_where(where, key))
        elif sub == FREE_TABLE and not isinstance(value, Mapping):
            raise ConfigError(f"{where} {key} = {value!r}: expected a table")


def _sub_where(where: str, key: str) -> str:
    """'f.toml: [venues.binance]' + 'latency' -> 'f.toml: [venues.binance.latency]'."""
    if where.endswith("]"):
        return f"{where[:-1]}.{key}]"
    return f"{where} [{key}]".strip()


#: [run] keys whose command-line flag is not simply --key
_FLAGS = {"instruments": "--instrument", "instruments_file": "--instruments"}


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """The resolved configuration of one run (after file + flags).

    `params` are the values as given (Decimal for every number with a fraction, from its
    text); the strategy's effective parameters, defaults included, come from
    `engine.loader.effective_params`. `config_file` and `cli_keys` only serve error messages
    (which file or flag a value came from) and are not part of the run's identity.
    """

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
    config_file: str | None = None
    cli_keys: frozenset[str] = frozenset()  # "seed", "params.qty", ... given as flags

    def to_json(self) -> dict[str, Any]:
        """The configuration as written to config.json (Decimals as their text)."""
        data = asdict(self)
        data["instruments"] = list(self.instruments)
        for private in ("base_dir", "config_file", "cli_keys"):
            data.pop(private)
        return jsonable(data)

    @contextmanager
    def naming_file(self) -> Iterator[None]:
        """Inside: a ConfigError that does not name the config file gets it in front
        ('run.toml: [venues.binance] leverage = 'x': ...').

        Why: the venue-table and risk parsers know the table and key but not the file the
        table came from; every command that takes `--config` (backtest, paper, testnet,
        live, emulator, stress's strategy configs) wraps them in this, so every error from a
        config file names the file and the key. No-op without a config file."""
        try:
            yield
        except ConfigError as exc:
            if self.config_file and not str(exc).startswith(str(self.config_file)):
                raise type(exc)(f"{self.config_file}: {exc}") from None
            raise

    def param_where(self, key: str) -> str:
        """Where strategy parameter `key` came from ('--param qty' or 'f.toml: [run.params] qty')."""
        return self.where(f"params.{key}")

    def where(self, path: str) -> str:
        """Where a key came from, for error messages: '--param qty', '--seed' or
        'run.toml: [run.params] qty' (path is dotted: 'params.qty', 'seed', 'venues.x')."""
        if path in self.cli_keys:
            table, _, key = path.rpartition(".")
            return f"--param {key}" if table == "params" else _FLAGS.get(path, f"--{path.replace('_', '-')}")
        prefix = f"{self.config_file}: " if self.config_file else ""
        table, _, key = path.rpartition(".")
        if path.startswith("venues.") and path.count(".") == 1:
            return f"{prefix}[{path}]"
        if table in ("", "params"):
            return f"{prefix}[run{'.' + table if table else ''}] {key}"
        return f"{prefix}[{table}] {key}"


def check_run(config: RunConfig, *, venues: Iterable[str], venue_schema: Callable[[str], Schema],
              risk_keys: Iterable[str]) -> None:
    """Check every table of the run config against the run itself (before any output).

    `venues` are the venues the run's instruments trade on: a `[venues.X]` table for any
    other venue is an error (a typo like `[venues.binanse]` would otherwise run silently
    with zero fees and latency). `venue_schema(name)` gives the valid keys of that venue's
    table (the mode runner knows the venue models; the engine does not import them).
    Strategy parameters are checked by `engine.loader.effective_params`.
    Raises ConfigError naming the file and key path and listing the valid names.
    """
    in_run = sorted(dict.fromkeys(venues))
    for name, table in config.venues.items():
        where = config.where(f"venues.{name}")
        if name not in in_run:
            raise ConfigError(
                f"{where}: no instrument of this run trades on venue {name!r}{did_you_mean(name, in_run)} "
                f"(venues in this run: {', '.join(in_run) or 'none'})")
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where}: expected a table")
        check_keys(table, venue_schema(name), where)
    prefix = f"{config.config_file}: " if config.config_file else ""
    check_keys(config.risk, dict.fromkeys(risk_keys), f"{prefix}[risk]")


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes (hex); ConfigError when it cannot be read."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    return digest.hexdigest()


def run_identity(resolved: Mapping[str, Any], files: Mapping[str, str | Path]) -> tuple[str, dict[str, Any]]:
    """The run id: 16 hex digits of sha256 over the resolved configuration (defaults
    filled in) and the sha256 of every file the run reads its setup from.

    Why the files: editing a strategy, an instruments file or a latency file changes the
    results, so it must change the id (and the default run directory `runs/<id>`), or a
    new run would silently overwrite an old one that it does not reproduce. Paths are not
    hashed, contents are. `files` maps a role ('strategy', 'instruments', 'venues.binance.
    latency', ...) to a path; returns (run_id, {role: {"path", "sha256"}}).
    """
    digests = {role: {"path": str(path), "sha256": file_digest(path)} for role, path in sorted(files.items())}
    body = {"config": jsonable(dict(resolved)), "files": {role: d["sha256"] for role, d in digests.items()}}
    blob = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16], digests


def jsonable(value: Any) -> Any:
    """Decimals as their exact text, tuples as lists, recursively (for JSON and hashing)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


#: an ISO time's fractional seconds, taken apart so that all 9 digits count: datetime holds
#: microseconds and `fromisoformat` drops digits 7-9 without a word
_ISO_FRACTION = re.compile(r"^(?P<head>.*\d)[.,](?P<frac>\d+)(?P<tail>Z|[+-]\d{2}(?::?\d{2}(?::?\d{2})?)?)?$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_time(value: str | int | None, field_name: str) -> int | None:
    """ISO-8601 (UTC if no zone) or integer ns -> int ns since the epoch, exact to the ns.

    Why exact: a recorded session's times are ns (its market.duckdb, latency.csv), and a
    backtest of its period must start where it started; 2026-12-01T12:00:00.123456789Z is
    ...123456789 ns, not ...123456000. More than 9 fractional digits (below a ns) is an
    error, not a rounding. Raises ConfigError naming `field_name`."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ConfigError(f"{field_name} = {value!r}: expected ISO time like 2024-08-08T23:55:00Z or integer ns")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    frac_ns = 0
    match = _ISO_FRACTION.match(text)
    if match is not None:
        digits = match["frac"]
        if len(digits) > 9:
            raise ConfigError(f"{field_name} = {value!r}: {len(digits)} fractional digits; times are exact to the "
                              "ns (at most 9)")
        frac_ns = int(digits.ljust(9, "0"))
        text = match["head"] + (match["tail"] or "")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{field_name} = {value!r}: expected ISO time like 2024-08-08T23:55:00Z or "
                          "2024-08-08T23:55:00.123456789Z, or integer ns") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000 + frac_ns


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a run config TOML file and check its table and key names.

    Numbers with a fraction or exponent are read as `Decimal` from their text
    (`parse_float=Decimal`): `qty = 0.01` reaches the strategy as Decimal('0.01'), never
    through a binary float. Raises ConfigError naming the file and the key path.
    """
    file = Path(path)
    if (problem := file_problem(file)) is not None:
        raise ConfigError(f"config file {problem}: {file}")
    try:
        raw = tomllib.loads(file.read_text(), parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{file}: not a UTF-8 text file") from None
    check_keys(raw, TOP_SCHEMA, f"{file}:")
    for name, table in raw.get("venues", {}).items():
        if not isinstance(table, dict):
            raise ConfigError(f"{file}: [venues.{name}] must be a table")
    return raw


#: the `[venues.X] latency` keys that name a file (a session's latency.csv, feed_latency.csv,
#: report_latency.csv, or an empirical model's samples)
LATENCY_FILE_KEYS = ("file", "feed_file", "report_file")


def config_path(value: str | Path, base_dir: str | Path) -> Path:
    """A path a config file gives: an absolute one as it is, a relative one from the config
    file's folder (`RunConfig.base_dir`; "." for a config built from flags alone). Why: a
    config names its files relative to itself, so the run reads the same files whichever
    directory it is started from; the latency files were read from the working directory."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else Path(base_dir) / path


def with_config_paths(venue: str, table: Mapping[str, Any], base_dir: str | Path) -> dict[str, Any]:
    """A `[venues.<venue>]` table whose latency files (LATENCY_FILE_KEYS) are resolved with
    `config_path`, a copy (the config as written stays what config.json records). A file
    that is not there is refused here, in one line naming the key and the resolved path."""
    lat = table.get("latency")
    if not isinstance(lat, Mapping) or not any(isinstance(lat.get(k), str) and lat.get(k) for k in LATENCY_FILE_KEYS):
        return dict(table)
    resolved = dict(lat)
    for key in LATENCY_FILE_KEYS:
        value = lat.get(key)
        if not isinstance(value, str) or not value:
            continue  # a wrong type is the table parser's to name
        path = config_path(value, base_dir)
        if (problem := file_problem(path)) is not None:
            where = "" if Path(value).expanduser().is_absolute() else (
                f": {path.absolute()} (a relative path is read from the config file's folder)")
            raise ConfigError(f"[venues.{venue}] latency.{key} = {value!r}: file {problem}{where}")
        resolved[key] = str(path)
    return dict(table) | {"latency": resolved}


def resolve(file_values: dict[str, Any] | None, overrides: dict[str, Any], base_dir: str = ".",
            config_file: str | None = None) -> RunConfig:
    """Merge a parsed config file with CLI overrides (non-None overrides win).

    `overrides` holds `[run]` keys; a `params` override is merged key by key into the
    file's `[run.params]`. Raises ConfigError naming the key (file and table, or the flag).
    """
    raw = file_values or {}
    run = dict(raw.get("run", {}))
    run["params"] = dict(run.get("params", {}))
    cli_keys: set[str] = set()
    for key, value in overrides.items():
        if value is None:
            continue
        if key == "params":
            run["params"].update(value)
            cli_keys.update(f"params.{k}" for k in value)
        else:
            run[key] = value
            cli_keys.add(key)
    probe = RunConfig(strategy="", data="", config_file=config_file, cli_keys=frozenset(cli_keys))
    where = probe.where
    if not run.get("strategy"):
        raise ConfigError("no strategy: set [run] strategy or pass --strategy FILE.py:Class")
    if not run.get("data"):
        raise ConfigError("no data source: set [run] data or pass --data SOURCE")
    instruments = run.get("instruments", ())
    if isinstance(instruments, str):
        instruments = (instruments,)
    if not isinstance(instruments, (list, tuple)) or not all(isinstance(i, str) for i in instruments):
        raise ConfigError(f"{where('instruments')} = {instruments!r}: expected a list of ids")
    seed = run.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**63:
        raise ConfigError(f"{where('seed')} = {seed if isinstance(seed, Decimal) else repr(seed)}: expected an integer from 0 to 2**63-1")
    sample_ms = run.get("sample_ms", 1000)
    if not isinstance(sample_ms, int) or isinstance(sample_ms, bool) or sample_ms <= 0:
        raise ConfigError(f"{where('sample_ms')} = {sample_ms!r}: expected a positive integer")
    start_ns = parse_time(run.get("from"), where("from"))
    end_ns = parse_time(run.get("to"), where("to"))
    if start_ns is not None and end_ns is not None and end_ns <= start_ns:
        raise ConfigError(f"to ({run.get('to')}) must be after from ({run.get('from')})")
    return RunConfig(
        strategy=str(run["strategy"]),
        data=str(run["data"]),
        instruments=tuple(instruments),
        seed=seed,
        params=run["params"],
        venues={k: dict(v) for k, v in raw.get("venues", {}).items()},
        risk=dict(raw.get("risk", {})),
        instruments_file=run.get("instruments_file"),
        start_ns=start_ns,
        end_ns=end_ns,
        out=run.get("out"),
        sample_ns=sample_ms * 1_000_000,
        base_dir=base_dir,
        config_file=config_file,
        cli_keys=frozenset(cli_keys),
    )


def parse_decimal(value: Any, where: str, *, floats: bool = False, unit: str = "number") -> Decimal:
    """A config number read by its written digits; TOML floats only with `floats` (fee rates
    such as 7.5, whose binary error Decimal(str(x)) drops), never for money."""
    if isinstance(value, bool):
        raise ConfigError(f"{where} = {value!r}: expected a {unit}")
    if isinstance(value, float) and not floats:
        raise ConfigError(f"{where} = {value!r}: write it as a quoted decimal string")
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(f"{where} = {value!r}: expected a {unit}") from None
    if not result.is_finite():
        raise ConfigError(f"{where} = {value!r}: must be finite")
    return result


def read_toml_file(path: str | Path, what: str) -> dict[str, Any]:
    """A TOML file's top-level tables; ConfigError names the file when it is missing
    ('<what> file not found: PATH') or not valid TOML. One reader for every settings file
    (venue profiles, emulator accounts and faults)."""
    file = Path(path)
    if (problem := file_problem(file)) is not None:  # a directory raised IsADirectoryError: "internal error"
        raise ConfigError(f"{what} file {problem}: {file}")
    try:
        return tomllib.loads(file.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None
