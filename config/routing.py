"""WebSocket routes; each app contributes its own list."""

from console.routing import websocket_urlpatterns as console_routes

websocket_urlpatterns = [*console_routes]
