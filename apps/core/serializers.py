"""Shapes of the platform core's API answers (documentation: the status answer is built as a dict)."""

from __future__ import annotations

from rest_framework import serializers

from .status import ALERT_CODES

STATUS_LEVELS = ["ok", "amber", "red"]
STATUS_LEVEL_HELP = "red: nothing moves until someone acts; amber: the sweeper is about to repair it; ok."


class StatusAlertSerializer(serializers.Serializer):
    """One thing that looks stuck, said in a sentence (what the sweeper will do about it, where it will)."""

    level = serializers.ChoiceField(choices=STATUS_LEVELS, help_text="Never ok here. " + STATUS_LEVEL_HELP)
    code = serializers.ChoiceField(choices=ALERT_CODES)
    text = serializers.CharField()


class PlatformAlertSerializer(StatusAlertSerializer):
    where = serializers.CharField(help_text='"database", "broker", "sweeper", "queue <name>" or the label of a kind '
                                                  'of job.')


class StatusQueueSerializer(serializers.Serializer):
    queue = serializers.CharField()
    messages = serializers.IntegerField(allow_null=True, help_text="Waiting in the broker; null: the broker is down.")
    workers = serializers.ListField(child=serializers.CharField(), allow_null=True,
                                    help_text="Workers consuming this queue; null: unknown (the broker is down).")
    kinds = serializers.ListField(child=serializers.CharField(), help_text="Kinds of job routed to this queue.")
    queued = serializers.IntegerField(allow_null=True, help_text="Their queued rows; null: the database is down.")
    running = serializers.IntegerField(allow_null=True)
    oldest_queued_at = serializers.DateTimeField(allow_null=True, help_text="Creation of the oldest queued row.")
    oldest_queued_kind = serializers.CharField(allow_null=True)
    oldest_queued_id = serializers.IntegerField(allow_null=True)
    oldest_wait_s = serializers.FloatField(allow_null=True, help_text="How long the oldest queued row has waited.")
    oldest_wait = serializers.CharField(allow_null=True, help_text='The same, for people: "3 min 12 s".')
    waiting = serializers.CharField(allow_null=True, help_text=(
        "When a worker consumes the queue and jobs wait: what they wait their turn behind. Never an alarm, however "
        "long they wait; a missing message or a stopped heartbeat has an alert of its own."))
    level = serializers.ChoiceField(choices=STATUS_LEVELS, help_text=STATUS_LEVEL_HELP)
    alerts = StatusAlertSerializer(many=True)


class StatusFailureSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    at = serializers.DateTimeField(help_text="When it failed (its creation, if no end was recorded).")
    ago = serializers.CharField(help_text='"5 min 3 s ago".')
    error = serializers.CharField(help_text="The recorded error, cut at 300 characters.")
    admin_url = serializers.CharField(allow_null=True, help_text="The row in the Django admin; null: none there.")


class StatusKindSerializer(serializers.Serializer):
    kind = serializers.CharField(help_text='"prediction_chunk", "split_job", "scoring_run", "training_run", ...')
    label = serializers.CharField()
    queue = serializers.CharField()
    max_attempts = serializers.IntegerField()
    queued = serializers.IntegerField()
    running = serializers.IntegerField()
    failed = serializers.IntegerField()
    oldest_queued_at = serializers.DateTimeField(allow_null=True)
    oldest_queued_id = serializers.IntegerField(allow_null=True)
    oldest_wait_s = serializers.FloatField(allow_null=True)
    oldest_wait = serializers.CharField(allow_null=True)
    running_id = serializers.IntegerField(allow_null=True, help_text="The running row that started first.")
    never_sent = serializers.IntegerField(help_text="Queued rows whose message never reached the broker.")
    lost_running = serializers.IntegerField(help_text="Running rows with no heartbeat for WORK_HEARTBEAT_TIMEOUT: "
                                                      "the sweeper queues them again, or fails them.")
    lost_running_ids = serializers.ListField(child=serializers.IntegerField(), help_text="The first ten.")
    lost_running_final = serializers.IntegerField(help_text="Of those, the ones the sweeper will fail (no attempts "
                                                            "left).")
    resend_due = serializers.IntegerField(help_text="Queued rows the sweeper sends again on its next pass: waiting "
                                                    "longer than WORK_RESEND_AFTER with no message in the broker.")
    resend_due_ids = serializers.ListField(child=serializers.IntegerField(), help_text="The first ten.")
    message_missing = serializers.IntegerField(help_text="Of those, the ones sent before whose message is gone "
                                                         "from the broker (0 when the broker cannot be read).")
    latest_failures = StatusFailureSerializer(many=True, help_text="The last three failed rows, newest first.")
    level = serializers.ChoiceField(choices=STATUS_LEVELS, help_text=STATUS_LEVEL_HELP)
    alerts = StatusAlertSerializer(many=True)


class StatusThresholdsSerializer(serializers.Serializer):
    resend_after_s = serializers.IntegerField(help_text="WORK_RESEND_AFTER: a queued job waiting longer with no "
                                                        "message in the broker is sent again.")
    heartbeat_timeout_s = serializers.IntegerField(help_text="WORK_HEARTBEAT_TIMEOUT: a running job silent longer "
                                                             "is lost.")


class StatusSweeperSerializer(serializers.Serializer):
    """Beat's schedule of ``core.sweep_work``, which sends lost messages again and takes back lost jobs."""

    scheduled = serializers.BooleanField()
    enabled = serializers.BooleanField()
    every_s = serializers.FloatField(allow_null=True, help_text="Its interval; null: not an interval schedule.")
    last_run_at = serializers.DateTimeField(allow_null=True, help_text="Last time beat sent it (written by beat "
                                                                       "every 3 min).")
    last_run_ago = serializers.CharField(allow_null=True)
    admin_url = serializers.CharField(help_text="Beat's periodic tasks in the Django admin.")
    level = serializers.ChoiceField(choices=STATUS_LEVELS, help_text=STATUS_LEVEL_HELP)
    alerts = StatusAlertSerializer(many=True)


class StatusSerializer(serializers.Serializer):
    """Shape of ``GET /api/status/`` (documentation only)."""

    checked_at = serializers.DateTimeField()
    level = serializers.ChoiceField(choices=STATUS_LEVELS, help_text="The worst alert's; " + STATUS_LEVEL_HELP)
    alerts = PlatformAlertSerializer(many=True, help_text="Every alert of the queues and kinds, red first.")
    thresholds = StatusThresholdsSerializer()
    sweeper = StatusSweeperSerializer(allow_null=True, help_text="Null when the database is down.")
    database = serializers.DictField()
    broker = serializers.DictField()
    queues = serializers.DictField(child=serializers.IntegerField(allow_null=True),
                                   help_text="Messages waiting per queue; empty when the broker is down.")
    queues_error = serializers.CharField()
    queue_details = StatusQueueSerializer(many=True)
    jobs_by_kind = StatusKindSerializer(many=True, help_text="Empty when the database is down.")
    workers = serializers.ListField(child=serializers.DictField())
    workers_error = serializers.CharField()
    active_model = serializers.DictField(allow_null=True)
    jobs = serializers.ListField(child=serializers.DictField(), help_text="Split prediction jobs queued or running.")
