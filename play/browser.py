"""Drive the player from headless Chromium (Debian's `chromium` + `chromium-driver`, via Selenium): what the
browser test and `python -m play.screenshot` share. Selenium is a dev dependency, imported here only."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from common.errors import UserError

REPO_DPATH = Path(__file__).resolve().parents[1]
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


@contextmanager
def serving(*overrides: str) -> Iterator[str]:
    """Run `python run.py play <overrides>` in a subprocess; yields its URL once it listens."""
    args = [sys.executable, str(REPO_DPATH / "run.py"), "play", *overrides]
    env = {**os.environ, "GENIE_REDUX_NO_BOOTSTRAP": "1", "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        line = server.stdout.readline()  # "player: http://127.0.0.1:PORT/ ..." once it listens
        if not line.startswith("player: http://"):
            raise RuntimeError(f"the player did not start: {line}{server.stdout.read()[-2000:]}")
        yield line.split()[1]
    finally:
        server.terminate()
        server.wait(timeout=10)


def headless_chromium(download_dpath: Path, window_size: str = "1100,800"):  # noqa: ANN201
    """A Selenium Chrome driver on the system's Chromium; downloads land in `download_dpath`."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = next((shutil.which(name) for name in CHROMIUM_NAMES if shutil.which(name)), None)
    driver_fpath = shutil.which("chromedriver")
    if chromium is None or driver_fpath is None:
        raise UserError(
            "headless Chromium is missing: run install.sh (apt-get install chromium chromium-driver)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", f"--window-size={window_size}"):
        options.add_argument(flag)
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(download_dpath), "download.prompt_for_download": False}
    )
    return webdriver.Chrome(service=Service(driver_fpath), options=options)
