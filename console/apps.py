from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """Admin → Notebook Workers: the page, its filters, actions and socket."""

    name = "console"
    verbose_name = "Notebook Workers console"
