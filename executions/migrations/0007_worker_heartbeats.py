import django.utils.timezone
from django.db import migrations, models

# The reaper looks for django-tasks-db tasks RUNNING under a worker that stopped beating (see
# executions/heartbeats.py). Finished task rows pile up; this partial index holds only the few
# running ones, so that look-up stays a handful of index entries however many there are.
RUNNING_TASKS_INDEX = (
    "CREATE INDEX IF NOT EXISTS redrive_running_tasks ON django_tasks_database_dbtaskresult "
    "(started_at) WHERE status = 'RUNNING'"
)


class Migration(migrations.Migration):
    dependencies = [
        ("executions", "0006_lean_evidence_indexes"),
        ("django_tasks_database", "0021_conditional_partial_index_ordering"),
    ]

    operations = [
        migrations.CreateModel(
            name="WorkerHeartbeat",
            fields=[
                ("worker_id", models.CharField(max_length=64, primary_key=True, serialize=False)),
                ("hostname", models.CharField(max_length=255)),
                ("pid", models.PositiveIntegerField()),
                ("started_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("seen_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
        ),
        migrations.RunSQL(RUNNING_TASKS_INDEX, "DROP INDEX IF EXISTS redrive_running_tasks"),
    ]
