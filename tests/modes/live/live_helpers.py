"""Helpers for the live-mode tests (see conftest.py)."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
ALICE = {"account": "alice", "api_key_env": "TP_TEST_KEY", "secret_env": "TP_TEST_SECRET"}


def wait_until(what: str, check: Callable[[], Any], timeout_s: float = 15.0, poll_s: float = 0.05) -> Any:
    """Poll `check` until it returns something true and return that; AssertionError naming
    `what` after `timeout_s` (a session on another thread, an emulator on a real clock)."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(poll_s)



def session_config(emu, strategy: str = "examples/market_maker.py:MarketMaker", params: dict | None = None,
                   instruments=("binance:BTC/USDT",), venue: dict | None = None, base_dir: str | Path = ROOT):
    """A run config as a user writes it, pointed at the emulator."""
    from engine.config import resolve

    table = {"url": emu.url, **ALICE, "balances": {"USDT": "10000000", "BTC": "100"}, **(venue or {})}
    return resolve({"run": {"strategy": strategy, "data": "synthetic:11:30m", "instruments": list(instruments),
                            "params": params or {}},
                    "venues": {"binance": table}}, {}, base_dir=str(base_dir))


def write_session_toml(path: Path, emu, *, params: str, keys: bool = True) -> Path:
    """A run config file as a user writes it: the example market maker on the emulator."""
    credentials = '\naccount = "alice"\napi_key_env = "TP_TEST_KEY"\nsecret_env = "TP_TEST_SECRET"' if keys else ""
    path.write_text(f'''[run]
strategy = "{ROOT / 'examples' / 'market_maker.py'}:MarketMaker"
instruments = ["binance:BTC/USDT"]
[run.params]
{params}
[venues.binance]
url = "{emu.url}"{credentials}
balances = {{ USDT = "10000000", BTC = "100" }}
''')
    return path


def two_venue_config(emus: dict, strategy: str, params: dict | None = None, *, base: dict | None = None,
                     base_dir: str | Path = ROOT):
    """A two-venue run config as a user writes it: `emus` = {"binance": emulator, "okx":
    emulator}, each venue's table pointed at its own emulator (a venue other than binance
    names `exchange = "binance"`: the emulator speaks Binance's dialect). `base`: the
    example's own config values (its [venues.X] tables are kept, url and keys added)."""
    from engine.config import resolve

    values = copy.deepcopy(base) if base else {
        "run": {"strategy": strategy, "data": "synthetic:11:30m", "instruments": [f"{v}:BTC/USDT" for v in emus],
                "params": params or {}}}
    values["run"]["instruments"] = [f"{v}:BTC/USDT" for v in emus]
    if params is not None:
        values["run"]["params"] = params
    values["run"]["strategy"] = strategy
    values["run"].pop("out", None)
    for venue, emu in emus.items():
        table = values.setdefault("venues", {}).setdefault(venue, {})
        table.update({"url": emu.url, **ALICE})
        if venue != "binance":
            table["exchange"] = "binance"
        table.setdefault("balances", {"USDT": "10000000", "BTC": "100"})
    return resolve(values, {}, base_dir=str(base_dir))


#: a strategy file (written to a test's folder): one bid far below the market, left resting
RESTER = '''
from decimal import Decimal
from engine import Strategy


class Rester(Strategy):
    """One bid far below the market, never cancelled: what a killed session leaves open, and
    what a shutdown's cancel meets first."""

    def on_start(self, ctx):
        self.sent = False
        ctx.schedule(every_ns=200_000_000)

    def on_timer(self, ctx, ts):
        inst = ctx.instruments[0]
        book = ctx.book(inst)
        if not self.sent and book.best_bid is not None:
            self.sent = True
            ctx.submit(inst, "buy", Decimal("0.001"), ctx.instrument(inst).round_price(book.best_bid * Decimal("0.8")))
'''
