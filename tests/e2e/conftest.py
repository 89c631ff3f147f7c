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


@pytest.fixture
def no_worker(settings):
    """Jobs a test queues go to queues of its own that no worker consumes, so that they stay queued until the test runs
    them itself (the session worker of tests/conftest.py consumes the platform's queues)."""
    from tests.core.test_status_page import drop_queues, route_to_private_queues

    names = route_to_private_queues(settings)
    yield names
    drop_queues(names.values(), settings.CELERY_BROKER_URL)
