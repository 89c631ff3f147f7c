"""The one base of every unit-of-work row (uploads' prediction chunks, split jobs, scoring, training and faithfulness
runs): the row, not the broker, is the truth about a job. ``apps.core.work`` runs every kind the same way."""

from __future__ import annotations

from django.db import models


class WorkStatus(models.TextChoices):
    """One vocabulary for every kind of job."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class WorkRow(models.Model):
    """Abstract: the job's state, why it failed, when it was made, started and finished, how often it was claimed,
    when it was last handed to the broker and last heard of, its latest progress event, and a cancel request."""

    Status = WorkStatus
    FINISHED = (WorkStatus.SUCCEEDED, WorkStatus.FAILED, WorkStatus.CANCELLED)

    status = models.CharField(max_length=16, choices=WorkStatus.choices, default=WorkStatus.QUEUED, db_index=True)
    error = models.TextField(blank=True, help_text="Why it failed or was cancelled, or a note on its last attempt.")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Times a worker claimed it.")
    last_sent_at = models.DateTimeField(null=True, blank=True,
                                        help_text="Last time its message reached the broker (empty: never).")
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last sign of life from the worker.")
    worker = models.CharField(max_length=200, blank=True, help_text="host:pid of the process that last claimed it.")
    progress = models.JSONField(default=dict, blank=True, help_text="The latest progress event of the running job.")
    cancel_requested = models.BooleanField(default=False)

    class Meta:
        abstract = True

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED
