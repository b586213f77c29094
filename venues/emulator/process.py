"""An emulator in a process of its own, for tests and benchmarks that run a session in theirs.

Why not `EmulatorThread`: a thread shares the interpreter lock with the session it serves,
so the emulator reads a request only when the session's Python gives the lock up (a switch
interval is 5 ms). On a loopback path that is most of the wire time: the parity bench
measured the accepted orders' request legs (venue time - written) at 0.2 ms at best,
2.4 ms at the median and up to 335 ms with the emulator in the session's process
(bench/README.md "Parity"). A venue is another machine; its own process is the closest a
test can come.

    with EmulatorProcess(settings, "duckdb:D.duckdb") as emu:
        ccxt.binance(emu.ccxt_config())
        emu.state()["shift_ns"]

The protocol (one parent, one child, nothing else shared):
- the parent starts a Python child running `_child_main` with stdin, stdout and stderr as
  pipes and writes a line with `progress_s` (the heartbeat's period, s), then one
  length-prefixed pickle: (settings, data spec, start_ns, end_ns, chunk_rows, host, port).
  Settings hold instruments, venue configs, accounts and faults, no sockets. The child's
  first statements (stdlib only) read that line and report `PROGRESS importing` every
  `progress_s` while the package's imports load: on a loaded machine they alone can take
  seconds;
- the child opens the data, compiles the simulated venue (numba's cache), binds and writes
  one line: `READY <base url>`, or `ERROR <one line>` and exits 2 (a user error, e.g. a
  missing store: the parent raises it as ConfigError with the child's text). While it
  starts it writes `PROGRESS <stage>` lines ("opening data", "compiling kernels",
  "binding"), again every `progress_s` from a thread of its own, so a long step (numba
  compiling the kernels on a cold cache, minutes on a slow machine) still reports. Why:
  a fixed wait for READY failed healthy starts on slow machines and made a dead child
  wait the whole time; the parent now waits as long as progress arrives and fails when
  the child is silent for `start_timeout` s (killed then) or exits (one line with its exit
  code and the last line it wrote to stderr, which the parent forwards to its own);
- `TICKPARITY_EMULATOR_START_DELAY_S` (read by the child only): the child spends that many
  seconds in a "start delay" stage before compiling, reporting progress as in any other
  stage. A test hook (a slow start on a fast machine); it only delays the start;
- the child stops on a line `stop`, on EOF of its stdin (the parent closed it, or died:
  no orphan outlives its parent's pipe), on SIGINT or SIGTERM; it writes the journal's
  last lines and final_state.json (server.stop) and exits 0;
- `stop()` closes the pipe and waits (bounded), then SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import select
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from engine.errors import ConfigError
from venues.emulator.server import EmulatorHandle, EmulatorSettings

#: the child's command (not `-m venues.emulator.process`: the package imports this module first)
_CHILD = """
import sys, threading
every = float(sys.stdin.buffer.readline())
done = threading.Event()
def beat():
    while True:
        sys.stdout.write("PROGRESS importing\\n")
        sys.stdout.flush()
        if done.wait(every):
            return
beating = threading.Thread(target=beat, daemon=True)
beating.start()
from venues.emulator.process import _child_main
done.set()
beating.join()
sys.exit(_child_main(every))
"""
#: rows per chunk read from the store (the CLI's: modes/emulator_cmd.py)
CHUNK_ROWS = 1 << 16
#: the child's test hook: seconds of a reported "start delay" stage (module doc)
START_DELAY_ENV = "TICKPARITY_EMULATOR_START_DELAY_S"


class EmulatorProcess(EmulatorHandle):
    """`EmulatorThread`'s interface (url, ws_url, ccxt_config, account, context manager) for
    an emulator in a child process (module doc). `state()` is the inspection view
    (`GET /emulator/state`, with the clock's `shift_ns`): the child's objects are not
    reachable from here, only its HTTP API.

    `data` is a data spec (`duckdb:PATH`, `parquet:PATH`, `synthetic:SEED[:DURATION]`...),
    opened in the child with `start_ns` / `end_ns` (ns, None: the whole store). The start
    waits as long as the child reports progress; `start_timeout` (s) is the longest it may
    stay silent. Raises ConfigError (one line) when the child reports a startup error,
    exits while starting (its exit code and last stderr line), or is silent for
    `start_timeout` s (it is killed then)."""

    #: the child's program (tests replace it with a child that dies or hangs at start)
    child_code = _CHILD

    def __init__(self, settings: EmulatorSettings, data: str, *, start_ns: int | None = None,
                 end_ns: int | None = None, chunk_rows: int = CHUNK_ROWS, host: str = "127.0.0.1",
                 port: int = 0, start_timeout: float = 120.0, stop_timeout: float = 15.0) -> None:
        self.settings = settings
        self.data = data
        # the child's heartbeat: several per start_timeout, so one late line is no silence
        self._payload = (settings, data, start_ns, end_ns, chunk_rows, host, port)
        self._progress_s = max(0.05, start_timeout / 4)
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.stage = ""  # the child's last reported start stage
        self.last_stderr = ""  # the last non-empty line the child wrote to stderr
        self._stderr_thread: threading.Thread | None = None

    def start(self) -> EmulatorProcess:
        blob = pickle.dumps(self._payload)
        env = dict(os.environ)
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.proc = subprocess.Popen([sys.executable, "-c", self.child_code], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        assert self.proc.stdin is not None and self.proc.stdout is not None and self.proc.stderr is not None
        self._stderr_thread = threading.Thread(target=self._forward_stderr, args=(self.proc.stderr,),
                                               name="emulator-stderr", daemon=True)
        self._stderr_thread.start()
        try:
            try:
                self.proc.stdin.write(b"%r\n%d\n" % (self._progress_s, len(blob)) + blob)
                self.proc.stdin.flush()
            except BrokenPipeError:  # it died before reading: said below, with its exit code
                pass
            line = self._await_ready()
        except BaseException:
            self._kill()
            raise
        if line is not None and line.startswith("READY "):
            self.url = line.split(" ", 1)[1]
            return self
        if line is None:  # silent too long: never ready
            self._kill()
            raise ConfigError(f"emulator process: silent for {self.start_timeout:g} s while starting "
                              f"(last progress: {self.stage or 'none'}); killed it")
        try:  # an ERROR line or EOF: the child exits by itself (code 2 after an ERROR line)
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self._kill()
        if line.startswith("ERROR "):
            raise ConfigError(line[len("ERROR "):])
        if not line:
            self._stderr_thread.join(2)  # its last words
            said = f": {self.last_stderr}" if self.last_stderr else " (nothing on stderr)"
            raise ConfigError(f"emulator process exited with code {self.proc.returncode} while starting "
                              f"({self.stage or 'before its first progress'}){said}")
        raise ConfigError(f"emulator process: unexpected line {line!r} while starting")

    def _await_ready(self) -> str | None:
        """The child's first line that is not progress: READY / ERROR, "" at EOF (it died),
        None when it was silent for `start_timeout` s. Progress lines only restart the wait."""
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while True:
            line = _read_line(fd, self.start_timeout)
            if line is None or not line.startswith("PROGRESS "):
                return line
            self.stage = line[len("PROGRESS "):]

    def _forward_stderr(self, pipe: Any) -> None:
        """The child's stderr, line by line, to ours (as when it was inherited), keeping the
        last non-empty line for a start error; drains the pipe until the child closes it."""
        for raw in iter(pipe.readline, b""):
            text = raw.decode("utf-8", "replace")
            if text.strip():
                self.last_stderr = " ".join(text.split())[:300]
            try:
                sys.stderr.write(text)
                sys.stderr.flush()
            except (OSError, ValueError):  # our stderr closed: keep draining the pipe
                pass

    def stop(self) -> int | None:
        """Stop the child and wait for it (bounded: stop_timeout s, then SIGTERM, then
        SIGKILL); returns its exit code (0 when it stopped cleanly)."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            try:
                assert proc.stdin is not None
                proc.stdin.write(b"stop\n")
                proc.stdin.close()
            except (BrokenPipeError, OSError, ValueError):
                pass
            try:
                proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                self._kill()
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None and not pipe.closed:
                pipe.close()
        forwarding = self._stderr_thread
        if forwarding is not None:  # ends at the child's exit (its end of the pipe closes)
            forwarding.join(5)
        if proc.stderr is not None and not proc.stderr.closed and not (forwarding and forwarding.is_alive()):
            proc.stderr.close()
        return proc.returncode

    def _kill(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def state(self, timeout: float = 10.0) -> dict[str, Any]:
        """The emulator's inspection view (`GET /emulator/state`: books, accounts, clock)."""
        with urllib.request.urlopen(self.url + "/emulator/state", timeout=timeout) as reply:
            return json.loads(reply.read())


@contextmanager
def emulator_process(settings: EmulatorSettings, data: str, **kwargs: Any) -> Iterator[EmulatorProcess]:
    """`with emulator_process(settings, data) as emu:` (EmulatorProcess's arguments)."""
    emu = EmulatorProcess(settings, data, **kwargs)
    with emu:
        yield emu


def _read_line(fd: int, timeout: float) -> str | None:
    """One line from a pipe within `timeout` s ("" at EOF, None on timeout)."""
    deadline = time.monotonic() + timeout
    buf = b""
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            return None
        chunk = os.read(fd, 1)  # byte by byte: nothing after the line is taken from the pipe
        if not chunk:
            return ""
        buf += chunk
    return buf.decode("utf-8", "replace").strip()


# --- the child ---------------------------------------------------------------------------


class _Progress:
    """The child's start report: `PROGRESS <stage>` at each stage and every `every_s` from a
    thread (a long stage, numba compiling, still reports), then the one final line (READY /
    ERROR), after which nothing more is written. Lines never interleave (one lock)."""

    def __init__(self, out: Any, every_s: float) -> None:
        self.out = out
        self.every_s = every_s
        self.stage_name = "starting"
        self._lock = threading.Lock()
        self._done = threading.Event()
        threading.Thread(target=self._beat, name="emulator-progress", daemon=True).start()

    def _write(self, line: str) -> None:
        with self._lock:
            if self._done.is_set():
                return
            self.out.write(line + "\n")
            self.out.flush()

    def _beat(self) -> None:
        while not self._done.wait(self.every_s):
            self._write(f"PROGRESS {self.stage_name}")

    def stage(self, name: str) -> None:
        self.stage_name = name
        self._write(f"PROGRESS {name}")

    def final(self, line: str) -> None:
        """READY or ERROR: the last line; the heartbeat stops."""
        self._write(line)
        self._done.set()


def _child_main(progress_s: float) -> int:
    """The child, once its imports are done (the `_CHILD` program has read the heartbeat's
    period and reported the imports)."""
    stdin = sys.stdin.buffer
    progress = _Progress(sys.stdout, progress_s)
    progress.stage("reading settings")
    size = int(stdin.readline())
    settings, data, start_ns, end_ns, chunk_rows, host, port = pickle.loads(stdin.read(size))
    try:
        progress.stage("opening data")
        from replay import open_source
        from venues.sim import warmup

        insts = {i.id: i for i in settings.instruments}
        source = open_source(data, insts, start_ns=start_ns, end_ns=end_ns, chunk_rows=chunk_rows)
        delay = os.environ.get(START_DELAY_ENV)
        if delay:
            try:
                seconds = float(delay)
            except ValueError:
                raise ConfigError(f"{START_DELAY_ENV}={delay!r}: expected seconds") from None
            progress.stage("start delay")
            time.sleep(seconds)
        progress.stage("compiling kernels")
        warmup(triggers=False)  # compile the sim before the first client waits on it (its one kernel: warmup says)
    except Exception as exc:  # the user's data or settings: one line to the parent
        progress.final(f"ERROR {' '.join(str(exc).split())}")
        return 2
    return asyncio.run(_serve(settings, source, host, port, stdin, progress))


async def _serve(settings: EmulatorSettings, source: Any, host: str, port: int, stdin: Any,
                 progress: _Progress) -> int:
    from venues.emulator.server import build_server, freeze_startup_objects

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    try:
        progress.stage("binding")
        server = build_server(settings, source)
        url = await server.start(host, port)
        freeze_startup_objects()
    except Exception as exc:
        progress.final(f"ERROR {' '.join(str(exc).split())}")
        return 2
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    def watch() -> None:  # a line "stop" or EOF (the parent closed the pipe or died)
        for line in iter(stdin.readline, b""):
            if line.strip() == b"stop":
                break
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=watch, name="emulator-lifeline", daemon=True).start()
    progress.final(f"READY {url}")
    os.dup2(2, 1)  # nobody reads the pipe any more: a later print must not fill it and block
    try:
        await stop.wait()
    finally:
        await server.stop()
    return 0

