from django.urls import path

from console import views

app_name = "console"
urlpatterns = [
    path("", views.console, name="console"),
    path("health/", views.health, name="health"),
    path("health/data.json", views.health_data, name="health_data"),
    path("<uuid:worker_id>/", views.detail, name="detail"),
    path("<uuid:worker_id>/row/", views.row, name="row"),
    path("<uuid:worker_id>/<slug:name>/", views.action, name="action"),
]
