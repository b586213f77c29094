"""ccxt adapter tests: real async ccxt over 127.0.0.1 against the stepped emulator."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

for _dir in (Path(__file__).resolve().parents[1] / "emulator", Path(__file__).resolve().parent):
    if str(_dir) not in sys.path:
        sys.path.insert(0, str(_dir))

from emu_helpers import make_emulator  # noqa: E402


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    with make_emulator(tmp_path_factory.mktemp("emu")) as e:
        yield e
