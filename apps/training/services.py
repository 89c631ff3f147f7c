"""Writes for training runs: start, cancel, retry, sweep stale runs and the periodic check. The slow part (the
runner's ``work``) and the kind live in ``execution.py``, the promotion gate's decision in ``gate.py``.

One run at a time: starting a run locks the ``TrainingSettings`` row and is refused (``TrainingRunBusy``) while
another run is queued or running; a partial unique index on ``status='running'`` makes the database refuse a second
running run as well.
"""

from __future__ import annotations

import logging

from django.db import transaction

from apps.core.errors import Conflict, InvalidInput
from apps.core.work import WorkStatus, work_cancel, work_get, work_requeue, work_send, work_sweep
from apps.faces.selectors import near_duplicate_run_latest
from apps.inference.selectors import model_version_active

from .execution import TRAINING_RUN
from .models import SOFT_LABEL_MODES, TrainingRun, TrainingSettings
from .snapshot import labels_changed_since

logger = logging.getLogger(__name__)
MAX_EPOCHS = 500
MAX_SEED = 2**31 - 1  # the column is a 32-bit integer; torch and numpy take any seed in 0..2**32-1


class TrainingRunInvalid(InvalidInput):
    """A request that cannot become a run (unknown recipe, bad epochs, ...); the message says why."""

    code = "training_run_invalid"


class TrainingRunBusy(Conflict):
    """Another run is queued or running; only one trains at a time."""

    code = "training_busy"


class TrainingRunStateError(Conflict):
    """The run is not in a state that allows this (cancel a finished run, retry a succeeded one)."""

    code = "training_run_state"


def _recipe_resolve(*, recipe_name: str, epochs: int | None, soft_label_mode: str,
                    recipe_overrides: dict | None):
    from ml.recipes import apply_overrides, get_recipe

    try:
        recipe = get_recipe(recipe_name)
    except ValueError as exc:
        raise TrainingRunInvalid(str(exc)) from None
    if epochs is not None and not 1 <= epochs <= MAX_EPOCHS:
        raise TrainingRunInvalid(f"epochs must be between 1 and {MAX_EPOCHS}")
    if soft_label_mode not in SOFT_LABEL_MODES:
        raise TrainingRunInvalid(f"unknown soft-label mode {soft_label_mode!r}; choose one of "
                                 f"{', '.join(SOFT_LABEL_MODES)}")
    try:
        recipe = apply_overrides(recipe, {} if recipe_overrides is None else recipe_overrides)
    except ValueError as exc:
        raise TrainingRunInvalid(str(exc)) from None
    if epochs is None and recipe.epochs > MAX_EPOCHS:  # set by an override
        raise TrainingRunInvalid(f"recipe field 'epochs' must be between 1 and {MAX_EPOCHS}, not {recipe.epochs}")
    return recipe.with_overrides(soft_label_mode=soft_label_mode, **({} if epochs is None else {"epochs": epochs}))


def _lock_training() -> TrainingSettings:
    row, _ = TrainingSettings.objects.select_for_update().get_or_create(pk=1)
    return row


def _busy_run() -> TrainingRun | None:
    return TrainingRun.objects.filter(status__in=[WorkStatus.QUEUED, WorkStatus.RUNNING]).first()


def _busy_message(run: TrainingRun) -> str:
    where = ""
    if run.status == WorkStatus.RUNNING and run.history:
        where = f", epoch {run.history[-1].get('epoch')}/{run.epochs}"
    return (f"training run #{run.pk} is {run.status}{where}; only one run trains at a time. "
            "Wait for it to finish or cancel it.")


def _enqueue(run_id: int) -> None:
    work_send(TRAINING_RUN, run_id)


def training_run_create(*, trigger: str, created_by=None, recipe_name: str = "default", epochs: int | None = None,
                        seed: int = 0, soft_label_mode: str = "majority",
                        recipe_overrides: dict | None = None,
                        exclude_cross_split_duplicates: bool = False) -> TrainingRun:
    """Record a queued run (not sent to a worker; see ``training_run_start``).

    Refused with ``TrainingRunBusy`` while another run is queued or running (stale running runs are swept first).
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise TrainingRunInvalid(f"seed must be an integer between 0 and {MAX_SEED}, not {seed!r}")
    recipe = _recipe_resolve(recipe_name=recipe_name, epochs=epochs, soft_label_mode=soft_label_mode,
                             recipe_overrides=recipe_overrides)
    if exclude_cross_split_duplicates and near_duplicate_run_latest() is None:
        raise TrainingRunInvalid("no near-duplicate search has succeeded yet, so there are no cross-split duplicates "
                                 "to leave out: run one first (manage.py find_near_duplicates or the near-duplicates "
                                 "page)")
    training_runs_sweep_stale()
    with transaction.atomic():
        _lock_training()
        busy = _busy_run()
        if busy is not None:
            raise TrainingRunBusy(_busy_message(busy))
        init_version = None
        if recipe.warm_start:
            init_version, recipe = _warm_start_from_active(recipe)
        return TrainingRun.objects.create(
            trigger=trigger, created_by=created_by, recipe_name=recipe_name, recipe=recipe.as_dict(),
            arch=recipe.arch, epochs=recipe.epochs, seed=seed, soft_label_mode=soft_label_mode,
            init_version=init_version, exclude_cross_split_duplicates=bool(exclude_cross_split_duplicates),
        )


def _warm_start_from_active(recipe):
    """A warm-start recipe trains the active version's architecture, from its weights."""
    active = model_version_active()
    if active is None:
        raise TrainingRunInvalid(f"recipe {recipe.name!r} starts from the active model version's weights, and no "
                                 "version is active; train from scratch (recipe 'default') or activate one")
    arch_kwargs = (active.config or {}).get("arch_kwargs") or {}
    arch_kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in arch_kwargs.items() if k != "pretrained_path"}
    return active, recipe.with_overrides(arch=active.arch, arch_kwargs=arch_kwargs)


def training_run_start(**kwargs) -> TrainingRun:
    """``training_run_create``, then send ``training.run`` (queue ``bulk``) once the row is committed."""
    with transaction.atomic():
        run = training_run_create(**kwargs)
        _enqueue(run.pk)
    return run


def training_run_cancel(*, run_id: int) -> TrainingRun:
    """A queued run is cancelled at once; a running one at its next progress event (between batches)."""
    return work_cancel(TRAINING_RUN, run_id, state_error=TrainingRunStateError)


def training_run_retry(*, run_id: int) -> TrainingRun:
    """Queue a failed run again and send it to a worker; it resumes from its last epoch checkpoint and trains on the
    same label snapshot."""
    with transaction.atomic():
        run = training_run_requeue(run_id=run_id)
        _enqueue(run.pk)
    return run


def training_run_requeue(*, run_id: int) -> TrainingRun:
    """Put a failed run back to queued (the state change of ``training_run_retry``, without sending it)."""
    work_get(TRAINING_RUN, run_id)  # NotFound first
    training_runs_sweep_stale()
    with transaction.atomic():
        _lock_training()
        busy = _busy_run()
        if busy is not None and busy.pk != run_id:
            raise TrainingRunBusy(_busy_message(busy))
        return work_requeue(TRAINING_RUN, run_id, from_statuses=(WorkStatus.FAILED,),
                            state_error=TrainingRunStateError, refusal="only failed runs are retried")


def training_runs_sweep_stale(*, now=None) -> list[int]:
    """The sweeper (``apps.core.work``) for training runs only: a running run whose worker has not been heard of for
    ``WORK_HEARTBEAT_TIMEOUT`` seconds (SIGKILL, OOM) goes back to queued and resumes from its last epoch checkpoint
    (failed after its attempts); a queued run whose message was lost is sent again. The ids it re-queued or
    failed."""
    report = work_sweep(now=now, kinds=[TRAINING_RUN])[TRAINING_RUN.name]
    return report["requeued"] + report["failed"]


def training_periodic_check() -> dict:
    """The beat task's work: sweep stale runs, then start a run if enough labels changed since the active
    version's snapshot (``TrainingSettings.min_changed``)."""
    swept = training_runs_sweep_stale()
    config, _ = TrainingSettings.objects.get_or_create(pk=1)
    result: dict = {"swept": swept, "threshold": config.min_changed, "started": None}
    if not config.auto_enabled:
        return {**result, "skipped": "periodic training is disabled in the training settings"}
    busy = _busy_run()
    if busy is not None:
        return {**result, "skipped": f"run #{busy.pk} is {busy.status}"}
    changed = labels_changed_since(model_version_active())
    result["changed"] = changed
    if changed < config.min_changed:
        return {**result, "skipped": f"{changed} label(s) changed, fewer than {config.min_changed}"}
    try:
        run = training_run_start(trigger=TrainingRun.Trigger.SCHEDULE, recipe_name=config.auto_recipe,
                                 epochs=config.auto_epochs, soft_label_mode=config.auto_soft_label_mode)
    except (TrainingRunBusy, TrainingRunInvalid) as exc:  # busy, or finetune with no active version
        return {**result, "skipped": str(exc)}
    return {**result, "started": run.pk}
