"""Browser tests: the app on a loopback port, Debian's Chromium driven by Playwright."""
from __future__ import annotations

import os
import threading

import pytest
from werkzeug.serving import make_server

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = os.path.join(os.path.dirname(__file__), "screenshots")


@pytest.fixture
def live_server(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"])
        yield browser
        browser.close()


class Requests:
    """Every URL the page asked for, to prove nothing left the server."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.urls: list[str] = []

    def outside(self) -> list[str]:
        return [u for u in self.urls
                if not (u.startswith(self.base_url) or u.startswith("data:")
                        or u.startswith("about:"))]


@pytest.fixture
def page_factory(browser, live_server):
    contexts = []

    def make(width=1366, height=768, locale="ja-JP", javascript=True):
        context = browser.new_context(viewport={"width": width, "height": height}, locale=locale,
                                      java_script_enabled=javascript)
        contexts.append(context)
        page = context.new_page()
        page.requests = Requests(live_server)
        page.on("request", lambda request: page.requests.urls.append(request.url))
        page.set_default_timeout(10000)
        return page

    yield make
    for context in contexts:
        context.close()


def shot(page, name: str) -> str:
    os.makedirs(SCREENSHOTS, exist_ok=True)
    path = os.path.join(SCREENSHOTS, f"{name}.png")
    page.screenshot(path=path, full_page=True)
    return path


def body_text(page) -> str:
    """The page's text once the document has loaded: a click on a submit button returns when
    the next page starts arriving, and reading it then sees half a page."""
    page.wait_for_load_state("load")
    return page.inner_text("body")
