"""The top floor: one runner per mode and the `tickparity` command line.

A mode runner is the only place that knows which clock, venues and data source a run
uses (DESIGN.md, Layout). `modes` may import every other package; no other package
imports `modes` (tests/test_layers.py enforces it).
"""
