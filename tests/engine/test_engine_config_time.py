"""`--from` / `--to` and `[run] from` / `to` are exact to the ns (issue #11: 9 fractional
digits were cut to microseconds, so a backtest of a recorded session's period opened up to
999 ns off its start). One parser (engine.config.parse_time) for run configs and
`tickparity data` (replay.schema.parse_time); format_ns prints what parses back.

Hand-computed: 2024-01-01T00:00:00Z is 1_704_067_200 s after the epoch (54 years of 365
days = 19_710 days, 13 leap days 1972..2020 -> 19_723 days x 86_400 s)."""

from __future__ import annotations

import json

import pytest

from engine.config import parse_time
from engine.errors import ConfigError
from modes.cli import main
from replay.schema import format_ns
from replay.schema import parse_time as data_parse_time

T0 = 19_723 * 86_400 * 1_000_000_000  # 2024-01-01T00:00:00Z in ns
assert T0 == 1_704_067_200_000_000_000


@pytest.mark.parametrize("text, ns", [
    ("2024-01-01T00:00:00.123456789Z", T0 + 123_456_789),
    ("2024-01-01T00:00:00.123456789", T0 + 123_456_789),  # no zone: UTC
    ("2024-01-01T02:00:00.000000001+02:00", T0 + 1),  # an offset, and the last ns kept
    ("2024-01-01 00:00:00,5Z", T0 + 500_000_000),  # space and comma, as ISO allows
    ("2024-01-01T00:00:01.1234567Z", T0 + 1_123_456_700),  # 7 digits: ...700 ns
    ("2024-01-01T00:00:00Z", T0),
    ("2024-01-01", T0),
    ("1704067200123456789", T0 + 123_456_789),  # integer ns
    (1_704_067_200_123_456_789, T0 + 123_456_789),
])
def test_times_are_exact_to_the_ns(text, ns):
    assert parse_time(text, "--from") == ns
    if isinstance(text, str):
        assert data_parse_time(text) == ns  # tickparity data reads it alike


def test_below_a_ns_is_an_error_naming_the_field():
    with pytest.raises(ConfigError, match=r"^--to = '2024-01-01T00:00:00.1234567891Z': 10 fractional digits; "
                                          r"times are exact to the ns \(at most 9\)$"):
        parse_time("2024-01-01T00:00:00.1234567891Z", "--to")
    with pytest.raises(ConfigError, match=r"^\[run\] from = True: expected ISO time"):
        parse_time(True, "[run] from")


def test_format_ns_prints_what_parses_back():
    assert format_ns(T0 + 123_456_789) == "2024-01-01T00:00:00.123456789Z"
    assert format_ns(T0 + 123_456_000) == "2024-01-01T00:00:00.123456Z"  # whole µs: as before
    for ns in (T0, T0 + 1, T0 + 999, T0 + 123_456_789):
        assert parse_time(format_ns(ns), "x") == ns


def test_a_backtest_starts_at_the_ns_given(tmp_path, request):
    root = request.config.rootpath
    out = tmp_path / "run"
    code = main(["backtest", "--strategy", str(root / "examples/twap.py:TWAP"), "--data", "synthetic:3:10s",
                 "--from", "2024-01-01T00:00:00.123456789Z", "--to", "2024-01-01T00:00:05.000000001Z",
                 "--out", str(out), "--no-report"])
    assert code == 0
    run = json.loads((out / "summary.json").read_text())["run"]
    config = json.loads((out / "config.json").read_text())
    assert run["start_ts"] == T0 + 123_456_789
    assert (config["start_ns"], config["end_ns"]) == (T0 + 123_456_789, T0 + 5_000_000_001)
