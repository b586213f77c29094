import decimal
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


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
