from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from .stack import ProductionStack, synthetic_fer_csv

TRUSTED_LOAD_BALANCER = "127.0.0.2"  # a second loopback address plays the TLS load balancer in front of nginx


def pytest_configure(config) -> None:
    # The first start's certificate is self-signed: requests to it are unverified on purpose.
    config.addinivalue_line("filterwarnings", "ignore::urllib3.exceptions.InsecureRequestWarning")


@contextmanager
def production_stack(name: str, env: dict[str, str]) -> Iterator[ProductionStack]:
    """A production set started for the tests (a first start with a tiny synthetic FER-2013 file, so bootstrap
    imports it, registers the shipped model and queues the first scoring run, as ``make prod`` does with data), with
    ``env`` on top; stopped, its database dropped and its state removed afterwards. Its database is named after the
    one DATABASE_URL names, so that runs that isolate themselves with DATABASE_URL do not share one."""
    missing = [tool for tool in ("nginx", "redis-server", "pg_dump", "openssl") if not shutil.which(tool)]
    if missing:
        pytest.skip(f"{', '.join(missing)} missing (make test installs them with apt-get)")
    base = urlsplit(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/ferplatform")).path.lstrip("/")
    # Not under pytest's basetemp: every pytest start makes /tmp/pytest-of-<user> 700 again, and nginx's workers
    # (www-data) must get through to static files and media.
    state = Path(tempfile.mkdtemp(prefix=f"ferplatform-{name}-"))
    state.chmod(0o755)
    stack = ProductionStack(state / "var", database=f"{base}_{name}",
                            env={"FER2013_CSV": str(synthetic_fer_csv(state / "fer2013.csv.gz")), **env})
    try:
        yield stack.start()
    finally:
        stack.stop()
        stack.drop_database()
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="session")
def prod_stack():
    """One production set for the end-to-end and nginx tests. One matching vote settles an item here
    (REVIEW_QUORUM=1), so that one reviewer's keyboard can settle one. The load test starts a set of its own."""
    with production_stack("stack", {
        "REVIEW_QUORUM": "1",
        "NGINX_TRUSTED_PROXIES": f"{TRUSTED_LOAD_BALANCER}/32",
        "GUNICORN_WORKERS": "2",
    }) as stack:
        yield stack
