"""Contingent ids stay within Binance's 36 characters (issue 11; the OMS's side is
tests/engine/test_engine_client_id_length.py): a leg that sends `<id>.<k>` orders is refused
when made if its id leaves no room for k; one the strategy named with an OrderError, one the
engine made with an InternalError; never a truncated id."""

from __future__ import annotations

import pytest
from contingent_harness import ID, T0, Script, book, run

from engine.contingent import OrderSpec
from engine.errors import InternalError, OrderError, StrategyError
from engine.oms import CLIENT_ID_MAX, RELEASE_DIGITS


def test_contingent_ids_made_beyond_36_are_refused_never_truncated(tmp_path):
    rows = book(T0, [("100.00", "1")], [("100.10", "1")])

    def too_long_stop(ctx):
        ctx.submit_stop(ID, "sell", "0.5", "99.90", client_id="s" * (CLIENT_ID_MAX - RELEASE_DIGITS))
    with pytest.raises((OrderError, StrategyError), match=r"sends its orders as '<id>.<k>' \(k up to 6 digits\), "
                                                         r"so its id has at most 29 characters"):
        run(tmp_path / "a", rows, Script(start=too_long_stop))

    def long_group(ctx):
        ctx.submit_oco(OrderSpec(ID, "sell", "0.5", "101.00"), OrderSpec(ID, "sell", "0.5", "100.50"),
                       client_id="g" * 35)
    with pytest.raises((OrderError, StrategyError), match=r"made from 'g{35}': 37 characters, more than the 36"):
        run(tmp_path / "b", rows, Script(start=long_group))

    fine = Script(start=lambda ctx: ctx.submit_stop(ID, "sell", "0.5", "99.90", client_id="s" * 29))
    run(tmp_path / "c", rows, fine)  # 29 characters: '<id>.<k>' fits for every k the session can reach

    def engine_made(ctx):
        ctx._session.contingent._next_id = 10**40  # far beyond the id space: the generator's guard
        ctx.submit_stop(ID, "sell", "0.5", "99.90")
    with pytest.raises(InternalError, match=r"more than 36"):
        run(tmp_path / "d", rows, Script(start=engine_made))
