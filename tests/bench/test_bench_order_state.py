"""bench/bench_order_state.py runs the OMS's order life it times and prints one figure."""

import re

from bench.bench_order_state import main, per_order_us


def test_the_oms_micro_bench_runs_and_reports(capsys):
    assert per_order_us(100) > 0
    assert main(["--orders", "100", "--repeat", "2"]) == 0
    out = capsys.readouterr().out
    assert re.match(r"\d+\.\d{3} us per order \(create, 2 status changes, 2 fills\), best of 2 x 100; "
                    r"load average \d+\.\d\d\n$", out)
