"""Browser fixtures: Debian's headless Chromium driving the app on a loopback port.

Every test here is marked ``e2e``. Without Chromium the tests are skipped with a
reason, unless ``CONVEYOR_REQUIRE_BROWSER=1`` (CI) turns that into a failure.
"""

import os
import threading
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright
from werkzeug.serving import make_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# base.html loads htmx from this CDN first; tests never wait on the network.
CDN_ROUTE = "**/cdn.jsdelivr.net/**"
E2E_DIR = Path(__file__).parent


def pytest_collection_modifyitems(items):
    for item in items:
        if E2E_DIR in Path(item.path).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the whole run (skipped, or failed in CI, if absent)."""
    if not CHROMIUM.exists():
        reason = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CONVEYOR_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{reason}; CONVEYOR_REQUIRE_BROWSER=1 requires it", pytrace=False)
        pytest.skip(f"{reason}; set CONVEYOR_REQUIRE_BROWSER=1 to fail instead")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def live_server(app):
    """Serve the app on 127.0.0.1:<free port>; emailed links point there meanwhile."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base_url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    previous_base_url = app.config["BASE_URL"]
    app.config["BASE_URL"] = base_url
    thread.start()
    yield base_url
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
    app.config["BASE_URL"] = previous_base_url


@pytest.fixture
def lead_builder(app):
    """The worker's lead builder, run in the background as posts arrive (every 0.2 s)."""
    from app.extensions import db
    from app.tasks.leads import build_leads

    stop = threading.Event()

    def run():
        with app.app_context():
            while not stop.wait(0.2):
                build_leads()
                db.session.remove()

    thread = threading.Thread(target=run, name="lead-builder", daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(timeout=10)


@pytest.fixture
def new_page(browser, live_server, lead_builder):
    """Factory: a page in a fresh browser context (its own cookies) with the CDN blocked.

    ``new_page(locale="ru-RU")`` sets the browser's language (Accept-Language).
    Contexts close before the live server stops.
    """
    contexts = []

    def open_page(locale: str = "en-US") -> Page:
        context = browser.new_context(base_url=live_server, locale=locale)
        context.set_default_timeout(10_000)
        context.route(CDN_ROUTE, lambda route: route.abort())
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()
