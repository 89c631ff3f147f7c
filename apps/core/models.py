"""Fields every unit-of-work row carries (uploads' prediction chunks, split jobs, scoring, training and faithfulness
runs): the row, not the broker, is the truth about a job. See ``apps.core.work``."""

from __future__ import annotations

from django.db import models


class WorkRow(models.Model):
    """Abstract: how often the job was claimed, when it was last handed to the broker and last heard of."""

    attempts = models.PositiveSmallIntegerField(default=0, help_text="Times a worker claimed it.")
    last_sent_at = models.DateTimeField(null=True, blank=True,
                                        help_text="Last time its message reached the broker (empty: never).")
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last sign of life from the worker.")

    class Meta:
        abstract = True
