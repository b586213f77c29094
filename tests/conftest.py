"""Fixtures for every test, and the set-up of a parallel run (`make test`: pytest-xdist,
`-n 4 --dist loadfile`; README "Tests").

A parallel run is safe because every test writes under its own tmp_path (or a
tmp_path_factory directory) and listens on port 0; each worker is a process of its own, so
session- and module-scoped fixtures (emulators, datasets) are built once per worker."""

import decimal
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The slowest test files (seconds, measured on 2 cores), handed to the workers first: with
# `--dist loadfile` a file is one unit of work, and a long one started last would run alone
# at the end while the other workers idle (longest-first keeps the tail short). A file not
# listed keeps pytest's collection order after these; a renamed one is simply not moved.
SLOW_FIRST = (
    "tests/modes/test_stress_library.py",
)


def pytest_configure(config):
    """In the controller of a parallel run, compile (or load) numba's kernels once before the
    workers start: in a clean clone each worker would otherwise JIT the same kernels at the
    same time (about a minute of CPU each). numba writes its cache files atomically, so the
    workers then only load them."""
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        from venues.sim import warmup

        warmup()


def pytest_collection_modifyitems(config, items):
    """In a parallel run's workers, the files of SLOW_FIRST first (stable otherwise; every
    worker collects the same order, as xdist requires)."""
    if not hasattr(config, "workerinput"):
        return
    rank = {path: k for k, path in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


@pytest.fixture
def tickparity_bin():
    """The installed console script of this virtualenv."""
    return str(Path(sys.executable).parent / "tickparity")


@pytest.fixture
def root():
    return ROOT


@pytest.fixture(autouse=True)
def _fresh_decimal_context():
    """Each test starts with Python's default decimal context: ccxt, called in a test's
    thread, sets ROUND_HALF_UP and traps Underflow process-wide (a CLI process never runs a
    report after it). Code that must not depend on the context has its own test for that."""
    decimal.setcontext(decimal.Context())
    yield
