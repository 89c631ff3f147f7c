"""The production set end to end in Chromium, through nginx over HTTPS, as its four kinds of users use it: a reviewer
settles an item with the keyboard, an admin watches a scoring run and a training run finish live, a researcher walks
gallery -> face -> evaluation -> confusion cell, and an API client uploads a real photo and reads its heatmap. Media
needs a session (or the client's token) throughout."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from .stack import ADMIN_PASSWORD, USER_PASSWORD

pytestmark = [pytest.mark.deploy, pytest.mark.e2e, pytest.mark.worker]

PHOTOS = Path(__file__).resolve().parents[3] / "shared" / "data" / "photos"


@pytest.fixture(scope="module")
def users(prod_stack):
    for username, role in (("rita", "reviewer"), ("rob", "researcher"), ("carl", "reviewer")):
        prod_stack.create_user(username, role)
    return {"rita": USER_PASSWORD, "rob": USER_PASSWORD, "carl": USER_PASSWORD, "admin": ADMIN_PASSWORD}


@pytest.fixture
def login(browser, prod_stack, users):
    """``login(username, next_url)`` -> a page logged in over HTTPS (the self-signed certificate accepted, as a
    person accepts it once); every page's JavaScript errors fail the test."""
    contexts, errors = [], []

    def open_as(username: str, next_url: str):
        context = browser.new_context(ignore_https_errors=True)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.on("pageerror", lambda error: errors.append(error))
        page.goto(f"{prod_stack.url}/accounts/login/?next={next_url}")
        assert page.url.startswith("https://")
        page.fill("#id_username", username)
        page.fill("#id_password", users[username])
        page.click("button[type=submit]")
        page.wait_for_url(f"**{next_url}**")
        return page

    yield open_as
    for context in contexts:
        context.close()
    assert not errors, f"JavaScript errors on the page: {[str(e) for e in errors]}"


def test_reviewer_settles_an_item_with_the_keyboard(prod_stack, login):
    prod_stack.wait_for("an open item in the review queue (the first start's scoring run)",
                        "SELECT id FROM review_reviewitem WHERE status IN ('open', 'reopened') LIMIT 1")
    page = login("rita", "/review/")
    page.wait_for_selector('#review-app[data-pending="0"]:not([data-item-id=""])')
    item_id = int(page.get_attribute("#review-app", "data-item-id"))
    page.wait_for_function("() => document.getElementById('face').naturalWidth === 48")  # the face, through nginx
    page.keyboard.press("Enter")  # accept the suggestion: one vote settles here (REVIEW_QUORUM=1)
    page.wait_for_function(f"() => document.getElementById('review-app').dataset.itemId !== '{item_id}' && "
                           "document.getElementById('review-app').dataset.pending === '0'")
    status, votes = prod_stack.query(
        "SELECT i.status, count(v.id) FROM review_reviewitem i JOIN review_vote v ON v.item_id = i.id "
        "WHERE i.id = %s GROUP BY i.status", [item_id])[0]
    assert (status, votes) == ("settled", 1)
    assert prod_stack.query("SELECT count(*) FROM review_labelhistory")[0][0] >= 1


def watch(prod_stack, page, selector: str, *, table: str, run_id: int) -> None:
    """Wait until the page shows ``selector``, for as long as the stack's work moves; a run that failed or was
    cancelled fails the test at once, with its error."""
    def shown():
        status, error = prod_stack.query(f"SELECT status, error FROM {table} WHERE id = %s", [run_id])[0]
        if status in {"failed", "cancelled"}:
            raise AssertionError(f"{table} #{run_id} {status}: {error}")
        return page.query_selector(selector)

    prod_stack.wait_until(f"the page showing {selector}", shown)


def test_admin_watches_a_scoring_run_and_a_training_run_finish(prod_stack, login):
    """Each run starts on an idle bulk worker, so that it is the run the page shows; and each is held at its last
    write (the scores, the new model version) until the page has shown it running with its progress: a run on a
    tiny data set takes a second or two, less than the page's 2 s poll, and a fast machine would finish it unseen."""
    page = login("admin", "/review/scoring/")
    page.wait_for_selector("#scoring-form")
    page.select_option("#method", "out_of_fold")
    page.fill("#folds", "2")
    page.fill("#epochs", "3")
    prod_stack.wait_idle()  # the first start's runs, its split job and the overlays computed ahead are done
    with prod_stack.holding("review_labelscore"):
        page.click("#start")
        page.wait_for_function("() => document.getElementById('start-status').textContent.includes('queued')")
        run_id = prod_stack.query("SELECT max(id) FROM review_scoringrun")[0][0]
        card = f'.srun[data-run-id="{run_id}"]'
        # Live progress while it runs (it stops before storing its scores while this block holds them).
        watch(prod_stack, page, f'{card}[data-status="running"] progress:not([value="0"])',
              table="review_scoringrun", run_id=run_id)
    watch(prod_stack, page, f'{card}[data-status="succeeded"]', table="review_scoringrun", run_id=run_id)
    assert "flagged" in page.inner_text(f"{card} table.figures")

    prod_stack.wait_idle()  # the scoring run's follow-up: the overlays of the queue's head, computed ahead
    page.goto(f"{prod_stack.url}/training/")
    page.wait_for_selector("#retrain-form")
    page.select_option("#recipe", "scoring")
    page.fill("#epochs", "3")
    with prod_stack.holding("inference_modelversion"):
        page.click("#retrain")
        page.wait_for_function("() => document.getElementById('retrain-status').textContent.includes('queued')")
        run_id = prod_stack.query("SELECT max(id) FROM training_trainingrun")[0][0]
        card = f'.run[data-run-id="{run_id}"]'
        # Live progress while it runs (it stops before registering its model version while this block holds them).
        watch(prod_stack, page, f'{card}[data-status="running"] progress:not([value="0"])',
              table="training_trainingrun", run_id=run_id)
    watch(prod_stack, page, f'{card}[data-status="succeeded"]', table="training_trainingrun", run_id=run_id)
    assert page.inner_text(f"{card} .epoch") == "3/3 epochs"
    assert len(page.get_attribute(f"{card} svg.curves polyline.loss", "points").split()) == 3


def test_researcher_walks_gallery_face_evaluation_and_a_confusion_cell(prod_stack, login):
    # The gallery shows the active version. The bulk worker predicts PublicTest for it (the first start's split job,
    # or the one a promotion queues) and activates a trained version: once it is idle, nothing changes under the
    # pages below, and every PublicTest face must have the active version's prediction.
    prod_stack.wait_idle()
    assert prod_stack.query(
        "SELECT count(*) FROM faces_faceimage f WHERE f.split = 'PublicTest' AND NOT EXISTS (SELECT 1 FROM "
        "inference_prediction p JOIN inference_modelversion v ON v.id = p.model_version_id "
        "WHERE v.status = 'active' AND p.face_id = f.id)")[0][0] == 0
    page = login("rob", "/gallery/")
    page.wait_for_selector("#gallery-grid .tile")
    page.click("#gallery-grid .tile >> nth=0")
    page.wait_for_selector("#face-detail")
    assert page.locator("#probabilities tr").count() == 7

    page.goto(f"{prod_stack.url}/gallery/")
    page.click("#link-evaluation")
    page.wait_for_selector("#confusion-PublicTest")
    cells = page.locator("#confusion-PublicTest td.cell a").evaluate_all(
        "els => els.map(a => [a.dataset.true, a.dataset.predicted, Number(a.title.split(' ')[0])])")
    true, predicted, count = max(((int(t), int(p), n) for t, p, n in cells), key=lambda c: c[2])
    assert count > 0
    page.click(f'#confusion-PublicTest a[data-true="{true}"][data-predicted="{predicted}"]')
    page.wait_for_selector("#gallery-grid")
    assert page.locator("#gallery-grid .tile").count() == count
    image = page.locator("#gallery-grid .tile img >> nth=0")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())

    # The same image URL without the session: nothing (a 404, so its existence is not revealed).
    src = image.get_attribute("src")
    assert src.startswith("/media/")
    assert requests.get(prod_stack.url + src, verify=False, timeout=30).status_code == 404
    assert page.request.get(prod_stack.url + src).status == 200


@pytest.mark.skipif(not PHOTOS.is_dir(), reason=f"the shared photos are not here ({PHOTOS})")
def test_api_client_uploads_a_real_photo_and_reads_its_heatmap(prod_stack, users):
    api = requests.Session()
    api.verify = False  # per request too: requests lets REQUESTS_CA_BUNDLE override a session's verify
    token = api.post(f"{prod_stack.url}/api/auth/token/", json={"username": "carl", "password": users["carl"]},
                     timeout=30, verify=False)
    assert token.status_code == 200, token.text
    api.headers["Authorization"] = f"Token {token.json()['token']}"
    with open(PHOTOS / "obama.jpg", "rb") as photo:
        response = api.post(f"{prod_stack.url}/api/uploads/?wait=30", files={"images": ("obama.jpg", photo)},
                            timeout=180, verify=False)
    assert response.status_code == 201, response.text
    (upload,) = response.json()["uploads"]
    assert upload["status"] == "done", upload
    assert upload["predicted_label"] in upload["probabilities"]
    heatmap = upload["heatmaps"][0]["url"]
    heatmap = prod_stack.url + heatmap if heatmap.startswith("/") else heatmap
    image = api.get(heatmap, timeout=30, verify=False)
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
    # Without the token, the heatmap is not there for anyone.
    assert requests.get(heatmap, verify=False, timeout=30).status_code == 404
