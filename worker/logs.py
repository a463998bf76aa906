"""The one logging setup: `configure(worker_settings)`, called once when a process starts.

Every record leaves through one stderr handler carrying a redaction filter, so no token,
client secret or password reaches a log line whoever wrote the message (DESIGN §5 S5).
With `log_format = "json"` each record is one JSON object a line; extra fields passed as
`extra={...}` (directory, run_id, status, ...) become keys.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from config.settings import WorkerSettings

MASK = "***"

# Each pattern keeps its first group (the label) and masks what follows it.
_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"(\bSSWS\s*)[A-Za-z0-9._~+/=-]{6,}"),
    re.compile(r"(\bBearer\s+)[A-Za-z0-9._~+/=-]{6,}", re.IGNORECASE),
    re.compile(r"(\bBasic\s+)[A-Za-z0-9+/=]{8,}"),
    # key=value, key: value, "key": "value" for secret-looking keys
    re.compile(
        r"""((?:client[_-]?secret|secret|password|passwd|pwd|api[_-]?key|api[_-]?token|access[_-]?token|"""
        r"""refresh[_-]?token|id[_-]?token|token|private[_-]?key|client[_-]?assertion)"""
        r"""["']?\s*[=:]\s*["']?)[^\s"'&,;}]+""",
        re.IGNORECASE,
    ),
    # credentials inside a URL: scheme://user:password@host
    re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+(?=@)", re.IGNORECASE),
    # a JSON Web Token anywhere
    re.compile(r"()\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),
    re.compile(r"(-----BEGIN [A-Z ]*PRIVATE KEY-----)[\s\S]*?(?=-----END)"),
)

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def redact(text: str) -> str:
    """`text` with every secret-looking value replaced by `***`."""
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


class RedactFilter(logging.Filter):
    """Renders each record's message (and traceback) once, redacted, before any formatter."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, redact(value))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info or record.exc_text:
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        return json.dumps(entry, default=str, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(worker_settings: WorkerSettings, stream: Any = None) -> None:
    """Install the one handler on the root logger (replacing any earlier one from here).

    Promise: calling it again reconfigures rather than duplicating output; every record
    from any logger passes the redaction filter; the level is `worker_settings.log_level`.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_dirsync", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler._dirsync = True  # type: ignore[attr-defined]
    handler.addFilter(RedactFilter())
    if worker_settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(worker_settings.log_level.upper())
    # Schema migrations announce every step at INFO; only their problems belong in our log.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
