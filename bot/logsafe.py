"""Logs without secrets or people's data.

Platform tokens travel in places libraries like to log: aiogram and the Zalo bot API put the
token in every request URL, the Zalo OA token pair is stored in the database (and the
database driver logs every statement with its parameters at DEBUG). Two measures:

- the loggers that dump statement parameters (aiosqlite at DEBUG, SQLAlchemy's engine echo)
  are kept at INFO/WARNING whatever the level asked for: their parameters are phones, names
  and tokens, which no log should hold (Nghị định 13/2023 as much as security);
- a filter on the log handlers replaces the configured secrets, and anything shaped like a
  token (a Bot API URL, an ``access_token``/``refresh_token`` value), by ``***`` in the
  message and in tracebacks. Shapes matter because the OA tokens rotate while the bot runs.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from bot.config import Settings

MASK = "***"
_SHAPES = (
    # Telegram and Zalo Bot API URLs: /bot<id>:<secret>/method
    (re.compile(r"(/bot)\d+:[A-Za-z0-9_-]+"), r"\1" + MASK),
    # JSON or Python reprs of token fields: "access_token": "…", 'refresh_token': '…'
    (
        re.compile(
            r"""(["'](?:access_token|refresh_token|secret_token|secret_key)["']\s*:\s*["'])[^"']+"""
        ),
        r"\1" + MASK,
    ),
    # Query strings and form bodies: access_token=…
    (
        re.compile(r"\b((?:access_token|refresh_token|secret_token|secret_key)=)[^&\s'\"]+"),
        r"\1" + MASK,
    ),
)
# Loggers whose records carry statement parameters (people's data, stored tokens).
_PARAMETER_LOGGERS = {"aiosqlite": logging.INFO, "sqlalchemy.engine": logging.WARNING}


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, MASK)
    for pattern, replacement in _SHAPES:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """Rewrites a record whose message or traceback holds a secret; never drops one."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        # Longest first: a token's secret part must not be masked before the whole token.
        self.secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: logging reports it itself later
            return True
        clean = redact(message, self.secrets)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.secrets)
        return True


def settings_secrets(settings: Settings) -> list[str]:
    """Every secret the settings hold, and the secret part of ``<id>:<secret>`` tokens."""
    values = [
        settings.telegram_token,
        settings.zalo_token,
        *(
            field.get_secret_value().strip() if field is not None else None
            for field in (
                settings.zalo_oa_secret,
                settings.zalo_oa_webhook_secret,
                settings.zalo_oa_access_token,
                settings.zalo_oa_refresh_token,
                settings.zalo_webhook_secret,
                settings.telegram_webhook_secret,
            )
        ),
    ]
    secrets = [v for v in values if v]
    secrets += [v.split(":", 1)[1] for v in secrets if ":" in v]
    return secrets


def protect_logs(settings: Settings, root: logging.Logger | None = None) -> RedactSecrets:
    """Install the redaction on the root logger's handlers and quiet the parameter dumps."""
    root = root or logging.getLogger()
    for name, floor in _PARAMETER_LOGGERS.items():
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < floor:
            logger.setLevel(floor)
    guard = RedactSecrets(settings_secrets(settings))
    for handler in root.handlers:
        handler.addFilter(guard)
    return guard
