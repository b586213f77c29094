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
- the parent starts a Python child running `_child_main` with stdin and stdout as pipes and
  writes one length-prefixed pickle: (settings, data spec, start_ns, end_ns, chunk_rows,
  host, port). Settings hold instruments, venue configs, accounts and faults, no sockets;
- the child opens the data, compiles the simulated venue (numba's cache), binds and writes
  one line: `READY <base url>`, or `ERROR <one line>` and exits 2 (a user error, e.g. a
  missing store: the parent raises it as ConfigError with the child's text);
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
_CHILD = "import sys; from venues.emulator.process import _child_main; sys.exit(_child_main())"
#: rows per chunk read from the store (the CLI's: modes/emulator_cmd.py)
CHUNK_ROWS = 1 << 16


class EmulatorProcess(EmulatorHandle):
    """`EmulatorThread`'s interface (url, ws_url, ccxt_config, account, context manager) for
    an emulator in a child process (module doc). `state()` is the inspection view
    (`GET /emulator/state`, with the clock's `shift_ns`): the child's objects are not
    reachable from here, only its HTTP API.

    `data` is a data spec (`duckdb:PATH`, `parquet:PATH`, `synthetic:SEED[:DURATION]`...),
    opened in the child with `start_ns` / `end_ns` (ns, None: the whole store). Raises
    ConfigError when the child reports a startup error or is not ready within
    `start_timeout` s (it is killed then)."""

    def __init__(self, settings: EmulatorSettings, data: str, *, start_ns: int | None = None,
                 end_ns: int | None = None, chunk_rows: int = CHUNK_ROWS, host: str = "127.0.0.1",
                 port: int = 0, start_timeout: float = 120.0, stop_timeout: float = 15.0) -> None:
        self.settings = settings
        self.data = data
        self._payload = (settings, data, start_ns, end_ns, chunk_rows, host, port)
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> EmulatorProcess:
        blob = pickle.dumps(self._payload)
        env = dict(os.environ)
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.proc = subprocess.Popen([sys.executable, "-c", _CHILD], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=env)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(b"%d\n" % len(blob) + blob)
            self.proc.stdin.flush()
            line = _read_line(self.proc.stdout.fileno(), self.start_timeout)
        except BaseException:
            self._kill()
            raise
        if line.startswith("READY "):
            self.url = line.split(" ", 1)[1]
            return self
        try:  # an ERROR line: the child exits by itself (code 2)
            self.proc.wait(5 if line else 0)
        except subprocess.TimeoutExpired:
            pass
        self._kill()
        if line.startswith("ERROR "):
            raise ConfigError(line[len("ERROR "):])
        if not line:
            raise ConfigError(f"emulator process: not ready within {self.start_timeout:g} s "
                              f"(exit code {self.proc.returncode})")
        raise ConfigError(f"emulator process: unexpected first line {line!r}")

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


def _read_line(fd: int, timeout: float) -> str:
    """One line from a pipe within `timeout` s ("" at EOF or on timeout)."""
    deadline = time.monotonic() + timeout
    buf = b""
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            return ""
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            return ""
        chunk = os.read(fd, 1)  # byte by byte: nothing after the line is taken from the pipe
        if not chunk:
            return ""
        buf += chunk
    return buf.decode("utf-8", "replace").strip()


# --- the child ---------------------------------------------------------------------------


def _child_main() -> int:
    stdin = sys.stdin.buffer
    size = int(stdin.readline())
    settings, data, start_ns, end_ns, chunk_rows, host, port = pickle.loads(stdin.read(size))
    out = sys.stdout
    try:
        from replay import open_source
        from venues.sim import warmup

        insts = {i.id: i for i in settings.instruments}
        source = open_source(data, insts, start_ns=start_ns, end_ns=end_ns, chunk_rows=chunk_rows)
        warmup()  # compile the sim before the first client waits on it
    except Exception as exc:  # the user's data or settings: one line to the parent
        out.write(f"ERROR {' '.join(str(exc).split())}\n")
        out.flush()
        return 2
    return asyncio.run(_serve(settings, source, host, port, stdin))


async def _serve(settings: EmulatorSettings, source: Any, host: str, port: int, stdin: Any) -> int:
    from venues.emulator.server import build_server, freeze_startup_objects

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    try:
        server = build_server(settings, source)
        url = await server.start(host, port)
        freeze_startup_objects()
    except Exception as exc:
        sys.stdout.write(f"ERROR {' '.join(str(exc).split())}\n")
        sys.stdout.flush()
        return 2
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    def watch() -> None:  # a line "stop" or EOF (the parent closed the pipe or died)
        for line in iter(stdin.readline, b""):
            if line.strip() == b"stop":
                break
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=watch, name="emulator-lifeline", daemon=True).start()
    sys.stdout.write(f"READY {url}\n")
    sys.stdout.flush()
    os.dup2(2, 1)  # nobody reads the pipe any more: a later print must not fill it and block
    try:
        await stop.wait()
    finally:
        await server.stop()
    return 0

