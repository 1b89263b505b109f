from django.apps import AppConfig


class ProjectConfig(AppConfig):
    """The project package: settings, URLs, ASGI, Celery and ``manage.py serve``."""

    name = "config"
    verbose_name = "Notebook Fleet"

    def ready(self) -> None:
        from config import checks  # noqa: F401 - registers the system checks
