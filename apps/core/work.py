"""Units of work whose database row is the truth; the broker only carries a nudge ("row N is ready").

Every kind of job (an upload's prediction chunk, a split job, a scoring run, a training run, a faithfulness run) is a
``WorkRow`` (``apps.core.models``: one status vocabulary, error, times, attempts, ``last_sent_at``, ``heartbeat_at``,
progress, a cancel request) and one ``WorkKind``, declared once next to the service that does the work, with its
Celery task's name, its queue and its hooks as real references. Delivery is at least once and the runner makes every
kind idempotent the same way:

- ``work_send`` hands the id to the broker after the surrounding transaction commits. A broker that is down never
  fails the request that committed the row: the row stays queued (``last_sent_at`` unchanged) and is sent again.
- ``work_run`` (the body of every job's task, one line in each ``tasks.py``) claims the row with a conditional UPDATE
  (queued -> running, ``attempts + 1``: of two deliveries of one message only one does the work), keeps
  ``heartbeat_at`` fresh from a thread, hands the kind's ``work`` function a ``WorkProgress`` (progress events, and
  cancellation between steps), then records the outcome: succeeded; cancelled; back to queued on a transient error
  while attempts are left (``work_release``); else failed with the reason.
- ``work_sweep`` (beat, every 30 s in its database schedule) sends queued rows again when their message is not in
  the broker and they have waited longer than ``WORK_RESEND_AFTER`` seconds, and puts running rows whose heartbeat
  stopped (a SIGKILLed or OOM-killed worker) back to queued; after ``max_attempts`` claims the row is failed with
  the reason.

Services never import a tasks module: a task is looked up by its name in the Celery app when it is sent.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from .broker import BrokerUnreachable, queue_messages
from .errors import Conflict, NotFound
from .models import WorkRow, WorkStatus

logger = logging.getLogger(__name__)

QUEUE_INTERACTIVE = "interactive"  # uploads, on-demand heatmaps, review overlays
QUEUE_BULK = "bulk"  # split jobs, label scoring, training, faithfulness
# The platform's own small tasks (beat's: the sweeper, the periodic checks), on a worker that no user work reaches, so
# that a backed-up interactive queue never keeps lost jobs from being taken back.
QUEUE_CHORES = "chores"
QUEUES = (QUEUE_INTERACTIVE, QUEUE_BULK, QUEUE_CHORES)

# One quick retry only: a request must not hang on a broker that is down (the sweeper sends the row again).
PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
CANCELLED_BY_ADMIN = "cancelled by an admin"


class WorkCancelled(Exception):  # noqa: N818 - a signal, not an error
    """An admin asked to cancel the job; raised by ``WorkProgress`` between steps of the work."""


class WorkAborted(Exception):  # noqa: N818
    """The row is no longer this worker's (the sweeper took it back, or it failed elsewhere)."""


class WorkStateError(Conflict):
    """The job is not in a state that allows this (cancel a finished job, resume a running one)."""

    code = "work_state"


@dataclass(frozen=True)
class WorkKind:
    """One kind of job: its row model, its task, its queue and the service that does the work.

    ``work(row, progress, **options)`` does the job for a claimed row; it may record success itself in the transaction
    that stores its results (the runner then leaves the row as it is). ``progress`` is ``progress_class(kind, row,
    echo)``. Hooks: ``on_failed(pk, reason)`` after the row was failed (by the runner or by the sweeper giving up),
    ``on_succeeded(row)`` and ``on_cancelled(row)``; ``describe(exc)`` words a failure (None: type and message);
    ``claim_conflict(pk)`` words the reason when the database refuses the claim (a unique constraint)."""

    name: str  # "training_run"
    label: str  # "training runs", for the status page
    model: type[WorkRow]
    task: str  # the Celery task's name; it takes the row's id as its only argument
    queue: str  # the queue it is sent to (CELERY_TASK_ROUTES may send it elsewhere: tests, a dedicated worker)
    work: Callable[..., None]
    max_attempts: int = 3
    retry_countdown: float = 5.0  # s before a row released after a transient error is sent again
    transient: tuple[type[BaseException], ...] = (OperationalError, InterfaceError)
    progress_class: type[WorkProgress] | None = None
    describe: Callable[[BaseException], str | None] | None = None
    claim_conflict: Callable[[int], str] | None = None
    on_failed: Callable[[int, str], None] | None = None
    on_succeeded: Callable[[WorkRow], None] | None = None
    on_cancelled: Callable[[WorkRow], None] | None = None

    @property
    def rows(self):
        return self.model.objects

    @property
    def noun(self) -> str:
        return self.model._meta.verbose_name

    @property
    def routed_queue(self) -> str:
        """The queue it goes to now: the route table's override, else its own."""
        return task_queue(self.task, default=self.queue)


_KINDS: dict[str, WorkKind] = {}


def work_kinds_register(*kinds: WorkKind) -> None:
    """Called from each app's ``AppConfig.ready`` with the kinds its services declare."""
    for kind in kinds:
        _KINDS[kind.name] = kind


def work_kinds() -> list[WorkKind]:
    return list(_KINDS.values())


def work_kind(name: str) -> WorkKind:
    return _KINDS[name]


def _kind(kind: WorkKind | str) -> WorkKind:
    return work_kind(kind) if isinstance(kind, str) else kind


# --- sending -------------------------------------------------------------------------------------------------------

def _celery_app():
    from ferplatform.celery import app

    return app


_IMPORT_LOCK = threading.RLock()


def _task(name: str):
    """The registered task ``name``. A process that has not imported every ``tasks.py`` module imports them all at
    the first lookup of a missing one (Celery's autodiscovery), one thread at a time: a second request thread looking
    while the first imports would find the task not registered yet."""
    app = _celery_app()
    if name not in app.tasks:
        with _IMPORT_LOCK:
            if name not in app.tasks:
                app.loader.import_default_modules()
    return app.tasks[name]


def tasks_eager() -> bool:
    """Tasks run inline, in the sending process (some tests)."""
    return bool(_celery_app().conf.task_always_eager)


_eager = tasks_eager


_TASK_QUEUES: dict[str, str] = {}  # task name -> the queue it declares (``platform_task``)


def platform_task(name: str, *, queue: str, **options):
    """Declare a Celery task and its queue in one place (Celery's own ``queue`` task attribute is deprecated)."""
    from celery import shared_task

    def declare(fn):
        _TASK_QUEUES[name] = queue
        return shared_task(name=name, **options)(fn)

    return declare


def task_queue(name: str, *, default: str | None = None) -> str:
    """The queue task ``name`` is sent to, read at send time: ``CELERY_TASK_ROUTES`` (overrides only), else the queue
    the task declares, else the default queue."""
    route = settings.CELERY_TASK_ROUTES.get(name) or {}
    if route.get("queue"):
        return route["queue"]
    if default:
        return default
    if name not in _TASK_QUEUES:
        _task(name)  # imports the tasks modules, which declare their queues
    return _TASK_QUEUES.get(name) or settings.CELERY_TASK_DEFAULT_QUEUE


def task_queues() -> dict[str, str]:
    """Every task of the platform and the queue it is sent to now."""
    app = _celery_app()
    with _IMPORT_LOCK:
        app.loader.import_default_modules()
    return {name: task_queue(name) for name in sorted(app.tasks) if not name.startswith("celery.")}


def task_send(name: str, args: tuple, *, countdown: float = 0, queue: str | None = None) -> None:
    """Publish task ``name`` to its queue. Raises what the broker raised; a quick retry only.

    ``ignore_result``: nothing reads these results (the rows say it all), and asking for one makes Celery subscribe
    to the Redis result backend first, which blocks a request for ~20 s while Redis is down.
    """
    options = {"countdown": countdown} if countdown and not _eager() else {}
    _task(name).apply_async(args, queue=queue or task_queue(name), retry=True, retry_policy=PUBLISH_RETRY_POLICY,
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
    kind = _kind(kind)
    try:
        task_send(kind.task, (pk,), countdown=countdown, queue=kind.routed_queue)
    except Exception as exc:
        if _eager():
            raise  # inline execution (tests): an error of the task itself (a job's failure is on its row)
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
    kind = _kind(kind)
    transaction.on_commit(lambda: work_send_now(kind, pk), robust=not _eager())


# --- the runner ----------------------------------------------------------------------------------------------------

def _plain(value):
    if isinstance(value, np.floating):
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):  # NaN and infinities are not JSON
        return None
    if isinstance(value, np.integer):
        return int(value)
    return value


def plain_event(event: dict) -> dict:
    """The JSON-safe scalars of a progress event (numpy numbers as Python ones)."""
    return {k: _plain(v) for k, v in event.items() if isinstance(v, (int, float, str, bool, np.number))}


class WorkProgress:
    """The progress-and-cancel helper every job's work gets: ``record`` writes the latest event (and any other
    fields) to the running row at most every ``every`` seconds unless forced, refreshes the heartbeat, and raises
    ``WorkCancelled`` when an admin asked to cancel, ``WorkAborted`` when the row is no longer this worker's.

    Called with an event (``progress(event)``) it is the ``progress`` callback ``ml`` takes; kinds with more to keep
    (a history of epochs, a log) subclass it."""

    every = 2.0

    def __init__(self, kind: WorkKind, row: WorkRow, echo: Callable[[dict], None] | None = None) -> None:
        self.kind, self.pk, self.echo = kind, row.pk, echo
        self.last = 0.0

    def __call__(self, event: dict, *, force: bool = False, **fields) -> None:
        self.record(plain_event(event), force=force, **fields)  # first: the row holds what is done, whatever echo does
        if self.echo:
            self.echo(event)

    def record(self, event: dict | None = None, *, force: bool = False, **fields) -> None:
        now = time.monotonic()
        if not force and now - self.last < self.every:
            return
        self.last = now
        if event is not None:
            fields["progress"] = event
        if not self.kind.rows.filter(pk=self.pk, status=WorkStatus.RUNNING, cancel_requested=False).update(
                heartbeat_at=timezone.now(), **fields):
            self.stopped()

    def check(self) -> None:
        """Raise if the job was cancelled or taken away (for work with no event to record)."""
        if not self.kind.rows.filter(pk=self.pk, status=WorkStatus.RUNNING, cancel_requested=False).exists():
            self.stopped()

    def stopped(self) -> None:
        row = self.kind.rows.filter(pk=self.pk).values_list("status", "cancel_requested").first()
        if row is not None and row[1]:
            raise WorkCancelled(CANCELLED_BY_ADMIN)
        raise WorkAborted(f"{self.kind.noun} {self.pk} is {row[0] if row else 'deleted'} now")


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def work_claim(kind: WorkKind | str, pk: int, *, from_statuses: tuple[str, ...] | None = None, **fields) -> bool:
    """queued -> running as one conditional UPDATE (``attempts + 1``, fresh heartbeat, start time, this process as
    the worker, plus ``fields``): True for the one delivery that got the row. A row whose cancel was asked for is
    not claimed."""
    kind = _kind(kind)
    now = timezone.now()
    return bool(kind.rows.filter(pk=pk, status__in=from_statuses or (WorkStatus.QUEUED,), cancel_requested=False)
                .update(status=WorkStatus.RUNNING, attempts=F("attempts") + 1, heartbeat_at=now, started_at=now,
                        finished_at=None, worker=_worker_name(), **fields))


def _claim(kind: WorkKind, pk: int, from_statuses: tuple[str, ...] | None) -> bool:
    try:
        with transaction.atomic():
            claimed = work_claim(kind, pk, from_statuses=from_statuses)
    except IntegrityError as exc:  # a constraint refuses a second running row (one training run at a time)
        reason = kind.claim_conflict(pk) if kind.claim_conflict else f"could not start: {exc}"
        work_fail(kind, pk, reason, from_statuses=from_statuses or (WorkStatus.QUEUED,))
        return False
    if not claimed:  # cancelled while its worker was lost and the sweeper queued it again: now simply cancelled
        if kind.rows.filter(pk=pk, status=WorkStatus.QUEUED, cancel_requested=True).update(
                status=WorkStatus.CANCELLED, finished_at=timezone.now(), error=CANCELLED_BY_ADMIN):
            _hook(kind.on_cancelled, kind, pk)
    return claimed


def _hook(hook, kind: WorkKind, pk: int) -> None:
    if hook is not None:
        row = kind.rows.filter(pk=pk).first()
        if row is not None:
            hook(row)


def work_run(kind: WorkKind | str, pk: int, *, echo: Callable[[dict], None] | None = None,
             from_statuses: tuple[str, ...] | None = None, release_transient: bool = False,
             raise_errors: bool = False, **options) -> WorkRow | None:
    """Claim row ``pk`` and do its work, recording the outcome on the row; the row afterwards, None when it was not
    claimed (another delivery has it, it is finished, or it was cancelled).

    ``release_transient`` (workers): a transient error puts the row back to queued, sent again after the kind's
    ``retry_countdown``, while attempts are left. ``raise_errors`` (commands, tests): a failure is recorded, then
    raised. ``options`` go to the kind's ``work``."""
    kind = _kind(kind)
    if not _claim(kind, pk, from_statuses):
        return None
    attempt = None
    try:
        row = kind.rows.get(pk=pk)
        attempt = row.attempts  # this claim's: a later claim of the same row counts another
        progress = (kind.progress_class or WorkProgress)(kind, row, echo)
        with work_heartbeat(kind, pk):
            kind.work(row, progress, **options)
    except WorkCancelled:
        if kind.rows.filter(pk=pk, status=WorkStatus.RUNNING).update(
                status=WorkStatus.CANCELLED, finished_at=timezone.now(), error=CANCELLED_BY_ADMIN):
            _hook(kind.on_cancelled, kind, pk)
    except WorkAborted as exc:
        logger.warning("%s %s stopped: %s", kind.name, pk, exc)
    except Exception as exc:
        reason = (kind.describe(exc) if kind.describe else None) or f"{type(exc).__name__}: {exc}"
        if release_transient and isinstance(exc, kind.transient) and \
                work_release(kind, pk, reason, countdown=kind.retry_countdown) == WorkStatus.QUEUED:
            return kind.rows.get(pk=pk)
        logger.exception("%s %s failed", kind.name, pk)
        work_fail(kind, pk, reason)
        if raise_errors:
            raise
    except BaseException as exc:  # Ctrl-C in a command, a worker's cold shutdown: never leave the row running
        reason = f"interrupted ({type(exc).__name__})"
        if not (release_transient and work_release(kind, pk, reason, countdown=kind.retry_countdown)):
            work_fail(kind, pk, reason)
        raise
    else:
        kind.rows.filter(pk=pk, status=WorkStatus.RUNNING).update(status=WorkStatus.SUCCEEDED,
                                                                  finished_at=timezone.now(), error="")
        if kind.on_succeeded is not None and \
                kind.rows.filter(pk=pk, status=WorkStatus.SUCCEEDED, attempts=attempt).exists():
            _hook(kind.on_succeeded, kind, pk)
    return kind.rows.get(pk=pk)


def work_still_mine(kind: WorkKind | str, pk: int) -> None:
    """Inside the transaction that records a job's results: lock the row and raise ``WorkAborted`` unless it is still
    running here (the sweeper may have taken it back meanwhile), so that results are stored once."""
    kind = _kind(kind)
    if not kind.rows.select_for_update().filter(pk=pk, status=WorkStatus.RUNNING).exists():
        raise WorkAborted(f"{kind.noun} {pk} is no longer running here: its results are not recorded")


def work_task(kind: WorkKind):
    """The Celery task of ``kind``: its name and queue from the kind, its body the runner."""

    def run(pk: int) -> dict[str, object]:
        row = work_run(kind, pk, release_transient=True)
        return {kind.name: pk, "status": row.status if row is not None else "not claimed"}

    run.__name__ = run.__qualname__ = f"{kind.name}_task"
    run.__doc__ = f"Run one {kind.noun} (``apps.core.work.work_run``)."
    return platform_task(kind.task, queue=kind.queue)(run)


# --- cancel and requeue ----------------------------------------------------------------------------------------------

def work_get(kind: WorkKind | str, pk: int, *, for_update: bool = False) -> WorkRow:
    kind = _kind(kind)
    rows = kind.rows.select_for_update() if for_update else kind.rows
    row = rows.filter(pk=pk).first()
    if row is None:
        raise NotFound(f"no {kind.noun} {pk}")
    return row


def work_cancel(kind: WorkKind | str, pk: int, *, state_error: type[Conflict] = WorkStateError) -> WorkRow:
    """A queued job is cancelled at once; a running one at its next progress event (``WorkProgress``)."""
    kind = _kind(kind)
    row = work_get(kind, pk)
    if row.is_finished:
        raise state_error(f"{kind.noun} #{pk} has {row.status} already")
    if kind.rows.filter(pk=pk, status=WorkStatus.QUEUED).update(
            status=WorkStatus.CANCELLED, cancel_requested=True, finished_at=timezone.now(), error=CANCELLED_BY_ADMIN):
        _hook(kind.on_cancelled, kind, pk)
    else:
        kind.rows.filter(pk=pk, status=WorkStatus.RUNNING).update(cancel_requested=True)
    row.refresh_from_db()
    return row


def work_requeue(kind: WorkKind | str, pk: int, *, from_statuses: tuple[str, ...],
                 state_error: type[Conflict] = WorkStateError, refusal: str = "", **fields) -> WorkRow:
    """A finished job back to queued, its attempts counted afresh (not sent: see ``work_send``). ``refusal`` says
    which jobs may be queued again, when this one may not."""
    kind = _kind(kind)
    with transaction.atomic():
        row = work_get(kind, pk, for_update=True)
        if row.status not in from_statuses:
            refusal = refusal or f"only {' or '.join(from_statuses)} ones are queued again"
            raise state_error(f"{kind.noun} #{pk} is {row.status}; {refusal}")
        kind.rows.filter(pk=pk).update(status=WorkStatus.QUEUED, cancel_requested=False, finished_at=None, error="",
                                       attempts=0, **fields)
    row.refresh_from_db()
    return row


# --- heartbeats, failures, the sweeper -------------------------------------------------------------------------------

@contextmanager
def work_heartbeat(kind: WorkKind | str, pk: int, *, every: float | None = None) -> Iterator[None]:
    """While the block runs, a thread refreshes the row's ``heartbeat_at`` every ``WORK_HEARTBEAT_SECONDS``.

    A process killed outright stops beating, which is how the sweeper tells a lost job from a slow one. Inline
    (eager) execution has no worker to watch and starts no thread.
    """
    kind = _kind(kind)
    every = settings.WORK_HEARTBEAT_SECONDS if every is None else every
    if _eager() or every <= 0:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(every):
                try:
                    kind.rows.filter(pk=pk, status=WorkStatus.RUNNING).update(heartbeat_at=timezone.now())
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


def waiting_messages(kinds: list[WorkKind] | None = None, *, timeout: float | None = None,
                     ) -> set[tuple[str, int]] | None:
    """(task, id) of every row message waiting in the broker; None when the broker cannot be read."""
    queues = tuple(sorted({*QUEUES, *(kind.routed_queue for kind in (kinds or work_kinds()))}))
    try:
        messages = queue_messages(queues) if timeout is None else queue_messages(queues, timeout=timeout)
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
    kind = _kind(kind)
    _connection_recover()
    changed = kind.rows.filter(pk=pk, status__in=from_statuses or (WorkStatus.RUNNING,), **match).update(
        status=WorkStatus.FAILED, finished_at=timezone.now(), error=reason[:5000], cancel_requested=False)
    if changed and kind.on_failed is not None:
        kind.on_failed(pk, reason)
    return bool(changed)


def work_release(kind: WorkKind | str, pk: int, reason: str, *, countdown: float = 0, **match) -> str:
    """A running row whose attempt ended early (transient error, lost worker): back to queued and sent again while
    claims are left (``"queued"``), else failed with the reason (``"failed"``); ``""`` if it was not running."""
    kind = _kind(kind)
    _connection_recover()
    row = kind.rows.filter(pk=pk, status=WorkStatus.RUNNING, **match).values("attempts").first()
    if row is None:
        return ""
    attempts = row["attempts"]
    if attempts >= kind.max_attempts:
        final = f"gave up after {attempts} attempt(s); last: {reason}"
        return WorkStatus.FAILED if work_fail(kind, pk, final, **match) else ""
    note = f"attempt {attempts} of {kind.max_attempts} ended: {reason}; queued again"
    if not kind.rows.filter(pk=pk, status=WorkStatus.RUNNING, **match).update(status=WorkStatus.QUEUED,
                                                                              error=note[:5000]):
        return ""
    logger.warning("%s %s: %s", kind.name, pk, note)
    transaction.on_commit(lambda: work_send_now(kind, pk, countdown=countdown), robust=not _eager())
    return WorkStatus.QUEUED


def work_lost(kind: WorkKind, *, now=None):
    """Running rows whose heartbeat stopped for longer than ``WORK_HEARTBEAT_TIMEOUT``: their worker is gone."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.WORK_HEARTBEAT_TIMEOUT)
    return kind.rows.filter(status=WorkStatus.RUNNING).filter(Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True))


def work_due(kind: WorkKind, *, now=None):
    """Queued rows last sent (or made, if never sent) longer than ``WORK_RESEND_AFTER`` ago: sent again unless their
    message still waits in the broker."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.WORK_RESEND_AFTER)
    return kind.rows.filter(status=WorkStatus.QUEUED).filter(
        Q(last_sent_at__lt=cutoff) | Q(last_sent_at__isnull=True, created_at__lt=cutoff))


def work_sweep(*, now=None, kinds: list[WorkKind] | None = None) -> dict[str, dict[str, list]]:
    """Re-send queued rows that wait without a message, put lost running rows back (or fail them after
    ``max_attempts``). Returns, per kind, the ids it re-sent, re-queued and failed."""
    now = now or timezone.now()
    waiting = waiting_messages(kinds)
    return {kind.name: _sweep_kind(kind, now=now, waiting=waiting) for kind in (kinds or work_kinds())}


def _sweep_kind(kind: WorkKind, *, now, waiting: set[tuple[str, int]] | None) -> dict[str, list]:
    done: dict[str, list] = {"resent": [], "requeued": [], "failed": []}
    for row in work_lost(kind, now=now).values("pk", "heartbeat_at"):
        pk, heartbeat = row["pk"], row["heartbeat_at"]
        since = f"{heartbeat:%Y-%m-%d %H:%M:%S} UTC" if heartbeat else "its start"
        reason = (f"the worker stopped sending heartbeats (none since {since}; timeout "
                  f"{settings.WORK_HEARTBEAT_TIMEOUT} s): killed, out of memory or cut off")
        outcome = work_release(kind, pk, reason, heartbeat_at=heartbeat)
        if outcome:
            done["requeued" if outcome == WorkStatus.QUEUED else "failed"].append(pk)
    for pk in work_due(kind, now=now).exclude(pk__in=done["requeued"]).values_list("pk", flat=True):
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
        oldest = manager.filter(status=WorkStatus.QUEUED).order_by("created_at").values_list(
            "created_at", flat=True).first()
        rows.append({
            "kind": kind.name, "label": kind.label, "queue": kind.routed_queue,
            "queued": manager.filter(status=WorkStatus.QUEUED).count(),
            "running": manager.filter(status=WorkStatus.RUNNING).count(),
            "failed": manager.filter(status=WorkStatus.FAILED).count(),
            "oldest_queued_at": oldest,
        })
    return rows
