from django.urls import path

from workspaces import views

app_name = "workspaces"
urlpatterns = [
    path("", views.workspace_list, name="list"),
    path("new", views.workspace_new, name="new"),
    path("new/validate", views.workspace_validate, name="validate"),
    path("bulk-delete/", views.bulk_delete, name="bulk_delete"),
    path("<uuid:workspace_id>/", views.workspace_detail, name="detail"),
    path(
        "<uuid:workspace_id>/<slug:name>/",
        views.workspace_action,
        name="action",
    ),
]
