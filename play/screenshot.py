"""`python -m play.screenshot OUT.png [model_dpath=...] [dataset_dpath=...]`: the player page after a few
key presses, as a PNG (docs/player.png is made this way). Keys are `run.py play` overrides."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from play.browser import headless_chromium, serving


def main(argv: list[str]) -> int:
    if not argv or not argv[0].endswith(".png"):
        sys.exit("usage: python -m play.screenshot OUT.png [model_dpath=...] [dataset_dpath=...]")
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    with serving(*argv[1:]) as url, tempfile.TemporaryDirectory() as downloads:
        driver = headless_chromium(Path(downloads), window_size="960,900")
        try:
            driver.get(url)
            deadline = time.monotonic() + 30
            while not driver.find_element("id", "start-info").text and time.monotonic() < deadline:
                time.sleep(0.1)
            for key, seconds in ((Keys.ARROW_RIGHT, 1.5), (Keys.SPACE, 0.5)):
                ActionChains(driver).key_down(key).perform()
                time.sleep(seconds)
            driver.save_screenshot(argv[0])  # the space key still held: its action is highlighted
            ActionChains(driver).key_up(Keys.SPACE).key_up(Keys.ARROW_RIGHT).perform()
        finally:
            driver.quit()
    print(f"wrote {argv[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
