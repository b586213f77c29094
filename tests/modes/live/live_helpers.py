"""Helpers for the live-mode tests (see conftest.py)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
ALICE = {"account": "alice", "api_key_env": "TP_TEST_KEY", "secret_env": "TP_TEST_SECRET"}



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
