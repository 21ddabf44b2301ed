from django.apps import AppConfig


class ExecutionsConfig(AppConfig):
    name = "executions"
    verbose_name = "Redrive executions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import handlers

        handlers.discover()
