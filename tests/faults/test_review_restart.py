"""PostgreSQL stopped and started under the review page while a reviewer votes 20 items: all 20 votes end stored.

The platform as production runs it (gunicorn, tests/faults/stack.py) on a PostgreSQL cluster and a Redis of the
test's own; the reviewer is a real Chromium on the review page, voting with the keyboard. PostgreSQL is stopped
(``pg_ctl stop -m fast``) once the page holds its prefetched faces; the reviewer votes on those while every send is
answered 503, the page keeps them in its outbox and retries with backoff, and once PostgreSQL is started again
they are sent, new faces come, and the reviewer votes on to 20. The votes are read from the cluster.
(The page's other failures, made by routing its requests, are in tests/e2e/test_review_outbox.py.)
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from tests.accounts.factories import PASSWORD
from tests.faults.stack import PostgresCluster, RedisServer, Stack, missing_binaries

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(bool(missing_binaries(postgres=True)),
                                 reason=f"needs {', '.join(missing_binaries(postgres=True))}")]

VOTES = 20
STOP_AFTER = 5  # votes stored before PostgreSQL is stopped
DOWN_FOR = 6.0  # s PostgreSQL stays down after the reviewer has voted on every face the page holds
BACK_WITHIN = 30.0  # s from `pg_ctl start` to the votes cast meanwhile stored and a new face on the page
VOTE_URL = re.compile(r"/api/review/items/\d+/votes$")
FACE = '[data-item-id]:not([data-item-id=""])'  # a face on the page (no attribute yet: the page has not started)

SETUP = """
import json
from apps.accounts.roles import Role
from tests.accounts.factories import UserFactory
from tests.review.factories import ReviewItemFactory
rita = UserFactory(username="rita", roles=[Role.REVIEWER])
items = [ReviewItemFactory(priority=n / 100).pk for n in range({items})]
print(json.dumps({{"user": rita.pk, "items": items}}))
"""


@pytest.fixture
def platform(tmp_path: Path):
    """Own PostgreSQL (migrated; a reviewer and VOTES + a few open items) and Redis, gunicorn on them."""
    pg = PostgresCluster()
    redis = RedisServer(tmp_path, appendonly=False)
    stack = None
    try:
        pg.init()
        pg.start()
        redis.start()
        stack = Stack(base=tmp_path, database_url=pg.create_database("ferplatform"), redis_url=redis.url(),
                      media_root=tmp_path / "media")
        web = stack.start_web()  # it boots while the database is migrated
        stack.manage("migrate", "--no-input", "-v", "0")
        setup = json.loads(stack.manage("shell", "-c", SETUP.format(items=VOTES + 5)).strip().splitlines()[-1])
        web.wait_ready()
        yield pg, web, setup
    finally:
        if stack is not None:
            stack.close()
        redis.close()
        pg.close()


def test_review_page_keeps_every_vote_through_a_postgres_restart(platform, browser):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    pg, web, setup = platform
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors, tries = [], []
    page.on("pageerror", lambda error: errors.append(error))
    page.on("request", lambda request: tries.append(time.monotonic()) if VOTE_URL.search(request.url) else None)
    app = page.locator("#review-app")
    voted: dict[int, int] = {}

    def vote() -> None:
        item = int(app.get_attribute("data-item-id"))
        choice = len(voted) % 7
        page.keyboard.press(str(choice + 1))
        voted[item] = choice

    def wait_for_face() -> None:
        page.wait_for_selector(f"#review-app{FACE}")

    def state() -> str:  # what a failure shows: the page's counts and lines, and the web's log
        data = page.evaluate("() => ({...document.getElementById('review-app').dataset})")
        data = {k: v for k, v in data.items() if not k.endswith("Url")}
        return (f"page: {data}; outbox: {page.inner_text('#outbox')!r}; status: {page.inner_text('#status')!r}\n"
                f"{web.process.tail(3000)}")

    try:
        page.goto(f"{web.url}/accounts/login/?next=/review/")
        page.fill("#id_username", "rita")
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        while len(voted) < STOP_AFTER:
            wait_for_face()
            vote()
        page.wait_for_selector(f'#review-app[data-pending="0"][data-outbox="0"]{FACE}')

        pg.stop("fast")
        stopped = time.monotonic()
        while app.get_attribute("data-item-id"):  # the faces the page already holds: voted on with the database down
            vote()
        held_while_down = len(voted) - STOP_AFTER
        page.wait_for_selector("#waiting-items:not([hidden])")
        page.wait_for_timeout(DOWN_FOR * 1000)
        assert app.get_attribute("data-outbox") == str(held_while_down) and app.get_attribute("data-unsent") == "0"
        assert "waiting to be sent" in page.inner_text("#outbox")
        tries_while_down = sum(t >= stopped for t in tries)

        pg.start()
        started = time.monotonic()
        try:
            page.wait_for_selector(f'#review-app[data-outbox="0"]{FACE}', timeout=BACK_WITHIN * 1000)
        except PlaywrightTimeout:
            pytest.fail(f"not back within {BACK_WITHIN} s of the start: {state()}")
        back_after = time.monotonic() - started
        while len(voted) < VOTES:
            wait_for_face()
            vote()
        page.wait_for_selector('#review-app[data-pending="0"][data-outbox="0"]')
    finally:
        context.close()

    stored = dict(pg.execute("SELECT item_id, choice FROM review_vote WHERE reviewer_id = %s", (setup["user"],),
                             database="ferplatform"))
    print(f"\n{held_while_down} votes cast with PostgreSQL down, {tries_while_down} tries of them in "
          f"{started - stopped:.1f} s; stored and a new face {back_after:.1f} s after the start; "
          f"{len(stored)} votes stored of {len(voted)} cast, {len(tries)} vote requests")
    assert held_while_down >= 2  # the page held its prefetch: the reviewer went on while sends failed
    # Retried, not dropped: the first send and at least one more. The outbox sends one vote at a time, and waits at
    # least the 503's Retry-After (5 s) between tries, so a 6 s outage sees two or three.
    assert tries_while_down >= 2
    assert stored == voted and len(stored) == VOTES
    assert not errors, f"JavaScript errors on the page: {[str(e) for e in errors]}"
