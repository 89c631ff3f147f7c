"""``make prod``: the production set on this machine, from the same files docker-compose uses.

In order:
1. the state directory (``FERPLATFORM_VAR_DIR``, default ``var/prod``): media, static files, training and scoring
   work dirs, Redis's append-only file, nginx's files, logs, the TLS certificate and a secret key made at first start;
2. PostgreSQL: ``DATABASE_URL``, by default the local cluster's database ``ferplatform_prod``, which is created when
   missing (the cluster is started when a local one does not answer);
3. Redis with its append-only file (``appendfsync everysec``) under the state directory, unless ``REDIS_URL`` names one;
4. ``migrate``, ``collectstatic`` and ``bootstrap`` with the production settings;
5. gunicorn (``deploy/gunicorn.conf.py``) on loopback, one Celery worker per queue, beat, and Debian's nginx with
   ``deploy/nginx.conf``: TLS with a self-signed certificate made at first start, HTTP redirected to HTTPS.

Ctrl-C or SIGTERM stops them all; when one exits, the others are stopped. Every variable it reads is in
docs/settings.md.

``scripts/prod.py manage ARGS`` runs ``manage.py ARGS`` with the same environment (settings, database, Redis, state
directory, secret key), for the commands an operator runs beside it: ``create_user``, ``backup``, ``restore``, ...
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import run_all

ROOT = run_all.ROOT
PY = run_all.PY
PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")


class StartError(Exception):
    """What stops the start, said in one line."""


def render(template: Path, values: dict[str, str]) -> str:
    """``${NAME}`` replaced from ``values`` (as the nginx image's envsubst does); nginx's own ``$name`` untouched."""
    text = template.read_text()
    missing = sorted({name for name in PLACEHOLDER.findall(text) if name not in values})
    if missing:
        raise StartError(f"{template.name} needs {', '.join(missing)}")
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], text)


def secret_key(var: Path) -> str:
    """``SECRET_KEY`` from the environment, else the one made at first start (``var/secret_key``, mode 600)."""
    if os.environ.get("SECRET_KEY", "").strip():
        return os.environ["SECRET_KEY"].strip()
    path = var / "secret_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_urlsafe(50))
        print(f"ferplatform: made a secret key at first start: {path}", flush=True)
    return path.read_text().strip()


def wait_until(what: str, check, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise StartError(f"{what} did not come up within {seconds:.0f} s")
        time.sleep(0.3)


def postgres_ready(url: str) -> None:
    """The database answers and exists: a local cluster that is down is started (as ``.ci/run`` does), and a missing
    database is created."""
    import psycopg

    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise StartError(f"DATABASE_URL must be a PostgreSQL URL for the production set (got {parts.scheme}://)")
    host, port = parts.hostname or "127.0.0.1", str(parts.port or 5432)
    name = parts.path.lstrip("/")

    def answers() -> bool:
        return subprocess.run(["pg_isready", "-q", "-h", host, "-p", port], check=False).returncode == 0

    if not answers():
        if host not in {"127.0.0.1", "localhost", "::1"} or not Path("/etc/postgresql").is_dir():
            raise StartError(f"PostgreSQL at {host}:{port} does not answer")
        version = sorted(os.listdir("/etc/postgresql"), key=lambda v: [int(x) for x in v.split(".")])[-1]
        print(f"ferplatform: starting PostgreSQL {version}", flush=True)
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], check=True)
        wait_until("PostgreSQL", answers)
    admin_url = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as connection:
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            connection.execute(f'CREATE DATABASE "{name}"')
            print(f"ferplatform: created database {name}", flush=True)


def redis_answers(port: int) -> bool:
    import redis

    try:
        return bool(redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def redis_command(var: Path, port: int) -> list[str]:
    """Redis with its append-only file fsynced every second: queued messages survive a restart (the database rows
    are the truth anyway, and the sweeper re-sends what is lost)."""
    (var / "redis").mkdir(exist_ok=True)
    return [shutil.which("redis-server") or "redis-server", "--bind", "127.0.0.1", "--port", str(port),
            "--dir", str(var / "redis"), "--appendonly", "yes", "--appendfsync", "everysec",
            "--protected-mode", "yes"]


def nginx_user() -> str:
    """Workers run as www-data when nginx starts as root (Debian's user for it); otherwise as whoever runs this."""
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("www-data")
            return "www-data"
        except KeyError:
            return "nobody"
    return pwd.getpwuid(os.geteuid()).pw_name


def reachable_by_nginx_workers(user: str, *paths: str) -> None:
    """nginx's workers (``user``) read static files and media from these directories: every parent must let others
    through (o+x), or nginx answers 403 for every file."""
    if user == pwd.getpwuid(os.geteuid()).pw_name:
        return
    for path in paths:
        for folder in [Path(path), *Path(path).parents]:
            if folder.exists() and not folder.stat().st_mode & 0o001:
                raise StartError(f"nginx's workers run as {user} and cannot enter {folder} (on the way to {path}): "
                                 f"allow it (chmod o+x {folder}) or put FERPLATFORM_VAR_DIR, MEDIA_ROOT and "
                                 "STATIC_ROOT somewhere they can")


def nginx_files(var: Path, env: dict[str, str]) -> Path:
    """The TLS certificate (self-signed at first start) and both rendered configs; ``nginx -t`` checks them."""
    tls, run, logs = var / "tls", var / "nginx", var / "logs"
    run.mkdir(exist_ok=True)
    cert, key = Path(env.get("NGINX_TLS_CERT", tls / "cert.pem")), Path(env.get("NGINX_TLS_KEY", tls / "key.pem"))
    names = env.get("TLS_NAMES", "localhost,127.0.0.1").split(",")
    subprocess.run(["sh", str(ROOT / "deploy" / "selfsigned-cert.sh"), str(cert), str(key), *names], check=True)
    https_port = env["NGINX_HTTPS_PORT"]
    values = {
        "FERPLATFORM_UPSTREAM": env["GUNICORN_BIND"],
        "NGINX_HTTP_PORT": env["NGINX_HTTP_PORT"],
        "NGINX_HTTPS_PORT": https_port,
        "NGINX_HTTPS_PORT_SUFFIX": "" if https_port == "443" else f":{https_port}",
        "NGINX_TLS_CERT": str(cert),
        "NGINX_TLS_KEY": str(key),
        "NGINX_STATIC_ROOT": env["STATIC_ROOT"],
        "NGINX_MEDIA_ROOT": env["MEDIA_ROOT"],
        "NGINX_TRUSTED_PROXIES": " ".join(f"{net} 1;" for net in env.get("NGINX_TRUSTED_PROXIES", "").split(",")
                                          if net.strip()),
        "NGINX_RUN_DIR": str(run),
        "NGINX_LOG_DIR": str(logs),
        "NGINX_USER": nginx_user(),
    }
    reachable_by_nginx_workers(values["NGINX_USER"], env["STATIC_ROOT"], env["MEDIA_ROOT"])
    (run / "ferplatform.conf").write_text(render(ROOT / "deploy" / "nginx.conf", values))
    main_conf = run / "nginx.conf"
    main_conf.write_text(render(ROOT / "deploy" / "nginx-main.conf", values))
    check = subprocess.run(["nginx", "-t", "-q", "-c", str(main_conf)], capture_output=True, text=True, check=False)
    if check.returncode != 0:
        raise StartError(f"nginx refused its configuration:\n{check.stderr.strip()}")
    return main_conf


def environment(var: Path) -> dict[str, str]:
    """The production settings' environment: what the caller set, else this machine's defaults."""
    env = {**os.environ}
    env["DJANGO_SETTINGS_MODULE"] = "ferplatform.settings.production"
    env["FERPLATFORM_VAR_DIR"] = str(var)
    env["SECRET_KEY"] = secret_key(var)
    env.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/ferplatform_prod")
    env.setdefault("REDIS_PORT", "6380")
    env.setdefault("REDIS_URL", f"redis://127.0.0.1:{env['REDIS_PORT']}/0")
    env.setdefault("GUNICORN_BIND", "127.0.0.1:8001")  # loopback: only nginx reaches it
    env.setdefault("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
    env.setdefault("NGINX_HTTPS_PORT", "443")
    env.setdefault("NGINX_HTTP_PORT", "80")
    env.setdefault("MEDIA_X_ACCEL_PREFIX", "/internal-media/")
    for name, sub in (("MEDIA_ROOT", "media"), ("STATIC_ROOT", "static"), ("TRAINING_DIR", "training"),
                      ("REVIEW_SCORING_DIR", "scoring")):
        env.setdefault(name, str(var / sub))
        Path(env[name]).mkdir(parents=True, exist_ok=True)
    return env


def manage(env: dict[str, str], *args: str) -> None:
    result = subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=env, check=False)
    if result.returncode != 0:
        raise StartError(f"manage.py {' '.join(args)} failed with exit code {result.returncode}")


def state_dir() -> Path:
    var = Path(os.environ.get("FERPLATFORM_VAR_DIR", ROOT / "var" / "prod"))
    var = var if var.is_absolute() else ROOT / var
    for sub in ("logs", "backups"):
        (var / sub).mkdir(parents=True, exist_ok=True)
    return var


def main() -> int:
    var = state_dir()
    for tool in ("nginx", "redis-server", "pg_isready", "openssl"):
        if not shutil.which(tool):
            raise StartError(f"{tool} is not installed (make prod installs nginx, redis-server, postgresql-client "
                             "and openssl from Debian's packages)")
    env = environment(var)
    postgres_ready(env["DATABASE_URL"])
    children: dict[str, subprocess.Popen] = {}
    try:
        own_redis = "REDIS_URL" not in os.environ
        if own_redis:
            port = int(env["REDIS_PORT"])
            if redis_answers(port):
                raise StartError(f"something already answers on Redis port {port}: stop it or set REDIS_PORT")
            with open(var / "logs" / "redis.log", "a") as log:  # the child keeps its own copy of the descriptor
                children["redis"] = subprocess.Popen(redis_command(var, port), cwd=ROOT, stdout=log,
                                                     stderr=subprocess.STDOUT)
            wait_until("Redis", lambda: redis_answers(port))
        main_conf = nginx_files(var, env)
        manage(env, "migrate", "--noinput")
        manage(env, "createcachetable")  # the shared cache's table when it is the database (none on Redis)
        manage(env, "collectstatic", "--noinput", "-v", "0")
        manage(env, "bootstrap")
        for name, command in run_all.commands().items():
            children[name] = run_all.start(name, command, env)
        children["nginx"] = subprocess.Popen(["nginx", "-c", str(main_conf), "-g", "daemon off;"], cwd=ROOT, env=env)
    except BaseException:
        for child in reversed(children.values()):
            child.terminate()
            child.wait()
        raise
    port = env["NGINX_HTTPS_PORT"]
    url = f"https://localhost{'' if port == '443' else ':' + port}/"
    return run_all.supervise(children, banner=f"ferplatform (production settings): {url} through nginx; "
                                              f"state under {var}; Ctrl-C stops all")


def manage_beside() -> int:
    """``manage.py`` with the production set's environment; its exit code. The database is created when missing, so
    that ``restore`` can fill a new, empty one."""
    env = environment(state_dir())
    postgres_ready(env["DATABASE_URL"])
    return subprocess.run([PY, "manage.py", *sys.argv[2:]], cwd=ROOT, env=env, check=False).returncode


if __name__ == "__main__":
    try:
        sys.exit(manage_beside() if sys.argv[1:2] == ["manage"] else main())
    except StartError as exc:
        print(f"ferplatform: make prod cannot start: {exc}", file=sys.stderr)
        sys.exit(2)
