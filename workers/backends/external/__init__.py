"""The external backend: ``client.py`` speaks the runtime gateway protocol
(``docs/runtime-gateway.openapi.yaml``); ``server.py`` is the reference
gateway that serves it with the local backend (``python -m
workers.backends.external``)."""

from .client import ExternalBackend

__all__ = ["ExternalBackend"]
