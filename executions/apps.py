from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.db.models.signals import post_migrate


def _count_failures(using: str, **kwargs) -> None:
    """After every migrate: a kind's failures are counted from its first migrate on."""
    from . import failure_counts, kinds

    if using == "default":
        failure_counts.install(kinds.KINDS)


class ExecutionsConfig(AppConfig):
    name = "executions"
    verbose_name = "Redrive executions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.tasks.signals import task_enqueued

        from . import handlers, lockout, queueing  # noqa: F401 (lockout connects the audit of sign-in lockouts)

        handlers.discover()
        task_enqueued.connect(queueing.wake_workers)
        post_migrate.connect(_count_failures, sender=self)


class RedriveAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with Redrive's site, which tenant admins can open (adminsite.py).
    Named in INSTALLED_APPS; `default = False` keeps ExecutionsConfig this app's config."""

    default = False
    default_site = "executions.adminsite.RedriveAdminSite"
