"""The event loop every command runs on (bot/eventloop.py, THIDUA_EVENT_LOOP)."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from bot import eventloop
from bot.config import Settings


async def _kind() -> str:
    await asyncio.sleep(0)  # a real turn of the loop, not just a call
    return eventloop.loop_name()


def test_auto_runs_on_uvloop_where_it_is_installed() -> None:
    assert eventloop.uvloop_available()  # a dependency on this platform
    assert eventloop.run(_kind(), "auto") == "uvloop"
    assert eventloop.run(_kind(), "uvloop") == "uvloop"


def test_asyncio_keeps_the_standard_loop() -> None:
    assert eventloop.run(_kind(), "asyncio") == "asyncio"


def test_the_setting_names_what_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THIDUA_EVENT_LOOP", "asyncio")
    assert Settings(_env_file=None).event_loop == "asyncio"  # type: ignore[call-arg]
    monkeypatch.setenv("THIDUA_EVENT_LOOP", "tokio")
    with pytest.raises(ValidationError) as raised:
        Settings(_env_file=None)  # type: ignore[call-arg]
    assert "event_loop" in str(raised.value) or "THIDUA_EVENT_LOOP" in str(raised.value)
