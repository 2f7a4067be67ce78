"""Settings, read from the environment and an optional ``.env`` file."""

from __future__ import annotations

from datetime import time

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./thidua.db"
PUBLIC_TELEGRAM_API = "https://api.telegram.org"
PUBLIC_ZALO_BOT_API = "https://bot-api.zaloplatforms.com"
PUBLIC_ZALO_OA_API = "https://openapi.zalo.me"
PUBLIC_ZALO_OAUTH = "https://oauth.zaloapp.com"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    telegram_bot_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("TELEGRAM_BOT_TOKEN")
    )
    telegram_api_base: str = Field(
        default=PUBLIC_TELEGRAM_API, validation_alias=AliasChoices("TELEGRAM_API_BASE")
    )
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
