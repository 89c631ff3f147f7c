from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def mount(volume: str | dict) -> tuple[str, str]:
    """(target, source) of a volume in either of docker-compose's output forms (v1: "source:target[:mode]")."""
    if isinstance(volume, dict):
        return volume["target"], volume["source"]
    source, target = volume.split(":")[:2]
    return target, source


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="Debian's docker-compose is not installed")
def test_docker_compose_file_parses():
    environment = {**os.environ, "SECRET_KEY": "x" * 60, "POSTGRES_PASSWORD": "example"}
    result = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config"],
        env=environment, capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    services = config["services"]
    assert set(services) >= {"postgres", "redis", "web", "worker-interactive", "worker-bulk", "beat", "nginx"}

    def command(name: str) -> str:
        value = services[name]["command"]
        return " ".join(value) if isinstance(value, list) else value

    # One worker process per queue, as in `make run`; both may use the GPU.
    assert "-Q interactive " in command("worker-interactive") and "-Q bulk " in command("worker-bulk")
    for name in ("worker-interactive", "worker-bulk"):
        devices = services[name]["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["capabilities"] == ["gpu"]
    # Redis keeps its queue across restarts.
    assert "--appendonly yes" in command("redis") and any("/data" in str(v) for v in services["redis"]["volumes"])
    # Every long-running service says whether it is healthy; the state that must outlive a container is on volumes.
    for name, service in services.items():
        if name != "tls":  # a one-shot that makes the first certificate
            assert "healthcheck" in service, name
    for name in ("web", "worker-interactive", "worker-bulk", "beat"):
        mounts = dict(mount(volume) for volume in services[name]["volumes"])
        assert {mounts["/data/media"], mounts["/data/training"], mounts["/data/scoring"]} == {"media", "training",
                                                                                              "scoring"}
        environment = services[name]["environment"]
        assert (environment["TRAINING_DIR"], environment["REVIEW_SCORING_DIR"]) == ("/data/training", "/data/scoring")
        assert environment["DJANGO_SETTINGS_MODULE"] == "ferplatform.settings.production"
    # nginx: TLS on 443, the repo's config as a template, and the only address the app trusts for X-Forwarded-*.
    nginx = services["nginx"]
    assert {str(port["target"]) if isinstance(port, dict) else str(port).split(":")[-1]
            for port in nginx["ports"]} == {"80", "443"}
    assert any("deploy/nginx.conf" in str(v) and "templates" in str(v) for v in nginx["volumes"])
    address = nginx["networks"]["backend"]["ipv4_address"]
    assert services["web"]["environment"]["TRUSTED_PROXIES"].split(",")[0] == address
