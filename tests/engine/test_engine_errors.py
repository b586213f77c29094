"""Issue 9: the error taxonomy, loading a strategy, and the one vocabulary of reasons."""

import ast
import inspect
import textwrap
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

import engine.errors as errors
from engine.errors import StrategyError, TickparityError
from engine.loader import load_strategy
from engine.risk import RiskConfig, RiskEngine
from engine.risk_nb import REASONS as NB_REASONS
from engine.strategy import CALLBACKS
from engine.types import load_instruments
from engine.types.orders import (
    REASONS,
    VENUE_REASONS,
    ReasonCode,
    ReasonSource,
    RejectReason,
    venue_reason,
)

ROOT = Path(__file__).resolve().parents[2]


def _strategy_file(tmp_path, body: str) -> str:
    path = tmp_path / "my_mm.py"
    path.write_text("from engine import Strategy\n\n\n" + textwrap.dedent(body))
    return str(path)


def _line_of(path: str, marker: str) -> int:
    return next(i for i, line in enumerate(Path(path).read_text().splitlines(), 1) if marker in line)


# -- loading -----------------------------------------------------------------------------------
@pytest.mark.parametrize("callback", CALLBACKS)
@pytest.mark.parametrize(("prefix", "body", "kind"), [
    ("async def", "pass", "an async def"),
    ("async def", "yield", "an async generator"),
    ("def", "yield", "a generator"),
])
def test_a_callback_that_would_never_run_is_refused_at_load(tmp_path, callback, prefix, body, kind):
    args = {"on_timer": "ctx, ts", "on_book": "ctx, book", "on_trade": "ctx, trade",
            "on_order": "ctx, update"}.get(callback, "ctx")
    path = _strategy_file(tmp_path, f"""
        class Mine(Strategy):
            {prefix} {callback}(self, {args}):  # HERE
                {body}
        """)
    with pytest.raises(StrategyError) as info:
        load_strategy(f"{path}:Mine", {})
    line = _line_of(path, "# HERE")
    assert f".{callback} (" in str(info.value) and f"my_mm.py:{line}) is {kind}" in str(info.value)


def test_a_class_that_is_not_a_strategy_is_refused(tmp_path):
    path = _strategy_file(tmp_path, """
        class Plain:
            def on_start(self, ctx):
                pass
        """)
    with pytest.raises(StrategyError, match=r"my_mm.py:Plain is not a Strategy: subclass engine.Strategy"):
        load_strategy(f"{path}:Plain", {})


def test_a_failing_constructor_names_init_and_the_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = _strategy_file(tmp_path, """
        class Mine(Strategy):
            def __init__(self, qty="1"):
                self.qty = int(qty)  # HERE
        """)
    line = _line_of(path, "# HERE")
    with pytest.raises(StrategyError) as info:
        load_strategy("my_mm.py:Mine", {"qty": "abc"})
    assert str(info.value) == (f"strategy error in Mine.__init__ (my_mm.py:{line}): ValueError: "
                               "invalid literal for int() with base 10: 'abc'")


def test_an_import_failure_names_the_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = _strategy_file(tmp_path, """
        LIMIT = undefined_name  # HERE
        """)
    line = _line_of(path, "# HERE")
    with pytest.raises(StrategyError, match=rf"^my_mm.py:{line}: cannot import: NameError: name 'undefined_name'"):
        load_strategy("my_mm.py:Mine", {})
    Path(path).write_text("def broken(:\n")
    with pytest.raises(StrategyError, match=r"^my_mm.py:1: cannot import: SyntaxError"):
        load_strategy("my_mm.py:Mine", {})


# -- the taxonomy ------------------------------------------------------------------------------
def _raised_names() -> set[str]:
    """Names of every exception class some project module raises (`raise X(` / `X(...)` built)."""
    names: set[str] = set()
    for package in ("engine", "replay", "venues", "scenarios", "reports", "modes"):
        for file in (ROOT / package).rglob("*.py"):
            if file == Path(errors.__file__):
                continue
            for node in ast.walk(ast.parse(file.read_text())):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                    names.add(node.func.id)
    return names


def test_every_error_class_is_raised_somewhere_or_is_a_base():
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass)
               if issubclass(c, Exception) and c.__module__ == errors.__name__]
    raised = _raised_names()
    unused = [c.__name__ for c in classes
              if c.__name__ not in raised and not any(o is not c and issubclass(o, c) for o in classes)]
    assert unused == []


def test_user_errors_exit_2_and_bugs_are_not_user_errors():
    assert TickparityError.exit_code == 2
    assert issubclass(errors.OrderError, TickparityError)
    assert not issubclass(errors.OrderError, errors.InstrumentError)
    assert not issubclass(errors.InternalError, TickparityError)


# -- the one vocabulary of reasons -----------------------------------------------------------
def test_every_venue_code_has_one_venue_reason():
    for code in RejectReason:
        if code == RejectReason.NONE:
            assert venue_reason(int(code)) is None
            continue
        text = venue_reason(int(code))
        assert REASONS[text].source == ReasonSource.VENUE
    assert venue_reason(int(RejectReason.POST_ONLY_WOULD_CROSS)) == "post_only_would_take"
    assert venue_reason(int(RejectReason.INSUFFICIENT_BALANCE)) == "insufficient_balance"
    assert set(VENUE_REASONS) == {int(c) for c in RejectReason} - {0}


def test_the_compiled_risk_codes_are_the_same_words():
    assert {REASONS[text].source for text in NB_REASONS.values()} == {ReasonSource.LOCAL, ReasonSource.RISK}
    assert NB_REASONS[8] == "price_band" and NB_REASONS[2] == "min_notional"


@pytest.mark.parametrize(("table", "kwargs", "expected"), [
    ({"max_order_notional": 100}, {"lots": 100_000, "ticks": 101_00}, "max_order_notional"),  # 1 x 101
    ({"max_position": "1"}, {"lots": 200_000}, "max_position"),
    ({"reduce_only": True}, {"lots": 100_000}, "reduce_only"),
    ({"max_open_orders": 1}, {"open_orders": 1}, "max_open_orders"),
    ({"price_band_bps": 10}, {"ticks": 100_20}, "price_band"),  # 20 bps off the mid 100
])
def test_risk_refusals_are_risk_codes_of_the_vocabulary(table, kwargs, expected):
    """BTC/USDT (tick 0.01, lot 0.00001): 0.1 BTC at 100.00 against a book of mid 100.00."""
    args = {"lots": 10_000, "ticks": 100_00, "open_orders": 0} | kwargs

    def check(engine):
        inst = load_instruments()["binance:BTC/USDT"]
        engine.bind([inst], [SimpleNamespace(lots=0)], [lambda: (99_99, 1, 100_01, 1)])
        return engine.check_submit(0, 0, 1, args["lots"], args["ticks"], args["open_orders"], False)

    reason = check(RiskEngine(RiskConfig.from_table(table)))
    assert reason == expected and REASONS[reason].source == ReasonSource.RISK
    killed = RiskEngine(RiskConfig())
    killed.killed = True
    assert check(killed) == ReasonCode.KILL_SWITCH


def test_every_code_is_one_word_with_one_source():
    assert all(code.value == reason.code and ":" not in code.value for code, reason in REASONS.items())
    assert set(REASONS) == set(ReasonCode)


def test_a_decimal_in_an_error_or_warning_is_shown_as_the_number_written(capsys):
    """TOML numbers with a fraction are read as Decimal and messages echo values with !r:
    `leverage = Decimal('2.5')` is a Python detail the user never typed."""

    from engine.errors import ConfigError, StrategyError, plain_numbers
    from modes.console import warn

    value = [Decimal("1.5"), Decimal("-2E+3"), "x"]
    err = ConfigError(f"run.toml: [venues.b] latency.params = {value!r}: expected a list of integers")
    assert str(err) == "run.toml: [venues.b] latency.params = [1.5, -2E+3, 'x']: expected a list of integers"
    assert str(StrategyError(f"qty = {Decimal('0.01')!r}", callback="on_start")) == "qty = 0.01"
    assert plain_numbers("no number") == "no number"
    warn(f"rate = {Decimal('0.5')!r} ignored")
    assert capsys.readouterr().err == "tickparity: warning: rate = 0.5 ignored\n"
