"""Settings, read from the environment and an optional ``.env`` file."""

from __future__ import annotations

import re
from datetime import time
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./thidua.db"
PUBLIC_TELEGRAM_API = "https://api.telegram.org"
PUBLIC_ZALO_BOT_API = "https://bot-api.zaloplatforms.com"
PUBLIC_ZALO_OA_API = "https://openapi.zalo.me"
PUBLIC_ZALO_OAUTH = "https://oauth.zaloapp.com"
# Telegram's rule for a webhook's secret_token.
TELEGRAM_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")


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
    # The bot's web server as people reach it (https://thidua.example.vn): files are offered
    # as links to it on chats that cannot carry files (Zalo). Unset: the Zalo webhook's origin.
    public_url: str | None = Field(default=None, validation_alias=AliasChoices("THIDUA_PUBLIC_URL"))
    database_url: str = Field(
        default=DEFAULT_DATABASE_URL, validation_alias=AliasChoices("DATABASE_URL")
    )
    timezone: str = Field(
        default="Asia/Ho_Chi_Minh", validation_alias=AliasChoices("THIDUA_TIMEZONE")
    )
    locale: str = Field(default="vi", validation_alias=AliasChoices("THIDUA_LOCALE"))
    log_level: str = Field(default="INFO", validation_alias=AliasChoices("THIDUA_LOG_LEVEL"))
    # The web chat (served when no platform token is set, and by `thidua demo`). The default
    # host is loopback only; set 0.0.0.0 to let phones on the same LAN reach it.
    web_host: str = Field(default="127.0.0.1", validation_alias=AliasChoices("THIDUA_WEB_HOST"))
    web_port: int = Field(default=8080, validation_alias=AliasChoices("THIDUA_WEB_PORT"))
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
    # Flood guard (handlers.engine.flood): a person may send FLOOD_BURST messages at once and
    # FLOOD_RATE per second after that; beyond it messages are dropped with one notice.
    # Shared through Redis when REDIS_URL is set.
    flood_burst: int = Field(default=20, ge=1, validation_alias=AliasChoices("THIDUA_FLOOD_BURST"))
    flood_rate: float = Field(default=2.0, gt=0, validation_alias=AliasChoices("THIDUA_FLOOD_RATE"))

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


def _secret(value: SecretStr | None) -> str | None:
    """A secret setting's value, or None when unset or blank."""
    if value is None:
        return None
    return value.get_secret_value().strip() or None
