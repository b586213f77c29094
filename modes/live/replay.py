"""`tickparity replay RUN_DIR`: re-run a recorded paper/testnet/live session and compare.

The recording (modes.live.recording) holds every input of every step: the local time, the
market rows pushed before it, the venue reports applied in it and the driver's own actions.
The replay builds the same session (modes.live.build) from the recorded configuration —
same strategy file, parameters, instruments, risk, venue tables, seed, client-id prefix —
and feeds it the same inputs; paper mode's simulated venue runs again (it is deterministic),
testnet/live venues are replaced by the recorded replies.

Comparison is decision by decision: each audit record the replay writes (a decision, a
request, a venue reply, a fill, a rejection) must equal the recorded one, hash chain
included. The first that differs stops the replay with its time, the callback that was
running (on_timer, on_book, on_trade, on_order, on_start, shutdown) and both records. A
replay that runs through is then compared file by file: orders.parquet, fills.parquet and
equity.parquet byte for byte, and the ledger (positions, balances, PnL) of summary.json.

A recording cut by a crash (no stop line; its last second possibly lost) replays as far as
it goes: the replay's audit records and the recorded ones must agree as far as both go
(either may be the longer: the journal and the audit log are flushed separately), and the
replay's orders, fills and equity tables are the session's, rebuilt up to the journal's
last step (`tickparity replay RUN --out DIR`).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.audit import AuditLog
from engine.errors import ConfigError, StrategyError, TickparityError, require_run_directory
from modes.backtest import resolve_run
from modes.live.build import build_session, config_from_json, finish
from modes.live.driver import run_step
from modes.live.recording import read_journal, read_rows
from modes.live.reports import report_from_json

COMPARED_FILES = ("orders.parquet", "fills.parquet", "equity.parquet")
LEDGER_KEYS = ("positions", "balances", "pnl", "orders", "fills")


@dataclass
class Difference:
    """The first decision of a replay that differs from the recording."""

    ts: int | None
    callback: str
    expected: Any
    actual: Any
    what: str = "audit record"

    def text(self) -> str:
        from replay.schema import format_ns

        when = "end of the recording" if self.ts is None else f"{format_ns(self.ts)} ({self.ts} ns)"
        return (f"first difference: {self.what} at {when}, in {self.callback}\n"
                f"  expected: {json.dumps(self.expected, sort_keys=True)[:1500]}\n"
                f"  actual:   {json.dumps(self.actual, sort_keys=True)[:1500]}")


@dataclass
class ReplayResult:
    run_dir: Path
    out: Path
    steps: int
    records: int
    difference: Difference | None = None
    identical_files: list[str] = field(default_factory=list)
    crashed: bool = False  # the recording ends without its stop line (the session was killed)

    @property
    def identical(self) -> bool:
        return self.difference is None


class _Divergence(Exception):
    def __init__(self, difference: Difference) -> None:
        super().__init__(difference.text())
        self.difference = difference
        # passes through the session's strategy-error wrapping (TradingSession._user_failed)
        self.location = "replay"


class _CheckedFile:
    """The audit log's file: each line written must be the recorded line of that number."""

    def __init__(self, real: Any, expected: list[str], current: list[str], prefix_only: bool = False) -> None:
        self.real = real
        self.expected = expected
        self.current = current
        self.prefix_only = prefix_only  # a crashed recording: its log is a prefix of the replay's
        self.n = 0

    def write(self, line: str) -> int:
        if self.prefix_only and self.n >= len(self.expected):
            self.n += 1
            return self.real.write(line)
        want = self.expected[self.n] if self.n < len(self.expected) else None
        if line != want:
            got = json.loads(line)
            exp = json.loads(want) if want else None
            for rec in (got, exp):
                if rec is not None:
                    rec.pop("prev", None)
                    rec.pop("hash", None)
            if got != exp:  # equal bodies with another chain cannot happen without an earlier difference
                raise _Divergence(Difference(got.get("ts"), self.current[0], exp, got))
        self.n += 1
        return self.real.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class _CheckedAudit(AuditLog):
    def __init__(self, path: Path, expected: list[str], current: list[str], prefix_only: bool = False) -> None:
        super().__init__(path)
        self._file = _CheckedFile(self._file, expected, current, prefix_only)  # type: ignore[assignment]


class ReplayVenue:
    """A testnet/live venue in a replay: requests go nowhere (the recorded replies answer
    them); the book is the session's local book, as in the live run."""

    def __init__(self, name: str, core: Any, config: Any) -> None:
        self.name = name
        self._core = core
        self.maker_fee_bps = config.maker_fee_bps
        self.taker_fee_bps = config.taker_fee_bps

    def submit(self, order: Any, ts: int) -> None: ...

    def cancel(self, order: Any, ts: int) -> None: ...

    def amend(self, order: Any, price: int, qty: int, ts: int) -> None: ...

    def request_order_state(self, order: Any, ts: int) -> None: ...

    def request_open_orders(self, ts: int) -> None: ...

    def request_balances(self, ts: int) -> None: ...

    def push(self, rows: np.ndarray) -> None: ...

    def top_of_book(self, instrument_index: int) -> tuple[int, int, int, int]:
        return self._core.local_bbo(instrument_index)

    def levels(self, instrument_index: int, side: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        return self._core.local_levels(instrument_index, side, n)


def replay_session(run_dir: str | Path, out: str | Path | None = None) -> ReplayResult:
    """Replay a recorded session into `out` (default: a temporary directory) and compare.

    Raises ConfigError when `run_dir` is not a recorded paper/testnet/live session."""
    from venues.simulated import SimulatedVenue

    run_dir = require_run_directory(run_dir)
    if not (run_dir / "session.jsonl").is_file() or not (run_dir / "rows.bin").is_file():
        raise ConfigError(f"{run_dir}: not a recorded paper/testnet/live session (no session.jsonl / rows.bin)")
    journal = read_journal(run_dir)
    if not journal or "session" not in journal[0]:
        raise ConfigError(f"{run_dir}/session.jsonl: the first line is not a session header")
    head = journal[0]
    rows = read_rows(run_dir)
    config = config_from_json(head["config"])
    resolved = resolve_run(config)
    out = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="tickparity-replay-"))
    out.mkdir(parents=True, exist_ok=True)
    expected = (run_dir / "audit.jsonl").read_text(encoding="utf-8").splitlines(keepends=True) \
        if (run_dir / "audit.jsonl").is_file() else []
    if expected and not expected[-1].endswith("\n"):
        expected.pop()  # a crash cut the last record short
    crashed = not any("stop" in rec for rec in journal)
    current = ["on_start"]
    audit = _CheckedAudit(out / "audit.jsonl", expected, current, prefix_only=crashed)
    mode = head["mode"]

    def make_venues(core):
        if mode == "paper":
            return {n: SimulatedVenue(n, core, cfg) for n, cfg in resolved.venue_configs.items()}
        return {n: ReplayVenue(n, core, cfg) for n, cfg in resolved.venue_configs.items()}

    built = build_session(resolved, out, int(head["start"]), str(head["id_prefix"]), make_venues, audit,
                          paper=mode == "paper")
    current = built.current
    audit._file.current = current  # type: ignore[attr-defined]
    pos = 0
    steps = 0
    result = ReplayResult(run_dir, out, 0, 0, crashed=crashed)
    try:
        halted = False
        for rec in journal[1:]:
            if "stop" in rec:
                # a session halted by a strategy error was sealed without on_stop (LiveDriver;
                # a recording from before `halted` says so by its strategy-error halt step)
                if rec.get("halted") or halted:
                    built.audit.seal(built.clock.now())
                else:
                    built.current[0] = "on_stop"
                    try:
                        built.session.stop()
                    except StrategyError:
                        pass  # the session's on_stop raised too: its end completed all the same
                break
            n = int(rec["rows"])
            if n > len(rows):
                break  # rows.bin lost its last second in a crash: the recording ends here
            built.stepper.push(rows[pos:n])
            pos = n
            try:
                run_step(built, rec, [report_from_json(r) for r in rec.get("r", [])])
            except StrategyError:
                # the session's strategy raised here too: the driver caught it and went on
                # (a halt step follows; after it, guarded steps swallow repeats), so does the replay
                pass
            if rec.get("c") == "halt" and str(rec.get("why", "")).startswith("strategy error"):
                halted = True
            steps += 1
        written = audit._file.n  # type: ignore[attr-defined]
        # a crashed recording's audit log may run ahead of its journal (each is flushed on
        # its own): records past the journal's last step have no inputs left to replay
        if written < len(expected) and not crashed:
            missing = json.loads(expected[written])
            raise _Divergence(Difference(missing.get("ts"), current[0], missing, None,
                                         what="recorded audit record not produced"))
    except _Divergence as exc:
        result.difference = exc.difference
    except TickparityError as exc:  # the recorded inputs themselves are inconsistent (edited, cut)
        result.difference = Difference(built.clock.now(), current[0], "the recorded inputs replay",
                                       str(exc), what="recording rejected")
    finally:
        audit.close()
    result.steps = steps
    result.records = audit._file.n  # type: ignore[attr-defined]
    if result.difference is not None:
        return result
    summary = finish(built, resolved, mode, out, out.name, started=int(head["start"]), write_html=False)
    if crashed:  # the recording has no tables to compare: the replay's are its recovery
        result.identical_files.append(f"audit.jsonl (the first {min(result.records, len(expected))} records)")
        return result
    for name in COMPARED_FILES:
        a, b = run_dir / name, out / name
        if a.is_file() and a.read_bytes() == b.read_bytes():
            result.identical_files.append(name)
        else:
            result.difference = _file_difference(a, b, name)
            return result
    recorded = json.loads((run_dir / "summary.json").read_text())["run"] if (run_dir / "summary.json").is_file() else None
    if recorded is not None:
        for key in LEDGER_KEYS:
            if recorded.get(key) != summary["run"].get(key):
                result.difference = Difference(None, "finish", recorded.get(key), summary["run"].get(key),
                                               what=f"summary {key}")
                return result
        result.identical_files.append("summary.json ledger")
    return result


def _file_difference(recorded: Path, replayed: Path, name: str) -> Difference:
    """The first row of a run table that differs (time, expected row, actual row)."""
    import pyarrow.parquet as pq

    if not recorded.is_file():
        return Difference(None, "finish", None, name, what=f"{name} missing from the recording")
    want = pq.read_table(recorded).to_pylist()
    got = pq.read_table(replayed).to_pylist()
    for i in range(max(len(want), len(got))):
        a = want[i] if i < len(want) else None
        b = got[i] if i < len(got) else None
        if a != b:
            row = a or b or {}
            ts = row.get("ts", row.get("created_ts"))
            return Difference(ts if isinstance(ts, int) else None, "finish", _plain(a), _plain(b),
                              what=f"{name} row {i}")
    return Difference(None, "finish", None, None, what=f"{name} differs in its bytes, not its rows")


def _plain(row: dict[str, Any] | None) -> Any:
    return None if row is None else {k: (v if isinstance(v, int | str | None) else str(v)) for k, v in row.items()}
