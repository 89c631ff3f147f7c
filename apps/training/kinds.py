"""The training app's units of work (``apps.core.work``), registered in ``TrainingConfig.ready``."""

from __future__ import annotations

from apps.core.work import WorkKind

TRAINING_RUN = WorkKind(name="training_run", label="training runs", model="training.TrainingRun", task="training.run")

KINDS = (TRAINING_RUN,)
