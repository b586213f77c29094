"""`--resume PREVIOUS_RUN` takes a run's contingent state over once (modes/live/resume.py):
the session that resumed it claims it (PREVIOUS_RUN/resumed_by.json) just before its start
step, and a second resume of the same run is refused with one line naming the session to
resume instead, since it would re-arm the same stops and adopt the same venue orders twice."""

from __future__ import annotations

import json
import threading

import pytest

from engine.errors import ConfigError
from modes.live import resume

CONFIG = {"venues": {"binance": {"url": "http://127.0.0.1:1", "account": "alice"}}}


def _run_dir(path, legs=()):
    path.mkdir()
    saved = {"mode": "testnet", "venues": {"binance": ["http://127.0.0.1:1", "alice"]},
             "state": {"legs": list(legs)}, "positions": {"binance:BTC/USDT": [10, 600_000]}}
    (path / resume.STATE_FILE).write_text(json.dumps(saved))
    return path


def test_a_run_is_resumed_once_and_the_refusal_names_the_session_to_resume(tmp_path):
    run1 = _run_dir(tmp_path / "run1")
    run2 = tmp_path / "run2"
    assert resume.load(run1, CONFIG, "testnet")["positions"] == {"binance:BTC/USDT": [10, 600_000]}
    resume.claim(run1, run2)
    claimed = json.loads((run1 / resume.CLAIM_FILE).read_text())
    assert claimed["by"] == str(run2.resolve())
    with pytest.raises(ConfigError) as err:
        resume.load(run1, CONFIG, "testnet")
    text = str(err.value)
    assert text == (f"--resume {run1}: already resumed by {run2.resolve()} (at {claimed['at']}); its contingent "
                    f"orders belong to that session now and resuming again would adopt them twice: "
                    f"resume {run2.resolve()} instead")
    # the chain goes on from the latest run, which is not claimed
    _run_dir(run2)
    assert resume.load(run2, CONFIG, "testnet")["state"] == {"legs": []}


def test_two_sessions_racing_to_resume_one_run_claim_it_once(tmp_path):
    """Both pass `load` (neither has claimed yet); the exclusive create lets one through."""
    run1 = _run_dir(tmp_path / "run1")
    resume.load(run1, CONFIG, "testnet")
    results: dict[str, object] = {}
    start = threading.Barrier(2)

    def go(name):
        start.wait()
        try:
            resume.claim(run1, tmp_path / name)
            results[name] = "claimed"
        except ConfigError as exc:
            results[name] = str(exc)
    threads = [threading.Thread(target=go, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(results.values())[-1] == "claimed" and list(results.values()).count("claimed") == 1
    loser = next(v for v in results.values() if v != "claimed")
    assert "already resumed by" in loser


def test_a_session_that_never_started_leaves_the_run_resumable(tmp_path):
    """`load` alone (a session refused at preflight) claims nothing."""
    run1 = _run_dir(tmp_path / "run1")
    resume.load(run1, CONFIG, "testnet")
    assert not (run1 / resume.CLAIM_FILE).exists()
    resume.load(run1, CONFIG, "testnet")
