"""Fakes of the outside world, speaking real HTTP: the Telegram Bot API and its users."""

from tests.fakes.botapi import DEFAULT_TOKEN, FakeBotAPI, SentMessage, TgUser

__all__ = ["DEFAULT_TOKEN", "FakeBotAPI", "SentMessage", "TgUser"]
