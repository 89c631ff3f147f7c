"""docker-compose.yml against the code it starts: each app container's environment loads the production settings and
is read by them, the commands name modules, management commands and queues that exist, every queue a task is sent
to has a worker (the bulk one with the GPU), the services the settings point at exist with matching credentials,
the state that must outlive a container is on volumes (the ones nginx serves from included), and every long-running
service has a healthcheck whose request the service answers.

The file is read through ``docker-compose config`` (anchors merged, variables filled in, as compose itself runs it);
the app's side is read by importing the settings, the Celery app and gunicorn's configuration in a separate Python
process with each container's environment, which records the variables they read."""

from __future__ import annotations

import ast
import ipaddress
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SECRET_KEY = "compose-test-" + "x" * 50
POSTGRES_PASSWORD = "compose-test-password"
PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")
# Tasks that run the model (torch): the workers of their queues need the GPU. The Celery app must register each
# (test_every_command_names_code_that_exists), so a renamed task fails here instead of slipping past.
MODEL_TASKS = ("training.run", "review.score_labels", "inference.predict_split", "gallery.faithfulness",
               "inference.predict_chunk", "inference.explain", "faces.near_duplicates", "datamap.make")

pytestmark = pytest.mark.skipif(shutil.which("docker-compose") is None,
                                reason="Debian's docker-compose is not installed (make test installs it)")

# Runs in a separate interpreter, in the repository, with one container's environment (and nothing of this one's):
# records every environment variable read while the production settings, the Celery app, the WSGI application and
# gunicorn's configuration load, asks the app what the web healthcheck asks it, and reports what the checks below
# need. Paths of the container (/data/..., /app/...) do not exist here: creating directories is skipped.
PROBE = r"""
import json, os, pathlib, runpy, sys

reads = set()


class Recording(dict):
    def __getitem__(self, key):
        reads.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        reads.add(key)
        return super().get(key, default)

    def __contains__(self, key):
        reads.add(key)
        return super().__contains__(key)

    def setdefault(self, key, default=None):
        reads.add(key)
        return super().setdefault(key, default)


os.environ = Recording(os.environ)
pathlib.Path.mkdir = lambda self, *args, **kwargs: None
spec = json.loads(sys.argv[1])

from celery.app.utils import find_app  # noqa: E402

celery_app = find_app(spec["celery_app"])  # as `celery -A NAME` finds it; loads the settings (settings_or_exit)
celery_app.loader.import_default_modules()
from django.conf import settings  # noqa: E402

from apps.core.work import task_queues  # noqa: E402
from django.core.management import get_commands  # noqa: E402
from kombu.utils.imports import symbol_by_name  # noqa: E402

module, _, attribute = spec["wsgi"].partition(":")
wsgi = getattr(__import__(module, fromlist=[attribute]), attribute)
gunicorn = runpy.run_path(spec["gunicorn_conf"])

from django.test import Client, override_settings  # noqa: E402

health = spec["health"]
# The image's build step collects the static files into STATIC_ROOT with their manifest; that is not here, so pages
# name static files without their hashes. Nothing else of the settings changes.
plain = {**settings.STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
with override_settings(STORAGES=plain):
    response = Client().get(health["path"], headers=health["headers"], REMOTE_ADDR=health["remote_addr"])
symbol_by_name(spec["beat_scheduler"])  # as beat imports its --scheduler
database = settings.DATABASES["default"]
print(json.dumps({
    "reads": sorted(reads),
    "celery_app": type(celery_app).__module__ + "." + type(celery_app).__name__,
    "tasks": sorted(celery_app.tasks),
    "wsgi_callable": callable(wsgi),
    "commands": sorted(get_commands()),
    "queues": [queue.name for queue in settings.CELERY_TASK_QUEUES],
    "routes": task_queues(),  # where each task is sent: its own declaration, or CELERY_TASK_ROUTES
    "default_queue": settings.CELERY_TASK_DEFAULT_QUEUE,
    "beat_scheduler": settings.CELERY_BEAT_SCHEDULER,
    "database": {key: str(database.get(key) or "") for key in ("ENGINE", "HOST", "PORT", "NAME", "USER", "PASSWORD")},
    "broker": settings.CELERY_BROKER_URL,
    "trusted_proxies": [str(network) for network in settings.TRUSTED_PROXIES],
    "directories": {"MEDIA_ROOT": str(settings.MEDIA_ROOT), "STATIC_ROOT": str(settings.STATIC_ROOT),
                    "TRAINING_DIR": str(settings.TRAINING_DIR), "REVIEW_SCORING_DIR": str(settings.REVIEW_SCORING_DIR),
                    "backups": str(pathlib.Path(settings.VAR_DIR) / "backups")},
    "gunicorn": {"bind": gunicorn["bind"], "forwarded_allow_ips": gunicorn["forwarded_allow_ips"]},
    "health_status": response.status_code,
}))
"""


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> dict:
    """The file as compose runs it, with the two variables it requires and nothing of this machine's environment
    or of an .env file beside it (the defaults it gives the others are what is checked)."""
    no_env_file = tmp_path_factory.mktemp("compose") / "empty.env"
    no_env_file.write_text("")
    environment = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/"), "SECRET_KEY": SECRET_KEY,
                   "POSTGRES_PASSWORD": POSTGRES_PASSWORD}
    result = subprocess.run(["docker-compose", "--env-file", str(no_env_file), "-f", str(ROOT / "docker-compose.yml"),
                             "config"], env=environment, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


@pytest.fixture(scope="module")
def services(config) -> dict[str, dict]:
    return config["services"]


def command(service: dict) -> list[str]:
    value = service.get("command") or []
    return list(value) if isinstance(value, list) else shlex.split(value)


def shell_steps(service: dict) -> list[list[str]]:
    """The commands a service runs: its command, or each ``&&`` step of an ``sh -c`` one."""
    argv = command(service)
    if argv[:2] == ["sh", "-c"]:
        return [shlex.split(step) for step in argv[2].split("&&")]
    return [argv]


def option(argv: list[str], *names: str) -> str | None:
    """The value of ``-x VALUE`` / ``--long VALUE`` / ``--long=VALUE`` in ``argv``."""
    for i, arg in enumerate(argv):
        if arg in names and i + 1 < len(argv):
            return argv[i + 1]
        for name in names:
            if arg.startswith(f"{name}="):
                return arg.split("=", 1)[1]
    return None


def celery_argv(service: dict) -> list[str] | None:
    """A Celery command's arguments from ``celery`` on (after ``nice -n N`` or other wrappers)."""
    argv = command(service)
    return argv[argv.index("celery"):] if "celery" in argv else None


def app_services(services: dict[str, dict]) -> dict[str, dict]:
    """The long-running containers of the image built from this repository."""
    return {name: service for name, service in services.items() if "build" in service}


def workers(services: dict[str, dict]) -> dict[str, list[str]]:
    """Celery worker services and the queues each consumes (``-Q``)."""
    found = {}
    for name, service in app_services(services).items():
        argv = celery_argv(service)
        if argv and "worker" in argv:
            found[name] = option(argv, "-Q", "--queues").split(",")
    return found


def mounts(service: dict) -> dict[str, str]:
    """Container path -> source (a named volume, or a host path) of every volume, in either output form of
    docker-compose (v1 writes "source:target[:mode]")."""
    found = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            found[volume["target"]] = str(volume["source"])
        else:
            source, target = volume.split(":")[:2]
            found[target] = source
    return found


def volume_at(service: dict, path: str, named: set[str]) -> str | None:
    """The named volume that holds ``path`` in ``service`` (the deepest mount above it), or None."""
    best = None
    for target, source in mounts(service).items():
        if PurePosixPath(path).is_relative_to(target) and (best is None or len(target) > len(best[0])):
            best = (target, source)
    return best[1] if best and best[1] in named else None


def healthcheck_request(service: dict) -> dict:
    """The URL and headers of a ``python -c "...urlopen(u.Request(URL, headers={...}))"`` healthcheck."""
    test = service["healthcheck"]["test"]
    code = test[test.index("-c") + 1]
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "Request":
            headers = next((ast.literal_eval(k.value) for k in node.keywords if k.arg == "headers"), {})
            return {"url": ast.literal_eval(node.args[0]), "headers": headers}
    raise AssertionError(f"no urllib request in the healthcheck: {code}")


@pytest.fixture(scope="module")
def probes(services) -> dict[str, dict]:
    """What each app container's code reads and resolves with that container's environment, by service name."""
    web = services["web"]
    gunicorn = next(step for step in shell_steps(web) if step[0] == "gunicorn")
    health = healthcheck_request(web)
    url = urlsplit(health["url"])
    beat = next(celery_argv(s) for s in app_services(services).values() if "beat" in (celery_argv(s) or []))
    celery_apps = {option(celery_argv(s), "-A", "--app") for s in app_services(services).values() if celery_argv(s)}
    assert len(celery_apps) == 1, f"workers and beat run different Celery apps: {celery_apps}"
    results, cached = {}, {}
    for name, service in app_services(services).items():
        environment = {key: str(value) for key, value in service.get("environment", {}).items()}
        key = json.dumps(environment, sort_keys=True)
        if key not in cached:
            spec = {"celery_app": next(iter(celery_apps)),
                    "wsgi": gunicorn[-1], "gunicorn_conf": option(gunicorn, "-c", "--config"),
                    "beat_scheduler": option(beat, "--scheduler", "-S"),
                    "health": {"path": url.path, "headers": health["headers"], "remote_addr": url.hostname}}
            result = subprocess.run([sys.executable, "-c", PROBE, json.dumps(spec)], cwd=ROOT, capture_output=True,
                                    text=True, timeout=300, env={"PATH": os.environ["PATH"], **environment})
            assert result.returncode == 0, f"{name}'s environment:\n{result.stderr[-5000:]}"
            cached[key] = json.loads(result.stdout.strip().splitlines()[-1])
        results[name] = cached[key]
    return results


def test_every_variable_an_app_container_gets_is_read_by_the_code_it_runs(services, probes):
    for name, service in app_services(services).items():
        unread = sorted(set(service.get("environment", {})) - set(probes[name]["reads"]))
        assert unread == [], f"{name} passes variables that nothing reads: {unread}"


def test_the_settings_point_at_services_that_exist_with_matching_credentials(services, probes):
    for name, probe in probes.items():
        database = probe["database"]
        assert database["ENGINE"].endswith("postgresql"), name
        postgres = services[database["HOST"]]  # a service of this file, reached by its name on the network
        environment = postgres["environment"]
        assert (database["USER"], database["PASSWORD"], database["NAME"]) == (
            environment["POSTGRES_USER"], environment["POSTGRES_PASSWORD"], environment["POSTGRES_DB"]), name
        assert database["PORT"] in {"", "5432"}, name  # the postgres image listens on 5432
        broker = urlsplit(probe["broker"])
        assert broker.scheme == "redis" and (broker.port or 6379) == 6379, name
        assert command(services[broker.hostname])[0] == "redis-server", name


def test_every_command_names_code_that_exists(services, probes):
    web = services["web"]
    steps = shell_steps(web)
    probe = probes["web"]
    for step in steps:
        if step[:2] == ["python", "manage.py"]:
            assert step[2] in probe["commands"], f"web runs manage.py {step[2]}, which is no command"
    gunicorn = next(step for step in steps if step[0] == "gunicorn")
    assert (ROOT / option(gunicorn, "-c", "--config")).is_file()
    assert probe["wsgi_callable"], gunicorn[-1]
    # Migrations run before the first request is served.
    assert [step[2] for step in steps if step[:2] == ["python", "manage.py"]][0] == "migrate"
    assert [step[0] for step in steps][-1] == "gunicorn"
    for name in app_services(services):
        argv = celery_argv(services[name])
        if argv:
            assert probes[name]["celery_app"] == "celery.app.base.Celery", name
            if "beat" in argv:
                # beat reads its schedule where the settings (and the migrations of django_celery_beat) keep it
                assert option(argv, "--scheduler", "-S") == probes[name]["beat_scheduler"], name
    for task in MODEL_TASKS:
        assert task in probe["tasks"], f"{task} is not a task of the Celery app"


def test_every_queue_a_task_is_sent_to_has_a_worker_and_the_model_runs_on_the_gpu(services, probes):
    probe = probes["web"]
    consumed: dict[str, list[str]] = {}
    for name, queues in workers(services).items():
        for queue in queues:
            assert queue in probe["queues"], f"{name} consumes {queue}, which the settings do not declare"
            consumed.setdefault(queue, []).append(name)
    routed = set(probe["routes"].values()) | {probe["default_queue"]}
    assert routed <= set(consumed), f"queues no worker consumes: {sorted(routed - set(consumed))}"
    for task in MODEL_TASKS:
        for name in consumed[probe["routes"][task]]:
            devices = services[name].get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])
            assert any("gpu" in device.get("capabilities", []) for device in devices), (
                f"{task} runs on {name}, which has no GPU reservation")
    # One task at a time on the bulk queue: training, scoring and split jobs must not share a machine's GPU and
    # cores with one another (the training run itself is one at a time in the database too).
    for name in consumed[probe["routes"]["training.run"]]:
        assert option(celery_argv(services[name]), "--concurrency", "-c") == "1", name


def test_state_that_must_outlive_a_container_is_on_volumes(config, services, probes):
    named = set(config.get("volumes") or {})
    for name, probe in probes.items():
        for setting, path in probe["directories"].items():
            assert volume_at(services[name], path, named), f"{name}: {setting} ({path}) is not on a volume"
    # Media and static files: nginx serves the same volumes the app writes (collectstatic's in the image, first).
    nginx = services["nginx"]
    environment = nginx["environment"]
    web = probes["web"]["directories"]
    for root, served in (("MEDIA_ROOT", "NGINX_MEDIA_ROOT"), ("STATIC_ROOT", "NGINX_STATIC_ROOT")):
        assert volume_at(nginx, environment[served], named) == volume_at(services["web"], web[root], named), root
    # Redis's queue and PostgreSQL's data survive a restart: Redis with its append-only file in its data dir.
    redis_argv = command(services["redis"])
    assert option(redis_argv, "--appendonly") == "yes"
    assert volume_at(services["redis"], "/data", named)  # the redis image's working (and data) directory
    assert volume_at(services["postgres"], "/var/lib/postgresql/data", named)  # the postgres image's PGDATA


def test_nginx_is_wired_to_the_web_container_and_is_the_only_trusted_proxy(config, services, probes):
    nginx = services["nginx"]
    environment = {key: str(value) for key, value in nginx["environment"].items()}
    # Every placeholder of deploy/nginx.conf is filled in by the image's template step, and nothing else is passed.
    assert any(target.startswith("/etc/nginx/templates/") and target.endswith(".template") and
               Path(source).resolve() == ROOT / "deploy" / "nginx.conf" for target, source in mounts(nginx).items())
    placeholders = set(PLACEHOLDER.findall((ROOT / "deploy" / "nginx.conf").read_text()))
    assert placeholders == set(environment)
    # Upstream: the web service, on the port gunicorn binds.
    host, port = environment["FERPLATFORM_UPSTREAM"].rsplit(":", 1)
    assert host in services and port == probes[host]["gunicorn"]["bind"].rsplit(":", 1)[1]
    assert port in {str(p) for p in services[host].get("expose", [])}
    # nginx publishes the ports it listens on.
    published = {str(p["target"]) if isinstance(p, dict) else str(p).split(":")[-1] for p in nginx["ports"]}
    assert published == {environment["NGINX_HTTP_PORT"], environment["NGINX_HTTPS_PORT"]}
    # Its fixed address is in the network's subnet, and it is the one proxy the app and gunicorn trust from afar.
    address = ipaddress.ip_address(nginx["networks"]["backend"]["ipv4_address"])
    subnets = [ipaddress.ip_network(c["subnet"]) for c in config["networks"]["backend"]["ipam"]["config"]]
    assert any(address in subnet for subnet in subnets)
    for name, probe in probes.items():
        trusted = [ipaddress.ip_network(n) for n in probe["trusted_proxies"]]
        assert any(address in network for network in trusted), name
        assert all(network.num_addresses == 1 and (network[0] == address or network[0].is_loopback)
                   for network in trusted), f"{name} trusts more than nginx (and the container's own healthcheck)"
        assert probe["gunicorn"]["forwarded_allow_ips"].split(",") == [str(address)], name
    # The TLS certificate nginx reads is the one the one-shot makes, on the volume they share.
    tls = services["tls"]
    named = set(config.get("volumes") or {})
    cert, key = command(tls)[2:4]
    assert nginx["depends_on"]["tls"]["condition"] == "service_completed_successfully"
    for made, read in ((cert, environment["NGINX_TLS_CERT"]), (key, environment["NGINX_TLS_KEY"])):
        volume = volume_at(tls, made, named)
        assert volume and volume == volume_at(nginx, read, named)
        made_in = next(t for t, s in mounts(tls).items() if s == volume)
        read_in = next(t for t, s in mounts(nginx).items() if s == volume)
        assert PurePosixPath(made).relative_to(made_in) == PurePosixPath(read).relative_to(read_in)


def test_every_long_running_service_has_a_healthcheck_that_asks_it(services, probes):
    for name, service in services.items():
        if service.get("restart", "no") != "no":
            assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        for other, dependency in (service.get("depends_on") or {}).items():
            if dependency.get("condition") == "service_healthy":
                assert services[other].get("healthcheck"), f"{name} waits for {other}'s health, which it has not"
    # web: the healthcheck's request reaches gunicorn's port and the app answers it 200 with the container's settings
    # (path, Host, X-Forwarded-Proto from loopback: no redirect to https, no DisallowedHost).
    url = urlsplit(healthcheck_request(services["web"])["url"])
    assert str(url.port) == probes["web"]["gunicorn"]["bind"].rsplit(":", 1)[1]
    assert probes["web"]["health_status"] == 200
    # workers: each pings itself by the node name it runs under.
    for name in workers(services):
        service = services[name]
        node = option(celery_argv(service), "-n", "--hostname").replace("%h", "$HOSTNAME")
        check = " ".join(service["healthcheck"]["test"]).replace("$$", "$")
        assert option(shlex.split(check.split("CMD-SHELL", 1)[-1]), "-d", "--destination") == node, name
    # nginx: asks its own HTTPS port.
    nginx = services["nginx"]
    url = next(urlsplit(arg) for arg in nginx["healthcheck"]["test"] if arg.startswith("https://"))
    assert str(url.port or 443) == str(nginx["environment"]["NGINX_HTTPS_PORT"])
