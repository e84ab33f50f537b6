"""What the web console's browser tests share: Debian's headless Chromium
driven by Selenium, `mcpist console` on a free loopback port, the session
cookie for raw requests, forms read from the page, and screenshots.

Chromium and its driver come from Debian (`apt-get install chromium
chromium-driver`); MCPIST_CHROMIUM and MCPIST_CHROMEDRIVER point elsewhere.
"""

import os
import subprocess
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from support import BINARY, REPO, env_for

CHROMIUM = Path(os.environ.get("MCPIST_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("MCPIST_CHROMEDRIVER", "/usr/bin/chromedriver"))
SCREENSHOTS = REPO / "target" / "console-screenshots"
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",  # root in a container: no user namespaces to sandbox in
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
]
# How long the browser may take to show what a step should lead to.
WAIT = 30
COOKIE = "mcpist_console"
PAGES = ["/console/modules", "/console/accounts", "/console/clients", "/console/audit"]


@contextmanager
def browser():
    """A headless Chromium with a fresh profile, quit when the block ends."""
    for path, package in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")]:
        if not path.is_file():
            pytest.fail(f"{path} is missing: run `apt-get install chromium chromium-driver` ({package})")
    with tempfile.TemporaryDirectory(prefix="mcpist-chromium-") as profile:
        options = Options()
        options.binary_location = str(CHROMIUM)
        for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
            options.add_argument(flag)
        service = Service(executable_path=str(CHROMEDRIVER), log_output=subprocess.DEVNULL)
        driver = webdriver.Chrome(service=service, options=options)
        try:
            driver.set_page_load_timeout(WAIT)
            driver.set_script_timeout(WAIT)
            yield driver
        finally:
            driver.quit()


@contextmanager
def console_server(home, log_level="info"):
    """`mcpist console --bind 127.0.0.1:0 --no-browser` on `home`: yields its
    base URL (`http://127.0.0.1:PORT`), the one-time login link it printed
    alone on its first stdout line, and the process. Its stderr goes to
    HOME/console.log; the lines it prints after the link, if any, are kept
    in `process.rest`."""
    with open(home / "console.log", "w") as log:
        process = subprocess.Popen(
            [str(BINARY), "console", "--bind", "127.0.0.1:0", "--no-browser"],
            env=env_for(home, MCPIST_LOG=log_level),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        first = []
        printed = threading.Event()
        process.rest = []

        def read():
            first.append(process.stdout.readline())
            printed.set()
            process.rest.extend(process.stdout)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            printed.wait(timeout=60)
            assert first and first[0], f"mcpist console printed no link: {(home / 'console.log').read_text()}"
            link = first[0].strip()
            parts = urlsplit(link)
            assert parts.path == "/console/login" and parts.query.startswith("token="), link
            yield f"{parts.scheme}://{parts.netloc}", link, process
        finally:
            stop(process)
            reader.join(timeout=10)


def stop(process):
    """SIGTERM, then SIGKILL if it has not ended within 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
        raise


def screenshot(driver, name):
    """Save the whole page the browser shows (not only what fits the
    window) as target/console-screenshots/NAME.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    size = driver.get_window_size()
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(size["width"], max(size["height"], min(height + 200, 6000)))
    try:
        assert driver.save_screenshot(str(path)), f"no screenshot taken for {name}"
    finally:
        driver.set_window_size(size["width"], size["height"])
    return path


def wait(driver, condition, what, timeout=WAIT):
    """Wait (polling every 0.1 s) until `condition(driver)` is truthy; return it."""
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition, f"timed out waiting for {what}")


def find(driver, css, timeout=WAIT):
    """The element `css` selects, once it is there."""
    return wait(driver, EC.presence_of_element_located((By.CSS_SELECTOR, css)), css, timeout)


def log_in(driver, link):
    """Open the one-time link; the console lands on its modules page."""
    driver.get(link)
    wait(driver, lambda d: urlsplit(d.current_url).path == "/console/modules", "the modules page after login")
    find(driver, "table#modules")


def open_page(driver, base, path):
    """Open a console page (PATH like `/console/accounts`) and wait for its nav."""
    driver.get(base + path)
    find(driver, "nav")


def session_cookie(driver):
    """The console's session cookie as the browser holds it (HttpOnly
    hides it from scripts, not from WebDriver)."""
    cookie = driver.get_cookie(COOKIE)
    assert cookie is not None, f"the browser holds no {COOKIE} cookie"
    return cookie


def button(form, text=None):
    """The submit button of `form` that says `text` (the first one if None)."""
    buttons = form.find_elements(By.CSS_SELECTOR, 'button, input[type="submit"]')
    if text is not None:
        buttons = [b for b in buttons if (b.text or b.get_attribute("value") or "").strip() == text]
    assert buttons, f"no button {text!r} in the form: {form.get_attribute('outerHTML')}"
    return buttons[0]


def submit(driver, form, text=None):
    """Click the button `text` of `form` (its first button if None) and
    wait for the answer to replace the page."""
    clicked = button(form, text)
    clicked.click()
    wait(driver, replaced(clicked), f"the answer to {text or 'the form'!r}")


def replaced(element):
    """A condition true once `element` is no longer in the page shown.

    While the browser swaps one page for the next, chromedriver may answer
    a question about the old element with "Node with given id does not
    belong to the document" (an unknown error) instead of a stale
    reference; both mean the page was replaced."""

    def check(_driver):
        try:
            element.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as error:
            if "does not belong to the document" in (error.msg or ""):
                return True
            raise
        return False

    return check


def message(driver, kind):
    """The text of the page's `.notice` or `.error`."""
    return find(driver, f".{kind}").text


def fill(form, **fields):
    """Type into the named fields of `form`, replacing what they held."""
    for name, value in fields.items():
        field = form.find_element(By.CSS_SELECTOR, f'[name="{name}"]')
        field.clear()
        field.send_keys(value)


def form_data(form):
    """The hidden fields of `form` (its csrf among them) as a dict, and the
    absolute URL it posts to."""
    hidden = form.find_elements(By.CSS_SELECTOR, 'input[type="hidden"]')
    return {h.get_attribute("name"): h.get_attribute("value") for h in hidden}, form.get_attribute("action")


def with_session(driver, **headers):
    """Headers for a raw request that carries the browser's session."""
    return {"Cookie": f"{COOKIE}={session_cookie(driver)['value']}", **headers}


def cell(row, name):
    """The text of the `td.NAME` cell of `row`."""
    return row.find_element(By.CSS_SELECTOR, f"td.{name}").text.strip()
