"""A platform-free driver for the engine: a person typing and tapping, as a test sees it."""

from __future__ import annotations

from dataclasses import dataclass, field

from handlers.engine.prompt import (
    MAX_LABEL,
    Address,
    Choice,
    Incoming,
    IncomingFile,
    Outgoing,
    Reply,
)
from handlers.engine.runner import Engine
from handlers.text import fold


def shown(choice: Choice) -> tuple[str, ...]:
    """What a button stands for: its label, and the whole text of a label shortened to fit
    a phone."""
    return (choice.label, choice.full_label) if choice.full_label else (choice.label,)


@dataclass
class Chat:
    engine: Engine
    user_id: str
    display_name: str | None = None
    channel: str = "test"
    replies: list[Reply] = field(default_factory=list)
    last: list[Reply] = field(default_factory=list)
    # Messages the last action sent to other people (officers, leaders, members).
    last_others: list[Outgoing] = field(default_factory=list)

    @property
    def address(self) -> Address:
        return Address(self.channel, self.user_id)

    async def _send(self, incoming: Incoming) -> list[Reply]:
        result = await self.engine.handle(incoming)
        # Every flow test checks its buttons as rendered: a 360-px phone shows 32 characters.
        too_long = [c.label for r in result.replies for c in r.choices if len(c.label) > MAX_LABEL]
        assert too_long == [], too_long
        self.last = result.replies
        self.replies.extend(result.replies)
        self.last_others = result.others
        return result.replies

    def deliver(self, outgoing: list[Outgoing]) -> list[Reply]:
        """Receive the messages addressed to this chat, as the channel would deliver them."""
        mine = [out.reply for out in outgoing if out.to == self.address]
        self.last = mine
        self.replies.extend(mine)
        return mine

    async def press(self, label: str, in_message: str = "") -> list[Reply]:
        """Tap a button on any message (the newest whose text has ``in_message``), notification
        buttons included."""
        wanted = fold(label)
        for reply in reversed(self.replies):
            if fold(in_message) not in fold(reply.text):
                continue
            for choice in reply.choices:
                if any(wanted in fold(text) for text in shown(choice)):
                    return await self._send(
                        Incoming(self.address, choice_id=choice.id, seq=reply.seq)
                    )
        raise AssertionError(f"no button {label!r} on any message\n{self.transcript()}")

    async def say(self, text: str) -> list[Reply]:
        return await self._send(Incoming(self.address, text=text, display_name=self.display_name))

    async def contact(self, phone: str, own: bool = True) -> list[Reply]:
        return await self._send(Incoming(self.address, contact_phone=phone, contact_is_own=own))

    async def file(self, name: str, mime: str, size: int) -> list[Reply]:
        return await self._send(Incoming(self.address, file=IncomingFile("f1", name, mime, size)))

    def prompt(self) -> Reply:
        """The newest reply that carries buttons (the question being asked)."""
        for reply in reversed(self.replies):
            if reply.choices:
                return reply
        raise AssertionError(f"no question asked yet:\n{self.transcript()}")

    async def tap(self, label: str) -> list[Reply]:
        prompt = self.prompt()
        wanted = fold(label)
        for choice in prompt.choices:
            if any(wanted in fold(text) for text in shown(choice)):
                return await self._send(Incoming(self.address, choice_id=choice.id, seq=prompt.seq))
        labels = [c.label for c in prompt.choices]
        raise AssertionError(f"no button {label!r} in {labels}\n{self.transcript()}")

    def text(self) -> str:
        """Everything the bot said in answer to the last action."""
        return "\n".join(r.text for r in self.last)

    def buttons(self) -> list[str]:
        return [c.label for c in self.prompt().choices]

    def transcript(self) -> str:
        return "\n---\n".join(r.text for r in self.replies)
