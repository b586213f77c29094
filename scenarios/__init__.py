"""Stress scenarios: scenario files, feed perturbations and run invariants.

The public API (docs/scenarios.md):

- `load_scenario(path) -> Scenario`: parse and validate a scenario TOML file;
  `Scenario.run_config(config)` puts a strategy's run config on the scenario's base data,
  `Scenario.feed_transform()` is the hook `modes.backtest.run_backtest(feed_transform=...)`
  takes, `Scenario.build_invariants()` the checks to run on the finished run directory.
- `apply_perturbations(chunks, instruments, perturbations)`: the feed rewrite on its own.
- `RunRecords(run_dir)`, the invariant classes and `run_figures` / `cost_of_disaster`.
- Base classes to extend by import path: `BookPerturbation`, `StreamPerturbation`, `Invariant`.

Layer: imports engine, replay and venues only (tests/test_layers.py).
"""

from pathlib import Path

from scenarios.feed import BookMap, BookPerturbation, StreamPerturbation
from scenarios.invariants import (
    Invariant,
    InvariantResult,
    RunRecords,
    Violation,
    cost_of_disaster,
    run_figures,
)
from scenarios.model import Base, Scenario, apply_perturbations, load_scenario

LIBRARY_DIR = Path(__file__).parent / "library"  # the shipped scenario library

__all__ = [
    "LIBRARY_DIR",
    "Base",
    "BookMap",
    "BookPerturbation",
    "Invariant",
    "InvariantResult",
    "RunRecords",
    "Scenario",
    "StreamPerturbation",
    "Violation",
    "apply_perturbations",
    "cost_of_disaster",
    "load_scenario",
    "run_figures",
]
