from django.urls import path

from console import views

app_name = "console"
urlpatterns = [
    path("", views.console, name="console"),
    path("<uuid:worker_id>/", views.detail, name="detail"),
    path("<uuid:worker_id>/row/", views.row, name="row"),
    path("<uuid:worker_id>/<slug:name>/", views.action, name="action"),
]
