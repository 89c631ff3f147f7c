"""Schemathesis against a live test server, with every role's token: no server errors, and every response as the
OpenAPI schema declares it (status codes, content types, bodies). Bounded: ``EXAMPLES`` cases per operation.

Besides the generated cases, every operation that takes a body gets the bodies a generator does not make: JSON nested
100,000 deep and JSON past ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (a 4xx in the one error shape, never a 500).

Left out: operations that start long jobs (training, scoring, faithfulness, activation's follow-up work), and the
ones that would end the run itself (the token endpoint's lockout, revoking the fuzzer's own tokens)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

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


# Bodies no generator makes: a RecursionError in the decoder, and a body past the size limit (parsed whole before).
DEEP = b"[" * 100_000
DEEP_OBJECT = b'{"a":' * 5_000 + b"1" + b"}" * 5_000
UUID = "00000000-0000-4000-8000-000000000001"


def _operations_with_a_body(schema: dict) -> list[tuple[str, str, str]]:
    found = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in ("post", "put", "patch") and operation["operationId"] not in EXCLUDED:
                for parameter in operation.get("parameters", []):
                    if parameter["in"] == "path":
                        value = UUID if parameter["schema"].get("format") == "uuid" else "1"
                        path = path.replace("{" + parameter["name"] + "}", value)
                found.append((operation["operationId"], method, path))
    return found


def test_nested_and_oversized_json_bodies_get_a_4xx_from_every_operation(live_server, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    oversized = b'{"name": "' + b"x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1) + b'"}'
    admin = UserFactory(username="fuzz-bodies", roles=[Role.ADMIN])
    session = requests.Session()
    session.headers["Authorization"] = f"Token {api_token_create(user=admin)[1]}"
    operations = _operations_with_a_body(session.get(f"{live_server.url}/api/schema/?format=json", timeout=30).json())
    assert len(operations) >= 10
    bad, refused = [], {"deep": 0, "deep object": 0, "oversized": 0}
    for operation_id, method, path in [*operations, ("auth_token_obtain", "post", "/api/auth/token/")]:
        for name, body in (("deep", DEEP), ("deep object", DEEP_OBJECT), ("oversized", oversized)):
            answer = session.request(method, f"{live_server.url}{path}", data=body, timeout=60,
                                     headers={"Content-Type": "application/json"})
            if answer.status_code >= 500:
                bad.append(f"{operation_id} {name}: {answer.status_code} {answer.text[:200]}")
            elif answer.status_code >= 400:
                body_json = answer.json()
                if not ({"code", "detail"} <= set(body_json)):
                    bad.append(f"{operation_id} {name}: {answer.status_code} not the error shape: {body_json}")
                refused[name] += answer.status_code in (400, 413)
    assert bad == []
    # The token endpoint reads its body before anything else: each kind is refused there at least.
    assert all(refused.values()), refused
