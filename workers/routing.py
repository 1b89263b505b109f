"""WebSocket routes of the workers app (collected by config.routing)."""

from django.urls import path

from workers.consumers import WorkersConsoleConsumer

websocket_urlpatterns: list = [
    path("ws/admin/notebook-workers/", WorkersConsoleConsumer.as_asgi()),
]
