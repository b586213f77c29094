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
