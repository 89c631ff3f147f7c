"""gunicorn settings for the web process (``gunicorn -c deploy/gunicorn.conf.py ferplatform.wsgi:application``)."""

from __future__ import annotations

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", str(min(4, multiprocessing.cpu_count() * 2 + 1))))
threads = int(os.environ.get("GUNICORN_THREADS", "2"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
accesslog = "-"
errorlog = "-"
# Only nginx's address may set the scheme with X-Forwarded-Proto (docker-compose names nginx's fixed address).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# gunicorn's control socket ($HOME/.gunicorn/gunicorn.ctl) is one path per user: a second gunicorn on the machine
# (make run beside make prod, or a test's stack) would take it over. Nothing here uses it.
control_socket_disable = True


def on_starting(server) -> None:
    """Load the settings in the master before any worker starts: a missing SECRET_KEY stops gunicorn with one line
    (exit 2) instead of workers that fail and are restarted forever."""
    from ferplatform.startup import settings_or_exit

    settings_or_exit()
