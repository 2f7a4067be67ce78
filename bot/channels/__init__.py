"""Channels: each turns one platform's updates into engine input and renders its replies."""

from bot.channels.base import Channel

__all__ = ["Channel"]
