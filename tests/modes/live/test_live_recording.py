"""What a session's recorder writes for the latency files (modes/live/recording.py):
hand-computed lines."""

from __future__ import annotations

from engine.types import OrderStatus, load_instruments
from engine.types.venue_reports import VenueFill, VenueOrderState
from modes.live.recording import SessionRecorder

BTC = "binance:BTC/USDT"


def test_a_refusal_without_a_venue_time_gets_the_latest_response_leg(tmp_path):
    """Submit 1: sent 1000, venue 1007, reply 1010: entry 7, response 3. A refusal sent at
    1000, replied at 1022 with no venue time: response 3 (the latest), entry 19 (not half of
    22: it waited on the loop before leaving). Before any venue-timed reply: half."""
    rec = SessionRecorder(tmp_path, {BTC: load_instruments()[BTC]}, store=False)
    rec.round_trip(500, None, 510, "submit", 1)
    rec.round_trip(1000, 1007, 1010, "submit", 2)
    rec.round_trip(1000, None, 1022, "submit", 3)
    rec.round_trip(2000, None, 2001, "cancel")  # a reply faster than the latest response leg: entry 0
    rec.close()
    assert (tmp_path / "latency.csv").read_text().splitlines() == [
        "ts_ns,entry_ns,response_ns,command,seq", "500,5,5,submit,1", "1000,7,3,submit,2",
        "1000,19,3,submit,3", "2000,0,1,cancel,"]


def test_report_latency_lines_are_the_streams_order_states(tmp_path):
    rec = SessionRecorder(tmp_path, {BTC: load_instruments()[BTC]}, store=False)
    state = VenueOrderState("tp-1", "9", OrderStatus.FILLED, 100, 5, 5, exch_ts=7_000_000, local_ts=11_500_000)
    rec.report_latency("binance", state)
    rec.report_latency("binance", VenueOrderState("tp-1", "9", OrderStatus.ACKNOWLEDGED, 100, 5, 0, exch_ts=9_000_000,
                                                  local_ts=9_400_000, source="rest"))  # a REST reply: a round trip
    rec.report_latency("binance", VenueFill("tp-1", "9", "t1", 100, 5, 0, "USDT", 1, 7_000_000, 11_500_000))
    rec.report_latency("okx", VenueOrderState("tp-2", "3", OrderStatus.CANCELLED, 0, 5, 0, exch_ts=8_000_000,
                                              local_ts=7_999_000))  # a venue clock ahead: as measured
    rec.close()
    assert (tmp_path / "report_latency.csv").read_text().splitlines() == [
        "ts_ns,response_ns,report,venue", "7000000,4500000,filled,binance", "8000000,-1000,cancelled,okx"]
