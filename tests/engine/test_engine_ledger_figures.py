"""`Ledger.figures` (the equity sample's four figures in one pass, remembered position
terms) against the ledger's Decimal path one figure at a time, written out here as it was
before (`_reference`): same values *and* same exponents (the run directory writes their
text), on random spot, linear and inverse fills, funding, fees in a third asset, marks,
contract mark prices and reporting-currency marks. Plus hand-computed pins of the one
inverse valuation rule and of positions set from outside the ledger (a warm restart)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.ledger import _EXACT, Ledger
from engine.types import load_instruments
from engine.types.instrument import decimal_str

SPOT = "binance:BTC/USDT"  # tick 0.01, lot 0.00001
ETHBTC = "binance:ETH/BTC"  # quote BTC: the BTC balance counts 1:1 (a quote), not at BTC/USDT's mid
BNB = "binance:BNB/USDT"  # marks the fee asset BNB
LINEAR = "binanceusdm:BTC/USDT:USDT"  # tick 0.1, lot 0.001
INVERSE = "binancecoinm:BTC/USD:BTC"  # tick 0.1, 100 USD a contract, settled in BTC
IDS = (SPOT, ETHBTC, BNB, LINEAR, INVERSE)
CAT = load_instruments()


def _reference(ledger: Ledger, marks: dict, quote_marks: dict | None) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """The four figures as `equity`, `realized_pnl`, `unrealized_pnl` and `fees` computed
    them, one method each, before `figures` (the inverse rule: unrealized coin x mark)."""
    mul, add, sub = _EXACT.multiply, _EXACT.add, _EXACT.subtract

    def unrealized_of(pos, mark):  # Position / LinearPosition / InversePosition.unrealized
        if hasattr(pos, "basis"):
            return pos.unrealized(mark)
        qty = mul(Decimal(pos.lots), pos.lot_size)
        size = getattr(pos, "contract_size", None)
        value = mul(mul(qty, size), mark) if size is not None else mul(qty, mark)
        return sub(value, mul(Decimal(pos.cost), pos.unit))

    qm = quote_marks or {}
    mark_of: dict = {}
    for inst in ledger.instruments.values():
        mark = marks.get(inst.id)
        if mark is not None and (inst.venue, inst.base) not in mark_of:
            fx = qm.get(inst.quote)
            mark_of[(inst.venue, inst.base)] = mark if fx is None else mul(mark, fx)
    quotes = {(inst.venue, inst.quote) for inst in ledger.instruments.values()}
    equity = Decimal(0)
    for key in sorted(ledger.balances):
        amount = ledger.balances[key]
        if key in quotes:
            fx = qm.get(key[1])
            equity = add(equity, amount if fx is None else mul(amount, fx))
        elif key in mark_of:
            equity = add(equity, mul(amount, mark_of[key]))
    for inst in ledger.instruments.values():
        if not inst.contract:
            continue
        pos = ledger.positions.get(inst.id)
        mark = ledger.derivatives.mark_of(inst.id, marks.get(inst.id))
        if pos is not None and pos.lots != 0 and mark is not None:
            upnl = unrealized_of(pos, mark)
            equity = add(equity, mul(upnl, mark) if inst.inverse else upnl)
    unrealized = Decimal(0)
    for inst_id, pos in ledger.positions.items():
        mark = ledger.derivatives.mark_of(inst_id, marks.get(inst_id))
        if pos.lots != 0 and mark is not None:
            amount = unrealized_of(pos, mark)
            if ledger.instruments[inst_id].inverse:
                amount = mul(amount, mark)
            unrealized = add(unrealized, amount)
    realized = fees = Decimal(0)
    for pos in ledger.positions.values():
        realized = realized + (pos.realized_quote if hasattr(pos, "basis")
                               else mul(Decimal(pos.realized_units), pos.unit))
        fees = fees + (pos.fees_quote if hasattr(pos, "basis") else pos.fees)
    return equity, realized, unrealized, fees


def _new_ledger() -> Ledger:
    return Ledger({i: CAT[i] for i in IDS}, {
        "binance": {"USDT": Decimal("100000.5"), "BTC": Decimal("2"), "BNB": Decimal("1.000")},
        "binanceusdm": {"USDT": Decimal("5000")}, "binancecoinm": {"BTC": Decimal("0.5")}})


# a step: (instrument, side, price ticks, lots, fee digits and exponent, fee asset choice)
fills = st.tuples(st.sampled_from(IDS), st.sampled_from([1, -1]), st.integers(1, 9_000_000),
                  st.integers(1, 400), st.integers(-999, 999), st.integers(-10, 0), st.integers(0, 2))
funding = st.tuples(st.just("funding"), st.sampled_from([LINEAR, INVERSE]), st.integers(-9999, 9999),
                    st.integers(-10, -2))
marks = st.dictionaries(st.sampled_from(IDS), st.tuples(st.integers(1, 9_000_000), st.integers(-4, 1)), max_size=5)
contract_marks = st.dictionaries(st.sampled_from([LINEAR, INVERSE]),
                                 st.tuples(st.integers(1, 900_000), st.integers(-3, 0)), max_size=2)
quote_marks = st.one_of(st.none(), st.dictionaries(st.sampled_from(["USDT", "BTC", "USD"]),
                                                   st.integers(90_000_000, 110_000_000), max_size=3))


def _book(ledger: Ledger, step: tuple) -> None:
    if step[0] == "funding":
        _, inst_id, digits, exp = step
        ledger.derivatives.book_funding(CAT[inst_id], Decimal(digits).scaleb(exp))
        return
    inst_id, side, ticks, lots, fee_digits, fee_exp, asset_choice = step
    inst = CAT[inst_id]
    fee = Decimal(fee_digits).scaleb(fee_exp)
    if inst.contract:
        if inst.inverse:  # a COIN-M position's coin amounts are at 1e-8
            fee = fee.quantize(Decimal("1e-8"))
        ledger.apply_fill(inst, side, ticks, lots, fee)
        return
    asset = (inst.quote, inst.base, "BNB")[asset_choice]
    ledger.apply_fill(inst, side, ticks, lots, fee, asset)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(fills, funding), max_size=25),
       st.lists(st.tuples(marks, contract_marks, quote_marks), min_size=1, max_size=4))
def test_figures_equal_the_decimal_path_value_and_exponent(steps, samples):
    """Whatever was booked, at whatever marks: `figures` (and `equity`/`unrealized_pnl`,
    which use it) give the reference's Decimals with the same text, sample after sample
    (the remembered terms must follow every change), as must each position's `qty`."""
    ledger = _new_ledger()
    for k, step in enumerate(steps):
        _book(ledger, step)
        mids, cmarks, qm = samples[k % len(samples)]
        for inst_id, (digits, exp) in cmarks.items():
            ledger.derivatives.set_mark(inst_id, Decimal(digits).scaleb(exp), k)
        at = {i: Decimal(d).scaleb(e) for i, (d, e) in mids.items()}
        qmarks = None if qm is None else {a: Decimal(v).scaleb(-8) for a, v in qm.items()}
        got = ledger.figures(at, qmarks)
        want = _reference(ledger, at, qmarks)
        assert [str(x) for x in got] == [str(x) for x in want]
        assert str(ledger.equity(at, qmarks)) == str(want[0])
        assert str(ledger.unrealized_pnl(at)) == str(want[2])
        assert (str(ledger.realized_pnl()), str(ledger.fees())) == (str(want[1]), str(want[3]))
        for inst_id, pos in ledger.positions.items():
            assert str(ledger.position(inst_id)) == str(_EXACT.multiply(Decimal(pos.lots), pos.lot_size))


def test_an_inverse_contract_counts_its_coin_pnl_at_the_mark_in_both_totals():
    """One rule for an inverse contract's unrealized PnL in quote (`in_quote`, `equity`,
    `unrealized_pnl`): coin amount x mark, zero included. 10 contracts (1,000 USD) long
    from 50,000.0, marked at 50,000.0: 0 BTC, counted as 0E-8 x 50000.0 = 0E-9 (exponent
    -9, as a non-zero amount at that mark: 1e-8 BTC x 50000.0); beside 0.00100 BTC spot
    long from 60,000.00 marked at 60,001.50: 0.00100 x 60001.50 - 600,000,000 units x
    0.0000001 = 0.0015000, so the total is 0.001500000 (exponent -9: the contract's)."""
    ledger = _new_ledger()
    ledger.apply_fill(CAT[INVERSE], 1, 500_000, 10, Decimal(0))
    ledger.apply_fill(CAT[SPOT], 1, 6_000_000, 100, Decimal(0))
    ledger.derivatives.set_mark(INVERSE, Decimal("50000.0"), 0)
    marks = {SPOT: Decimal("60001.50")}
    assert str(ledger.in_quote(INVERSE, Decimal("0E-8"), marks)) == "0E-9"
    assert str(ledger.unrealized_pnl(marks)) == "0.001500000"
    # equity: binance USDT 100,000.5 - 60.0000000 + binance BTC 2.00100 (1:1: the quote of
    # ETH/BTC) + binanceusdm USDT 5,000 + binancecoinm BTC 0.5 (no mid of the contract:
    # left out) + BNB (no mid: left out) + the contract's 0E-9 = 104,942.501 at exponent -9
    assert str(ledger.equity(marks)) == "104942.501000000"


def test_positions_set_from_outside_the_ledger_are_seen_by_the_next_sample():
    """A warm restart (modes/live/resume.py) sets `lots` and `cost` directly: the
    remembered quantity and cost value follow them. 0.00200 BTC from cost 1,200,000,000
    units (60,000.00) at a mid of 61,000.00: 0.00200 x 61000.00 - 120.0000000 = 2.0000000."""
    ledger = _new_ledger()
    pos = ledger.positions[SPOT]
    marks = {SPOT: Decimal("61000.00")}
    assert ledger.unrealized_pnl(marks) == 0 and str(pos.qty) == "0.00000"
    pos.lots, pos.cost = 200, 1_200_000_000
    assert str(pos.qty) == "0.00200"
    assert str(ledger.unrealized_pnl(marks)) == "2.0000000"
    pos.realized_units = 5  # 5 x 1e-7, summed with ETH/BTC's 0 x 1e-10 (tick 1e-6 x lot 1e-4)
    assert str(pos.realized) == "5E-7" and decimal_str(ledger.realized_pnl()) == "0.0000005000"


def _reference_book(balances: dict, inst, side: int, ticks: int, lots: int, fee: Decimal, asset: str) -> None:
    """`Ledger.apply_fill`'s balance moves as the Decimal path wrote them before the signed
    amounts were remembered: side x qty, side x notional (the default context's product)."""
    mul, add, sub = _EXACT.multiply, _EXACT.add, _EXACT.subtract
    qty = mul(Decimal(lots), inst.lot_size)
    notional = mul(Decimal(ticks * lots), mul(inst.tick_size, inst.lot_size))
    base, quote, charged = (inst.venue, inst.base), (inst.venue, inst.quote), (inst.venue, asset)
    balances[base] = add(balances.get(base, Decimal(0)), side * qty)
    balances[quote] = sub(balances.get(quote, Decimal(0)), side * notional)
    balances[charged] = sub(balances.get(charged, Decimal(0)), fee)


spot_fills = st.lists(st.tuples(st.sampled_from([SPOT, ETHBTC, BNB]), st.sampled_from([1, -1]),
                                st.integers(1, 9_000_000), st.integers(1, 400), st.integers(-999, 999),
                                st.integers(-10, 0), st.integers(0, 2), st.booleans()), max_size=40)


@settings(max_examples=300, deadline=None)
@given(spot_fills)
def test_booking_a_fill_equals_the_decimal_path(steps):
    """`apply_fill` and `book_fill` (the record's ticks, lots and fees; no realized Decimal)
    leave the balances the reference's Decimals, value and exponent, and agree with each
    other on positions and fees; `apply_fill`'s realized PnL is the position's change."""
    from engine.types.venue_reports import BookedFill

    ledger, twin = _new_ledger(), _new_ledger()
    reference = dict(ledger.balances)
    for inst_id, side, ticks, lots, digits, exp, asset_choice, as_record in steps:
        inst = CAT[inst_id]
        fee = Decimal(digits).scaleb(exp)
        asset = (inst.quote, inst.base, "BNB")[asset_choice]
        fee_quote = Ledger.fee_in_quote(inst, ticks, fee, asset)
        before = ledger.positions[inst_id].realized
        realized = ledger.apply_fill(inst, side, ticks, lots, fee, asset, fee_quote)
        assert realized == ledger.positions[inst_id].realized - before
        record = BookedFill("c", "v", "t", ticks, lots, inst.ticks_to_price(ticks), inst.lots_to_qty(lots),
                            fee, asset, fee_quote, "maker", 0, 0, "sim")
        if as_record:
            assert twin.book_fill(inst, side, record) is None
        else:
            twin.apply_fill(inst, side, ticks, lots, fee, asset, fee_quote)
        _reference_book(reference, inst, side, ticks, lots, fee, asset)
        want = {k: str(v) for k, v in reference.items()}
        assert {k: str(v) for k, v in ledger.balances.items()} == want
        assert {k: str(v) for k, v in twin.balances.items()} == want
    for inst_id in (SPOT, ETHBTC, BNB):
        pos, other = ledger.positions[inst_id], twin.positions[inst_id]
        assert (pos.lots, pos.cost, pos.realized_units, pos.volume_units, str(pos.fees)) == \
               (other.lots, other.cost, other.realized_units, other.volume_units, str(other.fees))
