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
