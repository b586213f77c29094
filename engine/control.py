"""The control inbox of a running session: operator commands as files in its run directory.

Why files: `tickparity kill RUN` must reach a session that may be busy, remote over ssh, or
wedged in a venue call, without a socket or a daemon. A command is one JSON file written
to `RUN/control/tmp/` and renamed into `RUN/control/inbox/` (a rename is atomic on one file
system, so a reader never sees half a command); the session's `poll_control()` applies the
files in name order (wall-clock ns, then pid) and moves each to `RUN/control/done/`, so
every command is kept. Commands: `kill` (optional flatten and slippage cap), `approve
ORDER`, `refuse ORDER`, `resume` (a reason is required); each names who and why, and the
session audits it. `RUN/control/pending.json` lists the orders waiting for approval.
The backtest attaches no inbox: it ignores the directory. See docs/risk.md.
"""

from __future__ import annotations

import getpass
import json
import os
import signal
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from engine.clock import LiveClock
from engine.errors import ConfigError, require_run_directory

COMMANDS = ("kill", "approve", "refuse", "resume")


@dataclass(frozen=True, slots=True)
class Command:
    """One operator command as read from the inbox."""

    name: str  # the file name (ordering, audit)
    command: str
    order: str | None
    who: str
    why: str
    flatten: bool = False
    max_slippage_bps: str | None = None


def default_who() -> str:
    """The operator's name for the audit log: the login name, else the uid."""
    try:
        return getpass.getuser()
    except Exception:  # no login name (a container without a passwd entry)
        return f"uid {os.getuid()}"


def check_command(command: str, *, order: str | None = None, why: str = "",
                  max_slippage_bps: str | None = None) -> None:
    """ConfigError (one line) for a malformed command: unknown command, approve/refuse
    without an order, resume without a reason, a bad slippage cap (checked before anything
    else, so the message names what the operator typed)."""
    if command not in COMMANDS:
        raise ConfigError(f"control command {command!r}: expected one of {', '.join(COMMANDS)}")
    if command in ("approve", "refuse") and not order:
        raise ConfigError(f"{command}: name the order (its client id)")
    if command == "resume" and not why.strip():
        raise ConfigError("resume: --why TEXT is required (it goes into the audit log)")
    if max_slippage_bps is not None:
        try:
            cap = Decimal(str(max_slippage_bps))
        except InvalidOperation:
            cap = Decimal("NaN")
        if not cap.is_finite() or cap < 0:
            raise ConfigError(f"--max-slippage-bps {max_slippage_bps!r}: expected a number >= 0")


class ControlInbox:
    """`RUN/control/` (see module docstring).

    A running session holds `RUN/control/session.lock` (an OS lock, `listen`), so a command
    can tell a session that reads the inbox from a directory nobody reads: a kill posted to a
    mistyped path, a finished run or a crashed session was reported "posted" and never
    applied, and the operator believed the kill switch fired. The OS drops the lock when
    the process dies (SIGKILL included), so a crash never looks like a running session."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.root = self.run_dir / "control"
        self.inbox = self.root / "inbox"
        self.done = self.root / "done"
        self.tmp = self.root / "tmp"
        self.lock_path = self.root / "session.lock"
        self._lock_fd: int | None = None

    def listen(self) -> None:
        """The session reads this inbox from now on: take `session.lock` (exclusive) and keep
        it until `close()` or the process's end; ConfigError when another session holds it."""
        import fcntl

        self.root.mkdir(parents=True, exist_ok=True)
        if self._lock_fd is None:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise ConfigError(f"{self.run_dir}: another session already reads this control inbox") from None
            self._lock_fd = fd

    def close(self) -> None:
        """The session stopped reading the inbox: release `session.lock`."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases its flock
            self._lock_fd = None

    def listening(self) -> bool:
        """Whether a running session holds this inbox's `session.lock` (this process's own
        `listen` included: flock locks of two descriptors conflict)."""
        import fcntl

        if not self.lock_path.is_file():
            return False
        fd = os.open(self.lock_path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        finally:
            os.close(fd)  # releases the probe's shared lock, if it got one
        return False

    def post(self, command: str, *, order: str | None = None, who: str | None = None, why: str = "",
             flatten: bool = False, max_slippage_bps: str | None = None) -> Path:
        """Write one command atomically; returns its path. ConfigError for a malformed one
        (`check_command`)."""
        check_command(command, order=order, why=why, max_slippage_bps=max_slippage_bps)
        require_run_directory(self.run_dir)
        body = {"command": command, "order": order, "who": who or default_who(), "why": why,
                "flatten": bool(flatten), "max_slippage_bps": None if max_slippage_bps is None else str(max_slippage_bps),
                "posted_wall_ns": LiveClock().now(), "pid": os.getpid()}  # an operator posts in real time
        for folder in (self.inbox, self.done, self.tmp):
            folder.mkdir(parents=True, exist_ok=True)
        name = f"{body['posted_wall_ns']:020d}-{os.getpid()}-{command}.json"
        staging = self.tmp / name
        staging.write_text(json.dumps(body, sort_keys=True) + "\n", encoding="utf-8")
        final = self.inbox / name
        os.replace(staging, final)
        return final

    def take(self) -> list[Command]:
        """The waiting commands in name order, each moved to done/ (a malformed file is moved
        to done/ as NAME.invalid and skipped, so one bad file cannot block the inbox)."""
        if not self.inbox.is_dir():
            return []
        commands: list[Command] = []
        for path in sorted(self.inbox.glob("*.json")):
            try:
                body: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
                command = Command(name=path.name, command=str(body["command"]), order=body.get("order"),
                                  who=str(body.get("who") or "unknown"), why=str(body.get("why") or ""),
                                  flatten=bool(body.get("flatten", False)),
                                  max_slippage_bps=body.get("max_slippage_bps"))
                if command.command not in COMMANDS:
                    raise ValueError(command.command)
            except (ValueError, KeyError, TypeError, OSError):
                os.replace(path, self.done / f"{path.name}.invalid")
                continue
            os.replace(path, self.done / path.name)
            commands.append(command)
        return commands

    def write_pending(self, client_ids: list[str]) -> None:
        """RUN/control/pending.json: the orders waiting for approval (atomic replace)."""
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self.root / "pending.json.tmp"
        staging.write_text(json.dumps({"pending_approval": client_ids}) + "\n", encoding="utf-8")
        os.replace(staging, self.root / "pending.json")

    def pending(self) -> list[str]:
        """The client ids the running session last listed as waiting for approval."""
        path = self.root / "pending.json"
        if not path.is_file():
            return []
        return list(json.loads(path.read_text(encoding="utf-8")).get("pending_approval", []))


def kill_on_sigusr1(inbox: ControlInbox) -> None:
    """Make SIGUSR1 to this process post a `kill` command into `inbox` (applied at the next
    `poll_control`): `kill -USR1 PID` works when the CLI cannot be run. Main thread only."""

    def handler(signum: int, frame: Any) -> None:
        inbox.post("kill", who=f"signal SIGUSR1 (pid {os.getpid()})", why="SIGUSR1 received")

    signal.signal(signal.SIGUSR1, handler)
