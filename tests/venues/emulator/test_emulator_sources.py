"""The market is a dataset: the emulator replays a DuckDB, Parquet or chDB (ClickHouse)
store as it replays synthetic data. Each store is written by `tickparity data generate`;
unmodified ccxt sees the store's book and trades against it."""

from __future__ import annotations

import pytest
from emu_helpers import book_of, make_emulator, step, sync_client

from engine.types import load_instruments
from modes.cli import main
from replay import open_source

ID = "binance:BTC/USDT"


@pytest.mark.parametrize("kind", ["duckdb", "parquet", "chdb"])
def test_a_store_is_the_market(tmp_path, kind, capsys):
    spec = f"{kind}:{tmp_path / ('store.duckdb' if kind == 'duckdb' else 'store')}"
    assert main(["data", "generate", "--to", spec, "--instrument", ID, "--seed", "4",
                 "--duration", "20s", "--start", "2024-03-01T00:00:00Z"]) == 0
    capsys.readouterr()
    insts = {ID: load_instruments()[ID]}
    with make_emulator(tmp_path / "emu", ids=(ID,),
                       source=open_source(spec, insts, chunk_rows=1 << 14)) as emu:
        step(emu, 5.0)
        ex = sync_client(emu, "alice")
        ex.load_markets()
        assert list(ex.markets) == ["BTC/USDT"]
        ob = ex.fetch_order_book("BTC/USDT", 1000)
        uid, bids, asks = book_of(emu, 0)
        assert ob["nonce"] == uid > 0 and ob["bids"] == bids and ob["asks"] == asks
        o = ex.create_order("BTC/USDT", "market", "buy", 0.001)
        assert o["status"] == "closed" and o["filled"] == 0.001
        assert o["trades"][0]["price"] == asks[0][0]  # the store's best ask
        data_start = emu.call(lambda s: s.exchange.clock.data_start_ns)
    # the store's first row is the emulator's data start (its times shifted to now)
    first = next(iter(open_source(spec, insts)))
    assert data_start == int(first["local_ts"][0])
