"""Test strategy: kills its process on start, as a segfaulting extension would."""

import os

from engine import Strategy


class Crasher(Strategy):
    def on_start(self, ctx) -> None:
        os._exit(17)
