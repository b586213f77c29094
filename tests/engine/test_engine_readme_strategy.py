"""A strategy written only from the Strategy API page (docs/strategy-api.md) runs through the CLI."""

import json
import re

from modes.cli import main


def _readme_example(root):
    text = (root / "docs" / "strategy-api.md").read_text()
    section = text.split("# Strategy API", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks, "the Strategy API section must contain a python example"
    return blocks[0]


def test_readme_strategy_runs(tmp_path, request):
    root = request.config.rootpath
    strategy = tmp_path / "from_readme.py"
    strategy.write_text(_readme_example(root))
    name = re.search(r"class (\w+)\(Strategy\)", strategy.read_text()).group(1)
    out = tmp_path / "run"
    code = main(["backtest", "--strategy", f"{strategy}:{name}", "--data", "synthetic:5:5m",
                 "--param", "drop_bps=0.5", "--out", str(out), "--no-report"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())["run"]
    assert summary["events"] > 0
    assert summary["orders"] > 0, "the README example should place orders on 5 minutes of data"
