"""Client ids of live sessions (issue 11): two testnet sessions on one account that start in
the same millisecond get distinct client-id prefixes from the durable session stamps, and
every prefix starts with the root prefix reconciliation adopts orders by."""

from __future__ import annotations

from live_helpers import session_config

from engine.oms import base36
from modes.live.driver import LiveDriver
from modes.live.safety import ROOT_PREFIX


def test_two_sessions_in_one_millisecond_get_distinct_prefixes(live_emu, alice_env, tmp_path, monkeypatch):
    monkeypatch.setenv("TICKPARITY_STATE_DIR", str(tmp_path / "state"))
    config = session_config(live_emu)
    first = LiveDriver(config, "testnet", tmp_path / "a", health=False)
    # two sessions on one account can only run on two machines (one session per account on a
    # machine, modes/live/account_lock.py): the second one as if on another machine
    first.account_locks.release()
    second = LiveDriver(config, "testnet", tmp_path / "b", health=False)
    start = 1_796_063_222_592_123_456  # the same start (ns) for both
    a, b = first._id_prefix(start), second._id_prefix(start)
    assert a == f"tp{base36(1_796_063_222_592)}" and b == f"tp{base36(1_796_063_222_593)}"
    assert a.startswith(ROOT_PREFIX) and b.startswith(ROOT_PREFIX)
    assert (tmp_path / "state" / "sessions.json").is_file()
    # a paper session trades with no venue account: its stamp is its start
    paper = LiveDriver(config, "paper", tmp_path / "c", health=False)
    assert paper._id_prefix(start) == a


def test_a_prefix_too_long_for_the_id_space_stops_the_start_before_a_run_directory(live_emu, alice_env, tmp_path,
                                                                                     monkeypatch):
    """issue 11: a session whose prefix could lead an id beyond Binance's 36 characters (its
    root made long here) is refused at start, in one line naming the prefix, before the run
    directory exists and before any order."""
    import pytest

    import modes.live.safety
    from engine.errors import ConfigError
    from engine.oms import PREFIX_MAX
    from modes.live.driver import run_live

    monkeypatch.setenv("TICKPARITY_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(modes.live.safety, "ROOT_PREFIX", "tp" + "x" * (PREFIX_MAX - 2 - 8 + 1))  # 1 too many
    out = tmp_path / "run"
    with pytest.raises(ConfigError) as info:
        run_live(session_config(live_emu), "testnet", out, duration_s=2.0, health=False, write_html=False)
    message = str(info.value)
    assert "\n" not in message and message.startswith("client-id prefix (modes.live.safety.ROOT_PREFIX")
    assert f"expected 1 to {PREFIX_MAX} characters" in message
    assert not out.exists()
