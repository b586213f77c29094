"""Cut-short or corrupt input files (issue 9, point 5): never an internal error.

Every importer and container (gzip, zip, plain CSV, JSON lines): by default a one-line
DataError naming the file and its last complete line (exit 2, nothing written); --skip
imports the readable part with a `truncated_file` warning. A CSV row with the wrong
number of fields is a `malformed_line` naming file:line; a line that is not UTF-8 too.
"""

from __future__ import annotations

import gzip
import io
import zipfile

import numpy as np
import pytest

from engine.types import EventKind, load_instruments
from modes.cli import main
from replay import open_source

BTC = "binance:BTC/USDT"


def _import(capsys, fmt, path, store, *extra, instruments=None):
    args = ["data", "import", "--format", fmt, str(path), "--to", store, *extra]
    if instruments is not None:
        args += ["--instruments", str(instruments)]
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _complete_lines(path) -> bytes:
    """The complete lines a reader gets from a cut-short gzip file before it ends."""
    good: list[bytes] = []
    try:
        with gzip.open(path) as fh:
            for line in fh:
                good.append(line)
    except EOFError:
        pass
    return b"".join(good)


def _rows(store, instruments=None):
    insts = load_instruments(instruments)
    return np.concatenate(list(open_source(store, {BTC: insts[BTC]})))


def test_real_capture_cut_short(ws_data, tmp_path, capsys):
    whole = (ws_data / "spot_btcusdt_20240808.gz").read_bytes()
    cut = tmp_path / "cut.gz"
    cut.write_bytes(whole[:200_000])
    good = _complete_lines(cut)
    last = good.count(b"\n")
    assert last > 1000
    spec = ws_data / "instruments.toml"
    store = f"duckdb:{tmp_path / 'c.duckdb'}"
    code, _out, err = _import(capsys, "binance-ws", cut, store, "--correct-skew", instruments=spec)
    assert code == 2 and not (tmp_path / "c.duckdb").exists()
    assert err == (f"tickparity: error: {cut}: the file ends early or is corrupt after line {last:,} "
                   "(the last complete line; EOFError: Compressed file ended before the end-of-stream "
                   f"marker was reached); nothing was written (--skip imports lines 1-{last:,})\n")
    code, out, _err = _import(capsys, "binance-ws", cut, store, "--correct-skew", "--skip", instruments=spec)
    assert code == 0
    assert "WARNING truncated_file: 1" in out and f"{cut}:{last}: the file ends early" in out
    # exactly what the complete lines hold: the same lines as a file of its own
    plain = tmp_path / "plain.txt"
    plain.write_bytes(good)
    ref = f"duckdb:{tmp_path / 'ref.duckdb'}"
    assert _import(capsys, "binance-ws", plain, ref, "--correct-skew", "--skip", instruments=spec)[0] == 0
    assert np.array_equal(_rows(store, spec), _rows(ref, spec))


def test_corrupt_gzip_and_bad_bytes(tmp_path, capsys):
    from tests.replay.test_replay_importers import ws_capture

    cap = ws_capture(tmp_path / "cap.gz")
    data = bytearray(cap.read_bytes())
    data[-6] ^= 0xFF  # the CRC/size trailer: every line reads, the check fails at the end
    bad = tmp_path / "crc.gz"
    bad.write_bytes(bytes(data))
    store = f"duckdb:{tmp_path / 'x.duckdb'}"
    code, _out, err = _import(capsys, "binance-ws", bad, store, "--correct-skew")
    assert code == 2 and "the file ends early or is corrupt after line 9 " in err and "BadGzipFile" in err
    # a line that is not UTF-8 is a malformed line, named
    text = gzip.decompress(cap.read_bytes()).split(b"\n")
    text[3] = b"\xff\xfe" + text[3]
    raw = tmp_path / "raw.txt"
    raw.write_bytes(b"\n".join(text))
    code, out, err = _import(capsys, "binance-ws", raw, store, "--correct-skew")
    assert code == 2 and "malformed_line 1 (first at" in err and f"{raw}:4: not UTF-8 text" in out


TARDIS = ("exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount\n"
          + "".join(f"binance,BTCUSDT,{1723161250000000 + i * 1000},{1723161250001000 + i * 1000},true,"
                    f"{'bid' if i % 2 else 'ask'},{60000 + (i if i % 2 == 0 else -i)}.00,1.0\n"
                    for i in range(2000)))


def test_tardis_gzip_cut_short_and_short_row(tmp_path, capsys):
    blob = gzip.compress(TARDIS.encode())
    cut = tmp_path / "book.csv.gz"
    cut.write_bytes(blob[: len(blob) * 2 // 3])
    good = _complete_lines(cut)
    last = good.count(b"\n")
    store = f"duckdb:{tmp_path / 't.duckdb'}"
    code, _out, err = _import(capsys, "tardis", cut, store)
    assert code == 2 and f"{cut}: the file ends early or is corrupt after line {last:,} " in err
    code, out, _err = _import(capsys, "tardis", cut, store, "--skip")
    assert code == 0 and "WARNING truncated_file: 1" in out
    ev = _rows(store)
    assert (ev["kind"] == EventKind.BOOK_DELTA).sum() == last - 1  # every complete data line
    # a plain CSV whose last line is cut mid-row: a malformed line, named
    short = tmp_path / "short.csv"
    short.write_text(TARDIS[: TARDIS.index("\n", 500) + 20])
    code, out, err = _import(capsys, "tardis", short, f"duckdb:{tmp_path / 's.duckdb'}")
    n_lines = short.read_text().count("\n") + 1
    assert code == 2 and f"malformed_line 1 (first at {short}:{n_lines})" in err


def _agg_zip(rows: int) -> bytes:
    body = "".join(f"{i},61000.{i % 100:02d},0.10000,{i},{i},{1723161250000 + i},true,true\n"
                   for i in range(1, rows + 1))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("BTCUSDT-aggTrades-2024-08-08.csv", body)
    return buf.getvalue()


def test_binance_public_zip_cut_short(tmp_path, capsys):
    blob = _agg_zip(5000)
    cut = tmp_path / "BTCUSDT-aggTrades-2024-08-08.zip"
    cut.write_bytes(blob[: len(blob) // 2])
    store = f"duckdb:{tmp_path / 'z.duckdb'}"
    code, _out, err = _import(capsys, "binance-public", cut, store)
    assert code == 2 and f"{cut}: the file ends early or is corrupt after line " in err
    assert "BadZipFile" in err and "internal error" not in err
    code, out, _err = _import(capsys, "binance-public", cut, store, "--skip")
    assert code == 0 and "WARNING truncated_file: 1" in out
    trades = _rows(store)
    ids = trades["order_id"][trades["kind"] == EventKind.TRADE].tolist()
    assert len(ids) > 100 and ids == list(range(1, len(ids) + 1))  # a prefix, in order
    # the whole archive imports every row
    whole = tmp_path / "w" / "BTCUSDT-aggTrades-2024-08-08.zip"
    whole.parent.mkdir()
    whole.write_bytes(blob)
    assert _import(capsys, "binance-public", whole, f"duckdb:{tmp_path / 'w.duckdb'}")[0] == 0


@pytest.mark.parametrize("fmt", ["binance-ws", "tardis", "binance-public"])
def test_check_of_a_cut_file_is_a_data_error(fmt, tmp_path, capsys):
    name = {"binance-ws": "x.gz", "tardis": "x.csv.gz", "binance-public": "BTCUSDT-aggTrades-2024-08-08.csv.gz"}
    agg = "".join(f"{i},61000.00,0.1,{i},{i},1723161250000,true,true\n" for i in range(1, 3000))
    body = {"binance-ws": b"1 {}\n" * 5000, "tardis": TARDIS.encode(), "binance-public": agg.encode()}[fmt]
    blob = gzip.compress(body)
    path = tmp_path / name[fmt]
    path.write_bytes(blob[: len(blob) // 2])
    assert main(["data", "check", "--format", fmt, str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tickparity: error: {path}: the file ends early or is corrupt after line ")
