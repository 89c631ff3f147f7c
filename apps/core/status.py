"""What the status page and ``GET /api/status/`` show, so that an admin can read a stuck pipeline at a glance.

Per queue: the messages waiting in the broker, the workers consuming it, and the age of the oldest job waiting on it
(from the rows of the kinds of job sent there, ``apps.core.work``). Per kind of job: queued, running and failed
rows, the latest failures, and the rows that look lost (no heartbeat, never sent, message gone), each with what the
sweeper will do about them. Also database and broker health, the active model version and the split jobs in
progress. Every probe is bounded by a short timeout and reports failure instead of raising: a broker that is down is
said plainly, and the rows are still read from the database, which is the truth about the work.

Alert levels: ``red``, nothing moves until someone acts (broker down, no worker on a queue with jobs, a worker lost
mid-job); ``amber``, about to be repaired by the sweeper (a message missing, a row never sent, the sweeper late);
``ok``. A job that merely waits its turn behind others on a queue a worker consumes is no alarm, however long it
waits: the queue says what it waits behind.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.db.models import F
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from apps.inference.selectors import inference_job_list, model_version_active
from ferplatform.celery import app as celery_app

from .broker import is_redis, queue_lengths, redis_client
from .work import (
    QUEUES,
    WorkKind,
    WorkStatus,
    task_queues,
    waiting_messages,
    work_counts,
    work_due,
    work_kinds,
    work_lost,
)
from .worker_control import COMMAND

RED, AMBER, OK = "red", "amber", "ok"
LEVELS = (OK, AMBER, RED)  # in rising order
ALERT_CODES = ("database_down", "broker_down", "no_worker", "no_worker_known", "lost_running",
               "never_sent", "message_missing", "waits_for_broker", "sweeper_off", "sweeper_late")
SWEEP_TASK = "core.sweep_work"  # apps/core/tasks.py; beat's database schedule runs it (apps/core/migrations/0001)
BEAT_SYNC_SLACK_S = 4 * 60  # beat writes a task's last_run_at to the database only every 3 min (Scheduler.sync_every)
FAILURES_SHOWN = 3  # latest failed rows per kind
ERROR_CHARS = 300
IDS_SHOWN = 10
RESEND_ROWS_READ = 5000  # rows due for a re-send checked against the broker's waiting messages, per kind


def duration_text(seconds: float) -> str:
    """``"45 s"``, ``"3 min 12 s"``, ``"2 h 5 min"``, ``"3 d 4 h"``."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m} min {s} s"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h} h {m} min"
    d, h = divmod(h, 24)
    return f"{d} d {h} h"


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _worst(levels) -> str:
    return max(levels, key=LEVELS.index, default=OK)


def _alert(level: str, code: str, text: str) -> dict[str, str]:
    return {"level": level, "code": code, "text": text}


def status_queues() -> tuple[str, ...]:
    """The platform's queues, then any other queue a task is sent to (shown, so that a route to a queue no worker
    was started on is seen)."""
    return tuple(dict.fromkeys([*QUEUES, *task_queues().values(), settings.CELERY_TASK_DEFAULT_QUEUE]))


# --- probes --------------------------------------------------------------------------------------------------------

def _timed(probe, *args):
    started = time.monotonic()
    try:
        result = probe(*args)
    except Exception as exc:  # a probe must never break the page
        result = {"status": "down", "error": f"{type(exc).__name__}: {exc}"[:300]}
    result["ms"] = round(1000 * (time.monotonic() - started), 1)
    return result


def _database() -> dict[str, object]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"status": "up", "vendor": connection.vendor}


def _broker(timeout: float) -> dict[str, object]:
    if is_redis():
        redis_client(timeout).ping()
        return {"status": "up", "transport": "redis"}
    folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
    if not folder.is_dir():
        return {"status": "down", "transport": "filesystem", "error": f"{folder} is missing"}
    return {"status": "up", "transport": "filesystem"}


def _workers(timeout: float) -> list[dict[str, object]]:
    replies = celery_app.control.broadcast(COMMAND, reply=True, timeout=timeout)
    workers = []
    for reply in replies or []:
        for hostname, info in reply.items():
            if not isinstance(info, dict) or "error" in info:  # a worker running older code
                info = {"queues": None, "device": None, "error": (info or {}).get("error", "no answer")}
            workers.append({"name": hostname, **info})
    return sorted(workers, key=lambda w: w["name"])


# --- the sweeper -------------------------------------------------------------------------------------------------

def _sweeper(*, now: datetime) -> dict[str, object]:
    """Whether beat runs ``work_sweep``, the one thing that repairs lost jobs: scheduled, enabled, last sent."""
    task = (PeriodicTask.objects.filter(task=SWEEP_TASK).select_related("interval").order_by("-enabled", "pk")
            .first())
    every = task.interval.schedule.run_every.total_seconds() if task and task.interval else None
    last = task.last_run_at if task else None
    ago = None if last is None else duration_text((now - last).total_seconds()) + " ago"
    alerts = []
    if task is None or not task.enabled:
        alerts.append(_alert(RED, "sweeper_off", (
            f"the sweeper ({SWEEP_TASK}) is {'disabled' if task else 'not scheduled'} in beat: lost jobs are neither "
            f"sent again nor taken back. {'Enable' if task else 'Add'} it under Periodic tasks.")))
    elif last is None or (now - last).total_seconds() > (every or 0) + BEAT_SYNC_SLACK_S:
        alerts.append(_alert(AMBER, "sweeper_late", (
            f"beat {'has never sent the sweeper' if last is None else f'last sent the sweeper {ago}'}"
            f"{'' if every is None else f' (due every {duration_text(every)})'}: is celery beat running?")))
    return {
        "scheduled": task is not None, "enabled": bool(task and task.enabled),
        "every_s": every, "last_run_at": last,
        "last_run_ago": ago,
        "admin_url": reverse("admin:django_celery_beat_periodictask_changelist"),
        "level": _worst(a["level"] for a in alerts), "alerts": alerts,
    }


def _sweep_phrase(sweeper: dict) -> str:
    if not sweeper["enabled"]:
        return "once it is enabled again"
    if sweeper["every_s"]:
        return f"on its next pass (every {duration_text(sweeper['every_s'])})"
    return "on its next pass"


# --- jobs by kind --------------------------------------------------------------------------------------------------

def _admin_url(kind: WorkKind, pk: int) -> str | None:
    meta = kind.rows.model._meta
    try:
        return reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[pk])
    except NoReverseMatch:  # not every kind has an admin page
        return None


def _kind_status(kind: WorkKind, counts: dict, *, now: datetime) -> tuple[dict[str, object], list[tuple]]:
    """The kind's figures, and its rows due for a re-send as (id, last_sent_at), to check against the broker."""
    rows = kind.rows
    lost_rows = list(work_lost(kind, now=now).order_by("pk").values_list("pk", "attempts"))
    oldest = rows.filter(status=WorkStatus.QUEUED).order_by("created_at", "pk").values("pk", "created_at").first()
    wait = (now - oldest["created_at"]).total_seconds() if oldest else None
    failures = rows.filter(status=WorkStatus.FAILED).order_by(F("finished_at").desc(nulls_last=True), "-pk").values(
        "pk", "finished_at", "created_at", "error")[:FAILURES_SHOWN]
    running = list(rows.filter(status=WorkStatus.RUNNING).order_by("started_at", "pk").values_list("pk", flat=True)[:1])
    entry = {
        "kind": kind.name, "label": kind.label, "queue": kind.routed_queue, "max_attempts": kind.max_attempts,
        "queued": counts["queued"], "running": counts["running"], "failed": counts["failed"],
        "oldest_queued_at": oldest["created_at"] if oldest else None,
        "oldest_queued_id": oldest["pk"] if oldest else None,
        "oldest_wait_s": None if wait is None else round(wait, 1),
        "oldest_wait": None if wait is None else duration_text(wait),
        "running_id": running[0] if running else None,
        "never_sent": rows.filter(status=WorkStatus.QUEUED, last_sent_at__isnull=True).count(),
        "lost_running": len(lost_rows),
        "lost_running_ids": [pk for pk, _ in lost_rows[:IDS_SHOWN]],
        "lost_running_final": sum(attempts >= kind.max_attempts for _, attempts in lost_rows),
        "latest_failures": [{
            "id": f["pk"], "at": f["finished_at"] or f["created_at"],
            "ago": duration_text((now - (f["finished_at"] or f["created_at"])).total_seconds()) + " ago",
            "error": _truncate(f["error"] or "(no error recorded)"), "admin_url": _admin_url(kind, f["pk"]),
        } for f in failures],
    }
    return entry, list(work_due(kind, now=now).values_list("pk", "last_sent_at")[:RESEND_ROWS_READ])


def _truncate(text: str) -> str:
    return text if len(text) <= ERROR_CHARS else text[:ERROR_CHARS - 1] + "…"


def _ids(ids: list[int]) -> str:
    return ", ".join(f"#{pk}" for pk in ids[:IDS_SHOWN]) + (" …" if len(ids) > IDS_SHOWN else "")


def _kind_alerts(entry: dict, due: list[tuple], *, task: str, waiting: set[tuple[str, int]] | None,
                 sweep: str) -> None:
    """What looks lost in this kind, and what the sweeper will do with it (mirrors ``work_sweep``)."""
    alerts = []
    if entry["lost_running"]:
        n, final = entry["lost_running"], entry["lost_running_final"]
        fate = [f"puts {n - final} back in the queue" if n - final else "",
                f"fails {final} (no attempts left of {entry['max_attempts']})" if final else ""]
        alerts.append(_alert(RED, "lost_running", (
            f"{_count(n, 'running row has', 'running rows have')} had no heartbeat for over "
            f"{settings.WORK_HEARTBEAT_TIMEOUT} s "
            f"({_ids(entry['lost_running_ids'])}): worker killed, out of memory or cut off? The sweeper "
            + " and ".join(filter(None, fate)) + f" {sweep}.")))
    if waiting is not None:
        due = [(pk, sent) for pk, sent in due if (task, pk) not in waiting]
    entry["resend_due"] = len(due)
    entry["resend_due_ids"] = [pk for pk, _ in due[:IDS_SHOWN]]
    entry["message_missing"] = 0 if waiting is None else sum(sent is not None for _, sent in due)
    if due and waiting is None:
        alerts.append(_alert(AMBER, "waits_for_broker", (
            f"{_count(len(due), 'queued row waits', 'queued rows wait')} for the broker: the sweeper sends "
            f"{'it' if len(due) == 1 else 'them'} once it answers.")))
    elif due:
        never = [pk for pk, sent in due if sent is None]
        missing = [pk for pk, sent in due if sent is not None]
        if never:
            alerts.append(_alert(AMBER, "never_sent", (
                f"{_count(len(never), 'queued row', 'queued rows')} never reached the broker ({_ids(never)}; it was "
                f"down when they were queued?): the sweeper sends them {sweep}.")))
        if missing:
            alerts.append(_alert(AMBER, "message_missing", (
                f"{_count(len(missing), 'queued row was', 'queued rows were')} sent over "
                f"{settings.WORK_RESEND_AFTER} s ago and {'its' if len(missing) == 1 else 'their'} message is not in "
                f"the broker ({_ids(missing)}; lost, or held by a busy worker): the sweeper sends "
                f"{'it' if len(missing) == 1 else 'them'} again {sweep}.")))
    entry["alerts"] = alerts
    entry["level"] = _worst(a["level"] for a in alerts)


def _jobs_by_kind(*, now: datetime, broker_up: bool, timeout: float, sweep: str) -> list[dict[str, object]]:
    counts = {row["kind"]: row for row in work_counts()}
    kinds = work_kinds()
    looked = [_kind_status(kind, counts[kind.name], now=now) for kind in kinds]
    entries, dues = [entry for entry, _ in looked], [due for _, due in looked]
    waiting = None
    if broker_up and any(dues):  # read the messages only when a row may need them
        waiting = waiting_messages(kinds, timeout=timeout)
    for kind, entry, due in zip(kinds, entries, dues, strict=True):
        _kind_alerts(entry, due, task=kind.task, waiting=waiting, sweep=sweep)
    return entries


# --- queues --------------------------------------------------------------------------------------------------------

def queue_status(queue: str, *, messages: int | None, workers: list[dict] | None,
                  kinds: list[dict] | None) -> dict[str, object]:
    """``workers`` None: unknown (the broker is down); ``kinds`` None: unknown (the database is down)."""
    mine = [k for k in kinds or [] if k["queue"] == queue]
    waiting = [k for k in mine if k["oldest_queued_at"] is not None]
    oldest = min(waiting, key=lambda k: (k["oldest_queued_at"], k["oldest_queued_id"]), default=None)
    queued = None if kinds is None else sum(k["queued"] for k in mine)
    consumers = [w["name"] for w in workers or [] if queue in (w.get("queues") or [])]
    silent = [w["name"] for w in workers or [] if w.get("queues") is None]  # older workers that do not say
    alerts = []
    if messages is None:
        alerts.append(_alert(RED, "broker_down", "broker down: the messages waiting here are unknown."))
    pending = queued or messages or 0
    if workers is not None and not consumers and pending:
        what = _count(queued, "job waits", "jobs wait") if queued else _count(messages, "message waits",
                                                                                "messages wait")
        if silent:
            alerts.append(_alert(AMBER, "no_worker_known", (
                f"no worker is known to consume this queue ({len(silent)} did not say which queues they consume): "
                f"{what}.")))
        else:
            alerts.append(_alert(RED, "no_worker", f"no worker consumes this queue: {what}."))
    return {
        "queue": queue, "messages": messages,
        "workers": consumers if workers is not None else None,
        "kinds": [k["kind"] for k in mine],
        "queued": queued, "running": None if kinds is None else sum(k["running"] for k in mine),
        "oldest_queued_at": oldest["oldest_queued_at"] if oldest else None,
        "oldest_queued_kind": oldest["kind"] if oldest else None,
        "oldest_queued_id": oldest["oldest_queued_id"] if oldest else None,
        "oldest_wait_s": oldest["oldest_wait_s"] if oldest else None,
        "oldest_wait": oldest["oldest_wait"] if oldest else None,
        "waiting": _waiting_text(mine, consumers) if oldest and workers is not None else None,
        "level": _worst(a["level"] for a in alerts), "alerts": alerts,
    }


def _waiting_text(kinds: list[dict], consumers: list[str]) -> str | None:
    """What the queued jobs of a queue that a worker consumes wait behind: no alarm, however long (a row whose
    message is missing, or a stopped heartbeat, has an alert of its own and is not counted here)."""
    queued = sum(k["queued"] - k.get("resend_due", 0) for k in kinds)
    if not consumers or queued <= 0:
        return None
    running = [k for k in kinds if k["running_id"] is not None]
    behind = (", ".join(f"{k['label']} #{k['running_id']}" for k in running) if running
              else "other work on this queue (a hint task, or a job of its own starting)")
    return f"{queued} {'job waits its' if queued == 1 else 'jobs wait their'} turn behind {behind}."


# --- the whole page ------------------------------------------------------------------------------------------------

def platform_status(*, timeout: float = 1.0) -> dict[str, object]:
    now = timezone.now()
    queues = status_queues()
    broker = _timed(_broker, timeout)
    if broker["status"] == "up":
        lengths = _timed(lambda: {"status": "up", "lengths": queue_lengths(queues, timeout=timeout)})
        workers = _timed(lambda: {"status": "up", "workers": _workers(timeout)})
    else:
        lengths = {"status": "down", "error": "broker is down", "lengths": {}}
        workers = {"status": "down", "error": "broker is down", "workers": []}
    database = _timed(_database)
    version, running, kinds, sweeper = None, [], None, None
    if database["status"] == "up":
        version = model_version_active()
        running = list(inference_job_list().filter(status__in=["queued", "running"])[:10])
        sweeper = _sweeper(now=now)
        kinds = _jobs_by_kind(now=now, broker_up=broker["status"] == "up", timeout=timeout,
                              sweep=_sweep_phrase(sweeper))
    known_workers = workers["workers"] if workers["status"] == "up" else None
    queue_details = [queue_status(q, messages=lengths.get("lengths", {}).get(q), workers=known_workers, kinds=kinds)
                     for q in queues]
    alerts = []
    if database["status"] != "up":
        alerts.append({"where": "database", **_alert(
            RED, "database_down", f"down ({database.get('error', '')}): the jobs are unknown.")})
    if broker["status"] != "up":
        alerts.append({"where": "broker", **_alert(RED, "broker_down", (
            f"down ({broker.get('error', '')}): nothing reaches a worker; new jobs stay queued in the database and "
            "are sent once it answers."))})
    alerts += [{"where": f"queue {q['queue']}", **a} for q in queue_details for a in q["alerts"]
               if a["code"] != "broker_down"]  # said once, above
    alerts += [{"where": "sweeper", **a} for a in (sweeper or {}).get("alerts", [])]
    alerts += [{"where": k["label"], **a} for k in kinds or [] for a in k["alerts"]]
    alerts.sort(key=lambda a: -LEVELS.index(a["level"]))
    return {
        "checked_at": now,
        "level": _worst(a["level"] for a in alerts),
        "alerts": alerts,
        "thresholds": {"resend_after_s": settings.WORK_RESEND_AFTER,
                       "heartbeat_timeout_s": settings.WORK_HEARTBEAT_TIMEOUT},
        "sweeper": sweeper,
        "database": database,
        "broker": broker,
        "queues": lengths.get("lengths", {}),
        "queues_error": lengths.get("error", ""),
        "queue_details": queue_details,
        "jobs_by_kind": kinds or [],
        "workers": workers.get("workers", []),
        "workers_error": workers.get("error", ""),
        "active_model": None if version is None else {
            "id": version.pk, "name": version.name, "arch": version.arch, "metrics": version.metrics,
            "activated_at": version.activated_at.isoformat() if version.activated_at else None,
        },
        "jobs": [{"id": j.pk, "dataset": j.dataset.name, "split": j.split, "methods": j.methods, "status": j.status,
                  "done": j.done, "total": j.total} for j in running],
    }
