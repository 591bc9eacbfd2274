"""Fixtures shared by several test files: the Debian programs of tests/external.py."""

import pytest

from tests.external import chromium_browser, redis_server


@pytest.fixture(scope="session")
def browser():
    """One headless chromium for the session (skips locally, fails in CI, when missing)."""
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
