"""What a session's recorder writes for the latency files (modes/live/recording.py):
hand-computed lines."""

from __future__ import annotations

from engine.types import OrderStatus, load_instruments
from engine.types.venue_reports import VenueFill, VenueOrderState
from modes.live.recording import SessionRecorder

BTC = "binance:BTC/USDT"
HEADER = "ts_ns,entry_ns,response_ns,command,seq,venue,entry_min_ns,entry_max_ns,held"


def test_a_refusal_without_a_venue_time_gets_the_fastest_response_leg_around_it(tmp_path):
    """A refusal (no venue time) sent at 500, replied at 510, waits for the next venue-timed
    reply: submit 2 (sent 1000, venue 1007, reply 1010: entry 7, response 3), so its entry
    is 10 - 3 = 7 (not half of 10). Refusals 3 (1000 -> 1022) and 4 (1100 -> 1298) wait for
    submit 5 (1200 -> 1300, venue 1290: response 10); the fastest leg around them is still
    submit 2's 3, so 22 - 3 = 19 and 198 - 3 = 195 (the nearest reply's leg, 10, would put
    refusal 4 at 188: 7 earlier). A refusal with no reply after it is written at the flush
    with the fastest leg so far (3, longer than its round trip of 1: entry 0). A refused
    submit's line also carries its entry's bounds: from 0 (no wire time: the send) to the
    latest arrival the path allows (submit 1: 7; submit 3: 19); a cancel's does not."""
    rec = SessionRecorder(tmp_path, {BTC: load_instruments()[BTC]}, store=False)
    rec.round_trip(500, None, 510, "submit", 1)
    rec.round_trip(1000, 1007, 1010, "submit", 2)
    rec.round_trip(1000, None, 1022, "submit", 3)
    rec.round_trip(1100, None, 1298, "cancel", 4)
    rec.round_trip(1200, 1290, 1300, "submit", 5)
    rec.round_trip(2000, None, 2001, "cancel")
    rec.close()
    assert (tmp_path / "latency.csv").read_text().splitlines() == [
        HEADER, "1000,7,3,submit,2,,,", "500,7,3,submit,1,,0,7",
        "1200,90,10,submit,5,,,", "1000,19,3,submit,3,,0,19", "1100,195,3,cancel,4,,,", "2000,0,1,cancel,,,,"]


def test_the_fastest_response_leg_is_of_the_latest_replies_only(tmp_path):
    """REFUSAL_WINDOW (32) venue-timed replies count: one reply with a 1 ns response leg,
    then 32 with 5 ns, then a refusal (10_000 -> 10_020) answered before a reply with a 6 ns
    leg. The 1 ns reply is out of the window: min(32 x 5, 6) = 5, entry 20 - 5 = 15."""
    from modes.live.recording import REFUSAL_WINDOW

    assert REFUSAL_WINDOW == 32
    rec = SessionRecorder(tmp_path, {BTC: load_instruments()[BTC]}, store=False)
    rec.round_trip(0, 9, 10, "submit", 1)
    for k in range(32):
        t = 100 * (k + 1)
        rec.round_trip(t, t + 5, t + 10, "submit", k + 2)
    rec.round_trip(10_000, None, 10_020, "submit", 34)
    rec.round_trip(10_000, 10_004, 10_010, "cancel", 35)
    rec.close()
    lines = (tmp_path / "latency.csv").read_text().splitlines()
    assert lines[1] == "0,9,1,submit,1,,,"
    assert lines[-2:] == ["10000,4,6,cancel,35,,,", "10000,15,5,submit,34,,0,15"]


def test_two_venues_round_trips_are_apart_in_the_file_and_in_the_refusal_rule(tmp_path):
    """A session on two venues: each line names its venue, a refusal takes the fastest
    response leg of its own venue's replies (binance 3, okx 40: the okx refusal 100 -> 150
    gets 150 - 100 - 40 = 10, not 47 from binance's leg), and a backtest's [venues.X]
    reads only X's lines (load_recorded_latency, recorded_requests_in_turn)."""
    from venues.sim.config import load_recorded_latency
    from venues.sim.latency import recorded_requests_in_turn

    rec = SessionRecorder(tmp_path, {BTC: load_instruments()[BTC]}, store=False)
    rec.round_trip(0, 7, 10, "submit", 1, "binance")  # entry 7, response 3
    rec.round_trip(100, None, 150, "submit", 1, "okx")  # refused: waits for an okx reply
    rec.round_trip(200, 210, 250, "submit", 2, "okx")  # entry 10, response 40
    rec.close()
    path = tmp_path / "latency.csv"
    assert path.read_text().splitlines() == [
        HEADER, "0,7,3,submit,1,binance,,",
        "200,10,40,submit,2,okx,,", "100,10,40,submit,1,okx,0,10"]
    assert load_recorded_latency(path, venue="okx").tolist() == [[100, 10, 40], [200, 10, 40]]
    assert load_recorded_latency(path, venue="binance").tolist() == [[0, 7, 3]]
    assert recorded_requests_in_turn(str(path), "binance").tolist() == [[0, 1, 7]]
    import pytest

    from engine.errors import ConfigError

    with pytest.raises(ConfigError, match="no latency records of venue 'kraken'"):
        load_recorded_latency(path, "[venues.kraken]", venue="kraken")


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
        "ts_ns,response_ns,report,venue,stamp_ns", "7000000,4500000,filled,binance,1000000",
        "8000000,-1000,cancelled,okx,1000000"]


def test_a_whole_ms_venue_time_stands_for_its_millisecond(tmp_path):
    """Binance stamps whole ms: a request sent at 10.2 ms, stamped 12 ms, answered at 15 ms
    reached the venue in [12, 12.999999] ms: entry = its middle 12.4999995 ms (floored to
    ns: 12_499_999) - 10.2 ms = 2_299_999 ns. Stamped within the send's own millisecond (10
    ms, sent at 10.2): [10.2, 10.999999] ms, middle 10.5999995 -> entry 399_999, response
    5_400_001. A refusal (20 -> 30 ms) then takes the faster of the two legs, 2_500_001:
    entry 7_499_999."""
    ms = 1_000_000
    rec = SessionRecorder(tmp_path, {BTC: load_instruments()[BTC]}, store=False)
    rec.round_trip(10_200_000, 12 * ms, 15 * ms, "submit", 1)
    rec.round_trip(10_200_000, 10 * ms, 16 * ms, "submit", 2)
    rec.round_trip(20 * ms, None, 30 * ms, "submit", 3)
    rec.close()
    assert (tmp_path / "latency.csv").read_text().splitlines()[1:] == [
        "10200000,2299999,2500001,submit,1,,,", "10200000,399999,5400001,submit,2,,,",
        "20000000,7499999,2500001,submit,3,,0,7499999"]


def test_a_microsecond_venue_time_stands_for_its_microsecond(tmp_path):
    """A session that asked Binance for µs (stamp_ns 1000): a request sent at 10.2 ms,
    stamped 12.345 ms, answered at 15 ms reached the venue in [12_345_000, 12_345_999] ns:
    entry = its middle 12_345_499 - 10_200_000 = 2_145_499, response 2_654_501 (in whole ms
    it would be 12.4999995 ms: 0.15 ms later). Its report stamped 12.345 ms, received at 16
    ms: ts 12_345_000, response 3_655_000, stamp 1000. Paper's venue (stamp 1): a whole-ms
    time is exact."""
    rec = SessionRecorder(tmp_path, {BTC: load_instruments()[BTC]}, store=False)
    rec.stamp_ns = {"binance": 1000, "paper": 1}
    rec.round_trip(10_200_000, 12_345_000, 15_000_000, "submit", 1, "binance")
    rec.round_trip(10_200_000, 12_000_000, 15_000_000, "submit", 2, "paper")
    rec.report_latency("binance", VenueOrderState("tp-1", "9", OrderStatus.ACKNOWLEDGED, 100, 5, 0,
                                                  exch_ts=12_345_000, local_ts=16_000_000))
    rec.close()
    assert (tmp_path / "latency.csv").read_text().splitlines()[1:] == [
        "10200000,2145499,2654501,submit,1,binance,,", "10200000,1800000,3000000,submit,2,paper,,"]
    assert (tmp_path / "report_latency.csv").read_text().splitlines()[1:] == ["12345000,3655000,acknowledged,binance,1000"]



def test_queued_arrival_places_a_refusal_in_the_venues_queue_of_requests():
    """queued_arrival(written, queue of (written, arrival)), hand-computed. The queue:
    A written 100 arrived 110 (wire leg 10), B 200 -> 203 (leg 3: the fastest), C 201 -> 208
    (written before B arrived, arriving after it: queued, gap 5), D 300 -> 320, E 301 -> 327
    (queued after D: gap 7). Service time: the median of [5, 7], the lower middle: 5.
    - written 202 (after C, before D): max(202 + 3, C's 208 + 5) = 213, at most D's 320;
    - written 299: max(302, 213) = 302, at most D's 320: 302 (an idle venue: the wire leg);
    - written 300 (D's time counts D as before it): max(303, 320 + 5) = 325, at most E's 327;
    - written 301: max(304, E's 327 + 5) = 332, nothing written after it;
    - written 50: nothing before, 50 + 3 = 53, at most A's 110;
    - E instead written 303 arriving 322 (not queued: gaps [5]): written 302 gets
      max(305, 320 + 5) = 325, capped by E's 322 (first in, first out): 322;
    - an empty queue: None."""
    from modes.live.recording import queued_arrival

    queue = [(100, 110), (200, 203), (201, 208), (300, 320), (301, 327)]
    assert queued_arrival(202, queue) == 213
    assert queued_arrival(299, queue) == 302
    assert queued_arrival(300, queue) == 325
    assert queued_arrival(301, queue) == 332
    assert queued_arrival(50, queue) == 53
    assert queued_arrival(302, [*queue[:4], (303, 322)]) == 322
    assert queued_arrival(50, []) is None


def test_a_refusal_with_its_wire_time_is_placed_in_the_queue_within_the_path(tmp_path):
    """Submit 1 sent 1000, written 1002, venue 1010, reply 1020 (entry 10, response 10);
    refusal 2 sent 1000, written 1003, reply 1050; cancel 3 sent 1000, written 1004, venue
    1025, reply 1040 (entry 25, response 15; queued behind submit 1: gap 15). Refusal 2
    resolves at cancel 3's reply: fastest wire leg 8 (1010 - 1002), after submit 1 (written
    1002 <= 1003): max(1003 + 8, 1010 + 15) = 1025, at most cancel 3's 1025 (written after
    it): 1025, entry 25, response 25; inside the path's bound (reply 1050 - the fastest
    response leg 10 = 1040). The old rule alone put it at 1040 (entry 40). A refusal
    replied too soon for its queued arrival is capped by that bound: refusal 4 sent 2000,
    written 2001, reply 2030 (after cancel 3, 1025 + 15 = 1040 < 2001 + 8 = 2009; the
    bound 2030 - 10 = 2020): 2009, entry 9, response 21. Their entry bounds: from the write
    (3; 1) to the reply less the fastest response leg (1050 - 10 - 1000 = 40; 20)."""
    rec = SessionRecorder(tmp_path, {BTC: load_instruments()[BTC]}, store=False)
    rec.round_trip(1000, 1010, 1020, "submit", 1, wire_ns=1002)
    rec.round_trip(1000, None, 1050, "submit", 2, wire_ns=1003)
    rec.round_trip(1000, 1025, 1040, "cancel", 3, wire_ns=1004)
    rec.round_trip(2000, None, 2030, "submit", 4, wire_ns=2001)
    rec.close()
    assert (tmp_path / "latency.csv").read_text().splitlines() == [
        HEADER, "1000,10,10,submit,1,,,", "1000,25,15,cancel,3,,,",
        "1000,25,25,submit,2,,3,40", "2000,9,21,submit,4,,1,20"]


def test_a_cancel_refused_because_the_order_filled_arrived_after_the_fill(tmp_path):
    """Venue times in µs (stamp 1000 ns). Submit 1 (sent 1_000_000, written 1_001_000, venue
    time 1_004_000: its µs, so arrival 1_004_499, entry 4_499, response 5_501) gives the
    queue its wire leg, 3_499. A cancel of tp-7 sent at 2_000_000, written 2_001_000, is
    refused (no venue time; reply 2_030_000): the queue alone places it at 2_001_000 + 3_499
    = 2_004_499. The user stream then reports tp-7 filled at venue time 2_020_000 (its µs:
    the fill happened before 2_021_000), inside the cancel's round trip, so the venue
    refused the cancel because the order had filled: the cancel arrived after the fill,
    entry 2_021_000 - 2_000_000 = 21_000, response 9_000. A refused cancel of tp-8
    (3_000_000 -> 3_020_000, written 3_001_000) whose order filled at 3_050_000, after the
    reply, keeps the queue's 4_499 (the fill is no bound on it)."""
    from decimal import Decimal

    from engine.types import Liquidity

    rec = SessionRecorder(tmp_path, {BTC: load_instruments()[BTC]}, store=False)
    rec.stamp_ns["binance"] = 1000
    rec.round_trip(1_000_000, 1_004_000, 1_010_000, "submit", 1, "binance", wire_ns=1_001_000, client_id="tp-6")
    rec.round_trip(2_000_000, None, 2_030_000, "cancel", 2, "binance", wire_ns=2_001_000, client_id="tp-7")
    rec.round_trip(3_000_000, None, 3_020_000, "cancel", 3, "binance", wire_ns=3_001_000, client_id="tp-8")
    rec.fill_seen("binance", VenueFill("tp-7", "7", "70", 100, 1, Decimal("0.1"), "USDT", Liquidity.MAKER,
                                       2_020_000, 2_060_000))
    rec.fill_seen("binance", VenueOrderState("tp-8", "8", OrderStatus.FILLED, 100, 1, 1, 3_050_000, 3_070_000))
    rec.fill_seen("binance", VenueOrderState("tp-7", "7", OrderStatus.CANCELLED, 100, 1, 0, 2_029_000, 2_070_000))
    rec.close()
    assert (tmp_path / "latency.csv").read_text().splitlines() == [
        HEADER, "1000000,4499,5501,submit,1,binance,,",
        "2000000,21000,9000,cancel,2,binance,,", "3000000,4499,15501,cancel,3,binance,,"]


def test_a_refusal_the_venues_hold_caused_is_written_with_its_reason(tmp_path):
    """`held` (venues/sim/latency.py held_requests): submit 2, refused by the session itself
    while a 429 held (never sent; the refusal 80 ns after the decision), is written at once
    with entry 0; submit 3, answered 429 by the venue, is placed as any refusal (the fastest
    response leg, 3: entry 30 - 3 = 27) but with no entry window; cancel 4, answered 418,
    waits for the flush as a refused cancel does. Every other line keeps its 8 fields."""
    rec = SessionRecorder(tmp_path, {BTC: load_instruments()[BTC]}, store=False)
    rec.round_trip(1000, 1007, 1010, "submit", 1)
    rec.round_trip(2000, None, 2080, "submit", 2, held="rate_limited-local")
    rec.round_trip(2000, None, 2030, "submit", 3, held="rate_limited")
    rec.round_trip(2100, None, 2150, "cancel", 4, client_id="tp-1", held="ip_banned")
    rec.round_trip(3000, 3005, 3010, "submit", 5)
    rec.close()
    assert (tmp_path / "latency.csv").read_text().splitlines() == [
        HEADER, "1000,7,3,submit,1,,,", "2000,0,80,submit,2,,,,rate_limited-local", "3000,5,5,submit,5,,,",
        "2000,27,3,submit,3,,,,rate_limited", "2100,47,3,cancel,4,,,,ip_banned"]


def test_the_venue_health_the_session_applied_is_a_health_line(tmp_path):
    """LiveDriver journals each step's venue health changes (`"vh"`) and writes them to
    latency.csv (venues/sim/latency.py recorded_health): the state, not the reason."""
    rec = SessionRecorder(tmp_path, {BTC: load_instruments()[BTC]}, store=False)
    rec.venue_health(5000, [["binance", "rate_limited", "HTTP 429: Too much request weight used; ..."]])
    rec.venue_health(9000, [["binance", "up", ""]])
    rec.close()
    assert (tmp_path / "latency.csv").read_text().splitlines() == [
        HEADER, "5000,0,0,health,,binance,,,rate_limited", "9000,0,0,health,,binance,,,up"]
