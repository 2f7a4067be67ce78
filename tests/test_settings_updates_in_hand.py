"""THIDUA_UPDATES_IN_HAND: how many updates one process works on at once, per channel."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.config import Settings


def settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for name in ("DATABASE_URL", "THIDUA_UPDATES_IN_HAND"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_the_default_follows_the_database(monkeypatch: pytest.MonkeyPatch) -> None:
    # SQLite's writers take turns, so more than two at once only makes each update wait.
    assert settings(monkeypatch).updates_at_once == 2
    assert settings(monkeypatch, DATABASE_URL="sqlite+aiosqlite:///x.db").updates_at_once == 2
    pg = "postgresql+asyncpg://postgres@127.0.0.1/test"
    assert settings(monkeypatch, DATABASE_URL=pg).updates_at_once == 4


def test_an_operator_can_set_it_and_nonsense_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings(monkeypatch, THIDUA_UPDATES_IN_HAND="16").updates_at_once == 16
    for bad in ("0", "-1", "many"):
        with pytest.raises(ValidationError, match="THIDUA_UPDATES_IN_HAND"):
            settings(monkeypatch, THIDUA_UPDATES_IN_HAND=bad)
