"""WebSocket routes of the workspaces app (collected by config.routing)."""

from django.urls import path

from workspaces.consumers import WorkspacesConsumer

websocket_urlpatterns: list = [
    path("ws/workspaces/", WorkspacesConsumer.as_asgi()),
]
