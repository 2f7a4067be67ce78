"""Settings, read from the environment and an optional ``.env`` file."""

from __future__ import annotations

from datetime import time

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./thidua.db"
PUBLIC_TELEGRAM_API = "https://api.telegram.org"


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

    @property
    def telegram_token(self) -> str | None:
        if self.telegram_bot_token is None:
            return None
        value = self.telegram_bot_token.get_secret_value().strip()
        return value or None
