from django.apps import AppConfig


class ResourceClassesConfig(AppConfig):
    name = "resource_classes"
    verbose_name = "Resource classes"
