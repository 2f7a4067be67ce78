"""What the composition root needs from every channel."""

from __future__ import annotations

from typing import Protocol

from handlers.engine.prompt import Reply


class Channel(Protocol):
    """A platform the bot talks on. ``name`` is the ``Address.channel`` it serves."""

    name: str

    async def send(self, address_external_id: str, reply: Reply) -> None:
        """Send ``reply`` to someone who did not just write (an officer, a reminder).

        Raises :class:`bot.delivery.DeliveryError` when it cannot be delivered.
        """
        ...

    async def start(self) -> None:
        """Get ready to talk (register commands, check the token)."""
        ...

    async def stop(self) -> None:
        """Stop receiving, finish what is in hand, release connections."""
        ...
