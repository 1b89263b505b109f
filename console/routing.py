"""WebSocket routes of the console app (collected by config.routing)."""

from django.urls import path

from console.consumers import WorkersConsoleConsumer

websocket_urlpatterns: list = [
    path("ws/admin/notebook-workers/", WorkersConsoleConsumer.as_asgi()),
]
