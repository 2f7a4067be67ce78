"""The schedule: planned runs, one leader among processes, restarts, and the CLI."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.cli import main
from bot.scheduler import Scheduler, catch_up_job, plan_jobs
from handlers.reminders import ReminderPolicy, reminder_pass
from storage.db import make_engine, make_sessionmaker
from storage.leader import SCHEDULER_LOCK_KEY
from storage.models import OutboxMessage, ReminderLog, Role, UnitRole
from storage.seed import prepare_database
from tests.conftest import PG_ADMIN_URL
from tests.test_reminders import make_scene
from tests.waiting import patience

VN = ZoneInfo("Asia/Ho_Chi_Minh")
POLICY = ReminderPolicy()


def vn(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2027, month, day, hour, minute, tzinfo=VN)


async def until(condition: Callable[[], bool], within: float = 5.0) -> bool:
    deadline = asyncio.get_running_loop().time() + patience(within)
    while asyncio.get_running_loop().time() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.02)
    return condition()


# --- the plan -------------------------------------------------------------------------------


async def test_plan_shows_the_next_reminders_and_digest(sessionmaker) -> None:
    await make_scene(sessionmaker)
    jobs = await plan_jobs(sessionmaker, vn(1, 10, 12), POLICY)
    reminders = [(j.run_at.astimezone(VN), j.what) for j in jobs if j.kind == "remind"]
    assert reminders[:3] == [
        (vn(1, 18, 8), "deadline:2027-01-25:-7d"),
        (vn(1, 22, 8), "deadline:2027-01-25:-3d"),
        (vn(1, 24, 8), "deadline:2027-01-25:-1d"),
    ]
    assert (vn(6, 23, 8), "phase1:2027-06-30:-7d") in reminders
    # Weekly digest: the next Monday (10/01/2027 is a Sunday) at 08:00.
    assert [j.run_at.astimezone(VN) for j in jobs if j.kind == "digest"] == [vn(1, 11, 8)]
    # Deterministic ids: planning again finds the same jobs.
    again = await plan_jobs(sessionmaker, vn(1, 10, 12), POLICY)
    assert [j.id for j in again] == [j.id for j in jobs]
    # Later on, what has passed is no longer planned.
    later = await plan_jobs(sessionmaker, vn(1, 23, 12), POLICY)
    assert next(j.what for j in later if j.kind == "remind") == "deadline:2027-01-25:-1d"


async def test_scheduler_leads_plans_and_restarts_the_same(sessionmaker, engine) -> None:
    await make_scene(sessionmaker)
    first = Scheduler(sessionmaker, engine, POLICY, clock=lambda: vn(1, 10, 12))
    await first.start()
    assert await until(lambda: first.is_leader)
    assert await until(lambda: any(i.startswith("remind:") for i, _t in first.planned()))
    planned = [i for i, _t in first.planned() if i.startswith(("remind:", "digest:"))]
    assert "remind:TD2027:20270118T0100Z" in planned  # 18/01 08:00 in Hà Nội
    await first.stop()
    assert not first.is_leader and first.planned() == []
    # A restarted process plans exactly the same jobs from the campaign table.
    second = Scheduler(sessionmaker, engine, POLICY, clock=lambda: vn(1, 10, 12))
    await second.start()
    try:
        assert await until(lambda: any(i.startswith("remind:") for i, _t in second.planned()))
        again = [i for i, _t in second.planned() if i.startswith(("remind:", "digest:"))]
        assert again == planned
    finally:
        await second.stop()


async def test_catch_up_on_becoming_leader_sends_what_was_missed(sessionmaker, engine) -> None:
    scene = await make_scene(sessionmaker)
    nudges: list[int] = []
    scheduler = Scheduler(
        sessionmaker,
        engine,
        POLICY,
        clock=lambda: vn(1, 24, 9),
        on_queued=lambda: nudges.append(1),
    )
    await scheduler.start()
    try:

        async def sent() -> int:
            async with sessionmaker() as session:
                return int(await session.scalar(select(func.count()).select_from(ReminderLog)) or 0)

        for _ in range(250):
            if await sent() == 4:
                break
            await asyncio.sleep(0.02)
        assert await sent() == 4
        assert nudges  # the outbox dispatcher was woken
    finally:
        await scheduler.stop()
    # Restarted: the catch-up runs again and finds nothing new.
    again = await catch_up_job(sessionmaker, lambda: vn(1, 24, 9, 30), POLICY)
    assert sum(len(r.messages) for r in again) == 0
    assert scene.people  # the scene was used


# --- several processes on PostgreSQL ---------------------------------------------------------


@pytest.fixture
async def second_engine(db_url: str, backend: str) -> AsyncIterator[AsyncEngine]:
    if backend != "postgresql":
        pytest.skip("several processes share a database only on PostgreSQL")
    other = make_engine(db_url)
    yield other
    await other.dispose()


async def lock_holders(engine: AsyncEngine) -> list[int]:
    """Who holds the scheduler's lock in this test's database (advisory locks are per
    database; tests on another worker hold the same key in theirs)."""
    admin = await asyncpg.connect(PG_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        rows = await admin.fetch(
            "SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
            " WHERE l.locktype = 'advisory' AND l.objid = $1 AND l.granted AND d.datname = $2",
            SCHEDULER_LOCK_KEY,
            engine.url.database,
        )
        return [r["pid"] for r in rows]
    finally:
        await admin.close()


async def terminate(pid: int) -> None:
    admin = await asyncpg.connect(PG_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


async def test_one_leader_and_the_other_takes_over(sessionmaker, engine, second_engine) -> None:
    await make_scene(sessionmaker)
    clock = lambda: vn(1, 10, 12)  # noqa: E731
    a = Scheduler(sessionmaker, engine, POLICY, clock=clock, standby_retry=0.2)
    b = Scheduler(
        make_sessionmaker(second_engine), second_engine, POLICY, clock=clock, standby_retry=0.2
    )
    await a.start()
    assert await until(lambda: a.is_leader)
    await b.start()
    await asyncio.sleep(0.8)
    assert (a.is_leader, b.is_leader) == (True, False)
    assert b.planned() == []
    assert len(await lock_holders(second_engine)) == 1

    # A stops (a deploy): B takes over within a retry or two.
    await a.stop()
    assert await until(lambda: b.is_leader, within=3)

    # B's process dies: its connection goes away with it (the server ends the session) and
    # its loop is gone. A, started again, stands by and takes over.
    await a.start()
    await asyncio.sleep(0.5)
    assert not a.is_leader
    (holder,) = await lock_holders(second_engine)
    await terminate(holder)
    await b.stop()
    assert await until(lambda: a.is_leader, within=3)
    assert await until(lambda: any(i.startswith("remind:") for i, _t in a.planned()))
    await a.stop()


async def test_a_leader_notices_its_lock_connection_died(
    sessionmaker, engine, second_engine
) -> None:
    await make_scene(sessionmaker)
    a = Scheduler(sessionmaker, engine, POLICY, clock=lambda: vn(1, 10, 12), standby_retry=0.2)
    await a.start()
    try:
        assert await until(lambda: a.is_leader)
        (holder,) = await lock_holders(second_engine)
        await terminate(holder)
        # It steps down, then leads again on a new connection.
        assert await until(lambda: not a.is_leader, within=3)
        assert await until(lambda: a.is_leader, within=3)
        assert await lock_holders(second_engine) != [holder]
    finally:
        await a.stop()
    assert await lock_holders(second_engine) == []


async def test_two_processes_running_the_same_pass_send_each_reminder_once(
    sessionmaker, second_engine
) -> None:
    scene = await make_scene(sessionmaker)
    other = make_sessionmaker(second_engine)
    at = vn(1, 18, 8)
    reports = await asyncio.gather(
        reminder_pass(sessionmaker, scene.org.campaign.id, at, POLICY, batch=2),
        reminder_pass(other, scene.org.campaign.id, at, POLICY, batch=2),
        catch_up_job(sessionmaker, lambda: at, POLICY),
        catch_up_job(other, lambda: at, POLICY),
    )
    total = len(reports[0].messages) + len(reports[1].messages)
    total += sum(len(r.messages) for rs in reports[2:] for r in rs)
    async with sessionmaker() as session:
        rows = list(await session.scalars(select(OutboxMessage.external_id)))
    assert total == 4
    assert len(rows) == 4 and len(set(rows)) == 4


# --- the CLI ----------------------------------------------------------------------------------


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'thidua.db'}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.delenv("THIDUA_LOG_LEVEL", raising=False)

    async def prepare() -> None:
        engine = make_engine(url)
        try:
            await prepare_database(engine)
            sessions = make_sessionmaker(engine)
            scene = await make_scene(sessions)
            async with sessions() as session, session.begin():
                session.add(
                    UnitRole(
                        person_id=scene.people["binh"],
                        unit_id=scene.org.upper.id,
                        role=Role.OFFICER,
                    )
                )
        finally:
            await engine.dispose()

    asyncio.run(prepare())
    return url


def outbox_count(url: str) -> int:
    async def count() -> int:
        engine = make_engine(url)
        try:
            async with make_sessionmaker(engine)() as session:
                return int(
                    await session.scalar(select(func.count()).select_from(OutboxMessage)) or 0
                )
        finally:
            await engine.dispose()

    return asyncio.run(count())


def test_cli_remind_dry_run_prints_who_would_get_what(cli_db, capsys) -> None:
    code = main(["remind", "--campaign", "TD2027", "--dry-run", "--at", "2027-01-18 08:00"])
    out = capsys.readouterr().out
    assert code == 0
    assert "would send 4 reminder(s)" in out
    assert "Nguyễn Thị Hoa" in out and "member/register" in out and "test:hoa" in out
    assert "Lê Thị Chi" in out and "member/draft" in out
    assert "Vũ Thị Lan" in out and "leader/progress" in out
    assert outbox_count(cli_db) == 0
    # At night nothing goes.
    assert main(["remind", "--campaign", "TD2027", "--dry-run", "--at", "2027-01-18 22:00"]) == 0
    assert "quiet hours (20:00–08:00)" in capsys.readouterr().out


def test_cli_errors_are_one_line(cli_db, capsys) -> None:
    assert main(["remind", "--campaign", "NOPE", "--dry-run"]) == 1
    assert "unknown campaign 'NOPE'" in capsys.readouterr().err
    assert main(["remind", "--campaign", "TD2027", "--at", "2027-01-18 08:00"]) == 1
    assert "--at only goes with --dry-run" in capsys.readouterr().err
    assert main(["digest", "--unit", "NOPE"]) == 1
    assert "unknown unit code 'NOPE'" in capsys.readouterr().err


def test_cli_jobs_list(cli_db, capsys) -> None:
    assert main(["jobs", "list"]) == 0
    out = capsys.readouterr().out
    # The campaign is in 2027: every reminder is still ahead of the machine's clock.
    assert "18/01/2027 08:00  remind  TD2027" in out
    assert "Quiet hours 20:00–08:00" in out


def test_cli_digest_prints_and_sends(cli_db, capsys, tmp_path) -> None:
    assert main(["digest", "--unit", "CD-KCN", "--campaign", "TD2027"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("📊 Báo cáo tổng hợp: Phong trào thi đua năm 2027")
    assert outbox_count(cli_db) == 0
    assert (
        main(["digest", "--unit", "CD-KCN", "--campaign", "TD2027", "--send", "--save", "."]) == 0
    )
    out = capsys.readouterr().out
    assert "Queued to 1 officer(s) of CD-KCN: Trần Văn Bình" in out
    assert (tmp_path / "tong-hop-TD2027-CD-KCN.xlsx").exists()
    assert outbox_count(cli_db) >= 3  # text, XLSX, chart
