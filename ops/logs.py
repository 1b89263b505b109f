"""Log record filters and the JSON formatter, wired in ``LOGGING``.

``ContextFilter`` adds the request id, user id and worker id bound for the
current request or task (``ops.log_context``); an id given with
``extra={"worker_id": ...}`` wins. ``SanitizeFilter`` redacts every record
before any handler formats it: message, arguments and traceback go through
``workers.sanitize.sanitize``, so no formatter (plain, JSON, Celery's) can
write a token, cookie or password. ``JsonFormatter`` writes one JSON object
per line (python-json-logger) for log collectors (``LOG_FORMAT=json``).
"""

from __future__ import annotations

import logging
import traceback

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

from ops import log_context
from workers.sanitize import sanitize


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in log_context.current().items():
            if not getattr(record, name, ""):
                setattr(record, name, value)
        return True


class SanitizeFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_sanitized", False):
            return True  # a second handler: already done
        record.msg = sanitize(record.getMessage(), max_chars=None)
        record.args = ()
        if record.exc_info:
            # Formatted here so every formatter writes the sanitized text
            # (formatters reuse ``exc_text`` once exc_info is gone).
            text = "".join(traceback.format_exception(*record.exc_info)).rstrip()
            record.exc_text = sanitize(text, max_chars=None)
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = sanitize(record.exc_text, max_chars=None)
        if record.stack_info:
            record.stack_info = sanitize(record.stack_info, max_chars=None)
        record._sanitized = True
        return True


class JsonFormatter(_JsonFormatter):
    """``{"time", "level", "logger", "message", "request_id", "user_id",
    "worker_id", ...extra}``; empty ids are left out."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("fmt", "%(asctime)s %(levelname)s %(name)s %(message)s")
        kwargs.setdefault(
            "rename_fields",
            {"asctime": "time", "levelname": "level", "name": "logger"},
        )
        kwargs.setdefault("reserved_attrs", _RESERVED)
        super().__init__(*args, **kwargs)

    def process_log_record(self, log_data: dict) -> dict:
        for name in log_context.FIELDS:
            if not log_data.get(name):
                log_data.pop(name, None)
        log_data.pop("_sanitized", None)
        return log_data


# Record attributes that are not extra fields.
_RESERVED = [*RESERVED_ATTRS, "taskName", "_sanitized"]
