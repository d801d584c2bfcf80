"""Headless Chromium (Debian's package) driven through its WebDriver, with the network cut.

`scripts/browser_local.sh install` installs the browser and its driver if they are missing
(needs root or sudo); a test that cannot get them is skipped with the script's output.
Every page is opened offline in two ways at once: Chromium's network emulation is set to
offline, and its host resolver maps every host name to nothing. The performance log records
every request the page made, so a test can assert that none went to the network and none
failed.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from ..conftest import ROOT

SCRIPT = ROOT / "scripts" / "browser_local.sh"


def browser_paths() -> dict[str, str]:
    """Install (if needed) and locate chromium and chromedriver, or skip the test."""
    if os.geteuid() != 0 and shutil.which("sudo") is None and not shutil.which("chromedriver"):
        pytest.skip("installing Chromium needs root or sudo; neither is available")
    proc = subprocess.run(["bash", str(SCRIPT), "install"], capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        pytest.skip(f"could not install Chromium with {SCRIPT.name}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return dict(line.split("=", 1) for line in proc.stdout.split() if "=" in line)


class OfflineBrowser:
    def __init__(self, width: int = 1400, height: int = 1100):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        paths = browser_paths()
        opts = webdriver.ChromeOptions()
        opts.binary_location = paths["chromium"]
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    f"--window-size={width},{height}", "--host-resolver-rules=MAP * ~NOTFOUND",
                    "--disable-background-networking", "--no-first-run"):
            opts.add_argument(arg)
        opts.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(paths["chromedriver"]), options=opts)
        self.driver.set_network_conditions(offline=True, latency=0, download_throughput=0,
                                           upload_throughput=0)

    def open(self, path: Path) -> None:
        self.driver.get(path.resolve().as_uri())

    def wait_for(self, script: str, timeout: float = 60.0):
        """Poll a JavaScript expression until it is truthy; return its value."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = self.driver.execute_script(f"return ({script});")
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {script!r}")

    def requests(self) -> tuple[list[str], list[str]]:
        """(URLs the page requested, descriptions of requests that failed) since the last call."""
        urls, failed, ids = [], [], {}
        for entry in self.driver.get_log("performance"):
            msg = json.loads(entry["message"])["message"]
            params = msg.get("params", {})
            if msg["method"] == "Network.requestWillBeSent":
                ids[params["requestId"]] = params["request"]["url"]
                urls.append(params["request"]["url"])
            elif msg["method"] == "Network.loadingFailed":
                failed.append(f"{ids.get(params['requestId'], '?')}: {params.get('errorText')}")
        return urls, failed

    def console_errors(self) -> list[str]:
        return [e["message"] for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]

    def network_requests(self) -> tuple[list[str], list[str]]:
        """Requests that left the machine's files (anything but file: and data: URLs), and failures."""
        urls, failed = self.requests()
        return [u for u in urls if not u.startswith(("file:", "data:", "blob:", "about:"))], failed

    def screenshot(self, path: Path) -> Path:
        self.driver.save_screenshot(str(path))
        return path

    def close(self) -> None:
        self.driver.quit()
