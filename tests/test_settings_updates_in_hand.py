"""THIDUA_UPDATES_IN_HAND: how many updates one process works on at once, per channel."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.config import Settings


def settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    monkeypatch.delenv("THIDUA_UPDATES_IN_HAND", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_few_at_once_unless_the_operator_says_more(monkeypatch: pytest.MonkeyPatch) -> None:
    # CPU-bound work: more at once only makes each update wait (bench/conversation.py).
    assert settings(monkeypatch).updates_in_hand == 2
    assert settings(monkeypatch, THIDUA_UPDATES_IN_HAND="16").updates_in_hand == 16


def test_nonsense_is_refused_with_the_settings_name(monkeypatch: pytest.MonkeyPatch) -> None:
    for bad in ("0", "-1", "many"):
        with pytest.raises(ValidationError, match="THIDUA_UPDATES_IN_HAND"):
            settings(monkeypatch, THIDUA_UPDATES_IN_HAND=bad)
