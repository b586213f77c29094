"""A run directory that does not exist is named as such by every command that reads one
(before any complaint about a file inside it): `--resume`, `replay`, `approve`, `kill`."""

from __future__ import annotations

import pytest

from engine.errors import ConfigError, require_run_directory
from modes.cli import main
from modes.live import resume as live_resume
from modes.live.replay import replay_session


def test_resume_of_a_missing_directory_names_the_directory(tmp_path):
    missing = tmp_path / "runs" / "live-gone"
    with pytest.raises(ConfigError) as err:
        live_resume.load(missing, {"venues": {}}, "testnet")
    assert str(err.value) == f"--resume: no such run directory: {missing}"
    # an existing directory without the state still names the file it lacks
    with pytest.raises(ConfigError, match="no contingent.json"):
        live_resume.load(tmp_path, {"venues": {}}, "testnet")


def test_resume_of_a_file_is_not_a_directory(tmp_path):
    path = tmp_path / "contingent.json"
    path.write_text("{}")
    with pytest.raises(ConfigError) as err:
        require_run_directory(path, "--resume")
    assert str(err.value) == f"--resume: {path}: not a directory (a run directory was expected)"


def test_replay_and_control_commands_name_a_missing_directory(tmp_path, capsys):
    missing = tmp_path / "nope"
    with pytest.raises(ConfigError) as err:
        replay_session(missing)
    assert str(err.value) == f"no such run directory: {missing}"
    assert main(["approve", str(missing)]) == 2  # listed "orders waiting for approval: none" before
    assert main(["replay", str(missing)]) == 2
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert err_lines == [f"tickparity: error: no such run directory: {missing}"] * 2
    assert not missing.exists()  # nothing created on the way
