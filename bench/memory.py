"""Benchmark: resident memory of one bot process with 10,000 conversations in progress.

    python -m bench.memory                          # SQLite in a temporary folder
    python -m bench.memory --database-url postgresql+asyncpg://postgres@127.0.0.1/test
    python -m bench.memory --conversations 2000     # quicker

The bot is the real ``python -m bot run`` (Telegram by long polling) against the local Bot
API (tests.fakes.FakeBotAPI, in this process). ``--conversations`` members are put in the
middle of a title registration (the commitment question: a conversation row cloned from one
person driven there through the engine), then every one of them answers through the bot, so
each conversation is read, advanced to the summary and written back by the running process.
Its resident memory (VmRSS in /proc/<pid>/status) is then compared with that of a bare
aiogram 3 echo bot that received the same number of messages from as many people, in the
same run. Target: ≤ 1.25 × the echo bot's. The bot runs with ``-X importtime``, so the
modules it imported (and whether matplotlib, openpyxl or numpy are among them) are listed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from copy import deepcopy
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select

from bench.common import ROOT, database, dialect_of, rss_kb, verdict
from bench.conversation import build_org, updates_in_hand
from handlers.engine.flow import EngineConfig
from handlers.engine.prompt import Address, Incoming, Result
from handlers.flows import build_engine
from storage.db import make_engine, make_sessionmaker
from storage.models import ChannelIdentity, Conversation, Person
from tests.fakes import DEFAULT_TOKEN, FakeBotAPI, TgUser

RATIO_TARGET = 1.25
FIRST_CHAT = 800_000_000
COMMITMENT = "Hoàn thành 110% kế hoạch, không có tai nạn lao động"
# Imported only for the digest's files; a chat process should not carry them.
HEAVY = ("matplotlib", "openpyxl", "numpy", "PIL")


# --- the conversations ------------------------------------------------------------------------


def _pick(result: Result, label: str) -> Incoming:
    for reply in result.replies:
        for choice in reply.choices:
            if label.casefold() in choice.label.casefold():
                return Incoming(address=Address("x", "x"), choice_id=choice.id, seq=reply.seq)
    raise RuntimeError(f"no button {label!r} in {[r.text[:60] for r in result.replies]}")


async def template(url: str) -> dict[str, Any]:
    """The state of a conversation waiting at the commitment question, made by the engine."""
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    flows = build_engine(sessions, EngineConfig())
    try:
        async with sessions() as session:
            phone = await session.scalar(select(Person.phone).where(Person.phone.is_not(None)))
        address = Address("telegram", "1")

        async def say(**kw: Any) -> Result:
            return await flows.handle(Incoming(address=address, locale="vi", **kw))

        async def press(result: Result, label: str) -> Result:
            picked = _pick(result, label)
            return await say(choice_id=picked.choice_id, seq=picked.seq)

        await say(text="/start")
        result = await say(contact_phone="+84" + str(phone)[1:], contact_is_own=True)
        result = await press(result, "là tôi")
        result = await press(result, "Đăng ký danh hiệu")
        result = await press(result, "Lao động tiên tiến")
        _pick(result, "Bỏ qua")  # at the commitment question
        async with sessions() as session:
            conv = await session.scalar(
                select(Conversation)
                .join(ChannelIdentity, ChannelIdentity.id == Conversation.identity_id)
                .where(ChannelIdentity.external_id == "1")
            )
            assert conv is not None
            data = deepcopy(conv.data)
            data.pop("seen", None)
            return {"flow": conv.flow, "step": conv.step, "data": data}
    finally:
        await engine.dispose()


async def park(url: str, conversations: int) -> None:
    """``conversations`` members with a Telegram chat, each at the commitment question."""
    state = await template(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    now = datetime.now(UTC)
    try:
        async with sessions() as session, session.begin():
            unit_id = await session.scalar(
                select(Person.unit_id).where(Person.unit_id.is_not(None)).limit(1)
            )
            for start in range(0, conversations, 2000):
                n = min(2000, conversations - start)
                people = list(
                    await session.scalars(
                        insert(Person).returning(Person.id),
                        [
                            {
                                "full_name": f"Đoàn viên {start + i}",
                                "unit_id": unit_id,
                                "source": "roster",
                                "reminders_muted": False,
                                "created_at": now,
                                "updated_at": now,
                            }
                            for i in range(n)
                        ],
                    )
                )
                identities = list(
                    await session.scalars(
                        insert(ChannelIdentity).returning(ChannelIdentity.id),
                        [
                            {
                                "channel": "telegram",
                                "external_id": str(FIRST_CHAT + start + i),
                                "person_id": pid,
                                "created_at": now,
                            }
                            for i, pid in enumerate(people)
                        ],
                    )
                )
                await session.execute(
                    insert(Conversation),
                    [
                        {**state, "identity_id": iid, "version": 1, "updated_at": now}
                        for iid in identities
                    ],
                )
    finally:
        await engine.dispose()


async def at_step(url: str, step: str) -> int:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            return int(
                await session.scalar(
                    select(func.count()).select_from(Conversation).where(Conversation.step == step)
                )
                or 0
            )
    finally:
        await engine.dispose()


# --- a process and its memory -----------------------------------------------------------------


@dataclass
class Measured:
    label: str
    idle_kb: int
    loaded_kb: int
    peak_kb: int
    seconds: float
    failures: int
    imports: dict[str, float]  # top-level package -> cumulative import time (s)

    def lines(self) -> list[str]:
        return [
            f"== {self.label} ==",
            f"RSS after start      {self.idle_kb / 1024:7.1f} MB",
            f"RSS after the chats  {self.loaded_kb / 1024:7.1f} MB "
            f"(peak {self.peak_kb / 1024:.1f} MB)",
            f"chats answered in    {self.seconds:.0f} s ({self.failures} did not get an answer)",
        ]


def peak_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def parse_importtime(stderr: str) -> dict[str, float]:
    """Top-level packages imported, each with the import time of all its modules (s), from
    the ``-X importtime`` lines (``import time: self | cumulative | name``)."""
    found: dict[str, float] = {}
    for line in stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
        if m:
            top = m.group(2).split(".")[0]
            found[top] = found.get(top, 0.0) + int(m.group(1)) / 1e6
    return found


async def measure(
    label: str,
    command: list[str],
    url: str,
    conversations: int,
    touch: Callable[[TgUser], Awaitable[None]],
    settle: float,
) -> Measured:
    async with FakeBotAPI() as api:
        env = {
            **os.environ,
            "TELEGRAM_BOT_TOKEN": DEFAULT_TOKEN,
            "TELEGRAM_API_BASE": api.base_url,
            "DATABASE_URL": url,
            "THIDUA_LOG_LEVEL": "WARNING",
            # Its probes (/healthz …) on any free port: tests run side by side.
            "THIDUA_WEB_PORT": "0",
            "PYTHONPATH": str(ROOT),
        }
        env.pop("REDIS_URL", None)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-X",
            "importtime",
            *command,
            env=env,
            cwd=ROOT,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stderr is not None
        stderr_task = asyncio.create_task(proc.stderr.read())
        try:
            deadline = time.monotonic() + 120
            while not any(c.method.lower() == "getupdates" for c in api.calls):
                if proc.returncode is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{label}: did not start polling")
                await asyncio.sleep(0.1)
            await asyncio.sleep(settle)
            idle = rss_kb(proc.pid)
            users = [TgUser(api, FIRST_CHAT + i, f"Người {i}") for i in range(conversations)]
            began = time.monotonic()
            outcomes = await asyncio.gather(*(touch(u) for u in users), return_exceptions=True)
            seconds = time.monotonic() - began
            # Let the last replies, the outbox dispatcher and the garbage collector settle.
            await asyncio.sleep(settle)
            loaded, peak = rss_kb(proc.pid), peak_kb(proc.pid)
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            await proc.wait()
        stderr = (await stderr_task).decode(errors="replace")
    return Measured(
        label,
        idle,
        loaded,
        peak,
        seconds,
        sum(isinstance(o, BaseException) for o in outcomes),
        parse_importtime(stderr),
    )


async def main_async(args: argparse.Namespace) -> int:
    async with database(args.database_url) as url:
        kind = dialect_of(url)
        await build_org(url, 10, args.seed)
        await park(url, args.conversations)
        print(f"{kind}: {args.conversations:,} conversations at the commitment question")

        async def answer(user: TgUser) -> None:
            await user.send(COMMITMENT)
            await user.wait_until(
                lambda sent: any("Xác nhận" in label for m in sent for label in m.labels),
                args.timeout,
            )

        async def echo(user: TgUser) -> None:
            await user.send(COMMITMENT)
            await user.wait_for(COMMITMENT, args.timeout)

        echo_run = await measure(
            "bare aiogram echo bot",
            ["-m", "bench.echo_bot", "--concurrency", str(updates_in_hand(None))],
            url,
            args.conversations,
            echo,
            args.settle,
        )
        print("\n".join(echo_run.lines()), "", sep="\n", flush=True)
        bot_run = await measure(
            f"Thi đua bot (python -m bot run) on {kind}",
            ["-m", "bot", "run"],
            url,
            args.conversations,
            answer,
            args.settle,
        )
        print("\n".join(bot_run.lines()), flush=True)
        advanced = await at_step(url, "summary")
        print(f"conversations now at the summary: {advanced:,} (in the database)")
    heavy = [m for m in HEAVY if m in bot_run.imports]
    slowest = sorted(bot_run.imports.items(), key=lambda kv: -kv[1])[:8]
    print("imports of the bot   " + ", ".join(f"{k} {v:.2f} s" for k, v in slowest))
    print(f"heavy modules loaded {', '.join(heavy) if heavy else 'none of ' + ', '.join(HEAVY)}")
    ratio = bot_run.loaded_kb / echo_run.loaded_kb
    print(
        f"RSS ratio            {bot_run.loaded_kb / 1024:.1f} MB / "
        f"{echo_run.loaded_kb / 1024:.1f} MB = {ratio:.2f} (target <= {RATIO_TARGET}): "
        f"{verdict(ratio <= RATIO_TARGET)}"
    )
    print(
        f"  against the echo bot at rest ({echo_run.idle_kb / 1024:.1f} MB): "
        f"{bot_run.loaded_kb / echo_run.idle_kb:.2f}"
    )
    complete = advanced == args.conversations and not bot_run.failures
    print(f"every conversation advanced: {verdict(complete)}")
    ok = complete and ratio <= RATIO_TARGET and not heavy
    print("RESULT", "ok" if ok else "targets missed")
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary folder")
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per answer")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds before measuring")
    parser.add_argument("--seed", type=int, default=3)
    return asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
