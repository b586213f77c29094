"""The HTML report in a real browser: headless Chromium (Debian package `chromium`).

Opens report.html from disk through the DevTools protocol, light and dark, and checks
there is no console error, no uncaught exception and no network request besides the
file itself; screenshots are kept as test artifacts (see ARTIFACTS below).

Without Chromium the test is skipped locally with the reason, and fails under CI=true,
where .ci/run installs it (`apt-get install -y chromium`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from reports import compare_runs, write_report
from reports.synthetic import write_synthetic_run

ARTIFACTS = Path(os.environ.get("TICKPARITY_ARTIFACTS", Path(__file__).resolve().parents[1] / "artifacts")) / "reports"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
    "--remote-debugging-port=0",
]


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("chromium is not installed: CI must run `apt-get install -y chromium` (Debian package)")
    pytest.skip("chromium is not installed (Debian: apt-get install -y chromium); the CI run does not skip this")


class DevTools:
    """Minimal DevTools-protocol client on one page (flattened session)."""

    def __init__(self, ws: Any, session: str) -> None:
        self.ws, self.session, self.next_id = ws, session, 0
        self.events: list[dict[str, Any]] = []
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}

    async def pump(self) -> None:
        async for message in self.ws:
            data = json.loads(message.data)
            if "id" in data and data["id"] in self.pending:
                self.pending.pop(data["id"]).set_result(data)
            elif "method" in data:
                self.events.append(data)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = future
        message = {"id": self.next_id, "method": method, "params": params}
        if self.session:
            message["sessionId"] = self.session
        await self.ws.send_str(json.dumps(message))
        reply = await asyncio.wait_for(future, 30)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    async def wait_for(self, method: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events:
                if event["method"] == method:
                    return event
            await asyncio.sleep(0.05)
        raise TimeoutError(method)


#: Every tile piece whose text does not fit: a block whose content is wider than its box
#: (scrollWidth > clientWidth), or a figure (span.n) that sticks out of its tile.
TILE_OVERFLOW_JS = """JSON.stringify((() => {
  const bad = [];
  for (const el of document.querySelectorAll('.tile, .tile .label, .tile .value, .tile .hint')) {
    if (el.scrollWidth > el.clientWidth) bad.push(el.className + ': ' + el.textContent + ' (' + el.scrollWidth + ' > ' + el.clientWidth + ')');
  }
  for (const n of document.querySelectorAll('.tile .n')) {
    const tile = n.closest('.tile').getBoundingClientRect(), r = n.getBoundingClientRect();
    if (r.left < tile.left || r.right > tile.right) bad.push('figure ' + n.textContent + ' outside its tile');
  }
  return bad;
})())"""


async def _inspect(browser_ws: str, url: str, shots: dict[str, Path]) -> dict[str, Any]:
    import aiohttp

    result: dict[str, Any] = {"console": [], "exceptions": [], "requests": [], "failed": [], "background": {},
                              "tile_overflow": {}}
    async with aiohttp.ClientSession() as http, http.ws_connect(browser_ws, max_msg_size=0) as ws:
        browser = DevTools(ws, "")
        pump = asyncio.create_task(browser.pump())
        try:
            target = await browser.call("Target.createTarget", url="about:blank")
            attached = await browser.call("Target.attachToTarget", targetId=target["targetId"], flatten=True)
            page = DevTools(ws, attached["sessionId"])
            page.events = browser.events  # one socket, one event list (filtered by session below)
            page.pending = browser.pending
            browser.next_id = page.next_id = 1000
            for domain in ("Runtime", "Log", "Network", "Page"):
                await page.call(f"{domain}.enable")
            await page.call("Emulation.setDeviceMetricsOverride", width=1280, height=900, deviceScaleFactor=1, mobile=False)
            for scheme, path in shots.items():
                await page.call("Emulation.setEmulatedMedia", media="screen",
                                features=[{"name": "prefers-color-scheme", "value": scheme}])
                browser.events.clear()
                await page.call("Page.navigate", url=url)
                await page.wait_for("Page.loadEventFired")
                await asyncio.sleep(0.5)  # anything lazy would ask for the network now
                evaluated = await page.call(
                    "Runtime.evaluate", returnByValue=True,
                    expression="JSON.stringify({bg: getComputedStyle(document.documentElement).backgroundColor,"
                               " h: document.documentElement.scrollHeight, svgs: document.querySelectorAll('svg').length})")
                info = json.loads(evaluated["result"]["value"])
                result["background"][scheme] = info["bg"]
                result.setdefault("svgs", info["svgs"])
                await page.call("Emulation.setDeviceMetricsOverride", width=1280, height=min(info["h"], 16000),
                                deviceScaleFactor=1, mobile=False)
                shot = await page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(base64.b64decode(shot["data"]))
                for width in (1280, 900, 380):  # desktop, the one-column breakpoint, a phone
                    await page.call("Emulation.setDeviceMetricsOverride", width=width, height=900, deviceScaleFactor=1, mobile=False)
                    await asyncio.sleep(0.1)
                    cut = await page.call("Runtime.evaluate", returnByValue=True, expression=TILE_OVERFLOW_JS)
                    result["tile_overflow"][f"{scheme}@{width}"] = json.loads(cut["result"]["value"])
                await page.call("Emulation.setDeviceMetricsOverride", width=1280, height=900, deviceScaleFactor=1, mobile=False)
                for event in list(browser.events):
                    method, params = event["method"], event.get("params", {})
                    if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert", "warning"):
                        result["console"].append(params)
                    elif method == "Log.entryAdded" and params.get("entry", {}).get("level") in ("error", "warning"):
                        result["console"].append(params["entry"])
                    elif method == "Runtime.exceptionThrown":
                        result["exceptions"].append(params)
                    elif method == "Network.requestWillBeSent" and params.get("request", {}).get("url") != url:
                        result["requests"].append(params["request"]["url"])
                    elif method == "Network.loadingFailed":
                        result["failed"].append(params)
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
    return result


def _open_in_chromium(html: Path, name: str) -> dict[str, Any]:
    chromium = chromium_path()
    # ignore_cleanup_errors: a Chromium helper may still be writing its profile as it exits
    with tempfile.TemporaryDirectory(prefix="tp-chromium-", ignore_cleanup_errors=True) as profile:
        proc = subprocess.Popen([chromium, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + 60
            while not (port_file.is_file() and len(port_file.read_text().splitlines()) >= 2):
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"chromium did not start (exit code {proc.poll()})")
                time.sleep(0.1)
            port, path = port_file.read_text().splitlines()[:2]
            shots = {"light": ARTIFACTS / f"{name}-light.png", "dark": ARTIFACTS / f"{name}-dark.png"}
            return asyncio.run(_inspect(f"ws://127.0.0.1:{port}{path}", html.resolve().as_uri(), shots))
        finally:
            _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End the Chromium we started and its helper processes (its own process group)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=10)
            break
        except subprocess.TimeoutExpired:
            continue
    time.sleep(0.2)  # let the helpers of the group go too


def _assert_clean(result: dict[str, Any]) -> None:
    for where, cut in result["tile_overflow"].items():
        assert cut == [], (where, cut)  # no tile ever cuts a number
    assert result["console"] == [], result["console"]
    assert result["exceptions"] == [], result["exceptions"]
    assert result["requests"] == [], result["requests"]
    assert result["failed"] == [], result["failed"]
    # the dark scheme really changes the page
    assert result["background"]["light"] != result["background"]["dark"], result["background"]


def test_report_in_headless_chromium(tmp_path: Path) -> None:
    chromium_path()  # skip (or fail under CI) before building anything
    run_dir = write_synthetic_run(tmp_path / "run", fills=20_000, seed=11, duration_s=2 * 3600)
    result = _open_in_chromium(write_report(run_dir), "report")
    _assert_clean(result)
    assert result["svgs"] >= 5
    assert (ARTIFACTS / "report-light.png").stat().st_size > 10_000


def test_tiles_with_long_numbers_never_cut_them(runkit, tmp_path: Path) -> None:
    """Net PnL in the tens of millions, a drawdown of millions, Sharpe/Sortino over two days:
    each figure stays whole and inside its tile at every width."""
    chromium_path()
    k = runkit
    tables = k.hand_run_tables()
    hour = 3600 * k.S
    end = k.T0 + 48 * hour
    tables["run"]["end_ts"] = end
    tables["equity"] = [
        {"ts": k.T0, "equity": "100000000", "realized_pnl": "0", "unrealized_pnl": "0", "fees": "0"},
        {"ts": k.T0 + 3 * hour, "equity": "112345678.9012", "realized_pnl": "12345678.9012", "unrealized_pnl": "0", "fees": "0"},
        {"ts": k.T0 + 20 * hour, "equity": "87654321.0987", "realized_pnl": "-12345678.9013", "unrealized_pnl": "0", "fees": "0"},
        {"ts": end, "equity": "87654321.0987", "realized_pnl": "-12000000.0003", "unrealized_pnl": "-345678.901", "fees": "0"},
    ]
    tables["run"]["pnl"]["equity_end"] = "87654321.0987"
    run = k.write_run(tmp_path / "big", **tables)
    html = write_report(run)
    text = html.read_text()
    # by hand: net 87,654,321.0987 - 100,000,000 = -12,345,678.9013 = -12,000,000.0003 - 345,678.901
    assert '<span class="n">-12,345,678.90</span>' in text  # the parts add up at 2 decimals
    assert "realized -12,000,000.00 · unrealized -345,678.90" in text
    # 48 hourly returns, +0.123457 (to 3 h) and -0.246914 (to 20 h): mean -0.0025720;
    # Sharpe = mean / std(ddof=1) x sqrt(8760) = -5.99; Sortino = mean / sqrt(0.246914^2 / 48) x sqrt(8760) = -6.75
    assert '<span class="n">-5.99</span> / <span class="n">-6.75</span>' in text  # two figures, each whole
    result = _open_in_chromium(html, "report-big-numbers")
    _assert_clean(result)
    assert set(result["tile_overflow"]) == {f"{s}@{w}" for s in ("light", "dark") for w in (1280, 900, 380)}


def test_empty_report_and_comparison_in_headless_chromium(empty_run: Path, hand_run: Path, tmp_path: Path) -> None:
    chromium_path()
    _assert_clean(_open_in_chromium(write_report(empty_run), "report-empty"))
    comparison = compare_runs(hand_run, empty_run, tmp_path / "compare.html")
    _assert_clean(_open_in_chromium(comparison.html, "compare"))
