"""A shortened ``benchmarks/bench_load.py`` in CI: each scenario for a few seconds against the production set through
nginx over HTTPS. Timings are the benchmark's business (README); here every request must succeed."""

from __future__ import annotations

import pytest

from benchmarks.bench_load import PHOTO, load_users_create, scenario_run

pytestmark = [pytest.mark.deploy]


@pytest.mark.skipif(not PHOTO.exists(), reason=f"the shared photo {PHOTO} is not here")
def test_every_scenario_runs_without_errors(prod_stack, tmp_path):
    prod_stack.wait_for("the first start's review queue", "SELECT id FROM review_reviewitem LIMIT 1", seconds=240)
    load_users_create(prod_stack, 2)
    rows = []
    for name, users in (("reviewers", 2), ("researchers", 2), ("clients", 1)):
        rows += scenario_run(prod_stack, name, users, 8, tmp_path, per_role=2, gallery_pages=1, think=0.0,
                             mode="saturation", login_allowance=4)
    by_name = {(row["scenario"], row["name"]): row for row in rows}
    for key in (("reviewers", "next"), ("researchers", "gallery page"), ("clients", "upload")):
        assert by_name[key]["requests"] > 0, key
    assert [row for row in rows if row["errors"]] == []
