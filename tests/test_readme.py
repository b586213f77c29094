"""The README's first strategy runs as written (on a shorter synthetic window), and every
page of its documentation map exists."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_the_first_strategy_runs_as_written(tmp_path):
    code = re.search(r"## A first strategy\n\n```python\n(.*?)```", README, re.S).group(1)
    (tmp_path / "my_strategy.py").write_text(code)
    command = re.search(r"## A first strategy.*?```sh\n(.*?)```", README, re.S).group(1)
    argv = command.replace("\\\n", " ").split("#")[0].split()
    assert argv[:2] == [".venv/bin/tickparity", "backtest"]
    argv = [str(Path(sys.executable).parent / "tickparity"), *argv[1:]]
    argv[argv.index("--data") + 1] = "synthetic:7:3m"  # the README's 30 minutes, shortened
    run = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "runs" / "dipper" / "report.html").is_file()
    assert "fills " in run.stdout and "net PnL" in run.stdout  # the headline


def test_every_page_of_the_map_exists():
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README)
    local = [link for link in links if not re.match(r"^[a-z]+:", link)]
    assert local, "the README links no page"
    missing = [link for link in local if not (ROOT / link).exists()]
    assert not missing, missing
