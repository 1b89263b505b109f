"""Access server's confirmation at ``/w-access/<worker-id>/`` and the pages
behind ``/w/<id>/…`` (reached only when the proxy hands a request over).
``/w-auth/<id>/`` is answered by ``proxy.asgi`` itself (``proxy.frontauth``)."""

from django.urls import path, re_path

from proxy import views

app_name = "proxy"
urlpatterns = [
    path("w-access/<uuid:worker_id>/", views.access_server, name="access"),
    re_path(
        r"^w/(?P<workspace_id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/(?P<rest>.*)$",
        views.workspace_unavailable,
        name="unavailable",
    ),
]
