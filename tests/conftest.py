"""Fixtures shared by several test files: the Debian programs of tests/external.py."""

import pytest

from tests.external import chromium_browser, redis_server


@pytest.fixture(scope="module")
def browser():
    """One headless chromium per test module (skips locally, fails in CI, when missing).

    Module scope, not session: while Playwright's sync API is open the main thread has a
    running event loop, so any later asyncio.run() or async_to_sync() in the same thread
    fails. Closing the browser at the end of its module gives the loop back.
    """
    with chromium_browser() as launched:
        yield launched


@pytest.fixture
def page(browser):
    """A fresh browser context and page per test, closed afterwards."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def redis_url(tmp_path):
    with redis_server(tmp_path) as url:
        yield url
