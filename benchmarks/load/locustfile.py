"""Locust users for ``benchmarks/bench_load.py``: reviewers (vote + next), researchers (gallery pages) and API clients
(uploads of real photos), against nginx over HTTPS. Credentials and the photo come from the environment that
bench_load.py sets (LOAD_PASSWORD, LOAD_ADMIN_PASSWORD, LOAD_PHOTO, LOAD_USERS_PER_ROLE)."""

from __future__ import annotations

import itertools
import os
import random
import threading

from locust import HttpUser, between, task

PASSWORD = os.environ.get("LOAD_PASSWORD", "")
PHOTO = os.environ.get("LOAD_PHOTO", "")
GALLERY_PAGES = int(os.environ.get("LOAD_GALLERY_PAGES", "1"))
_numbers = itertools.count()
_lock = threading.Lock()


def next_number() -> int:
    with _lock:
        return next(_numbers)


class _Tls(HttpUser):
    abstract = True
    wait_time = between(0.0, 0.0)

    def on_start(self) -> None:
        self.client.verify = False  # the first start's certificate is self-signed
        self.client.trust_env = False  # REQUESTS_CA_BUNDLE would override verify=False

    def log_in(self, username: str) -> None:
        self.client.get("/accounts/login/", name="login page", verify=False)
        response = self.client.post("/accounts/login/", name="login",
                                    data={"username": username, "password": PASSWORD,
                                          "csrfmiddlewaretoken": self.client.cookies.get("csrftoken", "")},
                                    headers={"Referer": f"{self.host}/accounts/login/"}, allow_redirects=False,
                                    verify=False)
        if response.status_code != 302:
            raise RuntimeError(f"login as {username} failed: {response.status_code}")
        self.csrf = self.client.cookies.get("csrftoken", "")


class Reviewer(_Tls):
    """Votes on the item it holds, then asks for the next one, as the review page's keyboard loop does."""

    def on_start(self) -> None:
        super().on_start()
        self.log_in(f"reviewer{next_number() % int(os.environ.get('LOAD_USERS_PER_ROLE', '16'))}")
        self.items: list[int] = []

    @task
    def vote_and_next(self) -> None:
        if self.items:
            item = self.items.pop(0)
            self.client.post(f"/api/review/items/{item}/votes", name="vote", json={"choice": random.randrange(7)},
                             headers={"X-CSRFToken": self.csrf, "Referer": f"{self.host}/review/"}, verify=False)
        response = self.client.get("/api/review/items/next?count=1", name="next", verify=False)
        if response.status_code == 200:
            self.items = [item["id"] for item in response.json()["items"]]


class Researcher(_Tls):
    """Pages through the gallery (100 faces a page, with their heatmap overlays' URLs)."""

    def on_start(self) -> None:
        super().on_start()
        self.log_in(f"researcher{next_number() % int(os.environ.get('LOAD_USERS_PER_ROLE', '16'))}")

    @task
    def gallery_page(self) -> None:
        self.client.get(f"/gallery/?page={random.randint(1, GALLERY_PAGES)}", name="gallery page", verify=False)


class ApiClient(_Tls):
    """Uploads one real photo and waits for its prediction and heatmap (``?wait=30``)."""

    def on_start(self) -> None:
        super().on_start()
        number = next_number() % int(os.environ.get("LOAD_USERS_PER_ROLE", "16"))
        response = self.client.post("/api/auth/token/", name="token", verify=False,
                                    json={"username": f"client{number}", "password": PASSWORD})
        self.client.headers["Authorization"] = f"Token {response.json()['token']}"
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
