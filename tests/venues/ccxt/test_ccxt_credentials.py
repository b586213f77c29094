"""Keys from the environment or a 0600 file; never printed; the live confirmation."""

from __future__ import annotations

import os

import pytest

from engine.errors import ConfigError
from venues.ccxt.confirm import ENV, LiveNotConfirmed, confirm_live
from venues.ccxt.credentials import load_credentials

SECRET = "s3cr3t-Zq9-not-in-any-log"
KEY = "k3y-Aa1-not-in-any-log"


def test_from_default_environment_variables_and_masked_everywhere():
    creds = load_credentials({"account": "main"}, "binance",
                             {"TICKPARITY_BINANCE_API_KEY": KEY, "TICKPARITY_BINANCE_SECRET": SECRET})
    assert (creds.api_key, creds.secret, creds.account) == (KEY, SECRET, "main")
    for text in (repr(creds), str(creds), f"{creds}", creds.source):
        assert SECRET not in text and KEY not in text
    assert creds.redact(f"signed with {SECRET} by {KEY}") == "signed with *** by ***"
    assert creds.ccxt() == {"apiKey": KEY, "secret": SECRET}


def test_named_environment_variables_and_a_missing_one_is_named():
    table = {"api_key_env": "MY_KEY", "secret_env": "MY_SECRET"}
    assert load_credentials(table, "binance", {"MY_KEY": KEY, "MY_SECRET": SECRET}).secret == SECRET
    with pytest.raises(ConfigError, match=r"\[venues.binance\]: environment variable MY_SECRET not set"):
        load_credentials(table, "binance", {"MY_KEY": KEY})


def test_secrets_file_must_be_0600(tmp_path):
    path = tmp_path / "secrets.toml"
    path.write_text(f'[binance]\naccount = "sub-1"\napi_key = "{KEY}"\nsecret = "{SECRET}"\n')
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError) as err:
        load_credentials({"secrets_file": str(path)}, "binance", {})
    assert "[venues.binance] secrets_file" in str(err.value) and "\n" not in str(err.value)
    assert "must be mode 0600 (readable by its owner only), not 0644" in str(err.value)
    assert f"chmod 600 {path}" in str(err.value)
    assert SECRET not in str(err.value)
    os.chmod(path, 0o600)
    creds = load_credentials({"secrets_file": str(path)}, "binance", {})
    assert (creds.account, creds.secret, creds.source) == ("sub-1", SECRET, str(path))


def test_a_relative_secrets_file_is_in_the_config_file_s_folder_not_the_working_one(tmp_path, monkeypatch):
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    path = cfg / "secrets.toml"
    path.write_text(f'[binance]\napi_key = "{KEY}"\nsecret = "{SECRET}"\n')
    os.chmod(path, 0o600)
    monkeypatch.chdir(tmp_path)
    creds = load_credentials({"secrets_file": "secrets.toml"}, "binance", {}, base_dir=cfg)
    assert (creds.secret, creds.source) == (SECRET, str(path))
    with pytest.raises(ConfigError, match=r"\[venues.binance\] secrets_file: secrets file not found: .*cfg/nope.toml"):
        load_credentials({"secrets_file": "nope.toml"}, "binance", {}, base_dir=cfg)


def test_secrets_file_errors_name_the_file_and_key_never_the_value(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(f'[binance]\napi_key = "{KEY}"\n')
    os.chmod(path, 0o600)
    with pytest.raises(ConfigError, match=r"s.toml: \[binance\] secret is missing or empty") as err:
        load_credentials({"secrets_file": str(path)}, "binance", {})
    assert KEY not in str(err.value)
    with pytest.raises(ConfigError, match="no \\[kraken\\] table"):
        load_credentials({"secrets_file": str(path)}, "kraken", {})
    with pytest.raises(ConfigError, match="secrets file not found"):
        load_credentials({"secrets_file": str(tmp_path / "nope.toml")}, "binance", {})


def test_live_confirmation_by_environment_or_typed_account_name():
    said = []
    assert confirm_live("binance", "main", "binance", environ={ENV: "main"}, say=said.append) == "env"
    assert "venue 'binance'" in said[0] and "account 'main'" in said[0]
    with pytest.raises(LiveNotConfirmed, match="does not name the account 'main'"):
        confirm_live("binance", "main", "binance", environ={ENV: "other"}, say=said.append)
    assert confirm_live("binance", "main", "binance", environ={}, ask=lambda _: "main\n", say=said.append) == "typed"
    for typed in ("", "y", "yes", "MAIN"):
        with pytest.raises(LiveNotConfirmed):
            confirm_live("binance", "main", "binance", environ={}, ask=lambda _, t=typed: t, say=said.append)
    assert LiveNotConfirmed.exit_code == 2
