"""Locust users for ``benchmarks/bench_load.py``: reviewers (vote + next), researchers (gallery pages) and API clients
(uploads of real photos), against nginx over HTTPS. Credentials and the photo come from the environment that
bench_load.py sets (LOAD_PASSWORD, LOAD_PHOTO, LOAD_USERS_PER_ROLE, LOAD_GALLERY_PAGES, LOAD_THINK_SECONDS,
LOAD_USERS)."""

from __future__ import annotations

import itertools
import os
import random
import threading
from urllib.parse import urlencode

from locust import FastHttpUser, HttpUser, between, task

PASSWORD = os.environ.get("LOAD_PASSWORD", "")
PHOTO = os.environ.get("LOAD_PHOTO", "")
GALLERY_PAGES = int(os.environ.get("LOAD_GALLERY_PAGES", "1"))
THINK = float(os.environ.get("LOAD_THINK_SECONDS", "0"))  # mean pause between a user's actions (0: none)
_numbers = itertools.count()
_lock = threading.Lock()


_logged_in = 0


def next_number() -> int:
    with _lock:
        return next(_numbers)


def logged_in(user) -> None:
    """Count a user in; once all ``LOAD_USERS`` are, reset the statistics: figures cover the steady state, not the
    logins (a password hash each, all at once at the start) or the first requests behind them."""
    global _logged_in
    with _lock:
        _logged_in += 1
        everyone = _logged_in == int(os.environ.get("LOAD_USERS", "0"))
    if everyone:
        user.environment.stats.reset_all()


class _Browser(FastHttpUser):
    """A logged-in browser session. geventhttpclient (FastHttpUser) costs a fraction of the CPU that requests does,
    which matters when locust shares the server's cores. The first start's certificate is self-signed: ``insecure``
    (FastHttpUser's default) skips its verification."""

    abstract = True
    wait_time = between(THINK / 2, THINK * 3 / 2)

    def cookie(self, name: str) -> str:
        return next((c.value for c in self.client.cookiejar if c.name == name), "")

    def log_in(self, username: str) -> None:
        self.client.get("/accounts/login/", name="login page")
        response = self.client.post(
            "/accounts/login/", name="login", allow_redirects=False,
            data=urlencode({"username": username, "password": PASSWORD,
                            "csrfmiddlewaretoken": self.cookie("csrftoken")}),
            headers={"Content-Type": "application/x-www-form-urlencoded", "Referer": f"{self.host}/accounts/login/"})
        if response.status_code != 302:
            raise RuntimeError(f"login as {username} failed: {response.status_code}")
        self.csrf = self.cookie("csrftoken")
        logged_in(self)


class Reviewer(_Browser):
    """Votes on the item it holds, then asks for the next one, as the review page's keyboard loop does."""

    def on_start(self) -> None:
        self.log_in(f"reviewer{next_number() % int(os.environ.get('LOAD_USERS_PER_ROLE', '16'))}")
        self.items: list[int] = []

    @task
    def vote_and_next(self) -> None:
        if self.items:
            item = self.items.pop(0)
            self.client.post(f"/api/review/items/{item}/votes", name="vote", json={"choice": random.randrange(7)},
                             headers={"X-CSRFToken": self.csrf, "Referer": f"{self.host}/review/"})
        response = self.client.get("/api/review/items/next?count=1", name="next")
        if response.status_code == 200:
            self.items = [item["id"] for item in response.json()["items"]]


class Researcher(_Browser):
    """Pages through the gallery (100 faces a page, with their heatmap overlays' URLs)."""

    def on_start(self) -> None:
        self.log_in(f"researcher{next_number() % int(os.environ.get('LOAD_USERS_PER_ROLE', '16'))}")

    @task
    def gallery_page(self) -> None:
        self.client.get(f"/gallery/?page={random.randint(1, GALLERY_PAGES)}", name="gallery page")


class ApiClient(HttpUser):
    """Uploads one real photo and waits for its prediction and heatmap (``?wait=30``). requests (HttpUser), for its
    multipart uploads; the upload's own work dwarfs the client's cost."""

    wait_time = between(THINK / 2, THINK * 3 / 2)

    def on_start(self) -> None:
        self.client.verify = False  # the first start's certificate is self-signed
        self.client.trust_env = False  # REQUESTS_CA_BUNDLE would override verify=False
        number = next_number() % int(os.environ.get("LOAD_USERS_PER_ROLE", "16"))
        response = self.client.post("/api/auth/token/", name="token", verify=False,
                                    json={"username": f"client{number}", "password": PASSWORD})
        self.client.headers["Authorization"] = f"Token {response.json()['token']}"
        logged_in(self)
        with open(PHOTO, "rb") as file:
            self.photo = file.read()

    @task
    def upload(self) -> None:
        with self.client.post("/api/uploads/?wait=30", name="upload", verify=False, catch_response=True,
                              files={"images": (os.path.basename(PHOTO), self.photo)}) as response:
            if response.status_code != 201:
                response.failure(f"{response.status_code}: {response.text[:200]}")
            elif response.json()["uploads"][0]["status"] != "done":
                response.failure(f"not done within the wait: {response.json()['uploads'][0]['status']}")
