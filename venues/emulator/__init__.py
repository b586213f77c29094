"""A local Binance spot exchange for unmodified ccxt, over any dataset, matched by venues.sim.

Public API::

    from venues.emulator import EmulatorProcess, EmulatorSettings, EmulatorThread, ccxt_config, load_accounts

See docs/emulator.md for the CLI (`tickparity emulator`), endpoints, faults and limits.
"""

from venues.emulator.accounts import Account, default_account, load_accounts
from venues.emulator.binance import BinanceServer
from venues.emulator.exchange import BinanceError, Exchange
from venues.emulator.faults import KINDS as FAULT_KINDS
from venues.emulator.faults import Fault, FaultPlan
from venues.emulator.journal import Journal, read_journal
from venues.emulator.process import EmulatorProcess
from venues.emulator.ratelimit import RateLimiter
from venues.emulator.server import (
    CCXT_OPTIONS,
    EmulatorSettings,
    EmulatorThread,
    build_server,
    ccxt_config,
)

__all__ = [
    "CCXT_OPTIONS", "FAULT_KINDS", "Account", "BinanceError", "BinanceServer", "EmulatorProcess",
    "EmulatorSettings", "EmulatorThread", "Exchange", "Fault", "FaultPlan", "Journal", "RateLimiter", "build_server",
    "ccxt_config", "default_account", "load_accounts", "read_journal",
]
