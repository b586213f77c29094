"""The confirmation a `live` session needs before its first order.

Why typed and naming the account: a live run spends real money; pressing Enter out of habit
must not start one, and a config pointing at the wrong account must be caught by a human
reading its name. Unattended runs (CI, a scheduler) give the same answer through the
environment: `TICKPARITY_CONFIRM_LIVE=<account>`. Testnet and paper never ask.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from engine.errors import TickparityError

ENV = "TICKPARITY_CONFIRM_LIVE"


class LiveNotConfirmed(TickparityError):
    """The live confirmation was not given (exit 2, nothing sent)."""


def confirm_live(venue: str, account: str, exchange: str, url: str | None = None, *,
                 environ: Mapping[str, str] | None = None,
                 ask: Callable[[str], str] | None = None,
                 say: Callable[[str], None] = print) -> str:
    """Say which venue and account the session will trade; return how it was confirmed.

    Confirmed by `TICKPARITY_CONFIRM_LIVE=<account>` or by typing the account's name at the
    prompt (`ask`, default `input`; None with no terminal). Raises LiveNotConfirmed otherwise:
    an empty or blank answer or variable never confirms, nor does any answer for an empty
    account name.
    """
    if not account or account != account.strip():
        # never confirmable: an empty name is what an empty answer (Enter, an empty variable)
        # would match (the config check, engine.venue_profiles.check_live_keys, refuses it first)
        raise LiveNotConfirmed(f"account {account!r}: a live session needs a non-empty account name "
                               "([venues.X] account); nothing was sent")
    env = os.environ if environ is None else environ
    where = f"{exchange} ({url})" if url else exchange
    say(f"LIVE: this session trades real funds on venue {venue!r} = {where}, account {account!r}.")
    given = env.get(ENV)
    if given is not None:
        if not given.strip():
            raise LiveNotConfirmed(f"{ENV} is set but empty: set it to the account's name ({account}) or unset "
                                   "it to be asked; nothing was sent")
        if given == account:
            say(f"confirmed by {ENV}")
            return "env"
        raise LiveNotConfirmed(f"{ENV}={given!r} does not name the account {account!r}; nothing was sent")
    if ask is None:
        import sys

        if not sys.stdin.isatty():
            raise LiveNotConfirmed(f"live mode needs a confirmation: type the account name at a terminal, "
                                   f"or set {ENV}={account}")
        ask = input
    try:
        typed = ask(f"type the account name ({account}) to start trading: ").strip()
    except EOFError:
        typed = ""
    if not typed or typed != account:
        raise LiveNotConfirmed(f"confirmation {typed!r} does not name the account {account!r}; nothing was sent")
    return "typed"
