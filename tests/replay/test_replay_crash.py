"""Crash safety of every store (issue 17), done the way the reporters did it.

A writer (a subprocess) is SIGKILLed at each commit step (`TICKPARITY_CRASH_AT`, see
engine.durable), two writers run at once, a small tmpfs fills up, files are imported
twice. Every check reads the rows back (count + sha256 of rows, seqs and instrument
table) and compares them with the states before and after the import.
"""

from __future__ import annotations

import gzip
import inspect
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from engine.durable import WriterLock
from engine.types import load_instruments
from replay.importers import import_files

ROOT = Path(__file__).resolve().parents[2]
DAY_US = 86_400_000_000
D0_US = 1723075200 * 1_000_000  # 2024-08-08T00:00:00Z


def tardis_book(path: Path, clusters: list[tuple[int, int]], seed: int = 0) -> Path:
    """A book-only tardis incremental_book_L2 file: a 5-level snapshot, then `n` updates
    10 ms apart from each cluster start (us). Clusters on both sides of midnight make an
    import touch two days (the Parquet store merges one and adds one)."""
    lines = ["exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount"]
    t0 = clusters[0][0]
    for k in range(5):
        lines.append(f"binance,BTCUSDT,{t0},{t0 + 1000},true,bid,{60000 - k:.2f},{1 + k}.5")
        lines.append(f"binance,BTCUSDT,{t0},{t0 + 1000},true,ask,{60001 + k:.2f},{1 + k}.25")
    i = seed
    for start, n in clusters:
        for j in range(n):
            t = start + 1000 + j * 10_000
            i += 7
            side = "bid" if i % 2 else "ask"
            px = 60000 - (i % 5) if side == "bid" else 60001 + (i % 5)
            amount = (i % 97) / 1000
            lines.append(f"binance,BTCUSDT,{t},{t + 1000},false,{side},{px:.2f},{amount:.3f}")
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)
    return path


def _state(spec: str) -> dict:
    """Rows, a digest of (instrument table, rows, seqs) and uncommitted chDB rows."""
    import hashlib

    import numpy as np

    from replay.stores import open_store

    with open_store(spec) as st:
        digest = hashlib.sha256()
        rows = 0
        for inst_id, inst in sorted(st.instruments().items()):
            digest.update(repr((inst_id, inst.tick_size, inst.lot_size)).encode())
            chunks = list(st.stream(inst_id, None, None, 1 << 16, with_seq=True))
            if not chunks:
                continue
            events = np.concatenate([c[0] for c in chunks])  # chunking varies by store state
            for name in events.dtype.names:  # field by field: padding bytes vary
                digest.update(events[name].tobytes())
            digest.update(np.concatenate([c[1] for c in chunks]).tobytes())
            rows += len(events)
        uncommitted = st._uncommitted() if hasattr(st, "_uncommitted") else 0
    return {"rows": rows, "digest": digest.hexdigest(), "uncommitted": uncommitted}


def _import(spec: str, path: Path, force: bool = False) -> int:
    _report, rows = import_files(
        "tardis", [str(path)], spec, load_instruments(), say=lambda _t: None, force=force
    )
    return rows


# A zygote: one process that imports everything and warms numba/Arrow once, then forks a
# fresh child per job (a writer to kill, a reader, a CLI call), so a job costs ~0.3 s
# instead of a whole interpreter start. Jobs get ARGS (strings); results go to files.
ZYGOTE = r"""
import json, os, sys, tempfile, traceback
import duckdb, numpy, pyarrow, pyarrow.parquet
import modes.cli, replay.importers, replay.importers.tardis
import replay.stores.clickhouse_store, replay.stores.duckdb_store, replay.stores.parquet_store
from engine.types import load_instruments
with tempfile.TemporaryDirectory() as d:  # warm the import path (no chDB: one engine per process)
    for spec in (f"duckdb:{d}/w.duckdb", f"parquet:{d}/w"):
        replay.importers.import_files("tardis", [sys.argv[1]], spec, load_instruments(),
                                      say=lambda _t: None)
for line in sys.stdin:
    job = json.loads(line)
    pids = []
    for args in job["argsets"]:
        pid = os.fork()
        if pid == 0:
            os.dup2(2, 1)  # stdout is the job channel
            os.environ.update(job["env"])
            try:
                exec(job["code"], {"__name__": "__job__", "ARGS": args})
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                traceback.print_exc()
                code = 1
            sys.stdout.flush(); sys.stderr.flush()
            os._exit(code)
        pids.append(pid)
    rcs = []
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        rcs.append(-os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status))
    sys.stdout.write(json.dumps(rcs) + "\n"); sys.stdout.flush()
"""

_STATE_SRC = inspect.getsource(_state)
# ARGS: spec, file, out
IMPORT_JOB = textwrap.dedent(
    """
    import json
    from engine.types import load_instruments
    from replay.importers import import_files
    rows = import_files("tardis", [ARGS[1]], ARGS[0], load_instruments(), say=lambda _t: None)[1]
    open(ARGS[2], "w").write(json.dumps({"rows": rows}))
    """
)
# ARGS: spec, out
STATE_JOB = _STATE_SRC + '\nimport json\nopen(ARGS[1], "w").write(json.dumps(_state(ARGS[0])))\n'
# ARGS: spec, file, out -- after a crash: the state at the next open, the same import
# again, the state after it
CHECK_JOB = _STATE_SRC + textwrap.dedent(
    """
    import json
    from engine.errors import DataError
    from engine.types import load_instruments
    from replay.importers import import_files
    first = _state(ARGS[0])
    try:
        import_files("tardis", [ARGS[1]], ARGS[0], load_instruments(), say=lambda _t: None)
        again = "imported"
    except DataError as exc:
        again = str(exc)
    open(ARGS[2], "w").write(json.dumps({"first": first, "again": again, "last": _state(ARGS[0])}))
    """
)
# ARGS: out (stderr lines), then the CLI's argv
CLI_JOB = textwrap.dedent(
    """
    import io, json, sys
    from modes.cli import main
    sys.stderr = io.StringIO()
    rc = main(ARGS[1:])
    open(ARGS[0], "w").write(json.dumps({"rc": rc, "err": sys.stderr.getvalue()}))
    """
)


class Jobs:
    """Runs job code in forked children of the zygote; returns exit codes (-9: SIGKILL)."""

    def __init__(self, tmp: Path, warm_file: Path) -> None:
        self.tmp = tmp
        self.errlog = open(tmp / "zygote.err", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", ZYGOTE, str(warm_file)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errlog,
            text=True,
            cwd=ROOT,
            env={**os.environ, "TICKPARITY_LOCK_TIMEOUT": "60"},
        )
        self.n = 0

    def run(self, code: str, *argsets: list[str], env: dict | None = None) -> list[int]:
        job = {"code": code, "argsets": [list(a) for a in argsets], "env": env or {}}
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, (self.tmp / "zygote.err").read_text()[-3000:]
        return json.loads(line)

    def out(self) -> str:
        self.n += 1
        return str(self.tmp / f"job-{self.n}.json")

    def result(self, code: str, *args: str, env: dict | None = None) -> dict:
        out = self.out()
        rcs = self.run(code, [*args, out], env=env)
        assert rcs == [0], (self.tmp / "zygote.err").read_text()[-3000:]
        return json.loads(Path(out).read_text())

    def state(self, spec: str) -> dict:
        return self.result(STATE_JOB, spec)

    def cli(self, *argv: str, env: dict | None = None) -> dict:
        out = self.out()
        self.run(CLI_JOB, [out, *argv], env=env)
        return json.loads(Path(out).read_text())

    def stop(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
        self.errlog.close()


def _spec(kind: str, base: Path) -> str:
    return {
        "duckdb": f"duckdb:{base}.duckdb",
        "parquet": f"parquet:{base}",
        "chdb": f"chdb:{base}",
    }[kind]


def _copy_store(kind: str, src: Path, dst: Path) -> None:
    if kind == "duckdb":
        shutil.copy2(f"{src}.duckdb", f"{dst}.duckdb")
    else:
        shutil.copytree(src, dst, symlinks=True)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("crash-files")
    return {
        "A": tardis_book(
            d / "A.csv.gz", [(D0_US + DAY_US - 10_000_000, 300), (D0_US + DAY_US + 1_000_000, 300)]
        ),
        "B": tardis_book(
            d / "B.csv.gz",
            [(D0_US + DAY_US + 20_000_000, 300), (D0_US + 2 * DAY_US + 1_000_000, 300)],
            3,
        ),
        "C": tardis_book(d / "C.csv.gz", [(D0_US + 3 * DAY_US, 300)], 5),
    }


@pytest.fixture(scope="module")
def jobs(tmp_path_factory, files):
    j = Jobs(tmp_path_factory.mktemp("zygote"), files["C"])
    yield j
    j.stop()


@pytest.fixture(scope="module")
def templates(tmp_path_factory, files, jobs) -> dict[str, dict]:
    """Per store: a copy holding A (the state before) and the states before/after B.
    Written by jobs (chDB runs one engine per process: none in the test process)."""
    d = tmp_path_factory.mktemp("crash-templates")
    out = {}
    for kind in ("duckdb", "parquet", "chdb"):
        before = d / f"{kind}-before"
        after = d / f"{kind}-after"
        jobs.result(IMPORT_JOB, _spec(kind, before), str(files["A"]))
        _copy_store(kind, before, after)
        jobs.result(IMPORT_JOB, _spec(kind, after), str(files["B"]))
        s_before, s_after = jobs.state(_spec(kind, before)), jobs.state(_spec(kind, after))
        assert s_before["rows"] == 612 and s_after["rows"] == 612 + 612
        out[kind] = {"path": before, "before": s_before, "after": s_after}
    return out


def _debris(kind: str, base: Path) -> list[str]:
    if kind == "parquet":
        left = [p.name for p in (base / ".staging").glob("*")]
        left += [p.name for p in base.glob("current.tmp-*")]
        current = int(os.readlink(base / "current").rpartition("/")[2])
        left += [
            v.name
            for v in (base / ".versions").iterdir()
            if int(v.name) not in (current, current - 1)
        ]
        return left
    if kind == "duckdb":
        return []  # DuckDB replays or drops its write-ahead log at open
    return []  # chDB: `uncommitted` in the state


# (store, step, state the store must be in after the kill: before or after the import)
STEPS = [
    ("duckdb", "import.appended", "before"),
    ("duckdb", "duckdb.before_commit", "before"),
    ("duckdb", "duckdb.committed", "after"),
    ("parquet", "import.appended", "before"),
    ("parquet", "parquet.merged", "before"),
    ("parquet", "parquet.synced", "before"),
    ("parquet", "parquet.version_renamed", "before"),
    ("parquet", "parquet.link_created", "before"),
    ("parquet", "parquet.before_dir_fsync", "after"),
    ("parquet", "parquet.committed", "after"),
    ("parquet", "parquet.cleaned", "after"),
    ("chdb", "import.appended", "before"),
    ("chdb", "chdb.before_commit", "before"),
    ("chdb", "chdb.committed", "after"),
]


@pytest.mark.parametrize(("kind", "step", "expect"), STEPS, ids=[f"{k}-{s}" for k, s, _e in STEPS])
def test_writer_killed_at_each_commit_step(kind, step, expect, templates, files, jobs, tmp_path):
    t = templates[kind]
    base = tmp_path / "s"
    _copy_store(kind, t["path"], base)
    spec = _spec(kind, base)
    killed = jobs.run(
        IMPORT_JOB, [spec, str(files["B"]), jobs.out()], env={"TICKPARITY_CRASH_AT": step}
    )
    assert killed == [-signal.SIGKILL]
    res = jobs.result(CHECK_JOB, spec, str(files["B"]))
    first, again, last = res["first"], res["again"], res["last"]
    # exactly before or exactly after, no debris, and the re-import does the right thing
    assert first == t[expect], (step, first)
    assert first["uncommitted"] == 0  # chDB: the next open deleted the killed import's rows
    assert _debris(kind, base) == []
    if expect == "before":  # nothing of B landed: importing it again lands it once
        assert again == "imported"
    else:  # B landed: it is refused, book rows included
        assert "already imported" in again
    assert last == t["after"]


@pytest.mark.parametrize("kind", ["duckdb", "parquet", "chdb"])
def test_two_writers_at_once(kind, templates, files, jobs, tmp_path):
    """Two imports started together: one waits for the lock; both land, nothing twice."""
    base = tmp_path / "s"
    _copy_store(kind, templates[kind]["path"], base)
    spec = _spec(kind, base)
    rcs = jobs.run(
        IMPORT_JOB, [spec, str(files["B"]), jobs.out()], [spec, str(files["C"]), jobs.out()]
    )
    assert rcs == [0, 0], (jobs.tmp / "zygote.err").read_text()[-3000:]
    # then the same new file twice at once: one lands, the other is refused
    new = tardis_book(tmp_path / "E.csv.gz", [(D0_US + 5 * DAY_US, 100)], 11)
    outs = [jobs.out(), jobs.out()]
    rcs = jobs.run(CHECK_JOB, [spec, str(new), outs[0]], [spec, str(new), outs[1]])
    assert rcs == [0, 0], (jobs.tmp / "zygote.err").read_text()[-3000:]
    res = [json.loads(Path(o).read_text()) for o in outs]
    # the state each saw first: B and C both landed, once (A 612 + B 612 + C 312 rows)
    assert min(r["first"]["rows"] for r in res) == 612 + 612 + 312
    again = sorted(r["again"] for r in res)
    assert again[1] == "imported" and "already imported" in again[0], again
    assert max(r["last"]["rows"] for r in res) == 612 + 612 + 312 + 112
    assert res[0]["last"] == res[1]["last"]


def test_second_writer_names_the_holder(tmp_path, files, jobs):
    """A writer that cannot get the lock in time fails in one line naming the holder."""
    spec = f"duckdb:{tmp_path / 'l.duckdb'}"
    lock = WriterLock(tmp_path / "l.duckdb", spec).acquire()
    try:
        res = jobs.cli(
            "data", "import", "--format", "tardis", str(files["A"]), "--to", spec,
            env={"TICKPARITY_LOCK_TIMEOUT": "0.3"},
        )  # fmt: skip
    finally:
        lock.release()
    err = res["err"].strip().splitlines()
    assert res["rc"] == 2 and len(err) == 1, res["err"]
    assert f"pid {os.getpid()}" in err[0] and "waited 0.3s" in err[0] and "since 20" in err[0]
    _import(spec, files["A"])  # free again
    assert _state(spec)["rows"] == 612


def test_chdb_second_process_is_told_what_to_use(tmp_path, templates, jobs):
    """Two backtests on one chDB store: the second says why, and what to use instead."""
    spec = _spec("chdb", tmp_path / "s")
    _copy_store("chdb", templates["chdb"]["path"], tmp_path / "s")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom replay.stores import open_store\n"
            "s = open_store(sys.argv[1]); print('open', flush=True); time.sleep(60)",
            spec,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        res = jobs.cli("data", "ls", spec, env={"TICKPARITY_LOCK_TIMEOUT": "0.2"})
    finally:
        holder.kill()
        holder.wait()
    err = res["err"].strip().splitlines()
    assert res["rc"] == 2 and len(err) == 1, res["err"]
    for words in (
        f"pid {holder.pid}",
        "one engine per store and process",
        "DuckDB",
        "Parquet",
        "ClickHouse server",
    ):
        assert words in err[0]


def test_reimport_refused_book_rows_included(tmp_path, files, capsys):
    """A book-only file imported twice used to duplicate every row (only trade ids were
    checked); now the second import is refused unless --force, on every store."""
    from modes.cli import main

    for kind in ("duckdb", "parquet"):
        spec = _spec(kind, tmp_path / kind)
        assert main(["data", "import", "--format", "tardis", str(files["A"]), "--to", spec]) == 0
        before = _state(spec)
        capsys.readouterr()
        for extra in ([], ["--skip"], ["--repair"]):
            rc = main(
                ["data", "import", "--format", "tardis", str(files["A"]), "--to", spec, *extra]
            )
            err = capsys.readouterr().err.strip().splitlines()
            assert (
                rc == 2 and len(err) == 1 and "already imported" in err[0] and "--force" in err[0]
            )
        assert _state(spec) == before
        # a copy under another name has the same bytes: refused too, naming the first name
        copy = tmp_path / f"copy-{kind}.csv.gz"
        shutil.copy(files["A"], copy)
        rc = main(["data", "import", "--format", "tardis", str(copy), "--to", spec])
        assert rc == 2 and f"as {files['A']}" in capsys.readouterr().err
        assert main(["data", "check", spec]) == 0  # imported once: no duplicate_rows
        capsys.readouterr()
        rc = main(
            ["data", "import", "--format", "tardis", str(files["A"]), "--to", spec, "--force"]
        )
        assert rc == 0 and _state(spec)["rows"] == 2 * before["rows"]
        # `data check` now sees the duplicated book rows (it used to say "no errors");
        # every timestamp of the file repeats: 1 snapshot + 600 updates
        capsys.readouterr()
        assert main(["data", "check", spec]) == 1
        out = capsys.readouterr().out
        assert "duplicate_rows 601" in out, out


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
    )
    return proc.returncode == 0


@pytest.fixture
def small_fs(tmp_path):
    """A 3 MB tmpfs where mounting is allowed (root in the sandbox and in CI), else None
    (the test then injects ENOSPC into the store's writes)."""
    mnt = tmp_path / "full"
    mounted = _mount_tmpfs(mnt, "3m")
    yield mnt, mounted
    if mounted:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.mark.parametrize("kind", ["duckdb", "parquet", "chdb"])
def test_full_disk_is_one_line_and_leaves_the_store_unchanged(kind, small_fs, files, jobs):
    """`data generate` of 3 minutes (~230k rows) into a store on a 3 MB file system."""
    mnt, mounted = small_fs
    spec = _spec(kind, mnt / "s")
    env = {"TICKPARITY_LOCK_TIMEOUT": "5"}
    if not mounted:  # no tmpfs allowed: the same path with ENOSPC injected mid-import
        env["TICKPARITY_ENOSPC_AT"] = "import.appended"
    jobs.result(IMPORT_JOB, spec, str(files["A"]))
    before = jobs.state(spec)
    began = time.monotonic()
    res = jobs.cli(
        "data", "generate", "--to", spec, "--instrument", "binance:ETH/USDT", "--seed", "1",
        "--duration", "3m", env=env,
    )  # fmt: skip
    assert time.monotonic() - began < 90  # no hang (chDB's rollback used to wait forever)
    err = res["err"].strip().splitlines()
    assert res["rc"] == 2 and len(err) == 1, res["err"][-2000:]
    assert err[0].startswith(f"tickparity: error: {spec}: disk full"), err[0]
    assert "free on the file system" in err[0] and "needs about" in err[0] and " MB" in err[0]
    after = jobs.state(spec)
    assert after == before  # unchanged, and (chDB) no uncommitted rows after the next open
    if kind == "parquet":
        assert _debris(kind, mnt / "s") == []


def test_readers_never_see_a_half_written_parquet_import(tmp_path, files):
    """A reader opened before a commit keeps its complete version; a new one sees the next."""
    from replay.stores import open_store

    spec = _spec("parquet", tmp_path / "p")
    _import(spec, files["A"])
    reader = open_store(spec)
    try:
        rows = sum(len(c) for c in reader.stream("binance:BTC/USDT", None, None, 1 << 16))
        _import(spec, files["B"])
        _import(spec, files["C"])  # would remove the reader's version if it were not in use
        again = sum(len(c) for c in reader.stream("binance:BTC/USDT", None, None, 1 << 16))
        assert again == rows == 612
    finally:
        reader.close()
    assert _state(spec)["rows"] == 612 + 612 + 312
    # the dataset at DIR/current is a plain hive dataset for DuckDB and pyarrow
    import duckdb
    import pyarrow.dataset as pds

    n = (
        duckdb.connect()
        .execute(
            f"SELECT count(*) FROM read_parquet('{tmp_path / 'p'}/current/*/*/*/*.parquet', hive_partitioning = true)"
        )
        .fetchone()[0]
    )
    assert n == 1536 == pds.dataset(tmp_path / "p" / "current", partitioning="hive").count_rows()
    # the next import removes the version the reader held
    _import(spec, tardis_book(tmp_path / "D.csv.gz", [(D0_US + 4 * DAY_US, 10)], 9))
    assert sorted(v.name for v in (tmp_path / "p" / ".versions").iterdir()) == ["000003", "000004"]


def test_data_repair_says_what_it_did(tmp_path, files, jobs, capsys):
    from modes.cli import main

    base = tmp_path / "p"
    spec = _spec("parquet", base)
    _import(spec, files["A"])
    killed = jobs.run(
        IMPORT_JOB,
        [spec, str(files["B"]), jobs.out()],
        env={"TICKPARITY_CRASH_AT": "parquet.version_renamed"},
    )
    assert killed == [-signal.SIGKILL]
    capsys.readouterr()
    assert main(["data", "repair", spec]) == 0
    out = capsys.readouterr().out
    assert "deleted .staging/" in out and "deleted .versions/000002" in out
    assert main(["data", "repair", spec]) == 0
    assert "nothing to repair" in capsys.readouterr().out
    assert _state(spec)["rows"] == 612
    duck = _spec("duckdb", tmp_path / "d")
    _import(duck, files["A"])
    assert main(["data", "repair", duck]) == 0
    assert main(["data", "repair", f"duckdb:{tmp_path / 'none.duckdb'}"]) == 2


def test_legacy_parquet_layout_is_read_and_converted(tmp_path, files):
    """A dataset written before versions (meta + hive tree at DIR) reads in place and is
    converted by its next import, leaving nothing of the old layout."""
    spec = _spec("parquet", tmp_path / "p")
    _import(spec, files["A"])
    want = _state(spec)
    root = tmp_path / "p"
    vdir = root / os.readlink(root / "current")
    for item in vdir.iterdir():
        shutil.move(str(item), root / item.name)
    (root / "current").unlink()
    shutil.rmtree(root / ".versions")
    assert _state(spec) == want
    _import(spec, files["B"])
    assert _state(spec)["rows"] == 1224
    assert sorted(p.name for p in root.iterdir()) == [".staging", ".versions", "current"]
    assert [p.name for p in (root / ".versions").iterdir()] == ["000001"]


def test_the_same_rows_recompressed_are_refused_as_already_imported(tmp_path, capsys):
    """Issue 17 (3), found by a new user: a file imported once, then its gzip copy, must not
    double the rows; the digest is of the content, so both are one source."""
    import gzip
    import shutil

    from modes.cli import main

    csv = tmp_path / "book.csv"
    csv.write_text("exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount\n"
                   "binance,BTCUSDT,1723075200000000,1723075200001000,true,bid,59999.00,1.0\n"
                   "binance,BTCUSDT,1723075200000000,1723075200001000,true,ask,60001.00,2.0\n"
                   "binance,BTCUSDT,1723075201000000,1723075201001000,false,bid,59999.00,1.5\n")
    with open(csv, "rb") as src, gzip.open(tmp_path / "book.csv.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    store = f"duckdb:{tmp_path / 's.duckdb'}"
    assert main(["data", "import", "--format", "tardis", str(csv), "--to", store]) == 0
    capsys.readouterr()
    assert main(["data", "import", "--format", "tardis", str(tmp_path / "book.csv.gz"), "--to", store]) == 2
    assert "already imported" in capsys.readouterr().err
