"""Strategy parameters: checked against the constructor, converted to its types, defaults filled."""

from decimal import Decimal
from pathlib import Path

import pytest

from engine.errors import ConfigError, StrategyError
from engine.loader import effective_params, instantiate, load_class


class Quoter:
    def __init__(self, qty: Decimal = Decimal("1"), bps: float = 2.0, every_ms: int = 100,
                 side: str = "buy", hedge: bool = False, tag: str | None = None, anything=None) -> None:
        self.qty, self.bps, self.every_ms, self.side, self.hedge, self.tag = qty, bps, every_ms, side, hedge, tag
        self.anything = anything


class NeedsVenue:
    def __init__(self, venue: str, qty="0.5") -> None:
        self.venue, self.qty = venue, qty


class TakesAny:
    def __init__(self, qty: Decimal = Decimal("1"), **extra) -> None:
        self.qty, self.extra = qty, extra


def test_defaults_filled_and_values_converted_from_their_text():
    params = effective_params(Quoter, {"qty": Decimal("0.01"), "bps": Decimal("0.5"), "tag": 7,
                                       "anything": Decimal("1.10")})
    assert params == {"qty": Decimal("0.01"), "bps": 0.5, "every_ms": 100, "side": "buy", "hedge": False,
                      "tag": "7", "anything": Decimal("1.10")}
    assert str(params["qty"]) == "0.01" and isinstance(params["bps"], float)
    assert str(params["anything"]) == "1.10"  # unannotated: the value as parsed, trailing zero kept


def test_decimal_from_a_string_or_an_int_and_integers_from_integral_decimals():
    params = effective_params(Quoter, {"qty": "0.30", "every_ms": Decimal("250")})
    assert params["qty"] == Decimal("0.30") and str(params["qty"]) == "0.30"
    assert params["every_ms"] == 250 and type(params["every_ms"]) is int
    assert effective_params(Quoter, {"qty": 3})["qty"] == Decimal(3)


def test_a_python_float_takes_its_shortest_repr_not_its_binary_expansion():
    assert str(effective_params(Quoter, {"qty": 0.1})["qty"]) == "0.1"


def test_unannotated_parameter_takes_the_type_of_its_default():
    assert effective_params(NeedsVenue, {"venue": "binance", "qty": Decimal("0.25")}) == {
        "venue": "binance", "qty": "0.25"}


@pytest.mark.parametrize(("params", "message"), [
    ({"qty": "abc"}, "[run.params] qty = 'abc': expected a decimal number like 0.01"),
    ({"qty": True}, "[run.params] qty = True: expected a decimal number like 0.01"),
    ({"qty": "inf"}, "[run.params] qty = 'inf': expected a finite number"),
    ({"every_ms": Decimal("1.5")}, "[run.params] every_ms = 1.5: expected an integer"),
    ({"every_ms": "ten"}, "[run.params] every_ms = 'ten': expected an integer"),
    ({"hedge": 1}, "[run.params] hedge = 1: expected true or false"),
    ({"side": [1]}, "[run.params] side = [1]: expected a string"),
    ({"qtty": 1}, "[run.params] qtty: Quoter() takes no parameter 'qtty'; did you mean 'qty'? "
                  "(its parameters: qty, bps, every_ms, side, hedge, tag, anything)"),
])
def test_bad_parameters_name_the_key(params, message):
    with pytest.raises(ConfigError) as err:
        effective_params(Quoter, params)
    assert str(err.value) == message


def test_where_names_the_origin():
    with pytest.raises(ConfigError) as err:
        effective_params(Quoter, {"qty": "abc"}, lambda key: f"--param {key}")
    assert str(err.value) == "--param qty = 'abc': expected a decimal number like 0.01"


def test_missing_required_parameter():
    with pytest.raises(ConfigError) as err:
        effective_params(NeedsVenue, {})
    assert str(err.value) == "NeedsVenue() needs parameter(s) venue: set them in [run.params] or with --param venue=VALUE"


def test_var_keyword_constructor_accepts_any_key():
    assert effective_params(TakesAny, {"colour": "red"}) == {"qty": Decimal("1"), "colour": "red"}


def test_constructor_exception_names_the_class_and_the_users_line(tmp_path):
    file = tmp_path / "strict.py"
    file.write_text("class Strict:\n    def __init__(self, side: str = 'buy'):\n"
                    "        if side not in ('buy', 'sell'):\n            raise ValueError('side must be buy or sell')\n")
    cls = load_class(f"{file}:Strict")
    with pytest.raises(StrategyError) as err:
        instantiate(cls, {"side": "sideways"})
    assert str(err.value) == (f"strategy error in Strict.__init__ ({file}:4): "
                              "ValueError: side must be buy or sell")


def test_examples_take_exact_decimals():
    root = Path(__file__).resolve().parents[2]
    mm = instantiate(load_class(f"{root}/examples/market_maker.py:MarketMaker"),
                     {"qty": Decimal("0.01"), "half_spread_bps": Decimal("0.5")})
    assert mm.qty == Decimal("0.01") and str(mm.qty) == "0.01"
    assert mm.half_spread == Decimal("0.00005")
