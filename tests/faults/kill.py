"""Workers of a test's own that it SIGKILLs, small tmpfs disks that fill up, and the exactly-once audits after them.

The cycles (``split_job_kill_cycles``, ``scoring_run_kill_cycles``) run against the current Django database with
real ``celery worker`` processes (``tests.workers.running_worker``) on a queue of their own, and return what they saw:
timings and the facts the tests assert on. ``benchmarks/bench_faults_workers.py`` runs the same cycles on more data.
``settings`` is pytest-django's fixture in the tests and ``django.conf.settings`` in the benchmark.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from django.db import connection
from django.utils import timezone
from PIL import Image

# work_send_now looks the task up in the Celery app's registry, which in a process that is not a worker holds only
# the task modules imported so far (scoring_run_enqueue and training_run_start import none): import them here.
import apps.inference.tasks  # noqa: F401
import apps.review.tasks  # noqa: F401
import apps.training.tasks  # noqa: F401
from apps.core.work import work_kind, work_sweep
from apps.faces.models import Dataset, FaceImage, FacePixels
from apps.faces.services import FaceRecord, FaceWriter, dataset_get_or_create
from apps.inference.models import Explanation, InferenceJob, ModelVersion, Prediction, explanation_overlay_path
from apps.review.models import LabelScore, ReviewItem, ScoringRun
from tests.helpers import wait_until
from tests.workers import running_worker

TINY_VGG = {"widths": (8, 16, 16, 32), "depths": (1, 1, 1, 1)}
TINY_TRAINING = {"arch_kwargs": TINY_VGG, "batch_size": 16, "amp_bf16": False}  # tests/training's TINY
TINY_SCORING = {"arch_kwargs": TINY_VGG, "batch_size": 32}  # tests/review's TINY_RECIPE
_names = itertools.count(1)


# --- waiting, workers, killing, sweeping ---------------------------------------------------------------------------

def wait_for(predicate: Callable[..., Any], *args: Any, timeout: float, what: str, interval: float = 0.05) -> Any:
    """``predicate(*args)``'s first truthy value, polling (``tests.helpers.wait_until``)."""
    return wait_until(lambda: predicate(*args), timeout=timeout, what=what, interval=interval)


def own_queue(tag: str) -> str:
    """A queue no other worker on the broker reads (the suite's session worker reads interactive and bulk)."""
    return f"faults-{tag}-{os.getpid()}-{next(_names)}"


def route(settings, task: str, queue: str) -> None:
    """Send ``task`` to ``queue`` from this process (the work layer reads the route table at send time)."""
    settings.CELERY_TASK_ROUTES = {**settings.CELERY_TASK_ROUTES, task: {"queue": queue}}


@contextmanager
def worker_on(queue: str, *, env: dict[str, str], log_dir: Path) -> Iterator[subprocess.Popen]:
    """A solo-pool worker on ``queue`` with ``env``; a fresh node name (and log) each time, so that a new worker is
    never mistaken for the one just killed."""
    n = next(_names)
    log_dir.mkdir(parents=True, exist_ok=True)
    with running_worker(name=f"{queue}-w{n}", queues=queue, log=log_dir / f"worker-{n}.log",
                        env={"OMP_NUM_THREADS": "1", **env}) as worker:
        yield worker


def kill(worker: subprocess.Popen) -> None:
    """SIGKILL: no cleanup, no ack, no last word to the database."""
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=30)


def sweep_lost(settings, kind: str) -> dict[str, list]:
    """The sweeper as beat runs it once the heartbeat is older than the timeout (``now`` moved past it)."""
    later = timezone.now() + timedelta(seconds=settings.WORK_HEARTBEAT_TIMEOUT + 1)
    return work_sweep(now=later, kinds=[work_kind(kind)])[kind]


# --- data ----------------------------------------------------------------------------------------------------------

def synthetic_faces(*, training_per_class: int = 0, public_test: int = 0, mislabelled: int = 0,
                    seed: int = 0) -> Dataset:
    """7 classes, each a bright band at its own height over noise (learnable, every face distinct): Training faces
    per class, ``public_test`` PublicTest faces with labels in turn, and ``mislabelled`` Training faces (spread over
    the classes) labelled as the next class, for label scoring to find."""
    rng = np.random.default_rng(seed)
    bands = [("Training", c) for c in range(7) for _ in range(training_per_class)]
    bands += [("PublicTest", i % 7) for i in range(public_test)]
    wrong = set(range(0, 7 * training_per_class, max(1, 7 * training_per_class // max(mislabelled, 1)))[:mislabelled])
    records = []
    for row, (split, band) in enumerate(bands):
        image = rng.integers(0, 60, size=(48, 48), dtype=np.uint8)
        image[band * 6:band * 6 + 8, :] = 220
        label = (band + 1) % 7 if row in wrong else band
        records.append(FaceRecord(raw=image.tobytes(), split=split, label=label, source_row=row))
    dataset = dataset_get_or_create(name="fer2013")
    writer = FaceWriter(dataset)
    with writer.scope():
        for start in range(0, len(records), 500):
            writer.write(records[start:start + 500])
    return dataset


def tiny_checkpoint(path: Path, seed: int = 1) -> Path:
    """Random weights of the tiny network (what tests/inference's ``write_tiny_checkpoint`` writes)."""
    import torch

    from ml.checkpoint import build_checkpoint, save_atomic
    from ml.models import create_model

    torch.manual_seed(seed)
    model = create_model("fer_vgg", **TINY_VGG)
    history = [{"epoch": 1, "val_accuracy": 0.2, "val_macro_f1": 0.1}]
    save_atomic(build_checkpoint(model, recipe={"name": "tiny", "n_train": 10}, epoch=1, history=history), path)
    return path


def checkpoint_sizes(recipe_overrides: dict, *, n_train: int, n_val: int, work_dir: Path) -> tuple[int, int]:
    """Bytes of the best-model checkpoint and of the per-epoch state file that one epoch of this recipe writes (the
    state adds the optimizer), measured by training one epoch here on random faces."""
    from ml.data import FaceArrays
    from ml.recipes import apply_overrides, get_recipe
    from ml.train import fit

    rng = np.random.default_rng(0)
    train = FaceArrays.from_arrays(rng.integers(0, 255, (n_train, 48, 48), dtype=np.uint8), np.arange(n_train) % 7)
    val = FaceArrays.from_arrays(rng.integers(0, 255, (n_val, 48, 48), dtype=np.uint8), np.arange(n_val) % 7,
                                 usage="PublicTest")
    out = work_dir / "model.pt"
    fit(train, val, apply_overrides(get_recipe("scoring"), recipe_overrides), out, epochs=1, seed=0)
    return out.stat().st_size, out.with_name("model.pt.state").stat().st_size


# --- small disks ---------------------------------------------------------------------------------------------------

class MountUnavailable(RuntimeError):
    """``mount -t tmpfs`` is refused here (not root, no CAP_SYS_ADMIN)."""


@contextmanager
def tmpfs(path: Path, size: int) -> Iterator[Path]:
    """A tmpfs of ``size`` bytes at ``path`` (created), always unmounted on the way out."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise MountUnavailable(f"mount -t tmpfs refused: {done.stderr.strip() or done.returncode}")
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)  # busy: detach now, freed when closed


def tmpfs_resize(path: Path, size: int) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], check=True, capture_output=True)


def used_bytes(path: Path) -> int:
    stat = os.statvfs(path)
    return (stat.f_blocks - stat.f_bfree) * stat.f_frsize


# --- audits --------------------------------------------------------------------------------------------------------

def files_under(root: Path) -> list[Path]:
    """Every file below ``root``, hidden ones (temp files) included."""
    return sorted(Path(d) / f for d, _, names in os.walk(root) for f in names)


def _png_whole(path: Path) -> bool:
    try:
        with Image.open(path) as image:
            image.load()  # decodes every byte: a truncated file fails here
        return image.format == "PNG"
    except Exception:
        return False


def _checkpoint_whole(path: Path) -> bool:
    from ml.checkpoint import CheckpointError, read_checkpoint

    try:
        read_checkpoint(path)
    except CheckpointError:
        return False
    return True


@dataclass
class MediaAudit:
    """Every file under MEDIA_ROOT against the rows that own it; ``clean`` when each file is whole and referenced by
    exactly one row, and each row's file exists."""

    files: int = 0
    overlays: int = 0
    orphans: list[str] = field(default_factory=list)  # whole files no row references
    shared: list[str] = field(default_factory=list)  # referenced by more than one row
    broken: list[str] = field(default_factory=list)  # not a whole PNG / checkpoint
    stray: list[str] = field(default_factory=list)  # temp files and anything else that is not media
    missing: list[str] = field(default_factory=list)  # rows whose file is gone

    @property
    def clean(self) -> bool:
        return not (self.orphans or self.shared or self.broken or self.stray or self.missing)


def media_audit(media_root: Path) -> MediaAudit:
    audit = MediaAudit()
    overlays: dict[str, int] = {}
    for name in Explanation.objects.values_list("overlay", flat=True):
        overlays[name] = overlays.get(name, 0) + 1
    owners = {
        "explanations": overlays,
        "faces": dict.fromkeys(FacePixels.objects.values_list("png", flat=True), 1),
        "models": dict.fromkeys([*ModelVersion.objects.values_list("checkpoint", flat=True),
                                 *ModelVersion.objects.exclude(dynamics="").values_list("dynamics", flat=True)], 1),
    }
    for path in files_under(media_root):
        name = path.relative_to(media_root).as_posix()
        audit.files += 1
        kind = name.split("/", 1)[0]
        if path.name.startswith(".") or kind not in owners:
            audit.stray.append(name)
            continue
        refs = owners[kind].get(name, 0)
        audit.overlays += kind == "explanations"
        if refs == 0:
            audit.orphans.append(name)
        elif refs > 1:
            audit.shared.append(name)
        if not (_model_file_whole(path) if kind == "models" else _png_whole(path)):
            audit.broken.append(name)
    for refs in owners.values():
        audit.missing += [name for name in refs if name and not (media_root / name).is_file()]
    return audit


def training_dir_audit(root: Path) -> dict[str, list[str]]:
    """Checkpoints and training dynamics under a TRAINING_DIR: each must be whole (readable); temp files are stray."""
    out: dict[str, list[str]] = {"whole": [], "broken": [], "stray": []}
    for path in files_under(root):
        name = path.relative_to(root).as_posix()
        if path.name.startswith(".") or not path.name.endswith((".pt", ".pt.state", ".pt.dynamics.npz")):
            out["stray"].append(name)
        else:
            out["whole" if _model_file_whole(path) else "broken"].append(name)
    return out


def _model_file_whole(path: Path) -> bool:
    """A checkpoint that loads, or a training-dynamics file that reads."""
    if path.name.endswith(".dynamics.npz"):
        from ml.dynamics import DynamicsError, TrainingDynamics

        try:
            TrainingDynamics.load(path)
        except DynamicsError:
            return False
        return True
    return _checkpoint_whole(path)


def split_job_exactly_once(job: InferenceJob, media_root: Path) -> dict[str, Any]:
    """One Prediction per face and one Explanation per (face, method, target) wanted, no file left over."""
    faces = list(FaceImage.objects.filter(dataset_id=job.dataset_id, split=job.split).order_by("pk"))
    version = job.model_version
    predictions = dict(Prediction.objects.filter(model_version=version).values_list("face_id", "predicted_label"))
    per_face = Prediction.objects.filter(model_version=version).values("face").distinct().count()
    wanted = {(f.pk, m, t) for f in faces for m in job.methods
              for t in {predictions.get(f.pk), f.current_label} if t is not None}
    stored = list(Explanation.objects.filter(model_version=version).values_list("face_id", "method", "target_label"))
    audit = media_audit(media_root)
    return {
        "faces": len(faces), "predictions": len(predictions), "predicted_faces": per_face,
        "explanations": len(stored), "explanations_wanted": len(wanted),
        "explanations_missing": len(wanted - set(stored)), "explanations_duplicated": len(stored) - len(set(stored)),
        "overlay_files": audit.overlays, "audit": audit,
        "ok": (len(predictions) == per_face == len(faces) and set(stored) == wanted
               and len(stored) == len(set(stored)) and audit.clean and audit.overlays == len(stored)),
    }


# --- the split-job kill cycle --------------------------------------------------------------------------------------

@dataclass
class SplitJobCycle:
    job_id: int = 0
    total: int = 0
    batch_size: int = 0
    kills: list[dict[str, Any]] = field(default_factory=list)  # per kill: done, what the cut batch had stored, ...
    attempts: int = 0
    status: str = ""
    seconds_first_run: float = 0.0
    seconds_to_finish: float = 0.0  # from the last sweep to done
    checks: dict[str, Any] = field(default_factory=dict)


def _progress_rows(face_ids: list[int], version_id: int) -> tuple[int, int]:
    return (Prediction.objects.filter(model_version_id=version_id, face_id__in=face_ids).count(),
            Explanation.objects.filter(model_version_id=version_id, face_id__in=face_ids).count())


def split_job_kill_cycles(*, settings, base: Path, dataset: Dataset, version: ModelVersion, methods: list[str],
                          batch_size: int, kills: int = 1, cut_at: tuple[float | str, ...] = (0.5,),
                          timeout: float = 120) -> SplitJobCycle:
    """Queue a split job on a worker of our own and SIGKILL the worker ``kills`` times in the middle of a batch (at
    ``cut_at`` of a batch's measured duration, in turn, or ``"writing"``: while overlay files of the batch are on
    disk and not yet recorded, the moment a lost file would be left); after each kill the sweeper takes the job back
    and a new worker resumes it. Returns what was seen; the caller asserts."""
    from apps.inference.services.jobs import inference_job_enqueue

    queue = own_queue("split")
    route(settings, "inference.predict_split", queue)
    env = {"MEDIA_ROOT": str(settings.MEDIA_ROOT), "INFERENCE_BATCH_SIZE": str(batch_size),
           "INFERENCE_REFRESH_ON_ACTIVATE": "0", "WORK_HEARTBEAT_TIMEOUT": str(settings.WORK_HEARTBEAT_TIMEOUT)}
    out = SplitJobCycle(batch_size=batch_size)
    ids = list(FaceImage.objects.filter(dataset=dataset, split="PublicTest").order_by("pk")
               .values_list("pk", flat=True))
    job = None
    for k in range(kills + 1):
        with worker_on(queue, env=env, log_dir=base / "logs") as worker:
            # Send the work once the worker is up: a solo worker answers the start-up ping only between tasks.
            started = time.monotonic()
            if job is None:
                job = inference_job_enqueue(dataset=dataset, split="PublicTest", methods=methods, version=version)
                out.job_id, out.total = job.pk, len(ids)
            else:  # the sweeper takes the lost job back and sends it again, to this worker
                _record_sweep(out.kills[-1], settings, "split_job", job)
            if k == kills:  # the last worker runs it to the end
                wait_for(ended, InferenceJob, job.pk, timeout=timeout, what=f"split job {job.pk} to end")
                out.seconds_to_finish = time.monotonic() - started
                break
            # Two progress updates measure a batch; then wait a fraction of one and cut it.
            start_done = InferenceJob.objects.values_list("done", flat=True).get(pk=job.pk)
            first = wait_for(_done_after, job.pk, start_done, timeout=timeout, what="a finished batch")
            t1 = time.monotonic()
            wait_for(_done_after, job.pk, first, timeout=timeout, what="a second finished batch")
            batch_seconds = time.monotonic() - t1
            where = cut_at[k % len(cut_at)]
            if where == "writing":
                overlays = Path(settings.MEDIA_ROOT) / explanation_overlay_path(SimpleNamespace(
                    model_version_id=version.pk), "")
                wait_for(_overlays_unrecorded, overlays, version.pk, timeout=timeout, interval=0.002,
                         what="overlay files not yet recorded")
            else:
                time.sleep(batch_seconds * float(where))
            kill(worker)
            if k == 0:
                out.seconds_first_run = time.monotonic() - started
        job.refresh_from_db()
        cut = ids[job.done:job.done + batch_size]
        after = ids[job.done + batch_size:]
        files_before = {p.name for p in files_under(Path(settings.MEDIA_ROOT) / "explanations")}
        stored = {row.overlay.name.rsplit("/", 1)[-1] for row in Explanation.objects.filter(model_version=version)}
        cut_predictions, cut_explanations = _progress_rows(cut, version.pk)
        seen = {"done": job.done, "status": job.status, "attempts": job.attempts,
                "cut_batch_predictions": cut_predictions, "cut_batch_explanations": cut_explanations,
                "rows_after_cut_batch": sum(_progress_rows(after, version.pk)),
                "unrecorded_overlay_files": len(files_before - stored),
                "killed_at": timezone.now(), "batch_seconds": round(batch_seconds, 3)}
        out.kills.append(seen)
    job.refresh_from_db()
    out.attempts, out.status = job.attempts, job.status
    out.checks = split_job_exactly_once(job, Path(settings.MEDIA_ROOT))
    # Rows of faces before the first cut batch were written before the first kill, and none were written again.
    first_cut = out.kills[0]["done"] if out.kills else 0
    before = Explanation.objects.filter(model_version=version, face_id__in=ids[:first_cut])
    out.checks["rows_before_first_cut_rewritten"] = before.filter(created_at__gt=out.kills[0]["killed_at"]).count() \
        if out.kills else 0
    return out


def _record_sweep(seen: dict[str, Any], settings, kind: str, row) -> None:
    seen["sweep"] = sweep_lost(settings, kind)
    row.refresh_from_db()
    seen["status_after_sweep"], seen["error_after_sweep"] = row.status, row.error  # queued, or claimed already


def ended(model, pk: int) -> bool:
    return model.objects.filter(pk=pk).exclude(status__in=["queued", "running"]).exists()


def _folds_finished(work_dir: Path, wanted: int) -> bool:
    return len(list(work_dir.glob("fold*.npz"))) >= wanted


def _fold_started(work_dir: Path, fold: int) -> bool:
    """Fold ``fold`` (0-based) has written its per-epoch state, or is finished already."""
    return any(work_dir.glob(f"fold{fold}-*.pt.state")) or any(work_dir.glob(f"fold{fold}-*.npz"))


def _overlays_unrecorded(directory: Path, version_id: int) -> bool:
    """More overlay files on disk than rows (files listed first: a row recorded meanwhile only lowers the count)."""
    try:
        on_disk = sum(1 for entry in os.scandir(directory) if entry.name.endswith(".png"))
    except FileNotFoundError:
        return False
    return on_disk > Explanation.objects.filter(model_version_id=version_id).count()


def _done_after(job_id: int, previous: int) -> int | None:
    row = InferenceJob.objects.values_list("done", "status").get(pk=job_id)
    if row[1] not in ("queued", "running") and row[0] <= previous:
        raise AssertionError(f"split job {job_id} is {row[1]} before it could be cut (done {row[0]})")
    return row[0] if row[0] > previous else None


# --- the scoring-run kill cycle ------------------------------------------------------------------------------------

class DirWatch:
    """Polls a directory from a thread and remembers every (file, inode, mtime) it saw: a finished fold that were
    trained again would show up as a new ``.pt`` file or a replaced ``.npz``."""

    def __init__(self, path: Path, interval: float = 0.01) -> None:
        self.path, self.interval = path, interval
        self.seen: dict[str, set[tuple[int, int]]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dirwatch", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                entries = list(os.scandir(self.path))
            except FileNotFoundError:
                entries = []
            for entry in entries:
                try:
                    st = entry.stat()
                except FileNotFoundError:
                    continue
                self.seen.setdefault(entry.name, set()).add((st.st_ino, st.st_mtime_ns))
            self._stop.wait(self.interval)

    def __enter__(self) -> DirWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class ProgressWatch(threading.Thread):
    """Samples ``ScoringRun.progress`` (the last ml event) from a thread of its own, with its own connection."""

    def __init__(self, run_id: int, interval: float = 0.02) -> None:
        super().__init__(name="progresswatch", daemon=True)
        self.run_id, self.interval = run_id, interval
        self.events: list[dict] = []
        self.stop = threading.Event()

    def __enter__(self) -> ProgressWatch:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.join(timeout=5)

    def run(self) -> None:
        try:
            last = ScoringRun.objects.values_list("progress", flat=True).get(pk=self.run_id)  # the killed attempt's
            while not self.stop.is_set():
                event = ScoringRun.objects.values_list("progress", flat=True).get(pk=self.run_id)
                if event and event != last:
                    self.events.append(event)
                    last = event
                self.stop.wait(self.interval)
        finally:
            connection.close()


def _folds_touched(finished: dict[str, tuple[int, int]], seen: dict[str, set[tuple[int, int]]]) -> list[str]:
    """Finished folds whose result file was replaced, or whose training checkpoints came back."""
    touched = [name for name, identity in finished.items() if seen.get(name, {identity}) != {identity}]
    for name in finished:
        fold = name.split("-", 1)[0]  # "fold0"
        touched += [n for n in seen if n.startswith(f"{fold}-") and ".pt" in n]
    return touched


@dataclass
class ScoringRunCycle:
    run_id: int = 0
    folds: int = 0
    kills: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0
    status: str = ""
    error: str = ""
    seconds_first_run: float = 0.0
    seconds_to_finish: float = 0.0
    retrained_folds: list[str] = field(default_factory=list)  # finished folds touched after a kill (must be empty)
    events_after_kill: list[dict] = field(default_factory=list)  # ml events sampled from the resumed attempts
    redone_events: list[dict] = field(default_factory=list)  # of them, training events of an already finished fold
    unwatched_folds: list[str] = field(default_factory=list)  # finished folds the file watch never saw (vacuous)
    checks: dict[str, Any] = field(default_factory=dict)


def scoring_run_kill_cycles(*, settings, base: Path, folds: int, epochs: int, kills: int = 1,
                            recipe_overrides: dict | None = None, timeout: float = 180) -> ScoringRunCycle:
    """Queue a scoring run on a worker of our own; each time one more fold has finished, SIGKILL the worker (in the
    middle of the next fold), sweep, and start a new one. Returns what was seen; the caller asserts."""
    from apps.review.scoring import scoring_run_enqueue

    queue = own_queue("scoring")
    route(settings, "review.score_labels", queue)
    env = {"MEDIA_ROOT": str(settings.MEDIA_ROOT), "REVIEW_SCORING_DIR": str(settings.REVIEW_SCORING_DIR),
           "WORK_HEARTBEAT_TIMEOUT": str(settings.WORK_HEARTBEAT_TIMEOUT)}
    out = ScoringRunCycle(folds=folds)
    run = None
    for k in range(kills + 1):
        with worker_on(queue, env=env, log_dir=base / "logs") as worker, ExitStack() as watching:
            started = time.monotonic()
            if run is None:
                run = scoring_run_enqueue(folds=folds, epochs=epochs, filter_by="predicted_neq_given",
                                          recipe_overrides=recipe_overrides or TINY_SCORING)
                out.run_id = run.pk
            work_dir = Path(settings.REVIEW_SCORING_DIR) / f"run-{run.pk}"
            if k > 0:  # watch the finished folds from before the worker gets the run back
                finished = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in work_dir.glob("fold*.npz")}
                files = watching.enter_context(DirWatch(work_dir))
                events = watching.enter_context(ProgressWatch(run.pk))
                _record_sweep(out.kills[-1], settings, "scoring_run", run)
            if k == kills:
                wait_for(ended, ScoringRun, run.pk, timeout=timeout, what=f"scoring run {run.pk} to end")
                out.seconds_to_finish = time.monotonic() - started
            else:
                # One more fold finished, and the next one has epochs behind it (its resumable state file).
                wait_for(_folds_finished, work_dir, k + 1, timeout=timeout, what=f"{k + 1} finished fold(s)",
                         interval=0.02)
                wait_for(_fold_started, work_dir, k + 1, timeout=timeout, what=f"fold {k + 2} under way",
                         interval=0.02)
                kill(worker)
                if k == 0:
                    out.seconds_first_run = time.monotonic() - started
        if k > 0:
            out.retrained_folds += _folds_touched(finished, files.seen)
            out.unwatched_folds += [name for name in finished if name not in files.seen]
            out.events_after_kill += events.events
            out.redone_events += [e for e in events.events if (e.get("fold") or 0) <= len(finished)
                                  and not (e.get("kind") == "fold" and e.get("reused"))]
        if k < kills:
            run.refresh_from_db()
            out.kills.append({"finished_folds": sorted(p.name for p in work_dir.glob("fold*.npz")),
                              "status": run.status, "attempts": run.attempts, "progress": run.progress,
                              "fold_state_files": sorted(p.name for p in work_dir.glob("fold*.pt*"))})
    run.refresh_from_db()
    out.attempts, out.status, out.error = run.attempts, run.status, run.error
    faces = run.scored_count
    out.checks = {
        "scores": LabelScore.objects.filter(run=run).count(), "scored_faces": faces,
        "score_faces_distinct": LabelScore.objects.filter(run=run).values("face").distinct().count(),
        "items": ReviewItem.objects.count(), "items_created": run.items_created,
        "item_faces_distinct": ReviewItem.objects.values("face").distinct().count(),
        "work_dir_left": (Path(settings.REVIEW_SCORING_DIR) / f"run-{run.pk}").exists(),
    }
    return out
