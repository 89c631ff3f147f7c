"""Gold items already set before the rule "gold faces come only from scored, labelled Training faces" (0007's code):

- an open gold item on such a face takes the face's latest score (probabilities, suggestion, place in the queue),
  as ``review_gold_set`` gives it now, so that it is served like any other item;
- an open gold item on any other face (PublicTest, PrivateTest, an upload, an excluded or unscored face) is deleted,
  with its votes and first answers: a lease would hand that face to reviewers, and an item without a score could be
  told apart from the others, so its answers never measured a blind reviewer. Gold items never change a label, so no
  label or history row depends on it.

Reversing leaves the items as they are."""

from django.db import migrations

OPEN = ("open", "reopened")


def forwards(apps, schema_editor):
    Item, Score = apps.get_model("review", "ReviewItem"), apps.get_model("review", "LabelScore")
    doomed = []
    for item in Item.objects.filter(is_gold=True, status__in=OPEN).select_related("face"):
        face = item.face
        score = None
        if face.split == "Training" and not face.excluded and face.current_label is not None:
            score = Score.objects.filter(face_id=face.pk).order_by("-run__created_at", "-pk").first()
        if score is None:
            doomed.append(item.pk)
            continue
        item.score_id, item.priority = score.pk, score.quality
        item.suggested_label, item.suggested_probability = score.suggested_label, score.suggested_probability
        item.save(update_fields=["score", "priority", "suggested_label", "suggested_probability"])
    Item.objects.filter(pk__in=doomed).delete()


class Migration(migrations.Migration):
    dependencies = [("review", "0007_vote_undo")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
