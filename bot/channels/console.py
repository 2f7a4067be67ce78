"""The terminal chat (`thidua chat`): the same conversations, typed, on the embedded database."""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from handlers.engine.prompt import Address, Incoming, Reply
from handlers.engine.render import numbered_text
from handlers.engine.runner import Engine

CHANNEL = "console"


class ConsoleChannel:
    name = CHANNEL

    def __init__(
        self,
        engine: Engine,
        external_id: str,
        *,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
    ) -> None:
        self.engine = engine
        self.address = Address(CHANNEL, external_id)
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout

    def show(self, reply: Reply) -> None:
        self.stdout.write("\n" + numbered_text(reply) + "\n")
        self.stdout.flush()

    async def run(self, first: str = "/start") -> None:
        """Read lines until end of input or /quit; each line is one message to the bot."""
        line: str | None = first
        while line is not None:
            if line.strip() in ("/quit", "/exit"):
                return
            if line.strip():
                result = await self.engine.handle(Incoming(self.address, text=line))
                for reply in result.replies:
                    self.show(reply)
                for other in result.others:
                    self.stdout.write(
                        f"\n[→ {other.to.channel}:{other.to.external_id}] {other.reply.text}\n"
                    )
            self.stdout.write("> ")
            self.stdout.flush()
            line = await asyncio.to_thread(self.stdin.readline)
            if line == "":
                line = None
