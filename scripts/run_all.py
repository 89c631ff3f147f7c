"""Run web (gunicorn), three Celery workers (queues ``interactive``, ``bulk`` and ``chores``) and Celery beat; stop
all when one stops. The chores worker runs only beat's small tasks (the sweeper, the periodic checks), so that a
backed-up interactive queue never keeps lost jobs from being taken back.

``make run`` starts it after migrating (local settings); ``make prod`` (``scripts/prod.py``) starts the same processes
with the production settings, plus Redis and nginx, through ``supervise``. Ctrl-C or SIGTERM stops the children and
waits for them. The bulk worker runs at a lower CPU priority (nice 10), so that uploads and heatmaps stay quick while
a split job or a training run is busy on the same cores.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


BULK_NICE = 10


def commands() -> dict[str, list[str]]:
    celery = [PY, "-m", "celery", "-A", "ferplatform"]
    return {
        "web": [PY, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "ferplatform.wsgi:application"],
        "worker-interactive": [*celery, "worker", "-Q", "interactive", "--concurrency", "1", "-n", "interactive@%h",
                               "-l", "info"],
        "worker-bulk": ["nice", "-n", str(BULK_NICE), *celery, "worker", "-Q", "bulk", "--concurrency", "1",
                        "-n", "bulk@%h", "-l", "info"],
        "worker-chores": [*celery, "worker", "-Q", "chores", "--concurrency", "1", "-n", "chores@%h", "-l", "info"],
        # --pidfile= : no pid file, so a crash never leaves one behind that blocks the next start.
        "beat": [*celery, "beat", "-l", "info", "--pidfile=",
                 "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler"],
    }


def worker_env(env: dict[str, str]) -> dict[str, str]:
    """The two workers that run the model share the CPU: each gets half the cores for torch's threads (unless
    OMP_NUM_THREADS is set), so that an interactive prediction is not slowed by threads fighting a training run over
    the same cores. The upload latency benchmark measures what it buys (docs/benchmarks.md)."""
    threads = str(max(1, (os.cpu_count() or 2) // 2))
    return {**env, "OMP_NUM_THREADS": env.get("OMP_NUM_THREADS", threads)}


def start(name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=ROOT, env=worker_env(env) if name.startswith("worker") else env)


def supervise(children: dict[str, subprocess.Popen], *, banner: str) -> int:
    """Wait until SIGINT/SIGTERM or until one child exits, then stop every child (SIGTERM, SIGKILL after 20 s) in
    the reverse order of ``children``; the exit code is the first child's to exit (0 when stopped by a signal)."""
    print(banner, flush=True)
    stopping = False

    def stop(signum, frame) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    code = 0
    while not stopping:
        for name, child in children.items():
            if child.poll() is not None:
                print(f"ferplatform: {name} exited with {child.returncode}; stopping the others", file=sys.stderr)
                code = child.returncode or 1
                stopping = True
                break
        time.sleep(0.5)
    for child in reversed(children.values()):
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + 20
    for child in reversed(children.values()):
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return code


def main() -> int:
    env = {**os.environ}
    env.setdefault("DJANGO_SETTINGS_MODULE", "ferplatform.settings.local")
    env.setdefault("GUNICORN_BIND", f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}")
    env.setdefault("GUNICORN_WORKERS", "2")
    children = {name: start(name, cmd, env) for name, cmd in commands().items()}
    return supervise(children, banner=f"ferplatform: web on http://{env['GUNICORN_BIND']}/ (workers for the "
                                      "interactive, bulk and chores queues, and beat, running); Ctrl-C stops all")


if __name__ == "__main__":
    sys.exit(main())
