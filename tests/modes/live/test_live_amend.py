"""`ctx.amend` in testnet against the emulator (real ccxt / ccxt.pro over 127.0.0.1): Binance
spot amends by cancel-replace, a new venue order under the same client id, with the old
one reported CANCELED by the REST reply and the user stream in either order. The OMS keeps
the client order open with the amended price and quantity (engine/venue_merge.py
`_retire` / `_amend_outcome`): the strategy gets `amended`, never `cancelled`; the
replacement's reports are not `stale`; summary.json lists it open until the shutdown
cancels it (the venue's journal agrees); the session replays identically."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from emu_helpers import control
from live_helpers import session_config

from modes.live import run_live
from modes.live.recording import read_journal
from modes.live.replay import replay_session
from venues.emulator import read_journal as emulator_journal

STRATEGY = f"{Path(__file__).resolve().parent / 'amend_strategies.py'}:AmendOnce"


def _run(emu, out: Path, params: dict, *, stream_first: bool) -> Path:
    """A 6 s testnet session of AmendOnce, the emulator writing user events before REST
    replies when `stream_first`."""
    control(emu, "limits", {"stream_first": stream_first})
    try:
        run_live(session_config(emu, STRATEGY, params=params), "testnet", out, duration_s=6, health=False,
                 write_html=False)
    finally:
        control(emu, "limits", {"stream_first": False})
    return out


def _audit(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "audit.jsonl").read_text().splitlines()]


@pytest.mark.parametrize(("params", "stream_first", "qty", "bps"), [
    ({"amend_qty": "0.02"}, False, "0.02", 0),
    ({"amend_qty": "0.02"}, True, "0.02", 0),
    ({"amend_qty": "0.005"}, True, "0.005", 0),
    ({"amend_qty": "", "amend_price_bps": -10}, False, "0.01", -10),
    ({"amend_qty": "0.015", "amend_price_bps": 5}, True, "0.015", 5),
], ids=["qty-up-rest-first", "qty-up-stream-first", "qty-down-stream-first", "price-rest-first",
        "both-stream-first"])
def test_an_amended_order_stays_open_with_the_new_size_until_the_shutdown_cancels_it(
        live_emu, alice_env, tmp_path, params, stream_first, qty, bps):
    run = _run(live_emu, tmp_path / "run", params, stream_first=stream_first)
    prefix = read_journal(run)[0]["id_prefix"]
    records = _audit(run)
    updates = [r for r in records if r.get("action") == "update"]
    cid = updates[0]["client_id"]
    assert cid.startswith(prefix + "-")
    events = [u["event"] for u in updates]
    # acknowledged, amended, then cancelled by the shutdown only (no cancel before the amend's update)
    assert "amended" in events, events
    amended = next(u for u in updates if u["event"] == "amended")
    assert Decimal(amended["qty"]) == Decimal(qty) and amended["status"] in ("acknowledged", "partially_filled")
    assert events.index("amended") < len(events) - 1 and events[-1] == "cancelled"
    assert events.count("cancelled") == 1
    # the old venue order id was retired as replaced. With `stream_first` its CANCELED
    # usually reaches the session before the REST reply and is held until the replacement
    # shows up (audit `held`); under load the reply can still win the race, so which order
    # came is not asserted here: tests/engine/test_engine_venue_merge.py plays every
    # interleaving deterministically
    assert [r for r in records if r.get("type") == "replaced" and r.get("client_id") == cid]
    # the replacement's reports are the order's, not stale ones
    assert not [r for r in records if r.get("type") in ("stale", "conflict") and r.get("client_id") == cid]
    orders = {o["client_id"]: o for o in pq.read_table(run / "orders.parquet").to_pylist()}
    assert Decimal(orders[cid]["qty"]) == Decimal(qty)
    assert orders[cid]["status"] == "cancelled"
    # the venue: two orders under the client id (the original, the replacement), both ended
    journal = emulator_journal(live_emu.settings.out_dir / "journal.jsonl")
    news = [e for e in journal if e["event"] == "order_new" and e.get("client_order_id") == cid]
    assert len(news) == 2 and Decimal(news[1]["qty"]) == Decimal(qty) - Decimal(orders[cid]["filled_qty"] or 0)
    venue_ids = {str(e["order_id"]) for e in news}
    ended = {str(e["order_id"]) for e in journal if e["event"] == "order_status"
             and e["status"] in ("CANCELED", "FILLED") and str(e["order_id"]) in venue_ids}
    assert ended == venue_ids, (ended, venue_ids)
    summary = json.loads((run / "summary.json").read_text())["run"]
    assert summary["open_orders"] == []
    result = replay_session(run, tmp_path / "replay")
    assert result.difference is None, result.difference.text()


@pytest.mark.parametrize("stream_first", [False, True], ids=["rest-first", "stream-first"])
def test_a_cancel_replace_whose_replacement_is_refused_ends_the_order_with_the_refusal(
        live_emu, alice_env, tmp_path, stream_first):
    """Binance -2021 (cancel-replace partially failed): the order was cancelled and its
    post-only replacement refused. The strategy gets `cancelled` with the replacement's
    reason (`post_only_would_take`), whichever of the reply and the stream's CANCELED comes
    first (before: `cancelled` with no reason, indistinguishable from its own cancel; found
    by a new user's trial); nothing is left open at the venue; the replay is identical."""
    control(live_emu, "limits", {"stream_first": stream_first})
    try:
        run = tmp_path / "run"
        run_live(session_config(live_emu, f"{Path(__file__).resolve().parent / 'amend_strategies.py'}:AmendAcross"),
                 "testnet", run, duration_s=3, health=False, write_html=False)
    finally:
        control(live_emu, "limits", {"stream_first": False})
    updates = [(u["event"], u["reason"]) for u in _audit(run) if u.get("action") == "update"]
    assert updates == [("acknowledged", None), ("cancelled", "post_only_would_take")], updates
    orders = pq.read_table(run / "orders.parquet").to_pylist()
    assert [(o["status"], o["reason"]) for o in orders] == [("cancelled", "post_only_would_take")]
    assert json.loads((run / "summary.json").read_text())["run"]["open_orders"] == []
    result = replay_session(run, tmp_path / "replay")
    assert result.difference is None, result.difference.text()
