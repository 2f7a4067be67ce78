"""Log output: the usual text lines, or one JSON object per line (``THIDUA_LOG_FORMAT=json``).

The JSON form is for a log collector, which keeps logs longer and shows them to more people
than a terminal does, so it holds no personal data: besides the secrets the redaction filter
(bot.logsafe) masks, the SQL and parameters that database errors carry ("[parameters: …]",
names and phones) are cut, and phone numbers and chat ids (runs of 9 or more digits) are
masked. What is left says what happened, where and when, not to whom.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

from bot.config import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MASK = "***"
# "[SQL: …]" and "[parameters: …]" of SQLAlchemy errors, up to the end of their line.
_STATEMENT = re.compile(r"\[(?:SQL|parameters|generated in [^\]]*)[^\n]*")
# Phone numbers (0912345678, +84912345678) and platform chat ids: long runs of digits.
_LONG_NUMBER = re.compile(r"\+?\d{9,}")


def scrub(text: str) -> str:
    """The text without statements, statement parameters, phone numbers or chat ids."""
    return _LONG_NUMBER.sub(MASK, _STATEMENT.sub("[statement not logged]", text))


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message"[, "error", "traceback"]}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, str] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        if record.exc_info and record.exc_info[1] is not None:
            entry["error"] = type(record.exc_info[1]).__name__
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["traceback"] = scrub(record.exc_text)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(settings: Settings) -> None:
    """The root logger to stderr, in the chosen format, at the chosen level."""
    level = int(logging.getLevelName(settings.log_level))
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler])
    if level > logging.DEBUG:
        # Alembic reports its context at INFO on every command; only useful when debugging.
        logging.getLogger("alembic").setLevel(logging.WARNING)
