"""`tickparity stress`: the strategy x scenario matrix, in parallel processes, for CI;
`tickparity sweep`: the same matrix over the points of a strategy parameter grid.

For every strategy run config and every scenario file, one backtest runs the strategy on the
scenario's base data with the scenario's feed perturbations (`run_backtest(feed_transform=)`),
then the scenario's invariants are checked on the run directory. Each strategy also runs once
on each distinct unperturbed base, so every cell reports the cost of the disaster (PnL,
drawdown, fill ratio differences). Outputs in `--out` (default runs/stress):
`stress.html` (one self-contained matrix), `junit.xml` (CI), `results.json`, and a run
directory per cell under `cells/`.

Process model (measured in ../shared/notes/scaleout.md): a ProcessPoolExecutor with the
spawn start method; at most `--jobs` jobs in flight, so when a worker dies (BrokenProcessPool)
only those are suspect: each is re-run alone in a fresh pool, and the one that kills its
worker again is reported as crashed while the matrix goes on. Results are keyed by job index
and every cell is a deterministic backtest, so the results are identical whatever `--jobs`
(wall times aside). Ctrl-C terminates every worker and exits 130. Exit status: 0 when every
invariant holds, 3 when one broke or a cell could not run, 2 for a user error.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import multiprocessing
import os
import re
import shlex
import sys
import time
import traceback
import xml.etree.ElementTree as ET
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine.errors import ConfigError, TickparityError, file_problem
from modes import cli_args

EXIT_BROKEN = 3
DEFAULT_OUT = "runs/stress"
VIAS = ("backtest", "emulator")


@dataclass(frozen=True)
class Job:
    """One backtest of the matrix: a cell (strategy x scenario) or a strategy's base run."""

    index: int
    strategy_file: str
    strategy: str  # display name (the config file's stem, made unique)
    scenario_file: str
    scenario: str  # scenario name, or "base:<data>" for an unperturbed base run
    is_base: bool
    base_index: int | None  # index of the base job of a cell
    out: str
    report: bool
    params: tuple[tuple[str, Any], ...] = ()  # strategy parameter overrides (a sweep's grid point)
    via: str = "backtest"  # "emulator": a testnet session against the exchange emulator (modes.stress_emulator)
    same_as_base: bool = False  # the scenario moves nothing in this run: its invariants are checked on the base run


def _strategy_config(path: str):
    from engine.config import load_config_file, resolve

    return resolve(load_config_file(path), {}, base_dir=str(Path(path).parent), config_file=path)


def _fingerprint(run_dir: Path) -> str:
    """sha256 of the run's orders and fills (what determinism promises), for comparisons:
    the tables' Arrow IPC bytes (schema and values; one chunk each), which are the same for
    the same rows. Why not JSON of the rows: that took 0.5-1.7 s per market-maker cell (24k
    orders), the Arrow bytes 0.04 s."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    digest = hashlib.sha256()
    for name in ("orders.parquet", "fills.parquet"):
        table = pq.read_table(run_dir / name).combine_chunks()
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        digest.update(memoryview(sink.getvalue()))
    return digest.hexdigest()


def _record_invariants(run_dir: Path, invariants: list[dict[str, Any]]) -> None:
    """Add the `invariants` list the run report renders (README, Execution-quality report) to
    summary.json: name, ok, detail, plus the status and first offending time."""
    path = run_dir / "summary.json"
    summary = json.loads(path.read_text())
    summary["invariants"] = [{"name": i["name"], "ok": i["status"] != "fail", "status": i["status"],
                              "first_ts": i["first_ts"],
                              "detail": i["detail"] + "".join(f"; {v['message']}" for v in i["violations"][:1])}
                             for i in invariants]
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def run_job(job: Job) -> dict[str, Any]:
    """Run one job (in a worker process); never raises for a user error or a bug of the run:
    the outcome is in the returned dict's `status` (pass, fail, error, crashed)."""
    os.environ["TICKPARITY_PROGRESS"] = "0"  # workers stay quiet; the parent shows the matrix bar
    started = time.perf_counter()
    out: dict[str, Any] = {"index": job.index, "invariants": [], "figures": None, "error": None}
    try:
        from modes.backtest import run_backtest
        from scenarios import RunRecords, load_scenario, run_figures

        scenario = load_scenario(job.scenario_file)
        config = _strategy_config(job.strategy_file)
        if job.params:
            config = replace(config, params={**config.params, **dict(job.params)})
        config = scenario.run_config(config)
        if job.via == "emulator":
            from modes.stress_emulator import run_via_emulator

            run_dir = run_via_emulator(scenario, config, job.out)
        else:
            transform = None if job.is_base else scenario.feed_transform()
            faults = None if job.is_base else scenario.venue_faults()
            marks = None if job.is_base else scenario.quote_marks()
            run_dir = run_backtest(config, job.out, write_html=False, feed_transform=transform,
                                   venue_faults=faults, quote_marks=marks, warn_defaults=False)
        records = RunRecords(run_dir)
        results = [] if job.is_base else [inv.check(records) for inv in scenario.build_invariants()]
        out["invariants"] = [r.to_json() for r in results]
        out["figures"] = run_figures(records)
        out["fingerprint"] = _fingerprint(run_dir)
        out["status"] = "fail" if any(r.status == "fail" for r in results) else "pass"
        if not job.is_base:
            _record_invariants(run_dir, out["invariants"])
            (run_dir / "stress.json").write_text(json.dumps({
                "scenario": scenario.name, "scenario_file": str(job.scenario_file),
                "scenario_sha256": hashlib.sha256(Path(job.scenario_file).read_bytes()).hexdigest(),
                "strategy_file": job.strategy_file, "status": out["status"],
                "invariants": out["invariants"]}, indent=2) + "\n")
        if job.report:
            from reports import write_report

            write_report(run_dir)  # after the invariants are in summary.json: the report shows them
    except TickparityError as exc:
        out["status"] = "error"
        out["error"] = f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # a bug in a strategy or in tickparity: report it, keep the matrix going
        out["status"] = "crashed"
        out["error"] = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"
    out["wall_seconds"] = round(time.perf_counter() - started, 3)
    return out


# -- planning --------------------------------------------------------------------------------


def expand_scenarios(patterns: list[str] | None) -> list[Path]:
    """Scenario files from paths or globs (default: the shipped library), sorted, de-duplicated."""
    from scenarios import LIBRARY_DIR

    if not patterns:
        patterns = [str(LIBRARY_DIR / "*.toml")]
    files: dict[str, Path] = {}
    for pattern in patterns:
        matches = sorted(glob.glob(pattern, recursive=True))
        if not matches:
            raise ConfigError(f"--scenarios {pattern!r}: no scenario file matches")
        for match in matches:
            path = Path(match)
            if path.is_file():
                files.setdefault(str(path.resolve()), path)
    if not files:
        raise ConfigError(f"--scenarios {' '.join(patterns)}: no scenario file matches")
    return list(files.values())


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "x"


Variant = tuple[str, tuple[tuple[str, Any], ...]]  # (run config file, parameter overrides)


def variant_name(file: str, params: tuple[tuple[str, Any], ...]) -> str:
    """Display name of a strategy variant: the config's stem, plus [k=v,...] for a grid point."""
    stem = Path(file).stem
    return stem if not params else f"{stem}[{','.join(f'{k}={v}' for k, v in params)}]"


def plan(variants: list[Variant], scenario_files: list[Path], out: Path, report: bool,
         via: str = "backtest") -> list[Job]:
    """All jobs: per strategy variant, its base runs first (one per distinct base), then its
    cells. Validates every strategy config and scenario file before anything runs. With
    `via = "emulator"` the cells are testnet sessions against the exchange emulator and
    there are no base runs (no cost of the disaster); a scenario it cannot run is refused."""
    from modes.backtest import resolve_run, select_instruments
    from modes.console import warn
    from scenarios import load_scenario

    if via not in VIAS:
        raise ConfigError(f"--via {via!r}: expected one of {list(VIAS)}")
    scenarios = [load_scenario(f) for f in scenario_files]
    if via == "emulator":
        from modes.stress_emulator import check_scenarios

        check_scenarios(scenarios)
    names = [s.name for s in scenarios]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"scenario name(s) {dup} used by more than one file; names key the matrix")
    jobs: list[Job] = []
    defaults: dict[str, None] = {}  # the venue defaults the cells fall back on, in order, once each
    seen: dict[str, int] = {}
    for file, params in variants:
        if (problem := file_problem(file)) is not None:
            raise ConfigError(f"--strategies: run config {problem}: {file}")
        config = _strategy_config(file)
        display = variant_name(file, params)
        seen[display] = seen.get(display, 0) + 1
        name = display if seen[display] == 1 else f"{display}-{seen[display]}"
        folder = out / "cells" / _slug(name)
        bases: dict[tuple, int] = {}
        checked: set[tuple] = set()
        for scenario in scenarios:
            key = scenario.run_config(config)
            base_key = (key.data, key.start_ns, key.end_ns)
            if base_key not in checked:  # [venues.X], [risk], the strategy: a typo is a user error
                checked.add(base_key)    # (exit 2, nothing runs), not a matrix of cells that could not run
                defaults.update(dict.fromkeys(resolve_run(key).defaults))  # told once, not once per cell
            if base_key not in bases and via == "backtest":
                bases[base_key] = len(jobs)
                label = f"base:{key.data}"
                jobs.append(Job(len(jobs), str(file), name, str(scenario.path), label, True, None,
                                str(folder / f"_base-{len(bases)}"), report, params))
        for scenario in scenarios:
            key = scenario.run_config(config)
            if via == "emulator":  # refused before anything runs, as an unsupported fault kind
                from modes.stress_emulator import check_instruments

                check_instruments(select_instruments(key), f"{file}: ")
            base_index = bases.get((key.data, key.start_ns, key.end_ns))
            same = base_index is not None and scenario.moves_nothing(list(select_instruments(key).values()))
            jobs.append(Job(len(jobs), str(file), name, str(scenario.path), scenario.name, False, base_index,
                            jobs[base_index].out if same else str(folder / scenario.name), report, params, via,
                            same))
    for line in defaults:  # once the whole matrix is valid, so a user error stays one line
        warn(line)
    return jobs


# -- running ---------------------------------------------------------------------------------


def _pool(jobs: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"))


def _kill(pool: ProcessPoolExecutor) -> None:
    """Terminate every worker now (Ctrl-C): cancel queued work, then stop the processes."""
    processes = list(getattr(pool, "_processes", {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        if proc.is_alive():
            proc.terminate()
    for proc in processes:
        proc.join(timeout=5)


def _crashed(job: Job, exc: BaseException) -> dict[str, Any]:
    return {"index": job.index, "status": "crashed", "invariants": [], "figures": None,
            "error": f"the worker process died ({type(exc).__name__}: {exc})", "wall_seconds": None}


def execute(jobs: list[Job], workers: int, on_done=None) -> list[dict[str, Any]]:
    """Run the jobs on `workers` spawned processes; results in job order."""
    results: dict[int, dict[str, Any]] = {}
    queue = list(jobs)
    pool = _pool(workers)
    running: dict[Future, Job] = {}
    try:
        while queue or running:
            while queue and len(running) < workers:
                try:
                    future = pool.submit(run_job, queue[0])
                except BrokenProcessPool:  # a worker died since the last wait
                    if not running:  # nothing in flight to blame: start over with a fresh pool
                        pool.shutdown(wait=False, cancel_futures=True)
                        pool = _pool(workers)
                        continue
                    break  # the futures in flight fail below and are re-run one by one
                running[future] = queue.pop(0)
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            suspects = []
            for future in done:
                job = running.pop(future)
                try:
                    results[job.index] = future.result()
                except BrokenProcessPool:
                    suspects.append(job)
                    continue
                if on_done is not None:
                    on_done(results[job.index])
            if suspects:
                # a worker died: every job in flight failed with it; re-run each alone
                suspects += list(running.values())
                running.clear()
                pool.shutdown(wait=False, cancel_futures=True)
                for job in sorted(suspects, key=lambda j: j.index):
                    results[job.index] = _run_alone(job)
                    if on_done is not None:
                        on_done(results[job.index])
                pool = _pool(workers)
    except BaseException:
        _kill(pool)
        raise
    pool.shutdown(wait=True)
    return [results[j.index] for j in jobs]


def check_on_base(job: Job, base: dict[str, Any]) -> dict[str, Any]:
    """The result of a cell whose scenario moves nothing in its run (`Job.same_as_base`):
    the scenario's invariants checked on the base run's directory (the same rows, orders
    and fills a replay of the cell would give)."""
    from scenarios import RunRecords, load_scenario

    started = time.perf_counter()
    out = {"index": job.index, "invariants": [], "figures": base.get("figures"), "error": base.get("error"),
           "fingerprint": base.get("fingerprint"), "status": base["status"], "same_as_base": True}
    if base["status"] == "pass":
        try:
            results = [inv.check(RunRecords(Path(job.out))) for inv in load_scenario(job.scenario_file).build_invariants()]
            out["invariants"] = [r.to_json() for r in results]
            out["status"] = "fail" if any(r.status == "fail" for r in results) else "pass"
        except TickparityError as exc:
            out["status"], out["error"] = "error", f"{type(exc).__name__}: {exc}"
    out["wall_seconds"] = round(time.perf_counter() - started, 3)
    return out


def _run_alone(job: Job) -> dict[str, Any]:
    single = _pool(1)
    try:
        return single.submit(run_job, job).result()
    except BrokenProcessPool as exc:
        return _crashed(job, exc)
    except BaseException:
        _kill(single)
        raise
    finally:
        single.shutdown(wait=False, cancel_futures=True)


RAY_LOCAL = "ray-local"


def _check_reachable(address: str) -> None:
    """A HOST:PORT (or ray://HOST:PORT) that refuses connections is a user error now, not a
    minutes-long wait in ray.init's retries."""
    import socket

    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        if address != "auto":
            raise ConfigError(f"--cluster {address}: expected {RAY_LOCAL}, ray://HOST:PORT, HOST:PORT or auto")
        return
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise ConfigError(f"--cluster {address}: cannot connect to Ray ({exc})") from None


def execute_ray(jobs: list[Job], address: str, on_done=None) -> list[dict[str, Any]]:
    """Run the jobs as Ray tasks (the scale-out, ../shared/notes/scaleout.md); results in job
    order, exactly what `execute` returns.

    `address`: "ray-local" starts a private Ray instance on this machine for the run
    (`ray.init(address="local")`, never a leftover cluster); "ray://HOST:PORT" connects
    through Ray Client; "HOST:PORT" or "auto" joins a running cluster from one of its nodes.
    Every node needs tickparity installed and must see the strategy, scenario and data
    paths and `--out` (a shared filesystem); each task writes its cell's run directory
    there. A task whose worker dies is retried once by Ray, then reported `crashed` like a
    dead pool worker; Ctrl-C cancels every task (force) and exits 130.
    """
    try:
        import ray
        from ray.exceptions import RayError, RayTaskError
    except ImportError:
        raise ConfigError("--cluster needs Ray: pip install 'tickparity[ray]' (ray>=2.40)") from None
    started_here = not ray.is_initialized()
    if started_here and address != RAY_LOCAL:
        _check_reachable(address)
    if started_here:
        try:
            if address == RAY_LOCAL:
                ray.init(address="local", include_dashboard=False, log_to_driver=False)
            else:
                ray.init(address=address, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ConfigError(f"--cluster {address}: cannot connect to Ray ({type(exc).__name__}: {exc})") from None
    task = ray.remote(max_retries=1)(run_job)
    pending = {task.remote(job): job for job in jobs}
    results: dict[int, dict[str, Any]] = {}
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                job = pending.pop(ref)
                try:
                    results[job.index] = ray.get(ref)
                except RayTaskError as exc:  # run_job never raises: this is the worker itself
                    results[job.index] = _crashed(job, exc)
                except RayError as exc:  # the worker or its node died (after Ray's retry)
                    results[job.index] = _crashed(job, exc)
                if on_done is not None:
                    on_done(results[job.index])
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    finally:
        if started_here:
            ray.shutdown()
    return [results[j.index] for j in jobs]


# -- reporting -------------------------------------------------------------------------------


def _toml_literal(value: Any) -> str:
    """A grid value as the TOML literal `--grid` reads back (a Decimal as its text: its
    repr, Decimal('0.5'), is no TOML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return str(value) if isinstance(value, Decimal) else repr(value)


def rerun_command(job: Job, out: Path) -> str:
    """The one command that reruns this cell (and its unperturbed base) alone."""
    where = str(out / "rerun" / _slug(f"{job.strategy}__{job.scenario}"))
    if job.params:
        grid = [arg for k, v in job.params for arg in ("--grid", f"{k}={_toml_literal(v)}")]
        return shlex.join(["tickparity", "sweep", "--strategy", job.strategy_file, *grid, "--scenarios",
                           job.scenario_file, "--jobs", "1", "--out", where])
    via = ["--via", job.via] if job.via != "backtest" else []
    return shlex.join(["tickparity", "stress", "--strategies", job.strategy_file, "--scenarios",
                       job.scenario_file, *via, "--jobs", "1", "--out", where])


def assemble(jobs: list[Job], results: list[dict[str, Any]], out: Path) -> list[dict[str, Any]]:
    """One record per cell (base runs folded in as the cost-of-disaster reference)."""
    from replay.schema import format_ns
    from scenarios import cost_of_disaster

    cells = []
    for job, res in zip(jobs, results, strict=True):
        if job.is_base:
            continue
        base = results[job.base_index] if job.base_index is not None else None
        cost = None
        if res.get("figures") and base and base.get("figures"):
            cost = cost_of_disaster(res["figures"], base["figures"])
        broken = [inv for inv in res["invariants"] if inv["status"] == "fail"]
        for inv in res["invariants"]:
            inv["first_time"] = format_ns(inv["first_ts"]) if inv["first_ts"] is not None else None
        report = Path(job.out) / "report.html"
        cells.append({
            "index": job.index, "strategy": job.strategy, "strategy_file": job.strategy_file,
            "params": dict(job.params),
            "scenario": job.scenario, "scenario_file": job.scenario_file, "run_dir": job.out,
            "status": res["status"], "error": res.get("error"), "invariants": res["invariants"],
            "broken": [inv["name"] for inv in broken], "figures": res.get("figures"),
            "base_figures": base.get("figures") if base else None, "base_status": base["status"] if base else None,
            "base_error": base.get("error") if base else None, "cost": cost,
            "fingerprint": res.get("fingerprint"), "wall_seconds": res.get("wall_seconds"),
            "report": os.path.relpath(report, out) if report.exists() else None,
            "rerun": None if res["status"] == "pass" else rerun_command(job, out),
        })
    return cells


def write_junit(cells: list[dict[str, Any]], path: Path) -> None:
    """JUnit XML: one testcase per cell (classname stress.<strategy>, name <scenario>)."""
    failures = sum(c["status"] == "fail" for c in cells)
    errors = sum(c["status"] in ("error", "crashed") for c in cells)
    suite = ET.Element("testsuite", name="tickparity.stress", tests=str(len(cells)),
                       failures=str(failures), errors=str(errors))
    for c in cells:
        case = ET.SubElement(suite, "testcase", classname=f"stress.{c['strategy']}", name=c["scenario"],
                             time=str(c["wall_seconds"] or 0))
        if c["status"] == "fail":
            broken = [i for i in c["invariants"] if i["status"] == "fail"]
            message = "; ".join(f"{i['name']} at {i['first_time']}" for i in broken)
            node = ET.SubElement(case, "failure", message=message, type="InvariantBroken")
            node.text = "\n".join(f"{i['name']}: {i['detail']}\n" + "\n".join(
                f"  {v['ts']}: {v['message']}" for v in i["violations"]) for i in broken)
        elif c["status"] in ("error", "crashed"):
            node = ET.SubElement(case, "error", message=(c["error"] or "").splitlines()[0][:500],
                                 type=c["status"])
            node.text = c["error"]
        if c["rerun"]:
            ET.SubElement(case, "system-out").text = f"rerun: {c['rerun']}"
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    path.write_text(ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n")


def write_html(cells: list[dict[str, Any]], strategies: list[str], scenarios: list[str], path: Path,
               meta: dict[str, Any]) -> None:
    """The self-contained matrix (inline CSS, no script or network), from modes/stress.html."""
    from importlib import resources

    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: resources.files("modes").joinpath(name).read_text("utf-8")),
        autoescape=True, undefined=jinja2.StrictUndefined)
    grid = {(c["strategy"], c["scenario"]): c for c in cells}
    html = env.get_template("stress.html").render(cells=cells, grid=grid, strategies=strategies,
                                                  scenarios=scenarios, meta=meta)
    path.write_text(html, encoding="utf-8")


def run_stress(strategy_files: list[str], scenario_patterns: list[str] | None, out: str | Path = DEFAULT_OUT,
               jobs: int | None = None, report: bool = True, echo=print,
               cluster: str | None = None, via: str = "backtest") -> tuple[int, list[dict[str, Any]]]:
    """Plan, run and report the matrix; returns (exit status, cells). Python API of the command.
    `cluster` (None: the local process pool) is a Ray address, see `execute_ray`; `via`
    "emulator" runs each cell as a testnet session against the exchange emulator
    (modes.stress_emulator; `jobs` defaults to 1 there: the sessions run in real time)."""
    if via == "emulator" and jobs is None:
        jobs = 1
    return _run_matrix([(str(f), ()) for f in strategy_files], scenario_patterns, out, jobs, report, echo, cluster,
                       via)


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """['KEY=V1,V2', ...] -> {KEY: [V1, V2]}; values are TOML literals (1, 0.5, "0.01", true),
    or plain text when they are not. A number with a fraction is a Decimal from its text, as
    `--param` reads it (modes.cli._parse_param): it was a binary float, so a grid point ran
    the strategy with 0.5 as a float where `backtest --param x=0.5` gives Decimal('0.5')."""
    import tomllib

    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier() or not values.strip():
            raise ConfigError(f"--grid {item!r}: expected KEY=V1,V2,... (a strategy parameter and its values)")
        if key in grid:
            raise ConfigError(f"--grid {key}: given twice")
        try:
            parsed = tomllib.loads(f"v = [{values}]", parse_float=Decimal)["v"]
        except tomllib.TOMLDecodeError:
            parsed = [v.strip() for v in values.split(",")]
        same = {json.dumps(v, sort_keys=True, default=lambda d: str(d.normalize()) if isinstance(d, Decimal) else str(d))
                for v in parsed}  # 0.5 and 0.50 are one value
        if not parsed or len(same) != len(parsed):
            raise ConfigError(f"--grid {item!r}: give distinct values")
        grid[key] = list(parsed)
    if not grid:
        raise ConfigError("sweep: give at least one --grid KEY=V1,V2")
    return grid


def run_sweep(strategy_file: str, grid: dict[str, list[Any]], scenario_patterns: list[str] | None,
              out: str | Path = "runs/sweep", jobs: int | None = None, report: bool = True,
              echo=print, cluster: str | None = None) -> tuple[int, list[dict[str, Any]]]:
    """Every point of a strategy parameter grid x the scenarios, on the same process-pool runner
    (each grid point is a row of the matrix); returns (exit status, cells)."""
    import itertools

    keys = list(grid)
    variants = [(str(strategy_file), tuple(zip(keys, values, strict=True)))
                for values in itertools.product(*(grid[k] for k in keys))]
    return _run_matrix(variants, scenario_patterns, out, jobs, report, echo, cluster)


def _run_matrix(variants: list[Variant], scenario_patterns: list[str] | None, out: str | Path,
                jobs: int | None, report: bool, echo, cluster: str | None = None,
                via: str = "backtest") -> tuple[int, list[dict[str, Any]]]:
    from engine.progress import progress

    out = Path(out)
    files = expand_scenarios(scenario_patterns)
    plan_jobs = plan(variants, files, out, report, via)
    workers = max(1, min(jobs or (os.cpu_count() or 1), len(plan_jobs)))
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    to_run = [j for j in plan_jobs if not j.same_as_base]
    with progress("stress cells", total=len(plan_jobs), unit="cells") as bar:
        if cluster is None:
            ran = execute(to_run, workers, on_done=lambda _res: bar.advance(1))
        else:
            ran = execute_ray(to_run, cluster, on_done=lambda _res: bar.advance(1))
        by_index = {j.index: r for j, r in zip(to_run, ran, strict=True)}
        for j in plan_jobs:
            if j.same_as_base:
                by_index[j.index] = check_on_base(j, by_index[j.base_index])  # type: ignore[index]
                bar.advance(1)
        results = [by_index[j.index] for j in plan_jobs]
    wall = time.perf_counter() - started
    cells = assemble(plan_jobs, results, out)
    strategies = list(dict.fromkeys(j.strategy for j in plan_jobs))
    scenario_names = list(dict.fromkeys(c["scenario"] for c in cells))
    bases_bad = [(j, r) for j, r in zip(plan_jobs, results, strict=True) if j.is_base and r["status"] != "pass"]
    meta = {"jobs": workers if cluster is None else f"ray {cluster}", "cells": len(cells), "runs": len(plan_jobs), "wall_seconds": round(wall, 1),
            "passed": sum(c["status"] == "pass" for c in cells),
            "failed": sum(c["status"] == "fail" for c in cells),
            "errors": sum(c["status"] in ("error", "crashed") for c in cells) + len(bases_bad),
            "command": shlex.join(["tickparity", *sys.argv[1:]]) if sys.argv[1:2] in (["stress"], ["sweep"]) else ""}
    (out / "results.json").write_text(json.dumps(
        {"meta": meta, "jobs": [asdict(j) for j in plan_jobs], "results": results, "cells": cells},
        indent=2, default=str) + "\n")
    write_junit(cells, out / "junit.xml")
    write_html(cells, strategies, scenario_names, out / "stress.html", meta)
    for c in cells:
        if c["status"] == "pass":
            continue
        why = ", ".join(f"{i['name']} at {i['first_time']}" for i in c["invariants"] if i["status"] == "fail")
        echo(f"{c['status'].upper()} {c['strategy']} x {c['scenario']}: {why or (c['error'] or '').splitlines()[0]}")
        echo(f"  rerun: {c['rerun']}")
    for job, res in bases_bad:
        echo(f"{res['status'].upper()} {job.strategy} on the unperturbed base {job.scenario}: "
             f"{(res.get('error') or '').splitlines()[0] if res.get('error') else ''}")
    echo(f"{meta['passed']}/{len(cells)} cells passed ({meta['failed']} broke an invariant, {meta['errors']} could "
         f"not run) in {wall:.1f} s on {workers} process(es)")
    echo(f"matrix: {out / 'stress.html'}  junit: {out / 'junit.xml'}")
    ok = meta["passed"] == len(cells) and not bases_bad
    return (0 if ok else EXIT_BROKEN), cells


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "stress", help="run strategies x stress scenarios, check invariants (CI: exit 3 on a broken one)",
        description="Run every strategy run config on every scenario (docs/scenarios.md) in parallel "
                    "processes; write stress.html, junit.xml and results.json to --out. Exit 0 when every "
                    "invariant holds, 3 when one broke or a cell could not run.")
    p.add_argument("--strategies", nargs="+", required=True, metavar="CONFIG.toml",
                   help="strategy run configs (tickparity backtest --config files)")
    p.add_argument("--scenarios", nargs="+", metavar="GLOB",
                   help="scenario files or globs (default: the shipped library, scenarios/library/*.toml)")
    p.add_argument("--jobs", type=cli_args.integer(1), default=None, metavar="N", help="worker processes (default: CPU count)")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})")
    p.add_argument("--no-report", action="store_true", help="skip each cell's HTML report (faster)")
    p.add_argument("--cluster", metavar="ADDRESS", default=None,
                   help=f"run the cells on Ray: {RAY_LOCAL} (a private instance on this machine), "
                        "ray://HOST:PORT (Ray Client) or HOST:PORT/auto (a cluster this node belongs to); "
                        "default: a local process pool")
    p.add_argument("--via", choices=VIAS, default="backtest",
                   help="backtest (default), or emulator: each cell is a testnet session over ccxt against the "
                        "local exchange emulator replaying the perturbed data with the scenario's venue faults "
                        "(real time; --jobs defaults to 1)")
    p.set_defaults(func=_cmd_stress)
    w = subparsers.add_parser(
        "sweep", help="run a strategy parameter grid x stress scenarios (same runner and outputs as stress)",
        description="Run every point of a parameter grid of one strategy run config on every scenario, in "
                    "parallel processes; outputs and exit status as `tickparity stress` (docs/scenarios.md).")
    w.add_argument("--strategy", required=True, metavar="CONFIG.toml", help="the strategy run config")
    w.add_argument("--grid", action="append", required=True, metavar="KEY=V1,V2",
                   help="a [run.params] key and its values, TOML literals (repeatable; the grid is their product)")
    w.add_argument("--scenarios", nargs="+", metavar="GLOB",
                   help="scenario files or globs (default: the shipped library)")
    w.add_argument("--jobs", type=cli_args.integer(1), default=None, metavar="N", help="worker processes (default: CPU count)")
    w.add_argument("--out", default="runs/sweep", help="output directory (default runs/sweep)")
    w.add_argument("--no-report", action="store_true", help="skip each cell's HTML report (faster)")
    w.add_argument("--cluster", metavar="ADDRESS", default=None,
                   help=f"run the cells on Ray ({RAY_LOCAL}, ray://HOST:PORT, HOST:PORT or auto); "
                        "default: a local process pool")
    w.set_defaults(func=_cmd_sweep)


def _cmd_sweep(args: argparse.Namespace) -> int:
    if args.jobs is not None and args.jobs < 1:
        raise ConfigError(f"--jobs {args.jobs}: must be >= 1")
    status, _cells = run_sweep(args.strategy, parse_grid(args.grid), args.scenarios, args.out, args.jobs,
                               report=not args.no_report, cluster=args.cluster)
    return status


def _cmd_stress(args: argparse.Namespace) -> int:
    if args.jobs is not None and args.jobs < 1:
        raise ConfigError(f"--jobs {args.jobs}: must be >= 1")
    status, _cells = run_stress(args.strategies, args.scenarios, args.out, args.jobs, report=not args.no_report,
                                cluster=args.cluster, via=args.via)
    return status
