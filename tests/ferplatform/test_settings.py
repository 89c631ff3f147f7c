from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from ferplatform.settings import env

ROOT = Path(__file__).resolve().parents[2]
GOOD_SECRET = "k3#p9Zq!vX2mR7tY@w5LbN8cF1hJ4dS6gA0eU-oI_uWzQ=rT%yE"  # test value, long and varied


def django_run(args: list[str], settings: str, tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    environment.update(
        DJANGO_SETTINGS_MODULE=f"ferplatform.settings.{settings}",
        FERPLATFORM_VAR_DIR=str(tmp_path / "var"),
        DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3",
    )
    environment.update(extra)
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args], env=environment, cwd=ROOT, capture_output=True, text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [("DEBUG", "maybe"), ("DATABASE_URL", "mysql://x/y"), ("REDIS_URL", "localhost:6379"),
     ("CELERY_TASK_TIME_LIMIT", "an hour"), ("FACES_IMPORT_BATCH_SIZE", "0")],
)
def test_malformed_environment_value_stops_the_start(tmp_path, variable, value):
    result = django_run(["check"], "local", tmp_path, **{variable: value})
    assert result.returncode == 2
    assert result.stderr.startswith("ferplatform: cannot start with ferplatform.settings.local: ")
    assert variable in result.stderr and "Traceback" not in result.stderr


def test_production_refuses_to_start_without_secret_key(tmp_path):
    result = django_run(["check"], "production", tmp_path)
    assert result.returncode == 2
    assert "SECRET_KEY must be set" in result.stderr and "Traceback" not in result.stderr


def without_settings_module(tmp_path: Path) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items()
                   if k not in {"SECRET_KEY", "DEBUG", "DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    environment.update(FERPLATFORM_VAR_DIR=str(tmp_path / "var"), DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3")
    return environment


@pytest.mark.parametrize("process", ["manage.py", "gunicorn", "celery worker", "celery beat"])
def test_every_process_defaults_to_production_settings_and_stops_without_a_secret_key(tmp_path, process):
    """Nothing names the settings: manage.py, gunicorn (wsgi.py) and celery (celery.py) take the production ones,
    which refuse to run without SECRET_KEY: one clear line, no traceback, exit code 2 (gunicorn: its worker's)."""
    commands = {
        "manage.py": [sys.executable, "manage.py", "check"],
        "gunicorn": [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "--bind", "127.0.0.1:0",
                     "--workers", "1", "ferplatform.wsgi:application"],
        "celery worker": [sys.executable, "-m", "celery", "-A", "ferplatform", "worker", "--pool", "solo"],
        "celery beat": [sys.executable, "-m", "celery", "-A", "ferplatform", "beat", "--pidfile="],
    }
    result = subprocess.run(commands[process], env=without_settings_module(tmp_path), cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0
    assert ("ferplatform: cannot start with ferplatform.settings.production: SECRET_KEY must be set"
            in result.stderr), result.stderr[-2000:]
    if process != "gunicorn":  # gunicorn's master reports its worker's exit in its own words after our line
        assert result.returncode == 2 and "Traceback" not in result.stderr


def test_local_settings_show_no_debug_page_unless_asked(tmp_path):
    """``make run`` (local settings) once answered ``/media/../ferplatform/settings/base.py`` with Django's debug
    page: settings and code paths for anyone who reaches the port. DEBUG is now off unless DEBUG=1."""
    code = ("import django; django.setup(); from django.conf import settings; from django.test import Client; "
            "r = Client(HTTP_HOST='localhost').get('/media/../ferplatform/settings/base.py'); "
            "print(settings.DEBUG, r.status_code, b'DEBUG = True' in r.content)")
    environment = without_settings_module(tmp_path)
    environment["DJANGO_SETTINGS_MODULE"] = "ferplatform.settings.local"
    result = subprocess.run([sys.executable, "-c", code], env=environment, cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-3:] == ["False", "404", "False"]
    environment["DEBUG"] = "1"  # the same request with the debug page on: the check above can tell them apart
    result = subprocess.run([sys.executable, "-c", code], env=environment, cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.stdout.split()[-3:] == ["True", "404", "True"], result.stderr[-2000:]


def test_production_passes_check_deploy(tmp_path):
    result = django_run(["check", "--deploy", "--fail-level", "WARNING"], "production", tmp_path,
                        SECRET_KEY=GOOD_SECRET, ALLOWED_HOSTS="faces.example.org")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_env_helpers_parse_and_fail_loudly(monkeypatch):
    monkeypatch.setenv("X_BOOL", "yes")
    monkeypatch.setenv("X_INT", "12")
    monkeypatch.setenv("X_LIST", "a, b")
    assert env.env_bool("X_BOOL", False) is True
    assert env.env_int("X_INT", 0) == 12
    assert env.env_list("X_LIST", []) == ["a", "b"]
    assert env.env_int("X_UNSET", 7) == 7
    monkeypatch.setenv("X_LIST", "a,,b")
    with pytest.raises(ImproperlyConfigured, match="X_LIST"):
        env.env_list("X_LIST", [])
    with pytest.raises(ImproperlyConfigured, match="X_REQUIRED is required"):
        env.env_str("X_REQUIRED")


def test_database_urls(tmp_path):
    sqlite = env.env_database("X_DB_UNSET", "sqlite:///var/x.sqlite3", base=tmp_path)
    assert sqlite["ENGINE"].endswith("sqlite3") and sqlite["NAME"] == str(tmp_path / "var" / "x.sqlite3")
    postgres = env.env_database("X_DB_UNSET", "postgres://u:p@db:5433/faces", base=tmp_path)
    assert (postgres["HOST"], postgres["PORT"], postgres["NAME"], postgres["USER"]) == ("db", 5433, "faces", "u")


def test_filesystem_broker_without_redis(tmp_path):
    code = "from django.conf import settings; print(settings.CELERY_BROKER_URL); print(settings.MEDIA_ROOT)"
    result = django_run(["shell", "-c", code], "local", tmp_path, REDIS_URL="")
    assert result.returncode == 0, result.stderr
    broker, media = result.stdout.split()[-2:]
    assert broker == "filesystem://"
    assert media == str(tmp_path / "var" / "media")
    assert (tmp_path / "var" / "broker" / "queue").is_dir()


def test_default_sqlite_database_lives_under_the_var_dir(tmp_path):
    environment = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    environment.update(DJANGO_SETTINGS_MODULE="ferplatform.settings.local", FERPLATFORM_VAR_DIR=str(tmp_path / "v"))
    code = ("import django; django.setup(); from django.conf import settings; "
            "print(settings.DATABASES['default']['NAME'])")
    result = subprocess.run([sys.executable, "-c", code], env=environment, cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "v" / "db.sqlite3")
