"""`tickparity report RUN` on a session that crashed: one line saying how to get its tables
(before: `RUN/fills.parquet: file not found`, which sent the user looking for a lost file;
found by a new user's trial)."""

from __future__ import annotations

from modes.cli import main


def test_a_crashed_sessions_report_points_to_replay(tmp_path, capsys):
    (tmp_path / "session.jsonl").write_text('{"session": 1}\n')
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"tickparity: error: report {tmp_path}: the session did not finish (no summary.json, no tables); "
                   f"`tickparity replay {tmp_path} --out DIR` rebuilds its run files from session.jsonl, "
                   "then `tickparity report DIR`")
