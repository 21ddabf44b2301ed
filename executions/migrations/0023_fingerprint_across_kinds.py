"""Fingerprints no longer hold the kind and handler where there is a message (issue 20: one error
group across names and kinds): recompute the stored ones from their messages. On PostgreSQL the
failure-count triggers move the counts to the new fingerprints as the rows change."""

from django.db import migrations

from executions.fingerprints import fingerprint

BATCH = 2000


def recompute(apps, schema_editor) -> None:
    for model in apps.get_app_config("executions").get_models():
        names = {f.name for f in model._meta.concrete_fields}
        if not {"fingerprint", "error_message"} <= names:
            continue
        rows = (
            model.objects.exclude(fingerprint="")
            .exclude(error_message__isnull=True)
            .exclude(error_message="")
            .only("pk", "fingerprint", "error_message")
        )
        changed = []
        for row in rows.iterator(chunk_size=BATCH):
            new = fingerprint("", "", "", row.error_message)
            if new != row.fingerprint:
                row.fingerprint = new
                changed.append(row)
            if len(changed) >= BATCH:
                model.objects.bulk_update(changed, ["fingerprint"])
                changed = []
        if changed:
            model.objects.bulk_update(changed, ["fingerprint"])


class Migration(migrations.Migration):
    dependencies = [("executions", "0022_queue_pause")]

    operations = [migrations.RunPython(recompute, migrations.RunPython.noop)]
