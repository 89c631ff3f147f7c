from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


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
    assert set(services) >= {"postgres", "redis", "web", "worker-gpu", "worker", "beat", "nginx"}
    assert "-Q gpu" in " ".join(services["worker-gpu"]["command"]) if isinstance(
        services["worker-gpu"]["command"], list) else "-Q gpu" in services["worker-gpu"]["command"]
    devices = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
