"""bench/bench_order_state.py runs the OMS's order life it times and prints one figure."""

import re

from bench.bench_order_state import main, per_order_us


def test_the_oms_micro_bench_runs_and_reports(capsys):
    assert per_order_us(100) > 0
    assert main(["--orders", "100", "--repeat", "2"]) == 0
    out = capsys.readouterr().out
    assert re.match(r"\d+\.\d{3} us per order \(create, 2 status changes, 2 fills\), best of 2 x 100; "
                    r"load average \d+\.\d\d\n$", out)


def test_the_stalls_run_times_every_create_and_names_the_slowest(capsys):
    from bench.bench_order_state import create_times

    for mode in ("open", "closed", "named"):
        times = create_times(50, mode)
        assert len(times) == 50 and all(t >= 0 for t in times)
    assert main(["--stalls", "--orders", "200"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0].strip() for line in lines[:3]] == ["open", "closed", "named"]
    assert all("slowest (order no: us)" in line for line in lines[:3]) and lines[3].startswith("load average")
