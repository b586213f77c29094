"""Paper, testnet and live sessions over the one TradingSession, and their replay.

Public API::

    from modes.live import run_live, replay_session
    run_live(config, "paper", out, duration_s=60)      # tickparity paper --config RUN.toml
    replay_session("runs/paper-...")                    # tickparity replay RUN_DIR

See docs/live.md.
"""

from modes.live.driver import LiveDriver, run_live

__all__ = ["LiveDriver", "run_live"]
