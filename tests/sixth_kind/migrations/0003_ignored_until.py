from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("sixth_kind", "0002_triage"),
    ]

    operations = [
        # As every kind's table (executions 0024): triage.lapse_ignores reads it.
        migrations.AddIndex(
            model_name="ticket",
            index=models.Index(
                condition=models.Q(("triage", "ignored"), ("triage_until__isnull", False)),
                fields=["triage_until"],
                name="ticket_ignored_until",
            ),
        ),
    ]
