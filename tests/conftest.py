"""Fixtures for every test, and the set-up of a parallel run (`make test`: pytest-xdist,
`-n 4 --dist loadfile`; README "Quick start").

A parallel run is safe because every test writes under its own tmp_path (or a
tmp_path_factory directory) and listens on port 0; each worker is a process of its own, so
session- and module-scoped fixtures (emulators, datasets) are built once per worker."""

import decimal
import sys
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parents[1]

# Property tests check rules, never speed (speed targets live in bench/): no per-example
# deadline, which a loaded 2-core CI machine missed (a 724 ms example against 200 ms).
# A test's own @settings(...) inherits this.
settings.register_profile("tickparity", deadline=None)
settings.load_profile("tickparity")

# The slowest test files (measured), handed to the workers first: a file is one unit of work,
# and a long one started last would run alone at the end while the other workers idle
# (longest first keeps the tail short). A file not listed keeps pytest's collection order
# after these; a renamed one is simply not moved.
SLOW_FIRST = (
    "tests/modes/test_stress_library.py",
    "tests/modes/test_modes_stress_ray.py",
)
# Files whose sessions run on the wall clock (emulators at speed 1 or 5, ccxt timeouts, a
# child CLI with a deadline): one unit of work together, so at most one of them runs at a time
# and they never starve each other of CPU (a parallel run on a loaded 2-core machine timed
# out four of them when they ran side by side).
REALTIME = ("tests/modes/live/", "tests/modes/test_emulator_cmd.py", "tests/modes/test_stress_via_emulator.py")


def pytest_configure(config):
    """In the controller of a parallel run, compile (or load) numba's kernels once before the
    workers start: in a clean clone each worker would otherwise JIT the same kernels at the
    same time (about a minute of CPU each). numba writes its cache files atomically, so the
    workers then only load them."""
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        from venues.sim import warmup

        warmup()


@pytest.hookimpl(optionalhook=True)  # a venv without pytest-xdist still runs the tests serially
def pytest_xdist_make_scheduler(config, log):
    """`--dist loadfile` with one change: the REALTIME files are one unit of work together
    (xdist's own `loadgroup` marks do not reach its scheduler under pytest 9: it renames a
    private attribute that pytest 9 no longer reads)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class _Scheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = super()._split_scope(nodeid)
            return "realtime" if path.startswith(REALTIME) else path

    return _Scheduling(config, log)


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

