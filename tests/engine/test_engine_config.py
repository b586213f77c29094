"""Run config: every table and key checked, numbers exact, run identity from config + files."""

import hashlib
import json
from decimal import Decimal

import pytest

from engine.config import check_run, did_you_mean, load_config_file, resolve, run_identity
from engine.errors import ConfigError

VENUE_SCHEMA = {"queue_model": None, "maker_fee_bps": None, "taker_fee_bps": None,
                "latency": {"entry_ns": None, "response_ns": None, "feed_ns": None},
                "balances": "free table"}
RISK_KEYS = ["max_position", "reduce_only"]


def _config(tmp_path, text):
    file = tmp_path / "run.toml"
    file.write_text('[run]\nstrategy = "s.py:S"\ndata = "synthetic:1"\n' + text)
    return str(file), resolve(load_config_file(file), {}, config_file=str(file))


def _check(config, venues=("binance",)):
    check_run(config, venues=venues, venue_schema=lambda name: VENUE_SCHEMA, risk_keys=RISK_KEYS)


def test_toml_numbers_are_decimals_from_their_text(tmp_path):
    _, config = _config(tmp_path, "[run.params]\nqty = 0.01\nbps = -0.5\nn = 3\nbig = 1e-8\n"
                                  "[risk]\nmax_position = 0.1\n")
    assert config.params == {"qty": Decimal("0.01"), "bps": Decimal("-0.5"), "n": 3, "big": Decimal("1e-8")}
    assert str(config.params["qty"]) == "0.01"  # not 0.01000000000000000020816681711721685...
    assert config.risk["max_position"] == Decimal("0.1")
    assert config.to_json()["params"]["qty"] == "0.01"


def test_venue_no_instrument_trades_on(tmp_path):
    file, config = _config(tmp_path, "[venues.binanse]\nmaker_fee_bps = 1\n")
    with pytest.raises(ConfigError) as err:
        _check(config)
    assert str(err.value) == (f"{file}: [venues.binanse]: no instrument of this run trades on venue 'binanse'; "
                              "did you mean 'binance'? (venues in this run: binance)")


def test_venue_far_from_any_run_venue_lists_the_run_venues(tmp_path):
    file, config = _config(tmp_path, "[venues.kraken]\n")
    with pytest.raises(ConfigError) as err:
        _check(config, venues=["binance", "okx", "binance"])
    assert str(err.value) == (f"{file}: [venues.kraken]: no instrument of this run trades on venue 'kraken' "
                              "(venues in this run: binance, okx)")


@pytest.mark.parametrize(("text", "message"), [
    ("[venues.binance]\nqueue_modle = 'log'\n",
     "[venues.binance] queue_modle: unknown key; did you mean 'queue_model'? (valid keys: balances, latency, "
     "maker_fee_bps, queue_model, taker_fee_bps)"),
    ("[venues.binance]\nlatency = { entry_nss = 5 }\n",
     "[venues.binance.latency] entry_nss: unknown key; did you mean 'entry_ns'? (valid keys: entry_ns, "
     "feed_ns, response_ns)"),
    ("[venues.binance]\nlatency = 5\n", "[venues.binance] latency = 5: expected a table"),
    ("[risk]\nmax_postion = 1\n",
     "[risk] max_postion: unknown key; did you mean 'max_position'? (valid keys: max_position, reduce_only)"),
])
def test_unknown_keys_in_run_tables(tmp_path, text, message):
    file, config = _config(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        _check(config)
    assert str(err.value) == f"{file}: {message}"


def test_balances_is_a_table_of_asset_names(tmp_path):
    _, config = _config(tmp_path, "[venues.binance]\nbalances = { USDT = '100', XYZ = 5.5 }\n")
    _check(config)  # asset names are the user's: no error


@pytest.mark.parametrize(("text", "message"), [
    ("[rsik]\n", "rsik: unknown key; did you mean 'risk'? (valid keys: risk, run, venues)"),
    ("sead = 3\n", "[run] sead: unknown key; did you mean 'seed'? (valid keys: data, from, instruments, "
                   "instruments_file, out, params, sample_ms, seed, strategy, to)"),
    ("params = 3\n", "[run] params = 3: expected a table"),
])
def test_unknown_keys_in_the_file(tmp_path, text, message):
    file = tmp_path / "run.toml"
    file.write_text('[run]\nstrategy = "s.py:S"\ndata = "synthetic:1"\n' + text)
    with pytest.raises(ConfigError) as err:
        load_config_file(file)
    assert str(err.value) == f"{file}: {message}"


@pytest.mark.parametrize(("file_seed", "flag_seed", "message"), [
    (-5, None, "{file}: [run] seed = -5: expected an integer from 0 to 2**63-1"),
    (None, -5, "--seed = -5: expected an integer from 0 to 2**63-1"),
    (None, 2**63, f"--seed = {2**63}: expected an integer from 0 to 2**63-1"),
])
def test_seed_must_be_non_negative_and_names_its_origin(tmp_path, file_seed, flag_seed, message):
    file = tmp_path / "run.toml"
    extra = f"seed = {file_seed}\n" if file_seed is not None else ""
    file.write_text('[run]\nstrategy = "s.py:S"\ndata = "synthetic:1"\n' + extra)
    with pytest.raises(ConfigError) as err:
        resolve(load_config_file(file), {"seed": flag_seed}, config_file=str(file))
    assert str(err.value) == message.format(file=file)


def test_where_names_file_table_or_flag(tmp_path):
    file, config = _config(tmp_path, "[run.params]\nqty = 1\n")
    flagged = resolve(load_config_file(file), {"params": {"side": "buy"}, "instruments": ["x:A/B"]},
                      config_file=file)
    assert flagged.params == {"qty": 1, "side": "buy"}  # flags merge into the file's params
    assert flagged.param_where("qty") == f"{file}: [run.params] qty"
    assert flagged.param_where("side") == "--param side"
    assert flagged.where("instruments") == "--instrument"
    assert config.where("venues.okx") == f"{file}: [venues.okx]"


def test_did_you_mean():
    assert did_you_mean("binanse", ["okx", "binance"]) == "; did you mean 'binance'?"
    assert did_you_mean("zzz", ["okx", "binance"]) == ""


def test_run_identity_hashes_file_contents_not_paths(tmp_path):
    strategy = tmp_path / "s.py"
    strategy.write_text("class S: pass\n")
    resolved = {"strategy": "s.py:S", "params": {"qty": Decimal("0.01")}}
    run_id, files = run_identity(resolved, {"strategy": strategy})
    digest = hashlib.sha256(b"class S: pass\n").hexdigest()
    assert files == {"strategy": {"path": str(strategy), "sha256": digest}}
    # the id is the first 16 hex digits of sha256 over the canonical JSON of config + digests
    body = json.dumps({"config": {"params": {"qty": "0.01"}, "strategy": "s.py:S"}, "files": {"strategy": digest}},
                      sort_keys=True, separators=(",", ":"))
    assert run_id == hashlib.sha256(body.encode()).hexdigest()[:16]
    moved = tmp_path / "elsewhere.py"
    moved.write_text("class S: pass\n")
    assert run_identity(resolved, {"strategy": moved})[0] == run_id
    strategy.write_text("class S: pass  # edited\n")
    assert run_identity(resolved, {"strategy": strategy})[0] != run_id
    assert run_identity(resolved | {"seed": 1}, {"strategy": moved})[0] != run_id


def test_run_identity_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="nope.py: cannot read"):
        run_identity({}, {"strategy": tmp_path / "nope.py"})


def test_instruments_file_numbers_are_decimals_from_their_text(tmp_path):
    from engine.types import load_instruments

    file = tmp_path / "inst.toml"
    file.write_text('["binance:BTC/USDT"]\nbase = "BTC"\nquote = "USDT"\ntick_size = 0.01\nlot_size = 1e-5\n'
                    'min_notional = 5\n')
    spec = load_instruments(file)["binance:BTC/USDT"]
    assert spec.tick_size == Decimal("0.01") and spec.lot_size == Decimal("0.00001")
    assert spec.min_notional == Decimal(5)
