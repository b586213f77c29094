"""One session per account on this machine: an exclusive lock per (venue, account).

Why: a second testnet/live session on an account another one is trading found the first
one's orders open at the venue, carrying this engine's prefix, and adopted them as a warm
restart's leftovers (docs/live.md "Warm restart"): it cancelled them, and the first session
failed its reconciliation and refused every order to its end. Two sessions on one account
cannot both own its orders, so the second one does not start.

How: `flock` on `<state dir>/accounts/<key>.lock` (the state dir of the session stamps,
`modes.live.driver.state_dir`), taken before the live confirmation and before anything is
sent, held for the session's life. The OS releases it when the process ends however it
ends (`kill -9` included), so a crashed session never blocks the next one. The file holds
the holder's run directory and pid, for the refusal's one line. A session on the same
account from another machine takes its lock on that machine: this cannot see it.

Paper sessions take none: their orders go to the simulated venue, never to the account.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path

from engine.errors import AccountInUseError

__all__ = ["AccountInUseError", "AccountLocks", "account_key"]


def account_key(mode: str, exchange: str, url: str | None, account: str) -> str:
    """What identifies an account's orders: the venue (its URL, or without one the ccxt
    exchange's testnet or production endpoints, which are different venues) and the account
    name. "binance|http://127.0.0.1:8765|alice", "binance|testnet|alice"."""
    where = url.rstrip("/") if url else ("testnet" if mode == "testnet" else "production")
    return f"{exchange}|{where}|{account}"


def _file_name(key: str) -> str:
    """A readable, safe file name for `key`, unique by its hash."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", key)[:80]
    return f"{slug}.{hashlib.sha256(key.encode()).hexdigest()[:12]}.lock"


class AccountLocks:
    """The locks of one session's accounts (`take`), released by `release` or the process's end."""

    def __init__(self) -> None:
        self._fds: list[int] = []

    @classmethod
    def take(cls, state_dir: Path, accounts: Iterable[tuple[str, str]], run_dir: Path, mode: str) -> AccountLocks:
        """Lock each (where, key) of `accounts` (where = "[venues.binance]", key =
        `account_key`) for this process; AccountInUseError naming the holder's run directory
        and pid when another session holds one (the locks taken so far are released)."""
        import fcntl

        locks = cls()
        folder = Path(state_dir) / "accounts"
        folder.mkdir(parents=True, exist_ok=True)
        try:
            for where, key in sorted(set(accounts), key=lambda a: a[1]):
                path = folder / _file_name(key)
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    holder = _holder(path)
                    os.close(fd)
                    exchange, venue_url, account = key.split("|", 2)
                    raise AccountInUseError(
                        f"{where} account {account!r} on {exchange} ({venue_url}) is traded by another session on "
                        f"this machine: {holder}; one session per account (docs/live.md \"Warm restart\")") from None
                locks._fds.append(fd)
                body = json.dumps({"run_dir": str(Path(run_dir).resolve()), "pid": os.getpid(), "mode": mode,
                                   "account": key}).encode()
                os.ftruncate(fd, 0)
                os.pwrite(fd, body, 0)
        except BaseException:
            locks.release()
            raise
        return locks

    def release(self) -> None:
        """Close the lock files (closing a descriptor releases its flock)."""
        while self._fds:
            os.close(self._fds.pop())

    def __del__(self) -> None:  # a driver built and never run (tests) must not hold its accounts
        self.release()


def _holder(path: Path) -> str:
    """'run directory DIR, pid N' of the session holding the lock at `path`, as it wrote it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return f"run directory {data['run_dir']}, pid {data['pid']}"
    except (OSError, ValueError, KeyError, TypeError):  # the holder is between its lock and its write
        return "its run directory not yet written"
