"""The emulator's `partial_fill_drought` (the shared vocabulary, venues/faults.py): when it
fires, the simulated venue under the emulator gets the backtest's drought window in market
time, [now, now + duration x speed), with the fraction in ppm (the matching itself is the
backtest's, tested in tests/venues/sim/test_sim_fill_drought.py)."""

from __future__ import annotations

from emu_helpers import control, make_emulator, step

from venues.sim import codes as C


def test_the_drought_window_is_set_in_market_time_when_it_fires(tmp_path):
    with make_emulator(tmp_path) as emu:
        now = step(emu, 2.0)
        control(emu, "faults", {"kind": "partial_fill_drought", "duration": "5s", "fraction": 0.25})

        def window(server):
            V = server.exchange.core._V
            return [(int(V[v, C.VF_DRY_START]), int(V[v, C.VF_DRY_END]), int(V[v, C.VF_DRY_PPM]))
                    for v in range(len(server.exchange.core.venues))]

        assert emu.call(window) == [(now, now + 5_000_000_000, 250_000)]
        journal = emu.call(lambda server: [e for e in list(server.exchange.journal.recent) if e["event"] == "fault"])
        assert [e["kind"] for e in journal] == ["partial_fill_drought"]
