"""The app as a person uses it: headless Chromium on `semantilm app` (a short demo's checkpoint).

Set ``SEMANTILM_APP_SCREENSHOTS=docs/app`` to keep the screenshots of the three tabs that
docs/app.md shows (written to a temporary folder otherwise).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.semantilm.app.browser import (
    CHROMEDRIVER,
    CHROMIUM,
    download_links,
    error_toasts,
    find,
    open_tab,
    requested_hosts,
    start_chromium,
    type_into,
    wait_for,
)
from tests.semantilm.app.conftest import need, need_module

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "audio" / "tone_440hz_16k.wav"
pytestmark = pytest.mark.slow


@pytest.fixture
def browser(tmp_path):
    need_module("selenium")
    need("chromium", bool(find(CHROMIUM, "chromium") and find(CHROMEDRIVER, "chromedriver")))
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver = start_chromium(downloads)
    try:
        yield driver, downloads
    finally:
        driver.quit()


def _shot(driver, name: str, tmp_path: Path) -> None:
    folder = Path(os.environ.get("SEMANTILM_APP_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    driver.save_screenshot(str(path))
    assert path.stat().st_size < 300_000, f"{path} is {path.stat().st_size} bytes"


def test_page_generates_a_clip_that_downloads_as_a_wav(app_url, browser, tmp_path):
    from selenium.webdriver.common.by import By

    driver, downloads = browser
    driver.get(app_url)
    caption = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#semantilm-caption textarea"), 60, "the page")[0]
    type_into(caption, "a pure tone of 500 Hz")
    type_into(driver.find_element(By.CSS_SELECTOR, "#semantilm-text-takes input"), "2")
    driver.find_element(By.CSS_SELECTOR, "#semantilm-generate").click()
    wav_links = wait_for(lambda: download_links(driver, ".wav"), 120, "the generated wavs' download links")
    assert len(wav_links) == 2 and "done: 2 clip(s)" in driver.find_element(By.TAG_NAME, "body").text
    # Each take's player, labelled with its caption, and the live player that streamed take 1 and holds it whole.
    for take in (1, 2):
        label = f"a pure tone of 500 Hz (take {take})"
        assert driver.find_elements(By.CSS_SELECTOR, f".semantilm-clip audio[data-testid='audio-player-{label}']")
    script = "return Array.from(document.querySelectorAll('audio')).map(a => a.duration)"
    wait_for(lambda: any(d and d > 0.2 for d in driver.execute_script(script)), 30, "a player that holds the clip")
    _shot(driver, "text_to_audio", tmp_path)
    wav_links[0].click()
    path = wait_for(lambda: [p for p in downloads.glob("*.wav")], 30, "the downloaded wav")[0]
    wave, rate = sf.read(path)
    assert rate == 16000 and wave.ndim == 1
    assert 0 < len(wave) <= 1.0 * rate and len(wave) % 640 == 0  # whole codec frames (25/s), at most the 1 s asked for
    assert np.sqrt(np.mean(wave**2)) > 1e-3  # not silent
    assert requested_hosts(driver) == {"127.0.0.1"}  # nothing fetched from outside: works offline

    type_into(caption, "")
    driver.find_element(By.CSS_SELECTOR, "#semantilm-generate").click()
    toasts = wait_for(lambda: error_toasts(driver), 30, "the empty-caption message")
    assert any("caption is empty" in t for t in toasts) and not any("Traceback" in t for t in toasts)


def test_continuation_and_codec_tabs_in_the_page(app_url, browser, tmp_path):
    from selenium.webdriver.common.by import By

    driver, _ = browser
    driver.get(app_url)
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#semantilm-generate"), 60, "the page")
    open_tab(driver, "Continuation")
    upload = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#semantilm-prompt input[type=file]"), 30,
                      "the prompt's upload input")[0]
    upload.send_keys(str(EXAMPLE))
    button = driver.find_element(By.CSS_SELECTOR, "#semantilm-continue")
    wait_for(lambda: button.is_enabled(), 30, "the Continue button")
    button.click()
    wait_for(lambda: "done: 1 clip(s)" in driver.find_element(By.TAG_NAME, "body").text, 120, "the continuation")
    _shot(driver, "continuation", tmp_path)

    open_tab(driver, "Codec")
    upload = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#semantilm-codec-in input[type=file]"), 30,
                      "the codec tab's upload input")[0]
    upload.send_keys(str(EXAMPLE))
    driver.find_element(By.CSS_SELECTOR, "#semantilm-encode").click()
    wait_for(lambda: "bits/s" in driver.find_element(By.TAG_NAME, "body").text, 60, "the encoded tokens")
    driver.find_element(By.CSS_SELECTOR, "#semantilm-decode").click()
    wait_for(lambda: "SI-SDR" in driver.find_element(By.TAG_NAME, "body").text, 120, "the decoded clip's metrics")
    _shot(driver, "codec", tmp_path)
    assert requested_hosts(driver) == {"127.0.0.1"}

