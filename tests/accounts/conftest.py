from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def axes_enabled(settings):
    """django-axes is on for the accounts tests, as in every deployment (the test settings turn it off elsewhere)."""
    settings.AXES_ENABLED = True
