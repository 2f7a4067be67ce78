"""Benchmark: a launch announcement to 20,000 members through a local Telegram Bot API.

    python -m bench.broadcast                       # 20,000 recipients, SQLite, both runs
    python -m bench.broadcast --recipients 2000     # quicker
    python -m bench.broadcast --database-url postgresql+asyncpg://postgres@127.0.0.1/test

The Bot API is tests.fakes.FakeBotAPI on 127.0.0.1: it answers 429 with retry_after to
anything over ``--rate`` (30) messages in a sliding second, and 403 to the 1 % of recipients
who "blocked the bot". The sender is the real one, as a separate process
(``thidua broadcast send ID``), over the real database. Two runs:

1. straight through: achieved messages/s and its ratio to the allowed rate (target ≥ 0.95),
   429s received, duplicates (must be 0), missing (must be 0);
2. the sending process is killed with SIGKILL at 50 % and started again: missing must be 0,
   duplicates at most the in-flight window (3), and they must be among the recipients the
   report names as "maybe received twice".

A PostgreSQL URL names a server: the benchmark creates a database of its own there and
drops it afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.common import database
from storage.db import make_engine, make_sessionmaker
from storage.models import (
    Broadcast,
    BroadcastDelivery,
    BroadcastStatus,
    ChannelIdentity,
    DeliveryState,
    Person,
    Role,
    Unit,
    UnitKind,
    UnitRole,
)
from storage.seed import prepare_database
from storage.types import utcnow
from tests.fakes import DEFAULT_TOKEN, FakeBotAPI

ROOT = Path(__file__).resolve().parent.parent
OFFICER_CHAT = 1
FIRST_CHAT = 10_000_000
UNITS = 40


@dataclass
class Outcome:
    label: str
    recipients: int
    blocked: int
    sent_messages: int
    seconds: float
    rate: float
    allowed: float
    http_429: int
    duplicates: int
    missing: int
    maybe_twice: int
    duplicates_outside_report: int
    reported_blocked: int
    kill_at: int | None = None
    restart_gap: float = 0.0

    @property
    def ratio(self) -> float:
        return self.rate / self.allowed

    def lines(self) -> list[str]:
        out = [
            f"== {self.label} ==",
            f"recipients           {self.recipients} ({self.blocked} blocked the bot)",
            f"messages delivered   {self.sent_messages}",
            f"time sending         {self.seconds:.1f} s",
            f"achieved rate        {self.rate:.2f} msg/s = {self.ratio:.3f} of the allowed "
            f"{self.allowed:g}/s (target >= 0.95)",
            f"429 received         {self.http_429}",
            f"duplicates           {self.duplicates}",
            f"missing              {self.missing}",
            f"reported blocked     {self.reported_blocked}",
        ]
        if self.kill_at is not None:
            out.insert(1, f"killed (SIGKILL) after {self.kill_at} recipients had it")
            gap = f"restart gap          {self.restart_gap:.1f} s (not counted in the rate)"
            out.insert(2, gap)
            out.append(f"maybe twice (report) {self.maybe_twice}")
            out.append(f"duplicates not named {self.duplicates_outside_report}")
        return out


async def populate(
    sessions: async_sessionmaker[AsyncSession], recipients: int
) -> tuple[int, list[int]]:
    """A province with UNITS grassroots unions and ``recipients`` members on Telegram, and
    a broadcast to all of them, due now. Returns (broadcast id, recipients' chat ids)."""
    async with sessions() as session, session.begin():
        root = Unit(code="BENCH", name="LĐLĐ tỉnh Benchmark", search_name="ldld tinh benchmark")
        root.kind = UnitKind.PROVINCE
        session.add(root)
        await session.flush()
        root.path = f"/{root.id}/"
        units = []
        for i in range(UNITS):
            unit = Unit(
                code=f"CDCS-{i}",
                name=f"Công đoàn cơ sở {i}",
                search_name=f"cong doan co so {i}",
                kind=UnitKind.GRASSROOTS,
                parent_id=root.id,
            )
            session.add(unit)
            units.append(unit)
        await session.flush()
        for unit in units:
            unit.path = f"{root.path}{unit.id}/"
        officer = Person(full_name="Cán bộ Bench", unit_id=root.id, source="chat")
        session.add(officer)
        await session.flush()
        session.add(UnitRole(person_id=officer.id, unit_id=root.id, role=Role.OFFICER))
        session.add(
            ChannelIdentity(channel="telegram", external_id=str(OFFICER_CHAT), person_id=officer.id)
        )
        first_id = int((await session.scalar(select(func.coalesce(func.max(Person.id), 0)))) or 0)
        chunk = 2000
        for start in range(0, recipients, chunk):
            n = min(chunk, recipients - start)
            await session.execute(
                insert(Person),
                [
                    {
                        "id": first_id + 1 + start + i,
                        "full_name": f"Đoàn viên {start + i}",
                        "unit_id": units[(start + i) % UNITS].id,
                        "source": "roster",
                        "reminders_muted": False,
                    }
                    for i in range(n)
                ],
            )
            await session.execute(
                insert(ChannelIdentity),
                [
                    {
                        "channel": "telegram",
                        "external_id": str(FIRST_CHAT + start + i),
                        "person_id": first_id + 1 + start + i,
                    }
                    for i in range(n)
                ],
            )
        broadcast = Broadcast(
            source="cli",
            created_by_id=officer.id,
            unit_id=root.id,
            text="Kính gửi các đồng chí đoàn viên: Công đoàn phát động phong trào thi đua năm "
            "2027. Đề nghị các đồng chí đăng ký danh hiệu thi đua trước ngày 25/01/2027.",
            audience={"unit_ids": [], "role": "all", "unregistered": False},
            status=BroadcastStatus.SCHEDULED,
            scheduled_at=utcnow(),
            progress_channel="telegram",
            progress_external_id=str(OFFICER_CHAT),
        )
        session.add(broadcast)
        await session.flush()
        if session.get_bind().dialect.name == "postgresql":
            # Explicit ids above: move the sequence past them.
            await session.execute(select(func.setval("people_id_seq", first_id + recipients + 1)))
        return broadcast.id, [FIRST_CHAT + i for i in range(recipients)]


async def start_sender(api: FakeBotAPI, url: str, broadcast_id: int) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": DEFAULT_TOKEN,
        "TELEGRAM_API_BASE": api.base_url,
        "DATABASE_URL": url,
        "THIDUA_LOG_LEVEL": "ERROR",
        "THIDUA_BROADCAST_RATE": str(api.rate_limit or 30),
        "PYTHONPATH": str(ROOT),
    }
    env.pop("REDIS_URL", None)
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "broadcast",
        "send",
        str(broadcast_id),
        env=env,
        cwd=ROOT,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
    )


def delivered(api: FakeBotAPI, chats: list[int]) -> int:
    return sum(1 for chat in chats if api.messages(chat))


async def run_once(
    url: str, recipients: int, rate: float, kill_at: float | None, seed: int
) -> Outcome:
    engine = make_engine(url)
    await prepare_database(engine)
    sessions = make_sessionmaker(engine)
    try:
        broadcast_id, chats = await populate(sessions, recipients)
        # The fake Bot API runs in this process: a full garbage collection over everything
        # made so far would pause it for tens of milliseconds, bunching the requests queued
        # meanwhile into a burst the bot never sent. Telegram has no such pauses.
        gc.collect()
        gc.freeze()
        # And none while sending: with 20,000 messages stored, one pause takes 100 ms, and
        # the requests that arrive meanwhile are handled together, as a burst.
        gc.disable()
        rng = random.Random(seed)
        blocked = set(rng.sample(chats, max(1, recipients // 100)))
        async with FakeBotAPI(rate_limit=rate, blocked=blocked) as api:
            proc = await start_sender(api, url, broadcast_id)
            killed_after: int | None = None
            kill_time: float | None = None
            if kill_at is not None:
                target = int(recipients * kill_at)
                # The successful calls so far (cheap to read, unlike counting every chat):
                # the fake's own event loop must not be slowed down by the benchmark.
                while api.statuses[200] < target:
                    if proc.returncode is not None:
                        raise RuntimeError("the sender ended before the kill")
                    await asyncio.sleep(0.05)
                proc.send_signal(signal.SIGKILL)
                kill_time = time.monotonic()
                await proc.wait()
                killed_after = delivered(api, chats)
                proc = await start_sender(api, url, broadcast_id)
            code = await proc.wait()
            if code != 0:
                raise RuntimeError(f"the sender exited with {code}")
            messages = [m for chat in chats for m in api.messages(chat)]
            async with sessions() as session:
                twice = set(
                    await session.scalars(
                        select(BroadcastDelivery.external_id).where(
                            BroadcastDelivery.broadcast_id == broadcast_id,
                            BroadcastDelivery.maybe_twice,
                        )
                    )
                )
                reported_blocked = int(
                    await session.scalar(
                        select(func.count()).where(
                            BroadcastDelivery.broadcast_id == broadcast_id,
                            BroadcastDelivery.state == DeliveryState.BLOCKED,
                        )
                    )
                    or 0
                )
            counts = {chat: len(api.messages(chat)) for chat in chats}
            duplicates = sum(n - 1 for n in counts.values() if n > 1)
            outside = sum(n - 1 for chat, n in counts.items() if n > 1 and str(chat) not in twice)
            missing = sum(1 for chat, n in counts.items() if n == 0 and chat not in blocked)
            times = sorted(m.sent_at for m in messages)
            seconds = times[-1] - times[0] if len(times) > 1 else 0.0
            restart_gap = 0.0
            if kill_time is not None:
                # The rate while a sender runs: the time from the kill to the restarted
                # sender's first message (process start, lease take-over) is left out and
                # reported on its own.
                before = [t for t in times if t <= kill_time]
                after = [t for t in times if t > kill_time]
                if before and after:
                    restart_gap = after[0] - before[-1]
                    seconds -= restart_gap
            return Outcome(
                label="kill -9 at 50 % and restart" if kill_at else "straight through",
                recipients=recipients,
                blocked=len(blocked),
                sent_messages=len(messages),
                seconds=seconds,
                rate=(len(messages) - 1) / seconds if seconds else 0.0,
                allowed=rate,
                http_429=api.statuses[429],
                duplicates=duplicates,
                missing=missing,
                maybe_twice=len(twice),
                duplicates_outside_report=outside,
                reported_blocked=reported_blocked,
                kill_at=killed_after,
                restart_gap=restart_gap,
            )
    finally:
        gc.enable()
        gc.unfreeze()
        await engine.dispose()


async def main_async(args: argparse.Namespace) -> int:
    outcomes = []
    runs = [None, 0.5] if args.run == "both" else [None] if args.run == "straight" else [0.5]
    for kill_at in runs:
        async with database(args.database_url) as url:
            started = time.monotonic()
            outcome = await run_once(url, args.recipients, args.rate, kill_at, args.seed)
            outcomes.append(outcome)
            print("\n".join(outcome.lines()), flush=True)
            print(f"(wall time {time.monotonic() - started:.0f} s)\n", flush=True)
    ok = all(
        o.missing == 0
        and (o.duplicates == 0 if o.kill_at is None else o.duplicates <= 3)
        and o.duplicates_outside_report == 0
        and o.reported_blocked == o.blocked
        for o in outcomes
    )
    print("RESULT", "ok" if ok else "FAILED")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=30.0, help="the fake API's limit, msg/s")
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary folder")
    parser.add_argument("--run", choices=["both", "straight", "kill"], default="both")
    parser.add_argument("--seed", type=int, default=5)
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
