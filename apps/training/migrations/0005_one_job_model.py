"""The one job model: a run's epochs are its ``history``; ``progress`` is the latest event, as on every job row."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("training", "0004_finetune"),
    ]

    operations = [
        migrations.RenameField(model_name="trainingrun", old_name="progress", new_name="history"),
        migrations.RenameField(model_name="trainingrun", old_name="current", new_name="progress"),
        migrations.AlterField(
            model_name="trainingrun",
            name="history",
            field=models.JSONField(blank=True, default=list, help_text="One entry per finished epoch."),
        ),
        migrations.AlterField(
            model_name="trainingrun",
            name="progress",
            field=models.JSONField(blank=True, default=dict, help_text="The latest progress event of the running job."),
        ),
        migrations.AlterField(
            model_name="trainingrun",
            name="error",
            field=models.TextField(
                blank=True, help_text="Why it failed or was cancelled, or a note on its last attempt."
            ),
        ),
        migrations.AlterField(
            model_name="trainingrun",
            name="worker",
            field=models.CharField(
                blank=True, help_text="host:pid of the process that last claimed it.", max_length=200
            ),
        ),
    ]
