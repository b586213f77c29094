"""`tickparity paper | testnet | live --config RUN.toml` and `tickparity replay RUN_DIR`.

The run config is the backtest's TOML: `[run]` (strategy, instruments, params, seed),
`[risk]` and `[venues.X]`, whose live keys (`exchange`, `url`, `api_key_env`, `secret_env`,
`secrets_file`) a backtest accepts and ignores. `[run] data` is not read by a session: its
market is the venue's, and its instruments are the instruments file's (the shipped one, or
`instruments_file`). See docs/live.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from modes import cli_args

EXAMPLES = {
    "paper": "tickparity paper --config examples/market_maker.toml --duration 60",
    "testnet": "tickparity testnet --config run.toml --duration 60",
    "live": "tickparity live --config run.toml --out runs/live-today",
    "replay": "tickparity replay runs/paper-1a2b3c4d5e6f-20261130T120000Z",
}


def register(sub: argparse._SubParsersAction) -> None:
    helps = {"paper": "trade the live market on the simulated venue (backtest matching rules)",
             "testnet": "trade on the venue's sandbox (testnet URLs, or [venues.X] url)",
             "live": "trade real money (needs the account's name typed, or TICKPARITY_CONFIRM_LIVE=<account>)"}
    for mode, text in helps.items():
        p = sub.add_parser(mode, help=text, description=f"{text[0].upper()}{text[1:]}; records the session "
                           "into a run directory that `tickparity replay` re-runs (docs/live.md).")
        p.add_argument("--config", required=True, help="run config TOML (the backtest's)")
        p.add_argument("--out", help="run directory (default runs/<mode>-<run id>-<UTC time>)")
        p.add_argument("--duration", type=cli_args.SECONDS, metavar="SECONDS", help="stop after this long (default: Ctrl-C)")
        p.add_argument("--instrument", action="append", metavar="ID", help="instrument id to trade (repeatable)")
        p.add_argument("--param", action="append", metavar="KEY=VALUE", help="strategy parameter override")
        p.add_argument("--no-report", action="store_true", help="skip the HTML report")
        p.add_argument("--no-health", action="store_true", help="no live health table on the console")
        if mode != "paper":
            p.add_argument("--reconcile-confirm", type=cli_args.integer(), default=None, metavar="N",
                           help="consecutive reconciliations that count the same balance gap even while orders "
                                "are in flight (default 3; docs/live.md Reconciliation)")
        if mode != "paper":
            p.add_argument("--resume", metavar="RUN_DIR", help="take over the contingent orders (armed stops, "
                           "brackets...) a previous session of this account left in RUN_DIR "
                           "(docs/contingent-orders.md, Restart)")
        p.set_defaults(func=_cmd_session, mode=mode)
    r = sub.add_parser("replay", help="re-run a recorded paper/testnet/live session and compare",
                       description="Re-run a recorded session deterministically: identical orders, fills and "
                                   "ledger, or the first decision that differs. Exit status 3 when it differs.")
    r.add_argument("run_dir", help="the session's run directory")
    r.add_argument("--out", help="where the replay writes its run files (default: a temporary directory)")
    r.set_defaults(func=_cmd_replay)


def _cmd_session(args: argparse.Namespace) -> int:
    from engine.config import load_config_file, resolve
    from engine.errors import StrategyError
    from modes.cli import _headline, _parse_param
    from modes.live import run_live
    from modes.live.driver import NO_DATA

    file_values = load_config_file(args.config)
    overrides = {"instruments": args.instrument, "out": args.out}
    if not file_values.get("run", {}).get("data"):
        overrides["data"] = NO_DATA  # resolve() wants one; the session reads the venue's market
    if args.param:
        overrides["params"] = dict(_parse_param(p) for p in args.param)
    config = resolve(file_values, overrides, base_dir=str(Path(args.config).parent), config_file=args.config)

    def ask(prompt: str) -> str:
        return input(prompt)

    try:
        out = run_live(config, args.mode, args.out, duration_s=args.duration,
                       health=False if args.no_health else None, confirm=ask, write_html=not args.no_report,
                       resume=getattr(args, "resume", None),
                       **({} if getattr(args, "reconcile_confirm", None) is None
                          else {"reconcile_confirm": args.reconcile_confirm}))
    except StrategyError as exc:
        run_dir = getattr(exc, "run_dir", None)
        if run_dir is not None:  # the session stopped on it, its run directory is complete
            print(f"run directory: {run_dir} (stopped by the strategy error below)", flush=True)
        raise
    print(f"run directory: {out}")
    if (out / "report.html").exists():
        print(f"report: {out / 'report.html'}")
    print(_headline(out))
    return open_orders_status(out, args.mode)


#: the exit status of a testnet/live session that ended with orders still open at the venue
#: (docs/live.md "Run"; README "Exit statuses")
OPEN_ORDERS_LEFT = 4


def open_orders_status(run_dir: Path, mode: str) -> int:
    """0, or OPEN_ORDERS_LEFT when a testnet/live session ended with orders still open at the
    venue (`summary.json` `open_orders`: their cancels went unanswered within the shutdown's
    10 s, e.g. a 429 holding every request).

    Why its own status: the session ran and wrote its run directory (not a user error, 2),
    yet it left orders resting where they can fill with no session watching them; a script
    running sessions must be able to tell that from a clean end without parsing the
    console. Paper orders rest on the simulated venue only and end with the process."""
    import json

    if mode == "paper":
        return 0
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    left = summary.get("run", {}).get("open_orders") or []
    if left:
        print(f"exit status {OPEN_ORDERS_LEFT}: {len(left)} order(s) left open at the venue "
              f"(summary.json open_orders): {', '.join(left[:10])}")
        return OPEN_ORDERS_LEFT
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    from modes.live.replay import replay_session

    result = replay_session(args.run_dir, args.out)
    if result.difference is not None:
        print(f"replay of {args.run_dir}: DIFFERS after {result.steps} steps, {result.records} identical audit records")
        print(result.difference.text())
        return 3
    crashed = " (the recording ends in a crash: compared as far as it goes)" if result.crashed else ""
    print(f"replay of {args.run_dir}: identical{crashed} ({result.steps} steps, {result.records} audit records; "
          f"{', '.join(result.identical_files)})")
    if args.out:
        print(f"replayed run files: {args.out}")
    if result.crashed:  # what to do about its orders, checked against the run directory
        from modes.live.resume import crashed_next_step

        print(f"the session did not stop: {crashed_next_step(args.run_dir)}")
    return 0
