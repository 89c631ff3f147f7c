"""Schemathesis against a live test server, with every role's token: no server errors, and every response as the
OpenAPI schema declares it (status codes, content types, bodies). Bounded: ``EXAMPLES`` cases per operation.

Left out: operations that start long jobs (training, scoring, faithfulness, activation's follow-up work), and the
ones that would end the run itself (the token endpoint's lockout, revoking the fuzzer's own tokens)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from apps.accounts.roles import Role
from apps.accounts.services import api_token_create
from apps.inference.services.registry import model_version_register
from apps.review.models import ReviewItem
from tests.accounts.factories import UserFactory
from tests.faces.factories import FaceImageFactory
from tests.inference.conftest import write_tiny_checkpoint

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))
EXCLUDED = [
    "training_runs_start", "training_runs_retry", "review_scoring_runs_start", "review_scoring_runs_resume",
    "gallery_models_faithfulness_create",
    "models_activate_create", "models_promote", "models_rollback",
    "auth_token_obtain", "auth_tokens_revoke_all", "user_tokens_revoke_all", "auth_token_revoke",
]
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
ROLES = {"reviewer": [Role.REVIEWER], "researcher": [Role.RESEARCHER], "admin": [Role.ADMIN], "plain": []}


def _fuzz(url: str, token: str) -> subprocess.CompletedProcess:
    st = Path(sys.executable).with_name("st")
    command = [str(st), "run", f"{url}/api/schema/", "--header", f"Authorization: Token {token}",
               "--checks", CHECKS, "--max-examples", str(EXAMPLES), "--seed", "1", "--workers", "2",
               "--phases", "examples,coverage,fuzzing", "--generation-database", "none", "--request-timeout", "60",
               "--suppress-health-check", "all", "--no-color",
               *[arg for op in EXCLUDED for arg in ("--exclude-operation-id", op)]]
    return subprocess.run(command, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)


def _summary(output: str) -> dict[str, int]:
    """Operations tested and test cases run, from schemathesis' summary."""
    tested = re.search(r"Tested:\s*(\d+)", output)
    cases = re.search(r"(\d+) generated", output)
    return {"operations": int(tested.group(1)) if tested else 0, "cases": int(cases.group(1)) if cases else 0}


def test_no_server_errors_and_no_schema_violations_for_any_role(live_server, settings, tmp_path):
    settings.UPLOADS_THROTTLE_RATE = None  # the fuzzer is one client sending many uploads
    settings.INFERENCE_REFRESH_ON_ACTIVATE = False
    # ?wait= is bounded by these: the fuzzer tries the bounds, and nothing is gained by holding threads for 30 s.
    settings.UPLOADS_MAX_WAIT_SECONDS = settings.INFERENCE_EXPLAIN_MAX_WAIT_SECONDS = 1
    # An active (tiny) model, so that explanations are really computed rather than refused with 503.
    model_version_register(checkpoint_path=write_tiny_checkpoint(tmp_path / "tiny.pt", seed=5), name="fuzz",
                           activate=True)
    FaceImageFactory.create_batch(3, split="Training")
    ReviewItem.objects.create(face=FaceImageFactory(split="Training"), priority=0.1)
    totals = {"operations": 0, "cases": 0}
    failures = []
    for name, roles in ROLES.items():
        user = UserFactory(username=f"fuzz-{name}", roles=roles)
        result = _fuzz(live_server.url, api_token_create(user=user)[1])
        summary = _summary(result.stdout)
        print(f"schemathesis as {name}: {summary['operations']} operations, {summary['cases']} cases, "
              f"exit {result.returncode}")
        totals = {k: totals[k] + summary[k] for k in totals}
        if result.returncode != 0:
            failures.append(f"--- as {name} (exit {result.returncode}) ---\n{result.stdout[-6000:]}\n"
                            f"{result.stderr[-2000:]}")
    print(f"schemathesis total: {totals['operations']} operation runs, {totals['cases']} cases")
    assert failures == [], "\n".join(failures)
    assert totals["operations"] >= 4 * 30
