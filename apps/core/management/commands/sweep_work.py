"""``manage.py sweep_work``: one pass of the sweeper that beat runs every ``WORK_SWEEP_SECONDS``
(``apps.core.work.work_sweep``), with what it did per kind of work."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from apps.core.broker import BrokerUnreachable, queue_lengths
from apps.core.work import QUEUES, work_sweep

ACTIONS = (("resent", "re-sent"), ("requeued", "re-queued"), ("failed", "failed"))


class Command(BaseCommand):
    help = ("Send queued jobs whose message is not in the broker again, and put running jobs whose worker stopped "
            "sending heartbeats back to queued (failed after their attempts): what beat's sweeper does, once.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--json", action="store_true", help="Print {kind: {resent, requeued, failed}} as JSON.")

    def handle(self, *args, **options) -> None:
        report = work_sweep()
        if options["json"]:
            self.stdout.write(json.dumps(report, sort_keys=True))
            return
        try:
            queue_lengths(QUEUES)
        except BrokerUnreachable as exc:
            self.stderr.write(f"the broker does not answer ({exc}): queued jobs stay queued and are sent on a "
                              "later sweep")
        for kind, done in report.items():
            parts = [f"{label} {len(done[key])} ({', '.join(map(str, done[key]))})"
                     for key, label in ACTIONS if done[key]]
            self.stdout.write(f"{kind}: {'; '.join(parts) if parts else 'nothing to do'}")
