"""Scenario files: the model and the strict TOML loader (format: docs/scenarios.md).

A scenario is base data (a dataset window or the synthetic generator with a seed, or the
run's own data), timed perturbations and invariants. `load_scenario(path)` validates the
whole file up front -- every key, every perturbation and invariant constructed once -- so a
typo stops the run with the file and key named before anything is replayed. Kinds are the
built-ins (scenarios.perturbations, scenarios.invariants) or a user class by import path
(`kind = "package.module:Class"` or `"file.py:Class"`, relative to the scenario file).
"""

from __future__ import annotations

import inspect
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from engine.config import RunConfig, parse_time
from engine.errors import ConfigError, TickparityError, file_problem
from engine.ledger import QuoteMarks
from engine.loader import load_class
from engine.types import Instrument
from scenarios.feed import (
    BookMapper,
    BookPerturbation,
    FeedPerturbation,
    StreamPerturbation,
    check_feed,
)
from scenarios.invariants import BUILTIN_INVARIANTS, PLANNED_INVARIANTS, Invariant
from scenarios.perturbations import BUILTIN_PERTURBATIONS, PLANNED_PERTURBATIONS, Depeg
from scenarios.venue import VENUE_FAULT_KINDS, VenueFaultPerturbation
from venues.faults import FAULT_KEYS, SIM_KINDS

PERTURBATION_KINDS = {**BUILTIN_PERTURBATIONS, **VENUE_FAULT_KINDS}

_TOP_KEYS = {"scenario", "calibration", "base", "perturbations", "invariants"}
_SCENARIO_KEYS = {"name", "description", "allow_invalid_feed"}
_CALIBRATION_KEYS = {"event", "date", "venue", "certainty", "figures", "sources", "notes"}
_BASE_KEYS = {"data", "from", "to"}
RUN_DATA = "run"  # [base] data = "run": replay the strategy config's own data


@dataclass(frozen=True)
class Base:
    """Base data: `data` is a source spec (synthetic:SEED:DURATION, duckdb:PATH, ...) or
    "run"; `start_ns`/`end_ns` a window of it."""

    data: str
    start_ns: int | None = None
    end_ns: int | None = None

    @property
    def uses_run_data(self) -> bool:
        return self.data == RUN_DATA

    def key(self) -> tuple[str, int | None, int | None]:
        return (self.data, self.start_ns, self.end_ns)


@dataclass(frozen=True)
class Component:
    """A perturbation or invariant of the file: its class and keyword arguments."""

    kind: str
    cls: type
    params: dict[str, Any]
    where: str  # "FILE [[perturbations]] #2", for messages

    def build(self) -> Any:
        try:
            return self.cls(**self.params)
        except TickparityError as exc:
            raise ConfigError(f"{self.where} ({self.kind}): {exc}") from None


@dataclass(frozen=True)
class Scenario:
    name: str
    path: Path
    description: str
    calibration: dict[str, Any]
    base: Base
    perturbations: tuple[Component, ...]
    invariants: tuple[Component, ...]
    allow_invalid_feed: bool = False

    def run_config(self, config: RunConfig) -> RunConfig:
        """The strategy's run config on this scenario's base data (the scenario wins unless
        its base is "run")."""
        if self.base.uses_run_data:
            return config
        return replace(config, data=self.base.data, start_ns=self.base.start_ns, end_ns=self.base.end_ns)

    def build_invariants(self) -> list[Invariant]:
        out = []
        for c in self.invariants:
            inv = c.build()
            if inv.name == Invariant.name:  # a user class without its own name: its kind
                inv.name = c.kind
            out.append(inv)
        return out

    def _feed_perturbations(self, fault_effects: bool = True) -> list[FeedPerturbation]:
        out: list[FeedPerturbation] = []
        for c in self.perturbations:
            p = c.build()
            if isinstance(p, VenueFaultPerturbation):
                out.extend(p.feed_effects() if fault_effects else [])
            else:
                out.append(p)
        return out

    def feed_transform(self, fault_effects: bool = True):
        """A `run_backtest(feed_transform=...)` callable applying the feed perturbations
        (and what the venue faults imply for the feed, scenarios.venue, unless
        `fault_effects` is False: the exchange emulator acts out its faults itself), or None
        when there are none (the base data is replayed as is)."""
        if not self._feed_perturbations(fault_effects):
            return None
        label = f"scenario {self.name}"

        def transform(chunks: Iterable[np.ndarray], instruments: Mapping[str, Instrument]) -> Iterator[np.ndarray]:
            return apply_perturbations(chunks, list(instruments.values()), self._feed_perturbations(fault_effects),
                                       allow_invalid=self.allow_invalid_feed, label=label)

        return transform

    def quote_marks(self) -> QuoteMarks | None:
        """Marks of the quote assets a `depeg` moves, for `run_backtest(quote_marks=...)`
        (equity in the reporting currency), or None when the scenario has no depeg."""
        depegs = [p for p in (c.build() for c in self.perturbations) if isinstance(p, Depeg)]
        if not depegs:
            return None
        currencies = sorted({d.currency for d in depegs})
        if len(currencies) > 1:
            raise ConfigError(f"scenario {self.name}: depegs report in one currency, not {currencies}")
        assets = [d.asset for d in depegs]
        if len(set(assets)) != len(assets):
            raise ConfigError(f"scenario {self.name}: one depeg per asset ({assets})")
        return QuoteMarks(currencies[0], {d.asset: d.mark_points() for d in depegs})

    def moves_nothing(self, instruments: list[Instrument]) -> bool:
        """True when the scenario changes nothing in a run on `instruments` (run order): no
        venue fault, no depeg, and every feed perturbation applies to none of them (a
        `basis_blowout` on a run without a perpetual). Such a run is the unperturbed base
        run, row for row, so `tickparity stress` checks the invariants on the base run
        instead of replaying it again."""
        if self.venue_faults() or self.quote_marks() is not None:
            return False
        for p in self._feed_perturbations():
            p.bind(0, instruments)
            if getattr(p, "indices", None) != []:
                return False
        return True

    def venue_faults(self) -> list:
        """The venue faults for `run_backtest(venue_faults=...)` (venues.sim.faults.VenueFault),
        fresh for each run."""
        return [p.venue_fault() for p in (c.build() for c in self.perturbations)
                if isinstance(p, VenueFaultPerturbation)]


def apply_perturbations(chunks: Iterable[np.ndarray], instruments: list[Instrument],
                        perturbations: list[FeedPerturbation], *, allow_invalid: bool = False,
                        label: str = "scenario") -> Iterator[np.ndarray]:
    """Apply feed perturbations to a chunk stream (run order of `instruments`).

    Offsets count from the first row's local_ts. Book perturbations compose in one pass
    (scenarios.feed.BookMapper), then stream perturbations apply in file order; the output is
    checked (sorted time, no negative quantity, no price <= 0) unless `allow_invalid`.
    """
    it = iter(chunks)
    first = None
    for chunk in it:
        if len(chunk):
            first = chunk
            break
    if first is None:
        return
    t0 = int(first["local_ts"][0])
    for p in perturbations:
        p.bind(t0, instruments)

    def replay() -> Iterator[np.ndarray]:
        last = int(first["local_ts"][-1])
        yield first
        for chunk in it:
            if len(chunk):
                last = int(chunk["local_ts"][-1])
            yield chunk
        # a perturbation that starts after the data's last row changes nothing: the cell
        # would pass on an unperturbed run (an `at` beyond the data's span is a mistake)
        for k, p in enumerate(perturbations, start=1):
            start = getattr(p, "start_ts", None)
            if start is not None and start > last:
                raise ConfigError(f"{label}: perturbation #{k} ({type(p).__name__}) starts at "
                                  f"+{(start - t0) / 1e9:g} s, after the data's last row at "
                                  f"+{(last - t0) / 1e9:g} s: it would change nothing (check its `at`)")

    stream: Iterator[np.ndarray] = replay()
    books = [p for p in perturbations if isinstance(p, BookPerturbation)]
    if books:
        stream = BookMapper(books, len(instruments), allow_invalid, label).apply(stream)
    for p in perturbations:
        if isinstance(p, StreamPerturbation):
            stream = p.apply(stream)
    if not allow_invalid:
        stream = check_feed(stream, label)
    yield from stream


def _check_keys(table: Any, allowed: set[str], where: str) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known: {sorted(allowed)}")
    return table


def _component(raw: Any, where: str, builtins: dict[str, type], planned: dict[str, str],
               base: type, base_dir: Path) -> Component:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table")
    params = dict(raw)
    kind = params.pop("kind", None)
    if not isinstance(kind, str) or not kind:
        raise ConfigError(f"{where}: missing kind (one of {sorted(builtins)} or 'package.module:Class')")
    if kind in builtins:
        cls = builtins[kind]
    elif kind in FAULT_KEYS:
        raise ConfigError(f"{where}: {kind!r} is a fault of the shared vocabulary (venues/faults.py) that the "
                          f"simulated venue does not model; it models {sorted(SIM_KINDS)}")
    elif kind in planned:
        raise ConfigError(f"{where}: kind {kind!r} is not available yet: it needs {planned[kind]} "
                          "(docs/scenarios.md, 'Not yet')")
    elif ":" in kind:
        try:
            cls = load_class(kind, base_dir)
        except TickparityError as exc:
            raise ConfigError(f"{where}: kind {kind!r}: {exc}") from None
        if not issubclass(cls, base):
            raise ConfigError(f"{where}: {kind} must subclass {base.__module__}.{base.__name__}")
    else:
        raise ConfigError(f"{where}: unknown kind {kind!r}; built-in: {sorted(builtins)}, "
                          "or a user class as 'package.module:Class'")
    try:
        inspect.signature(cls).bind(**params)
    except TypeError as exc:
        accepted = [n for n, p in inspect.signature(cls).parameters.items()
                    if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
        raise ConfigError(f"{where} ({kind}): {exc}; accepted keys: {accepted}") from None
    component = Component(kind, cls, params, where)
    component.build()  # validate every value now, before any run starts
    return component


def load_scenario(path: str | Path) -> Scenario:
    """Parse and validate a scenario file; raises ConfigError naming the file and key."""
    file = Path(path)
    if (problem := file_problem(file)) is not None:
        raise ConfigError(f"scenario file {problem}: {file}")
    try:
        raw = tomllib.loads(file.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    _check_keys(raw, _TOP_KEYS, str(file))
    head = _check_keys(raw.get("scenario", {}), _SCENARIO_KEYS, f"{file} [scenario]")
    calibration = _check_keys(raw.get("calibration", {}), _CALIBRATION_KEYS, f"{file} [calibration]")
    base_raw = _check_keys(raw.get("base", {}), _BASE_KEYS, f"{file} [base]")
    data = base_raw.get("data", RUN_DATA)
    if not isinstance(data, str) or not data:
        raise ConfigError(f"{file} [base] data = {data!r}: expected a source spec or \"run\"")
    if data == RUN_DATA and ("from" in base_raw or "to" in base_raw):
        raise ConfigError(f"{file} [base]: from/to need a data source; with data = \"run\" the run's window is used")
    start = parse_time(base_raw.get("from"), f"{file} [base] from")
    end = parse_time(base_raw.get("to"), f"{file} [base] to")
    if start is not None and end is not None and end <= start:
        raise ConfigError(f"{file} [base]: to must be after from")
    name = head.get("name", file.stem)
    if not isinstance(name, str) or not name.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"{file} [scenario] name = {name!r}: use letters, digits, '-' and '_'")
    allow_invalid = head.get("allow_invalid_feed", False)
    if not isinstance(allow_invalid, bool):
        raise ConfigError(f"{file} [scenario] allow_invalid_feed = {allow_invalid!r}: expected true or false")
    perturbations = raw.get("perturbations", [])
    invariants = raw.get("invariants", [])
    if not isinstance(perturbations, list) or not isinstance(invariants, list):
        raise ConfigError(f"{file}: write perturbations and invariants as [[perturbations]] and [[invariants]] tables")
    base_dir = file.parent
    return Scenario(
        name=name,
        path=file,
        description=str(head.get("description", "")),
        calibration=dict(calibration),
        base=Base(data, start, end),
        perturbations=tuple(
            _component(p, f"{file} [[perturbations]] #{k + 1}", PERTURBATION_KINDS, PLANNED_PERTURBATIONS,
                       FeedPerturbation, base_dir) for k, p in enumerate(perturbations)),
        invariants=tuple(
            _component(v, f"{file} [[invariants]] #{k + 1}", BUILTIN_INVARIANTS, PLANNED_INVARIANTS,
                       Invariant, base_dir) for k, v in enumerate(invariants)),
        allow_invalid_feed=allow_invalid,
    )
