"""Headless Chromium (Debian's chromium + chromium-driver) driven by Selenium, for the app's page tests."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMEDRIVER = ("/usr/bin/chromedriver",)
# Without these a headless Chromium on a closed network stalls on its own background fetches.
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,1300")


def find(paths: tuple[str, ...], name: str) -> str | None:
    return next((p for p in paths if Path(p).is_file()), None) or shutil.which(name)


def start_chromium(download_dir: Path):
    """A Selenium driver of a fresh headless Chromium that saves downloads into ``download_dir``
    and logs its network requests."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = find(CHROMIUM, "chromium")
    for flag in (*FLAGS, f"--user-data-dir={tempfile.mkdtemp(prefix='chromium-profile-')}"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"download.default_directory": str(download_dir),
                                              "download.prompt_for_download": False})
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(find(CHROMEDRIVER, "chromedriver")), options=options)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(download_dir)})
    return driver


def wait_for(condition, timeout: float, what: str):
    """``condition()``'s first truthy value, polled until ``timeout`` seconds; an AssertionError naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.25)


def requested_hosts(driver) -> set[str]:
    """Hosts of the http(s) and websocket requests the page made so far (from Chromium's performance log)."""
    hosts = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] in ("Network.requestWillBeSent", "Network.webSocketCreated"):
            url = message["params"].get("request", {}).get("url") or message["params"].get("url", "")
            if urlparse(url).scheme in ("http", "https", "ws", "wss"):
                hosts.add(urlparse(url).hostname)
    return hosts


def open_tab(driver, title: str) -> None:
    from selenium.webdriver.common.by import By

    button = wait_for(lambda: [b for b in driver.find_elements(By.CSS_SELECTOR, "button[role=tab]")
                               if b.text.strip() == title], 30, f"the tab {title!r}")
    button[0].click()


def download_links(driver, suffix: str) -> list:
    from selenium.webdriver.common.by import By

    links = {}  # Gradio's file list links each file twice (its name and its size): one per file
    for a in driver.find_elements(By.CSS_SELECTOR, "a[download]"):
        href = a.get_attribute("href") or ""
        if href.endswith(suffix) and a.is_displayed():
            links.setdefault(href, a)
    return list(links.values())


def error_toasts(driver) -> list[str]:
    """Texts of the error messages the page shows (Gradio's toasts)."""
    from selenium.webdriver.common.by import By

    return [t.text for t in driver.find_elements(By.CSS_SELECTOR, "[data-testid=toast-text]") if t.text.strip()]


def type_into(element, text: str) -> None:
    """Replace a text box's content the way a person does (select all, then type), so the page sees it."""
    from selenium.webdriver.common.keys import Keys

    element.send_keys(Keys.CONTROL, "a")
    element.send_keys(Keys.BACKSPACE)
    if text:
        element.send_keys(text)
