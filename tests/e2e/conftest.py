from __future__ import annotations

import pytest


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors = []  # uncaught exceptions in the pages' scripts (a helper missing, a script run out of order)
    page.on("pageerror", lambda error: errors.append(error))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {[str(e) for e in errors]}"
