"""Benchmark: the bot's CPU to receive one Telegram update, up to the engine's door.

    python -m bench.receive [--updates 2000] [--batch 1] [--repeat 3] [--way both]

Two ways of receiving the same updates, measured in the same run:

* **aiogram** (how bot/channels/telegram.py received until issue 16 part 2): getUpdates
  through aiogram's session (the answer validated into ``Response[list[Update]]``), each
  update fed to a ``Dispatcher`` (FSM off) with an outer middleware and a message and a
  callback handler on the dispatcher itself, which read the fields the channel read into an
  :class:`~handlers.engine.prompt.Incoming`;
* **lean** (now): getUpdates through ``LeanSession.call`` as plain JSON and
  ``bot.channels.telegram_updates.read_update``.

Each update is handled in a task of its own, as both ways do. The local fake Bot API runs in
a thread with its own event loop, so its CPU is not counted: the figure is the receiving
thread's CPU per update (``time.thread_time``), best of ``--repeat`` rounds. The traffic is
the conversation's mix, half typed messages and half presses on a question with four
buttons; ``--batch`` is the number of updates per getUpdates answer (a busy bot finds one or
two waiting: bench.conversation's closed loop). ``--way`` runs one way only (for
``valgrind --tool=callgrind --separate-threads=yes``: load-independent instruction counts).
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.methods import GetUpdates
from aiogram.methods.base import Response
from aiogram.types import CallbackQuery, Message, Update

from bot.channels.telegram_session import LeanSession
from bot.channels.telegram_updates import parse_callback_data, read_update
from handlers.engine.prompt import Address, Incoming
from tests.fakes import DEFAULT_TOKEN, FakeBotAPI

FIRST_USER = 700_000_000
QUESTION = "Chọn danh hiệu bạn muốn đăng ký cho năm 2027:"
BUTTONS = ["Lao động tiên tiến", "Chiến sĩ thi đua cơ sở", "« Quay lại", "Hủy"]


class Server:
    """The fake Bot API on a thread of its own."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.api: FakeBotAPI | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def start() -> None:
            self.api = FakeBotAPI()
            await self.api.start()

        self.loop.run_until_complete(start())
        self._ready.set()
        self.loop.run_forever()

    def call(self, coro: Awaitable[Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()  # type: ignore[arg-type]

    def stop(self) -> None:
        assert self.api is not None
        self.call(self.api.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()


async def push(api: FakeBotAPI, count: int) -> None:
    """``count`` updates: a typed answer, then a press on the question, person after person."""
    bot_user = api.bot_user
    for i in range(count):
        user_id = FIRST_USER + i // 2
        user = {"id": user_id, "is_bot": False, "first_name": "An", "last_name": "Nguyễn"}
        user["language_code"] = "vi"
        chat = {"id": user_id, "type": "private", "first_name": "An"}
        if i % 2 == 0:
            message = {"message_id": i, "date": int(time.time()), "chat": chat, "from": user}
            message["text"] = "Nguyễn Văn An"
            await api.push_update("message", message, chat_id=user_id, note="typed")
            continue
        keyboard = [
            [{"text": label, "callback_data": f"c:3:choice{n}"}] for n, label in enumerate(BUTTONS)
        ]
        shown = {"message_id": i, "date": int(time.time()), "chat": chat, "from": bot_user}
        shown |= {"text": QUESTION, "reply_markup": {"inline_keyboard": keyboard}}
        query = {"id": f"cq-{i}", "from": user, "message": shown, "chat_instance": "ci"}
        query["data"] = "c:3:choice1"
        await api.push_update("callback_query", query, chat_id=user_id, note="pressed")


# --- the two ways ------------------------------------------------------------------------------


def aiogram_way(bot: Bot, seen: list[Incoming]) -> Callable[[int, int], Awaitable[int]]:
    """getUpdates through aiogram, each update through its Dispatcher (the old channel)."""
    dp = Dispatcher(disable_fsm=True)

    async def on_message(message: Message) -> None:
        user = message.from_user
        if user is None or user.is_bot or message.chat.type != "private":
            return
        seen.append(
            Incoming(
                address=Address("telegram", str(user.id)),
                text=message.text if message.text is not None else message.caption,
                display_name=user.full_name,
                locale=user.language_code,
                event_id=f"m{message.message_id}",
            )
        )

    async def on_callback(query: CallbackQuery) -> None:
        user = query.from_user
        data = query.data or ""
        choice_id, seq = parse_callback_data(data)
        label = None
        if isinstance(query.message, Message) and query.message.reply_markup is not None:
            for row in query.message.reply_markup.inline_keyboard:
                for button in row:
                    if button.callback_data == data:
                        label = button.text
        assert label is not None
        seen.append(
            Incoming(
                address=Address("telegram", str(user.id)),
                choice_id=choice_id,
                seq=seq,
                display_name=user.full_name,
                locale=user.language_code,
                event_id=f"q{query.id}",
                message_ref=str(query.message.message_id) if query.message else None,
            )
        )

    async def track(handler: Any, event: Any, data: dict[str, Any]) -> Any:
        return await handler(event, data)

    # Held, as the channel held it (keep_response_models): pydantic keeps parametrised
    # models by weak reference only, and would build this validator again and again.
    response_model = Response.__class_getitem__(list[Update])

    dp.message.register(on_message)
    dp.callback_query.register(on_callback)
    dp.update.outer_middleware.register(track)

    async def receive(offset: int, batch: int) -> int:
        assert response_model is not None
        updates = await bot(GetUpdates(offset=offset, limit=batch, timeout=0))
        await asyncio.gather(*(asyncio.create_task(dp.feed_update(bot, u)) for u in updates))
        return updates[-1].update_id + 1 if updates else offset

    return receive


def lean_way(
    session: LeanSession, bot: Bot, seen: list[Incoming]
) -> Callable[[int, int], Awaitable[int]]:
    """getUpdates as plain JSON, read_update (the channel now)."""

    async def handle(incoming: Incoming) -> None:
        seen.append(incoming)

    async def receive(offset: int, batch: int) -> int:
        params = {"offset": offset, "limit": batch, "timeout": 0}
        updates = await session.call(bot, GetUpdates, params)
        tasks = []
        for raw in updates:
            update = read_update(raw, "telegram")
            assert update is not None
            tasks.append(asyncio.create_task(handle(update.incoming)))
        await asyncio.gather(*tasks)
        return int(updates[-1]["update_id"]) + 1 if updates else offset

    return receive


async def one_round(server: Server, way: str, count: int, batch: int) -> float:
    """CPU seconds of this thread to receive ``count`` updates one way."""
    assert server.api is not None
    server.call(push(server.api, count))
    session = LeanSession(api=_api_server(server.api.base_url))
    bot = Bot(DEFAULT_TOKEN, session=session)
    seen: list[Incoming] = []
    receive = aiogram_way(bot, seen) if way == "aiogram" else lean_way(session, bot, seen)
    try:
        offset = await receive(0, 1)  # the connection opened, the first answer's models built
        began = time.thread_time()
        while len(seen) < count:
            offset = await receive(offset, batch)
        spent = time.thread_time() - began
        await receive(offset, 1)  # confirm the last ones for the next round
    finally:
        await session.close()
    return spent / (count - 1)


def _api_server(base: str) -> Any:
    from aiogram.client.telegram import TelegramAPIServer

    return TelegramAPIServer.from_base(base)


async def main(args: argparse.Namespace) -> None:
    ways = ["aiogram", "lean"] if args.way == "both" else [args.way]
    server = Server()
    try:
        best: dict[str, float] = {}
        for _round in range(args.repeat):
            for way in ways:  # one after the other, round after round
                per_update = await one_round(server, way, args.updates, args.batch)
                best[way] = min(best.get(way, per_update), per_update)
    finally:
        server.stop()
    print(f"{args.updates} updates, {args.batch} per getUpdates answer, best of {args.repeat}")
    for way in ways:
        print(f"  {way:<8} {best[way] * 1e6:6.0f} µs of CPU per update received")
    if len(ways) == 2:
        saved = best["aiogram"] - best["lean"]
        print(f"  saved    {saved * 1e6:6.0f} µs per update ({saved / best['aiogram']:.0%})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--updates", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=1, help="updates per getUpdates answer")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--way", choices=["both", "aiogram", "lean"], default="both")
    asyncio.run(main(parser.parse_args()))
