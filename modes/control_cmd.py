"""`tickparity kill | approve | refuse | resume RUN`: act on a running session.

Each command posts one atomic command file into RUN/control/inbox (engine.control); the
running session applies it at its next `poll_control()` and audits it with who and why.
A backtest attaches no inbox (its run is over before anyone could type), so these act on
paper, testnet and live sessions. docs/risk.md, "Control commands".
"""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.control import ControlInbox, check_command
from engine.errors import ConfigError, require_run_directory


def register(subparsers: argparse._SubParsersAction) -> None:
    kill = subparsers.add_parser(
        "kill", help="kill switch of a running session: cancel all, optionally flatten, freeze",
        description="Post a kill command to a running session's control inbox: it refuses every new "
                    "order, cancels every open order and, with --flatten, closes each position with a "
                    "marketable limit IOC within --max-slippage-bps of the local mid. Leave with resume.")
    kill.add_argument("run", metavar="RUN", help="the running session's run directory")
    kill.add_argument("--why", default="operator kill", help="reason for the audit log")
    kill.add_argument("--flatten", action="store_true", help="close every position after the cancels")
    kill.add_argument("--max-slippage-bps", metavar="BPS", help="flatten price cap from the local mid "
                      "(default [risk] kill_max_slippage_bps)")
    _who(kill)
    kill.set_defaults(func=_cmd, command="kill")

    for name, verb in (("approve", "send"), ("refuse", "refuse")):
        p = subparsers.add_parser(
            name, help=f"{verb} an order waiting for approval in a running session",
            description=f"{verb.capitalize()} an order held for approval ([risk] approval_notional). "
                        "Without ORDER: list the orders waiting (RUN/control/pending.json).")
        p.add_argument("run", metavar="RUN", help="the running session's run directory")
        p.add_argument("order", metavar="ORDER", nargs="?", help="the order's client id")
        p.add_argument("--why", default="", help="reason for the audit log")
        _who(p)
        p.set_defaults(func=_cmd, command=name)

    resume = subparsers.add_parser(
        "resume", help="leave the halted or reducing risk state of a running session",
        description="Return a running session to the active risk state (after a kill, an auto-disable "
                    "or a loss limit); audited with who and why.")
    resume.add_argument("run", metavar="RUN", help="the running session's run directory")
    resume.add_argument("--why", required=True, help="reason for the audit log (required)")
    _who(resume)
    resume.set_defaults(func=_cmd, command="resume")


def _not_running(run: Path, command: str) -> str:
    """Why no session would apply `command` posted to `run` (one line)."""
    if (run / "summary.json").is_file():
        why = "its session has ended (summary.json is written)"
    elif (run / "session.jsonl").is_file():
        from modes.live.resume import crashed_next_step

        step = crashed_next_step(run)
        if step.startswith("it was resumed by "):
            step += ": send the command there"
        why = f"no session is running there (nothing holds control/session.lock: it stopped or was killed; {step})"
    else:
        why = "not a paper, testnet or live session's run directory (no session.jsonl)"
    return f"{command} {run}: {why}; nothing was posted"


def _who(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--who", help="operator name for the audit log (default: your login name)")


def _cmd(args: argparse.Namespace) -> int:
    inbox = ControlInbox(require_run_directory(args.run))
    if args.command in ("approve", "refuse") and not args.order:
        if not (Path(args.run) / "session.jsonl").is_file() and not inbox.listening():
            raise ConfigError(_not_running(Path(args.run), args.command))
        waiting = inbox.pending()
        print(f"{args.run}: orders waiting for approval: {', '.join(waiting) if waiting else 'none'}")
        return 0
    check_command(args.command, order=getattr(args, "order", None), why=args.why,
                  max_slippage_bps=getattr(args, "max_slippage_bps", None))
    if not inbox.listening():
        raise ConfigError(_not_running(Path(args.run), args.command))
    path = inbox.post(args.command, order=getattr(args, "order", None), who=args.who, why=args.why,
                      flatten=getattr(args, "flatten", False),
                      max_slippage_bps=getattr(args, "max_slippage_bps", None))
    print(f"{args.command} posted: {path} (applied at the session's next poll; see its audit log)")
    return 0
