"""Crash-safety building blocks: fsync, atomic exchange, writer locks, full-disk errors.

Why one module: every store and the run-directory publish need the same few guarantees
(a commit is one atomic rename made durable by fsync of the file and its directory; one
writer at a time; a full disk is a user error naming the place and the space needed), so
they share these helpers instead of each growing its own.

Test hook: with the environment variable ``TICKPARITY_CRASH_AT=<step>``, `crash_point(step)`
kills the process with SIGKILL at that step (no cleanup, no `finally`), which is how the
crash tests stop a writer exactly between two renames or fsyncs;
``TICKPARITY_NO_RENAME_EXCHANGE=1`` makes `exchange_paths` report "unsupported" so the
two-rename fallback can be tested on a file system that has the exchange.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import json
import os
import shutil
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from engine.clock import wall_time_text
from engine.errors import StorageError

CRASH_ENV = "TICKPARITY_CRASH_AT"
#: where mounting a small file system is not permitted, tests inject ENOSPC at a step
ENOSPC_ENV = "TICKPARITY_ENOSPC_AT"
#: "1" disables the atomic exchange (tests of the two-rename fallback and its recovery)
NO_EXCHANGE_ENV = "TICKPARITY_NO_RENAME_EXCHANGE"
#: default bounded wait for another writer to finish (seconds); env TICKPARITY_LOCK_TIMEOUT
DEFAULT_LOCK_TIMEOUT_S = 10.0


def crash_point(step: str) -> None:
    """SIGKILL this process when TICKPARITY_CRASH_AT names `step`; raise ENOSPC when
    TICKPARITY_ENOSPC_AT names it (crash and full-disk tests only)."""
    if os.environ.get(CRASH_ENV) == step:
        sys.stdout.flush()
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get(ENOSPC_ENV) == step:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), step)


def fsync_file(path: Path) -> None:
    """Flush one file's data and metadata to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries (a rename or create inside it is durable after this)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """fsync every file and directory under root (bottom-up), then root itself."""
    for dirpath, _dirs, files in os.walk(root, topdown=False):
        for name in files:
            fsync_file(Path(dirpath) / name)
        fsync_dir(Path(dirpath))


def write_file_durably(path: Path, data: bytes) -> None:
    """Write `data` to `path` and fsync it (not atomic by itself: rename it into place)."""
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


_RENAME_EXCHANGE = 2
_libc = None


def exchange_paths(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths (Linux renameat2 RENAME_EXCHANGE).

    Returns False when the platform or file system cannot (the caller falls back to two
    renames plus recovery). Why: swapping a finished directory with the published one
    leaves no instant at which neither exists."""
    global _libc
    if not sys.platform.startswith("linux") or os.environ.get(NO_EXCHANGE_ENV) == "1":
        return False
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    fn = getattr(_libc, "renameat2", None)
    if fn is None:
        return False
    at_fdcwd = -100
    rc = fn(at_fdcwd, os.fsencode(str(a)), at_fdcwd, os.fsencode(str(b)), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM):
        return False
    raise OSError(err, os.strerror(err), str(a))


# -- full disk ---------------------------------------------------------------------------------


def is_disk_full(exc: BaseException) -> bool:
    """True for ENOSPC/EDQUOT, also when a library only kept the message text."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = str(cur)
        if "No space left on device" in text or "Disk quota exceeded" in text:
            return True
        if "NOT_ENOUGH_SPACE" in text or "Cannot reserve" in text:
            return True  # ClickHouse's own words for a full disk
        cur = cur.__cause__ or cur.__context__
    return False


def free_bytes(path: Path) -> int:
    """Free bytes on the file system holding path (or its nearest existing parent)."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n} B"


def disk_full_error(
    where: str,
    path: Path,
    needed_bytes: int,
    what: str = "import",
    *,
    at_least: bool = False,
    free: int | None = None,
) -> StorageError:
    """The one-line StorageError for a full disk: the store, free space, space needed.

    `needed_bytes` is an estimate of what the operation writes (`at_least`: a lower
    bound, e.g. what a run had written when the disk filled); `free` is the free space
    before the operation began (default: now)."""
    if free is None:
        free = free_bytes(path)
    need = (
        f"more than {human_bytes(needed_bytes)}"
        if at_least
        else f"about {human_bytes(max(needed_bytes, 1))}"
    )
    return StorageError(
        f"{where}: disk full (No space left on device) during the {what}; "
        f"{human_bytes(free)} free on the file system of {path}, the {what} needs {need}; "
        f"free space and retry (nothing was changed)"
    )


# -- writer lock -----------------------------------------------------------------------------


def _command_line() -> str:
    argv = [Path(sys.argv[0]).name if sys.argv else "python", *sys.argv[1:]]
    return " ".join(argv)[:200]


class WriterLock:
    """One writer at a time per store: an OS file lock (filelock) plus a holder note.

    The lock file is ``<path>.lock``; ``<path>.lock.json`` says who holds it (pid,
    command, since when) so a second writer's message names the holder. The OS releases
    the lock when its process dies (SIGKILL included), so a crash never leaves a stale
    lock; a stale holder note is simply overwritten by the next holder.

    Re-entrant within one process (the same store opened twice by one command).
    `timeout_s` is the bounded wait before failing (None: TICKPARITY_LOCK_TIMEOUT or 10 s).
    """

    def __init__(self, path: Path, store_spec: str, timeout_s: float | None = None) -> None:
        from filelock import FileLock

        self.path = Path(f"{path}.lock")
        self.info_path = Path(f"{path}.lock.json")
        self.spec = store_spec
        if timeout_s is None:
            timeout_s = float(os.environ.get("TICKPARITY_LOCK_TIMEOUT", DEFAULT_LOCK_TIMEOUT_S))
        self.timeout_s = timeout_s
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(self.path), thread_local=False, is_singleton=True)
        self._held = 0

    def holder(self) -> str:
        """'pid 123 (tickparity data import ...) since 2026-11-30T09:12:00Z' or 'unknown'."""
        try:
            info = json.loads(self.info_path.read_text())
            return f"pid {info['pid']} ({info['command']}) since {info['since']}"
        except (OSError, ValueError, KeyError):
            return "an unknown process"

    def acquire(self, busy: Callable[[str], str] | None = None) -> WriterLock:
        """Take the lock, waiting at most `timeout_s`; then StorageError naming the holder
        (`busy(holder)` words the message when given)."""
        from filelock import Timeout

        try:
            self._lock.acquire(timeout=self.timeout_s, poll_interval=0.05)
        except Timeout:
            holder = self.holder()
            if busy is not None:
                raise StorageError(busy(holder)) from None
            raise StorageError(
                f"{self.spec}: another process holds the writer lock: {holder}; "
                f"waited {self.timeout_s:g}s (wait for it to finish, or stop it)"
            ) from None
        self._held += 1
        if self._held == 1:
            note = {
                "pid": os.getpid(),
                "command": _command_line(),
                "since": wall_time_text(),
            }
            tmp = self.info_path.with_name(self.info_path.name + f".{os.getpid()}")
            try:
                tmp.write_text(json.dumps(note))
                os.replace(tmp, self.info_path)
            except OSError:  # the note is informative only (a full disk must not block)
                tmp.unlink(missing_ok=True)
        return self

    def release(self) -> None:
        if self._held == 0:
            return
        self._held -= 1
        self._lock.release()

    @contextmanager
    def held(self) -> Iterator[WriterLock]:
        self.acquire()
        try:
            yield self
        finally:
            self.release()
