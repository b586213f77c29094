"""Makes `sim_helpers` (hand-written feeds, a run-to-the-end driver) importable."""

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
