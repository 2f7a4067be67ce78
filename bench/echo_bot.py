"""A bare aiogram 3 echo bot: the ceiling (updates/s) and the floor (memory) the bot is
compared with in bench.conversation and bench.memory.

    TELEGRAM_BOT_TOKEN=... TELEGRAM_API_BASE=http://127.0.0.1:PORT \
        python -m bench.echo_bot [--stats PATH] [--concurrency N]

It imports aiogram and nothing of the project, so its memory is aiogram's own. The benchmarks
give it the bot's limit of updates handled at once (TelegramChannel's), so both poll alike.
With ``--stats`` it times each update (an outer middleware, as bench.conversation times the
bot) and writes the durations there as JSON when SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import Message


def write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


async def serve(stats: Path | None, concurrency: int | None) -> None:
    api = TelegramAPIServer.from_base(os.environ["TELEGRAM_API_BASE"])
    bot = Bot(os.environ["TELEGRAM_BOT_TOKEN"], session=AiohttpSession(api=api))
    dp = Dispatcher()
    update_ms: list[float] = []
    span: list[float] = []
    cpu: list[float] = []

    async def timing(
        handler: Callable[[Any, dict[str, Any]], Awaitable[Any]],
        event: Any,
        data: dict[str, Any],
    ) -> Any:
        began = time.perf_counter()
        if not span:
            span.append(began)
            cpu.append(time.process_time())
        try:
            return await handler(event, data)
        finally:
            ended = time.perf_counter()
            update_ms.append((ended - began) * 1000)
            span[1:] = [ended]
            cpu[1:] = [time.process_time()]

    if stats is not None:
        dp.update.outer_middleware.register(timing)

    @dp.message()
    async def echo(message: Message) -> None:
        await message.answer(message.text or "?")

    # handle_signals: SIGTERM stops the polling; then the numbers are written.
    await dp.start_polling(
        bot, handle_signals=True, polling_timeout=25, tasks_concurrency_limit=concurrency
    )
    if stats is not None:
        data = {
            "update_ms": update_ms,
            "span_s": span[-1] - span[0] if span else 0.0,
            "cpu_s": cpu[-1] - cpu[0] if cpu else 0.0,
        }
        write(stats, json.dumps(data))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stats", type=Path)
    parser.add_argument("--concurrency", type=int)
    parser.add_argument("--uvloop", action="store_true", help="on uvloop, not asyncio's loop")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(serve(args.stats, args.concurrency))
    else:
        asyncio.run(serve(args.stats, args.concurrency))
