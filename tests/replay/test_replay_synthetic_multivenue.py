"""Multi-venue synthetic data: one latent price for the same asset on several venues."""

import numpy as np

from engine.types import EventKind, load_instruments
from engine.types.instrument import default_instruments_path
from replay.synthetic import VENUE_PROFILES, generate, linked_groups

CAT = load_instruments(default_instruments_path())
MIN = 60_000_000_000


def rows(ids, seed=5, duration=2 * MIN):
    insts = [CAT[i] for i in ids]
    return insts, np.concatenate(list(generate(insts, seed, duration_ns=duration)))


def last_trade(rows_, index, inst):
    tr = rows_[(rows_["instrument"] == index) & (rows_["kind"] == EventKind.TRADE)]
    return float(tr["price"][-1]) * float(inst.tick_size), tr


def test_groups_are_same_base_and_quote():
    insts = [CAT[i] for i in ("binance:BTC/USDT", "okx:BTC/USDT", "coinbase:BTC/USD", "binance:ETH/USDT")]
    assert linked_groups(insts) == {"BTC/USDT": [0, 1]}  # USD and USDT differ; ETH alone


def test_an_asset_alone_is_generated_as_before():
    """Independent assets still do not influence each other, and an asset on one venue keeps
    its stream byte for byte whatever runs beside it."""
    _, alone = rows(["binance:BTC/USDT"])
    _, beside = rows(["binance:BTC/USDT", "binance:ETH/USDT", "coinbase:BTC/USD"])
    mine = beside[beside["instrument"] == 0]
    assert np.array_equal(alone, mine)


def test_linked_venues_share_the_price_and_differ_by_profile():
    ids = ["binance:BTC/USDT", "okx:BTC/USDT", "kraken:BTC/USD", "coinbase:BTC/USD"]
    insts, data = rows(ids, duration=5 * MIN)
    b, b_tr = last_trade(data, 0, insts[0])
    o, o_tr = last_trade(data, 1, insts[1])
    # one latent: after 5 minutes the two USDT venues are within a few bps of each other
    assert abs(b - o) / b < 5e-4
    # venue profiles: okx's feed is slower and its book thinner than binance's
    lat = [float((data[data["instrument"] == i]["local_ts"] - data[data["instrument"] == i]["exch_ts"]).mean())
           for i in range(2)]
    assert lat[1] > lat[0]
    assert VENUE_PROFILES["okx"].latency_us > VENUE_PROFILES["binance"].latency_us
    size = [float(t["qty"].mean()) * float(inst.lot_size) for t, inst in ((b_tr, insts[0]), (o_tr, insts[1]))]
    assert size[1] < size[0]
    # the linked USD pair (kraken, coinbase) shares its own latent, not the USDT one
    k, _ = last_trade(data, 2, insts[2])
    c, _ = last_trade(data, 3, insts[3])
    assert abs(k - c) / k < 5e-4


def test_same_seed_same_rows():
    _, a = rows(["binance:BTC/USDT", "okx:BTC/USDT"], seed=9, duration=MIN)
    _, b = rows(["binance:BTC/USDT", "okx:BTC/USDT"], seed=9, duration=MIN)
    assert np.array_equal(a, b)


def test_unlinked_streams_are_byte_identical_to_before_multi_venue():
    """Digests computed with the generator as it was before multi-venue linking (commit
    64f7e01): one venue alone, and three instruments of different assets side by side. Hashed
    column by column: the record dtype has 4 padding bytes whose content is undefined."""
    import hashlib

    cases = {("binance:BTC/USDT",): "a977db3e721865a9b104e090a560e4b7f8301f3d191791abaf7fbb74fc031810",
             ("binance:BTC/USDT", "okx:ETH/USDT", "coinbase:BTC/USD"):
             "132658e3dff768e0dadffff39ee22c2517038b2cf5b11b082171fe6cd7aff06c"}
    for ids, digest in cases.items():
        _, data = rows(list(ids), seed=5, duration=MIN)
        h = hashlib.sha256()
        for name in data.dtype.names:
            h.update(np.ascontiguousarray(data[name]).tobytes())
        assert h.hexdigest() == digest
