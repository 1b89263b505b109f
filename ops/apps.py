from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Operations: /metrics, /readyz, request ids, structured logs."""

    name = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        from ops import celery_signals  # noqa: F401 - connects the receivers
