"""Structured logging with a request id on every line.

Log lines carry ids and outcomes, never personal health information, passwords or tokens: the
access log records the route path without its query string, and nothing here logs bodies.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from server.settings import LoggingSettings

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime"}
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        entry.update(
            {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS and k[0] != "_"}
        )
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS and k[0] != "_"}
        request_id = request_id_var.get()
        parts = [
            datetime.fromtimestamp(record.created, UTC).strftime("%H:%M:%S"),
            record.levelname.ljust(7),
            record.name,
            record.getMessage(),
        ]
        if request_id:
            parts.append(f"request_id={request_id}")
        parts.extend(f"{k}={v}" for k, v in extras.items())
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(settings: LoggingSettings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.format == "json" else ConsoleFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level)
    # aiortc/aioice narrate every ICE check at INFO; keep them for debugging only.
    for noisy in ("aioice", "aiortc", "engineio.server", "socketio.server", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
