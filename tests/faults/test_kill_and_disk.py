"""Every unit of work finishes exactly once, through real workers of our own that are SIGKILLed or whose disk fills.

- A split job's worker killed in the middle of a batch: the sweeper queues the job again, a new worker redoes that
  batch (once) and the rest; one Prediction per face, one Explanation per (face, method, target), and every overlay
  PNG on disk belongs to exactly one row (the cut batch's files are written again under the same names, not left).
- A scoring run's worker killed in the middle of a fold: the new worker reuses the finished folds (their files are
  never rewritten and their checkpoints never come back) and finishes; one score per face, no duplicate items.
- A full disk (a small tmpfs) under heatmaps, epoch checkpoints and the copy of a new checkpoint into media: the row
  fails with "No space left on device while writing ...", every file left is whole and owned by a row, and the
  active model is the same. Under them, one write that fills a disk (``storage_save_atomic``, ``save_atomic``) leaves
  nothing behind and names what it wrote, with O_TMPFILE and with the named temp file used where it is missing.

``benchmarks/bench_faults_workers.py`` runs the kill cycles on more data, several times in a row.
"""

from __future__ import annotations

import errno

import pytest
import torch

import ml.files as ml_files
from apps.core.files import storage_save_atomic
from apps.inference.models import Explanation, InferenceJob, ModelVersion
from apps.inference.selectors import model_version_active
from apps.inference.services.jobs import inference_job_enqueue
from apps.inference.services.registry import model_version_register
from apps.training.models import TrainingRun
from apps.training.services import training_run_start
from ml.checkpoint import save_atomic
from ml.files import FileWriteError, write_atomic

from .kill import (
    TINY_TRAINING,
    MountUnavailable,
    checkpoint_sizes,
    ended,
    files_under,
    media_audit,
    own_queue,
    route,
    scoring_run_kill_cycles,
    split_job_kill_cycles,
    synthetic_faces,
    tiny_checkpoint,
    tmpfs,
    tmpfs_resize,
    training_dir_audit,
    used_bytes,
    wait_for,
    worker_on,
)

PAGE = 4096


def through_workers(test):
    """Workers of the test's own read the test database: committed rows, hence ``transaction=True``."""
    return pytest.mark.worker(pytest.mark.django_db(transaction=True)(test))


@pytest.fixture(autouse=True)
def fault_settings(settings, tmp_path):
    settings.INFERENCE_REFRESH_ON_ACTIVATE = False  # activating the tiny model queues nothing by itself
    settings.REVIEW_SCORING_DIR = tmp_path / "scoring"
    settings.TRAINING_DIR = tmp_path / "training"
    settings.WORK_HEARTBEAT_TIMEOUT = 120  # the workers get the same value; the sweeps move "now" past it
    return settings


@pytest.fixture
def small_disk(tmp_path):
    """``tmpfs`` (mounted for a block, always unmounted); skips where mounting is not allowed (not root)."""
    try:
        with tmpfs(tmp_path / "probe", PAGE):
            pass
    except MountUnavailable as exc:
        pytest.skip(str(exc))
    return tmpfs


def _finished(run_id: int) -> bool:
    return TrainingRun.objects.get(pk=run_id).is_finished


def _pages(n: int) -> int:
    return -(-n // PAGE) * PAGE


# --- SIGKILL -------------------------------------------------------------------------------------------------------

@through_workers
def test_a_split_job_killed_mid_batch_redoes_that_batch_once(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    dataset = synthetic_faces(public_test=96)
    version = model_version_register(checkpoint_path=tiny_checkpoint(tmp_path / "tiny.pt"), name="tiny",
                                     activate=True)

    cycle = split_job_kill_cycles(settings=settings, base=tmp_path, dataset=dataset, version=version,
                                  methods=["gradcam", "scorecam"], batch_size=8, cut_at=("writing",))

    cut = cycle.kills[0]
    assert cut["status"] == "running" and cut["attempts"] == 1, cut  # the dead worker could not say anything
    assert 0 < cut["done"] < cycle.total and cut["done"] % 8 == 0, cut
    assert cut["rows_after_cut_batch"] == 0, cut  # it died in that batch: nothing beyond it was written
    assert cut["unrecorded_overlay_files"] > 0, cut  # ... after writing overlays it had not recorded yet
    assert cut["sweep"]["requeued"] == [cycle.job_id], cut
    assert "stopped sending heartbeats" in cut["error_after_sweep"]  # queued again (and sent) with the reason

    job = InferenceJob.objects.get(pk=cycle.job_id)
    assert cycle.status == job.status == "succeeded", job.error
    assert job.done == job.total == 96 and job.attempts == 2
    checks = cycle.checks
    assert checks["ok"], {**checks, "cut": cut}  # one row per face / key, and each overlay file owned by one row
    assert checks["predictions"] == 96 and checks["explanations"] == checks["explanations_wanted"]
    assert checks["rows_before_first_cut_rewritten"] == 0  # the batches done before the kill were not redone


@through_workers
def test_a_scoring_run_killed_mid_fold_resumes_from_its_finished_folds(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    synthetic_faces(training_per_class=8, public_test=1, mislabelled=6)

    cycle = scoring_run_kill_cycles(settings=settings, base=tmp_path, folds=3, epochs=40)

    cut = cycle.kills[0]
    assert cut["status"] == "running" and cut["attempts"] == 1, cut
    assert 1 <= len(cut["finished_folds"]) < 3, cut  # killed after the first fold, in the middle of another
    assert cut["sweep"]["requeued"] == [cycle.run_id], cut
    assert "stopped sending heartbeats" in cut["error_after_sweep"]

    assert cycle.status == "succeeded", cycle.error
    assert cycle.attempts == 2
    assert cycle.retrained_folds == []  # the finished folds' files were never replaced, their training never redone
    assert cycle.unwatched_folds == [] and cycle.events_after_kill  # the watches saw the resumed attempt at work
    assert cycle.redone_events == [], cycle.redone_events  # no batch or epoch event of a finished fold
    checks = cycle.checks
    assert checks["scored_faces"] == checks["scores"] == checks["score_faces_distinct"] == 56, checks
    assert checks["items"] == checks["items_created"] == checks["item_faces_distinct"] > 0, checks
    assert not checks["work_dir_left"]


# --- a full disk ---------------------------------------------------------------------------------------------------

def test_a_write_that_fills_the_disk_leaves_nothing_behind_and_says_what_it_wrote(settings, tmp_path, small_disk,
                                                                                  monkeypatch):
    disk = tmp_path / "disk"
    with small_disk(disk, 64 << 10):
        settings.MEDIA_ROOT = disk
        write_atomic(disk / "kept.pt", b"old" * 100, what="a file")
        for way in ("unnamed file (O_TMPFILE)", "named temp file"):
            if way == "named temp file":  # file systems without O_TMPFILE
                monkeypatch.setattr(ml_files, "_open_unnamed", lambda directory: None)
            with pytest.raises(FileWriteError, match="No space left on device while writing heatmaps: ") as error:
                storage_save_atomic("explanations/v1/x.png", b"x" * (100 << 10), what="heatmaps")
            assert error.value.errno == errno.ENOSPC, way
            # torch.save hides the OSError in a RuntimeError; the old file stays whole.
            with pytest.raises(FileWriteError, match="No space left on device while writing a checkpoint: "):
                save_atomic({"weights": torch.zeros(40_000)}, disk / "kept.pt")
            assert [p.relative_to(disk).as_posix() for p in files_under(disk)] == ["kept.pt"], way
            assert (disk / "kept.pt").read_bytes() == b"old" * 100, way
        assert storage_save_atomic("explanations/v1/y.png", b"small", what="heatmaps") == "explanations/v1/y.png"
        assert (disk / "explanations/v1/y.png").read_bytes() == b"small"



@through_workers
def test_heatmaps_on_a_full_disk_fail_the_job_and_leave_only_whole_files(settings, tmp_path, small_disk):
    media = tmp_path / "media"
    with small_disk(media, 32 << 20):
        settings.MEDIA_ROOT = media
        dataset = synthetic_faces(public_test=96)
        version = model_version_register(checkpoint_path=tiny_checkpoint(tmp_path / "tiny.pt"), name="tiny",
                                         activate=True)
        tmpfs_resize(media, used_bytes(media) + (600 << 10))  # room for a batch or two of 192 px overlays, not 12
        queue = own_queue("disk-heatmaps")
        route(settings, "inference.predict_split", queue)
        with worker_on(queue, env={"MEDIA_ROOT": str(media), "INFERENCE_BATCH_SIZE": "8",
                                   "INFERENCE_REFRESH_ON_ACTIVATE": "0"}, log_dir=tmp_path / "logs"):
            job = inference_job_enqueue(dataset=dataset, split="PublicTest", methods=["gradcam"], version=version)
            wait_for(ended, InferenceJob, job.pk, timeout=90, what="the split job to end")
        job.refresh_from_db()
        assert job.status == "failed", job
        assert "No space left on device while writing heatmaps" in job.error, job.error
        assert 0 < job.done < job.total  # the batches before the disk filled are kept ...
        audit = media_audit(media)
        assert audit.clean, audit  # ... and every file is a whole PNG owned by exactly one row (no partial, no temp)
        assert audit.overlays == Explanation.objects.count() > 0


@through_workers
def test_checkpoints_on_a_full_disk_fail_the_run_and_keep_the_active_model(settings, tmp_path, small_disk):
    media, training = tmp_path / "media", tmp_path / "training"
    model_bytes, state_bytes = checkpoint_sizes(TINY_TRAINING, n_train=70, n_val=28, work_dir=tmp_path / "sizes")
    # Room for one epoch's checkpoint and state file, not for the next state file next to the last one.
    with small_disk(media, 32 << 20), small_disk(training, _pages(model_bytes) + _pages(state_bytes)
                                                 + model_bytes // 2):
        settings.MEDIA_ROOT, settings.TRAINING_DIR = media, training
        synthetic_faces(training_per_class=10, public_test=28)
        active = model_version_register(checkpoint_path=tiny_checkpoint(tmp_path / "tiny.pt"), name="tiny",
                                        activate=True)
        tmpfs_resize(media, used_bytes(media) + model_bytes // 2)  # no room for the new version's checkpoint
        queue = own_queue("disk-training")
        route(settings, "training.run", queue)
        env = {"MEDIA_ROOT": str(media), "TRAINING_DIR": str(training), "INFERENCE_REFRESH_ON_ACTIVATE": "0"}
        with worker_on(queue, env=env, log_dir=tmp_path / "logs"):
            # 1. TRAINING_DIR fills up at epoch 2.
            run = training_run_start(trigger="admin", recipe_name="scoring", epochs=3, recipe_overrides=TINY_TRAINING)
            wait_for(_finished, run.pk, timeout=90, what="run 1 to end")
            run.refresh_from_db()
            assert run.status == TrainingRun.Status.FAILED, run.error
            assert "No space left on device while writing a checkpoint" in run.error, run.error
            assert [p["epoch"] for p in run.history] == [1]
            kept = training_dir_audit(training)
            assert kept["broken"] == kept["stray"] == [], kept  # epoch 1's files, whole: the run can resume
            assert sorted(n.rsplit("/", 1)[-1] for n in kept["whole"]) == ["model.pt", "model.pt.dynamics.npz",
                                                                           "model.pt.state"], kept

            # 2. Room to train, none in MEDIA_ROOT to store the new version's checkpoint.
            tmpfs_resize(training, 16 << 20)
            run = training_run_start(trigger="admin", recipe_name="scoring", epochs=1, recipe_overrides=TINY_TRAINING)
            wait_for(_finished, run.pk, timeout=90, what="run 2 to end")
            run.refresh_from_db()
            assert run.status == TrainingRun.Status.FAILED, run.error
            assert "No space left on device while writing a model checkpoint" in run.error, run.error
            assert run.model_version is None

        assert model_version_active() == active and ModelVersion.objects.count() == 1
        audit = media_audit(media)
        assert audit.clean, audit  # no partial copy under models/
        assert sorted(n for n in ModelVersion.objects.values_list("checkpoint", flat=True)) == [active.checkpoint.name]
        kept = training_dir_audit(training)
        assert kept["broken"] == kept["stray"] == [], kept
