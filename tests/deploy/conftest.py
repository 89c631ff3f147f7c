from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from .stack import ProductionStack, synthetic_fer_csv

TRUSTED_LOAD_BALANCER = "127.0.0.2"  # a second loopback address plays the TLS load balancer in front of nginx


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "deploy: starts the production set (scripts/prod.py) on ports of its own")
    # The first start's certificate is self-signed: requests to it are unverified on purpose.
    config.addinivalue_line("filterwarnings", "ignore::urllib3.exceptions.InsecureRequestWarning")


@pytest.fixture(scope="session")
def prod_stack():
    """One production set for the deploy tests: a first start with a tiny synthetic FER-2013 file, so bootstrap
    imports it, registers the shipped model and queues the first scoring run, as ``make prod`` does with data.
    One matching vote settles an item here (REVIEW_QUORUM=1), so that one reviewer's keyboard can settle one."""
    missing = [tool for tool in ("nginx", "redis-server", "pg_dump", "openssl") if not shutil.which(tool)]
    if missing:
        pytest.skip(f"{', '.join(missing)} missing (make test installs them with apt-get)")
    # Not under pytest's basetemp: every pytest start makes /tmp/pytest-of-<user> 700 again, and nginx's workers
    # (www-data) must get through to static files and media.
    state = Path(tempfile.mkdtemp(prefix="ferplatform-prod-"))
    state.chmod(0o755)
    stack = ProductionStack(state / "var", database="ferplatform_deploy_test", env={
        "FER2013_CSV": str(synthetic_fer_csv(state / "fer2013.csv.gz")),
        "REVIEW_QUORUM": "1",
        "NGINX_TRUSTED_PROXIES": f"{TRUSTED_LOAD_BALANCER}/32",
        "GUNICORN_WORKERS": "2",
    })
    try:
        yield stack.start()
    finally:
        stack.stop()
        stack.drop_database()
        shutil.rmtree(state, ignore_errors=True)
