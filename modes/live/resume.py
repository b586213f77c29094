"""Contingent orders across a live warm restart (docs/contingent-orders.md "Restart").

Why: an armed stop lives only in the engine (the venue never sees it until it triggers), so a
session that stops or crashes must leave it where the next session finds it. A testnet/live
session saves `ContingentManager.state()` to `RUN/contingent.json` whenever it changed (once
per step at most, written to a temporary file and renamed, so a crash leaves the previous
whole file; with the session's mode and venues/accounts, which a resume must match). `tickparity testnet|live --resume PREVIOUS_RUN` reads it and puts it in the
start step's journal record (`"contingent"`, with `"resume_from"`), so `run_step` restores it
before the start reconciliation — and `tickparity replay` restores the same state. The
reconciliation then adopts the restored legs' venue orders and the previous session's plain
orders it finds open and looks up by client id those it does not find open, and those
adopted that filled further meanwhile: their fills are booked once (by trade id) into the
position, and legs' groups advance as if seen live (engine/reconcile.py,
ContingentManager.restore_order / adopted). The file also holds the session's open plain
orders and the trade ids of their fills, so it is written once a session had any order.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from engine.clock import wall_time_text
from engine.durable import fsync_dir
from engine.errors import ConfigError, require_run_directory
from engine.types.instrument import decimal_str

STATE_FILE = "contingent.json"
SYNC_S = 1.0  # the saved state is fsynced at least this often while it changes (StateSaver.sync)
#: written into the previous run directory by the session that resumed it (see `claim`)
CLAIM_FILE = "resumed_by.json"


def load(previous: str | Path, config_json: dict[str, Any], mode: str) -> dict[str, Any]:
    """What a previous session of the same account left in its run directory:
    {"state": the contingent state, "positions": {instrument: [lots, cost units]}}.

    ConfigError (one line naming the file) when `previous` has no (valid) contingent.json,
    or its session ran in another mode or on other venues/accounts."""
    prev = Path(previous)
    if mode != "paper":
        require_run_directory(prev, "--resume")
    if mode == "paper":
        raise ConfigError(f"--resume {prev}: paper sessions have no venue orders to resume; use testnet or live")
    _refuse_if_claimed(prev)
    path = prev / STATE_FILE
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"--resume {prev}: no {STATE_FILE} (not a testnet/live run directory, or its session "
                          "never had an order)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"--resume {prev}: {path}: {exc}") from None
    if not isinstance(saved, dict) or not isinstance(saved.get("state"), dict) or "legs" not in saved["state"]:
        raise ConfigError(f"--resume {prev}: {path}: not a contingent state")
    if saved.get("mode") != mode:
        raise ConfigError(f"--resume {prev}: a {saved.get('mode')} session; this one is {mode}")
    was, now = saved.get("venues"), _accounts(config_json)
    if was != now:
        raise ConfigError(f"--resume {prev}: its venues/accounts {was} differ from this session's {now}")
    return {"state": saved["state"], "positions": saved.get("positions", {})}


def claim(previous: str | Path, out: str | Path) -> None:
    """Mark `previous` as resumed by the session writing `out`: `previous/resumed_by.json`
    ({"by": out, "at": UTC time}), created exclusively and made durable.

    Why: the contingent state of a run is taken over once. The session that resumed it owns
    those orders from its start step on (it re-arms the stops, adopts the venue orders, saves
    the state in its own run directory, and may trigger, fill or cancel them); a second
    resume of the same run would re-arm the same stops and adopt the same venue orders a
    second time (a stop that already fired would fire again). So `load` refuses a claimed
    run and names the session to resume instead (the latest of the chain). Called by the
    live driver just before the start step (not in `load`): a session that fails before it
    restores anything (preflight, no market) leaves the previous run resumable. The
    exclusive create makes two sessions racing to resume one run fail the second.
    Raises ConfigError (one line) when the run was claimed meanwhile."""
    prev = Path(previous)
    path = prev / CLAIM_FILE
    body = json.dumps({"by": str(Path(out).resolve()), "at": wall_time_text()}, sort_keys=True).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:  # another session resumed it since `load`
        raise ConfigError(_claimed(prev) or f"--resume {prev}: already resumed ({path})") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(body)
        fh.flush()
        os.fsync(fh.fileno())
    fsync_dir(prev)


def crashed_next_step(run: str | Path) -> str:
    """What to do about the orders of a session that ended without its stop (killed,
    crashed), checked against its run directory: the `--resume` command only when `load`
    would accept it (a testnet/live session's contingent.json, not yet claimed), with the
    session's own mode and config file; otherwise why there is nothing to resume.

    Why: `tickparity kill` on a crashed session suggested `--resume RUN` for every run,
    and that resume was then refused (`no contingent.json`) for a session that never had
    an order, a paper session, or a run another session had already resumed."""
    run = Path(run)
    claim = _claimed_by(run)
    if claim is not None:
        return f"it was resumed by {claim[0]}"
    header: dict[str, Any] = {}
    try:
        with (run / "session.jsonl").open(encoding="utf-8") as fh:
            header = json.loads(fh.readline())
    except (OSError, ValueError):
        pass
    mode = header.get("mode") if isinstance(header, dict) else None
    if mode == "paper":
        return "a paper session has no venue orders to take over: start a new session"
    if not (run / STATE_FILE).is_file():
        return (f"it left no {STATE_FILE} (it never had an order), so nothing is open at the venue "
                "and there is nothing to resume: start a new session")
    try:  # the mode `load` checks (the journal's header may not have reached the disk yet)
        saved = json.loads((run / STATE_FILE).read_text(encoding="utf-8"))
        mode = saved.get("mode", mode) if isinstance(saved, dict) else mode
    except (OSError, ValueError):
        pass
    config = (header.get("config") or {}) if isinstance(header, dict) else {}
    config_file = config.get("config_file") if isinstance(config, dict) else None
    base_dir = config.get("base_dir") if isinstance(config, dict) else None
    where = str(Path(base_dir) / Path(config_file).name) if config_file and base_dir else "RUN.toml"
    return (f"its open orders and armed stops are taken over by `tickparity {mode or 'testnet|live'} "
            f"--config {where} --resume {run}`")


def _refuse_if_claimed(prev: Path) -> None:
    """ConfigError when `prev` was already resumed (its CLAIM_FILE exists)."""
    message = _claimed(prev)
    if message is not None:
        raise ConfigError(message)


def _claimed(prev: Path) -> str | None:
    """The one-line refusal for a run another session already resumed, or None."""
    claim = _claimed_by(prev)
    if claim is None:
        return None
    by, at = claim
    return (f"--resume {prev}: already resumed by {by} (at {at}); its contingent orders belong to that "
            f"session now and resuming again would adopt them twice: resume {by} instead")


def _claimed_by(prev: Path) -> tuple[str, str] | None:
    """(the resuming session's run directory, when) from `prev`'s CLAIM_FILE, or None."""
    path = prev / CLAIM_FILE
    try:
        claimed = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        claimed = {}
    by = claimed.get("by", "?") if isinstance(claimed, dict) else "?"
    at = claimed.get("at", "?") if isinstance(claimed, dict) else "?"
    return str(by), str(at)


def _accounts(config_json: dict[str, Any]) -> dict[str, Any]:
    """{venue: (url, account)} of a RunConfig's JSON (modes.live.build.config_to_json)."""
    venues = config_json.get("venues", {}) or {}
    return {v: [t.get("url"), t.get("account")] for v, t in sorted(venues.items()) if isinstance(t, dict)}


class StateSaver:
    """Writes RUN/contingent.json when the session's state a resume takes over changed: its
    contingent orders, its open orders, its fills (their trade ids and its positions).

    Why the plain orders and fills too: a resumed session books the fills the previous
    session's orders got while no session ran, exactly once, into its restored positions;
    that needs, written together, the positions and, for every order still open, what it
    had filled and by which trades (a fill not yet saved is in neither, so it is booked
    once either way)."""

    def __init__(self, out: Path, mode: str, config_json: dict[str, Any], session: Any = None) -> None:
        self.path = Path(out) / STATE_FILE
        self._saved: tuple[int, tuple[Any, ...]] | None = None
        self._meta = {"mode": mode, "venues": _accounts(config_json)}  # what `load` checks
        self._dirty = False
        self._synced = float("-inf")
        if session is not None:  # the plain orders' trade ids are kept while they are open
            session.contingent.keep_order_trades = True

    def maybe_save(self, session: Any) -> bool:
        manager = session.contingent
        oms = session.oms
        by_no = oms.by_no
        mark = (manager.changes, tuple((n, by_no[n].status) for n in oms.open_nos))  # acknowledged too
        if mark == self._saved:
            return False
        if not manager.legs and not oms.by_no and self._saved is None:
            return False  # never had an order: no file
        tmp = self.path.with_suffix(".json.tmp")
        state = self._meta | {"state": manager.state(), "positions": _positions(session)}
        # renamed into place whole (a killed process leaves the last whole state); fsynced
        # at most once a second (`sync`), as the recording is: a market maker changes its
        # open orders every step and an fsync here costs milliseconds of the event loop
        tmp.write_bytes(json.dumps(state, separators=(",", ":"), sort_keys=True).encode())
        os.replace(tmp, self.path)
        self._saved = mark
        self._dirty = True
        self.sync()
        return True

    def sync(self, force: bool = False) -> None:
        """fsync the last state written (and its directory) when a second has passed since
        the last fsync, or now with `force` (the driver calls it after every step)."""
        now = time.monotonic()
        if not self._dirty or (not force and now - self._synced < SYNC_S):
            return
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        fsync_dir(self.path.parent)
        self._synced = now
        self._dirty = False


def _positions(session: Any) -> dict[str, list[int]]:
    """{instrument: [lots, cost units]} of the session's spot positions that are not flat."""
    out = {}
    for inst_id, inst in session.instruments.items():
        pos = session.ledger.positions.get(inst_id)
        if pos is not None and not inst.contract and pos.lots:
            out[inst_id] = [pos.lots, pos.cost]
    return out


def restore(built: Any, record: dict[str, Any]) -> None:
    """The start step's restore (run_step): the previous session's contingent orders, and
    its spot positions (lots and cost basis), which its brackets and reduce-only exits
    protect: a new session's ledger starts flat (its balances come from the venue), so
    without them a restored stop-loss would be refused as not reducing. Audited."""
    session = built.session
    manager = session.contingent
    saved = record["contingent"]
    manager.restore(saved["state"])
    positions = {}
    for inst_id, (lots, cost) in sorted(saved.get("positions", {}).items()):
        pos = session.ledger.positions.get(inst_id)
        if pos is not None and pos.lots == 0 and not session.instruments[inst_id].contract:
            pos.lots, pos.cost = int(lots), int(cost)
            positions[inst_id] = decimal_str(pos.qty.normalize())
    legs = manager.legs.values()
    # a contingent.json written before trade ids were saved: which venue trades of a resumed
    # order the previous session booked is inferred from how much it had filled (`infer`)
    inferred = {cid: decimal_str(session.instrument(manager.saved_instrument(cid)).lots_to_qty(lots).normalize())
                for cid, lots in sorted(manager.inferred.items())}
    session.audit.write(session.clock.now(), "decision", action="contingent_restored",
                        resume_from=record.get("resume_from"),
                        armed=[leg.id for leg in legs if leg.state.value == "armed"],
                        working={leg.id: leg.live for leg in legs if leg.state.value == "working" and leg.live},
                        orders=sorted(saved["state"].get("orders", {})), positions=positions,
                        **({"inferred": inferred} if inferred else {}))
    if inferred:
        from modes.console import warn

        warn(f"--resume {record.get('resume_from')}: {STATE_FILE} has no trade ids for "
             + ", ".join(f"{cid} (filled {qty})" for cid, qty in inferred.items())
             + ": of each order's venue trades, the earliest adding up to that are taken as booked by the "
               "previous session and only the rest are booked (audited inferred_booked)")
