"""Units of work whose database row is the truth; the broker only carries a nudge ("row N is ready").

Every kind of job (an upload's prediction chunk, a split job, a scoring run, a training run, a faithfulness run)
is a row with a state, ``attempts``, a last error, ``last_sent_at`` and ``heartbeat_at`` (``apps.core.models.WorkRow``)
and a Celery task that takes the row's id. Delivery is at least once and tasks are idempotent:

- ``work_send`` hands the id to the broker after the surrounding transaction commits. A broker that is down never
  fails the request that committed the row: the row stays queued (``last_sent_at`` unchanged) and is sent again.
- ``work_claim`` is a conditional UPDATE (queued -> running, ``attempts + 1``): of two deliveries of one message only
  one does the work; the other finds the row claimed and returns.
- ``work_heartbeat`` keeps ``heartbeat_at`` fresh from a thread while the task runs.
- ``work_sweep`` (beat, every 30 s in its database schedule) sends queued rows again when their message is not in
  the broker and they have waited longer than ``WORK_RESEND_AFTER`` seconds, and puts running rows whose heartbeat
  stopped (a SIGKILLed or OOM-killed worker) back to queued; after ``max_attempts`` claims the row is ``failed``
  with the reason.

Each app registers its kinds in its ``AppConfig.ready`` with ``work_kind_register``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from django.apps import apps
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.module_loading import import_string

from .broker import BrokerUnreachable, queue_messages

logger = logging.getLogger(__name__)

QUEUE_INTERACTIVE = "interactive"  # uploads, on-demand heatmaps, review overlays, beat's small tasks
QUEUE_BULK = "bulk"  # split jobs, label scoring, training, faithfulness
QUEUES = (QUEUE_INTERACTIVE, QUEUE_BULK)

# One quick retry only: a request must not hang on a broker that is down (the sweeper sends the row again).
PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}


@dataclass(frozen=True)
class WorkKind:
    name: str  # "training_run"
    label: str  # "training runs", for the status page
    model: str  # "training.TrainingRun"
    task: str  # Celery task name; it takes the row's id as its only argument (its queue: CELERY_TASK_ROUTES)
    max_attempts: int = 3
    error_field: str = "error"
    queued: str = "queued"
    running: str = "running"
    failed: str = "failed"
    requeue_fields: Mapping[str, object] = field(default_factory=dict)  # reset when a lost run is put back
    on_failed: str = ""  # dotted path of fn(pk, reason), called after the sweeper gave up on a row

    @property
    def rows(self):
        return apps.get_model(self.model).objects

    @property
    def queue(self) -> str:
        """The queue the route table in the settings sends this task to (one place says where each task runs)."""
        return task_queue(self.task)


_KINDS: dict[str, WorkKind] = {}


def work_kind_register(kind: WorkKind) -> None:
    _KINDS[kind.name] = kind


def work_kinds() -> list[WorkKind]:
    return list(_KINDS.values())


def work_kind(name: str) -> WorkKind:
    return _KINDS[name]


def _celery_app():
    from ferplatform.celery import app

    return app


def _task(name: str):
    """The registered task ``name``. A web process imports only some ``tasks.py`` modules, so the first lookup of
    another one imports them all (Celery's autodiscovery)."""
    app = _celery_app()
    if name not in app.tasks:
        app.loader.import_default_modules()
    return app.tasks[name]


def _eager() -> bool:
    return bool(_celery_app().conf.task_always_eager)


def task_queue(name: str) -> str:
    """The queue the route table in the settings sends task ``name`` to, read at send time."""
    route = settings.CELERY_TASK_ROUTES.get(name) or {}
    return route.get("queue", settings.CELERY_TASK_DEFAULT_QUEUE)


def task_send(name: str, args: tuple, *, countdown: float = 0) -> None:
    """Publish task ``name`` to its queue. Raises what the broker raised; a quick retry only.

    ``ignore_result``: nothing reads these results (the rows say it all), and asking for one makes Celery subscribe
    to the Redis result backend first, which blocks a request for ~20 s while Redis is down.
    """
    options = {"countdown": countdown} if countdown and not _eager() else {}
    _task(name).apply_async(args, queue=task_queue(name), retry=True, retry_policy=PUBLISH_RETRY_POLICY,
                            ignore_result=True, **options)


def task_send_after_commit(name: str, args: tuple) -> None:
    """``task_send`` once the current transaction commits, for tasks that are hints rather than rows (review
    overlays): a broker that is down is logged, never raised into the request."""
    def send() -> None:
        try:
            task_send(name, args)
        except Exception as exc:
            if _eager():
                raise
            logger.warning("%s not sent: %s: %s", name, type(exc).__name__, exc)

    transaction.on_commit(send, robust=not _eager())


def work_send_now(kind: WorkKind | str, pk: int, *, countdown: float = 0) -> bool:
    """Hand row ``pk`` to the broker now; False (logged, row untouched) when the broker refused or is down."""
    kind = work_kind(kind) if isinstance(kind, str) else kind
    try:
        task_send(kind.task, (pk,), countdown=countdown)
    except Exception as exc:
        if _eager():
            raise  # inline execution (tests): the task's own error, not the broker's
        logger.warning("%s %s not sent (it stays queued; the sweeper sends it again): %s: %s",
                       kind.name, pk, type(exc).__name__, exc)
        return False
    try:
        kind.rows.filter(pk=pk).update(last_sent_at=timezone.now())
    except DatabaseError:
        logger.warning("%s %s sent, but last_sent_at could not be recorded", kind.name, pk, exc_info=True)
    return True


def work_send(kind: WorkKind | str, pk: int) -> None:
    """Send row ``pk`` once the current transaction commits (at once outside one). Never raises for the broker."""
    kind = work_kind(kind) if isinstance(kind, str) else kind
    eager = _eager()
    transaction.on_commit(lambda: work_send_now(kind, pk), robust=not eager)


def work_claim(kind: WorkKind | str, pk: int, *, from_statuses: tuple[str, ...] | None = None, **fields) -> bool:
    """queued -> running as one conditional UPDATE (``attempts + 1``, fresh heartbeat, plus ``fields``): True for
    the one delivery that got the row."""
    kind = work_kind(kind) if isinstance(kind, str) else kind
    now = timezone.now()
    return bool(kind.rows.filter(pk=pk, status__in=from_statuses or (kind.queued,)).update(
        status=kind.running, attempts=F("attempts") + 1, heartbeat_at=now, **fields))


@contextmanager
def work_heartbeat(kind: WorkKind | str, pk: int, *, every: float | None = None) -> Iterator[None]:
    """While the block runs, a thread refreshes the row's ``heartbeat_at`` every ``WORK_HEARTBEAT_SECONDS``.

    A process killed outright stops beating, which is how the sweeper tells a lost job from a slow one. Inline
    (eager) execution has no worker to watch and starts no thread.
    """
    kind = work_kind(kind) if isinstance(kind, str) else kind
    every = settings.WORK_HEARTBEAT_SECONDS if every is None else every
    if _eager() or every <= 0:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(every):
                try:
                    kind.rows.filter(pk=pk, status=kind.running).update(heartbeat_at=timezone.now())
                except DatabaseError as exc:  # the database blinked: a fresh connection at the next beat
                    logger.warning("%s %s: heartbeat not recorded: %s", kind.name, pk, exc)
                    connection.close()
        finally:
            connection.close()

    thread = threading.Thread(target=beat, name=f"heartbeat-{kind.name}-{pk}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


def _waiting_ids() -> set[tuple[str, int]] | None:
    """(task, id) of every message waiting in the broker; None when the broker cannot be read."""
    queues = tuple(sorted({*QUEUES, *(kind.queue for kind in work_kinds())}))
    try:
        messages = queue_messages(queues)
    except BrokerUnreachable:
        return None
    return {(m.task, m.args[0]) for m in messages if len(m.args) == 1 and isinstance(m.args[0], int)}


def _connection_recover() -> None:
    """After a database error outside a transaction, drop the broken connection so the next query opens a fresh
    one (Django health-checks connections per request, not inside a task)."""
    if not connection.in_atomic_block and connection.errors_occurred and not connection.is_usable():
        connection.close()


def work_fail(kind: WorkKind | str, pk: int, reason: str, *, from_statuses: tuple[str, ...] | None = None,
              **match) -> bool:
    """Record ``reason`` and mark the row failed (from running, unless ``from_statuses``); then the kind's
    ``on_failed`` hook. True if this call changed the row."""
    kind = work_kind(kind) if isinstance(kind, str) else kind
    _connection_recover()
    changed = kind.rows.filter(pk=pk, status__in=from_statuses or (kind.running,), **match).update(
        status=kind.failed, finished_at=timezone.now(), **{kind.error_field: reason[:5000]})
    if changed and kind.on_failed:
        import_string(kind.on_failed)(pk, reason)
    return bool(changed)


def work_release(kind: WorkKind | str, pk: int, reason: str, *, countdown: float = 0, **match) -> str:
    """A running row whose attempt ended early (transient error, lost worker): back to queued and sent again while
    claims are left (``"queued"``), else failed with the reason (``"failed"``); ``""`` if it was not running."""
    kind = work_kind(kind) if isinstance(kind, str) else kind
    _connection_recover()
    row = kind.rows.filter(pk=pk, status=kind.running, **match).values("attempts").first()
    if row is None:
        return ""
    attempts = row["attempts"]
    if attempts >= kind.max_attempts:
        final = f"gave up after {attempts} attempt(s); last: {reason}"
        return kind.failed if work_fail(kind, pk, final, **match) else ""
    note = f"attempt {attempts} of {kind.max_attempts} ended: {reason}; queued again"
    if not kind.rows.filter(pk=pk, status=kind.running, **match).update(
            status=kind.queued, **{kind.error_field: note[:5000]}, **kind.requeue_fields):
        return ""
    logger.warning("%s %s: %s", kind.name, pk, note)
    transaction.on_commit(lambda: work_send_now(kind, pk, countdown=countdown), robust=not _eager())
    return kind.queued


def work_sweep(*, now=None, kinds: list[WorkKind] | None = None) -> dict[str, dict[str, list]]:
    """Re-send queued rows that wait without a message, put lost running rows back (or fail them after
    ``max_attempts``). Returns, per kind, the ids it re-sent, re-queued and failed."""
    now = now or timezone.now()
    waiting = _waiting_ids()
    return {kind.name: _sweep_kind(kind, now=now, waiting=waiting) for kind in (kinds or work_kinds())}


def _sweep_kind(kind: WorkKind, *, now, waiting: set[tuple[str, int]] | None) -> dict[str, list]:
    dead_cutoff = now - timedelta(seconds=settings.WORK_HEARTBEAT_TIMEOUT)
    resend_cutoff = now - timedelta(seconds=settings.WORK_RESEND_AFTER)
    done: dict[str, list] = {"resent": [], "requeued": [], "failed": []}
    lost = kind.rows.filter(status=kind.running).filter(Q(heartbeat_at__lt=dead_cutoff) | Q(heartbeat_at__isnull=True))
    for row in lost.values("pk", "heartbeat_at"):
        pk, heartbeat = row["pk"], row["heartbeat_at"]
        since = f"{heartbeat:%Y-%m-%d %H:%M:%S} UTC" if heartbeat else "its start"
        reason = (f"the worker stopped sending heartbeats (none since {since}; timeout "
                  f"{settings.WORK_HEARTBEAT_TIMEOUT} s): killed, out of memory or cut off")
        outcome = work_release(kind, pk, reason, heartbeat_at=heartbeat)
        if outcome:
            done["requeued" if outcome == kind.queued else "failed"].append(pk)
    stale = kind.rows.filter(status=kind.queued).filter(
        Q(last_sent_at__lt=resend_cutoff) | Q(last_sent_at__isnull=True, created_at__lt=resend_cutoff))
    for pk in stale.exclude(pk__in=done["requeued"]).values_list("pk", flat=True):
        if waiting is not None and (kind.task, pk) in waiting:
            continue  # its message is still in the queue, behind others: nothing is lost
        if work_send_now(kind, pk):
            done["resent"].append(pk)
    return done


def work_counts() -> list[dict[str, object]]:
    """Per kind of job: its queue and how many rows are queued, running and failed, and the oldest queued row."""
    rows = []
    for kind in work_kinds():
        manager = kind.rows
        oldest = manager.filter(status=kind.queued).order_by("created_at").values_list("created_at", flat=True).first()
        rows.append({
            "kind": kind.name, "label": kind.label, "queue": kind.queue,
            "queued": manager.filter(status=kind.queued).count(),
            "running": manager.filter(status=kind.running).count(),
            "failed": manager.filter(status=kind.failed).count(),
            "oldest_queued_at": oldest,
        })
    return rows
