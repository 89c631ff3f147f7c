import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def backfill(apps, schema_editor):
    """Rounds of existing history rows (each reopen row closes its round), and first answers on gold items."""
    LabelHistory = apps.get_model("review", "LabelHistory")
    GoldAnswer = apps.get_model("review", "GoldAnswer")
    Vote = apps.get_model("review", "Vote")
    rounds: dict[int, int] = {}
    for entry in LabelHistory.objects.filter(item__isnull=False).order_by("created_at", "pk").iterator():
        entry.round = rounds.setdefault(entry.item_id, 1)
        entry.save(update_fields=["round"])
        if entry.kind == "reopen":
            rounds[entry.item_id] += 1
    for vote in Vote.objects.filter(item__is_gold=True).order_by("created_at", "pk").iterator():
        GoldAnswer.objects.get_or_create(
            item_id=vote.item_id,
            reviewer_id=vote.reviewer_id,
            defaults={"choice": vote.choice, "created_at": vote.created_at},
        )


class Migration(migrations.Migration):
    dependencies = [
        ("review", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="labelhistory",
            name="round",
            field=models.PositiveIntegerField(
                default=1,
                help_text="The item's voting round it belongs to (blind review).",
            ),
        ),
        migrations.CreateModel(
            name="GoldAnswer",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "choice",
                    models.PositiveSmallIntegerField(
                        choices=[
                            (0, "angry"),
                            (1, "disgust"),
                            (2, "fear"),
                            (3, "happy"),
                            (4, "sad"),
                            (5, "surprise"),
                            (6, "neutral"),
                            (7, "not a face"),
                            (8, "unsure"),
                        ]
                    ),
                ),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "item",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="gold_answers", to="review.reviewitem"
                    ),
                ),
                (
                    "reviewer",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to=settings.AUTH_USER_MODEL
                    ),
                ),
            ],
            options={
                "constraints": [models.UniqueConstraint(fields=("item", "reviewer"), name="review_one_gold_answer")],
            },
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
