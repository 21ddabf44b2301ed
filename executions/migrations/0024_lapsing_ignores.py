# Ignores until a date end on time: the reaper round's sweep (triage.lapse_ignores) reads these.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('executions', '0023_fingerprint_across_kinds'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='automationexecution',
            index=models.Index(condition=models.Q(('triage', 'ignored'), ('triage_until__isnull', False)), fields=['triage_until'], name='autoexec_ignored_until'),
        ),
        migrations.AddIndex(
            model_name='failuregroup',
            index=models.Index(condition=models.Q(('state', 'ignored'), ('until__isnull', False)), fields=['until'], name='failuregroup_ignored_until'),
        ),
        migrations.AddIndex(
            model_name='functionexecution',
            index=models.Index(condition=models.Q(('triage', 'ignored'), ('triage_until__isnull', False)), fields=['triage_until'], name='fnexec_ignored_until'),
        ),
        migrations.AddIndex(
            model_name='job',
            index=models.Index(condition=models.Q(('triage', 'ignored'), ('triage_until__isnull', False)), fields=['triage_until'], name='job_ignored_until'),
        ),
        migrations.AddIndex(
            model_name='run',
            index=models.Index(condition=models.Q(('triage', 'ignored'), ('triage_until__isnull', False)), fields=['triage_until'], name='run_ignored_until'),
        ),
        migrations.AddIndex(
            model_name='webhookdelivery',
            index=models.Index(condition=models.Q(('triage', 'ignored'), ('triage_until__isnull', False)), fields=['triage_until'], name='webhook_delivery_ignored_until'),
        ),
        migrations.AddIndex(
            model_name='workflowexecution',
            index=models.Index(condition=models.Q(('triage', 'ignored'), ('triage_until__isnull', False)), fields=['triage_until'], name='wfexec_ignored_until'),
        ),
    ]
