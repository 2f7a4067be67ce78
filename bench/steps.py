"""Benchmark: statements and engine CPU of each answer of a journey, without a platform.

    python -m bench.steps                       # SQLite in a temporary folder
    python -m bench.steps --database-url postgresql+asyncpg://postgres@127.0.0.1/test

One rostered member signs up, registers "Lao động tiên tiến" (going back once), then goes
through the registration again up to the commitment; a newcomer (not on the roster) signs up
and registers too, as in bench.conversation: the second pass shows an ordinary
answer with the process's reference data already read (storage.refcache). Each line is one
``Engine.handle``: the statements it ran and the CPU of this thread, median of ``--repeat``
journeys (each on fresh people). Target (issue 16): an ordinary answer in ≤ 2 statements and
≤ 1 ms of engine CPU. ``--laps N`` then repeats the ordinary answers N times and prints their
mean; ``--statements`` lists each answer's statements, ``--profile FILE`` writes a cProfile.
On SQLite each answer's trips to aiosqlite's thread are counted too (each one a future, a
``call_soon_threadsafe`` and a wake-up of the event loop).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event

from bench.common import database, dialect_of
from handlers.engine.flow import EngineConfig
from handlers.flows import build_engine
from storage.db import make_engine, make_sessionmaker
from storage.models import Person
from storage.seed import prepare_database
from tests.chat import Chat
from tests.factories import make_org

JAN_10 = datetime(2027, 1, 10, 2, 0, tzinfo=UTC)  # 09:00 in Hà Nội, registration open
# The answers of bench.conversation's journey for a rostered member (sign-up, registration);
# a newcomer's are those labelled "newcomer: ".
SIGN_UP_AND_REGISTRATION = (
    "/start",
    "shares the contact",
    "taps 'that's me'",
    "first: menu → register a title",
    "first: types the title",
    "first: types the commitment",
    "first: confirms (saved)",
)


class ThreadTrips:
    """Counts the calls run in aiosqlite's connection threads, in this process only.

    aiosqlite starts each connection's thread on ``_connection_worker_thread(queue)``; the
    count wraps that queue's ``get`` (one per call sent to the thread). Nothing of the bot is
    changed: the same calls are made, one more lock per call is taken here.
    """

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def install(self) -> bool:
        import aiosqlite.core

        worker = getattr(aiosqlite.core, "_connection_worker_thread", None)
        if worker is None:  # another aiosqlite layout: no count rather than a wrong one
            return False
        trips = self

        class CountedQueue:
            def __init__(self, queue: Any) -> None:
                self._queue = queue

            def get(self) -> Any:
                item = self._queue.get()
                with trips._lock:
                    trips.count += 1
                return item

        def counted_worker(tx: Any) -> Any:
            return worker(CountedQueue(tx))

        aiosqlite.core._connection_worker_thread = counted_worker
        return True


async def main_async(args: argparse.Namespace) -> int:
    profiler = cProfile.Profile(time.thread_time) if args.profile else None
    trips = ThreadTrips()
    async with database(args.database_url, prefix="thidua_bench_steps") as url:
        counting_trips = dialect_of(url) == "sqlite" and trips.install()
        db = make_engine(url)
        try:
            await prepare_database(db)
            sessions = make_sessionmaker(db)
            org = await make_org(sessionmaker=sessions)
            counted = [0]
            seen: dict[str, list[str]] = defaultdict(list)
            listing: list[str] | None = None

            def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
                counted[0] += 1
                if listing is not None:
                    listing.append(" ".join(statement.split())[:160])

            event.listen(db.sync_engine, "before_cursor_execute", count)
            engine = build_engine(sessions, EngineConfig(now=lambda: JAN_10))
            figures: dict[str, list[tuple[int, float, int]]] = defaultdict(list)
            order: list[str] = []

            async def step(label: str, action: Awaitable[Any]) -> None:
                nonlocal listing
                counted[0] = trips.count = 0
                listing = [] if args.statements else None
                if listing is not None:
                    seen[label] = listing
                if profiler is not None:
                    profiler.enable()
                began = time.thread_time()
                await action
                spent = time.thread_time() - began
                if profiler is not None:
                    profiler.disable()
                figures[label].append((counted[0], 1000 * spent, trips.count))
                if label not in order:
                    order.append(label)

            for n in range(args.repeat):
                phone = f"091234{n:04d}"
                async with sessions() as session, session.begin():
                    session.add(
                        Person(
                            full_name="Nguyễn Thị Hoa",
                            phone=phone,
                            unit_id=org.garment.id,
                            source="roster",
                        )
                    )
                chat = Chat(engine, str(1000 + n))
                await step("/start", chat.say("/start"))
                await step("shares the contact", chat.contact(phone))
                await step("taps 'that's me'", chat.tap("là tôi"))
                for lap in ("first", "again"):
                    await step(f"{lap}: menu → register a title", chat.tap("Đăng ký danh hiệu"))
                    await step(f"{lap}: types the title", chat.say("lao dong tien tien"))
                    await step(f"{lap}: back", chat.tap("Quay lại"))
                    await step(f"{lap}: the title again", chat.say("lao dong tien tien"))
                    await step(f"{lap}: types the commitment", chat.say("Hoàn thành kế hoạch"))
                    if lap == "first":
                        await step("first: confirms (saved)", chat.tap("Xác nhận"))
                    await step(f"{lap}: /huy (to the menu)", chat.say("/huy"))
                # A newcomer (not on the roster): the unit is searched, the name confirmed,
                # then the same registration (the other half of bench.conversation).
                newcomer = Chat(engine, str(5000 + n), display_name="Trần Văn Nam")
                await step("newcomer: /start", newcomer.say("/start"))
                await step("newcomer: shares the contact", newcomer.contact(f"098765{n:04d}"))
                await step("newcomer: types the unit", newcomer.say("may bac kan"))
                await step("newcomer: picks the unit", newcomer.tap("May Bắc Kạn"))
                await step("newcomer: taps the name", newcomer.tap("Trần Văn Nam"))
                await step("newcomer: menu → register", newcomer.tap("Đăng ký danh hiệu"))
                await step("newcomer: types the title", newcomer.say("lao dong tien tien"))
                await step("newcomer: skips the commitment", newcomer.tap("Bỏ qua"))
                await step("newcomer: confirms (saved)", newcomer.tap("Xác nhận"))
            # The ordinary answers again and again, timed as a whole: the mean per answer
            # (and, run under callgrind with --laps 0 and --laps N, the instructions).
            counted[0] = trips.count = 0
            if profiler is not None:
                profiler.enable()
            began = time.thread_time()
            for _lap in range(args.laps):
                await chat.tap("Đăng ký danh hiệu")
                await chat.say("lao dong tien tien")
                await chat.tap("Quay lại")
                await chat.say("lao dong tien tien")
                await chat.say("Hoàn thành kế hoạch")
                await chat.say("/huy")
            laps_cpu, laps_statements, laps_trips = (
                time.thread_time() - began,
                counted[0],
                trips.count,
            )
            if profiler is not None:
                profiler.disable()
        finally:
            await db.dispose()

    def average(labels: list[str]) -> str:
        statements = sum(statistics.median(row[0] for row in figures[label]) for label in labels)
        ms = sum(statistics.median(row[1] for row in figures[label]) for label in labels)
        hops = sum(statistics.median(row[2] for row in figures[label]) for label in labels)
        n = max(len(labels), 1)
        trips_part = f", {hops / n:.2f} thread trips" if counting_trips else ""
        return f"{statements / n:.2f} statements{trips_part}, {ms / n:.2f} ms engine CPU per answer"

    print(f"{dialect_of(url)}, median of {args.repeat} journeys")
    trips_header = "  thread trips" if counting_trips else ""
    print(f"{'answer':36} statements{trips_header}  engine CPU")
    for label in order:
        rows = figures[label]
        statements = statistics.median(row[0] for row in rows)
        ms = statistics.median(row[1] for row in rows)
        hops = f"  {statistics.median(row[2] for row in rows):>12g}" if counting_trips else ""
        print(f"{label:36} {statements:>10g}{hops}  {ms:7.2f} ms")
        for statement in seen.get(label, []):
            print(f"    {statement}")
    both: list[str] = []
    for who, journey in (
        ("rostered member", [label for label in order if label in SIGN_UP_AND_REGISTRATION]),
        ("newcomer", [label for label in order if label.startswith("newcomer: ")]),
    ):
        both += journey
        print(f"sign-up + registration, {who} ({len(journey)} answers): {average(journey)}")
    print(f"sign-up + registration, both ({len(both)} answers): {average(both)}")
    if args.laps:
        answers = 6 * args.laps
        print(
            f"ordinary answers, {args.laps} laps of 6 (menu → title, title, back, title again, "
            f"commitment, /huy): {laps_statements / answers:.2f} statements, "
            + (f"{laps_trips / answers:.2f} thread trips, " if counting_trips else "")
            + f"{1000 * laps_cpu / answers:.2f} ms engine CPU per answer"
        )
    if profiler is not None:
        profiler.dump_stats(args.profile)
        print(f"profile of the answers (engine only) written to {args.profile}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary folder")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--statements", action="store_true", help="list each answer's statements (last journey)"
    )
    parser.add_argument("--profile", help="write a cProfile of the answers to this file")
    parser.add_argument(
        "--laps", type=int, default=0, help="then repeat the ordinary answers this many times"
    )
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
