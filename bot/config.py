"""Settings, read from the environment and an optional ``.env`` file."""

from __future__ import annotations

import re
from datetime import time
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.eventloop import LoopChoice, uvloop_available

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./thidua.db"
PUBLIC_TELEGRAM_API = "https://api.telegram.org"
PUBLIC_ZALO_BOT_API = "https://bot-api.zaloplatforms.com"
PUBLIC_ZALO_OA_API = "https://openapi.zalo.me"
PUBLIC_ZALO_OAUTH = "https://oauth.zaloapp.com"
# Telegram's rule for a webhook's secret_token.
TELEGRAM_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
# A Bot API token as BotFather (and Zalo's bot platform) hand it out: <bot id>:<secret>.
BOT_TOKEN = re.compile(r"\d{1,20}:[A-Za-z0-9_-]{16,}")
DATABASE_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
REDIS_SCHEMES = ("redis", "rediss", "unix")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")


class Settings(BaseSettings):
    # hide_input_in_errors: a bad value must not print the tokens and secrets beside it.
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", hide_input_in_errors=True
    )

    telegram_bot_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("TELEGRAM_BOT_TOKEN")
    )
    telegram_api_base: str = Field(
        default=PUBLIC_TELEGRAM_API, validation_alias=AliasChoices("TELEGRAM_API_BASE")
    )
    # Telegram by webhook instead of long polling (needed for several processes): the public
    # HTTPS URL Telegram calls, path included (the route is served at that path), and a secret
    # Telegram sends back in every call (1-256 characters of A-Z, a-z, 0-9, _ and -).
    telegram_webhook_url: str | None = Field(
        default=None, validation_alias=AliasChoices("TELEGRAM_WEBHOOK_URL")
    )
    telegram_webhook_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("TELEGRAM_WEBHOOK_SECRET")
    )
    # Where this process's one web server (the web chat and every webhook) also listens;
    # each defaults to the web chat's (THIDUA_WEB_HOST, THIDUA_WEB_PORT).
    webhook_host: str | None = Field(
        default=None, validation_alias=AliasChoices("THIDUA_WEBHOOK_HOST")
    )
    webhook_port: int | None = Field(
        default=None, ge=0, le=65535, validation_alias=AliasChoices("THIDUA_WEBHOOK_PORT")
    )
    database_url: str = Field(
        default=DEFAULT_DATABASE_URL, validation_alias=AliasChoices("DATABASE_URL")
    )
    timezone: str = Field(
        default="Asia/Ho_Chi_Minh", validation_alias=AliasChoices("THIDUA_TIMEZONE")
    )
    locale: str = Field(default="vi", validation_alias=AliasChoices("THIDUA_LOCALE"))
    log_level: str = Field(default="INFO", validation_alias=AliasChoices("THIDUA_LOG_LEVEL"))
    # "json": one JSON object per log line, for a log collector (bot/logsafe.py).
    log_format: str = Field(default="text", validation_alias=AliasChoices("THIDUA_LOG_FORMAT"))
    # The web chat (served when no platform token is set, and by `thidua demo`). The default
    # host is loopback only; set 0.0.0.0 to let phones on the same LAN reach it.
    web_host: str = Field(default="127.0.0.1", validation_alias=AliasChoices("THIDUA_WEB_HOST"))
    # 0: any free port (tests).
    web_port: int = Field(
        default=8080, ge=0, le=65535, validation_alias=AliasChoices("THIDUA_WEB_PORT")
    )
    # Where people reach the bot's web server (https://... behind a TLS proxy): with https
    # the session cookie is Secure whatever the proxy says; files are offered as links to it
    # on chats that cannot carry files (Zalo; unset: the Zalo webhook's origin).
    public_url: str | None = Field(default=None, validation_alias=AliasChoices("THIDUA_PUBLIC_URL"))
    # The reverse proxies (IP addresses, comma-separated) whose X-Forwarded-For and
    # X-Forwarded-Proto are believed: the client's address for sign-in limits, and https.
    trusted_proxies: str = Field(
        default="", validation_alias=AliasChoices("THIDUA_TRUSTED_PROXIES")
    )
    # Quiet hours, local time: no reminder is sent from QUIET_START (evening) until QUIET_END
    # (morning); one due at night goes out at QUIET_END. Written as "20:00" and "08:00".
    quiet_start: time = Field(
        default=time(20, 0), validation_alias=AliasChoices("THIDUA_QUIET_START")
    )
    quiet_end: time = Field(default=time(8, 0), validation_alias=AliasChoices("THIDUA_QUIET_END"))
    # Zalo Bot Platform: long polling, or a webhook when ZALO_WEBHOOK_URL is set (then
    # ZALO_WEBHOOK_SECRET, 8-256 characters, is required).
    zalo_bot_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("ZALO_BOT_TOKEN")
    )
    zalo_api_base: str = Field(
        default=PUBLIC_ZALO_BOT_API, validation_alias=AliasChoices("ZALO_API_BASE")
    )
    zalo_webhook_url: str | None = Field(
        default=None, validation_alias=AliasChoices("ZALO_WEBHOOK_URL")
    )
    zalo_webhook_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("ZALO_WEBHOOK_SECRET")
    )
    # Zalo Official Account. The access/refresh tokens only seed the database: the refresh
    # token rotates and the current pair lives there. ZALO_OA_WEBHOOK_SECRET, if the OA's
    # webhook key differs from ZALO_OA_SECRET (Zalo's documents are not clear on it).
    zalo_oa_app_id: str | None = Field(
        default=None, validation_alias=AliasChoices("ZALO_OA_APP_ID")
    )
    zalo_oa_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("ZALO_OA_SECRET")
    )
    zalo_oa_webhook_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("ZALO_OA_WEBHOOK_SECRET")
    )
    zalo_oa_access_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("ZALO_OA_ACCESS_TOKEN")
    )
    zalo_oa_refresh_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("ZALO_OA_REFRESH_TOKEN")
    )
    zalo_oa_api_base: str = Field(
        default=PUBLIC_ZALO_OA_API, validation_alias=AliasChoices("ZALO_OA_API_BASE")
    )
    zalo_oa_oauth_base: str = Field(
        default=PUBLIC_ZALO_OAUTH, validation_alias=AliasChoices("ZALO_OA_OAUTH_BASE")
    )
    # Broadcasts: the platform's limit in messages per second (each platform, all chats
    # together; the sender keeps a little under it), shared through Redis when REDIS_URL is
    # set so several bot processes together stay under it.
    broadcast_rate: float = Field(
        default=30.0, gt=0, validation_alias=AliasChoices("THIDUA_BROADCAST_RATE")
    )
    redis_url: str | None = Field(default=None, validation_alias=AliasChoices("REDIS_URL"))
    # Updates one process handles at once, per channel. The work is CPU-bound (ORM, aiogram):
    # more at once does not raise updates/s, it only holds each update longer, while the rest
    # wait at the platform (bench/conversation.py: 2, 3, 4 and 8 gave the same updates/s; the
    # p99 inside the bot was 31 ms with 2, 74 ms with 4). Raise it when the database is far
    # away on the network, where each update spends more of its time waiting.
    updates_in_hand: int = Field(
        default=2, ge=1, le=256, validation_alias=AliasChoices("THIDUA_UPDATES_IN_HAND")
    )
    # The event loop (bot/eventloop.py): "auto" is uvloop where it is installed (it is a
    # dependency on Linux and macOS), else asyncio's; "asyncio" keeps the standard loop.
    event_loop: LoopChoice = Field(
        default="auto", validation_alias=AliasChoices("THIDUA_EVENT_LOOP")
    )
    # Flood guard (handlers.engine.flood): a person may send FLOOD_BURST messages at once and
    # FLOOD_RATE per second after that; beyond it messages are dropped with one notice.
    # Shared through Redis when REDIS_URL is set.
    flood_burst: int = Field(default=20, ge=1, validation_alias=AliasChoices("THIDUA_FLOOD_BURST"))
    flood_rate: float = Field(default=2.0, gt=0, validation_alias=AliasChoices("THIDUA_FLOOD_RATE"))

    # --- every setting checked before anything is served: a bad one stops the start with
    # its name and what is allowed (describe_invalid). Messages quote no secret.

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value.strip())
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{value!r} is not a time zone; use an IANA name such as Asia/Ho_Chi_Minh"
            ) from None
        return value.strip()

    @field_validator("event_loop")
    @classmethod
    def _check_event_loop(cls, value: LoopChoice) -> LoopChoice:
        if value == "uvloop" and not uvloop_available():
            raise ValueError("uvloop is not installed here; use auto or asyncio")
        return value

    @field_validator("locale")
    @classmethod
    def _check_locale(cls, value: str) -> str:
        if value.strip().lower() not in ("vi", "en"):
            raise ValueError(f"{value!r} is not a language of the bot; use vi or en")
        return value.strip().lower()

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        if value.strip().upper() not in LOG_LEVELS:
            raise ValueError(f"{value!r} is not a log level; use one of {', '.join(LOG_LEVELS)}")
        return value.strip().upper()

    @field_validator("log_format")
    @classmethod
    def _check_log_format(cls, value: str) -> str:
        if value.strip().lower() not in LOG_FORMATS:
            raise ValueError(f"{value!r} is not a log format; use text or json")
        return value.strip().lower()

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            driver = make_url(value.strip()).drivername
        except ArgumentError:
            driver = ""
        if driver not in DATABASE_DRIVERS:
            # Not quoted: the URL may hold a password.
            raise ValueError(
                "must be sqlite+aiosqlite:///path/to/thidua.db or "
                "postgresql+asyncpg://user@host/database"
            )
        return value.strip()

    @field_validator("telegram_api_base", "zalo_api_base", "zalo_oa_api_base", "zalo_oa_oauth_base")
    @classmethod
    def _check_api_base(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http(s) URL, e.g. https://api.example.org")
        return value.strip()

    @field_validator("zalo_webhook_url")
    @classmethod
    def _check_zalo_webhook_url(cls, value: str | None) -> str | None:
        if value and value.strip():
            parts = urlsplit(value.strip())
            if parts.scheme not in ("https", "http") or not parts.hostname:
                raise ValueError("must be a full URL, e.g. https://bot.example.org/zalo/hook")
        return value

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        if value and value.strip():
            parts = urlsplit(value.strip())
            if parts.scheme not in ("https", "http") or not parts.hostname:
                raise ValueError("must be the address people open, e.g. https://thidua.example.org")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_trusted_proxies(cls, value: str) -> str:
        import ipaddress

        for item in (part.strip() for part in value.split(",")):
            if not item:
                continue
            try:
                ipaddress.ip_address(item)
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an IP address; list the proxies' addresses, "
                    "comma-separated, e.g. 127.0.0.1,10.0.0.5"
                ) from None
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value and value.strip() and urlsplit(value.strip()).scheme not in REDIS_SCHEMES:
            raise ValueError("must be redis://host:6379/0, rediss://… or unix:///path")
        return value

    @field_validator("telegram_bot_token", "zalo_bot_token")
    @classmethod
    def _check_bot_token(cls, value: SecretStr | None) -> SecretStr | None:
        token = _secret(value)
        if token is not None and not BOT_TOKEN.fullmatch(token):
            raise ValueError("is not a bot token: <digits>:<secret> as the platform gave it")
        return value

    @model_validator(mode="after")
    def _check_zalo_webhook(self) -> Settings:
        secret = _secret(self.zalo_webhook_secret)
        if (self.zalo_webhook_url or "").strip() and not (secret and 8 <= len(secret) <= 256):
            raise ValueError(
                "ZALO_WEBHOOK_SECRET is required with ZALO_WEBHOOK_URL: 8-256 characters"
            )
        return self

    @model_validator(mode="after")
    def _check_telegram_webhook(self) -> Settings:
        # The messages never quote the values: the secret must not reach a log.
        url = (self.telegram_webhook_url or "").strip()
        if not url:
            return self
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(
                "TELEGRAM_WEBHOOK_URL must be a full URL, e.g. https://bot.example.org/telegram"
            )
        secret = _secret(self.telegram_webhook_secret)
        if secret is None or not TELEGRAM_SECRET_TOKEN.fullmatch(secret):
            raise ValueError(
                "TELEGRAM_WEBHOOK_SECRET is required with TELEGRAM_WEBHOOK_URL: 1-256 "
                "characters of A-Z, a-z, 0-9, _ and -"
            )
        return self

    @property
    def telegram_webhook(self) -> tuple[str, str] | None:
        """(URL, secret) when Telegram comes by webhook; None for long polling."""
        url = (self.telegram_webhook_url or "").strip()
        secret = _secret(self.telegram_webhook_secret)
        return (url, secret) if url and secret else None

    @property
    def webhook_address(self) -> tuple[str, int]:
        """Where the webhooks are served: THIDUA_WEBHOOK_*, else the web chat's address."""
        port = self.web_port if self.webhook_port is None else self.webhook_port
        return (self.webhook_host or self.web_host).strip(), port

    @property
    def file_links_base(self) -> str | None:
        """Where file links point: THIDUA_PUBLIC_URL, else the Zalo webhook's scheme and host."""
        url = (self.public_url or "").strip()
        if url:
            return url.rstrip("/")
        hook = urlsplit((self.zalo_webhook_url or "").strip())
        return f"{hook.scheme}://{hook.netloc}" if hook.scheme and hook.netloc else None

    @property
    def telegram_token(self) -> str | None:
        if self.telegram_bot_token is None:
            return None
        value = self.telegram_bot_token.get_secret_value().strip()
        return value or None

    @property
    def zalo_token(self) -> str | None:
        return _secret(self.zalo_bot_token)

    @property
    def zalo_oa_enabled(self) -> bool:
        """The OA channel runs when its app id and secret are set (tokens may come later)."""
        return bool((self.zalo_oa_app_id or "").strip() and _secret(self.zalo_oa_secret))


def describe_invalid(error: ValidationError) -> list[str]:
    """One line per bad setting, named as it is set (``THIDUA_TIMEZONE: …``), no value echoed
    but the ones the validators chose to quote (never a secret)."""
    # pydantic-settings reports a setting by its variable's name; a field name, just in case.
    names = {
        name: str(field.validation_alias.choices[0])
        for name, field in Settings.model_fields.items()
        if isinstance(field.validation_alias, AliasChoices)
    }
    names |= {alias: alias for alias in list(names.values())}
    lines = []
    for problem in error.errors():
        where = problem.get("loc") or ()
        field = str(where[0]) if where else ""
        message = str(problem.get("msg", "invalid"))
        message = message.removeprefix("Value error, ")
        if field in names:
            lines.append(f"{names[field]}: {message}")
        elif field:
            lines.append(f"{field.upper()}: {message}")
        else:
            lines.append(message)  # a check across settings names them itself
    return lines


def _secret(value: SecretStr | None) -> str | None:
    """A secret setting's value, or None when unset or blank."""
    if value is None:
        return None
    return value.get_secret_value().strip() or None
