"""`python run.py play` in headless Chromium: keys drive frames, fps shows, gif downloads, bad uploads
are refused with a message while the server keeps serving, and each tab is its own session.

Needs Debian's `chromium` and `chromium-driver` (install.sh installs them); without them this test
fails, it does not skip.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image

from common.errors import UserError
from play.browser import headless_chromium, serving

UPLOAD_LIMIT = 200_000  # bytes: small, so the oversized upload is quick to make


def wait_until(condition, timeout: float = 20.0, what: str = "condition"):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="module")
def player_url(tiny_world_model_dpath, tiny_play_store):
    overrides = [f"model_dpath={tiny_world_model_dpath}", f"dataset_dpath={tiny_play_store}"]
    overrides += ["max_sessions=2", f"max_upload_bytes={UPLOAD_LIMIT}", "threads=1"]
    with serving(*overrides) as url:
        yield url


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    downloads = tmp_path_factory.mktemp("downloads")
    try:
        driver = headless_chromium(downloads)
    except UserError as error:
        pytest.fail(str(error))  # CI installs Chromium (install.sh): missing is a failure, not a skip
    driver.downloads = downloads
    yield driver
    driver.quit()


def text(driver, element_id: str) -> str:  # noqa: ANN001
    return driver.find_element("id", element_id).text


def canvas_pixels(driver) -> str:  # noqa: ANN001
    return driver.execute_script("return document.getElementById('frame').toDataURL()")


def session_id(driver) -> int:  # noqa: ANN001
    return int(text(driver, "connection").split("session ")[1].split()[0])


def open_player(driver, url: str) -> None:  # noqa: ANN001
    driver.get(url)
    wait_until(lambda: text(driver, "start-info"), what="the first start frame")


def hold(driver, key: str, seconds: float, during=None):  # noqa: ANN001, ANN201
    """Hold a key for `seconds`; returns what `during()` gives halfway through."""
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).key_down(key).perform()
    time.sleep(seconds / 2)
    seen = during() if during else None
    time.sleep(seconds / 2)
    ActionChains(driver).key_up(key).perform()
    wait_until(lambda: not driver.execute_script("return window.player.inFlight"), what="the last frame")
    return seen


def start_game_without_noop(driver) -> None:  # noqa: ANN001
    """SquareGame has no NOOP: frames come only while a key is held."""
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element("id", "game")).select_by_value("SquareGame")
    driver.find_element("id", "random-start").click()
    wait_until(lambda: text(driver, "start-info").startswith("SquareGame"), what="the SquareGame start")


def test_keys_play_fps_updates_and_gif_downloads(player_url, browser):
    from selenium.webdriver.common.keys import Keys

    open_player(browser, player_url)
    assert "connected · session" in text(browser, "connection")
    start_game_without_noop(browser)
    actions = [
        item.get_attribute("data-action") for item in browser.find_elements("css selector", "#actions li")
    ]
    assert actions == ["RIGHT", "LEFT", "ACTION_PRIMARY"]
    before = canvas_pixels(browser)
    time.sleep(0.5)
    assert text(browser, "frame-count") == "0"  # no key, no NOOP in this game: the world waits

    def while_held():  # noqa: ANN202
        active = browser.find_elements("css selector", "#actions li.active")
        return [a.get_attribute("data-action") for a in active], float(text(browser, "fps"))

    active, fps = hold(browser, Keys.ARROW_RIGHT, 1.5, while_held)
    assert active == ["RIGHT"] and fps > 0  # the pressed key's action is highlighted; frames/s measured
    num_frames = int(text(browser, "frame-count"))
    assert num_frames > 1 and canvas_pixels(browser) != before
    hold(browser, Keys.SPACE, 0.6)

    num_frames = int(text(browser, "frame-count"))
    browser.find_element("id", "gif").click()
    gif_fpath = wait_until(lambda: next(browser.downloads.glob("*.gif"), None), what="the gif download")
    time.sleep(0.2)  # let Chromium finish the rename
    with Image.open(gif_fpath) as gif:
        assert gif.format == "GIF" and gif.size == (256, 256)
        assert (
            gif.n_frames >= 2 and gif.n_frames <= num_frames + 1
        )  # start + generated (Pillow merges repeats)
        gif.seek(gif.n_frames - 1)
        assert np.asarray(gif.convert("RGB")).shape == (256, 256, 3)


def test_bad_uploads_get_a_message_and_the_server_keeps_serving(player_url, browser, tmp_path):
    from selenium.webdriver.common.keys import Keys

    open_player(browser, player_url)
    start_game_without_noop(browser)
    upload = browser.find_element("id", "upload")
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("this is not a picture")
    upload.send_keys(str(not_an_image))
    wait_until(lambda: "not an image" in text(browser, "message"), what="the bad-file message")
    too_big = tmp_path / "big.png"
    too_big.write_bytes(np.random.default_rng(0).bytes(UPLOAD_LIMIT + 100_000))
    upload.send_keys(str(too_big))
    wait_until(lambda: "limit is 0.2 MB" in text(browser, "message"), what="the size-limit message")
    assert "connected" in text(browser, "connection")

    image = np.zeros((60, 90, 3), dtype=np.uint8)
    image[:, :45] = (250, 40, 40)
    good = tmp_path / "start.png"
    Image.fromarray(image).save(good)
    upload.send_keys(str(good))
    wait_until(lambda: text(browser, "start-info") == "from your image", what="the uploaded start")
    hold(browser, Keys.ARROW_LEFT, 0.8)
    assert int(text(browser, "frame-count")) > 0  # keeps generating after the refusals


def test_each_tab_is_its_own_session_and_a_closed_tab_frees_it(player_url, browser):
    from selenium.webdriver.common.keys import Keys

    open_player(browser, player_url)
    first_tab, first_session = browser.current_window_handle, session_id(browser)
    start_game_without_noop(browser)
    browser.switch_to.new_window("tab")
    open_player(browser, player_url)
    assert session_id(browser) != first_session and "(2 playing)" in text(browser, "connection")
    start_game_without_noop(browser)
    hold(browser, Keys.ARROW_RIGHT, 0.8)
    assert int(text(browser, "frame-count")) > 0
    second_tab = browser.current_window_handle

    browser.switch_to.new_window("tab")  # max_sessions=2: a third tab is told to close one
    browser.get(player_url)
    wait_until(lambda: "tabs are playing already" in text(browser, "message"), what="the full message")
    browser.close()

    browser.switch_to.window(first_tab)
    assert text(browser, "frame-count") == "0"  # the other tab's key presses did not play here
    browser.switch_to.window(second_tab)
    browser.close()  # frees its session
    browser.switch_to.window(first_tab)
    browser.switch_to.new_window("tab")
    open_player(browser, player_url)
    assert "(2 playing)" in text(browser, "connection") and not text(browser, "message")
